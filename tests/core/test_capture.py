"""tcpdump as data: its argv, the capture filter, and its closing report."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from vxcap.core.capture import (
    DEFAULT_DURATION_S,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PACKETS,
    DEFAULT_SNAPLEN,
    MAX_BUFFER_KIB,
    LAB_MIN_BUFFER_KIB,
    MIN_BUFFER_KIB,
    bpf_filter,
    buffer_kib,
    lab_buffer_kib,
    capture_filter,
    precise_filter,
    is_listening,
    max_file_bytes,
    packet_budget,
    parse_tcpdump_stats,
    tcpdump_argv,
)
from vxcap.core.errors import InputError


def test_argv_captures_the_interface_to_a_file_packet_buffered():
    argv = tcpdump_argv("eth1", Path("/tmp/run/w.pcap"), "net 192.168.0.0/16", snaplen=256, max_packets=500,
                        duration=None)
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


def test_wide_filter_without_a_pool_still_names_the_test_pods():
    # Pods in several IPPools leave no single pool to name; the pods are named instead, or their
    # plain frames never reach the pcap (every healthy same-subnet direction would read "no packets").
    pods = [IPv4Address("192.168.81.65"), IPv4Address("172.16.5.9")]
    assert bpf_filter(None, [IPv4Address("10.10.10.11")], pods) == (
        "host 192.168.81.65 or host 172.16.5.9 or host 10.10.10.11")
    assert bpf_filter(None, []) == ""


def test_precise_filter_names_the_pods_outside_and_inside_the_encapsulation():
    bpf = precise_filter([IPv4Address("192.168.81.65")], [IPv4Address("10.10.10.11"), IPv4Address("10.10.20.13")],
                         4789)
    assert bpf == (
        "host 192.168.81.65"
        " or (udp and udp[28:2] = 0x0800 and (udp[42:4] = 0xc0a85141 or udp[46:4] = 0xc0a85141))"
        " or (ip[6:2] & 0x1fff != 0 and (host 10.10.10.11 or host 10.10.20.13))"
        " or (icmp and (icmp[0] = 3 or icmp[0] = 11 or icmp[0] = 12) and icmp[17] = 17 and icmp[30:2] = 4789"
        " and (dst host 10.10.10.11 or dst host 10.10.20.13))"
    )
    assert precise_filter([], [IPv4Address("10.10.10.11")], 4789) == ""


def test_capture_filter_says_which_mode_it_is():
    pods, nodes = [IPv4Address("192.168.81.65")], [IPv4Address("10.10.10.11")]
    assert capture_filter("wide", pods, nodes, 4789, IPv4Network("192.168.0.0/16")) == {
        "mode": "wide", "bpf": "net 192.168.0.0/16 or host 192.168.81.65 or host 10.10.10.11"}
    assert capture_filter("precise", pods, nodes, 8472) == {"mode": "precise", "bpf": precise_filter(pods, nodes, 8472)}
    with pytest.raises(InputError, match="precise, wide"):
        capture_filter("narrow", pods, nodes, 4789)


def test_tcpdump_runs_not_promiscuous_with_a_buffer_sized_for_line_rate():
    argv = tcpdump_argv("eth1", "/tmp/x.pcap", "", snaplen=256)
    assert "-p" in argv
    assert argv[argv.index("-B") + 1] == str(buffer_kib(256))
    # 10 Gb/s of full-size frames for 50 ms, each kept at 256 bytes + the ring's header: about 12 MiB
    assert buffer_kib(256) == int(10e9 / 8 / 1538 * 0.05 * (256 + 48) / 1024) + 1
    assert buffer_kib(256, link_mbps=100) == MIN_BUFFER_KIB
    assert buffer_kib(65535, link_mbps=400_000) == MAX_BUFFER_KIB


def test_lab_captures_get_a_ring_sized_for_the_lab_not_for_10_gbps():
    # 1 Gb/s of full-size frames for 50 ms at 256 bytes + header: about 1.2 MiB, a tenth of a node's
    assert lab_buffer_kib(256) == int(1e9 / 8 / 1538 * 0.05 * (256 + 48) / 1024) + 1 == 1207
    assert lab_buffer_kib(256) < buffer_kib(256) // 8
    assert lab_buffer_kib(64) == LAB_MIN_BUFFER_KIB  # the lab's own floor, not the cluster's 4 MiB
    argv = tcpdump_argv("eth1", "/tmp/x.pcap", "", snaplen=256, ring_kib=lab_buffer_kib(256))
    assert argv[argv.index("-B") + 1] == "1207"


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


# --- every capture is bounded: time, packets, bytes ----------------------------------


def option(argv: list[str], flag: str) -> str:
    """tcpdump's own option (timeout has a -s too)."""
    own = argv[argv.index("tcpdump"):]
    return own[own.index(flag) + 1]


