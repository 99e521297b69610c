"""The capture filters, compiled and run by the real tcpdump on frames built with scapy: a busy
node's capture keeps the test pods' traffic and what is about it, and drops the other pods'."""

from __future__ import annotations

import subprocess
from ipaddress import IPv4Address, IPv4Network

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from scapy.utils import rdpcap, wrpcap

from vxcap.core.capture import bpf_filter, capture_filter, precise_filter

NODE = {"w": "10.10.10.11", "w2": "10.10.10.12", "w3": "10.10.20.13"}
POD = {"w": "192.168.81.65", "w2": "192.168.164.129", "w3": "192.168.209.65"}
OTHER = ("10.244.1.2", "10.244.2.3")  # another pod pair between the same nodes
PODS = [IPv4Address(POD["w"]), IPv4Address(POD["w3"]), IPv4Address(POD["w2"])]
NODES = [IPv4Address(NODE["w"]), IPv4Address(NODE["w3"]), IPv4Address(NODE["w2"])]

pytestmark = pytest.mark.skipif(subprocess.run(["which", "tcpdump"], capture_output=True).returncode != 0,
                                reason="tcpdump is not installed")


def vx(inner_src, inner_dst, *, outer=("w", "w3"), dport=4789, flags=0x08, **ip):
    return (Ether() / IP(src=NODE[outer[0]], dst=NODE[outer[1]], **ip) / UDP(sport=40001, dport=dport)
            / VXLAN(flags=flags, vni=4096) / Ether(dst="66:d2:0c:f0:ef:e5")
            / IP(src=inner_src, dst=inner_dst) / ICMP() / Raw(b"v" * 56))


def frames() -> list[tuple[str, object, bool]]:
    """(what, frame, kept by the precise filter)."""
    big = vx(POD["w"], POD["w3"])
    big[Raw].load = b"v" * 1600
    first = Ether(bytes(big)[:14 + 20 + 1480])
    first[IP].flags, first[IP].len = "MF", 1500
    quoted = IP(src=NODE["w"], dst=NODE["w3"]) / UDP(sport=40001, dport=4789)
    return [
        ("plain pod ping", Ether() / IP(src=POD["w"], dst=POD["w2"]) / ICMP(), True),
        ("VXLAN of the test pods", vx(POD["w"], POD["w3"]), True),
        ("VXLAN back", vx(POD["w3"], POD["w"], outer=("w3", "w")), True),
        ("VXLAN on the wrong port", vx(POD["w"], POD["w3"], dport=8472), True),
        ("VXLAN with the I flag clear", vx(POD["w"], POD["w3"], flags=0x00), True),
        ("VXLAN with outer IP options", vx(POD["w"], POD["w3"], options=b"\x94\x04\x00\x00"), True),
        ("VXLAN, outer first fragment", first, True),
        ("outer trailing fragment", Ether() / IP(src=NODE["w"], dst=NODE["w3"], frag=185, proto=17) / Raw(b"z" * 100),
         True),
        ("frag-needed to the node about VXLAN", Ether() / IP(src="10.10.10.1", dst=NODE["w"])
         / ICMP(type=3, code=4, nexthopmtu=1400) / IPerror(bytes(quoted)) / UDPerror(), True),
        ("frag-needed to a pod", Ether() / IP(src=NODE["w3"], dst=POD["w"]) / ICMP(type=3, code=4), True),
        ("VXLAN of other pods between the same nodes", vx(*OTHER), False),
        ("plain other pods", Ether() / IP(src=OTHER[0], dst=OTHER[1]) / TCP(), False),
        ("node to node TCP", Ether() / IP(src=NODE["w"], dst=NODE["w3"]) / TCP(dport=6443), False),
        ("UDP to 8472 that is not VXLAN", Ether() / IP(src=NODE["w"], dst=NODE["w3"]) / UDP(dport=8472)
         / Raw(b"\x01" * 48), False),
        ("UDP from 4789", Ether() / IP(src=NODE["w3"], dst=NODE["w"]) / UDP(sport=4789, dport=33000)
         / Raw(b"\x02" * 80), False),
        ("frag-needed to the node about other UDP", Ether() / IP(src="10.10.10.1", dst=NODE["w"])
         / ICMP(type=3, code=4) / IPerror(bytes(IP(src=NODE["w"], dst="8.8.8.8") / UDP(dport=53))) / UDPerror(),
         False),
        ("ARP", Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=NODE["w"], pdst=NODE["w3"]), False),
        ("IPv6", Ether() / IPv6() / UDP(), False),
    ]


def through_tcpdump(tmp_path, packets, bpf: str) -> list[bytes]:
    src, out = tmp_path / "in.pcap", tmp_path / "out.pcap"
    wrpcap(str(src), packets)
    subprocess.run(["tcpdump", "-r", str(src), "-w", str(out), bpf], check=True, capture_output=True)
    return [bytes(p) for p in rdpcap(str(out))]


def compiles(tmp_path, bpf: str) -> str:
    src = tmp_path / "empty.pcap"
    wrpcap(str(src), [Ether() / IP()])
    done = subprocess.run(["tcpdump", "-d", "-r", str(src), bpf], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_precise_filter_keeps_the_test_traffic_and_drops_the_other_pods(tmp_path):
    cases = frames()
    kept = through_tcpdump(tmp_path, [f for _, f, _ in cases], precise_filter(PODS, NODES, 4789))
    assert [what for what, f, _ in cases if bytes(f) in kept] == [what for what, _, keep in cases if keep]


def test_the_wide_filter_keeps_everything_between_the_nodes(tmp_path):
    cases = frames()
    kept = through_tcpdump(tmp_path, [f for _, f, _ in cases], bpf_filter(None, NODES, PODS))
    nodes = set(NODE.values())
    # `host` matches ARP about the node too
    expected = [what for what, f, keep in cases
                if keep or IP in f and {f[IP].src, f[IP].dst} & nodes or ARP in f and {f[ARP].psrc, f[ARP].pdst} & nodes]
    assert [what for what, f, _ in cases if bytes(f) in kept] == expected


def test_the_wide_filter_of_a_cluster_with_several_pools_keeps_plain_pod_traffic(tmp_path):
    # The healthy same-subnet direction of a two-pool cluster: plain, pod to pod.
    plain = Ether() / IP(src=POD["w"], dst=POD["w2"]) / ICMP()
    assert through_tcpdump(tmp_path, [plain], bpf_filter(None, NODES, PODS)) == [bytes(plain)]


@pytest.mark.parametrize("mode", ["precise", "wide"])
@pytest.mark.parametrize("count", [1, 2, 40])
def test_filters_compile_with_tcpdump_for_small_and_large_runs(tmp_path, mode, count):
    pods = [IPv4Address(f"192.168.{i}.65") for i in range(count)]
    nodes = [IPv4Address(f"10.10.{i // 200}.{i % 200 + 10}") for i in range(count)]
    program = compiles(tmp_path, capture_filter(mode, pods, nodes, 4789, IPv4Network("192.168.0.0/16"))["bpf"])
    assert "ret" in program
