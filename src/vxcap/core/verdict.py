"""Verdicts: an expectation held against what the captures saw of its flow.

Every "must not see" has a "must see" twin: a plain path must show no VXLAN for
its flow, and it must show the flow's packets at all, on the sender's and on the
receiver's capture, so an empty or mis-filtered capture can never pass. A direction
whose sender or receiver has no usable capture cannot pass either: a check that
needs it was not made, and is named as such.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address

from vxcap.core.delivery import Delivery
from vxcap.core.frames import FlowTally
from vxcap.core.plan import Expectation
from vxcap.core.model import Wire


class Observed(StrEnum):
    """What a direction looked like on the wire, summed over every capture point: a Wire, or neither."""

    PLAIN = Wire.PLAIN.value
    VXLAN = Wire.VXLAN.value
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
    outer_src: IPv4Address | None
    outer_dst: IPv4Address | None
    inner_dst_mac: str | None
    max_wire_len: int
    outer_fragments: int
    reasons: tuple[str, ...] = field(default=())
    not_checked: tuple[str, ...] = field(default=())  # checks that could not be made, and why
    delivery: Delivery | None = None

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


def judge(
    expectation: Expectation,
    seen: Mapping[CapturePoint, FlowTally | None],
    unusable: Mapping[str, str] | None = None,
) -> FlowVerdict:
    """Judge one direction. `seen` has an entry for every usable capture point the run had,
    with None (or an empty tally) where that point saw nothing of this flow; `unusable` says,
    per node, why its capture is not there (never started, unreadable, its backend failed)."""
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

    if total.packets == 0:
        where = ", ".join(str(p) for p in seen) or "no capture"
        reasons.append(f"no packets of {flow_name} seen ({where})")
    else:
        for role, node in (("sender", expectation.src_node), ("receiver", expectation.dst_node)):
            points = [p for p in seen if p.node == node]
            if points and all(not seen[p] or seen[p].packets == 0 for p in points):
                reasons.append(
                    f"{flow_name} not seen on {', '.join(str(p) for p in points)} ({role})"
                )

    plain = total.encaps.get(Wire.PLAIN, 0)
    vxlan = total.encaps.get(Wire.VXLAN, 0)
    if expectation.expected is Wire.VXLAN:
        if plain:
            reasons.append(
                f"{plain} plain IPv4 packets, expected VXLAN ({expectation.reason})"
            )
        if vxlan:
            reasons += _mismatches("UDP port", total.udp_dports, expectation.port)
            reasons += _mismatches("VNI", total.vnis, expectation.vni)
            outer_srcs = Counter()
            outer_dsts = Counter()
            for (src, dst), n in total.outer_pairs.items():
                outer_srcs[src] += n
                outer_dsts[dst] += n
            reasons += _mismatches("outer source", outer_srcs, expectation.outer_src)
            reasons += _mismatches("outer destination", outer_dsts, expectation.outer_dst)
            if expectation.inner_dst_mac is not None:
                reasons += _mismatches(
                    "inner destination MAC", total.inner_dst_macs, expectation.inner_dst_mac
                )
            else:
                not_checked.append(f"inner destination MAC: the VTEP MAC of {expectation.dst_node} is unknown")
    elif vxlan:
        ports = ", ".join(str(p) for p, _ in total.udp_dports.most_common())
        vnis = ", ".join(str(v) for v, _ in total.vnis.most_common())
        reasons.append(
            f"{vxlan} VXLAN packets (VNI {vnis}, UDP port {ports}), expected plain IPv4 ({expectation.reason})"
        )

    top_pair = _top(total.outer_pairs)
    if top_pair is None and plain:
        top_pair = (expectation.src_ip, expectation.dst_ip)
    return FlowVerdict(
        expectation=expectation,
        observed=observed,
        packets=total.packets,
        seen_on=per_point,
        vni=_top(total.vnis),
        udp_dport=_top(total.udp_dports),
        outer_src=top_pair[0] if top_pair else None,
        outer_dst=top_pair[1] if top_pair else None,
        inner_dst_mac=_top(total.inner_dst_macs),
        max_wire_len=total.max_wire_len,
        outer_fragments=total.outer_fragments,
        reasons=tuple(reasons),
        not_checked=tuple(not_checked),
    )


def wireshark_filter(expectation: Expectation) -> str:
    """A display filter for the flow, plain or encapsulated: Wireshark matches
    `ip.src`/`ip.dst` against the inner header of a VXLAN frame too."""
    return f"ip.src=={expectation.src_ip} && ip.dst=={expectation.dst_ip}"
