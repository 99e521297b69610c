"""Per-direction expectations for other CNIs, and frames built with scapy judged against them (pure).

Each fault has its healthy twin: the same direction with the right frame gives no reason.
"""

from __future__ import annotations

from ipaddress import ip_address

import pytest
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from tests.fakes import cni_objects as cn
from vxcap.core import geneve
from vxcap.core.cni import CniError, Encap, antrea, cilium, flannel
from vxcap.core.cni.judge import SeenWire, mismatches
from vxcap.core.cni.plan import plan_directions
from vxcap.core.model import Pair, Pod

PODS = {"k01-worker": Pod("vxcap-probe-a", "k01-worker", ip_address("10.244.1.5")),
        "k01-worker3": Pod("vxcap-probe-b", "k01-worker3", ip_address("10.244.3.7"))}
PAIR = (Pair("k01-worker", "k01-worker3"),)
INNER = Ether() / IP(src="10.244.1.5", dst="10.244.3.7") / ICMP()


def seen(frame) -> SeenWire:
    """What a decoder reports of one captured frame (here: scapy and core.geneve)."""
    packet = Ether(bytes(frame))
    outer = packet[IP]
    src, dst = ip_address(outer.src), ip_address(outer.dst)
    if UDP not in packet or packet[UDP].dport not in (8472, 4789, 6081, 7000):
        return SeenWire(Encap.PLAIN, src, dst)
    udp = packet[UDP]
    payload = bytes(udp.payload)
    if udp.dport == 6081:
        return SeenWire(Encap.GENEVE, src, dst, udp.dport, geneve.parse(payload)[0].vni, udp.chksum)
    return SeenWire(Encap.VXLAN, src, dst, udp.dport, VXLAN(payload).vni, udp.chksum)


def vxlan_frame(src: str, dst: str, port: int, vni: int, chksum: int | None = None):
    return Ether() / IP(src=src, dst=dst) / UDP(sport=40000, dport=port, chksum=chksum) / VXLAN(vni=vni) / INNER


def flannel_direction(backend: dict):
    found = flannel.discover(cn.flannel(backend).configmaps[0], cn.flannel_nodes())
    return plan_directions(found, PAIR, PODS)[0]  # k01-worker -> k01-worker3


def test_flannel_vxlan_healthy_and_its_faults():
    direction = flannel_direction({"Type": "vxlan"})
    assert (direction.outer_src, direction.outer_dst) == (ip_address("10.10.10.11"), ip_address("10.10.20.13"))
    assert mismatches(direction, seen(vxlan_frame("10.10.10.11", "10.10.20.13", 8472, 1))) == ()
    (wrong_vni,) = mismatches(direction, seen(vxlan_frame("10.10.10.11", "10.10.20.13", 8472, 4096)))
    assert wrong_vni == "k01-worker → k01-worker3: VNI 4096, expected 1"
    (wrong_port,) = mismatches(direction, seen(vxlan_frame("10.10.10.11", "10.10.20.13", 4789, 1)))
    assert wrong_port == "k01-worker → k01-worker3: UDP port 4789, expected 8472"
    (plain,) = mismatches(direction, seen(Ether() / IP(src="10.244.1.5", dst="10.244.3.7") / ICMP()))
    assert plain.startswith("k01-worker → k01-worker3: plain where vxlan, UDP 8472, VNI 1 was promised")
    (outer,) = mismatches(direction, seen(vxlan_frame("10.10.10.11", "10.10.20.99", 8472, 1)))
    assert "outer destination 10.10.20.99, expected 10.10.20.13" in outer


def test_host_gw_encapsulated_is_named():
    direction = flannel_direction({"Type": "host-gw"})
    assert mismatches(direction, seen(Ether() / IP(src="10.244.1.5", dst="10.244.3.7") / ICMP())) == ()
    (reason,) = mismatches(direction, seen(vxlan_frame("10.10.10.11", "10.10.20.13", 8472, 1)))
    assert reason.startswith("k01-worker → k01-worker3: vxlan where plain was expected (host-gw")


def test_an_undecided_direct_routing_pair_cannot_be_planned():
    found = flannel.discover(cn.flannel({"Type": "vxlan", "DirectRouting": True}).configmaps[0], cn.flannel_nodes())
    with pytest.raises(CniError, match="decided by ip route get 10.10.20.13 on k01-worker, which was not read"):
        plan_directions(found, PAIR, PODS)


def cilium_direction(endpoints, protocol="vxlan"):
    nodes = cn.plain_nodes()
    found = cilium.discover(cn.cilium({**cn.CILIUM_CONFIG, "tunnel-protocol": protocol}).configmaps[0], nodes)
    return plan_directions(found, PAIR, PODS, cilium.endpoints(endpoints))


ENDPOINTS = [cn.cilium_endpoint("vxcap-probe-a", "vxcap", 48213, "10.244.1.5", "172.18.0.5"),
             cn.cilium_endpoint("vxcap-probe-b", "vxcap", 5123, "10.244.3.7", "172.18.0.4")]


def test_cilium_each_direction_carries_its_senders_identity():
    there, back = cilium_direction(ENDPOINTS)
    assert (there.expected.vni, back.expected.vni) == (48213, 5123)
    assert "vxcap-probe-a (10.244.1.5) has identity 48213" in there.reason
    assert mismatches(there, seen(vxlan_frame("172.18.0.5", "172.18.0.4", 8472, 48213, chksum=0))) == ()
    # The receiver's identity in the sender's packets: the fault Cilium's datapath would show if it swapped them.
    (swapped,) = mismatches(there, seen(vxlan_frame("172.18.0.5", "172.18.0.4", 8472, 5123, chksum=0)))
    assert swapped == "k01-worker → k01-worker3: VNI 5123 is not the sender's security identity 48213"
    (checksum,) = mismatches(there, seen(vxlan_frame("172.18.0.5", "172.18.0.4", 8472, 48213, chksum=0x1234)))
    assert "outer UDP checksum 0x1234, expected 0" in checksum


def test_cilium_geneve_frames_are_read_with_core_geneve():
    there, _ = cilium_direction(ENDPOINTS, "geneve")
    good = Ether() / IP(src="172.18.0.5", dst="172.18.0.4") / UDP(sport=40000, dport=6081, chksum=0) / GENEVE(vni=48213, proto=0x6558) / INNER
    assert mismatches(there, seen(good)) == ()
    vxlan_instead = vxlan_frame("172.18.0.5", "172.18.0.4", 8472, 48213, chksum=0)
    (reason,) = mismatches(there, seen(vxlan_instead))
    assert "vxlan where geneve was promised" in reason


def test_cilium_without_the_senders_endpoint_cannot_plan():
    with pytest.raises(CniError, match="no CiliumEndpoint has address 10.244.1.5"):
        cilium_direction(ENDPOINTS[1:])


def test_antrea_geneve_vni_0_and_a_wrong_vni():
    nodes = cn.plain_nodes()
    found = antrea.discover(cn.antrea().configmaps[0], nodes)
    there, _ = plan_directions(found, PAIR, PODS)
    good = Ether() / IP(src="172.18.0.5", dst="172.18.0.4") / UDP(dport=6081) / GENEVE(vni=0, proto=0x6558) / INNER
    assert mismatches(there, seen(good)) == ()
    bad = Ether() / IP(src="172.18.0.5", dst="172.18.0.4") / UDP(dport=6081) / GENEVE(vni=7, proto=0x6558) / INNER
    assert mismatches(there, seen(bad)) == ("k01-worker → k01-worker3: VNI 7, expected 0",)
