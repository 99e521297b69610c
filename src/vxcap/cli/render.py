"""Terminal rendering of a report: the verdict table and the one-line summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from vxcap.core.mtu.path import said_in_mtu_section
from vxcap.report import packets

_MARK = {"fail": "[fail]✗[/]", "warn": "[warn]![/]", "info": "[hint]·[/]"}
_IN_THE_LINE = {"largest-df-payload", "tcp-mss"}  # findings the path's line already says
_ONCE = "plain-path-cost"  # by design on every plain direction: one line per run, not one per direction


def _arrow(flow: dict[str, Any]) -> str:
    return f"{flow['src_node']} → {flow['dst_node']}"


def _pair(flow: dict[str, Any]) -> str:
    a, b = sorted((flow["src_node"], flow["dst_node"]))
    return f"{a} ↔ {b}"


def packets_cell(flow: dict[str, Any]) -> str:
    requests, replies = packets.cell(flow)
    return requests if replies is None else f"{requests}\n{replies}"


def packets_header(report: dict[str, Any]) -> str:
    return packets.header(report)


def packets_legend(report: dict[str, Any]) -> str:
    """Said once under the table: what the Echoes (or Frames) column counts."""
    return f"[hint]{escape(packets.legend(report))}[/]"


# Beyond this many directions (a coverage or all-pairs run on a large cluster) the table
# shows the failing directions only: every flow is still in report.json and report.html.
TABLE_ROWS_LIMIT = 64


def table_flows(report: dict[str, Any]) -> list[dict[str, Any]]:
    flows = report["flows"]
    if len(flows) <= TABLE_ROWS_LIMIT:
        return flows
    return [flow for flow in flows if flow["verdict"] != "pass"]


def verdict_table(report: dict[str, Any]) -> Table:
    """One section per pair; each direction's Wireshark filter sits under it."""
    shown = table_flows(report)
    title = "vxcap: pod-to-pod traffic on the underlay"
    if len(shown) < len(report["flows"]):
        title += f" (the {len(shown)} failing of {len(report['flows'])} directions; all in report.json)"
    table = Table(title=title, title_justify="left")
    table.add_column("Pair", no_wrap=True)
    table.add_column("Direction / Wireshark filter", no_wrap=True)
    table.add_column("Expected", no_wrap=True)
    table.add_column("Observed", no_wrap=True)
    table.add_column("VNI", justify="right", no_wrap=True)
    table.add_column("Outer IPs", no_wrap=True)
    table.add_column(packets_header(report), justify="right", no_wrap=True)
    table.add_column("Verdict", no_wrap=True)
    previous_pair = None
    for flow in shown:
        pair = _pair(flow)
        if previous_pair is not None and pair != previous_pair:
            table.add_section()
        outer = "—"
        if flow["observed"] not in ("plain", "none") and flow["outer_src"]:
            outer = f"{flow['outer_src']} → {flow['outer_dst']}"
            if flow["udp_dport"] is not None:
                outer += f"\nUDP {flow['udp_dport']}"
        verdict = Text("PASS", style="pass") if flow["verdict"] == "pass" else Text("FAIL", style="fail")
        direction = Text(_arrow(flow))
        direction.append("\n" + flow["wireshark_filter"], style="hint")
        table.add_row(
            pair if pair != previous_pair else "",
            direction,
            flow["expected"] + ("\nIPv6" if flow.get("family") == "IPv6" else ""),
            flow["observed"],
            "—" if flow["vni"] is None else str(flow["vni"]),
            outer,
            packets_cell(flow),
            verdict,
        )
        previous_pair = pair
    return table


def _known(value: Any) -> str:
    return "?" if value is None else str(value)


def mtu_line(flow: dict[str, Any]) -> str | None:
    """One direction's MTUs, overhead, limits and what was measured, on one line."""
    mtu = flow.get("mtu")
    if not isinstance(mtu, dict):
        return None
    src = (mtu.get("mtus") or {}).get("src") or {}
    links = [f"pod {_known(src.get('pod_mtu'))}"]
    if mtu.get("wire") == "vxlan":
        links.append(f"{src.get('vxlan_ifname') or 'vxlan'} {_known(src.get('vxlan_mtu'))}")
    links.append(f"{src.get('underlay_ifname') or 'underlay'} {_known(src.get('underlay_mtu'))}")
    measured = mtu.get("measured") or {}
    largest = measured.get("largest_df_payload")
    if largest is not None and not measured.get("largest_df_payload_exact"):
        largest = f"≥{largest}"
    seen = ", ".join(str(v) for v in measured.get("tcp_mss_seen") or []) or "—"
    overhead = (mtu.get("overhead") or {}).get("bytes")
    return (
        f"{_arrow(flow)}{' IPv6' if flow.get('family') == 'IPv6' else ''} {mtu.get('wire')}: {' / '.join(links)} · overhead {_known(overhead)} · "
        f"largest DF payload {_known(mtu.get('max_icmp_payload'))} (measured {_known(largest)}) · "
        f"MSS {_known(mtu.get('tcp_mss'))} (seen {seen})"
    )


