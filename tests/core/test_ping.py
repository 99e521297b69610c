"""ping as data: the iputils argv and what its output says (real iputils 20221126 outputs)."""

from __future__ import annotations

import pytest

from vxcap.core.errors import InputError
from vxcap.core.ping import PingResult, parse_ping, ping_argv

# Real outputs from the lab (stdout, then ping's stderr lines).
OK_1422 = """PING 192.168.209.65 (192.168.209.65) 1422(1450) bytes of data.
1430 bytes from 192.168.209.65: icmp_seq=1 ttl=62 time=0.074 ms

--- 192.168.209.65 ping statistics ---
1 packets transmitted, 1 received, 0% packet loss, time 0ms
rtt min/avg/max/mdev = 0.074/0.074/0.074/0.000 ms
"""
LOCAL_ERROR_1423 = """PING 192.168.209.65 (192.168.209.65) 1423(1451) bytes of data.

--- 192.168.209.65 ping statistics ---
1 packets transmitted, 0 received, +1 errors, 100% packet loss, time 0ms

ping: local error: message too long, mtu=1450
"""
FRAG_NEEDED_1472 = """PING 192.168.209.65 (192.168.209.65) 1472(1500) bytes of data.
From 10.10.10.11 icmp_seq=1 Frag needed and DF set (mtu = 1450)

--- 192.168.209.65 ping statistics ---
2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 314ms

ping: local error: message too long, mtu=1450
"""


def test_argv_counts_spaces_and_waits():
    argv = ping_argv("192.168.209.65", count=3, interval=0.2, timeout=1)
    assert argv[0] == "ping" and argv[-1] == "192.168.209.65"
    pairs = dict(zip(argv[1:-1], argv[2:], strict=False))
    assert pairs["-c"] == "3" and pairs["-i"] == "0.2" and pairs["-W"] == "1"
    assert "-n" in argv and "-s" not in argv
    assert pairs["-M"] == "dont"


def test_argv_size_and_dont_fragment():
    argv = ping_argv("192.168.209.65", count=1, interval=1, timeout=2, size=1422, dont_fragment=True)
    pairs = dict(zip(argv[1:-1], argv[2:], strict=False))
    assert pairs["-s"] == "1422" and pairs["-M"] == "do"


@pytest.mark.parametrize(
    "kwargs",
    [dict(count=0), dict(interval=0), dict(timeout=-1), dict(size=70000), dict(dst_ip="192.168.1")],
)
def test_nonsense_is_refused(kwargs):
    args = dict(dst_ip="192.168.209.65", count=1, interval=0.2, timeout=1) | kwargs
    with pytest.raises((InputError, ValueError)):
        ping_argv(**args)


def split(text):
    """Back into stdout and ping's stderr lines ('ping: ...')."""
    lines = text.splitlines()
    stderr = [line for line in lines if line.startswith("ping:")]
    return "\n".join(line for line in lines if line not in stderr), "\n".join(stderr)


def test_all_replies():
    stdout, stderr = split(OK_1422)
    result = parse_ping(stdout, stderr, 0)
    assert result == PingResult(1, 1, 0, "1 packets transmitted, 1 received, 0% packet loss, time 0ms")
    assert result.all_replied and result.lost == 0


def test_a_local_error_is_counted():
    stdout, stderr = split(LOCAL_ERROR_1423)
    result = parse_ping(stdout, stderr, 1)
    assert (result.transmitted, result.received, result.local_errors) == (1, 0, 1)
    assert not result.all_replied


def test_remote_frag_needed_is_not_a_local_error():
    stdout, stderr = split(FRAG_NEEDED_1472)
    result = parse_ping(stdout, stderr, 1)
    assert (result.transmitted, result.received, result.local_errors) == (2, 0, 1)


def test_local_errors_in_merged_output_count_too():
    text = LOCAL_ERROR_1423
    assert parse_ping(text, "", 1).local_errors == 1


def test_no_statistics_means_nothing_was_sent_and_ping_says_why():
    result = parse_ping("", "ping: connect: Network is unreachable\n", 2)
    assert result == PingResult(0, 0, 0, "ping: connect: Network is unreachable")
    assert parse_ping("", "", 2).message == "ping exited with status 2 and said nothing"


def test_two_local_errors_of_two_packets():
    stdout = """PING 10.0.0.2 (10.0.0.2) 1200(1228) bytes of data.

--- 10.0.0.2 ping statistics ---
2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 204ms
"""
    stderr = "ping: local error: message too long, mtu=1000\nping: local error: message too long, mtu=1000\n"
    assert parse_ping(stdout, stderr, 1) == PingResult(
        2, 0, 2, "2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 204ms",
        refused_too_big=True, local_mtu=1000)


# Real iputils outputs on the vxlan6 lab (pod MTU 1430; worker's eth1 shrunk to 1400 for the last).
LOCAL_ERROR6_1383 = """PING fd19:2168::c0a8:d141(fd19:2168::c0a8:d141) 1383 data bytes

--- fd19:2168::c0a8:d141 ping statistics ---
1 packets transmitted, 0 received, +1 errors, 100% packet loss, time 0ms

ping: local error: message too long, mtu: 1430
"""
PACKET_TOO_BIG6_1382 = """PING fd19:2168::c0a8:a481(fd19:2168::c0a8:a481) 1382 data bytes
From fd19:2168::c0a8:5140 icmp_seq=1 Packet too big: mtu=1400

--- fd19:2168::c0a8:a481 ping statistics ---
1 packets transmitted, 0 received, +1 errors, 100% packet loss, time 0ms

"""


def test_ipv6_local_error_names_the_route_mtu_in_its_own_words():
    result = parse_ping(*split(LOCAL_ERROR6_1383), 1)
    assert (result.transmitted, result.received, result.local_errors) == (1, 0, 1)
    assert (result.refused_too_big, result.local_mtu, result.frag_needed_mtu) == (True, 1430, None)


def test_ipv6_packet_too_big_from_a_hop_is_its_fragmentation_needed_not_a_local_error():
    result = parse_ping(*split(PACKET_TOO_BIG6_1382), 1)
    assert (result.local_errors, result.refused_too_big, result.frag_needed_mtu) == (0, False, 1400)


def test_argv_to_an_ipv6_pod_allows_ipv6_payloads_and_no_more():
    argv = ping_argv("fd19:2168::c0a8:d141", count=1, interval=1, timeout=2, size=65527, dont_fragment=True)
    assert argv[-1] == "fd19:2168::c0a8:d141" and dict(zip(argv[1:-1], argv[2:], strict=False))["-s"] == "65527"
    with pytest.raises(InputError):
        ping_argv("fd19:2168::c0a8:d141", count=1, interval=1, timeout=2, size=65528)
    with pytest.raises(InputError):
        ping_argv("192.168.209.65", count=1, interval=1, timeout=2, size=65508)
