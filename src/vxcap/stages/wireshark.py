"""Wireshark's part of a run: the command line that opens each flow's pcapng, and the
tshark cross-check of the decode (`--cross-check`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vxcap.core.manifest import Manifest
from vxcap.report.json_report import run_verdict


def add_wireshark_commands(run_dir: Path, manifest: Manifest, report: dict[str, Any]) -> None:
    """The follow-up, one step away: the exact command for each flow's evidence file,
    with the decode-as Wireshark needs for VXLAN off port 4789."""
    from vxcap.core.wireshark import flow_commands

    from vxcap.core.rundir import flow_pcapng_name

    # By the file's name, which says the family: a dual-stack direction has one file per family.
    files = {f["file"] for f in report.get("evidence", {}).get("flows", [])}
    for flow in report["flows"]:
        file = flow_pcapng_name(flow["src_node"], flow["dst_node"], flow.get("family", "IPv4"))
        if file not in files:
            continue
        commands = flow_commands(flow, str(run_dir / file), manifest.topology.overlay.port)
        flow["wireshark"] = commands.wireshark
        flow["tshark"] = commands.tshark


def cross_check_decode(run_dir: Path, manifest: Manifest, report: dict[str, Any]) -> None:
    """Wireshark's dissectors must read the captures the way scapy did; any
    disagreement fails the run (a verdict is only as good as its decoder)."""
    from vxcap.adapters.tshark import cross_check as tshark_cross_check

    disagreements = tshark_cross_check(run_dir, manifest, report)
    report["cross_check"] = {"tool": "tshark", "agreed": not disagreements, "disagreements": disagreements}
    report["verdict"] = run_verdict(report)
