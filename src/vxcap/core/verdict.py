"""Verdicts: an expectation held against what the captures saw of its flow.

Every "must not see" has a "must see" twin: a plain path must show no VXLAN for
its flow, and it must show the flow's packets at all, on the sender's and on the
receiver's capture, so an empty or mis-filtered capture can never pass. A direction
whose sender or receiver has no usable capture cannot pass either: a check that
needs it was not made, and is named as such.

Which header fields are checked, and against what, is the expected format's (core/encap.py's
`Encap.checks`). A format that hides the pods (WireGuard) is proven negatively and positively at
once: no packet of the pod flow on the underlay in any form, and the format's frames between the
two nodes (`tunnel`, tallied under the nodes' pair) on both captures, in step with the probes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from vxcap.core.delivery import Delivery
from vxcap.core.encap import ENCAPS, WG_TRANSPORT_DATA, Encap
from vxcap.core.frames import FlowTally
from vxcap.core.plan import Expectation
from vxcap.core.model import IPAddress, Wire


class Observed(StrEnum):
    """What a direction looked like on the wire, summed over every capture point: a Wire, or neither."""

    PLAIN = Wire.PLAIN.value
    VXLAN = Wire.VXLAN.value
    IPIP = Wire.IPIP.value
    WIREGUARD = Wire.WIREGUARD.value
    GENEVE = Wire.GENEVE.value
    MIXED = "mixed"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class CapturePoint:
    """Where a capture was taken: a node's interface, shown as `node/iface`."""

    node: str
    iface: str

    def __str__(self) -> str:
        return f"{self.node}/{self.iface}"


@dataclass(frozen=True, slots=True)
class FlowVerdict:
    expectation: Expectation
    observed: Observed
    packets: int
    seen_on: tuple[tuple[str, int], ...]
    vni: int | None
    udp_dport: int | None
    outer_src: IPAddress | None
    outer_dst: IPAddress | None
    inner_dst_mac: str | None
    max_wire_len: int
    outer_fragments: int
    reasons: tuple[str, ...] = field(default=())
    not_checked: tuple[str, ...] = field(default=())  # checks that could not be made, and why
    delivery: Delivery | None = None
    wg_data: int = 0  # WireGuard transport-data messages between the two nodes (a WireGuard direction)

    @property
    def passed(self) -> bool:
        return not self.reasons


def _top(counter: Counter):
    return counter.most_common(1)[0][0] if counter else None


def _mismatches(label: str, counter: Counter, expected: object) -> list[str]:
    """`VNI 4097, expected 4096`, one reason per wrong value, most frequent first."""
    wrong = [(value, n) for value, n in counter.most_common() if value != expected]
    total = sum(counter.values())
    reasons = []
    for value, n in wrong:
        share = "" if n == total else f" ({n} of {total} packets)"
        reasons.append(f"{label} {value}, expected {expected}{share}")
    return reasons


def observed_wire(flow: FlowTally) -> Observed:
    kinds = {encap for encap, n in flow.encaps.items() if n}
    if not kinds:
        return Observed.NONE
    if len(kinds) > 1:
        return Observed.MIXED
    return Observed(next(iter(kinds)).value)


def _name(wire: Wire, family: int) -> str:
    return f"plain IPv{family}" if wire is Wire.PLAIN else ENCAPS[wire].title


def _detail(wire: Wire, flow: FlowTally) -> str:
    """What identifies an unexpected format's frames, for a reason."""
    if wire is Wire.VXLAN or wire is Wire.GENEVE:
        ports = ", ".join(str(p) for p, _ in flow.udp_dports.most_common())
        vnis = ", ".join(str(v) for v, _ in flow.vnis.most_common())
        return f" (VNI {vnis}, UDP port {ports})"
    if wire is Wire.IPIP or wire is Wire.WIREGUARD:
        pairs = ", ".join(f"{a} -> {b}" for (a, b), _ in flow.outer_pairs.most_common(3))
        return f" (outer {pairs})" if pairs else ""
    return ""


def _header_checks(encap: Encap, expectation: Expectation, total: FlowTally) -> tuple[list[str], list[str]]:
    reasons: list[str] = []
    not_checked: list[str] = []
    for check in encap.checks:
        wanted = getattr(expectation, check.expected)
        if wanted is None and check.needs_known:
            not_checked.append(f"{check.label}: the VTEP MAC of {expectation.dst_node} is unknown")
            continue
        found = _mismatches(check.label, getattr(total, check.seen), wanted)
        if check.expected == "vni" and expectation.vni_is:
            # `VNI 5123, expected 48213` would hide why 48213: it is whose packets these are
            found = [r.replace(f", expected {wanted}", f" is not {expectation.vni_is} {wanted}", 1) for r in found]
        reasons += found
    return reasons, not_checked


