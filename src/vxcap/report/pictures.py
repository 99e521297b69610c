"""The pictures of report.html, as plain data the template draws with CSS alone: each
direction's packet as its layers with their sizes against the MTU budget, and its echoes
at every hop, so a lost packet is a gap in a picture."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ETHERNET, IPV4, UDP, VXLAN, ICMP = 14, 20, 8, 8, 8
MAX_DOTS = 40  # beyond this many echoes a hop shows its count only
FLOOR = 120  # the drawn width of a header, in bytes' worth: a 14-byte header still reads next to 1422 bytes
UNKNOWN_WIDTH = 600  # an unmeasured payload, drawn this wide


def layers(flow: Mapping[str, Any]) -> list[tuple[str, int | None, str]]:
    """(layer, bytes, kind) of this direction's largest DF echo on the wire, outermost first.
    The payload is the measured (else computed) largest DF ping payload; None when unknown."""
    mtu = _mapping(flow.get("mtu"))
    measured = _mapping(mtu.get("measured")).get("largest_df_payload")
    computed = mtu.get("max_icmp_payload")
    payload = measured if isinstance(measured, int) else computed if isinstance(computed, int) else None
    inner = [("IPv4", IPV4, "inner"), ("ICMP", ICMP, "inner"), ("payload", payload, "payload")]
    if flow.get("expected") != "vxlan":
        return [("Ethernet", ETHERNET, "inner")] + inner
    return [("outer Ethernet", ETHERNET, "outer"), ("outer IPv4", IPV4, "outer"), ("UDP", UDP, "outer"),
            ("VXLAN", VXLAN, "outer"), ("inner Ethernet", ETHERNET, "inner")] + inner


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _fits(what: str, size: int | None, limit_name: str, limit: Any) -> str:
    text = f"{what} {size} B" if size is not None else what
    return text + (f" of {limit_name} {limit}" if limit is not None else "")


def packet_view(flow: Mapping[str, Any]) -> dict[str, Any]:
    """The layers as cells (name, size, kind, width in %), the budgets under them, a caption."""
    parts = layers(flow)
    drawn = [max(n, FLOOR) if n is not None else UNKNOWN_WIDTH for _, n, _ in parts]
    widths = [d / sum(drawn) * 100 for d in drawn]
    cells = [{"name": name, "size": "?" if n is None else f"{n} B", "kind": kind, "width": width}
             for (name, n, kind), width in zip(parts, widths)]
    complete = all(n is not None for _, n, _ in parts)
    mtu = _mapping(flow.get("mtu"))
    underlay = mtu.get("underlay_mtu")
    pod_mtu = _mapping(_mapping(mtu.get("mtus")).get("src")).get("pod_mtu")
    # What the underlay MTU must hold is everything after the outer Ethernet header; for VXLAN,
    # under it, the tunnel's overhead and the pod's own packet, which the pod MTU must hold.
    ip_packet = sum(n for _, n, _ in parts[1:]) if complete else None
    if flow.get("expected") == "vxlan":
        overhead = _mapping(mtu.get("overhead")).get("bytes") or IPV4 + UDP + VXLAN + ETHERNET
        pod_packet = sum(n for _, n, _ in parts[5:]) if complete else None
        budget = [
            [_span(widths[0], sum(widths[1:]), _fits("IP packet", ip_packet, "underlay MTU", underlay))],
            [_span(widths[0], sum(widths[1:5]), f"overhead {overhead} B", "over"),
             _span(sum(widths[:5]), sum(widths[5:]), _fits("pod packet", pod_packet, "pod MTU", pod_mtu))],
        ]
    elif pod_mtu is not None:
        text = _fits("IP packet", ip_packet, "pod MTU", pod_mtu) + ("" if underlay is None else f" · underlay MTU {underlay}")
        budget = [[_span(widths[0], sum(widths[1:]), text)]]
    else:
        budget = [[_span(widths[0], sum(widths[1:]), _fits("IP packet", ip_packet, "underlay MTU", underlay))]]
    caption = (f"the largest DF echo that crosses, as a {sum(n for _, n, _ in parts)}-byte frame" if complete
               else "the largest DF echo that crosses (its payload was not measured)")
    return {"cells": cells, "budget": budget, "caption": caption}


def _span(left: float, width: float, text: str, kind: str = "") -> dict[str, Any]:
    return {"left": left, "width": width, "text": text, "kind": kind}


HOPS = (
    ("left_sender", "left {src}"),
    ("arrived_receiver", "arrived at {dst}"),
    ("answered", "answered by {dst}"),
    ("replies_back", "reply back at {src}"),
)


def timeline_view(flow: Mapping[str, Any]) -> dict[str, Any]:
    """The echoes at each hop on the wire: per hop, how many were seen and how many are missing
    against the most any hop saw (or the prober sent), from report.json's `delivery`. Without it
    (older reports), this direction's frames at each capture point."""
    src, dst = flow["src_node"], flow["dst_node"]
    delivery = flow.get("delivery")
    sent = None
    if isinstance(delivery, Mapping):
        sent = delivery.get("sent")
        counted = [(label.format(src=src, dst=dst), delivery.get(key)) for key, label in HOPS if key in delivery]
        unit = "echoes"
    else:
        counted = [(f"frames on {point}", n) for point, n in (flow.get("seen_on") or {}).items()]
        unit = "frames"
    whole = max([n for _, n in counted if isinstance(n, int)] + ([sent] if isinstance(sent, int) else []) or [0])
    rows = []
    for label, n in counted:
        drawn = isinstance(n, int) and whole <= MAX_DOTS
        rows.append({"label": label, "seen": n if drawn else 0, "missing": whole - n if drawn else 0,
                     "count": "?" if n is None else f"{n}/{whole}"})
    note = ""
    if isinstance(sent, int):
        note = f"the prober sent {sent} echo request{'s' if sent != 1 else ''}; the wire counts include the DF ping ladder's"
    return {"rows": rows, "unit": unit, "note": note}
