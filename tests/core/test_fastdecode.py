"""The fast decoder reads captures as the scapy reference decoder does, only faster.

Every capture here is built in the test with scapy (or struct, for the header
variants scapy does not write) and every expectation is either the reference
decoder's tally of the same frames or a value read off the packets we built.
"""

from __future__ import annotations

import io
import struct
from ipaddress import IPv4Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from scapy.utils import PcapNgWriter, PcapWriter

from vxcap.core.decode import decode_frame
from vxcap.core.fastdecode import DecodeError, FastDecoder, classify, decode_bytes
from vxcap.core.frames import tally
from vxcap.core.model import Wire

NODE = {"cp": "10.10.10.10", "w1": "10.10.10.11", "w2": "10.10.10.12", "w3": "10.10.20.13"}
POD = {"cp": "192.168.23.70", "w1": "192.168.81.70", "w2": "192.168.164.130", "w3": "192.168.209.70"}
VTEP = {"cp": "66:15:9d:fa:c6:aa", "w3": "66:d2:0c:f0:ef:e5"}


def ping(src: str, dst: str, size: int = 56) -> IP:
    return IP(src=src, dst=dst) / ICMP() / Raw(b"p" * size)


def vxlan(inner_ip, *, outer=("cp", "w3"), dport=4789, vni=4096, flags=0x08, outer_ip=None):
    outer_ip = outer_ip if outer_ip is not None else IP(src=NODE[outer[0]], dst=NODE[outer[1]])
    return (
        Ether()
        / outer_ip
        / UDP(sport=40001, dport=dport)
        / VXLAN(flags=flags, vni=vni)
        / Ether(src=VTEP[outer[0]], dst=VTEP[outer[1]])
        / inner_ip
    )


def pcap_bytes(packets, linktype: int = 1) -> bytes:
    """A classic pcap written by scapy; a packet's `wirelen` attribute sets its original length."""
    out = io.BytesIO()
    writer = PcapWriter(out, linktype=linktype, sync=True)
    for packet in packets:
        writer.write(packet)
    writer.flush()
    return out.getvalue()


def pcap_struct(frames, linktype: int = 1, order: str = "<", nano: bool = False) -> bytes:
    """A classic pcap built field by field: frames are (captured bytes, original length)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    parts = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for i, (data, wire_len) in enumerate(frames):
        parts.append(struct.pack(order + "IIII", 1_700_000_000 + i, i, len(data), wire_len) + data)
    return b"".join(parts)


def pcapng_struct(frames, linktype: int = 1) -> bytes:
    """The same frames as a pcapng section with one interface and enhanced packet blocks."""
    return _shb("<") + _idb("<", linktype) + b"".join(_epb("<", 0, data, wire_len) for data, wire_len in frames)


def both_formats(frames, linktype: int = 1, vxlan_ports: frozenset[int] = frozenset({4789})):
    """The fast decoder's reading of the frames written as pcap and as pcapng, which must agree."""
    from_pcap = decode_bytes(pcap_struct(frames, linktype=linktype), vxlan_ports=vxlan_ports)
    from_pcapng = decode_bytes(pcapng_struct(frames, linktype=linktype), vxlan_ports=vxlan_ports)
    assert (from_pcap.flows, from_pcap.frames, from_pcap.sample_frames, from_pcap.ipv6_frames, from_pcap.not_vxlan,
            from_pcap.ipv6_in_vxlan) == (from_pcapng.flows, from_pcapng.frames, from_pcapng.sample_frames,
                                         from_pcapng.ipv6_frames, from_pcapng.not_vxlan, from_pcapng.ipv6_in_vxlan)
    return from_pcap


def reference(frames, linktype: int = 1):
    """The scapy reference decoder's per-flow tally of (captured bytes, original length) frames."""
    return tally(decode_frame(data, linktype, wire_len) for data, wire_len in frames)


def as_frames(packets):
    return [(bytes(p), len(bytes(p))) for p in packets]


def fed(data: bytes, chunk: int | None = None, samples_per_flow: int = 3, vxlan_ports=frozenset({4789})):
    decoder = FastDecoder(samples_per_flow, vxlan_ports)
    step = chunk or len(data) or 1
    for start in range(0, len(data), step):
        decoder.feed(data[start : start + step])
    return decoder.close()


def key(src: str, dst: str):
    return (IPv4Address(src), IPv4Address(dst))


# -- round trips -----------------------------------------------------------------


def test_vxlan_on_4789_and_8472_is_vxlan_with_the_header_values():
    packets = [
        vxlan(ping(POD["cp"], POD["w3"])),
        vxlan(ping(POD["cp"], POD["w3"]), dport=8472),
        vxlan(ping(POD["w3"], POD["cp"]), outer=("w3", "cp"), vni=77),
    ]
    result = both_formats(as_frames(packets))
    assert result.flows == reference(as_frames(packets))
    assert result.frames == 3 and result.linktypes == {1} and not result.truncated
    forward = result.flows[key(POD["cp"], POD["w3"])]
    assert forward.encaps == {Wire.VXLAN: 2}
    assert forward.udp_dports == {4789: 1, 8472: 1}
    assert forward.vnis == {4096: 2}
    assert forward.outer_pairs == {key(NODE["cp"], NODE["w3"]): 2}
    assert forward.inner_dst_macs == {VTEP["w3"]: 2}
    assert result.flows[key(POD["w3"], POD["cp"])].vnis == {77: 1}


def test_udp_that_only_looks_like_vxlan_is_plain():
    inner = Ether(src=VTEP["cp"], dst=VTEP["w3"]) / ping(POD["cp"], POD["w3"])
    packets = [
        Ether() / IP(src=NODE["cp"], dst=NODE["w3"]) / UDP(dport=4789) / VXLAN(flags=0x00) / inner,  # no I flag
        Ether() / IP(src=NODE["cp"], dst=NODE["w3"]) / UDP(dport=4789) / VXLAN() / Ether() / ARP(),
        Ether() / IP(src=NODE["cp"], dst=NODE["w3"]) / UDP(dport=4789) / VXLAN() / Ether(type=0x0800) / IPv6(),
        Ether() / IP(src=NODE["cp"], dst=NODE["w3"]) / UDP(dport=4789) / Raw(b"\x08" + b"\0" * 20),  # too short
        Ether() / IP(src=NODE["cp"], dst=NODE["w3"]) / UDP(sport=53, dport=53) / Raw(b"\x08" * 60),
    ]
    result = both_formats(as_frames(packets))
    assert result.flows == reference(as_frames(packets))
    assert result.flows[key(NODE["cp"], NODE["w3"])].encaps == {Wire.PLAIN: 5}


def test_plain_ipv4_tcp_and_icmp_count_per_flow_and_other_protocols_not_at_all():
    packets = [
        Ether() / ping(POD["cp"], POD["w1"]),
        Ether() / IP(src=POD["w1"], dst=POD["cp"]) / TCP(dport=80),
        Ether() / IP(src=POD["w1"], dst=POD["cp"], options=b"\x94\x04\x00\x00") / ICMP(),
        Ether() / ARP(),
        Ether() / IPv6() / UDP(),
        Ether(type=0x0800) / IPv6(),  # IPv6 behind an IPv4 ethertype
    ]
    result = both_formats(as_frames(packets))
    assert result.flows == reference(as_frames(packets))
    assert result.frames == 6 and result.ipv4_frames == 3
    assert set(result.flows) == {key(POD["cp"], POD["w1"]), key(POD["w1"], POD["cp"])}


