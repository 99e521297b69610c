"""One direction's MTU section from what a run left in its directory.

A run saves, beside each pcap, the node's and its test pod's `ip -d -j link`
(`<node>-<iface>.link.json`, `<node>-<iface>.pod-link.json`) and, once for the
run, what the DF ping ladder and the TCP exchange of each direction said
(`mtu-probes.json`). With the capture tallies this is everything the MTU
verdict needs, so `vxcap analyze` of a run directory judges it as the run did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vxcap.core.errors import InputError
from vxcap.core.frames import FlowKey, FlowTally
from vxcap.core.model import Mode, Wire
from vxcap.core.mtu.judge import FAIL, MtuMeasurement
from vxcap.core.mtu.links import LinkFacts, NodeMtus, interface_mtus, node_mtus
from vxcap.core.mtu.ladder import ProbeResult, probe_from_ping, probe_from_result, seen_on_wire
from vxcap.core.mtu.report import mtu_report
from vxcap.core.mtu.wire_sizes import size_tally_of_counts
from vxcap.core.plan import Expectation
from vxcap.core.ping import PingResult

ECHO_REQUEST, ECHO_REPLY = 8, 0
MTU_REASON_PREFIX = "MTU: "
# DF probes that fit the path and were lost (retried too) are loss, not an MTU fault: said as such.
LOSS_REASON_PREFIX = "loss: "
_LOSS_CODES = frozenset({"probe-lost"})


def links_or_none(text: str | None) -> dict[str, LinkFacts] | None:
    """A parsed `ip -d -j link` node table; None when missing or unreadable (the MTUs are then unknown)."""
    if text is None:
        return None
    try:
        return interface_mtus(text)
    except InputError:
        return None


def read_node_mtus(
    node: str, node_link_text: str | None, pod_link_text: str | None, *, pod: str | None, underlay_ifname: str,
    underlay_ip: int = 4,
    tunnel_ifname: str | None = None,
) -> NodeMtus:
    """`underlay_ip` 6: the IPv6 family's VXLAN device (vxlan-v6.calico) is the one whose MTU counts;
    `tunnel_ifname`: another format's device (core/encap.Encap.device: tunl0, wireguard.cali)."""
    return node_mtus(
        node,
        links_or_none(node_link_text),
        links_or_none(pod_link_text),
        pod=pod,
        underlay_ifname=underlay_ifname,
        underlay_ip=underlay_ip,
        tunnel_ifname=tunnel_ifname,
    )


@dataclass(frozen=True, slots=True)
class PointTally:
    """What one capture point saw, per flow."""

    node: str
    flows: Mapping[FlowKey, FlowTally]
    link_header: int = 14


def probe_records(data: Any, family: int = 4) -> dict[tuple[str, str], Mapping[str, Any]]:
    """mtu-probes.json -> record per (src_node, dst_node) of one family (records before version 3
    are IPv4's); whatever is malformed is left out."""
    records = data.get("directions") if isinstance(data, Mapping) else None
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for record in records if isinstance(records, list) else ():
        if isinstance(record, Mapping) and isinstance(record.get("src_node"), str) and isinstance(record.get("dst_node"), str):
            if record.get("family", 4) != family:
                continue
            found[(record["src_node"], record["dst_node"])] = record
    return found


def _ladder(record: Mapping[str, Any] | None) -> list[ProbeResult]:
    probes = []
    family = 6 if (record or {}).get("family") == 6 else 4  # the echo's headers: 28 bytes (IPv4) or 48 (IPv6)
    for entry in (record or {}).get("ladder") or ():
        if not isinstance(entry, Mapping):
            continue
        size, received, output = entry.get("size"), entry.get("received", 0), entry.get("output", "")
        if not (_is_int(size) and _is_int(received) and isinstance(output, str)):
            continue
        if "refused_too_big" in entry:  # version 2: the sender's signals as fields
            local_mtu, frag_mtu = entry.get("local_mtu"), entry.get("frag_needed_mtu")
            probes.append(probe_from_result(size, PingResult(
                transmitted=entry.get("transmitted") if _is_int(entry.get("transmitted")) else 1,
                received=received,
                local_errors=0,
                message=output,
                refused_too_big=entry["refused_too_big"] is True,
                local_mtu=local_mtu if _is_int(local_mtu) else None,
                frag_needed_mtu=frag_mtu if _is_int(frag_mtu) else None,
            ), family))
        else:  # version 1: only ping's own words
            probes.append(probe_from_ping(size, received, output, family))
    return probes


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _echo_sizes(flow: FlowTally | None, echo_type: int) -> dict[int, int]:
    if flow is None:
        return {}
    return {length: n for (kind, length), n in flow.echoes.items() if kind == echo_type and length is not None}


