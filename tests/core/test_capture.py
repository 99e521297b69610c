"""tcpdump as data: its argv, the capture filter, and its closing report."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from vxcap.core.capture import DEFAULT_SNAPLEN, bpf_filter, is_listening, parse_tcpdump_stats, tcpdump_argv
from vxcap.core.errors import InputError


def test_argv_captures_the_interface_to_a_file_packet_buffered():
    argv = tcpdump_argv("eth1", Path("/tmp/run/w.pcap"), "net 192.168.0.0/16", snaplen=256, max_packets=500)
    assert argv[0] == "tcpdump"
    pairs = dict(zip(argv[1:-1], argv[2:], strict=False))
    assert pairs["-i"] == "eth1" and pairs["-w"] == "/tmp/run/w.pcap"
    assert pairs["-s"] == "256" and pairs["-c"] == "500"
    assert {"-nn", "-U", "--immediate-mode"} <= set(argv)
    assert argv[-1] == "net 192.168.0.0/16"  # one argument: tcpdump joins the rest anyway


def test_argv_without_a_filter_has_no_empty_argument():
    assert "" not in tcpdump_argv("eth1", "/tmp/x.pcap", "")


def test_the_default_snaplen_keeps_every_header_of_a_vxlan_tcp_frame():
    # outer Ethernet + IPv4 + UDP + VXLAN + inner Ethernet + IPv4 + TCP, with IPv4 and TCP options at their longest
    assert DEFAULT_SNAPLEN >= 14 + 60 + 8 + 8 + 14 + 60 + 60


@pytest.mark.parametrize(("snaplen", "count"), [(0, 10), (256, 0)])
def test_nonsense_sizes_are_refused(snaplen, count):
    with pytest.raises(InputError):
        tcpdump_argv("eth1", "/tmp/x.pcap", "", snaplen=snaplen, max_packets=count)


def test_filter_keeps_the_pool_and_every_involved_node():
    bpf = bpf_filter(IPv4Network("192.168.0.0/16"), [IPv4Address("10.10.10.11"), IPv4Address("10.10.20.13"),
                                                       IPv4Address("10.10.10.11")])
    assert bpf == "net 192.168.0.0/16 or host 10.10.10.11 or host 10.10.20.13"


def test_filter_without_a_pool_is_the_hosts_and_without_anything_is_everything():
    assert bpf_filter(None, [IPv4Address("10.10.10.11")]) == "host 10.10.10.11"
    assert bpf_filter(None, []) == ""


# tcpdump 4.99's closing lines on SIGINT, as it writes them to stderr.
STOPPED = """tcpdump: listening on eth1, link-type EN10MB (Ethernet), snapshot length 256 bytes
12 packets captured
14 packets received by filter
2 packets dropped by kernel
"""


def test_stats_are_read_from_the_closing_lines():
    assert parse_tcpdump_stats(STOPPED) == (12, 2)


def test_singular_counts_are_read_too():
    assert parse_tcpdump_stats("1 packet captured\n1 packet received by filter\n0 packets dropped by kernel\n") == (1, 0)


def test_a_killed_tcpdump_reports_no_counts():
    assert parse_tcpdump_stats(STOPPED.splitlines()[0] + "\n") == (None, None)


def test_listening_line_is_recognised():
    assert is_listening(STOPPED.splitlines()[0])
    assert not is_listening("tcpdump: eth9: No such device exists")
