"""The fast decoder classifies a frame in more than one place for speed: `classify` (the
definition), `ethernet_key` (its common Ethernet shapes in a few unpacks), the hot loops of
`FastDecoder` (ethernet_key inlined) and the compiled loop (vxcap/core/_skim.c). The copies
cannot drift apart unnoticed: this file holds `ethernet_key` to `classify` frame by frame, and
tests/core/test_fastdecode.py holds both loops, Python and compiled, to the scapy reference
(`test_judged_flows_are_read_as_the_reference_reads_them_and_the_rest_only_counted`)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.test_encap_decode import new_format_frames
from tests.core.test_fastdecode import underlay_frames
from vxcap.core.encap import Reading
from vxcap.core.fastdecode import classify, ethernet_key


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(underlay_frames())
def test_ethernet_key_files_every_frame_as_classify_does(drawn):
    linktype, frame, wire_len = drawn
    if linktype != 1:
        return  # ethernet_key reads Ethernet frames only; the others always go through classify
    assert ethernet_key(frame, 0, len(frame), wire_len) == classify(frame, 0, len(frame), 1, wire_len)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=14, max_size=120))
def test_ethernet_key_agrees_with_classify_on_any_bytes(data):
    data = data[:12] + b"\x08\x00" + data[14:]  # an IPv4 ethertype, so the fast shapes are tried
    assert ethernet_key(data, 0, len(data), len(data)) == classify(data, 0, len(data), 1, len(data))


# The same, for a run that reads every format (IP-in-IP, WireGuard on its ports, IPv6): the copies
# hand those frames to classify, which must be what they return.
READ_ALL = Reading(wireguard_ports=frozenset({51820, 51821}), ipv6=True, geneve_ports=frozenset({6081}))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(new_format_frames() | underlay_frames())
def test_ethernet_key_files_every_format_as_classify_does(drawn):
    linktype, frame, wire_len = drawn
    if linktype != 1:
        return
    assert (ethernet_key(frame, 0, len(frame), wire_len, READ_ALL)
            == classify(frame, 0, len(frame), 1, wire_len, READ_ALL))


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=14, max_size=120), st.sampled_from([b"\x08\x00", b"\x86\xdd"]))
def test_ethernet_key_agrees_with_classify_on_any_bytes_of_any_format(data, ethertype):
    data = data[:12] + ethertype + data[14:]
    assert ethernet_key(data, 0, len(data), len(data), READ_ALL) == classify(data, 0, len(data), 1, len(data), READ_ALL)