# Beyond this many directions (an all-pairs run) the MTU section names only the directions
# with a warning or a failure: every line is still in report.json and report.html.
MTU_LINES_LIMIT = 12


def mtu_section(report: dict[str, Any]) -> list[str]:
    """The MTU of each direction: its line, then its findings (✗ fail, ! warn, · info)."""
    flows = [flow for flow in report.get("flows", []) if mtu_line(flow) is not None]
    many = len(flows) > MTU_LINES_LIMIT
    lines = []
    shown = 0
    costs: dict[str, int] = {}  # the plain-path cost, by design the same on every plain direction: said once
    for flow in flows:
        findings = flow["mtu"].get("findings") or []
        for finding in findings:
            if finding.get("code") == _ONCE:
                rest = str(finding.get("message")).removeprefix(f"{flow['src_node']} -> {flow['dst_node']} ")
                costs[rest] = costs.get(rest, 0) + 1
        if many and not any(f.get("level") in ("fail", "warn") for f in findings):
            continue
        shown += 1
        lines.append(escape(mtu_line(flow) or ""))
        for finding in findings:
            if finding.get("level") == "info" and (many or finding.get("code") in _IN_THE_LINE | {_ONCE}):
                continue
            lines.append(f"  {_MARK.get(finding.get('level'), '·')} {escape(str(finding.get('message')))}")
    if many:
        quiet = f"all {len(flows)}" if shown == 0 else f"{len(flows) - shown} more"
        lines.append(f"{quiet} directions with nothing to warn of: their MTU lines are in report.json and report.html")
    elif costs:
        for rest, n in costs.items():
            every = n == _plain(flows)
            who = ("the plain direction runs" if n == 1 else "both plain directions run" if n == 2 and every
                   else f"{'all ' if every else ''}{n} plain directions run")
            lines.append(f"  {_MARK['info']} {who} {escape(rest.removeprefix('runs plain '))} "
                         "[hint]· by design: Calico sizes the pod MTU for VXLAN[/]")
    return (["[hint]MTU per direction (pod / tunnel / underlay):[/]"] + lines) if lines else []


def delivery_section(report: dict[str, Any]) -> list[str]:
    """The echoes hop by hop of each direction with something to say (losses short of a failure,
    checks not made, a failure): the table's Echoes column already counts the others."""
    flows = [flow for flow in report.get("flows", []) if isinstance(flow.get("delivery"), dict)]
    lines = []
    for flow in flows:
        d = flow["delivery"]
        said = [f"  [warn]![/] {escape(note)}" for note in d.get("notes", [])]
        said += [f"  [hint]· not checked:[/] {escape(item)}" for item in flow.get("not_checked", [])]
        if not said and flow["verdict"] == "pass":
            continue
        sent = "" if d["sent"] is None else f"{d['sent']} sent · "
        lines.append(
            f"{_arrow(flow)}: {sent}{d['left_sender']} left · {d['arrived_receiver']} arrived · "
            f"{d['answered']} answered · {d['replies_back']} replies back"
        )
        lines += said
    if not lines:
        return []
    return ["[hint]Echo delivery per direction (requests sent / left the sender / arrived / answered / replies back):[/]"] + lines


def _plain(flows: list[dict[str, Any]]) -> int:
    return sum((flow.get("mtu") or {}).get("wire") == "plain" for flow in flows)


def reasons(report: dict[str, Any]) -> list[str]:
    lines = [f"[hint]·[/] {escape(note)}" for note in report.get("notes", [])]
    lines += delivery_section(report)
    lines += mtu_section(report)
    lines += [f"[fail]✗[/] {error}" for error in report.get("errors", [])]
    lines += [f"[warn]![/] {warning}" for warning in report.get("warnings", [])]
    for flow in report["flows"]:
        for reason in flow["reasons"]:
            if isinstance(flow.get("mtu"), dict) and said_in_mtu_section(reason):
                continue  # said in the MTU section, under its direction
            lines.append(f"[fail]✗[/] {_arrow(flow)}: {reason}")
        for because in flow.get("explanation", []):
            lines.append(f"  [hint]because[/] {escape(because)}")
    found = report.get("blame")
    if found:
        lines.append(f"[fail]✗[/] {escape(found['message'])}")
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