def test_outer_fragments_first_is_vxlan_the_rest_plain_between_the_nodes():
    big = vxlan(ping(POD["cp"], POD["w3"], size=2000))
    pieces = fragment(big[IP], fragsize=1000)
    packets = [Ether() / piece for piece in pieces] + [Ether() / p for p in fragment(ping(POD["cp"], POD["w1"], 3000))]
    # a later fragment whose bytes happen to look like UDP + VXLAN is still only a fragment
    looks_like = bytes(UDP(dport=4789) / VXLAN() / Ether() / ping(POD["cp"], POD["w3"]))
    packets.append(Ether() / IP(src=NODE["cp"], dst=NODE["w3"], proto=17, frag=185) / Raw(looks_like))
    result = both_formats(as_frames(packets))
    assert result.flows == reference(as_frames(packets))
    assert result.flows[key(POD["cp"], POD["w3"])].outer_fragments == 1
    assert result.flows[key(NODE["cp"], NODE["w3"])].outer_fragments == len(pieces)
    assert result.flows[key(POD["cp"], POD["w1"])].outer_fragments == 3


def test_vlan_tags_outer_and_inner():
    inner = ping(POD["cp"], POD["w3"])
    packets = [
        Ether() / Dot1Q(vlan=10) / IP(src=NODE["cp"], dst=NODE["w3"]) / UDP(dport=4789) / VXLAN(vni=4096)
        / Ether(dst=VTEP["w3"]) / Dot1Q(vlan=5) / inner,
        Ether() / Dot1AD(vlan=100) / Dot1Q(vlan=10) / ping(POD["cp"], POD["w1"]),
        Ether() / Dot1Q(vlan=10) / Dot1Q(vlan=11) / Dot1Q(vlan=12) / ping(POD["cp"], POD["w1"]),
        Ether() / Dot1Q(vlan=10) / ARP(),
    ]
    result = both_formats(as_frames(packets))
    assert result.flows == reference(as_frames(packets))
    assert result.flows[key(POD["cp"], POD["w3"])].encaps == {Wire.VXLAN: 1}
    assert result.flows[key(POD["cp"], POD["w1"])].packets == 2
    # sizes count without the outer tags (the switch port's, not the node's MTU); inner tags stay
    untagged = len(Ether() / IP(src=NODE["cp"], dst=NODE["w3"]) / UDP(dport=4789) / VXLAN(vni=4096)
                   / Ether(dst=VTEP["w3"]) / Dot1Q(vlan=5) / inner)
    assert result.flows[key(POD["cp"], POD["w3"])].max_wire_len == untagged == len(packets[0]) - 4
    assert result.flows[key(POD["cp"], POD["w1"])].max_wire_len == len(Ether() / ping(POD["cp"], POD["w1"]))


@pytest.mark.parametrize(
    ("linktype", "wrap"),
    [
        (113, lambda ip: CookedLinux(proto=0x0800) / ip),
        (113, lambda ip: CookedLinux(proto=0x8100) / Dot1Q(vlan=3) / ip),
        (276, lambda ip: CookedLinuxV2(proto=0x0800) / ip),
        (276, lambda ip: CookedLinuxV2(proto=0x8100) / Dot1Q(vlan=3) / ip),
        (101, lambda ip: ip),
        (228, lambda ip: ip),
    ],
)
def test_cooked_and_raw_link_types(linktype, wrap):
    packets = [
        wrap(IP(src=NODE["cp"], dst=NODE["w3"]) / UDP(dport=4789) / VXLAN(vni=9) / Ether(dst=VTEP["w3"])
             / ping(POD["cp"], POD["w3"])),
        wrap(ping(POD["cp"], POD["w1"])),
        wrap(IPv6()),
    ]
    result = decode_bytes(pcap_bytes(packets, linktype=linktype))
    assert result.flows == reference(as_frames(packets), linktype)
    assert result.linktypes == {linktype}
    assert result.flows[key(POD["cp"], POD["w3"])].vnis == {9: 1}
    assert result.flows[key(POD["cp"], POD["w1"])].encaps == {Wire.PLAIN: 1}


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_nanosecond_magic(order, nano):
    frames = as_frames([vxlan(ping(POD["cp"], POD["w3"])), Ether() / ping(POD["cp"], POD["w1"])])
    result = decode_bytes(pcap_struct(frames, order=order, nano=nano))
    assert result.flows == reference(frames)
    assert result.frames == 2 and result.format == "pcap"


def test_wire_length_is_the_original_length_of_a_snaplen_cut_frame():
    full = bytes(vxlan(ping(POD["cp"], POD["w3"], size=1300)))
    plain = bytes(Ether() / ping(POD["cp"], POD["w1"], size=1400))
    frames = [(full[:96], len(full)), (plain[:40], len(plain)), (full[:60], len(full))]
    result = decode_bytes(pcap_struct(frames))
    assert result.flows == reference(frames)
    assert result.flows[key(POD["cp"], POD["w3"])].max_wire_len == len(full)
    assert result.flows[key(POD["cp"], POD["w1"])].max_wire_len == len(plain)
    # cut inside the inner IPv4 header: the frame is plain node-to-node traffic, counted at full size
    assert result.flows[key(NODE["cp"], NODE["w3"])].max_wire_len == len(full)


def test_every_snaplen_cut_agrees_with_the_reference():
    inner = ping(POD["cp"], POD["w3"], size=8)
    for packet in (
        Ether() / inner,
        vxlan(inner),
        Ether() / Dot1Q(vlan=10) / IP(src=NODE["cp"], dst=NODE["w3"]) / UDP(dport=4789) / VXLAN()
        / Ether() / Dot1AD(vlan=3) / Dot1Q(vlan=4) / inner,
        vxlan(inner, outer_ip=IP(src=NODE["cp"], dst=NODE["w3"], options=b"\x01" * 8)),
    ):
        data = bytes(packet)
        frames = [(data[:cut], len(data)) for cut in range(len(data) + 1)]
        result = both_formats(frames)
        assert result.flows == reference(frames)
        assert result.flows[key(POD["cp"], POD["w3"])].packets > 0


@pytest.mark.parametrize("total_len", [0, 10, 19, 20, 24, 27, 28, 29, 60, 65535])
def test_the_ip_total_length_must_leave_room_for_the_udp_header(total_len):
    packet = vxlan(ping(POD["cp"], POD["w3"]), outer_ip=IP(src=NODE["cp"], dst=NODE["w3"], len=total_len))
    frames = as_frames([packet])
    result = both_formats(frames)
    assert result.flows == reference(frames)
    # a length shorter than the IP header itself is read as "unknown" (TSO captures show 0)
    room = total_len < 20 or total_len >= 28
    assert (key(POD["cp"], POD["w3"]) in result.flows) is room


# -- counted, not judged: IPv6, and frames to the VXLAN port that are not VXLAN -----------

INNER = Ether(src=VTEP["cp"], dst=VTEP["w3"]) / ping(POD["cp"], POD["w3"])


def udp_to(dport: int, payload, **ip):
    return Ether() / IP(src=NODE["cp"], dst=NODE["w3"], **ip) / UDP(sport=40001, dport=dport) / payload


NOT_VXLAN = [
    VXLAN(flags=0x00, vni=4096) / INNER,  # I flag clear
    Raw(struct.pack("!BBBB", 0x08, 0, 0x10, 0)) / INNER,  # a 4-byte header: the inner frame starts 4 bytes early
    Raw(struct.pack("!B3xI", 0x08, 4096 << 8)),  # a header and nothing after it
    Raw(b"\x08\0\0"),  # not even a header
    VXLAN(vni=4096) / Ether() / ARP(),
    VXLAN(vni=4096) / Ether(type=0x0800) / IPv6(),  # IPv6 behind an IPv4 ethertype
    VXLAN(vni=4096) / Ether() / Dot1Q(vlan=5) / ARP(),
]


