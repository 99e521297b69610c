"""Verdicts from frames built with scapy: decode, tally, judge."""

from ipaddress import IPv4Address, IPv4Interface

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from vxcap.core.decode import decode_frame
from vxcap.core.frames import tally
from vxcap.core.model import Mode, Node, Overlay, Pair, Pod, Topology
from vxcap.core.plan import plan
from vxcap.core.verdict import CapturePoint, judge, wireshark_filter

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"
TOPO = Topology(
    overlay=Overlay(mode=Mode.CROSS_SUBNET, vni=4096, port=4789),
    nodes=(
        Node(W, IPv4Interface("10.10.10.11/24"), vtep_mac="66:fb:ad:98:aa:13"),
        Node(W2, IPv4Interface("10.10.10.12/24"), vtep_mac="66:c7:4d:6e:6b:f3"),
        Node(W3, IPv4Interface("10.10.20.13/24"), vtep_mac="66:d2:0c:f0:ef:e5"),
    ),
)
PODS = {
    W: Pod("a", W, IPv4Address("192.168.81.65")),
    W2: Pod("b", W2, IPv4Address("192.168.164.129")),
    W3: Pod("c", W3, IPv4Address("192.168.209.65")),
}
POINTS = {n: CapturePoint(n, "eth1") for n in (W, W2, W3)}


def expectation(src, dst):
    there, back = plan(TOPO, (Pair(src, dst),), PODS)
    return there


def vx(src, dst, *, n=3, vni=4096, dport=4789, outer=None, inner_mac=None):
    outer = outer or (str(TOPO.node(src).address), str(TOPO.node(dst).address))
    inner_mac = inner_mac or TOPO.node(dst).vtep_mac
    return [
        Ether() / IP(src=outer[0], dst=outer[1]) / UDP(sport=50000 + i, dport=dport) / VXLAN(vni=vni)
        / Ether(dst=inner_mac) / IP(src=str(PODS[src].ip), dst=str(PODS[dst].ip)) / ICMP(seq=i)
        for i in range(n)
    ]


def plain(src, dst, n=3):
    return [Ether() / IP(src=str(PODS[src].ip), dst=str(PODS[dst].ip)) / ICMP(seq=i) for i in range(n)]


def seen(**frames_by_node):
    """Decode each node's frames into that node's capture point, like a pcap per node would."""
    return {POINTS[n]: tally(decode_frame(bytes(f)) for f in frames) for n, frames in frames_by_node.items()}


def verdict(src, dst, **frames_by_node):
    e = expectation(src, dst)
    return judge(e, {point: flows.get(e.key) for point, flows in seen(**frames_by_node).items()})


def test_cross_subnet_vxlan_passes():
    v = verdict(W, W3, **{W: vx(W, W3), W3: vx(W, W3)})
    assert v.passed, v.reasons
    assert (v.observed, v.vni, v.udp_dport, v.packets) == ("vxlan", 4096, 4789, 6)
    assert (v.outer_src, v.outer_dst) == (IPv4Address("10.10.10.11"), IPv4Address("10.10.20.13"))
    assert dict(v.seen_on) == {"k01-worker/eth1": 3, "k01-worker3/eth1": 3}


def test_same_subnet_plain_passes():
    v = verdict(W, W2, **{W: plain(W, W2), W2: plain(W, W2)})
    assert v.passed and v.observed == "plain" and v.vni is None


def test_wrong_vni_names_both_values():
    v = verdict(W, W3, **{W: vx(W, W3, vni=4097), W3: vx(W, W3, vni=4097)})
    assert not v.passed
    assert "VNI 4097, expected 4096" in v.reasons


def test_wrong_port_names_both_values():
    v = verdict(W, W3, **{W: vx(W, W3, dport=8472), W3: vx(W, W3, dport=8472)})
    assert "UDP port 8472, expected 4789" in v.reasons


def test_fdb_pointing_at_the_wrong_node():
    wrong = vx(W, W3, outer=("10.10.10.11", "10.10.10.12"))
    v = verdict(W, W3, **{W: wrong, W3: []})
    assert "outer destination 10.10.10.12, expected 10.10.20.13" in v.reasons
    assert any("not seen on k01-worker3/eth1 (receiver)" in r for r in v.reasons)


def test_wrong_inner_mac():
    v = verdict(W, W3, **{W: vx(W, W3, inner_mac="66:c7:4d:6e:6b:f3"), W3: vx(W, W3)})
    assert "inner destination MAC 66:c7:4d:6e:6b:f3, expected 66:d2:0c:f0:ef:e5 (3 of 6 packets)" in v.reasons


def test_same_subnet_through_vxlan_fails():
    v = verdict(W, W2, **{W: vx(W, W2), W2: vx(W, W2)})
    assert not v.passed and v.observed == "vxlan"
    assert v.reasons[0].startswith("6 VXLAN packets (VNI 4096, UDP port 4789), expected plain IPv4 (same subnet")


def test_cross_subnet_sent_plain_fails():
    v = verdict(W, W3, **{W: plain(W, W3), W3: []})
    assert not v.passed and v.observed == "plain"
    assert any(r.startswith("3 plain IPv4 packets, expected VXLAN (other subnet") for r in v.reasons)


def test_mixed_is_reported():
    v = verdict(W, W3, **{W: vx(W, W3) + plain(W, W3), W3: vx(W, W3)})
    assert v.observed == "mixed" and not v.passed


def test_nothing_seen_fails_even_when_nothing_forbidden_was_seen():
    v = verdict(W, W2, **{W: [], W2: []})
    assert not v.passed and v.observed == "none"
    assert v.reasons == ("no packets of 192.168.81.65 -> 192.168.164.129 seen (k01-worker/eth1, k01-worker2/eth1)",)


def test_other_flows_do_not_count():
    # traffic of the reverse direction only: this direction saw nothing
    v = verdict(W, W3, **{W: vx(W3, W), W3: vx(W3, W)})
    assert v.observed == "none" and not v.passed


def test_a_third_node_seeing_the_flow_counts_for_the_observation():
    v = verdict(W, W3, **{W: vx(W, W3), W3: vx(W, W3), W2: vx(W, W3, vni=9)})
    assert "VNI 9, expected 4096 (3 of 9 packets)" in v.reasons


def test_wireshark_filter():
    assert wireshark_filter(expectation(W, W3)) == "ip.src==192.168.81.65 && ip.dst==192.168.209.65"
