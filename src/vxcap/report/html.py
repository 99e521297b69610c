"""report.html: one self-contained page (inline CSS, no scripts, nothing fetched)
that a person opens from the run directory or a CI artifact.

It shows the verdicts, the path each direction should take with its encapsulation,
what the wire showed, each direction's packet layer by layer and its echoes at every
hop, the MTU figures, and the evidence files with the Wireshark/tshark lines that open
them. This module turns report.json and the manifest into plain data; the page itself is
the template templates/report.html (and its report.css), rendered by Jinja2 with
autoescaping: node names and reasons come from files a person may have written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from vxcap import __version__
from vxcap.core.manifest import Manifest
from vxcap.core.model import VXLAN_DEVICE
from vxcap.core.rundir import ALL_NODES_PCAPNG, JUNIT_XML, MANIFEST, REPORT_JSON, flow_pcapng_name
from vxcap.core.wireshark import flow_commands
from vxcap.report import packets
from vxcap.report.pictures import packet_view, timeline_view


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    # Compiling the template is about 30 ms of every `vxcap analyze`; Jinja2 keeps the compiled
    # code in a directory of the user's own (mode 0700, checked), keyed by the template's source.
    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):  # no private temporary directory to be had: compile each time
        return None


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vxcap.report", "templates"),
        autoescape=True,  # every value is escaped unless the template says otherwise
        undefined=jinja2.StrictUndefined,  # a name the view does not give is a bug, not an empty cell
        keep_trailing_newline=True,
        bytecode_cache=_bytecode_cache(),
    )
    return env.get_template("report.html")


@dataclass(frozen=True)
class _Place:
    """Where the run is and where the page goes: links are relative to the page."""

    run_dir: Path
    page_dir: Path

    def has(self, relative: str) -> bool:
        return (self.run_dir / relative).is_file()

    def href(self, relative: str) -> str:
        target = self.run_dir / relative
        return os.path.relpath(target, self.page_dir) if not Path(relative).is_absolute() else relative

    def link(self, relative: str, label: str | None = None) -> dict[str, Any]:
        """A relative link and the file's size; no href when the file is missing."""
        if not self.has(relative):
            return {"text": label or relative, "href": None, "size": None}
        size = (self.run_dir / relative).stat().st_size
        return {"text": label or relative, "href": quote(self.href(relative)), "size": _size(size)}


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _pair_key(flow: Mapping[str, Any]) -> tuple[str, str]:
    a, b = sorted((flow["src_node"], flow["dst_node"]))
    return a, b


def _anchor(flow: Mapping[str, Any]) -> str:
    return quote(f"flow-{flow['src_node']}-{flow['dst_node']}", safe="-_.")


def _outer(flow: Mapping[str, Any]) -> str:
    if flow.get("observed") in ("vxlan", "mixed") and flow.get("outer_src"):
        text = f"{flow['outer_src']} → {flow['outer_dst']}"
        if flow.get("udp_dport") is not None:
            text += f" :{flow['udp_dport']}"
        return text
    return "—"