def test_frames_to_a_vxlan_port_that_are_not_vxlan_are_counted_per_port_and_tallied_as_plain():
    packets = [udp_to(4789, payload) for payload in NOT_VXLAN] + [udp_to(8472, NOT_VXLAN[0])]
    frames = as_frames(packets)
    result = both_formats(frames)
    assert result.not_vxlan == {4789: len(NOT_VXLAN)}
    assert result.flows == reference(frames)
    assert result.flows[key(NODE["cp"], NODE["w3"])].encaps == {Wire.PLAIN: len(packets)}
    assert both_formats(frames, vxlan_ports=frozenset({4789, 8472})).not_vxlan == {4789: len(NOT_VXLAN), 8472: 1}
    assert both_formats(frames, vxlan_ports=frozenset()).not_vxlan == {}
    # behind tags and cooked headers, through the slow path, the same
    for linktype, wrap in ((1, lambda ip: Ether() / Dot1Q(vlan=3) / ip), (113, lambda ip: CookedLinux(proto=0x0800) / ip),
                           (276, lambda ip: CookedLinuxV2(proto=0x0800) / ip), (101, lambda ip: ip)):
        wrapped = as_frames([wrap(p[IP]) for p in packets])
        assert both_formats(wrapped, linktype).not_vxlan == {4789: len(NOT_VXLAN)}, linktype


def test_vxlan_carrying_ipv6_pods_is_counted_as_such_not_as_malformed_nor_as_an_ipv6_underlay():
    ipv6_pods = [
        VXLAN(vni=4096) / Ether() / IPv6(src="fd00:10::1", dst="fd00:10::2") / UDP(),
        VXLAN(vni=4096) / Ether() / Dot1Q(vlan=5) / IPv6() / ICMP(),
    ]
    packets = [udp_to(4789, payload) for payload in ipv6_pods] + [udp_to(8472, ipv6_pods[0]), udp_to(4789, NOT_VXLAN[0])]
    frames = as_frames(packets)
    result = both_formats(frames)
    assert (result.ipv6_in_vxlan, result.not_vxlan, result.ipv6_frames) == ({4789: 2}, {4789: 1}, 0)
    assert result.flows == reference(frames)  # still tallied as plain UDP between the nodes
    assert both_formats(frames, vxlan_ports=frozenset({4789, 8472})).ipv6_in_vxlan == {4789: 2, 8472: 1}
    cooked = as_frames([CookedLinuxV2(proto=0x0800) / p[IP] for p in packets])
    assert both_formats(cooked, 276).ipv6_in_vxlan == {4789: 2}


def test_valid_vxlan_and_udp_to_other_ports_are_not_counted():
    reserved = Raw(struct.pack("!BBBBI", 0x08 | 0x40, 0xFF, 0xFF, 0xFF, (4096 << 8) | 0xAB))  # ignored, RFC 7348
    packets = [
        vxlan(ping(POD["cp"], POD["w3"])),
        vxlan(ping(POD["cp"], POD["w3"]), dport=8472),
        vxlan(ping(POD["cp"], POD["w3"], size=1400)),
        udp_to(4789, reserved / INNER),
        udp_to(4789, VXLAN(vni=4096) / Ether(dst=VTEP["w3"]) / Dot1AD(vlan=2) / Dot1Q(vlan=5) / ping(POD["cp"], POD["w3"])),
        udp_to(53, Raw(b"\0" * 30)),
        udp_to(5201, Raw(b"\x08" * 100)),
        Ether() / ping(POD["cp"], POD["w1"]),
    ]
    frames = as_frames(packets)
    result = both_formats(frames, vxlan_ports=frozenset({4789, 8472}))
    assert result.not_vxlan == {} and result.ipv6_frames == 0
    assert result.flows[key(POD["cp"], POD["w3"])].encaps == {Wire.VXLAN: 5}
    # what keeps the DNS and iperf frames out is the port, not their bytes
    assert both_formats(frames, vxlan_ports=frozenset({53, 5201})).not_vxlan == {53: 1, 5201: 1}


def test_a_frame_only_partly_captured_is_not_vxlan_only_when_its_bytes_show_it():
    good = bytes(vxlan(ping(POD["cp"], POD["w3"], size=1300)))
    bad = bytes(udp_to(4789, VXLAN(flags=0x00, vni=4096) / INNER / Raw(b"b" * 1300)))
    udp_payload_at = 14 + 20 + 8
    cuts = range(udp_payload_at, len(good) + 1)
    # a valid frame cut by the snaplen anywhere: never "not VXLAN"
    assert both_formats([(good[:cut], len(good)) for cut in cuts]).not_vxlan == {}
    # a clear I flag is counted once the capture holds a whole VXLAN + inner Ethernet + IPv4 header's worth
    shown = [cut for cut in range(udp_payload_at, len(bad) + 1) if cut - udp_payload_at >= 8 + 14 + 20]
    assert both_formats([(bad[:cut], len(bad)) for cut in range(udp_payload_at, len(bad) + 1)]).not_vxlan == {
        4789: len(shown)}
    # a first fragment too short to hold the inner headers is not malformed: the rest follows
    pieces = fragment(IP(src=NODE["cp"], dst=NODE["w3"]) / UDP(dport=4789) / VXLAN(vni=4096) / INNER, fragsize=24)
    assert len(pieces) > 2
    frames = as_frames([Ether() / piece for piece in pieces])
    result = both_formats(frames)
    assert result.not_vxlan == {} and result.flows == reference(frames)


IPV6_PACKETS = [
    IPv6(src="fd00::1", dst="fd00::3") / UDP(sport=40001, dport=4789) / VXLAN(vni=4096) / INNER,  # an IPv6 underlay
    IPv6(src="fd00:10::1", dst="fd00:10::2") / UDP(dport=53),
    IPv6(),
]


@pytest.mark.parametrize(
    ("linktype", "wrap", "proto"),
    [
        (1, lambda ip, proto: Ether(type=proto) / ip, None),
        (1, lambda ip, proto: Ether() / Dot1Q(vlan=3, type=proto) / ip, None),
        (1, lambda ip, proto: Ether(type=0x88A8) / Dot1Q(vlan=3) / Dot1Q(vlan=4, type=proto) / ip, None),
        (113, lambda ip, proto: CookedLinux(proto=proto) / ip, None),
        (276, lambda ip, proto: CookedLinuxV2(proto=proto) / ip, None),
        (101, lambda ip, proto: ip, "raw"),
    ],
)
def test_ipv6_frames_are_counted_on_every_link_type(linktype, wrap, proto):
    def framed(packet):
        if proto == "raw":
            return wrap(packet, None)
        return wrap(packet, 0x86DD if isinstance(packet, IPv6) else 0x0800)

    packets = [framed(p) for p in IPV6_PACKETS] + [framed(ping(POD["cp"], POD["w1"]))]
    frames = as_frames(packets)
    whole_v6 = bytes(packets[2])
    frames.append((whole_v6[: len(whole_v6) - 30], len(whole_v6)))  # cut by the snaplen: the type says IPv6
    result = both_formats(frames, linktype)
    assert result.ipv6_frames == len(IPV6_PACKETS) + 1
    assert result.flows == reference(frames, linktype) and result.ipv4_frames == 1
    assert result.not_vxlan == {}  # an IPv6 underlay's VXLAN is IPv6, never "not VXLAN"


def test_what_only_looks_like_ipv6_is_not_counted():
    frames = as_frames([Ether(type=0x0800) / IPv6(), Ether() / ARP(), Ether(type=0x86DD)])
    frames.append((bytes(Ether() / IPv6())[:13], 54))  # cut inside the ethertype
    assert both_formats(frames).ipv6_frames == 1  # the bare 0x86DD header: its type says IPv6
    # a link type that promises IPv4 holds no IPv6, whatever its version nibble says
    assert decode_bytes(pcap_struct(as_frames([IPv6()]), linktype=228)).ipv6_frames == 0
    assert decode_bytes(pcap_struct(as_frames([IPv6()]), linktype=101)).ipv6_frames == 1


# -- pcapng ----------------------------------------------------------------------


