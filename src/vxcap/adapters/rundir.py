"""Reading and writing a run directory (its names: `vxcap.core.rundir`).

pcaps hold other people's traffic and the reports name their pods: the directory is
0700 and every file in it 0600, whoever writes it (the pipeline, `vxcap report`, tcpdump).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vxcap.core import rundir as names
from vxcap.core.errors import InputError
from vxcap.core.manifest import Manifest, parse_manifest


def make_run_dir(parent: Path, run_id: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    run_dir = parent / run_id
    run_dir.mkdir(mode=names.DIR_MODE)
    os.chmod(run_dir, names.DIR_MODE)
    return run_dir


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, names.FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, names.FILE_MODE)


def make_private(path: Path) -> None:
    """A file another writer made (tcpdump, the JUnit library): 0600 like the rest."""
    os.chmod(path, names.FILE_MODE)


def write_json(path: Path, data: Any) -> str:
    """Writes `data` as JSON; returns the text written, without its last newline."""
    text = json.dumps(data, indent=2)
    write_private(path, text + "\n")
    return text


# Past this many directions report.json holds one direction per line: json's indented
# encoder is pure Python and took a quarter of a second for a 256-node coverage run's
# 1,056 flows, the one-line encoder a quarter of that. The same JSON either way; a line
# per direction also suits grep.
FLOWS_ONE_PER_LINE = 64
_FLOWS_SLOT = '\n  "flows": []'


def report_json_text(report: dict[str, Any]) -> str:
    """report.json's text: indented, its flows one per line when there are many."""
    flows = report.get("flows")
    if not isinstance(flows, list) or len(flows) <= FLOWS_ONE_PER_LINE:
        return json.dumps(report, indent=2)
    # Top-level keys alone sit two spaces in: the slot is report.json's own `flows`, not a nested one.
    text = json.dumps({**report, "flows": []}, indent=2)
    lines = ",\n".join("    " + json.dumps(flow) for flow in flows)
    return text.replace(_FLOWS_SLOT, f'\n  "flows": [\n{lines}\n  ]', 1)


def write_report_json(path: Path, report: dict[str, Any]) -> str:
    """Writes report.json; returns the text written, without its last newline."""
    text = report_json_text(report)
    write_private(path, text + "\n")
    return text


def read_json(path: Path) -> Any:
    """A run directory's JSON file, or a one-line input error saying what is wrong with it."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not JSON: {err}") from None


def read_optional(path: Path) -> str | None:
    """A file a run may or may not have saved (node tables, MTU probes): None when absent or unreadable."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def save_node_tables(run_dir: Path, node: str, iface: str, files: dict[str, str]) -> None:
    """Routes, neighbours, FDB and links explain the pcap: saved beside it, keyed by `vxcap.core.rundir` suffix."""
    for suffix, text in files.items():
        write_private(run_dir / names.node_file(node, iface, suffix), text)


def read_node_tables(run_dir: Path, node: str, iface: str, suffixes: tuple[str, ...]) -> dict[str, str | None]:
    return {suffix: read_optional(run_dir / names.node_file(node, iface, suffix)) for suffix in suffixes}


def load_manifest(run_dir: Path) -> Manifest:
    path = run_dir / names.MANIFEST
    if not run_dir.is_dir():
        raise InputError(f"{run_dir} is not a directory")
    if not path.is_file():
        raise InputError(f"{path} does not exist: is {run_dir} a vxcap run directory?")
    manifest = parse_manifest(read_json(path))
    for cap in manifest.captures:
        file = run_dir / cap.file
        if not file.is_file():
            raise InputError(f"manifest: captures of node {cap.node}: file {cap.file!r} does not exist in {run_dir}")
    return manifest


def load_report(run_dir: Path) -> dict[str, Any]:
    """A judged run's report.json, for `vxcap report`."""
    report_file = run_dir / names.REPORT_JSON
    if not report_file.is_file():
        raise InputError(f"{report_file} does not exist: judge the run first with `vxcap analyze {run_dir}`")
    report = read_json(report_file)
    if not isinstance(report, dict) or not isinstance(report.get("flows"), list):
        raise InputError(f"{report_file} is not a vxcap report (no flows list)")
    return report


def artifacts(run_dir: Path) -> list[str]:
    """What the run left, as the verdict line names it; only what exists (a run that stopped
    at set-up has no pcaps, page or flow pcapng)."""
    found = [name for name in names.REPORTS if (run_dir / name).is_file()]
    pcaps = sorted(run_dir.glob(f"*{names.PCAP_SUFFIX}"))
    if pcaps:
        found.append(f"{len(pcaps)} pcap{'s' if len(pcaps) != 1 else ''}")
    if (run_dir / names.FLOW_PCAPNG_DIR).is_dir():
        found.append(f"{names.FLOW_PCAPNG_DIR}/")
    return found
