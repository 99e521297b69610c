"""Hand-taken captures in tests/cli/data/<format>-hand, judged by `vxcap analyze` through click's runner.

Each directory holds the pcaps, the node tables and a manifest written by hand; a test copies it
and may change the manifest's promise (the overlay, or a node's fields) before judging the same frames.
"""

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from vxcap.cli.main import cli

DATA = Path(__file__).parent / "data"


def hand_run(tmp_path: Path, fmt: str, nodes: dict[str, dict] | None = None, **overlay) -> Path:
    """A copy of `<fmt>-hand` in `tmp_path`, its manifest's overlay and nodes updated as given."""
    run = tmp_path / "run"
    shutil.copytree(DATA / f"{fmt}-hand", run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["overlay"].update(overlay)
    for node in manifest["nodes"]:
        node.update((nodes or {}).get(node["name"], {}))
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def analyze(run: Path, key: tuple[str, ...] = ("src_node", "dst_node")):
    """`vxcap analyze RUN`'s result, and report.json's flows by `key`'s fields."""
    result = CliRunner().invoke(cli, ["analyze", str(run)])
    report = json.loads((run / "report.json").read_text())
    return result, {tuple(f[k] for k in key): f for f in report["flows"]}
