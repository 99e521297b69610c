"""The Geneve header module against scapy's own Geneve layer (scapy.contrib.geneve), and fuzzed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether

from vxcap.core import geneve
from vxcap.core.geneve import ETHERNET, GeneveError, GeneveHeader, GeneveOption

INNER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.244.1.5", dst="10.244.3.7") / ICMP()


def scapy_geneve(vni: int, options=(), proto: int = ETHERNET, oam: int = 0, critical: int = 0) -> bytes:
    # Lengths given explicitly: scapy's GeneveOptions.post_build masks the byte with 0x3 when it
    # fills `length` in, which clears the option's reserved bits.
    opts = [GeneveOptions(classid=o.option_class, type=o.type, reserved=o.reserved, length=len(o.data) // 4, data=o.data)
            for o in options]
    return bytes(GENEVE(vni=vni, proto=proto, oam=oam, critical=critical, options=opts) / INNER)


def test_a_plain_antrea_style_header_reads_like_scapys():
    wire = scapy_geneve(0)
    header, offset = geneve.parse(wire)
    assert header == GeneveHeader(vni=0, protocol=0x6558)
    assert offset == 8 and wire[offset:] == bytes(INNER)


def test_options_are_read_with_class_type_and_data():
    options = (GeneveOption(0x0104, 0x80, b"\x00\x00\x00\x2a"),  # VMware, critical
               GeneveOption(0xFFFF, 0x01, b"abcdefgh", reserved=5))
    wire = scapy_geneve(0x123456, options, critical=1)
    header, offset = geneve.parse(wire)
    assert header.options == options and header.options[0].critical and not header.options[1].critical
    assert header.critical and header.vni == 0x123456 and offset == 8 + 8 + 12
    assert Ether(wire[offset:])[IP].dst == "10.244.3.7"


def test_what_we_build_scapy_reads():
    header = GeneveHeader(vni=48213, options=(GeneveOption(0x0102, 0x08, b"\xde\xad\xbe\xef"),), oam=True)
    parsed = GENEVE(geneve.build(header) + bytes(INNER))
    assert (parsed.vni, parsed.proto, parsed.oam, parsed.optionlen) == (48213, 0x6558, 1, 2)
    assert (parsed.options[0].classid, parsed.options[0].type, parsed.options[0].data) == (0x0102, 0x08, b"\xde\xad\xbe\xef")
    assert parsed[IP].src == "10.244.1.5"


def test_the_udp_port_binding_is_6081():
    packet = Ether(bytes(Ether() / IP() / UDP(sport=51000, dport=geneve.GENEVE_PORT) / GENEVE(vni=7, proto=ETHERNET) / INNER))
    assert packet[GENEVE].vni == 7 and packet[GENEVE][ICMP] is not None


options_strategy = st.lists(
    st.builds(GeneveOption, st.integers(0, 0xFFFF), st.integers(0, 0xFF),
              st.integers(0, 31).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)), st.integers(0, 7)),
    max_size=4,
).filter(lambda opts: sum(len(o) for o in opts) <= geneve.MAX_OPTIONS_LENGTH)


@settings(max_examples=300, deadline=None)
@given(vni=st.integers(0, 2**24 - 1), protocol=st.integers(0, 0xFFFF), options=options_strategy,
       oam=st.booleans(), critical=st.booleans(), reserved1=st.integers(0, 63), reserved2=st.integers(0, 255))
def test_round_trip_agrees_with_scapy_both_ways(vni, protocol, options, oam, critical, reserved1, reserved2):
    header = GeneveHeader(vni=vni, protocol=protocol, options=tuple(options), oam=oam, critical=critical,
                          reserved1=reserved1, reserved2=reserved2)
    ours = geneve.build(header)
    theirs = GENEVE(version=0, vni=vni, proto=protocol, oam=int(oam), critical=int(critical), reserved=reserved1,
                    reserved2=reserved2,
                    options=[GeneveOptions(classid=o.option_class, type=o.type, reserved=o.reserved,
                                           length=len(o.data) // 4, data=o.data) for o in options])
    assert ours == bytes(theirs)
    assert geneve.parse(ours + b"payload") == (header, len(ours))


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_parser(data):
    try:
        header, offset = geneve.parse(data)
    except GeneveError:
        return
    assert 8 <= offset <= len(data) and header.length == offset
    assert geneve.build(header) == data[:offset]  # what parses rebuilds to the same bytes


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00\x65", "truncated: 3 of 8"),
    (bytes([0x40, 0, 0x65, 0x58, 0, 0, 1, 0]), "version 1"),
    (bytes([0x02, 0, 0x65, 0x58, 0, 0, 1, 0]) + b"\x00" * 4, "Opt Len says 8 option bytes; only 4 follow"),
    (bytes([0x01, 0, 0x65, 0x58, 0, 0, 1, 0]) + bytes([0, 1, 0, 2]), "says 8 data bytes; only 0 remain"),
])
def test_bad_headers_are_named(data, message):
    with pytest.raises(GeneveError, match=message):
        geneve.parse(data)


def test_building_refuses_what_the_header_cannot_say():
    with pytest.raises(GeneveError, match="multiple of 4"):
        geneve.build(GeneveHeader(vni=1, options=(GeneveOption(1, 1, b"abc"),)))
    with pytest.raises(GeneveError, match="vni 16777216 does not fit 24 bits"):
        geneve.build(GeneveHeader(vni=2**24))
    with pytest.raises(GeneveError, match="at most 252"):
        geneve.build(GeneveHeader(vni=1, options=(GeneveOption(1, 1, b"x" * 124),) * 3))


@settings(max_examples=500, deadline=None)
@given(options=options_strategy, flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
       cut=st.integers(0, 400))
def test_damaged_real_headers_never_crash_the_parser(options, flips, cut):
    # Random bytes mostly stop at the version check; damage to a valid header reaches the option walk.
    data = bytearray(geneve.build(GeneveHeader(vni=17284, options=tuple(options))) + bytes(INNER))
    for position, value in flips:
        if position < len(data):
            data[position] = value
    data = bytes(data[:cut])
    try:
        header, offset = geneve.parse(data)
    except GeneveError:
        return
    assert geneve.build(header) == data[:offset]
