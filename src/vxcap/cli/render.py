"""Terminal rendering of a report: the verdict table and the one-line summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text


def _arrow(flow: dict[str, Any]) -> str:
    return f"{flow['src_node']} → {flow['dst_node']}"


def _pair(flow: dict[str, Any]) -> str:
    a, b = sorted((flow["src_node"], flow["dst_node"]))
    return f"{a} ↔ {b}"


def verdict_table(report: dict[str, Any]) -> Table:
    table = Table(title="vxcap: pod-to-pod traffic on the underlay", title_justify="left", expand=False)
    for column, kwargs in (
        ("Pair", {}),
        ("Direction", {}),
        ("Expected", {}),
        ("Observed", {}),
        ("VNI", {"justify": "right"}),
        ("Outer IPs", {}),
        ("Packets", {"justify": "right"}),
        ("Verdict", {}),
        ("Wireshark filter", {"overflow": "fold"}),
    ):
        table.add_column(column, **kwargs)
    for flow in report["flows"]:
        outer = "—"
        if flow["observed"] in ("vxlan", "mixed") and flow["outer_src"]:
            outer = f"{flow['outer_src']} → {flow['outer_dst']}"
            if flow["udp_dport"] is not None:
                outer += f" :{flow['udp_dport']}"
        verdict = Text("PASS", style="pass") if flow["verdict"] == "pass" else Text("FAIL", style="fail")
        table.add_row(
            _pair(flow),
            _arrow(flow),
            flow["expected"],
            flow["observed"],
            "—" if flow["vni"] is None else str(flow["vni"]),
            outer,
            str(flow["packets"]),
            verdict,
            flow["wireshark_filter"],
        )
    return table


def reasons(report: dict[str, Any]) -> list[str]:
    lines = [f"[fail]✗[/] {error}" for error in report.get("errors", [])]
    for flow in report["flows"]:
        for reason in flow["reasons"]:
            lines.append(f"[fail]✗[/] {_arrow(flow)}: {reason}")
    return lines


def summary(report: dict[str, Any], run_dir: Path) -> str:
    s = report["summary"]
    word = "[pass]PASS[/]" if report["verdict"] == "pass" else "[fail]FAIL[/]"
    return (
        f"{word} {s['passed']}/{s['flows']} directions as expected · "
        f"{run_dir}/ (report.json, junit.xml, pcaps)"
    )
