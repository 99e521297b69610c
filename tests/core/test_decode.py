"""The reference decoder: build with scapy, serialise, decode, assert field by field."""

from ipaddress import IPv4Address

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, CookedLinux, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from vxcap.core.decode import decode_frame
from vxcap.core.frames import LINKTYPE_LINUX_SLL, LINKTYPE_RAW
from vxcap.core.model import Wire

POD_A, POD_B = "192.168.81.65", "192.168.209.65"
NODE_A, NODE_B = "10.10.10.11", "10.10.20.13"
VTEP_B = "66:d2:0c:f0:ef:e5"


def vxlan_frame(*, dport=4789, vni=4096, outer=(NODE_A, NODE_B), inner=(POD_A, POD_B), flags=0x08, inner_mac=VTEP_B):
    return (
        Ether()
        / IP(src=outer[0], dst=outer[1], flags="DF")
        / UDP(sport=40000, dport=dport)  # dport always explicit: scapy's VXLAN overloads it to 8472
        / VXLAN(flags=flags, vni=vni)
        / Ether(src="66:fb:ad:98:aa:13", dst=inner_mac)
        / IP(src=inner[0], dst=inner[1])
        / ICMP()
        / (b"x" * 56)
    )


def test_vxlan_round_trip():
    raw = bytes(vxlan_frame())
    facts = decode_frame(raw)
    assert facts.encap is Wire.VXLAN
    assert (facts.src, facts.dst) == (IPv4Address(POD_A), IPv4Address(POD_B))
    assert (facts.outer_src, facts.outer_dst) == (IPv4Address(NODE_A), IPv4Address(NODE_B))
    assert (facts.udp_sport, facts.udp_dport, facts.vni) == (40000, 4789, 4096)
    assert facts.inner_dst_mac == VTEP_B and facts.inner_src_mac == "66:fb:ad:98:aa:13"
    assert facts.ip_proto == 1 and facts.outer_df and not facts.outer_fragment
    # 14 outer Ethernet + 20 IPv4 + 8 UDP + 8 VXLAN + 14 inner Ethernet + 20 IPv4 + 8 ICMP + 56
    assert facts.wire_len == len(raw) == 148
    assert facts.inner_len == 84


def test_plain_round_trip():
    facts = decode_frame(bytes(Ether() / IP(src=POD_A, dst="192.168.164.129") / TCP(dport=80)))
    assert facts.encap is Wire.PLAIN
    assert facts.src == facts.outer_src == IPv4Address(POD_A)
    assert facts.vni is None and facts.udp_dport is None and facts.ip_proto == 6


@pytest.mark.parametrize("port", [4789, 8472, 4790, 6081, 31337])
def test_vxlan_is_recognised_by_its_header_on_any_port(port):
    facts = decode_frame(bytes(vxlan_frame(dport=port)))
    assert facts.encap is Wire.VXLAN and facts.udp_dport == port


def test_udp_to_4789_that_is_not_vxlan_stays_plain():
    # I flag clear: not a VXLAN frame, whatever the port says
    facts = decode_frame(bytes(vxlan_frame(flags=0x00)))
    assert facts.encap is Wire.PLAIN
    assert (facts.src, facts.dst) == (IPv4Address(NODE_A), IPv4Address(NODE_B))
    short = Ether() / IP(src=NODE_A, dst=NODE_B) / UDP(sport=1, dport=4789) / b"\x08\x00\x00\x00"
    assert decode_frame(bytes(short)).encap is Wire.PLAIN


def test_wire_len_comes_from_the_original_length():
    raw = bytes(vxlan_frame())
    facts = decode_frame(raw[:96], wire_len=len(raw))
    assert facts.wire_len == len(raw) and facts.encap is Wire.VXLAN and facts.vni == 4096


def test_through_an_802_1q_tag():
    frame = Ether() / Dot1Q(vlan=20) / IP(src=NODE_A, dst=NODE_B) / UDP(sport=1, dport=4789) / VXLAN(vni=4096) \
        / Ether(dst=VTEP_B) / IP(src=POD_A, dst=POD_B) / ICMP()
    facts = decode_frame(bytes(frame))
    assert facts.encap is Wire.VXLAN and facts.vni == 4096 and facts.src == IPv4Address(POD_A)


