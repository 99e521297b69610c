"""The MTU probes over IPv6 pods on the real lab: the DF ladder (ICMPv6) and the TCP exchange
(MSS = MTU - 60) of stages/mtu_probes, driven through the lab target's own probing methods.

Expectations are header sums and the lab's settings (vxlan-v6.calico 1430 = 1500 - 70, the
pods' eth0); the wire is read back with scapy's own inet6 dissection, not vxcap's decoders.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

from tests.lab_support import captured, dataplane_spec, lab_session_guard, lab_test, running_lab  # noqa: F401
from vxcap.core.lab.faults import Vxlan6Ipv4Mtu
from vxcap.stages.mtu_probes import run_mtu_probes
from vxcap.targets.lab import LabTarget

pytestmark = pytest.mark.usefixtures("lab_session_guard")

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"
IPV6, IPV4, ICMP_H, TCP_H = 40, 20, 8, 20
VXLAN6_MTU = 1500 - (14 + 8 + 8 + 40)  # 1430


class LabProbing:
    """The lab target's own df_ping_all and tcp_exchange on any lab (LabTarget itself runs only the
    vxlan lab until the run path judges the other data planes), every round's probes kept."""

    df_ping_all = LabTarget.df_ping_all
    tcp_exchange = LabTarget.tcp_exchange

    def __init__(self, lab) -> None:
        self.lab = lab
        self.rounds: list[list[tuple]] = []

    def record_rounds(self):
        plain = self.df_ping_all

        def df_ping_all(probes, wait):
            self.rounds.append(list(probes))
            return plain(probes, wait)

        self.df_ping_all = df_ping_all
        return self


def probe(lab, directions, families, pod_mtu):
    target = LabProbing(lab).record_rounds()
    ipv6 = {node.name: node.pod_ip for node in lab.spec.nodes6}
    record = run_mtu_probes(target, directions, {n: lab.pod(n) for n in (CP, W, W2, W3)}, pod_mtu=pod_mtu,
                            families=families, ipv6=ipv6)
    return record, target.rounds


def largest_crossed(direction) -> int:
    return max(e["size"] for e in direction["ladder"] if e["received"])


def by_direction(record):
    return {(d["src_node"], d["dst_node"], d["family"]): d for d in record["directions"]}


def scapy_view6(pcap: Path, src: str, dst: str):
    """(IPv6 packet lengths of echo requests src -> dst, MSS options of its SYNs, tunnelled?), by scapy."""
    requests, mss, tunnelled = set(), set(), set()
    for pkt in rdpcap(str(pcap)):
        inner = pkt[VXLAN].payload.getlayer(IPv6) if pkt.haslayer(VXLAN) else pkt.getlayer(IPv6)
        if inner is None or (inner.src, inner.dst) != (src, dst):
            continue
        tunnelled.add(pkt.haslayer(VXLAN))
        if inner.haslayer(ICMPv6EchoRequest):
            requests.add(IPV6 + inner.plen)
        if inner.haslayer(TCP) and inner[TCP].flags.S:
            mss |= {value for name, value in inner[TCP].options if name == "MSS"}
    return requests, mss, tunnelled


@lab_test
def test_vxlan6_lab_the_ladder_finds_1430_across_subnets_and_within_one_and_syns_carry_1370(tmp_path):
    spec = dataplane_spec("vxlan6")
    with running_lab(spec=spec) as lab:
        directions = [(W, W3), (W3, W), (W, W2), (W2, W)]
        with captured(lab, W, tmp_path / "w.pcap", "ip6") as pcap:
            record, _ = probe(lab, directions, (6,), spec.pod_mtu)
    found = by_direction(record)
    edge = VXLAN6_MTU - IPV6 - ICMP_H  # 1382
    for src, dst in directions:
        d = found[(src, dst, 6)]
        assert d["dst_ip"] == str(spec.node6(dst).pod_ip) and "error" not in d
        assert d["tcp"]["connected"], d["tcp"]
        assert largest_crossed(d) == edge
        refused = [e for e in d["ladder"] if e["size"] == edge + 1]
        assert refused and all(e["refused_too_big"] and e["local_mtu"] == VXLAN6_MTU for e in refused)
    # On worker's eth1, by scapy: the largest echo that left is a 1430-byte IPv6 packet, in VXLAN to worker3
    # and plain to worker2, and worker's SYNs carry MSS 1430 - 40 - 20.
    for dst, tunnel in ((W3, True), (W2, False)):
        requests, mss, tunnelled = scapy_view6(pcap, str(spec.node6(W).pod_ip), str(spec.node6(dst).pod_ip))
        assert max(requests) == VXLAN6_MTU and tunnelled == {tunnel}
        assert mss == {VXLAN6_MTU - IPV6 - TCP_H}


@lab_test
def test_vxlan6_lab_with_pods_set_for_ipv4_overhead_same_subnet_finds_the_pod_mtu_across_finds_1430(tmp_path):
    # The twin: worker's and worker2's pods, cali veths and vxlan-v6.calico at 1450 (IPv4's overhead on
    # an IPv6 path). The pair in one subnet now has pods at 1450 on both ends and a 1500 eth1 between.
    spec = dataplane_spec("vxlan6")
    with running_lab(spec=spec) as lab:
        lab.apply_fault(Vxlan6Ipv4Mtu(W))
        lab.apply_fault(Vxlan6Ipv4Mtu(W2))
        with captured(lab, W, tmp_path / "w.pcap", "ip6") as pcap:
            record, _ = probe(lab, [(W, W3), (W, W2)], (6,), 1450)
    found = by_direction(record)
    across, within = found[(W, W3, 6)], found[(W, W2, 6)]
    # Within the subnet the path is plain IPv6 on a 1500 eth1: the pod's own 1450 is the limit.
    assert largest_crossed(within) == 1450 - IPV6 - ICMP_H
    # Across, worker's node cannot fit a 1450-byte packet into VXLAN over a 1500 eth1: Packet Too Big, 1430.
    assert largest_crossed(across) == VXLAN6_MTU - IPV6 - ICMP_H
    assert any(e["frag_needed_mtu"] == VXLAN6_MTU for e in across["ladder"]), across["ladder"]
    _, mss, _ = scapy_view6(pcap, str(spec.node6(W).pod_ip), str(spec.node6(W2).pod_ip))
    assert mss == {1450 - IPV6 - TCP_H}


@lab_test
def test_dual_lab_probes_both_families_of_each_direction_in_the_same_rounds():
    spec = dataplane_spec("dual")
    with running_lab(spec=spec) as lab:
        record, rounds = probe(lab, [(W, W3), (W, W2)], (4, 6), spec.pod_mtu)
    found = by_direction(record)
    assert spec.pod_mtu == VXLAN6_MTU  # the dual lab's pods carry the smaller MTU, for both families
    for dst in (W3, W2):
        v4, v6 = found[(W, dst, 4)], found[(W, dst, 6)]
        assert v4["dst_ip"] == str(lab.pod(dst).ip) and v6["dst_ip"] == str(spec.node6(dst).pod_ip)
        assert v4["tcp"]["connected"] and v6["tcp"]["connected"]
        assert largest_crossed(v4) == VXLAN6_MTU - IPV4 - ICMP_H  # 1402
        assert largest_crossed(v6) == VXLAN6_MTU - IPV6 - ICMP_H  # 1382
    # One probe round carries both families: the first round sends each (direction, family)'s first size.
    assert sorted(ip.version for _, ip, _ in rounds[0]) == [4, 4, 6, 6]
