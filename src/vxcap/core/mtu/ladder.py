"""The DF probe ladder: which ping sizes to send, and a bisection for the exact limit.

Sizes are ICMP echo payloads (`ping -M do -s N`); the IPv4 packet is N + 28, the
IPv6 one (ICMPv6, `ping -6`) N + 48. A probe knows its family; IPv4 is the default.
An echo reply is as big as its request, so one ping probes the path both ways.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from vxcap.core.errors import InputError
from vxcap.core.model import DEFAULT_MTU
from vxcap.core.mtu.arithmetic import MAX_IP_PACKET, icmp_packet_len, max_icmp_payload, tcp_mss
from vxcap.core.ping import PingMtuSignals, PingResult, ping_mtu_signals

MAX_ICMP_PAYLOAD = MAX_IP_PACKET - 28
# IPv6's payload length leaves out its own 40-byte header: 65535 - 8.
MAX_ICMP6_PAYLOAD = MAX_IP_PACKET - 8
MAX_PAYLOAD = {4: MAX_ICMP_PAYLOAD, 6: MAX_ICMP6_PAYLOAD}
FAMILIES = (4, 6)
# ping's default payload (the small ping that works), a 1400-byte packet, the
# limit and one past it at Calico's 1450, and the classic 1500-byte packet.
BASE_LADDER = (56, 1372, 1422, 1423, 1472)
# The same packets for ICMPv6 (20 bytes more of header each), the limit and one past it
# at Calico's IPv6 VXLAN MTU 1430 (1500 - 70).
BASE_LADDER6 = (56, 1352, 1382, 1383, 1452)
_BASE = {4: BASE_LADDER, 6: BASE_LADDER6}


def _family(family: int) -> int:
    if family not in FAMILIES:
        raise InputError(f"IP family {family!r} is neither 4 nor 6")
    return family


def ladder_sizes(pod_mtu: int | None = DEFAULT_MTU, family: int = 4) -> list[int]:
    """Payload sizes to probe per direction: the base ladder plus the pod MTU's own edge.

    The edge is the largest payload the pod MTU lets out, one more (must be
    refused locally), and 50 less (fits even if the pod MTU ignored VXLAN).
    """
    sizes = set(_BASE[_family(family)])
    if pod_mtu is not None:
        edge = max_icmp_payload(pod_mtu, family)
        sizes |= {edge - 50, edge, edge + 1}
    return sorted(s for s in sizes if 0 <= s <= MAX_PAYLOAD[family])


def expected_mss(pod_mtu: int, family: int = 4) -> int:
    """The MSS a pod's SYN carries for its MTU: MTU - 40 (IPv4), MTU - 60 (IPv6)."""
    return tcp_mss(pod_mtu, _family(family))


class ProbeFate(StrEnum):
    CROSSED = "crossed"  # a reply came back
    REFUSED_LOCALLY = "refused-locally"  # ping: message too long
    FRAG_NEEDED = "frag-needed"  # ping got ICMP fragmentation-needed from a hop
    LOST_ON_WIRE = "lost-on-wire"  # seen leaving on the underlay, no reply: dropped beyond the node
    NOT_SENT = "not-sent"  # not refused, yet never seen on the underlay: dropped inside the node
    LOST = "lost"  # no reply, and no capture to say where


FATE_TEXT = {
    ProbeFate.CROSSED: "a reply came back",
    ProbeFate.REFUSED_LOCALLY: "refused locally (message too long)",
    ProbeFate.FRAG_NEEDED: "answered by ICMP fragmentation-needed",
    ProbeFate.LOST_ON_WIRE: "sent on the wire, no reply came back",
    ProbeFate.NOT_SENT: "never reached the wire",
    ProbeFate.LOST: "no reply",
}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    size: int  # ICMP payload
    reply: bool
    sent_on_wire: bool | None = None  # seen in the sender's underlay capture; None: not looked at
    refused_locally: bool = False
    frag_needed_mtu: int | None = None  # the MTU a fragmentation-needed reported
    reply_on_wire: bool | None = None  # its echo reply seen in the sender's underlay capture; None: not looked at
    family: int = 4  # ICMP over IPv4, or ICMPv6 over IPv6

    @property
    def packet(self) -> int:
        return icmp_packet_len(self.size, self.family)

    @property
    def fate(self) -> ProbeFate:
        if self.reply:
            return ProbeFate.CROSSED
        # Before the local refusal: after one fragmentation-needed the pod caches the
        # smaller path MTU and refuses the rest locally, but a hop stopped the first.
        if self.frag_needed_mtu is not None:
            return ProbeFate.FRAG_NEEDED
        if self.refused_locally:
            return ProbeFate.REFUSED_LOCALLY
        if self.sent_on_wire is True:
            return ProbeFate.LOST_ON_WIRE
        if self.sent_on_wire is False:
            return ProbeFate.NOT_SENT
        return ProbeFate.LOST

    def as_dict(self) -> dict:
        return {
            "size": self.size,
            "packet": self.packet,
            "reply": self.reply,
            "sent_on_wire": self.sent_on_wire,
            "refused_locally": self.refused_locally,
            "frag_needed_mtu": self.frag_needed_mtu,
            "reply_on_wire": self.reply_on_wire,
            "fate": self.fate.value,
        }


