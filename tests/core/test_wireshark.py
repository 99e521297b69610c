"""Wireshark/tshark command lines as data, and one check that real tshark reads them."""

import shlex
import shutil
import subprocess
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import wrpcap

from vxcap.core.model import Wire
from vxcap.core.plan import Expectation
from vxcap.core.wireshark import (
    command_line,
    decode_as_args,
    decode_as_map,
    flow_commands,
    flow_filter,
    interface_name,
    tshark_argv,
    wireshark_argv,
)

W_POD, W3_POD = "192.168.81.65", "192.168.209.65"


def expectation(port=4789):
    return Expectation(
        src_node="k01-worker", dst_node="k01-worker3",
        src_ip=IPv4Address(W_POD), dst_ip=IPv4Address(W3_POD),
        expected=Wire.VXLAN, reason="other subnet", vni=4096, port=port,
        outer_src=IPv4Address("10.10.10.11"), outer_dst=IPv4Address("10.10.20.13"),
        inner_dst_mac="66:d2:0c:f0:ef:e5",
    )


def report_flow(udp_dport):
    return {"src_node": "k01-worker", "dst_node": "k01-worker3", "src_ip": W_POD, "dst_ip": W3_POD,
            "udp_dport": udp_dport, "wireshark_filter": f"ip.src=={W_POD} && ip.dst=={W3_POD}"}


def test_the_flow_filter_is_the_pods_addresses_for_an_expectation_and_a_report_flow():
    assert flow_filter(expectation()) == "ip.src==192.168.81.65 && ip.dst==192.168.209.65"
    assert flow_filter(report_flow(4789)) == "ip.src==192.168.81.65 && ip.dst==192.168.209.65"


@pytest.mark.parametrize("ports,args,pyshark_map", [
    ([4789], [], {}),
    ([None], [], {}),
    ([8472], ["-d", "udp.port==8472,vxlan"], {"udp.port==8472": "vxlan"}),
    ([4789, 8472, 8472], ["-d", "udp.port==8472,vxlan"], {"udp.port==8472": "vxlan"}),
    ([9000, 4790], ["-d", "udp.port==4790,vxlan", "-d", "udp.port==9000,vxlan"],
     {"udp.port==4790": "vxlan", "udp.port==9000": "vxlan"}),
])
def test_decode_as_only_for_ports_wireshark_does_not_register(ports, args, pyshark_map):
    assert decode_as_args(ports) == args
    assert decode_as_map(ports) == pyshark_map


def test_argv_on_the_standard_port():
    display = "ip.src==192.168.81.65 && ip.dst==192.168.209.65"
    assert wireshark_argv("k01-worker-eth1.pcap", display, [4789]) == [
        "wireshark", "-r", "k01-worker-eth1.pcap", "-Y", display]
    assert tshark_argv("k01-worker-eth1.pcap", display, [4789]) == [
        "tshark", "-r", "k01-worker-eth1.pcap", "-Y", display]


def test_argv_on_another_port_decodes_it_as_vxlan():
    assert tshark_argv("x.pcap", "ip", [8472]) == ["tshark", "-r", "x.pcap", "-d", "udp.port==8472,vxlan", "-Y", "ip"]


def test_command_lines_are_quoted_for_a_shell():
    commands = flow_commands(expectation(), "evidence/all-nodes.pcapng", 4789)
    assert commands.wireshark == (
        "wireshark -r evidence/all-nodes.pcapng -Y 'ip.src==192.168.81.65 && ip.dst==192.168.209.65'")
    assert commands.tshark == "tshark -r evidence/all-nodes.pcapng -Y 'ip.src==192.168.81.65 && ip.dst==192.168.209.65'"


def test_a_flow_seen_on_a_wrong_port_gets_that_port_decoded_too():
    commands = flow_commands(report_flow(8472), "all.pcapng", 4789)
    assert "-d udp.port==8472,vxlan" in commands.tshark
    assert flow_commands(report_flow(4789), "all.pcapng", 4789).tshark.count("-d") == 0
    # The overlay's own port when it is not 4789, for a planned flow.
    assert "-d udp.port==4790,vxlan" in flow_commands(expectation(4790), "a.pcap", 4790).wireshark


def test_a_wireguard_report_flow_decodes_its_seen_port_as_wireguard_never_vxlans():
    flow = {**report_flow(51830), "expected": "wireguard"}
    assert "-d udp.port==51830,wg" in flow_commands(flow, "a.pcapng", 4789).tshark
    assert "4789" not in flow_commands(flow, "a.pcapng", 4789).tshark
    assert "-d" not in flow_commands({**flow, "udp_dport": 51820}, "a.pcapng", 4789).tshark  # Wireshark's own port
    assert "-d" not in flow_commands({**flow, "udp_dport": None}, "a.pcapng", 4789).tshark


@given(st.lists(st.text(min_size=1).filter(lambda s: "\0" not in s), min_size=1, max_size=6))
def test_command_line_reads_back_as_the_same_argv(argv):
    assert shlex.split(command_line(argv)) == argv


def test_interface_names_say_node_and_interface():
    assert interface_name("k01-worker", "eth1") == "k01-worker/eth1"


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_the_printed_tshark_line_finds_vxlan_on_a_custom_port(tmp_path):
    frames = [
        Ether() / IP(src="10.10.10.11", dst="10.10.20.13") / UDP(sport=40000 + i, dport=8472) / VXLAN(vni=4096)
        / Ether() / IP(src=W_POD, dst=W3_POD) / ICMP(seq=i)
        for i in range(3)
    ] + [Ether() / IP(src=W3_POD, dst=W_POD) / ICMP(seq=9)]
    capture = tmp_path / "k01-worker eth1's.pcap"  # a name that needs quoting
    wrpcap(str(capture), frames)
    line = flow_commands(report_flow(8472), str(capture), 4789).tshark
    argv = shlex.split(line) + ["-T", "fields", "-e", "vxlan.vni", "-e", "icmp.seq"]
    out = subprocess.run([shutil.which("tshark"), *argv[1:]], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:-1] == ["4096\t0", "4096\t1", "4096\t2"]
    # Without the decode-as, the same filter matches nothing: the flow hides in UDP payload.
    bare = [a for a in argv if a not in ("-d", "udp.port==8472,vxlan")]
    out = subprocess.run([shutil.which("tshark"), *bare[1:]], capture_output=True, text=True, check=True).stdout
    assert out == ""
