"""`vxcap report RUN_DIR`: show a saved run again, in the terminal and as report.html.

Nothing is decoded or judged here: the page and the table are report.json as it
was written, so they say exactly what `run`/`analyze` said.
"""

from __future__ import annotations

from pathlib import Path

import click

from vxcap.cli.guard import Fail, guarded
from vxcap.exit_status import ExitStatus


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the page. Default: RUN_DIR/report.html.",
)
@guarded()
def report_command(run_dir: Path, html_path: Path | None) -> None:
    """Show a saved run again: the verdict table, and a self-contained HTML page.

    \b
    Example:
      vxcap report captures/<run-id>      # writes captures/<run-id>/report.html

    The page draws each direction's packet as its layers and the probes at each
    capture point, with the evidence files and the Wireshark lines that open them.
    Exit status follows the run's verdict: 0 pass, 1 fail, 2 not a run directory.
    """
    from vxcap.cli.console import console
    from vxcap.cli.show import show_report

    report, page = _render(run_dir, html_path)
    show_report(report, run_dir, follow=False)
    console.print(f"[hint]page:[/] {page}", soft_wrap=True)
    raise Fail(ExitStatus.SUCCESS if report.get("verdict") == "pass" else ExitStatus.VERDICT_FAILED)


def _render(run_dir: Path, html_path: Path | None) -> tuple[dict, Path]:
    from vxcap.adapters.rundir import load_manifest, load_report, write_private
    from vxcap.core.errors import InputError
    from vxcap.core.rundir import REPORT_HTML
    from vxcap.report.html import render_html

    manifest = load_manifest(run_dir)
    report = load_report(run_dir)

    page = html_path or run_dir / REPORT_HTML
    if not page.parent.is_dir():
        raise InputError(f"--html {page}: directory {page.parent} does not exist")
    text = render_html(report, manifest, run_dir, page_dir=page.parent)
    try:
        # The page names pods, nodes and addresses: private like the rest of the run.
        write_private(page, text)
    except OSError as err:
        raise InputError(f"cannot write {page}: {err.strerror or err}") from None
    return report, page