def test_other_link_types():
    ip = IP(src=POD_A, dst=POD_B) / ICMP()
    assert decode_frame(bytes(ip), linktype=LINKTYPE_RAW).src == IPv4Address(POD_A)
    sll = CookedLinux(proto=0x0800) / ip
    assert decode_frame(bytes(sll), linktype=LINKTYPE_LINUX_SLL).dst == IPv4Address(POD_B)


def test_outer_fragments_are_flagged():
    first, *_ = (IP(src=NODE_A, dst=NODE_B, id=7) / UDP(sport=1, dport=4789) / (b"\x00" * 3000)).fragment(1400)
    facts = decode_frame(bytes(Ether() / first))
    assert facts.outer_fragment


@pytest.mark.parametrize("frame", [
    Ether() / ARP(),
    Ether() / IPv6(src="fd00::1", dst="fd00::2") / UDP(dport=4789),
    b"",
    b"\x00" * 5,
    b"\xff" * 64,
])
def test_frames_of_no_interest_or_garbage_are_none(frame):
    assert decode_frame(bytes(frame)) is None


# -- what the MTU verdicts read: MSS, ICMP fragmentation-needed, sizes ---------------------


def syn(flags="S", options=(("MSS", 1410), ("SAckOK", b""), ("WScale", 7)), src=POD_A, dst=POD_B):
    return IP(src=src, dst=dst, flags="DF") / TCP(sport=40000, dport=5201, flags=flags, options=list(options))


def in_vxlan(inner):
    return (Ether() / IP(src=NODE_A, dst=NODE_B) / UDP(sport=40000, dport=4789) / VXLAN(vni=4096)
            / Ether(dst=VTEP_B) / inner)


@pytest.mark.parametrize("wrap", [lambda ip: Ether() / ip, in_vxlan], ids=["plain", "vxlan"])
@pytest.mark.parametrize(("flags", "mss"), [("S", 1410), ("SA", 1460), ("S", 8910), ("A", None), ("PA", None)])
def test_mss_of_syn_and_syn_ack_round_trips(wrap, flags, mss):
    facts = decode_frame(bytes(wrap(syn(flags, options=[("NOP", None), ("MSS", mss or 1410), ("WScale", 7)]))))
    assert facts.tcp_mss == mss and facts.ip_proto == 6 and facts.frag_needed_mtu is None


def test_mss_needs_the_option_whole():
    assert decode_frame(bytes(Ether() / syn(options=[("WScale", 7)]))).tcp_mss is None
    full = bytes(Ether() / syn(options=[("MSS", 1410)]))
    assert decode_frame(full[:-1], wire_len=len(full)).tcp_mss is None  # cut by the snaplen
    assert decode_frame(full[:-1], wire_len=len(full)).wire_len == len(full)


@pytest.mark.parametrize("wrap", [lambda ip: Ether() / ip, in_vxlan], ids=["plain", "vxlan"])
def test_icmp_fragmentation_needed_carries_the_next_hop_mtu(wrap):
    quoted = IP(src=POD_A, dst=POD_B, flags="DF", len=1500) / ICMP()
    message = IP(src="10.10.10.12", dst=POD_A) / ICMP(type=3, code=4, nexthopmtu=1450) / quoted
    facts = decode_frame(bytes(wrap(message)))
    assert facts.frag_needed_mtu == 1450 and facts.ip_proto == 1 and facts.tcp_mss is None
    assert facts.frag_needed_dst == IPv4Address(POD_B)  # the destination of the packet that was too big
    unreachable = IP(src="10.10.10.12", dst=POD_A) / ICMP(type=3, code=1) / quoted
    assert decode_frame(bytes(wrap(unreachable))).frag_needed_mtu is None


@pytest.mark.parametrize("vxlan", [False, True])
def test_a_gso_sized_tcp_frame_keeps_its_sizes(vxlan):
    # What tcpdump shows before TSO/GSO cuts a super-packet: one 9000-byte TCP packet on a 1500 link.
    segment = IP(src=POD_A, dst=POD_B, flags="DF") / TCP(flags="PA") / (b"t" * (9000 - 40))
    raw = bytes(in_vxlan(segment) if vxlan else Ether() / segment)
    facts = decode_frame(raw[:256], wire_len=len(raw))
    assert facts.inner_len == 9000 and facts.ip_proto == 6 and not facts.outer_fragment
    assert facts.wire_len == len(raw) == 9000 + 14 + (50 if vxlan else 0)