def _sender_point(expectation: Expectation, captures: Sequence[PointTally]) -> PointTally | None:
    for node in (expectation.src_node, expectation.dst_node):
        for point in captures:
            if point.node == node:
                return point
    return None


def measure(
    expectation: Expectation,
    src: NodeMtus,
    dst: NodeMtus,
    record: Mapping[str, Any] | None,
    captures: Sequence[PointTally],
) -> MtuMeasurement:
    """The direction's measurement, from the sender's capture (the receiver's when the sender has none)."""
    # WireGuard encrypts the pods' echoes: no capture can say which sizes left, only the prober can.
    point = None if expectation.expected is Wire.WIREGUARD else _sender_point(expectation, captures)
    probes = _ladder(record)
    if point is None:
        tcp = (record or {}).get("tcp")
        connected = tcp.get("connected") if isinstance(tcp, Mapping) else None
        return MtuMeasurement(probes=tuple(probes), tcp_connected=connected if isinstance(connected, bool) else None)
    flow = point.flows.get(expectation.key)
    reverse = point.flows.get((expectation.dst_ip, expectation.src_ip))
    at_sender = point.node == expectation.src_node
    requests = _echo_sizes(flow, ECHO_REQUEST) if at_sender else None
    replies = _echo_sizes(reverse, ECHO_REPLY) if at_sender else None
    probes = [seen_on_wire(p, requests, replies) for p in probes]
    iface_mtu = src.underlay_mtu if at_sender else dst.underlay_mtu
    sizes = size_tally_of_counts(flow.sizes if flow else {}, iface_mtu, point.link_header)
    # ICMP fragmentation-needed travels back to whoever sent the packet too big (the source pod, or for
    # an encapsulated packet the source node) and quotes that packet: its destination names the path.
    senders = {expectation.src_ip, expectation.outer_src}
    receivers = {expectation.dst_ip, expectation.outer_dst}
    frag_needed = sum(
        n
        for key, t in point.flows.items()
        if key[1] in senders
        for (_mtu, quoted_dst), n in t.frag_needed.items()
        if quoted_dst in receivers
    )
    tcp = (record or {}).get("tcp")
    connected = tcp.get("connected") if isinstance(tcp, Mapping) else None
    return MtuMeasurement.from_tally(
        sizes,
        probes,
        icmp_frag_needed=frag_needed,
        capture_node=point.node,
        link_header=point.link_header,
        tcp_mss_seen=tuple(sorted(flow.tcp_mss)) if flow else (),
        tcp_connected=connected if isinstance(connected, bool) else None,
    )


def direction_mtu(
    expectation: Expectation,
    src: NodeMtus,
    dst: NodeMtus,
    record: Mapping[str, Any] | None,
    captures: Sequence[PointTally],
    *,
    mode: Mode = Mode.CROSS_SUBNET,
    other_family: tuple[Wire, int] | None = None,
) -> dict[str, Any]:
    """The `mtu` section of one flow in report.json (see docs/manifest.md). `other_family`: see `judge_mtu`."""
    measured = measure(expectation, src, dst, record, captures)
    # Calico carries each family's pods over the same family's underlay.
    return mtu_report(expectation.expected, src, dst, measured, mode=mode, underlay_ip=expectation.family,
                      inner_ip=expectation.family, other_family=other_family)


def fail_reasons(section: Mapping[str, Any]) -> list[str]:
    """The MTU findings that fail the direction, as verdict reasons.

    Kept on purpose as prefixed strings: report.json and junit.xml carry a direction's reasons
    as one list of sentences (their format), and `vxcap report` renders a run from report.json
    alone, so the prefix is how a reader of that list tells the MTU section's own lines
    (`said_in_mtu_section`) from the others."""
    return [
        (LOSS_REASON_PREFIX if f.get("code") in _LOSS_CODES else MTU_REASON_PREFIX) + f["message"]
        for f in section.get("findings", [])
        if isinstance(f, Mapping) and f.get("level") == FAIL
    ]


def said_in_mtu_section(reason: str) -> bool:
    """A reason `fail_reasons` made from an MTU finding (a renderer shows it under the MTU section)."""
    return reason.startswith(MTU_REASON_PREFIX)