def test_pcapng_written_by_scapy(tmp_path):
    packets = [vxlan(ping(POD["cp"], POD["w3"])), Ether() / ping(POD["cp"], POD["w1"]), Ether() / ARP()]
    path = tmp_path / "c.pcapng"
    writer = PcapNgWriter(str(path))
    for packet in packets:
        writer.write(packet)
    writer.close()
    result = decode_bytes(path.read_bytes())
    assert result.format == "pcapng" and result.frames == 3
    assert result.flows == reference(as_frames(packets))


def _block(order: str, block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def _shb(order: str) -> bytes:
    return _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def _idb(order: str, linktype: int, snaplen: int = 0) -> bytes:
    return _block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen))


def _epb(order: str, interface: int, data: bytes, wire_len: int | None = None) -> bytes:
    wire_len = len(data) if wire_len is None else wire_len
    return _block(order, 6, struct.pack(order + "IIIII", interface, 0, 0, len(data), wire_len) + data)


def _spb(order: str, data: bytes, wire_len: int | None = None) -> bytes:
    return _block(order, 3, struct.pack(order + "I", len(data) if wire_len is None else wire_len) + data)


def _opb(order: str, interface: int, data: bytes) -> bytes:
    return _block(order, 2, struct.pack(order + "HHIIII", interface, 0, 0, 0, len(data), len(data)) + data)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_interfaces_of_several_link_types_and_all_packet_blocks(order):
    eth_vx = bytes(vxlan(ping(POD["cp"], POD["w3"])))
    raw_ping = bytes(ping(POD["w1"], POD["cp"]))
    sll2 = bytes(CookedLinuxV2(proto=0x0800) / ping(POD["w2"], POD["cp"]))
    capture = b"".join([
        _shb(order), _idb(order, 1), _idb(order, 101),
        _block(order, 4, b"\0" * 8),  # a name resolution block: skipped
        _epb(order, 0, eth_vx), _epb(order, 1, raw_ping), _spb(order, eth_vx), _opb(order, 1, raw_ping),
        _epb(order, 7, raw_ping),  # an interface never described: not a frame (scapy skips it too)
        _shb(">" if order == "<" else "<"),  # a new section resets the interfaces and may flip byte order
        _idb(">" if order == "<" else "<", 276), _epb(">" if order == "<" else "<", 0, sll2),
    ])
    result = decode_bytes(capture)
    expected = tally([
        decode_frame(eth_vx, 1), decode_frame(raw_ping, 101), decode_frame(eth_vx, 1),
        decode_frame(raw_ping, 101), decode_frame(sll2, 276),
    ])
    assert result.flows == expected
    assert result.frames == 5 and result.linktypes == {1, 101, 276}


def test_pcapng_small_blocks_at_the_end_are_read():
    frame = bytes(Ether() / ping(POD["cp"], POD["w1"]))
    capture = _shb("<") + _idb("<", 1) + _epb("<", 0, frame) + _spb("<", b"\xff" * 8) + _idb("<", 101)
    result = decode_bytes(capture)
    assert result.frames == 2 and not result.truncated and result.problem is None


def test_pcapng_packet_data_is_bounded_by_its_block():
    short = bytes(Ether() / ping(POD["cp"], POD["w1"]))[:30]
    lying = struct.pack("<IIIII", 0, 0, 0, 1000, 1000) + short  # claims 1000 captured bytes
    first = _epb("<", 0, bytes(Ether() / ping(POD["cp"], POD["w3"])))
    result = decode_bytes(_shb("<") + _idb("<", 1) + first + _block("<", 6, lying))
    assert result.frames == 2 and set(result.flows) == {key(POD["cp"], POD["w3"])}


def test_pcapng_packet_block_with_a_bad_length_stops_decoding():
    frame = bytes(Ether() / ping(POD["cp"], POD["w1"]))
    good = _shb("<") + _idb("<", 1) + _epb("<", 0, frame)
    wrong_trailer = _epb("<", 0, frame)[:-4] + struct.pack("<I", 999)
    odd_length = bytearray(_epb("<", 0, frame))
    odd_length[4:8] = struct.pack("<I", len(odd_length) - 2)
    unpadded = struct.pack("<II", 6, 28 + len(frame) + 4) + struct.pack("<IIIII", 0, 0, 0, len(frame), len(frame))
    unpadded += frame + struct.pack("<I", 28 + len(frame) + 4)  # 130 bytes: not a multiple of 4
    for damaged in (wrong_trailer, bytes(odd_length), unpadded):
        result = decode_bytes(good + damaged + _epb("<", 0, frame))
        assert result.frames == 1 and result.problem and "damaged" in result.problem


def test_pcapng_simple_packet_block_is_cut_to_the_interface_snaplen():
    frame = bytes(vxlan(ping(POD["cp"], POD["w3"], size=500)))
    capture = _shb("<") + _idb("<", 1, snaplen=64) + _spb("<", frame)
    result = decode_bytes(capture)
    # cut inside the inner frame: only the outer, node-to-node IPv4 is there to see
    assert result.flows == reference([(frame[:64], len(frame))])
    assert result.flows[key(NODE["cp"], NODE["w3"])].max_wire_len == len(frame)


# -- streaming, truncation, damage -------------------------------------------------


def test_every_chunk_boundary_gives_the_same_result():
    packets = [vxlan(ping(POD["cp"], POD["w3"])), Ether() / Dot1Q() / ping(POD["cp"], POD["w1"]), Ether() / ARP()]
    for data in (pcap_bytes(packets), _shb("<") + _idb("<", 1) + b"".join(_epb("<", 0, bytes(p)) for p in packets)):
        whole = decode_bytes(data)
        assert whole.flows == reference(as_frames(packets))
        for split in range(1, len(data)):
            decoder = FastDecoder()
            decoder.feed(data[:split])
            decoder.feed(data[split:])
            assert decoder.close() == whole, split
        assert fed(data, chunk=1) == whole


def test_a_record_longer_than_the_join_window_across_chunks():
    big = Ether() / IP(src=POD["cp"], dst=POD["w1"], len=0) / ICMP() / Raw(b"j" * 150_000)  # as TSO shows it
    packets = [Ether() / ping(POD["cp"], POD["w1"]), big, vxlan(ping(POD["cp"], POD["w3"]))]
    data = pcap_struct(as_frames(packets))
    whole = decode_bytes(data)
    assert whole.flows == reference(as_frames(packets))
    for chunk in (1000, 70_000, 100_000):
        assert fed(data, chunk=chunk) == whole


def test_a_cut_last_record_is_reported_and_the_rest_still_counts():
    packets = [Ether() / ping(POD["cp"], POD["w1"]), vxlan(ping(POD["cp"], POD["w3"]))]
    full = pcap_bytes(packets)
    last_start = len(pcap_bytes(packets[:1]))
    for cut in range(last_start + 1, len(full)):
        result = decode_bytes(full[:cut])
        assert result.truncated, cut
        assert result.frames == 1
        assert result.flows == reference(as_frames(packets[:1]))
    assert not decode_bytes(full).truncated
    assert not decode_bytes(full[:last_start]).truncated


def test_a_cut_pcapng_block_is_reported():
    frames = [bytes(Ether() / ping(POD["cp"], POD["w1"])), bytes(vxlan(ping(POD["cp"], POD["w3"])))]
    head = _shb("<") + _idb("<", 1) + _epb("<", 0, frames[0])
    result = decode_bytes(head + _epb("<", 0, frames[1])[:-5])
    assert result.truncated and result.frames == 1
    assert result.flows == reference([(frames[0], len(frames[0]))])


