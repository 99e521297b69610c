"""report.html: one self-contained page (inline CSS, no scripts, nothing fetched)
that a person opens from the run directory or a CI artifact.

It shows the verdicts, the path each direction should take with its
encapsulation, what the wire showed, the MTU figures when report.json has them,
and the evidence files with the Wireshark/tshark lines that open them. Every
value is escaped: node names and reasons come from files a person may have written.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vxcap import __version__
from vxcap.core.manifest import Manifest
from vxcap.core.wireshark import ALL_NODES_FILE, evidence_file, flow_commands
from vxcap.report import packets
from vxcap.report.pictures import CSS as PICTURES_CSS
from vxcap.report.pictures import packet_picture, timeline

VXLAN_DEVICE = "vxlan.calico"  # the VTEP Calico creates on every node

_CSS = """
:root{--pass:#1a7f37;--pass-bg:#dafbe1;--fail:#cf222e;--fail-bg:#ffebe9;--warn:#9a6700;--warn-bg:#fff8c5;
--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--card:#fff;--page:#f6f8fa;--accent:#0969da;--tunnel:#ddf4ff}
*{box-sizing:border-box}
body{margin:0;background:var(--page);color:var(--ink);font:15px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif}
main{max-width:1320px;margin:0 auto;padding:24px 28px 48px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:13px}
h1{font-size:22px;margin:0}
h2{font-size:18px;margin:32px 0 12px}
h3{font-size:15px;margin:0 0 10px}
header{display:flex;align-items:center;gap:18px;flex-wrap:wrap;padding:18px 22px;background:var(--card);
border:1px solid var(--line);border-radius:10px}
header .meta{color:var(--muted);font-size:13px}
.badge{display:inline-block;font-weight:700;letter-spacing:.04em;border-radius:6px;padding:2px 9px;font-size:13px}
.badge.big{font-size:20px;padding:6px 16px}
.pass{color:var(--pass)}.fail{color:var(--fail)}
.badge.pass{background:var(--pass-bg);color:var(--pass);border:1px solid #aceebb}
.badge.fail{background:var(--fail-bg);color:var(--fail);border:1px solid #ffcecb}
.badge.warn{background:var(--warn-bg);color:var(--warn);border:1px solid #f5e0a0}
.badge.info{background:#eef1f4;color:var(--muted);border:1px solid var(--line)}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin:14px 0}
.errors{border-color:#ffcecb;background:var(--fail-bg)}
table{border-collapse:collapse;width:100%;background:var(--card)}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);background:#f6f8fa}
td.num{text-align:right}
tr.failed td:not(.paircell){background:#fff8f7}
td.paircell{background:#fff;font-weight:600}
.tablewrap{border:1px solid var(--line);border-radius:10px;overflow:hidden}
ul.reasons{margin:6px 0 0;padding-left:20px;color:var(--fail)}
.path{display:flex;align-items:stretch;flex-wrap:wrap;gap:0;margin:10px 0 6px}
.hop{border:1px solid var(--line);border-radius:8px;padding:6px 10px;background:#fff;min-width:92px}
.hop b{display:block;font-size:13px}
.hop span{display:block;color:var(--muted);font-size:12px;font-family:ui-monospace,Menlo,Consolas,monospace}
.hop.pod{border-color:#8c959f;background:#f6f8fa}
.hop.vtep{border-color:#54aeff;background:var(--tunnel)}
.hop.net{border-style:dashed}
.arrow{display:flex;flex-direction:column;justify-content:center;align-items:center;padding:0 6px;color:var(--muted);
min-width:34px;font-size:12px}
.arrow i{font-style:normal;font-size:18px;line-height:1}
.arrow.tunnel{background:var(--tunnel);border-radius:6px;color:#0550ae;padding:0 10px}
.wire{font-size:13px;margin:4px 0 0}
.wire .label{color:var(--muted)}
.direction{border-top:1px solid var(--line);padding-top:12px;margin-top:12px}
.direction:first-of-type{border-top:none;padding-top:0;margin-top:0}
.dirhead{display:flex;gap:10px;align-items:center;flex-wrap:wrap}
.why{color:var(--muted);font-size:13px}
pre{margin:4px 0 8px;padding:8px 10px;background:#f6f8fa;border:1px solid var(--line);border-radius:6px;
white-space:pre-wrap;word-break:break-all}
a{color:var(--accent)}
dl.mtu{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:6px 0;font-size:13px}
dl.mtu dt{color:var(--muted)}dl.mtu dd{margin:0}
.mtu-block{margin:12px 0;padding:10px 14px;border:1px solid var(--line);border-radius:8px;background:#fbfcfd}
ul.findings{list-style:none;padding:0;margin:8px 0 0;font-size:13px}ul.findings li{margin:4px 0}
.files td:first-child{white-space:nowrap}
footer{color:var(--muted);font-size:12px;margin-top:36px}
.pictures{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:18px;margin:10px 0}
.pictures h4{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:0}
""" + PICTURES_CSS


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _badge(verdict: str, big: bool = False) -> str:
    kind = "pass" if verdict == "pass" else "fail"
    return f'<span class="badge {kind}{" big" if big else ""}">{"PASS" if kind == "pass" else "FAIL"}</span>'


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

    def link(self, relative: str, label: str | None = None) -> str:
        """A relative link, and the file's size; plain text when the file is missing."""
        text = _e(label or relative)
        if not self.has(relative):
            return f'<span class="mono">{text}</span> <span class="why">(not written)</span>'
        size = (self.run_dir / relative).stat().st_size
        return f'<a class="mono" href="{_e(quote(self.href(relative)))}">{text}</a> <span class="why">({_size(size)})</span>'


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _pair_key(flow: Mapping[str, Any]) -> tuple[str, str]:
    a, b = sorted((flow["src_node"], flow["dst_node"]))
    return a, b


def _outer(flow: Mapping[str, Any]) -> str:
    if flow.get("observed") in ("vxlan", "mixed") and flow.get("outer_src"):
        text = f"{flow['outer_src']} → {flow['outer_dst']}"
        if flow.get("udp_dport") is not None:
            text += f" :{flow['udp_dport']}"
        return text
    return "—"


def _verdict_table(report: Mapping[str, Any]) -> str:
    rows = []
    flows = list(report.get("flows", []))
    for i, flow in enumerate(flows):
        a, b = _pair_key(flow)
        reasons = "".join(f"<li>{_e(r)}</li>" for r in flow.get("reasons", []))
        # A pair's two directions sit next to each other in report.json: one pair cell for both.
        pair_cell = ""
        if i == 0 or _pair_key(flows[i - 1]) != (a, b):
            span = 1
            while i + span < len(flows) and _pair_key(flows[i + span]) == (a, b):
                span += 1
            pair_cell = f'<td class="paircell" rowspan="{span}">{_e(a)} ↔ {_e(b)}</td>'
        rows.append(
            f'<tr class="{"failed" if flow["verdict"] != "pass" else ""}">'
            f"{pair_cell}"
            f'<td><a href="#{_anchor(flow)}">{_e(flow["src_node"])} → {_e(flow["dst_node"])}</a>'
            + (f'<ul class="reasons">{reasons}</ul>' if reasons else "")
            + "</td>"
            f"<td>{_e(flow['expected'])}</td>"
            f"<td>{_e(flow['observed'])}</td>"
            f'<td class="num">{_e("—" if flow.get("vni") is None else flow["vni"])}</td>'
            f'<td class="mono">{_e(_outer(flow))}</td>'
            f'<td class="num">{_packets(flow)}</td>'
            f"<td>{_badge(flow['verdict'])}</td>"
            "</tr>"
        )
    head = "".join(
        f"<th>{_e(h)}</th>"
        for h in ("Pair", "Direction", "Expected", "Observed", "VNI", "Outer IPs", packets.header(report), "Verdict")
    )
    return (f'<div class="tablewrap"><table id="verdicts"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
            f'</table></div><p class="why">{_e(packets.legend(report))}</p>')


def _packets(flow: Mapping[str, Any]) -> str:
    requests, replies = packets.cell(flow)
    return _e(requests) + ("" if replies is None else f"<br>{_e(replies)}")


def _anchor(flow: Mapping[str, Any]) -> str:
    return quote(f"flow-{flow['src_node']}-{flow['dst_node']}", safe="-_.")


def _hop(kind: str, title: str, *lines: str) -> str:
    spans = "".join(f"<span>{_e(line)}</span>" for line in lines if line)
    return f'<div class="hop {kind}"><b>{_e(title)}</b>{spans}</div>'


def _arrow(label: str = "", tunnel: bool = False) -> str:
    return f'<div class="arrow{" tunnel" if tunnel else ""}"><i>→</i>{_e(label)}</div>'


def _node_facts(manifest: Manifest | None, name: str) -> tuple[str, str, str | None]:
    """(underlay address, underlay interface, subnet) of a node, as far as the manifest knows."""
    if manifest is None:
        return "", "underlay", None
    iface = next((c.iface for c in manifest.captures if c.node == name), "underlay")
    for node in manifest.topology.nodes:
        if node.name == name:
            return str(node.address), iface, str(node.subnet)
    return "", iface, None


def _path(flow: Mapping[str, Any], manifest: Manifest | None) -> str:
    """The path the direction should take: through the VTEPs when it must be VXLAN."""
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
        parts += [
            _arrow(),
            _hop("vtep", VXLAN_DEVICE, "encapsulates", f"VNI {vni}"),
            _arrow(),
            _hop("nic", src_iface, src_addr),
            _arrow(f"UDP {port}", tunnel=True),
            middle,
            _arrow(f"VNI {vni}", tunnel=True),
            _hop("nic", dst_iface, dst_addr),
            _arrow(),
            _hop("vtep", VXLAN_DEVICE, "decapsulates"),
        ]
    else:
        parts += [_arrow(), _hop("nic", src_iface, src_addr), _arrow("plain IPv4"), middle, _arrow("plain IPv4"),
                  _hop("nic", dst_iface, dst_addr)]
    parts += [_arrow(), _hop("pod", "pod", flow["dst_ip"], f"on {dst}")]
    header = (
        f"outer {src_addr} → {dst_addr}, UDP {overlay.port if overlay else '?'}, VNI {overlay.vni if overlay else '?'}; "
        f"inner {flow['src_ip']} → {flow['dst_ip']}"
        if vxlan
        else f"IPv4 {flow['src_ip']} → {flow['dst_ip']}, no encapsulation"
    )
    return (
        f'<div class="path" aria-label="expected path">{"".join(parts)}</div>'
        f'<p class="wire"><span class="label">expected on the wire:</span> <span class="mono">{_e(header)}</span></p>'
    )


def _observed(flow: Mapping[str, Any]) -> str:
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
    kind = "pass" if flow["verdict"] == "pass" else "fail"
    return (
        f'<p class="wire"><span class="label">seen on the wire:</span> '
        f'<span class="mono {kind}">{_e(", ".join(bits))}</span></p>'
    )


_MTU_FIGURES = (
    ("overhead", "encapsulation overhead", lambda v: f"{v['bytes']} B" if isinstance(v, Mapping) and "bytes" in v else v),
    ("underlay_mtu", "underlay MTU", None),
    ("max_inner_packet", "largest inner packet the underlay allows", None),
    ("path_limit", "largest DF pod packet that should cross", None),
    ("max_icmp_payload", "largest DF ping payload", None),
    ("tcp_mss", "TCP MSS", None),
    ("max_frame", "largest frame on the wire", None),
)


def _mtu(mtu: Any) -> str:
    """The MTU figures of one path; any shape report.json grows is shown, never an error."""
    if not isinstance(mtu, Mapping):
        return ""
    rows = []
    for key, label, fmt in _MTU_FIGURES:
        if mtu.get(key) is None:
            continue
        value = fmt(mtu[key]) if fmt else mtu[key]
        if key == "underlay_mtu" and mtu.get("underlay_mtu_assumed"):
            value = f"{value} (assumed: not read from the nodes)"
        rows.append(f"<dt>{_e(label)}</dt><dd class=\"mono\">{_e(value)}</dd>")
    mtus = mtu.get("mtus")
    if isinstance(mtus, Mapping):
        for end in ("src", "dst"):
            node = mtus.get(end)
            if isinstance(node, Mapping):
                links = [
                    f"{node.get(f'{k}_ifname') or k} {node.get(f'{k}_mtu')}"
                    for k in ("pod", "vxlan", "underlay")
                    if node.get(f"{k}_mtu") is not None
                ]
                if links:
                    rows.append(f"<dt>MTUs on {_e(node.get('node') or end)}</dt><dd class=\"mono\">{_e(', '.join(links))}</dd>")
    measured = mtu.get("measured")
    if isinstance(measured, Mapping) and measured.get("largest_df_payload") is not None:
        exact = "" if measured.get("largest_df_payload_exact", True) else " (bound)"
        rows.append(f"<dt>largest DF payload measured</dt><dd class=\"mono\">{_e(measured['largest_df_payload'])}{exact}</dd>")
    if isinstance(measured, Mapping) and measured.get("tcp_mss_seen"):
        seen = ", ".join(str(v) for v in measured["tcp_mss_seen"])
        rows.append(f"<dt>TCP MSS seen in SYNs</dt><dd class=\"mono\">{_e(seen)}</dd>")
    findings = []
    for finding in mtu.get("findings", []) or []:
        if isinstance(finding, Mapping):
            level = str(finding.get("level", "info"))
            kind = level if level in ("fail", "warn") else "info"
            findings.append(f'<li><span class="badge {kind}">{_e(level.upper())}</span> {_e(finding.get("message"))}</li>')
    if not rows and not findings:
        return ""
    body = f'<dl class="mtu">{"".join(rows)}</dl>' if rows else ""
    if findings:
        body += f'<ul class="findings">{"".join(findings)}</ul>'
    return f'<div class="mtu-block"><h3>MTU</h3>{body}</div>'


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
    if place.has(ALL_NODES_FILE) or manifest is None:
        return ALL_NODES_FILE
    for cap in manifest.captures:
        if cap.node == flow["src_node"]:
            return cap.file
    return manifest.captures[0].file if manifest.captures else ALL_NODES_FILE


def _direction(report: Mapping[str, Any], flow: Mapping[str, Any], manifest: Manifest | None, place: _Place) -> str:
    port = manifest.topology.overlay.port if manifest is not None else 4789
    capture = _capture_for_commands(flow, manifest, place)
    commands = flow_commands(flow, capture, port)
    reasons = "".join(f"<li>{_e(r)}</li>" for r in flow.get("reasons", []))
    mtu = _mtu(_flow_mtu(report, flow))
    return (
        f'<section class="direction" id="{_anchor(flow)}">'
        f'<div class="dirhead">{_badge(flow["verdict"])} <h3 style="margin:0">{_e(flow["src_node"])} → {_e(flow["dst_node"])}</h3>'
        f'<span class="why">expected {_e(flow["expected"])}: {_e(flow.get("expected_because", ""))}</span></div>'
        + _path(flow, manifest)
        + _observed(flow)
        + '<div class="pictures"><div><h4>the packet, layer by layer</h4>'
        + packet_picture(flow, _e)
        + "</div><div><h4>the probes at each hop</h4>"
        + (timeline(flow, _e) or '<p class="why">nothing counted</p>')
        + "</div></div>"
        + (f'<ul class="reasons">{reasons}</ul>' if reasons else "")
        + mtu
        + f'<p class="wire"><span class="label">evidence:</span> {place.link(evidence_file(flow["src_node"], flow["dst_node"]))}</p>'
        + '<p class="wire"><span class="label">Wireshark (from the run directory):</span></p>'
        + f'<pre class="mono">{_e(commands.wireshark)}</pre>'
        + f'<pre class="mono">{_e(commands.tshark)}</pre>'
        + "</section>"
    )


def _pairs(report: Mapping[str, Any], manifest: Manifest | None, place: _Place) -> str:
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for flow in report.get("flows", []):
        groups.setdefault(_pair_key(flow), []).append(flow)
    cards = []
    for (a, b), flows in groups.items():
        body = "".join(_direction(report, f, manifest, place) for f in flows)
        cards.append(f'<div class="card pair"><h3>{_e(a)} ↔ {_e(b)}</h3>{body}</div>')
    return "".join(cards)


def _files(manifest: Manifest | None, place: _Place) -> str:
    rows = [("all nodes, merged in time order (one interface per node)", ALL_NODES_FILE)]
    if manifest is not None:
        rows += [(f"capture on {c.node}/{c.iface}", c.file) for c in manifest.captures]
    rows += [("what was tested", "manifest.json"), ("verdicts", "report.json"), ("test results", "junit.xml")]
    body = "".join(f"<tr><td>{_e(what)}</td><td>{place.link(file)}</td></tr>" for what, file in rows)
    return f'<div class="tablewrap"><table class="files"><tbody>{body}</tbody></table></div>'


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
    errors = "".join(f"<li>{_e(e)}</li>" for e in report.get("errors", []))
    flows = report.get("flows", [])
    overlay = manifest.topology.overlay if manifest is not None else None
    intent = (
        f"vxlanMode {overlay.mode.value}, VNI {overlay.vni}, UDP {overlay.port}"
        + (f", vxlan MTU {overlay.mtu}" if overlay.mtu else "")
        if overlay
        else ""
    )
    body = [
        "<header>",
        _badge(verdict, big=True),
        f"<div><h1>{_e(heading)}</h1>",
        f'<div class="meta">{_e(summary.get("passed", 0))}/{_e(summary.get("flows", 0))} directions as expected'
        + (f" · {_e(intent)}" if intent else "")
        + "</div></div>",
        "</header>",
    ]
    if errors:
        body.append(f'<div class="card errors"><h3 class="fail">What kept the run from judging</h3><ul>{errors}</ul></div>')
    body.append("<h2>Verdicts</h2>")
    body.append(_verdict_table(report) if flows else '<p class="why">No direction was judged.</p>')
    if flows:
        body.append("<h2>Paths</h2>")
        body.append(_pairs(report, manifest, place))
    body.append("<h2>Evidence</h2>")
    body.append(_files(manifest, place))
    body.append(
        f'<footer>vxcap {_e(__version__)} · Wireshark registers VXLAN on UDP 4789 only: the lines above add '
        "<code>-d udp.port==PORT,vxlan</code> for any other port.</footer>"
    )
    title = f"{verdict.upper()} · {heading}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f'<body><main>{"".join(body)}</main></body></html>\n'
    )
