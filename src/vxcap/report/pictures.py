"""The pictures of report.html, as inline HTML with CSS only (no scripts, nothing fetched):
each direction's packet drawn as its layers with their sizes against the MTU budget, and
each direction's probes at every hop, so a lost packet is a gap in a picture.
Every value is escaped by the caller's `e`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

ETHERNET, IPV4, UDP, VXLAN, ICMP = 14, 20, 8, 8, 8

CSS = """
.pkt{margin:10px 0 4px}
.layers{display:flex;align-items:stretch;height:52px;border:1px solid var(--line);border-radius:6px;overflow:hidden;
font-size:11px;line-height:1.2}
.layer{display:flex;flex-direction:column;justify-content:center;align-items:center;padding:0 2px;min-width:40px;
border-right:1px solid rgba(0,0,0,.12);text-align:center;overflow:hidden;font-size:10.5px}
.layer b{font-weight:600}.layer span{font-family:ui-monospace,Menlo,Consolas,monospace}
.layer.outer{background:#ddf4ff;color:#0550ae}.layer.inner{background:#f6f8fa}.layer.payload{background:#dafbe1}
.budget{position:relative;height:22px;margin-top:3px;font-size:11px;color:var(--muted)}
.budget .span{position:absolute;top:0;height:20px;border:1px solid #8c959f;border-top:none;border-radius:0 0 4px 4px;
text-align:center;padding-top:3px;white-space:nowrap;overflow:hidden}
.budget .span.over{border-color:#0969da;color:#0550ae}
.timeline{display:grid;gap:4px 10px;align-items:center;margin:10px 0 4px;font-size:12px}
.timeline .at{color:var(--muted);font-size:12px;white-space:nowrap}
.dots{display:flex;flex-wrap:wrap;gap:3px}
.dot{width:12px;height:12px;border-radius:50%;background:var(--pass);display:inline-block}
.dot.lost{background:#fff;border:2px solid var(--fail)}
.timeline .count{font-family:ui-monospace,Menlo,Consolas,monospace;text-align:right}
"""

MAX_DOTS = 40  # beyond this many echoes a hop shows its count only
FLOOR = 120  # the drawn width of a header, in bytes' worth: a 14-byte header still reads next to 1422 bytes


def layers(flow: Mapping[str, Any]) -> list[tuple[str, int | None, str]]:
    """(layer, bytes, kind) of this direction's largest DF echo on the wire, outermost first.
    The payload is the measured (else computed) largest DF ping payload; None when unknown."""
    mtu = flow.get("mtu") if isinstance(flow.get("mtu"), Mapping) else {}
    payload = mtu.get("max_icmp_payload")
    measured = (mtu.get("measured") or {}).get("largest_df_payload") if isinstance(mtu.get("measured"), Mapping) else None
    payload = measured if isinstance(measured, int) else payload if isinstance(payload, int) else None
    inner = [("Ethernet", ETHERNET, "inner"), ("IPv4", IPV4, "inner"), ("ICMP", ICMP, "inner"), ("payload", payload, "payload")]
    if flow.get("expected") != "vxlan":
        return [("Ethernet", ETHERNET, "inner")] + inner[1:]
    return [("outer Ethernet", ETHERNET, "outer"), ("outer IPv4", IPV4, "outer"), ("UDP", UDP, "outer"),
            ("VXLAN", VXLAN, "outer"), ("inner Ethernet", ETHERNET, "inner")] + inner[1:]


def packet_picture(flow: Mapping[str, Any], e: Callable[[Any], str]) -> str:
    parts = layers(flow)
    known = [n for _, n, _ in parts if n is not None]
    # Headers are tiny next to a 1400-byte payload: drawn at a floor width so each stays legible.
    total = sum(max(n, FLOOR) if n is not None else 600 for _, n, _ in parts)
    cells = []
    for name, n, kind in parts:
        width = (max(n, FLOOR) if n is not None else 600) / total * 100
        cells.append(f'<div class="layer {kind}" style="flex:0 0 {width:.2f}%"><b>{e(name)}</b>'
                     f'<span>{e("?" if n is None else f"{n} B")}</span></div>')
    mtu = flow.get("mtu") if isinstance(flow.get("mtu"), Mapping) else {}
    complete = len(known) == len(parts)
    frame = sum(known) if complete else None
    widths = [(max(n, FLOOR) if n is not None else 600) / total * 100 for _, n, _ in parts]
    # The budgets: what the underlay MTU must hold (all after the outer Ethernet header); below it,
    # for VXLAN, the tunnel's overhead and the pod's own packet, which the pod MTU must hold.
    ip_packet = sum(n for _, n, _ in parts[1:]) if complete else None
    underlay = mtu.get("underlay_mtu")
    src_mtus = ((mtu.get("mtus") or {}).get("src") or {}) if isinstance(mtu.get("mtus"), Mapping) else {}
    pod_mtu = src_mtus.get("pod_mtu") if isinstance(src_mtus, Mapping) else None
    rows = [[(widths[0], sum(widths[1:]), _fits("IP packet", ip_packet, "underlay MTU", underlay), "")]]
    if flow.get("expected") == "vxlan":
        overhead = (mtu.get("overhead") or {}).get("bytes") if isinstance(mtu.get("overhead"), Mapping) else None
        pod_packet = sum(n for _, n, _ in parts[5:]) if complete else None
        rows.append([(widths[0], sum(widths[1:5]), f"overhead {overhead or IPV4 + UDP + VXLAN + ETHERNET} B", "over"),
                     (sum(widths[:5]), sum(widths[5:]), _fits("pod packet", pod_packet, "pod MTU", pod_mtu), "")])
    elif pod_mtu is not None:
        rows[0][0] = (widths[0], sum(widths[1:]), _fits("IP packet", ip_packet, "pod MTU", pod_mtu)
                      + ("" if underlay is None else f" · underlay MTU {underlay}"), "")
    budget = "".join(
        '<div class="budget">' + "".join(
            f'<div class="span {kind}" style="left:{left:.2f}%;width:{width:.2f}%">{e(text)}</div>'
            for left, width, text, kind in row) + "</div>"
        for row in rows
    )
    caption = (f"the largest DF echo that crosses, as a {frame}-byte frame" if frame is not None
               else "the largest DF echo that crosses (its payload was not measured)")
    return (f'<div class="pkt" aria-label="packet layers"><div class="why">{e(caption)}</div>'
            f'<div class="layers">{"".join(cells)}</div>{budget}</div>')


def _fits(what: str, size: int | None, limit_name: str, limit: Any) -> str:
    text = f"{what} {size} B" if size is not None else what
    return text + (f" of {limit_name} {limit}" if limit is not None else "")


HOPS = (
    ("left_sender", "left {src}"),
    ("arrived_receiver", "arrived at {dst}"),
    ("answered", "answered by {dst}"),
    ("replies_back", "reply back at {src}"),
)


def timeline(flow: Mapping[str, Any], e: Callable[[Any], str]) -> str:
    """The echoes at each hop on the wire, one dot per echo, hollow where fewer were seen than the
    most any hop saw (or the prober sent), from report.json's `delivery`. Without it (older
    reports), this direction's frames at each capture point."""
    src, dst = flow["src_node"], flow["dst_node"]
    delivery = flow.get("delivery")
    rows: list[tuple[str, int | None]] = []
    sent = None
    if isinstance(delivery, Mapping):
        sent = delivery.get("sent")
        rows = [(label.format(src=src, dst=dst), delivery.get(key)) for key, label in HOPS if key in delivery]
        unit = "echoes"
    else:
        rows = [(f"frames on {point}", n) for point, n in (flow.get("seen_on") or {}).items()]
        unit = "frames"
    if not rows:
        return ""
    whole = max([n for _, n in rows if isinstance(n, int)] + ([sent] if isinstance(sent, int) else []) or [0])
    html = []
    for label, n in rows:
        dots = ""
        if isinstance(n, int) and whole <= MAX_DOTS:
            dots = '<i class="dot"></i>' * n + '<i class="dot lost" title="not seen here"></i>' * (whole - n)
        count = "?" if n is None else f"{n}/{whole}"
        html.append(f'<div class="at">{e(label)}</div><div class="dots">{dots}</div><div class="count">{e(count)}</div>')
    note = ""
    if isinstance(sent, int):
        note = (f'<p class="why">the prober sent {sent} echo request{"s" if sent != 1 else ""}; the wire counts '
                "include the DF ping ladder's</p>")
    return (f'<div class="timeline" style="grid-template-columns:max-content 1fr max-content" '
            f'aria-label="{e(unit)} at each hop">{"".join(html)}</div>{note}')