def test_a_damaged_record_length_stops_decoding_with_a_problem():
    good = bytes(Ether() / ping(POD["cp"], POD["w1"]))
    capture = pcap_struct([(good, len(good))]) + struct.pack("<IIII", 0, 0, 0x7FFFFFFF, 60) + b"\0" * 100
    result = decode_bytes(capture)
    assert result.frames == 1 and result.problem and "damaged" in result.problem
    assert result.flows == reference([(good, len(good))])
    bad_block = struct.pack("<II", 6, 13) + b"\0" * 40
    result = decode_bytes(_shb("<") + _idb("<", 1) + _epb("<", 0, good) + bad_block)
    assert result.frames == 1 and result.problem


@pytest.mark.parametrize(
    "data",
    [b"", b"\xd4\xc3", b"hello, this is not a capture at all", b"\x0a\x0d\x0d\x0a\x1c\0\0\0garbage!"],
)
def test_what_is_not_a_capture_is_a_one_line_decode_error(data):
    with pytest.raises(DecodeError) as caught:
        decode_bytes(data)
    assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)


def test_an_unsupported_link_type_is_a_decode_error():
    with pytest.raises(DecodeError, match="link type 0"):
        decode_bytes(pcap_struct([], linktype=0))
    capture = _shb("<") + _idb("<", 147) + _epb("<", 0, b"\0" * 20)
    with pytest.raises(DecodeError, match="link type 147"):
        decode_bytes(capture)


def test_an_empty_capture_has_no_flows():
    result = decode_bytes(pcap_struct([]))
    assert result.frames == 0 and result.flows == {} and not result.truncated


# -- evidence ----------------------------------------------------------------------


def test_evidence_is_the_first_frames_of_each_flow_in_capture_order():
    a = Ether() / ping(POD["cp"], POD["w1"])
    b = vxlan(ping(POD["cp"], POD["w3"]))
    b_cut = bytes(b)[:90]
    frames = [(bytes(a), 98), (bytes(Ether() / ARP()), 42), (bytes(b), len(b)), (bytes(a), 98),
              (b_cut, len(b)), (bytes(b), len(b)), (bytes(a), 98), (bytes(a), 98)]
    result = decode_bytes(pcap_struct(frames), samples_per_flow=2)
    assert result.sample_frames == {key(POD["cp"], POD["w1"]): [0, 3], key(POD["cp"], POD["w3"]): [2, 4]}
    # a flow whose frames differ (here: a fragment among whole frames) still lists its first frames
    frames = [(bytes(a), 98), (bytes(Ether() / fragment(ping(POD["cp"], POD["w1"], 3000))[0]), 1514),
              (bytes(a), 98), (bytes(a), 98)]
    result = decode_bytes(pcap_struct(frames), samples_per_flow=2)
    assert result.sample_frames == {key(POD["cp"], POD["w1"]): [0, 1]}
    # each sample frame decodes (by the reference) to its flow
    for flow, indices in result.sample_frames.items():
        for index in indices:
            data, wire_len = frames[index]
            assert decode_frame(data, 1, wire_len).key == flow


# -- what the MTU verdicts read: sizes, MSS, fragmentation-needed -----------------------


def test_gso_sized_frames_plain_and_in_vxlan_keep_their_sizes_in_both_decoders():
    # tcpdump shows TSO/GSO super-packets before the NIC cuts them: 9000 and 64000-byte TCP on a 1500 link,
    # captured with a 256-byte snaplen as vxcap captures.
    frames = []
    for size in (9000, 64000):
        segment = IP(src=POD["cp"], dst=POD["w3"], flags="DF") / TCP(flags="PA") / Raw(b"t" * (size - 40))
        for packet in (Ether() / segment, vxlan(segment)):
            data = bytes(packet)
            frames.append((data[:256], len(data)))
    frames.append(as_frames([vxlan(ping(POD["cp"], POD["w3"], size=1422))])[0])
    result = both_formats(frames)
    assert result.flows == reference(frames)
    flow = result.flows[key(POD["cp"], POD["w3"])]
    assert flow.sizes == {
        (6, 9000, 9000 + 14, False): 1,
        (6, 9000, 9000 + 14 + 50, False): 1,
        (6, 64000, 64000 + 14, False): 1,
        (6, 64000, 64000 + 14 + 50, False): 1,
        (1, 1422 + 28, 1422 + 28 + 14 + 50, False): 1,
    }
    assert flow.max_wire_len == 64000 + 64 and not flow.tcp_mss and not flow.frag_needed


def test_mss_of_syns_and_syn_acks_plain_and_in_vxlan_in_both_decoders():
    def segment(src, dst, flags, mss):
        return IP(src=POD[src], dst=POD[dst]) / TCP(flags=flags, options=[("MSS", mss), ("NOP", None), ("WScale", 7)])

    packets = [
        vxlan(segment("cp", "w3", "S", 1410)),
        vxlan(segment("w3", "cp", "SA", 1410), outer=("w3", "cp")),
        vxlan(segment("cp", "w3", "A", 1410)),  # an option on a non-SYN is not an MSS
        Ether() / segment("cp", "w1", "S", 1460),
        Ether() / segment("cp", "w1", "S", 1460),
        Ether() / segment("w1", "cp", "SA", 1410),
    ]
    frames = as_frames(packets)
    result = both_formats(frames)
    assert result.flows == reference(frames)
    assert result.flows[key(POD["cp"], POD["w3"])].tcp_mss == {1410: 1}
    assert result.flows[key(POD["w3"], POD["cp"])].tcp_mss == {1410: 1}
    assert result.flows[key(POD["cp"], POD["w1"])].tcp_mss == {1460: 2}
    assert result.flows[key(POD["w1"], POD["cp"])].tcp_mss == {1410: 1}


def test_mss_cut_by_the_snaplen_is_not_read_by_either_decoder():
    data = bytes(vxlan(IP(src=POD["cp"], dst=POD["w3"]) / TCP(flags="S", options=[("NOP", None), ("MSS", 1410)])))
    frames = [(data[:cut], len(data)) for cut in range(len(data) - 6, len(data) + 1)]
    result = both_formats(frames)
    assert result.flows == reference(frames)
    # NOP + MSS is 5 bytes, padded to 8: cuts into the padding (3 bytes) keep the MSS, deeper ones do not
    assert result.flows[key(POD["cp"], POD["w3"])].tcp_mss == {1410: 4}
    assert result.flows[key(POD["cp"], POD["w3"])].packets == 7


def test_icmp_fragmentation_needed_in_both_decoders():
    quoted = IP(src=POD["w1"], dst=POD["w2"], flags="DF", len=1500) / ICMP()
    packets = [
        Ether() / IP(src=NODE["w2"], dst=POD["w1"]) / ICMP(type=3, code=4, nexthopmtu=1450) / quoted,
        vxlan(IP(src=POD["w3"], dst=POD["cp"]) / ICMP(type=3, code=4, nexthopmtu=1400) / quoted, outer=("w3", "cp")),
        Ether() / IP(src=NODE["w2"], dst=POD["w1"]) / ICMP(type=3, code=3) / quoted,  # port unreachable
    ]
    frames = as_frames(packets)
    result = both_formats(frames)
    assert result.flows == reference(frames)
    assert result.flows[key(NODE["w2"], POD["w1"])].frag_needed == {(1450, IPv4Address(POD["w2"])): 1}
    assert result.flows[key(POD["w3"], POD["cp"])].frag_needed == {(1400, IPv4Address(POD["w2"])): 1}
    # a message cut inside the quoted header still has its MTU, but names no destination
    data = bytes(packets[0])
    cut = both_formats([(data[: 14 + 20 + 8 + 19], len(data))])
    assert cut.flows[key(NODE["w2"], POD["w1"])].frag_needed == {(1450, None): 1}