def test_by_default_a_capture_ends_by_itself_after_its_duration_with_sigint():
    argv = tcpdump_argv("eth1", "/tmp/x.pcap", "icmp")
    assert argv[:4] == ["timeout", "-s", "INT", f"{DEFAULT_DURATION_S:g}"]
    assert argv[4] == "tcpdump"
    assert tcpdump_argv("eth1", "/tmp/x.pcap", "icmp", duration=2.5)[:5] == ["timeout", "-s", "INT", "2.5", "tcpdump"]


def test_without_a_duration_the_argv_is_tcpdump_alone():
    """The lab's captures: their time bound goes to the watchdog of adapters/tcpdump.start_many."""
    argv = tcpdump_argv("eth1", "/tmp/x.pcap", "icmp", duration=None)
    assert argv[0] == "tcpdump" and "timeout" not in argv
    assert argv[1:] == tcpdump_argv("eth1", "/tmp/x.pcap", "icmp")[5:]


@pytest.mark.parametrize("duration", [0, -1.0])
def test_a_duration_that_is_not_positive_is_refused(duration):
    with pytest.raises(InputError, match="duration must be positive"):
        tcpdump_argv("eth1", "/tmp/x.pcap", "", duration=duration)


def test_every_default_capture_has_a_packet_count_and_fits_the_size_cap():
    argv = tcpdump_argv("eth1", "/tmp/x.pcap", "")
    count, snaplen = int(option(argv, "-c")), int(option(argv, "-s"))
    assert count == DEFAULT_MAX_PACKETS
    assert max_file_bytes(snaplen, count) <= DEFAULT_MAX_BYTES


def test_a_size_cap_lowers_the_packet_count_instead_of_overwriting_the_file():
    argv = tcpdump_argv("eth1", "/tmp/x.pcap", "", snaplen=1000, max_packets=10**6, max_bytes=10_000)
    assert option(argv, "-c") == str((10_000 - 24) // (16 + 1000))
    # no -C/-W: rotation would overwrite the beginning of the capture, where the evidence is
    assert "-C" not in argv and "-W" not in argv


def test_the_size_bound_holds_for_a_file_of_full_snaplen_records(tmp_path):
    snaplen, cap = 300, 20_000
    count = packet_budget(snaplen, 10**6, cap)
    frame = Ether() / IP() / Raw(b"x" * 2000)
    cut = Ether(bytes(frame)[:snaplen])  # what tcpdump -s 300 keeps of a big frame
    path = tmp_path / "full.pcap"
    wrpcap(str(path), [cut] * count)
    assert path.stat().st_size <= cap
    wrpcap(str(path), [cut] * (count + 1))  # one more record would break the cap
    assert path.stat().st_size > cap


def test_a_size_cap_smaller_than_one_packet_is_refused():
    with pytest.raises(InputError, match="holds no packet"):
        packet_budget(256, 10, 100)


@pytest.mark.parametrize("iface", ["", "eth 1", "../eth1", "a" * 16, "eth1:0", "eth1\n", ".", ".."])
def test_an_interface_name_the_kernel_would_refuse_never_reaches_tcpdump(iface):
    with pytest.raises(InputError):
        tcpdump_argv(iface, "/tmp/x.pcap", "")


@pytest.mark.parametrize("iface", ["eth1", "a" * 15, "vxlan.calico", "br-0a1b", "any"])
def test_interface_names_the_kernel_takes_are_passed_as_one_argument(iface):
    argv = tcpdump_argv(iface, "/tmp/x.pcap", "")
    assert option(argv, "-i") == iface
