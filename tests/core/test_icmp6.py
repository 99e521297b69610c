"""ICMPv6 echo bytes, held to scapy's inet6 layers: what vxcap sends is what scapy reads as an
echo request with a valid checksum, and what comes back is read from messages scapy builds."""

from ipaddress import IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    IPv6,
)
from scapy.packet import Raw

from vxcap.core.errors import InputError
from vxcap.core.icmp import (
    EchoReply,
    PacketTooBig,
    checksum6,
    echo6_request,
    read_icmp,
    read_icmp6,
)

POD_A, POD_B, ROUTER = "fd19:2168::c0a8:5141", "fd19:2168::c0a8:d141", "fd19:2168::c0a8:5140"


def message(packet) -> bytes:
    """What a raw ICMPv6 socket hands over: the ICMPv6 message, without its IPv6 header."""
    return bytes(packet[IPv6].payload)


@pytest.mark.parametrize("size", [0, 1, 56, 1382, 1383])
def test_a_whole_echo_request_is_what_scapy_reads_as_one_with_the_checksum_it_computes(size):
    wire = echo6_request(0x1234, 7, size, IPv6Address(POD_A), IPv6Address(POD_B))
    packet = IPv6(src=POD_A, dst=POD_B) / ICMPv6EchoRequest(wire)
    parsed = IPv6(bytes(packet))
    assert (parsed[ICMPv6EchoRequest].type, parsed[ICMPv6EchoRequest].code) == (128, 0)
    assert (parsed[ICMPv6EchoRequest].id, parsed[ICMPv6EchoRequest].seq) == (0x1234, 7)
    assert parsed[ICMPv6EchoRequest].data == bytes(i % 256 for i in range(size))
    # scapy computes the checksum over the pseudo-header itself when told to forget ours
    rebuilt = IPv6(src=POD_A, dst=POD_B) / ICMPv6EchoRequest(id=0x1234, seq=7, data=bytes(i % 256 for i in range(size)))
    assert IPv6(bytes(rebuilt))[ICMPv6EchoRequest].cksum == parsed[ICMPv6EchoRequest].cksum
    assert checksum6(IPv6Address(POD_A), IPv6Address(POD_B), wire) == 0  # a valid checksum sums to zero


def test_the_checksum_depends_on_the_addresses_so_without_them_the_kernel_fills_it():
    bare = echo6_request(1, 1, 56)
    assert bare[2:4] == b"\x00\x00"
    to_b = echo6_request(1, 1, 56, IPv6Address(POD_A), IPv6Address(POD_B))
    to_router = echo6_request(1, 1, 56, IPv6Address(POD_A), IPv6Address(ROUTER))
    assert to_b[2:4] != to_router[2:4] and to_b[4:] == bare[4:]


@pytest.mark.parametrize(
    "identifier, sequence, size", [(-1, 1, 56), (0x10000, 1, 56), (1, 0x10000, 56), (1, 1, -1), (1, 1, 65528)]
)
def test_an_echo_request_out_of_range_is_an_input_error(identifier, sequence, size):
    with pytest.raises(InputError):
        echo6_request(identifier, sequence, size)


def test_the_largest_ipv6_payload_is_allowed_where_ipv4_stops():
    assert len(echo6_request(1, 1, 65527)) == 65535


def test_a_checksum_with_one_address_is_an_input_error():
    with pytest.raises(InputError):
        echo6_request(1, 1, 56, source=IPv6Address(POD_A))


def test_an_echo_reply_names_its_source_identifier_and_sequence():
    packet = IPv6(src=POD_B, dst=POD_A) / ICMPv6EchoReply(id=0xBEEF, seq=3, data=b"x" * 56)
    assert read_icmp6(message(packet), IPv6Address(POD_B)) == EchoReply(IPv6Address(POD_B), 0xBEEF, 3)


@pytest.mark.parametrize("quoted_len", [None, 48, 1232])
def test_packet_too_big_quoting_our_echo_gives_the_mtu_and_the_echo(quoted_len):
    ours = bytes(IPv6(src=POD_A, dst=POD_B) / ICMPv6EchoRequest(id=0x4242, seq=2, data=b"\x00" * 1382))
    quote = ours if quoted_len is None else ours[:quoted_len]
    packet = IPv6(src=ROUTER, dst=POD_A) / ICMPv6PacketTooBig(mtu=1400) / Raw(quote)
    read = read_icmp6(message(packet), IPv6Address(ROUTER))
    assert read == PacketTooBig(IPv6Address(ROUTER), 1400, IPv6Address(POD_B), 0x4242, 2)
    assert read.next_hop_mtu == 1400


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(IPv6(src=POD_B, dst=POD_A) / ICMPv6EchoRequest(id=1, seq=1), id="an-echo-request"),
        pytest.param(IPv6(src=ROUTER, dst=POD_A) / ICMPv6DestUnreach(code=3)
                     / bytes(IPv6(src=POD_A, dst=POD_B) / ICMPv6EchoRequest(id=1)), id="address-unreachable"),
        pytest.param(IPv6(src=ROUTER, dst=POD_A) / ICMPv6PacketTooBig(mtu=1400)
                     / bytes(IPv6(src=POD_A, dst=POD_B) / UDP(sport=1, dport=2)), id="too-big-quoting-udp"),
        pytest.param(IPv6(src=ROUTER, dst=POD_A) / ICMPv6PacketTooBig(mtu=1400)
                     / bytes(IPv6(src=POD_B, dst=POD_A) / ICMPv6EchoReply(id=1)), id="too-big-quoting-a-reply"),
        pytest.param(IPv6(src=ROUTER, dst=POD_A) / ICMPv6PacketTooBig(mtu=1400)
                     / bytes(IPv6(src=POD_A, dst=POD_B) / ICMPv6EchoRequest(id=1))[:44], id="too-big-quote-cut"),
        pytest.param(IPv6(src=ROUTER, dst=POD_A) / ICMPv6PacketTooBig(mtu=1400)
                     / bytes(Raw(b"\x45" + b"\x00" * 60)), id="too-big-quoting-ipv4-bytes"),
    ],
)
def test_anything_else_says_nothing_about_our_echoes(packet):
    assert read_icmp6(message(packet), IPv6Address(packet[IPv6].src)) is None


def test_an_ipv6_message_is_nothing_to_the_ipv4_reader_and_a_cut_one_nothing_to_either():
    packet = IPv6(src=POD_B, dst=POD_A) / ICMPv6EchoReply(id=1, seq=1)
    assert read_icmp(bytes(packet)) is None
    assert read_icmp6(message(packet)[:7], IPv6Address(POD_B)) is None


@given(st.binary(max_size=160))
def test_any_bytes_give_a_result_or_none_never_an_exception(data):
    read = read_icmp6(data, IPv6Address(POD_B))
    assert read is None or isinstance(read, (EchoReply, PacketTooBig))