def _rows(flows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    drawn = {id(flow) for flow in paths_shown(flows)}
    rows = []
    for i, flow in enumerate(flows):
        a, b = _pair_key(flow)
        # A pair's two directions sit next to each other in report.json: one pair cell for both.
        span = 0
        if i == 0 or _pair_key(flows[i - 1]) != (a, b):
            span = 1
            while i + span < len(flows) and _pair_key(flows[i + span]) == (a, b):
                span += 1
        requests, replies = packets.cell(flow)
        rows.append({
            "pair": f"{a} ↔ {b}", "pair_span": span, "anchor": _anchor(flow) if id(flow) in drawn else None,
            "src": flow["src_node"], "dst": flow["dst_node"], "reasons": list(flow.get("reasons", [])),
            "expected": flow["expected"], "observed": flow["observed"],
            "vni": "—" if flow.get("vni") is None else flow["vni"], "outer": _outer(flow),
            "counts": [requests] + ([replies] if replies else []), "verdict": flow["verdict"],
        })
    return rows


def _hop(kind: str, title: str, *lines: Any) -> dict[str, Any]:
    return {"arrow": False, "kind": kind, "title": title, "lines": [str(line) for line in lines if line]}


def _arrow(label: str = "", tunnel: bool = False) -> dict[str, Any]:
    return {"arrow": True, "label": label, "tunnel": tunnel}


def _node_facts(manifest: Manifest | None, name: str) -> tuple[str, str, str | None]:
    """(underlay address, underlay interface, subnet) of a node, as far as the manifest knows."""
    if manifest is None:
        return "", "underlay", None
    iface = next((c.iface for c in manifest.captures if c.node == name), "underlay")
    for node in manifest.topology.nodes:
        if node.name == name:
            return str(node.address), iface, str(node.subnet)
    return "", iface, None


def _vtep(flow: Mapping[str, Any], end: str) -> str:
    """The tunnel device the node's saved links name (Flannel's flannel.1), else Calico's."""
    mtus = ((flow.get("mtu") or {}).get("mtus") or {}).get(end) or {}
    return mtus.get("vxlan_ifname") or VXLAN_DEVICE


def _path(flow: Mapping[str, Any], manifest: Manifest | None) -> tuple[list[dict[str, Any]], str]:
    """The path the direction should take (through the VTEPs when it must be VXLAN), and its wire format."""
    src, dst = flow["src_node"], flow["dst_node"]
    src_addr, src_iface, src_net = _node_facts(manifest, src)
    dst_addr, dst_iface, dst_net = _node_facts(manifest, dst)
    routed = src_net is not None and dst_net is not None and src_net != dst_net
    middle = _hop("net", "router" if routed else "switch", f"{src_net} → {dst_net}" if routed else (src_net or ""))
    vxlan = flow["expected"] == "vxlan"
    overlay = manifest.topology.overlay if manifest is not None else None
    parts = [_hop("pod", "pod", flow["src_ip"], f"on {src}")]
    if vxlan:
        vni = overlay.vni if overlay else flow.get("vni")
        port = overlay.port if overlay else flow.get("udp_dport")
        parts += [_arrow(), _hop("vtep", _vtep(flow, "src"), "encapsulates", f"VNI {vni}"), _arrow(),
                  _hop("nic", src_iface, src_addr), _arrow(f"UDP {port}", tunnel=True), middle,
                  _arrow(f"VNI {vni}", tunnel=True), _hop("nic", dst_iface, dst_addr), _arrow(),
                  _hop("vtep", _vtep(flow, "dst"), "decapsulates")]
    else:
        parts += [_arrow(), _hop("nic", src_iface, src_addr), _arrow("plain IPv4"), middle, _arrow("plain IPv4"),
                  _hop("nic", dst_iface, dst_addr)]
    parts += [_arrow(), _hop("pod", "pod", flow["dst_ip"], f"on {dst}")]
    wire = (
        f"outer {src_addr} → {dst_addr}, UDP {overlay.port if overlay else '?'}, VNI {overlay.vni if overlay else '?'}; "
        f"inner {flow['src_ip']} → {flow['dst_ip']}"
        if vxlan
        else f"IPv4 {flow['src_ip']} → {flow['dst_ip']}, no encapsulation"
    )
    return parts, wire


def _seen(flow: Mapping[str, Any]) -> str:
    bits = [f"{flow['observed']}"]
    if flow.get("observed") in ("vxlan", "mixed"):
        if flow.get("vni") is not None:
            bits.append(f"VNI {flow['vni']}")
        if flow.get("udp_dport") is not None:
            bits.append(f"UDP {flow['udp_dport']}")
        if flow.get("outer_src"):
            bits.append(f"outer {flow['outer_src']} → {flow['outer_dst']}")
        if flow.get("inner_dst_mac"):
            bits.append(f"inner dst MAC {flow['inner_dst_mac']}")
    seen = ", ".join(f"{point}: {n}" for point, n in flow.get("seen_on", {}).items())
    bits.append(f"{flow.get('packets', 0)} packets" + (f" ({seen})" if seen else ""))
    if flow.get("max_frame_len"):
        bits.append(f"largest frame {flow['max_frame_len']} B")
    if flow.get("outer_fragments"):
        bits.append(f"{flow['outer_fragments']} outer fragments")
    return ", ".join(bits)


_MTU_FIGURES = (
    ("overhead", "encapsulation overhead", lambda v: f"{v['bytes']} B" if isinstance(v, Mapping) and "bytes" in v else v),
    ("underlay_mtu", "underlay MTU", None),
    ("max_inner_packet", "largest inner packet the underlay allows", None),
    ("path_limit", "largest DF pod packet that should cross", None),
    ("max_icmp_payload", "largest DF ping payload", None),
    ("tcp_mss", "TCP MSS", None),
    ("max_frame", "largest frame on the wire", None),
)


def _mtu(mtu: Any) -> dict[str, Any] | None:
    """The MTU figures of one path; any shape report.json grows is shown, never an error."""
    if not isinstance(mtu, Mapping):
        return None
    rows: list[tuple[str, Any]] = []
    for key, label, fmt in _MTU_FIGURES:
        if mtu.get(key) is None:
            continue
        value = fmt(mtu[key]) if fmt else mtu[key]
        if key == "underlay_mtu" and mtu.get("underlay_mtu_assumed"):
            value = f"{value} (assumed: not read from the nodes)"
        rows.append((label, value))
    mtus = mtu.get("mtus")
    if isinstance(mtus, Mapping):
        for end in ("src", "dst"):
            node = mtus.get(end)
            if isinstance(node, Mapping):
                links = [f"{node.get(f'{k}_ifname') or k} {node.get(f'{k}_mtu')}"
                         for k in ("pod", "vxlan", "underlay") if node.get(f"{k}_mtu") is not None]
                if links:
                    rows.append((f"MTUs on {node.get('node') or end}", ", ".join(links)))
    measured = mtu.get("measured")
    if isinstance(measured, Mapping) and measured.get("largest_df_payload") is not None:
        exact = "" if measured.get("largest_df_payload_exact", True) else " (bound)"
        rows.append(("largest DF payload measured", f"{measured['largest_df_payload']}{exact}"))
    if isinstance(measured, Mapping) and measured.get("tcp_mss_seen"):
        rows.append(("TCP MSS seen in SYNs", ", ".join(str(v) for v in measured["tcp_mss_seen"])))
    findings = []
    for finding in mtu.get("findings", []) or []:
        if isinstance(finding, Mapping):
            level = str(finding.get("level", "info"))
            findings.append((level if level in ("fail", "warn") else "info", level.upper(), finding.get("message")))
    if not rows and not findings:
        return None
    return {"rows": rows, "findings": findings}


def _flow_mtu(report: Mapping[str, Any], flow: Mapping[str, Any]) -> Any:
    """A flow's `mtu` section, wherever report.json keeps it: on the flow, or in a
    top-level `mtu` list or mapping keyed by direction."""
    if flow.get("mtu") is not None:
        return flow["mtu"]
    section = report.get("mtu")
    entries: Iterable[Any] = ()
    if isinstance(section, list):
        entries = section
    elif isinstance(section, Mapping):
        keyed = section.get(f"{flow['src_node']} -> {flow['dst_node']}")
        if keyed is not None:
            return keyed
        entries = section.values()
    for entry in entries:
        if isinstance(entry, Mapping) and (entry.get("src_node"), entry.get("dst_node")) == (
            flow["src_node"],
            flow["dst_node"],
        ):
            return entry.get("mtu", entry)
    return None


def _capture_for_commands(flow: Mapping[str, Any], manifest: Manifest | None, place: _Place) -> str:
    """all-nodes.pcapng shows the flow on every node at once; without evidence, the sender's capture."""
    if place.has(ALL_NODES_PCAPNG) or manifest is None:
        return ALL_NODES_PCAPNG
    for cap in manifest.captures:
        if cap.node == flow["src_node"]:
            return cap.file
    return manifest.captures[0].file if manifest.captures else ALL_NODES_PCAPNG


def _direction(report: Mapping[str, Any], flow: Mapping[str, Any], manifest: Manifest | None, place: _Place) -> dict:
    port = manifest.topology.overlay.port if manifest is not None else 4789
    commands = flow_commands(flow, _capture_for_commands(flow, manifest, place), port)
    path, wire = _path(flow, manifest)
    return {
        "anchor": _anchor(flow), "verdict": flow["verdict"], "src": flow["src_node"], "dst": flow["dst_node"],
        "expected": flow["expected"], "because": flow.get("expected_because", ""),
        "path": path, "expected_wire": wire, "seen": _seen(flow),
        "packet": packet_view(flow), "timeline": timeline_view(flow),
        "reasons": list(flow.get("reasons", [])), "mtu": _mtu(_flow_mtu(report, flow)),
        "evidence": place.link(flow_pcapng_name(flow["src_node"], flow["dst_node"], flow.get("family", "IPv4"))),
        "wireshark": commands.wireshark, "tshark": commands.tshark,
    }


# Beyond this many directions (a coverage or all-pairs run on a large cluster) the Paths
# section draws the failing directions only: drawing a thousand passing paths made the page
# megabytes long and took most of a coverage run's report writing. Every direction keeps its
# row, verdict and reasons in the verdict table, and all of its figures in report.json.
PATHS_LIMIT = 64


def paths_shown(flows: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The directions whose path, packet and MTU figures the page draws."""
    if len(flows) <= PATHS_LIMIT:
        return flows
    return [flow for flow in flows if flow["verdict"] != "pass"]


def _pairs(report: Mapping[str, Any], manifest: Manifest | None, place: _Place) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for flow in paths_shown(list(report.get("flows", []))):
        groups.setdefault(_pair_key(flow), []).append(flow)
    return [{"title": f"{a} ↔ {b}", "directions": [_direction(report, f, manifest, place) for f in flows]}
            for (a, b), flows in groups.items()]


def _files(manifest: Manifest | None, place: _Place) -> list[tuple[str, dict[str, Any]]]:
    rows = [("all nodes, merged in time order (one interface per node)", ALL_NODES_PCAPNG)]
    if manifest is not None:
        rows += [(f"capture on {c.node}/{c.iface}", c.file) for c in manifest.captures]
    rows += [("what was tested", MANIFEST), ("verdicts", REPORT_JSON), ("test results", JUNIT_XML)]
    return [(what, place.link(file)) for what, file in rows]


def render_html(
    report: Mapping[str, Any], manifest: Manifest | None, run_dir: Path, *, page_dir: Path | None = None
) -> str:
    """The page for one run. Links to its files are relative to `page_dir`, the
    directory the page will be written to (default: `run_dir`, as report.html)."""
    run_dir = Path(run_dir)
    place = _Place(run_dir.resolve(), Path(page_dir or run_dir).resolve())
    summary = report.get("summary", {})
    verdict = report.get("verdict", "fail")
    run_id = report.get("run_id")
    heading = f"vxcap run {run_id}" if run_id else f"vxcap: {run_dir.resolve().name}"
    flows = list(report.get("flows", []))
    overlay = manifest.topology.overlay if manifest is not None else None
    intent = ""
    if overlay:
        intent = f"vxlanMode {overlay.mode.value}, VNI {overlay.vni}, UDP {overlay.port}"
        intent += f", vxlan MTU {overlay.mtu}" if overlay.mtu else ""
    return _template().render(
        title=f"{str(verdict).upper()} · {heading}", heading=heading, verdict=verdict, intent=intent,
        passed=summary.get("passed", 0), judged=summary.get("flows", 0), errors=list(report.get("errors", [])),
        rows=_rows(flows), count_header=packets.header(report), count_legend=packets.legend(report),
        pairs=_pairs(report, manifest, place), paths_left_out=len(flows) - len(paths_shown(flows)),
        report_json=quote(place.href(REPORT_JSON)), files=_files(manifest, place), version=__version__,
    )
