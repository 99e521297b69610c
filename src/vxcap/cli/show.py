"""A judged run on the terminal: the table, what to know, the verdict line; or JSON alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def show_report(report: dict[str, Any], run_dir: Path, *, as_json: bool = False, quiet: bool = False,
                follow: bool = True, text: str | None = None) -> None:
    """`text`: report.json as the run wrote it, printed as it is for --json (a 256-node run's is 8 MB)."""
    from vxcap.adapters.rundir import artifacts
    from vxcap.cli.console import console, raw
    from vxcap.cli.render import follow_up, packets_legend, reasons, summary, table_flows, verdict_table

    if as_json:
        # Plain text, not rich's print_json: rendering a 240-flow report took seconds.
        raw(text if text is not None else json.dumps(report, indent=2))
        return
    if not quiet:
        if table_flows(report):
            console.print(verdict_table(report))
            console.print(packets_legend(report), soft_wrap=True)
        elif report["flows"]:
            console.print(f"[pass]all {len(report['flows'])} directions as expected[/]: "
                          "each one's row is in report.json and report.html")
        for line in reasons(report) + (follow_up(report) if follow else []):
            console.print(line, soft_wrap=True)
    console.print(summary(report, run_dir, artifacts(run_dir)), soft_wrap=True)


def show_outcome(outcome, *, as_json: bool = False, quiet: bool = False) -> None:
    show_report(outcome.report, outcome.run_dir, as_json=as_json, quiet=quiet,
                text=getattr(outcome, "report_text", None))
