"""IP-in-IP, VXLAN over IPv6, WireGuard and plain IPv6, read by both decoders.

Every capture is built here with scapy; the scapy reference (decode.py) says what each frame is,
and the fast decoder (Python loop and compiled loop, pcap and pcapng) must tally it the same.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, ICMPv6EchoReply, ICMPv6EchoRequest
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from tests.core.test_fastdecode import pcap_struct, pcapng_struct, underlay_frames
from vxcap.core.decode import decode_frame
from vxcap.core.encap import Reading, is_wireguard_message
from vxcap.core.fastdecode import FastDecoder
from vxcap.core.frames import tally
from vxcap.core.model import Wire

# Both MACs given: else scapy asks the network (ARP, neighbour discovery) for one, per frame built.
ETH = {"src": "02:42:0a:0a:0a:0b", "dst": "02:42:0a:0a:14:0c"}
READ_ALL = Reading(vxlan_ports=frozenset({4789}), wireguard_ports=frozenset({51820, 51821}), ipv6=True,
                   geneve_ports=frozenset({6081}))
N4 = {"a": "10.10.10.11", "b": "10.10.20.12", "c": "10.10.30.13"}
N6 = {"a": "fd00:10::11", "b": "fd00:20::12", "c": "fd00:30::13"}
P4 = {"a": "192.168.81.65", "b": "192.168.164.129"}
P6 = {"a": "fd00:192:168:81::41", "b": "fd00:192:168:164::81"}


def wg_data(n_blocks: int = 5, receiver: int = 0x1234, counter: int = 0) -> bytes:
    """A WireGuard transport-data message: type 4, three zero bytes, receiver index, counter, then
    16n bytes (the encrypted packet, padded to 16, and the 16-byte tag)."""
    return struct.pack("<BxxxIQ", 4, receiver, counter) + b"\xaa" * (16 * n_blocks)


def ipip(src="a", dst="b", inner=None):
    inner = inner if inner is not None else IP(src=P4[src], dst=P4[dst]) / ICMP(id=7, seq=1) / Raw(b"x" * 56)
    return Ether(dst="02:42:0a:0a:14:0c") / IP(src=N4[src], dst=N4[dst]) / inner


def vxlan6(src="a", dst="b", inner=None, vni=4096, outer=None):
    inner = inner if inner is not None else IPv6(src=P6[src], dst=P6[dst]) / ICMPv6EchoRequest(id=7, seq=1, data=b"x" * 56)
    o_src, o_dst = outer or (N6[src], N6[dst])
    return (Ether(**ETH) / IPv6(src=o_src, dst=o_dst) / UDP(sport=40001, dport=4789) / VXLAN(vni=vni)
            / Ether(dst="66:d2:0c:f0:ef:e5") / inner)


def wireguard(src="a", dst="b", family=4, message=None, dport=None):
    ip = IP(src=N4[src], dst=N4[dst]) if family == 4 else IPv6(src=N6[src], dst=N6[dst])
    dport = dport or (51820 if family == 4 else 51821)
    return Ether(**ETH) / ip / UDP(sport=dport, dport=dport) / Raw(message if message is not None else wg_data())


def geneve_frame(src="a", dst="b", inner=None, vni=77, dport=6081, options=(), family=4, inner_mac="aa:bb:cc:00:00:02"):
    """Geneve built by scapy.contrib.geneve (not core/geneve.py, which the decoders read it with)."""
    inner = inner if inner is not None else IP(src=P4[src], dst=P4[dst]) / ICMP(id=7, seq=1) / Raw(b"x" * 56)
    ip = IP(src=N4[src], dst=N4[dst]) if family == 4 else IPv6(src=N6[src], dst=N6[dst])
    return (Ether(**ETH) / ip / UDP(sport=40002, dport=dport)
            / GENEVE(vni=vni, proto=0x6558, options=list(options)) / Ether(dst=inner_mac, src="aa:bb:cc:00:00:01") / inner)


def frames_of(packets):
    return [(bytes(p), len(bytes(p))) for p in packets]


def fast(frames, reading=READ_ALL, judged=None, linktype=1):
    """The fast decoder over the frames as pcap and pcapng, Python and compiled loops, which must agree."""
    results = []
    for capture in (pcap_struct(frames, linktype=linktype), pcapng_struct(frames, linktype=linktype)):
        for compiled in (False, True):
            decoder = FastDecoder(3, reading.vxlan_ports, judged, compiled=compiled, reading=reading)
            decoder.feed(capture)
            results.append(decoder.close())
    for other in results[1:]:
        assert (other.flows, other.frames, other.sample_frames) == (results[0].flows, results[0].frames,
                                                                    results[0].sample_frames)
    return results[0]


def reference(frames, reading=READ_ALL, linktype=1):
    return tally(decode_frame(data, linktype, wire_len, reading) for data, wire_len in frames)


# -- the reference reads each format -------------------------------------------------------------

def test_ip_in_ip_is_read_by_the_inner_pods_with_the_nodes_outside():
    facts = decode_frame(bytes(ipip()))
    assert facts.encap is Wire.IPIP
    assert (facts.src, facts.dst) == (IPv4Address(P4["a"]), IPv4Address(P4["b"]))
    assert (facts.outer_src, facts.outer_dst) == (IPv4Address(N4["a"]), IPv4Address(N4["b"]))
    assert (facts.ip_proto, facts.inner_len, facts.echo_type, facts.echo_id, facts.vni, facts.udp_dport) == (
        1, 84, 8, 7, None, None)
    assert facts.wire_len == 14 + 20 + 84  # IP-in-IP costs 20 bytes


def test_ip_in_ip_with_too_little_inside_is_plain_protocol_4():
    cut = Ether(**ETH) / IP(src=N4["a"], dst=N4["b"], proto=4) / Raw(b"\x45" + b"\0" * 10)
    facts = decode_frame(bytes(cut))
    assert (facts.encap, facts.ip_proto, facts.src) == (Wire.PLAIN, 4, IPv4Address(N4["a"]))


def test_vxlan_over_ipv6_is_read_only_when_ipv6_is_asked_for():
    frame = bytes(vxlan6())
    assert decode_frame(frame) is None  # the default reading: IPv6 is counted, not judged
    facts = decode_frame(frame, reading=READ_ALL)
    assert facts.encap is Wire.VXLAN
    assert (facts.src, facts.dst) == (IPv6Address(P6["a"]), IPv6Address(P6["b"]))
    assert (facts.outer_src, facts.outer_dst) == (IPv6Address(N6["a"]), IPv6Address(N6["b"]))
    assert (facts.vni, facts.udp_dport, facts.inner_dst_mac, facts.ip_proto) == (4096, 4789, "66:d2:0c:f0:ef:e5", 58)
    # an ICMPv6 echo reads as an echo request (8) for delivery; inner_len is the whole IPv6 packet
    assert (facts.echo_type, facts.echo_id, facts.echo_seq, facts.inner_len) == (8, 7, 1, 40 + 8 + 56)
    assert facts.wire_len == 14 + 70 + 40 + 8 + 56  # VXLAN over IPv6 costs 70 bytes


def test_wireguard_is_read_on_a_configured_port_and_keyed_by_the_nodes():
    facts = decode_frame(bytes(wireguard()), reading=READ_ALL)
    assert (facts.encap, facts.wg_type, facts.udp_dport) == (Wire.WIREGUARD, 4, 51820)
    assert facts.key == (IPv4Address(N4["a"]), IPv4Address(N4["b"]))
    six = decode_frame(bytes(wireguard(family=6)), reading=READ_ALL)
    assert (six.encap, six.udp_dport, six.key) == (Wire.WIREGUARD, 51821, (IPv6Address(N6["a"]), IPv6Address(N6["b"])))
    # the same bytes on another port, or with the default reading, are only UDP
    assert decode_frame(bytes(wireguard(dport=9999)), reading=READ_ALL).encap is Wire.PLAIN
    assert decode_frame(bytes(wireguard())).encap is Wire.PLAIN


@pytest.mark.parametrize("message, kind", [
    (wg_data(1), 4),  # a keepalive: the header and the 16-byte tag alone
    (wg_data(0), None),  # shorter than a keepalive (b"\x01\0\0\0" + b"i" * 144, 1), (b"\x02\0\0\0" + b"r" * 88, 2),
    (b"\x03\0\0\0" + b"c" * 60, 3),
    (wg_data(1)[:-1], None),  # transport data is 32 + 16n bytes
    (b"\x04\0\0\1" + b"\0" * 28, None),  # reserved bytes must be zero
    (b"\x01\0\0\0" + b"i" * 100, None),  # a handshake initiation is 148 bytes
    (b"\x05\0\0\0" + b"\0" * 28, None),
])
def test_a_wireguard_message_is_its_header_and_its_length(message, kind):
    assert is_wireguard_message(message[:4], len(message)) == kind
    facts = decode_frame(bytes(wireguard(message=message)), reading=READ_ALL)
    assert facts.encap is (Wire.WIREGUARD if kind else Wire.PLAIN)


def test_a_wireguard_message_cut_by_the_snaplen_still_reads_by_its_udp_length():
    frame = bytes(wireguard(message=wg_data(80)))
    facts = decode_frame(frame[:96], wire_len=len(frame), reading=READ_ALL)
    assert (facts.encap, facts.wg_type, facts.wire_len) == (Wire.WIREGUARD, 4, len(frame))
    assert fast([(frame[:96], len(frame))]).flows == reference([(frame[:96], len(frame))])


# -- the fast decoder reads each as the reference does ---------------------------------------------

def _mix():
    return [
        ipip(), ipip("b", "a"), ipip(inner=IP(src=P4["a"], dst=P4["b"]) / TCP(flags="S", options=[("MSS", 1440)])),
        vxlan6(), vxlan6("b", "a", inner=IPv6(src=P6["b"], dst=P6["a"]) / ICMPv6EchoReply(id=7, seq=1)),
        vxlan6(inner=IPv6(src=P6["a"], dst=P6["b"]) / TCP(flags="S", options=[("MSS", 1370)])),
        vxlan6(inner=IP(src=P4["a"], dst=P4["b"]) / ICMP()),  # IPv4 pods over an IPv6 underlay
        Ether(**ETH) / IP(src=N4["a"], dst=N4["b"]) / UDP(dport=4789) / VXLAN() / Ether(**ETH) / IPv6(src=P6["a"], dst=P6["b"]),
        wireguard(), wireguard("b", "a"), wireguard(family=6), wireguard(message=b"\x01\0\0\0" + b"i" * 144),
        Ether(**ETH) / IPv6(src=P6["a"], dst=P6["b"]) / ICMPv6EchoRequest(id=3, seq=9),
        Ether(**ETH) / IPv6(src=P6["a"], dst=P6["b"]) / TCP(flags="S", options=[("MSS", 1430)]),
        Ether(**ETH) / Dot1Q(vlan=20) / IPv6(src=N6["a"], dst=N6["b"]) / UDP(dport=51821) / Raw(wg_data(2)),
        Ether(**ETH) / IP(src=P4["a"], dst=P4["b"]) / ICMP(),
    ]


def test_geneve_is_read_on_its_port_with_vni_port_inner_mac_and_options():
    options = [GeneveOptions(classid=0x0104, type=0x80, data=b"abcd"), GeneveOptions(classid=0xFFFF, type=1)]
    facts = decode_frame(bytes(geneve_frame(options=options)), reading=READ_ALL)
    assert (facts.encap, facts.vni, facts.udp_dport, facts.inner_dst_mac) == (Wire.GENEVE, 77, 6081, "aa:bb:cc:00:00:02")
    assert (facts.src, facts.dst) == (IPv4Address(P4["a"]), IPv4Address(P4["b"]))
    assert facts.geneve_options == ((0x0104, 0x80, 4), (0xFFFF, 1, 0))
    # 8 words of options set VXLAN's I bit in Geneve's first byte: on the Geneve port it is still Geneve
    many = [GeneveOptions(classid=1, type=2, data=b"d" * 28)]
    assert decode_frame(bytes(geneve_frame(options=many)), reading=READ_ALL).encap is Wire.GENEVE
    six = decode_frame(bytes(geneve_frame(family=6)), reading=READ_ALL)
    assert (six.encap, six.outer_src, six.vni) == (Wire.GENEVE, IPv6Address(N6["a"]), 77)


def test_geneve_is_not_read_off_its_port_nor_with_another_protocol():
    assert decode_frame(bytes(geneve_frame(dport=7000)), reading=READ_ALL).encap is Wire.PLAIN
    assert decode_frame(bytes(geneve_frame()), reading=Reading()).encap is Wire.PLAIN
    other = bytes(geneve_frame())
    other = other[:44] + b"\x08\x00" + other[46:]  # protocol 0x0800: not the Ethernet Geneve carries here
    assert decode_frame(other, reading=READ_ALL).encap is Wire.PLAIN


def test_the_fast_decoder_tallies_geneve_as_the_reference():
    frames = frames_of([geneve_frame(), geneve_frame("b", "a", vni=78), geneve_frame(family=6),
                        geneve_frame(options=[GeneveOptions(classid=1, type=2, data=b"d" * 28)]),
                        geneve_frame(dport=7000)])
    result = fast(frames)
    assert result.flows == reference(frames)
    flow = result.flows[(IPv4Address(P4["a"]), IPv4Address(P4["b"]))]
    assert flow.encaps == {Wire.GENEVE: 3}
    assert flow.vnis == {77: 3}
    assert flow.udp_dports == {6081: 3}
    assert result.flows[(IPv4Address(N4["a"]), IPv4Address(N4["b"]))].encaps == {Wire.PLAIN: 1}  # off the port


def test_the_fast_decoder_tallies_every_format_as_the_reference():
    frames = frames_of(_mix())
    result = fast(frames)
    assert result.flows == reference(frames)
    flows = result.flows
    assert flows[(IPv4Address(P4["a"]), IPv4Address(P4["b"]))].encaps == {Wire.IPIP: 2, Wire.VXLAN: 1, Wire.PLAIN: 1}
    assert flows[(IPv6Address(P6["a"]), IPv6Address(P6["b"]))].tcp_mss == {1370: 1, 1430: 1}
    assert flows[(IPv4Address(N4["a"]), IPv4Address(N4["b"]))].wg_types == {4: 1, 1: 1}
    assert flows[(IPv6Address(N6["a"]), IPv6Address(N6["b"]))].udp_dports == {51821: 2}


@pytest.mark.parametrize("linktype, wrap", [
    (113, lambda p, t: bytes(CookedLinux(proto=t)) + p),
    (276, lambda p, t: bytes(CookedLinuxV2(proto=t)) + p),
    (101, lambda p, t: p),
])
def test_every_link_type_reads_the_formats(linktype, wrap):
    packets = [p[Ether].payload for p in _mix() if not p.haslayer(Dot1Q)]
    frames = frames_of([Raw(wrap(bytes(p), 0x86DD if isinstance(p, IPv6) else 0x0800)) for p in packets])
    assert fast(frames, linktype=linktype).flows == reference(frames, linktype=linktype)


def test_judged_ipv6_pods_keep_their_flows_and_the_rest_is_only_counted():
    frames = frames_of(_mix() + [vxlan6(inner=IPv6(src="fd00:9::1", dst="fd00:9::2") / ICMPv6EchoRequest())] * 5)
    judged = frozenset({int(IPv6Address(P6["a"])), int(IPv4Address(N4["a"]))})
    result = fast(frames, judged=judged)
    wanted = {k: v for k, v in reference(frames).items() if int(k[0]) in judged or int(k[1]) in judged}
    assert result.flows == wanted
    assert (IPv6Address(P6["b"]), IPv6Address(P6["a"])) in result.flows
    assert result.unjudged_frames >= 5


def test_the_default_reading_is_unchanged_for_ipv6_and_wireguard():
    frames = frames_of([vxlan6(), wireguard(), Ether(**ETH) / IPv6(src=P6["a"], dst=P6["b"]) / ICMPv6EchoRequest()])
    result = fast(frames, reading=Reading())
    assert result.ipv6_frames == 2
    assert result.flows == reference(frames, reading=Reading())
    assert result.flows[(IPv4Address(N4["a"]), IPv4Address(N4["b"]))].encaps == {Wire.PLAIN: 1}


# -- held frame by frame: random frames of every shape, both loops against the reference ----------

@st.composite
def new_format_frames(draw):
    """IP-in-IP, WireGuard-shaped UDP and IPv6 frames, whole or cut, with the odd malformed field."""
    kind = draw(st.sampled_from(["ipip", "wg", "wg6", "vxlan6", "plain6", "vxlan4in6", "geneve", "geneve6"]))
    if kind == "ipip":
        total = draw(st.none() | st.integers(0, 80))
        inner = IP(src=draw(st.sampled_from(list(P4.values()))), dst=P4["b"],
                   ihl=draw(st.none() | st.sampled_from([4, 5, 6])), frag=draw(st.sampled_from([0, 0, 185])))
        inner = inner / draw(st.sampled_from([ICMP(id=3, seq=4), TCP(flags="S", options=[("MSS", 1400)]),
                                              UDP(), Raw(b"\0" * 4)]))
        packet = Ether(**ETH) / IP(src=N4["a"], dst=N4["b"], proto=4, len=total,
                              frag=draw(st.sampled_from([0, 0, 0, 185]))) / Raw(bytes(inner)[: draw(st.integers(0, 60))])
    elif kind in ("wg", "wg6"):
        message = draw(st.sampled_from([wg_data(draw(st.integers(0, 6))), b"\x01\0\0\0" + b"i" * 144,
                                        b"\x02\0\0\0" + b"r" * 88, b"\x03\0\0\0" + b"c" * 60])
                       | st.binary(max_size=60))
        ip = IP(src=N4["a"], dst=N4["b"]) if kind == "wg" else IPv6(src=N6["a"], dst=N6["b"])
        packet = Ether(**ETH) / ip / UDP(dport=draw(st.sampled_from([51820, 51821, 4789, 53])),
                                    len=draw(st.none() | st.integers(0, 200))) / Raw(message)
    elif kind == "vxlan6":
        inner = IPv6(src=P6["a"], dst=P6["b"], plen=draw(st.none() | st.integers(0, 80)))
        inner = inner / draw(st.sampled_from([ICMPv6EchoRequest(id=1, seq=2), ICMPv6EchoReply(), Raw(b"\0" * 3),
                                              TCP(flags="S", options=[("MSS", 1370)]), TCP(flags="A")]))
        layers = Ether(**ETH)
        if draw(st.booleans()):
            layers = layers / Dot1Q(vlan=3)
        packet = Ether(**ETH) / IPv6(src=N6["a"], dst=N6["b"], plen=draw(st.none() | st.integers(0, 200))) / UDP(
            dport=draw(st.sampled_from([4789, 8472]))) / VXLAN(flags=draw(st.sampled_from([0x08, 0x00, 0x0C]))) / layers / inner
    elif kind in ("geneve", "geneve6"):
        # Options of any length (8..15 words set VXLAN's I bit), any port, the odd bad version / protocol
        # / option length, IPv4 or IPv6 pods, a tag inside.
        options = [GeneveOptions(classid=draw(st.sampled_from([0x0104, 0xFFFF])), type=draw(st.integers(0, 255)),
                                 data=b"o" * (4 * draw(st.integers(0, 8))))
                   for _ in range(draw(st.integers(0, 3)))]
        inner = draw(st.sampled_from([IP(src=P4["a"], dst=P4["b"]) / ICMP(id=2, seq=3),
                                      IP(src=P4["b"], dst=P4["a"]) / TCP(flags="S", options=[("MSS", 1410)]),
                                      IPv6(src=P6["a"], dst=P6["b"]) / ICMPv6EchoRequest(id=1, seq=2), Raw(b"\0" * 8)]))
        layers = Ether(**ETH) / Dot1Q(vlan=4) if draw(st.booleans()) else Ether(**ETH)
        header = GENEVE(vni=draw(st.integers(0, 2**24 - 1)), proto=draw(st.sampled_from([0x6558, 0x6558, 0x0800])),
                        version=draw(st.sampled_from([0, 0, 0, 1])), options=options)
        if draw(st.integers(0, 5)) == 0:
            header.optionlen = draw(st.integers(0, 63))
        ip = IP(src=N4["a"], dst=N4["b"]) if kind == "geneve" else IPv6(src=N6["a"], dst=N6["b"])
        packet = Ether(**ETH) / ip / UDP(dport=draw(st.sampled_from([6081, 6081, 4789, 7000]))) / header / layers / inner
    elif kind == "vxlan4in6":
        packet = Ether(**ETH) / IPv6(src=N6["a"], dst=N6["b"]) / UDP(dport=4789) / VXLAN() / Ether(**ETH) / IP(
            src=P4["a"], dst=P4["b"]) / ICMP(id=1, seq=draw(st.integers(0, 9)))
    else:
        packet = Ether(**ETH) / IPv6(src=P6["a"], dst=P6["b"], nh=draw(st.sampled_from([6, 17, 58, 44, 0])),
                                plen=draw(st.none() | st.integers(0, 100))) / Raw(draw(st.sampled_from(
                                    [bytes(ICMPv6EchoRequest(id=4, seq=5)), bytes(TCP(flags="S", options=[("MSS", 9)])),
                                     b"\x80\0\0\0", b""])))
    frame = bytes(packet)
    wire_len = len(frame)
    if draw(st.integers(0, 4)) == 0:
        frame = frame[: draw(st.integers(0, len(frame)))]
    return 1, frame, wire_len


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(new_format_frames() | underlay_frames(), min_size=1, max_size=25), st.data())
def test_every_frame_is_tallied_as_the_reference_tallies_it(mix, data):
    for linktype in {lt for lt, _, _ in mix}:
        frames = [(frame, wire_len) for lt, frame, wire_len in mix if lt == linktype]
        expected = reference(frames, linktype=linktype)
        addresses = sorted({a for key in expected for a in key}, key=str)
        judged = data.draw(st.none() | (st.sets(st.sampled_from(addresses)) if addresses else st.just(set())))
        if judged is not None:
            expected = {k: v for k, v in expected.items() if k[0] in judged or k[1] in judged}
            judged = frozenset(int(a) for a in judged)
        result = fast(frames, judged=judged, linktype=linktype)
        assert result.frames == len(frames)
        assert result.flows == expected
