"""ICMP echo bytes: what vxcap sends must be what scapy (and any stack) reads as an echo
request, and what comes back is read from packets scapy builds here."""

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP
from scapy.packet import Raw

from vxcap.core.errors import InputError
from vxcap.core.icmp import EchoReply, FragNeeded, checksum, echo_request, read_icmp

POD_A, POD_B, NODE_A = "192.168.81.65", "192.168.209.65", "10.10.10.11"


@pytest.mark.parametrize("size", [0, 1, 56, 1422, 1473])
def test_an_echo_request_is_what_scapy_reads_as_one_with_a_valid_checksum(size):
    wire = echo_request(0x1234, 7, size)
    parsed = ICMP(wire)
    assert (parsed.type, parsed.code, parsed.id, parsed.seq) == (8, 0, 0x1234, 7)
    assert (parsed[Raw].load if size else b"") == bytes(i % 256 for i in range(size))  # each byte its offset
    # scapy recomputes the checksum when told to forget ours: they must agree
    rebuilt = ICMP(wire)
    del rebuilt.chksum
    assert ICMP(bytes(rebuilt)).chksum == parsed.chksum
    assert checksum(wire) == 0  # a packet with a valid checksum sums to zero


@pytest.mark.parametrize("identifier, sequence, size", [(-1, 1, 56), (0x10000, 1, 56), (1, 0x10000, 56), (1, 1, -1), (1, 1, 65508)])
def test_an_echo_request_out_of_range_is_an_input_error(identifier, sequence, size):
    with pytest.raises(InputError):
        echo_request(identifier, sequence, size)


def test_an_echo_reply_names_its_source_identifier_and_sequence():
    packet = bytes(IP(src=POD_B, dst=POD_A) / ICMP(type=0, id=0xBEEF, seq=3) / Raw(b"x" * 56))
    assert read_icmp(packet) == EchoReply(IPv4Address(POD_B), 0xBEEF, 3)


def test_an_echo_reply_behind_ip_options_is_still_read():
    packet = bytes(IP(src=POD_B, dst=POD_A, options=[b"\x01\x01\x01\x00"]) / ICMP(type=0, id=5, seq=9))
    assert IP(packet).ihl == 6
    assert read_icmp(packet) == EchoReply(IPv4Address(POD_B), 5, 9)


def test_fragmentation_needed_quoting_our_echo_gives_the_next_hop_mtu_and_the_echo():
    quoted = IP(src=POD_A, dst=POD_B, flags="DF") / ICMP(type=8, id=0x4242, seq=2) / Raw(b"\x00" * 1444)
    packet = bytes(IP(src=NODE_A, dst=POD_A) / ICMP(type=3, code=4, nexthopmtu=1450) / bytes(quoted)[:28])
    assert read_icmp(packet) == FragNeeded(IPv4Address(NODE_A), 1450, IPv4Address(POD_B), 0x4242, 2)


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(IP(src=POD_B, dst=POD_A) / ICMP(type=8, id=1, seq=1), id="an-echo-request"),
        pytest.param(IP(src=POD_B, dst=POD_A) / ICMP(type=3, code=1) / bytes(IP(dst=POD_B) / ICMP(id=1))[:28],
                     id="host-unreachable"),
        pytest.param(IP(src=NODE_A, dst=POD_A) / ICMP(type=3, code=4, nexthopmtu=1450)
                     / bytes(IP(dst=POD_B) / UDP(sport=1, dport=2))[:28], id="frag-needed-quoting-udp"),
        pytest.param(IP(src=NODE_A, dst=POD_A) / ICMP(type=3, code=4, nexthopmtu=1450)
                     / bytes(IP(dst=POD_B) / ICMP(type=0, id=1))[:28], id="frag-needed-quoting-a-reply"),
        pytest.param(IP(src=NODE_A, dst=POD_A) / ICMP(type=3, code=4, nexthopmtu=1450) / bytes(IP(dst=POD_B))[:12],
                     id="frag-needed-quote-cut"),
        pytest.param(IP(src=POD_B, dst=POD_A) / UDP(), id="not-icmp"),
        pytest.param(Raw(bytes(IP(src=POD_B, dst=POD_A) / ICMP(type=0))[:24]), id="icmp-header-cut"),
        pytest.param(Raw(b"\x60" + b"\x00" * 47), id="ipv6"),
        pytest.param(Raw(b"\x4f"), id="one-byte"),
    ],
)
def test_anything_else_says_nothing_about_our_echoes(packet):
    assert read_icmp(bytes(packet)) is None


@given(st.binary(max_size=120))
def test_any_bytes_give_a_result_or_none_never_an_exception(data):
    assert read_icmp(data) is None or isinstance(read_icmp(data), (EchoReply, FragNeeded))