def judge(
    expectation: Expectation,
    seen: Mapping[CapturePoint, FlowTally | None],
    unusable: Mapping[str, str] | None = None,
    tunnel: Mapping[CapturePoint, FlowTally | None] | None = None,
    sent: int | None = None,
) -> FlowVerdict:
    """Judge one direction. `seen` has an entry for every usable capture point the run had,
    with None (or an empty tally) where that point saw nothing of this flow; `unusable` says,
    per node, why its capture is not there (never started, unreadable, its backend failed).
    A WireGuard direction also needs `tunnel`: the same points' tallies of the nodes' pair
    (`Expectation.tunnel_key`), and `sent`, the probes sent, when known. Any other direction given
    `tunnel` names WireGuard data messages found there: the format it was not promised."""
    encap = ENCAPS[expectation.expected]
    if not encap.inner_flow:
        return _judge_hidden(expectation, encap, seen, unusable or {}, tunnel or {}, sent)
    total = FlowTally()
    for flow in seen.values():
        if flow is not None:
            total.merge(flow)
    per_point = tuple((str(point), flow.packets if flow else 0) for point, flow in seen.items())
    observed = observed_wire(total)
    flow_name = f"{expectation.src_ip} -> {expectation.dst_ip}"
    reasons: list[str] = []
    not_checked: list[str] = []
    unusable = unusable or {}
    for role, node in (("sender", expectation.src_node), ("receiver", expectation.dst_node)):
        if node in unusable:
            reasons.append(f"no usable capture of {node} ({role}): {unusable[node]}")
        elif not any(p.node == node for p in seen):
            reasons.append(f"no usable capture of {node} ({role}): none in manifest.json")

    expected_name = _name(expectation.expected, expectation.family)
    wrapped, wg_port = _wireguard_instead(expectation, tunnel or {})
    if wrapped:
        # WireGuard where it is not promised hides the pod flow: name the tunnel, not an empty wire.
        reasons.append(f"{wrapped}, expected {expected_name} ({expectation.reason})")
    if total.packets == 0 and not wrapped:
        where = ", ".join(str(p) for p in seen) or "no capture"
        reasons.append(f"no packets of {flow_name} seen ({where})")
    elif total.packets:
        for role, node in (("sender", expectation.src_node), ("receiver", expectation.dst_node)):
            points = [p for p in seen if p.node == node]
            if points and all(not seen[p] or seen[p].packets == 0 for p in points):
                reasons.append(
                    f"{flow_name} not seen on {', '.join(str(p) for p in points)} ({role})"
                )

    for wire, n in total.encaps.most_common():
        if n and wire is not expectation.expected:
            reasons.append(f"{n} {_name(wire, expectation.family)} packets{_detail(wire, total)}, "
                           f"expected {expected_name} ({expectation.reason})")
    if total.encaps.get(expectation.expected, 0):
        more, unchecked = _header_checks(encap, expectation, total)
        reasons += more
        not_checked += unchecked

    plain = total.encaps.get(Wire.PLAIN, 0)
    top_pair = _top(total.outer_pairs)
    if top_pair is None and plain:
        top_pair = (expectation.src_ip, expectation.dst_ip)
    udp_dport = _top(total.udp_dports)
    if wrapped:
        observed = Observed.MIXED if total.packets else Observed.WIREGUARD
        top_pair = top_pair or expectation.tunnel_key
        udp_dport = udp_dport if total.packets else wg_port
    return FlowVerdict(
        expectation=expectation,
        observed=observed,
        packets=total.packets,
        seen_on=per_point,
        vni=_top(total.vnis),
        udp_dport=udp_dport,
        outer_src=top_pair[0] if top_pair else None,
        outer_dst=top_pair[1] if top_pair else None,
        inner_dst_mac=_top(total.inner_dst_macs),
        max_wire_len=total.max_wire_len,
        outer_fragments=total.outer_fragments,
        reasons=tuple(reasons),
        not_checked=tuple(not_checked),
    )


def _wireguard_instead(expectation: Expectation, tunnel: Mapping[CapturePoint, FlowTally | None]) -> tuple[str, int | None]:
    """`12 WireGuard transport-data packets between A and B on UDP 51820`: WireGuard's data messages
    between the direction's two nodes where the expected format is another ("" when there are none),
    and the port they were seen on most."""
    wrapped = FlowTally()
    for flow in tunnel.values():
        if flow is not None:
            wrapped.merge(flow)
    data = wrapped.wg_types.get(WG_TRANSPORT_DATA, 0)
    if not data:
        return "", None
    ports = ", ".join(str(port) for port, _ in wrapped.udp_dports.most_common())
    # Summed over both ends' captures, as every other count of a reason is.
    return (f"{data} {ENCAPS[Wire.WIREGUARD].title} transport-data packets between {expectation.outer_src} and "
            f"{expectation.outer_dst} on UDP {ports}"), _top(wrapped.udp_dports)