def test_echo_requests_and_replies_are_told_apart_by_size_in_both_decoders():
    # A ladder probe and the peer's answer to the reverse ladder are the same size in the same flow.
    request = IP(src=POD["cp"], dst=POD["w3"], flags="DF") / ICMP(type=8) / Raw(b"p" * 1422)
    reply = IP(src=POD["cp"], dst=POD["w3"], flags="DF") / ICMP(type=0) / Raw(b"p" * 1372)
    cut = bytes(vxlan(request))
    frames = as_frames([vxlan(request), vxlan(reply), Ether() / request, Ether() / ICMP(type=8)]) + [(cut[:80], len(cut))]
    result = both_formats(frames)
    assert result.flows == reference(frames)
    assert result.flows[key(POD["cp"], POD["w3"])].echoes == {(8, 1422 + 28): 2, (0, 1372 + 28): 1}


def test_echo_identifier_sequence_and_outer_destination_mac_in_both_decoders():
    # Delivery matches a request to its reply by (identifier, sequence) across capture points, and counts
    # a request as arrived only when it was sent to the receiver's MAC: both decoders must read them alike,
    # plain and in VXLAN, behind a tag, and on the fast path's hot loop as on `classify`.
    w1, w3 = "02:42:0a:0a:0a:0b", "02:42:0a:0a:14:0d"
    request = IP(src=POD["cp"], dst=POD["w3"]) / ICMP(type=8, id=0x1234, seq=7) / Raw(b"p" * 56)
    reply = IP(src=POD["w3"], dst=POD["cp"]) / ICMP(type=0, id=0x1234, seq=7) / Raw(b"p" * 56)
    packets = [
        Ether(dst=w3) / request,
        Ether(dst=w1) / request,  # the same echo, flooded to another node's port
        Ether(dst=w1) / reply,
        Ether(dst=w3) / Dot1Q(vlan=10) / request,
        vxlan(request),
        Ether(dst=w3) / IP(src=NODE["cp"], dst=NODE["w3"]) / UDP(sport=40001, dport=4789) / VXLAN(vni=4096)
        / Ether(src=VTEP["cp"], dst=VTEP["w3"]) / IP(src=POD["cp"], dst=POD["w3"]) / ICMP(type=8, id=9, seq=65535),
    ]
    frames = as_frames(packets)
    result = both_formats(frames)
    assert result.flows == reference(frames)
    forward = result.flows[key(POD["cp"], POD["w3"])]
    assert forward.echo_ids[(8, 0x1234, 7, w3)] == 2
    assert forward.echo_ids[(8, 0x1234, 7, w1)] == 1
    assert forward.echo_ids[(8, 9, 65535, w3)] == 1
    assert forward.outer_dst_macs[w3] == 3 and forward.outer_dst_macs[w1] == 1
    assert result.flows[key(POD["w3"], POD["cp"])].echo_ids == {(0, 0x1234, 7, w1): 1}
    # A cooked capture has no destination MAC: None, in both decoders.
    cooked = [(bytes(CookedLinux(proto=0x0800) / request), len(bytes(CookedLinux(proto=0x0800) / request)))]
    result = both_formats(cooked, linktype=113)
    assert result.flows == reference(cooked, 113)
    assert result.flows[key(POD["cp"], POD["w3"])].echo_ids == {(8, 0x1234, 7, None): 1}


# -- agreement with the reference decoder, on generated mixes --------------------------

ADDRESSES = st.sampled_from(list(NODE.values()) + list(POD.values())) | st.ip_addresses(v=4).map(str)


TCP_OPTIONS = st.lists(
    st.sampled_from([("MSS", 1410), ("MSS", 1460), ("MSS", 8910), ("NOP", None), ("WScale", 7), ("SAckOK", b""),
                     ("Timestamp", (1, 0)), ("EOL", None)]),
    max_size=5,
)
# Option bytes as a broken stack might send them: bad lengths, an MSS of the wrong size, cut options.
RAW_OPTIONS = st.sampled_from([b"\x02\x04\x05\x82", b"\x02\x06\x05\x82\0\0", b"\x02\x03\x05\x82", b"\x02\x00\x02\x04\x05\x8c",
                               b"\x01\x02", b"\x02", b"\x08\x01\x02\x04\x05\x82", b"\x02\x04\x05"]) | st.binary(max_size=12)


