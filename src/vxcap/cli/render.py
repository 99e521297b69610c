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
    """One section per pair; each direction's Wireshark filter sits under it."""
    table = Table(title="vxcap: pod-to-pod traffic on the underlay", title_justify="left")
    table.add_column("Pair", no_wrap=True)
    table.add_column("Direction / Wireshark filter", no_wrap=True)
    table.add_column("Expected", no_wrap=True)
    table.add_column("Observed", no_wrap=True)
    table.add_column("VNI", justify="right", no_wrap=True)
    table.add_column("Outer IPs", no_wrap=True)
    table.add_column("Packets", justify="right", no_wrap=True)
    table.add_column("Verdict", no_wrap=True)
    previous_pair = None
    for flow in report["flows"]:
        pair = _pair(flow)
        if previous_pair is not None and pair != previous_pair:
            table.add_section()
        outer = "—"
        if flow["observed"] in ("vxlan", "mixed") and flow["outer_src"]:
            outer = f"{flow['outer_src']} → {flow['outer_dst']}"
            if flow["udp_dport"] is not None:
                outer += f"\nUDP {flow['udp_dport']}"
        verdict = Text("PASS", style="pass") if flow["verdict"] == "pass" else Text("FAIL", style="fail")
        direction = Text(_arrow(flow))
        direction.append("\n" + flow["wireshark_filter"], style="hint")
        table.add_row(
            pair if pair != previous_pair else "",
            direction,
            flow["expected"],
            flow["observed"],
            "—" if flow["vni"] is None else str(flow["vni"]),
            outer,
            str(flow["packets"]),
            verdict,
        )
        previous_pair = pair
    return table


def reasons(report: dict[str, Any]) -> list[str]:
    lines = [f"[fail]✗[/] {error}" for error in report.get("errors", [])]
    lines += [f"[warn]![/] {warning}" for warning in report.get("warnings", [])]
    for flow in report["flows"]:
        for reason in flow["reasons"]:
            lines.append(f"[fail]✗[/] {_arrow(flow)}: {reason}")
    check = report.get("cross_check")
    if check is not None:
        if check["disagreements"]:
            lines += [f"[fail]✗[/] {check['tool']} disagrees: {d}" for d in check["disagreements"]]
        else:
            lines.append(f"[pass]✓[/] {check['tool']} agrees with vxcap's decode on every flow")
    return lines


def follow_up(report: dict[str, Any]) -> list[str]:
    """The first failing flow's Wireshark command (else the first flow's): one step away."""
    flows = [f for f in report["flows"] if f.get("wireshark")]
    failing = [f for f in flows if f["verdict"] != "pass"]
    flow = (failing or flows or [None])[0]
    if flow is None:
        return []
    return [f"[hint]look closer ({_arrow(flow)}):[/] {flow['wireshark']}"]


def summary(report: dict[str, Any], run_dir: Path) -> str:
    s = report["summary"]
    word = "[pass]PASS[/]" if report["verdict"] == "pass" else "[fail]FAIL[/]"
    return (
        f"{word} {s['passed']}/{s['flows']} directions as expected · "
        f"{run_dir}/ (report.json, junit.xml, report.html, pcaps, evidence/)"
    )


def topology_tables(data: dict[str, Any]) -> list[Table]:
    overlay = data["overlay"]
    mtu = "auto" if overlay["mtu"] is None else overlay["mtu"]
    nodes = Table(
        title=f"nodes · vxlanMode {overlay['mode']}, VNI {overlay['vni']}, UDP {overlay['port']}, MTU {mtu}",
        title_justify="left",
    )
    for column in ("Node", "Underlay", "Pod block", "VTEP IP", "VTEP MAC"):
        nodes.add_column(column, no_wrap=True)
    for n in data["nodes"]:
        nodes.add_row(n["name"], n["underlay"], n["block"] or "—", n["vtep_ip"] or "—", n["vtep_mac"] or "—")
    paths = Table(title="expected wire format per direction", title_justify="left")
    for column in ("From", "To", "Expected", "Because"):
        paths.add_column(column, no_wrap=column != "Because")
    for p in data["paths"]:
        style = "bold" if p["expected"] == "vxlan" else ""
        paths.add_row(p["src"], p["dst"], Text(p["expected"], style=style), p["reason"])
    return [nodes, paths]