def crossed_sizes(results: Iterable[ProbeResult]) -> tuple[set[int], set[int]]:
    """(sizes with at least one reply, sizes with none): one lost echo among several is loss, not MTU."""
    replied: set[int] = set()
    seen: set[int] = set()
    for result in results:
        seen.add(result.size)
        if result.reply:
            replied.add(result.size)
    return replied, seen - replied


@dataclass(frozen=True, slots=True)
class Bounds:
    largest_crossed: int | None
    smallest_failed_above: int | None  # the smallest failing size above largest_crossed

    @property
    def exact(self) -> bool:
        """The largest crossing payload is pinned: the next size up is known to fail."""
        return (
            self.largest_crossed is not None
            and self.smallest_failed_above is not None
            and self.smallest_failed_above == self.largest_crossed + 1
        )


@dataclass(frozen=True, slots=True)
class LadderSearch:
    """Bisection for the largest payload that crosses, driven by the results so far.

    Stateless: `propose` looks only at the results it is given, so the
    pipeline can run the ladder first, then ask for sizes until it says None.
    """

    floor: int = 0
    ceiling: int = MAX_ICMP_PAYLOAD
    max_probes: int = 32  # distinct sizes, ladder included; bisection over 0..65507 needs 17
    family: int = 4  # IPv6's ceiling may go up to MAX_ICMP6_PAYLOAD

    def __post_init__(self) -> None:
        limit = MAX_PAYLOAD[_family(self.family)]
        if not 0 <= self.floor <= self.ceiling <= limit:
            raise InputError(f"probe range {self.floor}..{self.ceiling} is not within 0..{limit}")
        if self.max_probes < 1:
            raise InputError(f"max_probes {self.max_probes} must be at least 1")

    def bounds(self, results: Iterable[ProbeResult]) -> Bounds:
        replied, failed = crossed_sizes(results)
        replied = {s for s in replied if self.floor <= s <= self.ceiling}
        largest = max(replied, default=None)
        above = [s for s in failed if s <= self.ceiling and (largest is None or s > largest)]
        return Bounds(largest, min(above, default=None))

    def propose(self, results: Iterable[ProbeResult]) -> int | None:
        """The next payload to probe, or None when the limit is pinned or the budget spent."""
        results = list(results)
        if len({r.size for r in results}) >= self.max_probes:
            return None
        bounds = self.bounds(results)
        low = self.floor - 1 if bounds.largest_crossed is None else bounds.largest_crossed
        high = self.ceiling + 1 if bounds.smallest_failed_above is None else bounds.smallest_failed_above
        if high - low <= 1:
            return None
        return (low + high) // 2

    @classmethod
    def for_family(cls, family: int, max_probes: int = 32) -> LadderSearch:
        """The whole range of the family's echo payloads: 0..65507 (IPv4), 0..65527 (IPv6)."""
        return cls(ceiling=MAX_PAYLOAD[_family(family)], max_probes=max_probes, family=family)


def probe_from_ping(size: int, received: int, output: str, family: int = 4) -> ProbeResult:
    """One DF ping of `size` as ping told it: any reply, and what its output says about MTU
    (a hop's Packet Too Big counts as IPv6's fragmentation-needed)."""
    signals = ping_mtu_signals(output)
    return ProbeResult(
        size=size,
        reply=received > 0,
        refused_locally=signals.refused_locally,
        frag_needed_mtu=signals.frag_needed_mtu,
        family=_family(family),
    )


def probe_from_result(size: int, ping: PingResult, family: int = 4) -> ProbeResult:
    """One DF echo of `size` payload bytes, as its sender saw it."""
    return ProbeResult(
        size=size,
        reply=ping.received > 0,
        refused_locally=ping.refused_too_big,
        frag_needed_mtu=ping.frag_needed_mtu,
        family=_family(family),
    )


def seen_on_wire(
    probe: ProbeResult, requests: Mapping[int, int] | None, replies: Mapping[int, int] | None
) -> ProbeResult:
    """`probe` with what the sender's capture saw: echo requests of its size leaving, replies of it coming back.

    `requests`/`replies` count ICMP echoes by inner IP packet length (IPv4 total length,
    payload + 28; IPv6 40 + payload length, payload + 48) in the direction's flow and in the
    reverse flow; None: no capture on the sender.
    """
    if requests is None or replies is None:
        return probe
    return replace(
        probe,
        sent_on_wire=requests.get(probe.packet, 0) > 0,
        reply_on_wire=replies.get(probe.packet, 0) > 0,
    )