def tcp_segments(ip):
    """TCP over `ip`: SYNs, SYN-ACKs and others, with options well or badly formed, and odd data offsets."""

    @st.composite
    def build(draw):
        flags = draw(st.sampled_from(["S", "SA", "A", "PA", "FA", "R"]) | st.integers(0, 511))
        tcp = TCP(sport=draw(st.integers(1, 65535)), dport=5201, flags=flags)
        if draw(st.booleans()):
            tcp.options = draw(TCP_OPTIONS)
            segment = ip / tcp
        else:
            raw = draw(RAW_OPTIONS)
            raw += b"\0" * (-len(raw) % 4)
            tcp.dataofs = draw(st.sampled_from([5 + len(raw) // 4]) | st.integers(0, 15))
            segment = ip / tcp / Raw(raw)
        if draw(st.integers(0, 3)) == 0:
            segment = segment / Raw(b"d" * draw(st.integers(0, 60)))
        return segment

    return build()


def icmp_messages(ip):
    """ICMP errors (fragmentation-needed among them) and echoes over `ip`."""

    @st.composite
    def build(draw):
        kind, code = draw(st.sampled_from([(3, 4), (3, 4), (3, 1), (11, 0), (8, 0), (0, 0), (3, 3)]))
        quoted = IP(src=draw(ADDRESSES), dst=draw(ADDRESSES), len=draw(st.integers(0, 65535))) / ICMP()
        if draw(st.booleans()):
            quoted.options = b"\x01" * 4 * draw(st.integers(1, 3))
        quoted = bytes(quoted)[: draw(st.sampled_from([None, 0, 8, 19, 20, 21]) | st.integers(0, 40))]
        if kind in (0, 8):  # what delivery matches a reply to its request by
            icmp = ICMP(type=kind, code=code, id=draw(st.integers(0, 65535)), seq=draw(st.integers(0, 65535)))
        else:
            icmp = ICMP(type=kind, code=code, nexthopmtu=draw(st.integers(0, 65535)))
        return ip / icmp / Raw(quoted)

    return build()


@st.composite
def inner_frames(draw):
    ip = IP(src=draw(ADDRESSES), dst=draw(ADDRESSES), proto=draw(st.sampled_from([1, 6, 17, 47])))
    if draw(st.booleans()):
        ip.options = draw(st.sampled_from([b"\x01\x01\x01\x01", b"\x94\x04\x00\x00", b"\x07\x07\x04" + b"\0" * 5]))
    ether = Ether(src=draw(st.sampled_from(list(VTEP.values()))), dst=draw(st.sampled_from(list(VTEP.values()))))
    tags = draw(st.lists(st.sampled_from([Dot1Q, Dot1AD]), max_size=2))
    layers = ether
    for tag in tags:
        layers = layers / tag(vlan=draw(st.integers(0, 4095)))
    if draw(st.integers(0, 5)) == 0:
        ip.flags, ip.frag = draw(st.sampled_from([(1, 0), (0, 185), (2, 0)]))
    payload = draw(st.sampled_from([ip / ICMP(), ip / Raw(b"x" * 40), ARP(), IPv6(), Raw(b"\0" * 8)])
                   | tcp_segments(ip) | icmp_messages(ip))
    frame = bytes(layers / payload)
    if isinstance(payload, IPv6) and draw(st.booleans()):  # IPv6 behind an IPv4 ethertype
        at = 12 + 4 * len(tags)
        frame = frame[:at] + b"\x08\x00" + frame[at + 2 :]
    return Raw(frame)


@st.composite
def underlay_frames(draw):
    """One frame as the underlay might carry it, with its link type and original length."""
    flags, frag = draw(st.sampled_from([(0, 0), (2, 0), (1, 0), (1, 185), (0, 370), (4, 0)]))
    total_len = draw(st.none() | st.integers(0, 40) | st.integers(0, 65535))
    outer = IP(src=draw(ADDRESSES), dst=draw(ADDRESSES), flags=flags, frag=frag, len=total_len)
    if draw(st.integers(0, 4)) == 0:
        outer.options = b"\x01" * 4 * draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["vxlan", "vxlan", "udp", "icmp", "tcp", "other"]))
    if kind == "vxlan":
        # any VXLAN flags but G and P together, where scapy parts from RFC 7348 (see the divergence test)
        vflags = draw(st.integers(0, 255).filter(lambda f: f & 0x84 != 0x84))
        l3 = outer / UDP(sport=draw(st.integers(1, 65535)),
                         dport=draw(st.sampled_from([4789, 8472, 4790, 53, 80]) | st.integers(1, 65535)))
        l3 = l3 / VXLAN(flags=vflags, vni=draw(st.integers(0, 2**24 - 1))) / draw(inner_frames())
    elif kind == "udp":
        l3 = outer / UDP(dport=draw(st.sampled_from([4789, 8472, 53]))) / Raw(draw(st.binary(max_size=80)))
    elif kind == "icmp":
        l3 = draw(icmp_messages(outer) | st.just(outer / ICMP() / Raw(b"p" * draw(st.integers(0, 100)))))
    elif kind == "tcp":
        l3 = draw(tcp_segments(outer))
    else:
        l3 = draw(st.sampled_from([ARP(), IPv6() / UDP(), Raw(b"\x45" + b"\0" * 30)]))
    linktype = draw(st.sampled_from([1, 1, 1, 113, 276, 101]))
    tags = draw(st.lists(st.sampled_from([0x8100, 0x88A8]), max_size=2))
    if linktype == 101:
        if not isinstance(l3, IP):
            l3 = outer / ICMP()
        frame = bytes(l3)
    else:
        if linktype != 1 and tags:
            tags[0] = 0x8100  # SLL's 802.1ad is a documented divergence
        types = tags + [0x0800 if isinstance(l3, IP) else (0x0806 if isinstance(l3, ARP) else 0x86DD)]
        body = b"".join(struct.pack("!HH", draw(st.integers(0, 4095)), t) for t in types[1:]) + bytes(l3)
        if linktype == 1:
            frame = bytes(Ether(type=types[0], dst=draw(st.sampled_from(UNDERLAY_MACS)))) + body
        elif linktype == 113:
            frame = bytes(CookedLinux(proto=types[0])) + body
        else:
            frame = bytes(CookedLinuxV2(proto=types[0])) + body
    wire_len = len(frame)
    if draw(st.integers(0, 5)) == 0:  # a snaplen cut
        frame = frame[: draw(st.integers(0, len(frame)))]
    return linktype, frame, wire_len


UNDERLAY_MACS = ["02:42:0a:0a:0a:0b", "02:42:0a:0a:14:0d", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01"]
_TAGS = (0x8100, 0x88A8)
_LINK = {1: (14, 12), 113: (16, 14), 276: (20, 0)}  # header length, type field offset
_SCAPY_LINK = {1: Ether, 113: CookedLinux, 276: CookedLinuxV2, 101: IP}


def _link_type_field(data: bytes, linktype: int) -> int | None:
    """The type after the link header and any tags, as far as the captured bytes go."""
    header, at = _LINK[linktype]
    if len(data) < header:
        return None
    value = int.from_bytes(data[at : at + 2], "big")
    while value in _TAGS:
        if len(data) - header < 4:
            return None
        value = int.from_bytes(data[header + 2 : header + 4], "big")
        header += 4
    return value


def _inner_ethertype(payload: bytes) -> tuple[int, int] | None:
    """(ethertype after any tags, where its payload starts) of the frame behind a VXLAN header
    with the I flag in a UDP payload of at least 42 bytes; None while the bytes do not tell."""
    if len(payload) < 8 + 14 + 20 or not payload[0] & 0x08:
        return None
    at, value = 22, int.from_bytes(payload[20:22], "big")
    while value in _TAGS:
        if len(payload) - at < 4:
            return None
        at, value = at + 4, int.from_bytes(payload[at + 2 : at + 4], "big")
    return value, at


def _shows_not_vxlan(payload: bytes) -> bool:
    """Whether a UDP payload that may be cut short already shows it is not VXLAN over Ethernet + IPv4."""
    if len(payload) < 8 + 14 + 20:
        return False
    if not payload[0] & 0x08:
        return True
    inner = _inner_ethertype(payload)
    if inner is None:
        return False
    value, at = inner
    if value != 0x0800:
        return True
    return len(payload) - at >= 20 and payload[at] >> 4 != 4


def _carries_ipv6(payload: bytes) -> bool:
    """Whether a UDP payload is a VXLAN header (I flag) then Ethernet, any tags, and the IPv6 ethertype."""
    inner = _inner_ethertype(payload)
    return inner is not None and inner[0] == 0x86DD


def reference_counts(frames, linktype: int, ports) -> tuple[int, dict[int, int], dict[int, int]]:
    """(IPv6 frames, frames to `ports` that are not VXLAN, VXLAN frames to `ports` carrying IPv6)
    of (captured bytes, original length) frames.

    IPv6: the link's type field (the version nibble on a raw link). Not VXLAN: scapy's outer
    UDP, unfragmented, to a named port, that the reference decoder does not read as VXLAN; when
    the frame is only partly here (snaplen cut, first fragment) only if its bytes already show it.
    Of those, a VXLAN header with an IPv6 frame inside is VXLAN carrying IPv6 instead.
    """
    ipv6, not_vxlan, ipv6_in_vxlan = 0, {}, {}
    for data, wire_len in frames:
        if (data[:1] and data[0] >> 4 == 6) if linktype == 101 else _link_type_field(data, linktype) == 0x86DD:
            ipv6 += 1
        facts = decode_frame(data, linktype, wire_len)
        if facts is None or facts.encap is Wire.VXLAN:
            continue
        outer = _SCAPY_LINK[linktype](data).getlayer(IP)
        if outer is None or outer.frag or outer.ihl < 5 or not isinstance(outer.payload, UDP):
            continue
        udp = outer.payload
        if udp.dport not in ports:
            continue
        if (wire_len > len(data) or outer.flags.MF) and not _shows_not_vxlan(bytes(udp.payload)):
            continue
        counts = ipv6_in_vxlan if _carries_ipv6(bytes(udp.payload)) else not_vxlan
        counts[udp.dport] = counts.get(udp.dport, 0) + 1
    return ipv6, not_vxlan, ipv6_in_vxlan


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(underlay_frames(), min_size=1, max_size=25), st.integers(1, 200))
def test_agrees_with_the_reference_decoder_on_generated_mixes(mix, chunk):
    ports = frozenset({4789, 8472})
    for linktype in {lt for lt, _, _ in mix}:
        frames = [(frame, wire_len) for lt, frame, wire_len in mix if lt == linktype]
        expected = reference(frames, linktype)
        counts = reference_counts(frames, linktype, ports)
        for capture in (pcap_struct(frames, linktype=linktype), pcapng_struct(frames, linktype=linktype)):
            result = fed(capture, chunk=chunk, vxlan_ports=ports)
            assert result.frames == len(frames)
            assert result.flows == expected
            assert (result.ipv6_frames, result.not_vxlan, result.ipv6_in_vxlan) == counts


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1, 113, 276, 101]), st.binary(max_size=120), st.booleans())
def test_garbage_frames_never_raise(linktype, data, as_ipv4):
    if as_ipv4 and linktype == 1 and len(data) >= 15:
        data = data[:12] + b"\x08\x00\x45" + data[15:]
    found = classify(data, 0, len(data), linktype)
    assert found is None or isinstance(found, tuple)
    decode_bytes(pcap_struct([(data, len(data))], linktype=linktype))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_files_raise_only_decode_error(data):
    for prefix in (b"", pcap_struct([])[:24], _shb("<")):
        try:
            decode_bytes(prefix + data)
        except DecodeError:
            pass