def _judge_hidden(
    expectation: Expectation,
    encap: Encap,
    seen: Mapping[CapturePoint, FlowTally | None],
    unusable: Mapping[str, str],
    tunnel: Mapping[CapturePoint, FlowTally | None],
    sent: int | None,
) -> FlowVerdict:
    """A format whose frames hide the pods (WireGuard): the pod flow must not be on the
    underlay at all, and the format's data messages between the two nodes must be, on both ends."""
    flow_name = f"{expectation.src_ip} -> {expectation.dst_ip}"
    tunnel_name = f"{expectation.outer_src} -> {expectation.outer_dst}"
    leaked = FlowTally()
    for flow in seen.values():
        if flow is not None:
            leaked.merge(flow)
    wrapped = FlowTally()
    for flow in tunnel.values():
        if flow is not None:
            wrapped.merge(flow)
    reasons: list[str] = []
    points = tuple(seen) or tuple(tunnel)
    for role, node in (("sender", expectation.src_node), ("receiver", expectation.dst_node)):
        if node in unusable:
            reasons.append(f"no usable capture of {node} ({role}): {unusable[node]}")
        elif not any(p.node == node for p in points):
            reasons.append(f"no usable capture of {node} ({role}): none in manifest.json")
    # The negative proof: the pod flow never crosses the underlay in the clear or in another tunnel.
    for wire, n in leaked.encaps.most_common():
        if n:
            what = "plaintext" if wire is Wire.PLAIN else ENCAPS[wire].title
            reasons.append(f"{n} {what} packets of {flow_name} on the underlay{_detail(wire, leaked)}, expected only "
                           f"{encap.title} between the nodes ({expectation.reason})")
    # The positive proof: transport data between exactly these two nodes, seen leaving and arriving.
    data_by_point = {p: (t.wg_types.get(WG_TRANSPORT_DATA, 0) if t else 0) for p, t in tunnel.items()}
    data = sum(data_by_point.values())
    if data == 0:
        where = ", ".join(str(p) for p in tunnel) or "no capture"
        reasons.append(f"no {encap.title} transport data (type 4) from {tunnel_name} seen ({where})")
    else:
        for role, node in (("sender", expectation.src_node), ("receiver", expectation.dst_node)):
            at = [p for p in tunnel if p.node == node]
            if at and not any(data_by_point[p] for p in at):
                reasons.append(f"{encap.title} transport data {tunnel_name} not seen on "
                               f"{', '.join(str(p) for p in at)} ({role})")
        more, _ = _header_checks(encap, expectation, wrapped)
        reasons += more
        if sent:
            sender = max((data_by_point[p] for p in tunnel if p.node == expectation.src_node), default=0)
            if sender < sent:
                reasons.append(f"{sender} {encap.title} transport-data messages {tunnel_name} on the sender for "
                               f"{sent} probes sent: not in step with the probes")
    observed = Observed.NONE
    if data and leaked.packets:
        observed = Observed.MIXED
    elif data:
        observed = Observed(encap.wire.value)
    elif leaked.packets:
        observed = observed_wire(leaked)
    pair = _top(wrapped.outer_pairs)
    return FlowVerdict(
        expectation=expectation,
        observed=observed,
        packets=leaked.packets + data,
        seen_on=tuple((str(p), data_by_point.get(p, 0) + (seen[p].packets if seen.get(p) else 0)) for p in points),
        vni=None,
        udp_dport=_top(wrapped.udp_dports),
        outer_src=pair[0] if pair else None,
        outer_dst=pair[1] if pair else None,
        inner_dst_mac=None,
        max_wire_len=max(leaked.max_wire_len, wrapped.max_wire_len),
        outer_fragments=leaked.outer_fragments + wrapped.outer_fragments,
        reasons=tuple(reasons),
        wg_data=data,
    )


def wireshark_filter(expectation: Expectation, observed: str | None = None) -> str:
    """A display filter for the flow, plain or encapsulated: Wireshark matches
    `ip.src`/`ip.dst` (`ipv6.*`) against the inner header of a VXLAN or IP-in-IP frame too.
    WireGuard hides the pods: its filter is the nodes' data messages, also where it was `observed`
    instead of the expected format (the pods' addresses would match nothing)."""
    ip = "ipv6" if expectation.family == 6 else "ip"
    encap = ENCAPS[Wire.WIREGUARD if observed == Observed.WIREGUARD.value else expectation.expected]
    if not encap.inner_flow:
        return (f"{ip}.src=={expectation.outer_src} && {ip}.dst=={expectation.outer_dst} && "
                f"{encap.wireshark_filter}.type == 4")
    return f"{ip}.src=={expectation.src_ip} && {ip}.dst=={expectation.dst_ip}"