def summary(report: dict[str, Any], run_dir: Path, artifacts: list[str] | None = None) -> str:
    """The verdict line. `artifacts`: what the run directory holds (only what exists is named)."""
    s = report["summary"]
    word = "[pass]PASS[/]" if report["verdict"] == "pass" else "[fail]FAIL[/]"
    if s["flows"]:
        said = f"{word} {s['passed']}/{s['flows']} directions as expected"
        if report["verdict"] != "pass" and s["passed"] == s["flows"] and report.get("errors"):
            said += f", but the run is incomplete: {escape(str(report['errors'][0]))}"
    else:
        errors = report.get("errors") or []
        said = f"{word} no direction was judged" + (f": {escape(str(errors[0]))}" if errors else "")
    plan = report.get("plan") or {}
    if plan.get("kind") == "coverage":
        said += f" (coverage plan, seed {plan['seed']}: {plan['pairs']} pairs over {plan['nodes']} nodes)"
    suspects = [n["node"] for n in (report.get("blame") or {}).get("nodes") or []]
    if suspects:
        said += " · suspect: " + ", ".join(suspects)
    if artifacts is None:
        return f"{said} · {run_dir}/"
    return f"{said} · {run_dir}/" + (f" ({', '.join(artifacts)})" if artifacts else "")


def topology_tables(data: dict[str, Any]) -> list[Table]:
    overlay = data["overlay"]
    mtu = "auto" if overlay["mtu"] is None else overlay["mtu"]
    encapsulation = overlay.get("encapsulation", "vxlan")
    title = f"nodes · {encapsulation}Mode {overlay['mode']}"
    title += f", VNI {overlay['vni']}, UDP {overlay['port']}" if encapsulation == "vxlan" else ""
    title += f", MTU {mtu}"
    if overlay.get("ipv4") is False:  # IPv6 only: the IPv4 pool's fields say nothing
        mtu6 = "auto" if overlay.get("mtu6") is None else overlay["mtu6"]
        title = f"nodes · IPv6 only · vxlanMode {overlay['mode6']}, VNI {overlay['vni']}, UDP {overlay['port']}, MTU {mtu6}"
    elif overlay.get("mode6"):
        title += f" · IPv6 vxlanMode {overlay['mode6']}"
    wireguard = [f"IPv{f} UDP {overlay[f'wireguard_port{s}']}" for f, s in ((4, ""), (6, "6")) if overlay.get(f"wireguard{s}")]
    if wireguard:
        title += f" · WireGuard {', '.join(wireguard)}"
    nodes = Table(title=title, title_justify="left")
    dual = any(n.get("underlay6") for n in data["nodes"]) and any(n.get("underlay") for n in data["nodes"])
    for column in ("Node", "Underlay", *(("IPv6 underlay",) if dual else ()), "Pod block", "VTEP IP", "VTEP MAC"):
        nodes.add_column(column, no_wrap=True)
    for n in data["nodes"]:
        six = (n.get("underlay6") or "—",) if dual else ()
        if n["underlay"] is None:  # an IPv6-only node: its IPv6 side in the IPv4 columns
            nodes.add_row(n["name"], n.get("underlay6") or "—", *six, n.get("block6") or "—", n.get("vtep_ip6") or "—",
                          n.get("vtep_mac6") or "—")
            continue
        nodes.add_row(n["name"], n["underlay"], *six, n["block"] or "—", n["vtep_ip"] or "—", n["vtep_mac"] or "—")
    if not data["paths"]:
        return [nodes]
    paths = Table(title="expected wire format per direction", title_justify="left")
    families = {p.get("family", "IPv4") for p in data["paths"]}
    for column in ("From", "To", *(("Family",) if len(families) > 1 else ()), "Expected", "Because"):
        paths.add_column(column, no_wrap=column != "Because")
    for p in data["paths"]:
        style = "" if p["expected"] == "plain" else "bold"
        family = (p.get("family", "IPv4"),) if len(families) > 1 else ()
        paths.add_row(p["src"], p["dst"], *family, Text(p["expected"], style=style), p["reason"])
    return [nodes, paths]


def coverage_table(plan: dict[str, Any]) -> Table:
    """`topology --coverage`: each pair of the plan and what it covers that no earlier pair did."""
    table = Table(title=f"coverage plan (seed {plan['seed']}): {plan['pairs']} pairs, {plan['directions']} "
                        f"directions instead of {plan['all_pairs_directions']}", title_justify="left")
    for column in ("#", "Pair", "Why"):
        table.add_column(column, no_wrap=column != "Why", justify="right" if column == "#" else "left")
    for i, entry in enumerate(plan["plan"], 1):
        table.add_row(str(i), f"{entry['a']} ↔ {entry['b']}", escape("; ".join(entry["why"])))
    return table


def coverage_lines(plan: dict[str, Any]) -> list[str]:
    subnets = ", ".join(f"{s['subnet']} ({s['nodes']})" for s in plan["subnets"])
    classes = ", ".join(f"{c['class']} ({c['nodes']})" for c in plan["classes"])
    return [f"[hint]subnets:[/] {escape(subnets)}", f"[hint]node classes:[/] {escape(classes)}",
            f"[hint]the same plan:[/] vxcap run ... --coverage --seed {plan['seed']}"
            + (f" --peers {plan['peers']}" if plan["peers"] != 2 else "")]