# -- deliberate divergences from the reference decoder (vxcap.core.decode) ------------
# Each test pins what the fast path does AND what the reference does today, so a fix
# of decode.py shows up here as a failure to remove the divergence.


def test_vxlan_with_both_g_and_p_flags_is_vxlan_in_both_decoders():
    header = struct.pack("!B3xI", 0x8C, 4096 << 8)  # RFC 7348 layout; scapy would build 11 bytes for these flags
    packet = (Ether() / IP(src=NODE["cp"], dst=NODE["w3"]) / UDP(dport=4789) / Raw(header)
              / Ether(dst=VTEP["w3"]) / ping(POD["cp"], POD["w3"]))
    result = decode_bytes(pcap_bytes([packet]))
    assert result.flows[key(POD["cp"], POD["w3"])].vnis == {4096: 1}
    assert decode_frame(bytes(packet)).vni == 4096  # the reference reads the RFC 7348 layout too


def test_cooked_capture_follows_an_8021ad_tag_in_both_decoders():
    packet = CookedLinux(proto=0x88A8) / Dot1Q(vlan=7) / ping(POD["cp"], POD["w1"])
    result = decode_bytes(pcap_bytes([packet], linktype=113))
    assert result.flows[key(POD["cp"], POD["w1"])].packets == 1
    assert decode_frame(bytes(packet), 113).src == IPv4Address(POD["cp"])


def test_cooked_protocol_1_is_not_an_ethernet_header_in_both_decoders():
    packet = CookedLinux(proto=1) / Ether() / ping(POD["cp"], POD["w1"])
    assert decode_bytes(pcap_bytes([packet], linktype=113)).flows == {}
    assert decode_frame(bytes(packet), 113) is None


# -- judged flows only: a busy node's other flows are counted, not kept ------------------------------


def _record_data(capture: bytes, at: int, big_endian: bool = False) -> bytes:
    """The captured bytes of the pcap record or pcapng enhanced packet block at file offset `at`."""
    if capture[:4] == b"\x0a\x0d\x0d\x0a":
        block_type, _, _, _, _, caplen = struct.unpack_from("<IIIIII", capture, at)
        assert block_type == 6
        return capture[at + 28 : at + 28 + caplen]
    caplen = struct.unpack_from(">I" if big_endian else "<I", capture, at + 8)[0]
    return capture[at + 16 : at + 16 + caplen]


def _addresses(frames, linktype):
    out = set()
    for data, wire_len in frames:
        facts = decode_frame(data, linktype, wire_len)
        if facts is not None:
            out |= {facts.src, facts.dst, facts.outer_src, facts.outer_dst}
    return sorted(out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(underlay_frames(), min_size=1, max_size=25), st.integers(1, 200), st.data())
def test_judged_flows_are_read_as_the_reference_reads_them_and_the_rest_only_counted(mix, chunk, data):
    ports = frozenset({4789, 8472})
    for linktype in {lt for lt, _, _ in mix}:
        frames = [(frame, wire_len) for lt, frame, wire_len in mix if lt == linktype]
        seen = _addresses(frames, linktype)
        judged = data.draw(st.sets(st.sampled_from(seen)) if seen else st.just(set()))
        expected = {k: v for k, v in reference(frames, linktype).items() if k[0] in judged or k[1] in judged}
        captures = [pcap_struct(frames, linktype=linktype), pcapng_struct(frames, linktype=linktype),
                    pcap_struct(frames, linktype=linktype, order=">")]
        for capture in captures:
            everything = fed(capture, chunk=chunk, vxlan_ports=ports)
            results = []
            for compiled in (False, True):  # the Python loop is the reference of the compiled skip path
                decoder = FastDecoder(3, ports, frozenset(int(a) for a in judged), compiled=compiled)
                for start in range(0, len(capture), chunk):
                    decoder.feed(capture[start : start + chunk])
                results.append(decoder.close())
            result = results[0]
            assert results[1] == result
            assert result.frames == len(frames)
            assert result.flows == expected
            # the warnings count every frame, judged or not
            assert (result.ipv6_frames, result.not_vxlan, result.ipv6_in_vxlan) == (
                everything.ipv6_frames, everything.not_vxlan, everything.ipv6_in_vxlan)
            assert result.ipv4_frames + result.unjudged_frames == everything.ipv4_frames
            assert result.sample_frames == {k: v for k, v in everything.sample_frames.items() if k in expected}
            # each sample frame is where the decoder says it is, with its link type
            for indices in result.sample_frames.values():
                for index in indices:
                    at, at_linktype = result.frame_at[index]
                    assert (_record_data(capture, at, big_endian=capture is captures[2]), at_linktype) == (frames[index][0], linktype)


def test_a_busy_nodes_other_flows_leave_no_trace_but_a_count():
    frames = as_frames(
        [Ether(src=VTEP["cp"], dst=VTEP["w3"]) / ping(POD["cp"], POD["w1"])]
        + [vxlan(ping(f"10.244.{i // 200}.{i % 200 + 1}", "10.244.9.9")) for i in range(500)]
        + [vxlan(ping(POD["w3"], POD["cp"]), outer=("w3", "cp"))]
    )
    judged = frozenset(int(IPv4Address(a)) for a in (POD["cp"], POD["w3"]))
    result = decode_bytes(pcap_struct(frames), judged=judged)
    assert set(result.flows) == {key(POD["cp"], POD["w1"]), key(POD["w3"], POD["cp"])}
    assert result.unjudged_frames == 500
    assert result.sample_frames == {key(POD["cp"], POD["w1"]): [0], key(POD["w3"], POD["cp"]): [501]}


def test_the_compiled_loop_is_built_and_reads_as_the_python_loop():
    from vxcap.core import fastdecode

    # setup.py builds it (scripts/install brings the compiler); without it the Python loop reads alone.
    assert fastdecode._TALLY is not None, "vxcap.core._skim was not built: pip install -e . with a C compiler"
    frames = as_frames([vxlan(ping(f"10.244.1.{i % 200 + 1}", "10.244.9.9")) for i in range(300)]
                       + [Ether(src=VTEP["cp"], dst=VTEP["w3"]) / ping(POD["cp"], POD["w1"])] * 3
                       + [vxlan(ping(POD["cp"], POD["w3"]))] * 4 + [Ether() / ARP()] * 5)
    capture = pcap_struct(frames)
    for judged in (frozenset({int(IPv4Address(POD["cp"]))}), None):
        compiled = FastDecoder(3, frozenset({4789}), judged)
        compiled.feed(capture)
        python = FastDecoder(3, frozenset({4789}), judged, compiled=False)
        python.feed(capture)
        assert compiled.close() == python.close()
    # a record the fast path does not read (here: a tagged frame) is read by `classify`, called from C, and
    # judged and counted as the Python loop does; it stops at the first record not all in the buffer
    tagged = as_frames([Ether() / Dot1Q(vlan=10) / ping(POD["cp"], POD["w1"])])
    capture = pcap_struct(frames[:300] + tagged)
    at = 24 + sum(16 + len(data) for data, _ in frames[:300])
    unjudged_keys: list = []
    for n in (len(capture), len(capture) - 1):
        agg: dict = {}
        got = fastdecode._TALLY(capture, 24, n, False, judged_bytes({int(IPv4Address(POD["cp"]))}), True,
                                b"\x12\xb5", agg, {}, 3, 0, 0, 1, ("ipv6",), classify, unjudged_keys.append)
        if n == len(capture):
            assert got == (len(capture), 301, 300)
            assert agg == {classify(capture, at + 16, len(capture), 1, len(tagged[0][0])): [1, [(300, at, 1)]]}
        else:
            assert got == (at, 300, 300)
            assert agg == {}
    assert unjudged_keys == []


def judged_bytes(addresses) -> bytes:
    return b"".join(a.to_bytes(4, "big") for a in sorted(addresses))
