"""What a decoder says about one frame, and what a capture says about one flow.

Both decoders (scapy's full dissection and the fast struct parser) speak these
types, so the verdict never depends on which one read the file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from vxcap.core.model import IPAddress, Wire


# pcap link types (LINKTYPE_*), as tcpdump writes them.
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_LINUX_SLL2 = 276


@dataclass(frozen=True, slots=True)
class FrameFacts:
    """The fields of one underlay frame that a verdict can turn on.

    `src`/`dst` are the innermost IP addresses (the pods', for pod traffic; the nodes' for
    WireGuard, whose inner packet is encrypted); `outer_*` are the underlay IP header's (equal to
    `src`/`dst` when plain or WireGuard). IPv6 addresses only when the decoder was asked to read IPv6.
    `wire_len` is the frame's original length, never the captured length, less the outer
    link header's VLAN tags: a tag is added by the switch port, it does not count against the
    node's MTU, so an 802.1Q-tagged full-size frame must not read oversize.
    """

    encap: Wire
    src: IPAddress
    dst: IPAddress
    outer_src: IPAddress
    outer_dst: IPAddress
    wire_len: int  # without any 802.1Q / 802.1ad tags of the outer link header (see vlan_bytes)
    ip_proto: int  # innermost IP protocol (1 ICMP, 6 TCP, 17 UDP, 58 ICMPv6; IPv6: the first header's next header)
    outer_fragment: bool = False  # MF set or a fragment offset on the underlay header
    outer_df: bool = False
    udp_sport: int | None = None
    udp_dport: int | None = None
    vni: int | None = None
    inner_src_mac: str | None = None
    inner_dst_mac: str | None = None
    inner_len: int | None = None  # innermost IPv4 total length
    tcp_mss: int | None = None  # MSS option of an innermost TCP SYN or SYN-ACK
    frag_needed_mtu: int | None = None  # next-hop MTU of an innermost ICMP fragmentation-needed (3/4)
    frag_needed_dst: IPv4Address | None = None  # ... and the destination of the packet it quotes, when whole
    echo_type: int | None = None  # innermost ICMP echo request (8) or reply (0): tells a probe from its answer
    echo_id: int | None = None  # ... its identifier and sequence: what matches a request to its reply
    echo_seq: int | None = None  # across capture points
    # The link header's destination (None on a link without one: SLL, raw IP). On the receiver's
    # capture it says whether a frame was sent to that node or only flooded past it.
    outer_dst_mac: str | None = None
    wg_type: int | None = None  # WireGuard message type (4: transport data)
    # Geneve's options as (class, type, data bytes), in header order: what the frame adds beyond 50 / 70
    geneve_options: tuple[tuple[int, int, int], ...] = ()

    @property
    def key(self) -> tuple[IPAddress, IPAddress]:
        return (self.src, self.dst)


@dataclass(slots=True)
class FlowTally:
    """Everything one capture point saw of one flow (innermost src -> dst)."""

    packets: int = 0
    encaps: Counter = field(default_factory=Counter)
    vnis: Counter = field(default_factory=Counter)
    udp_dports: Counter = field(default_factory=Counter)
    outer_pairs: Counter = field(default_factory=Counter)  # (outer_src, outer_dst) of encapsulated frames
    inner_dst_macs: Counter = field(default_factory=Counter)
    outer_fragments: int = 0
    max_wire_len: int = 0
    # (ip_proto, inner_len, wire_len, outer_fragment) -> frames: what the MTU verdicts read.
    # Bounded by the distinct sizes a flow has, a handful for pings, at most a few
    # thousand for bulk TCP, however long the capture.
    sizes: Counter = field(default_factory=Counter)
    tcp_mss: Counter = field(default_factory=Counter)  # MSS option of SYN / SYN-ACK segments
    frag_needed: Counter = field(default_factory=Counter)  # (next-hop MTU, quoted destination) of ICMP 3/4
    echoes: Counter = field(default_factory=Counter)  # (ICMP echo type 8 or 0, inner_len)
    outer_dst_macs: Counter = field(default_factory=Counter)  # link-header destination MAC (None: no Ethernet)
    # (ICMP echo type, identifier, sequence, outer destination MAC) -> frames: what delivery matches
    # across capture points. One entry per echo, so as many as the flow had echoes.
    echo_ids: Counter = field(default_factory=Counter)
    wg_types: Counter = field(default_factory=Counter)  # WireGuard message type -> frames

    @property
    def outer_srcs(self) -> Counter:
        found: Counter = Counter()
        for (src, _), n in self.outer_pairs.items():
            found[src] += n
        return found

    @property
    def outer_dsts(self) -> Counter:
        found: Counter = Counter()
        for (_, dst), n in self.outer_pairs.items():
            found[dst] += n
        return found

    def add(self, facts: FrameFacts) -> None:
        self.packets += 1
        self.encaps[facts.encap] += 1
        if facts.encap is not Wire.PLAIN:
            if facts.vni is not None:
                self.vnis[facts.vni] += 1
            if facts.udp_dport is not None:
                self.udp_dports[facts.udp_dport] += 1
            self.outer_pairs[(facts.outer_src, facts.outer_dst)] += 1
            if facts.inner_dst_mac is not None:
                self.inner_dst_macs[facts.inner_dst_mac] += 1
            if facts.wg_type is not None:
                self.wg_types[facts.wg_type] += 1
        if facts.outer_fragment:
            self.outer_fragments += 1
        if facts.wire_len > self.max_wire_len:
            self.max_wire_len = facts.wire_len
        self.sizes[(facts.ip_proto, facts.inner_len, facts.wire_len, facts.outer_fragment)] += 1
        if facts.tcp_mss is not None:
            self.tcp_mss[facts.tcp_mss] += 1
        if facts.frag_needed_mtu is not None:
            self.frag_needed[(facts.frag_needed_mtu, facts.frag_needed_dst)] += 1
        self.outer_dst_macs[facts.outer_dst_mac] += 1
        if facts.echo_type is not None:
            self.echoes[(facts.echo_type, facts.inner_len)] += 1
            self.echo_ids[(facts.echo_type, facts.echo_id, facts.echo_seq, facts.outer_dst_mac)] += 1

    def merge(self, other: FlowTally) -> None:
        self.packets += other.packets
        self.encaps.update(other.encaps)
        self.vnis.update(other.vnis)
        self.udp_dports.update(other.udp_dports)
        self.outer_pairs.update(other.outer_pairs)
        self.inner_dst_macs.update(other.inner_dst_macs)
        self.outer_fragments += other.outer_fragments
        self.max_wire_len = max(self.max_wire_len, other.max_wire_len)
        self.sizes.update(other.sizes)
        self.tcp_mss.update(other.tcp_mss)
        self.frag_needed.update(other.frag_needed)
        self.echoes.update(other.echoes)
        self.outer_dst_macs.update(other.outer_dst_macs)
        self.echo_ids.update(other.echo_ids)
        self.wg_types.update(other.wg_types)


FlowKey = tuple[IPAddress, IPAddress]


def tally(frames) -> dict[FlowKey, FlowTally]:
    """Aggregate decoded frames (None entries are frames of no interest) per flow.

    Kept on purpose though only tests call it: scapy's `decode_frame` per frame, tallied here,
    is the reference the fast decoder (vxcap.core.fastdecode) must reproduce flow for flow, and
    the test modules build their expected tallies with it rather than each writing its own."""
    flows: dict[FlowKey, FlowTally] = {}
    for facts in frames:
        if facts is None:
            continue
        flow = flows.get(facts.key)
        if flow is None:
            flow = flows[facts.key] = FlowTally()
        flow.add(facts)
    return flows
