"""Plans and verdicts for IP-in-IP, VXLAN over IPv6, dual-stack and WireGuard, from frames built with scapy.

Each healthy capture passes; each fault twin fails with a reason naming the field.
"""

from __future__ import annotations

import struct
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6, ICMPv6EchoRequest
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from vxcap.core.decode import decode_frame
from vxcap.core.encap import ENCAPS, Reading
from vxcap.core.errors import InputError
from vxcap.core.frames import tally
from vxcap.core.model import Mode, Node, Overlay, Pair, Pod, Topology, Wire
from vxcap.core.mtu.arithmetic import max_inner_mtu, wire_overhead
from vxcap.core.mtu.arithmetic import DfFate, df_outcome, overhead_parts
from vxcap.core.plan import all_paths, expected_wire, plan
from vxcap.core.verdict import CapturePoint, judge, wireshark_filter
from vxcap.core.wireshark import flow_commands

ETH = {"src": "02:42:0a:0a:0a:0b", "dst": "02:42:0a:0a:14:0c"}
A, B, C = "k01-worker", "k01-worker2", "k01-worker3"
NODES = (
    Node(A, IPv4Interface("10.10.10.11/24"), vtep_mac="66:fb:ad:98:aa:13",
         underlay6=IPv6Interface("fd00:10::11/64"), vtep_mac6="66:fb:ad:98:aa:16"),
    Node(B, IPv4Interface("10.10.20.12/24"), vtep_mac="66:c7:4d:6e:6b:f3",
         underlay6=IPv6Interface("fd00:20::12/64"), vtep_mac6="66:c7:4d:6e:6b:f6"),
    Node(C, IPv4Interface("10.10.10.13/24"), vtep_mac="66:d2:0c:f0:ef:e5",
         underlay6=IPv6Interface("fd00:10::13/64"), vtep_mac6="66:d2:0c:f0:ef:e6"),
)
PODS = {
    A: Pod("a", A, IPv4Address("192.168.81.65"), IPv6Address("fd00:192:168:81::41")),
    B: Pod("b", B, IPv4Address("192.168.164.129"), IPv6Address("fd00:192:168:164::81")),
    C: Pod("c", C, IPv4Address("192.168.209.65"), IPv6Address("fd00:192:168:209::41")),
}
POINTS = {n: CapturePoint(n, "eth1") for n in (A, B, C)}
READ = Reading(wireguard_ports=frozenset({51820, 51821}), ipv6=True)


def topo(**overlay) -> Topology:
    return Topology(overlay=Overlay(**overlay), nodes=NODES)


def direction(topology, src, dst, family=4):
    found = [e for e in plan(topology, (Pair(src, dst),), PODS) if e.src_node == src and e.family == family]
    assert len(found) == 1
    return found[0]


def seen(frames_by_node):
    return {POINTS[n]: tally(decode_frame(bytes(f), reading=READ) for f in frames) for n, frames in frames_by_node.items()}


def verdict(e, frames_by_node, sent=None):
    views = seen(frames_by_node)
    return judge(e, {p: flows.get(e.key) for p, flows in views.items()},
                 tunnel={p: flows.get(e.tunnel_key) for p, flows in views.items()}, sent=sent)


def ipip(e, n=3, outer=None):
    o_src, o_dst = outer or (str(e.outer_src), str(e.outer_dst))
    return [Ether(**ETH) / IP(src=o_src, dst=o_dst) / IP(src=str(e.src_ip), dst=str(e.dst_ip)) / ICMP(seq=i)
            for i in range(n)]


def plain(e, n=3):
    ip = IPv6 if e.family == 6 else IP
    echo = ICMPv6EchoRequest if e.family == 6 else ICMP
    return [Ether(**ETH) / ip(src=str(e.src_ip), dst=str(e.dst_ip)) / echo(seq=i) for i in range(n)]


def vxlan(e, n=3, outer=None, vni=4096, dport=4789):
    ip = IPv6 if e.family == 6 else IP
    echo = ICMPv6EchoRequest if e.family == 6 else ICMP
    o_src, o_dst = outer or (str(e.outer_src), str(e.outer_dst))
    return [Ether(**ETH) / ip(src=o_src, dst=o_dst) / UDP(sport=40000 + i, dport=dport) / VXLAN(vni=vni)
            / Ether(dst=e.inner_dst_mac) / ip(src=str(e.src_ip), dst=str(e.dst_ip)) / echo(seq=i) for i in range(n)]


def wg(e, n=3, outer=None, dport=None):
    ip = IPv6 if e.family == 6 else IP
    o_src, o_dst = outer or (str(e.outer_src), str(e.outer_dst))
    data = struct.pack("<BxxxIQ", 4, 7, 0) + b"\xaa" * 112
    return [Ether(**ETH) / ip(src=o_src, dst=o_dst) / UDP(sport=51820, dport=dport or e.port) / Raw(data)
            for _ in range(n)]


# -- the model ---------------------------------------------------------------------------------------

def test_every_format_is_one_entry_with_felix_overheads():
    assert {w: (ENCAPS[w].overhead(4), ENCAPS[w].overhead(6)) for w in (Wire.VXLAN, Wire.WIREGUARD)} == {
        Wire.VXLAN: (50, 70), Wire.WIREGUARD: (60, 80)}
    assert ENCAPS[Wire.IPIP].overhead(4) == 20 and ENCAPS[Wire.IPIP].families == {4}
    assert (max_inner_mtu(1500, Wire.IPIP), max_inner_mtu(1500, Wire.VXLAN, 6)) == (1480, 1430)
    assert (max_inner_mtu(1500, Wire.WIREGUARD), max_inner_mtu(1500, Wire.WIREGUARD, 6)) == (1440, 1420)
    assert wire_overhead(Wire.PLAIN, 6) == 0
    assert ENCAPS[Wire.VXLAN].device(6) == "vxlan-v6.calico" and ENCAPS[Wire.IPIP].device() == "tunl0"
    with pytest.raises(InputError, match="IP-in-IP does not run over an IPv6 underlay"):
        overhead_parts(6, Wire.IPIP)


def test_an_mtu_set_for_ipv4_overhead_on_an_ipv6_path_fragments_the_outer_packet():
    # vxlanMTUV6 1450 is IPv4's 1500 - 50: over IPv6 a full-size packet is 1450 + 70 = 1520.
    wrong = df_outcome(1450, wire=Wire.VXLAN, pod_mtu=1450, underlay_mtu=1500, vxlan_mtu=1450, underlay_ip=6)
    assert (wrong.fate, wrong.outer_packet) == (DfFate.OUTER_FRAGMENTED, 1520)
    right = df_outcome(1430, wire=Wire.VXLAN, pod_mtu=1430, underlay_mtu=1500, vxlan_mtu=1430, underlay_ip=6)
    assert right.fate is DfFate.CROSSES


# -- what each direction expects ----------------------------------------------------------------------

def test_ipip_follows_the_sending_nodes_subnet_in_cross_subnet_and_everywhere_in_always():
    cross = topo(mode=Mode.CROSS_SUBNET, encapsulation="ipip")
    assert expected_wire(cross.overlay, NODES[0], NODES[1]) == (Wire.IPIP, "other subnet: 10.10.20.12 is not in 10.10.10.0/24")
    assert expected_wire(cross.overlay, NODES[0], NODES[2])[0] is Wire.PLAIN
    always = topo(mode=Mode.ALWAYS, encapsulation="ipip")
    assert expected_wire(always.overlay, NODES[0], NODES[2]) == (Wire.IPIP, "ipipMode Always")


def test_dual_stack_plans_each_family_on_its_own_underlay():
    topology = topo(mode=Mode.ALWAYS, mode6=Mode.CROSS_SUBNET)
    es = plan(topology, (Pair(A, C),), PODS)
    assert [(e.src_node, e.family, e.expected) for e in es] == [
        (A, 4, Wire.VXLAN), (A, 6, Wire.PLAIN), (C, 4, Wire.VXLAN), (C, 6, Wire.PLAIN)]
    six = direction(topo(mode6=Mode.ALWAYS), A, B, 6)
    assert (six.src_ip, six.outer_src, six.outer_dst, six.inner_dst_mac, six.vni, six.port) == (
        PODS[A].ip6, IPv6Address("fd00:10::11"), IPv6Address("fd00:20::12"), "66:c7:4d:6e:6b:f6", 4096, 4789)
    paths = all_paths(topology)
    assert len(paths) == 12 and {p.family for p in paths} == {4, 6}


def test_an_ipv4_only_cluster_plans_as_before():
    es = plan(topo(), (Pair(A, B),), PODS)
    assert [e.family for e in es] == [4, 4]


def test_wireguard_comes_before_the_pools_encapsulation_and_needs_both_keys():
    overlay = Overlay(mode=Mode.ALWAYS, wireguard=True)
    assert expected_wire(overlay, NODES[0], NODES[1]) == (Wire.WIREGUARD, "wireguardEnabled: both nodes are WireGuard peers")
    keyless = replace(NODES[1], wireguard_key="")
    wire, reason = expected_wire(overlay, NODES[0], keyless)
    assert wire is Wire.VXLAN and reason.startswith(f"wireguardEnabled, but {B} has no WireGuard public key")
    # IPv6 has its own switch and port
    e6 = direction(topo(mode6=Mode.ALWAYS, wireguard6=True, wireguard_port6=51999), A, B, 6)
    assert (e6.expected, e6.port) == (Wire.WIREGUARD, 51999)
    assert direction(topo(mode6=Mode.ALWAYS, wireguard6=True), A, B, 4).expected is Wire.VXLAN


# -- IP-in-IP ----------------------------------------------------------------------------------------

IPIP_TOPO = topo(mode=Mode.ALWAYS, encapsulation="ipip")


def test_ipip_passes():
    e = direction(IPIP_TOPO, A, B)
    v = verdict(e, {A: ipip(e), B: ipip(e)})
    assert v.passed, v.reasons
    assert (v.observed, v.packets, v.outer_src, v.outer_dst, v.vni) == ("ipip", 6, e.outer_src, e.outer_dst, None)


def test_plain_where_ipip_is_promised_fails_naming_the_mode():
    e = direction(IPIP_TOPO, A, B)
    v = verdict(e, {A: plain(e), B: plain(e)})
    assert v.reasons == ("6 plain IPv4 packets, expected IP-in-IP (ipipMode Always)",)


def test_vxlan_where_ipip_is_promised_fails_naming_the_format():
    e = direction(IPIP_TOPO, A, B)
    v = verdict(e, {A: vxlan(e), B: vxlan(e)})
    assert v.reasons == ("6 VXLAN packets (VNI 4096, UDP port 4789), expected IP-in-IP (ipipMode Always)",)


def test_ipip_to_a_third_node_fails_naming_the_outer_destination():
    e = direction(IPIP_TOPO, A, B)
    v = verdict(e, {A: ipip(e, outer=(str(e.outer_src), "10.10.10.13")), B: []})
    assert "outer destination 10.10.10.13, expected 10.10.20.12" in v.reasons


def test_ipip_where_plain_is_expected_fails():
    e = direction(topo(mode=Mode.CROSS_SUBNET, encapsulation="ipip"), A, C)
    assert e.expected is Wire.PLAIN
    v = verdict(e, {A: ipip(e), C: ipip(e)})
    assert v.reasons == ("6 IP-in-IP packets (outer 10.10.10.11 -> 10.10.10.13), expected plain IPv4 "
                         "(same subnet: 10.10.10.13 is in 10.10.10.0/24)",)


# -- VXLAN over IPv6 and dual-stack -------------------------------------------------------------------

V6_TOPO = topo(mode=Mode.ALWAYS, mode6=Mode.ALWAYS)


def test_vxlan_over_ipv6_passes():
    e = direction(V6_TOPO, A, B, 6)
    v = verdict(e, {A: vxlan(e), B: vxlan(e)})
    assert v.passed, v.reasons
    assert (v.observed, v.vni, v.udp_dport, v.outer_dst) == ("vxlan", 4096, 4789, IPv6Address("fd00:20::12"))
    assert wireshark_filter(e) == f"ipv6.src=={PODS[A].ip6} && ipv6.dst=={PODS[B].ip6}"


def test_vxlan_over_ipv6_to_a_third_nodes_address_fails_naming_it():
    e = direction(V6_TOPO, A, B, 6)
    v = verdict(e, {A: vxlan(e, outer=("fd00:10::11", "fd00:10::13")), B: []})
    assert "outer destination fd00:10::13, expected fd00:20::12" in v.reasons
    assert f"{PODS[A].ip6} -> {PODS[B].ip6} not seen on {B}/eth1 (receiver)" in v.reasons


def test_dual_stack_judges_each_family_on_its_own():
    e4, e6 = direction(V6_TOPO, A, B, 4), direction(V6_TOPO, A, B, 6)
    frames = {A: vxlan(e4) + vxlan(e6), B: vxlan(e4) + plain(e6)}  # IPv6 arrives plain at B: a fault
    v4, v6 = verdict(e4, frames), verdict(e6, frames)
    assert v4.passed, v4.reasons
    assert "3 plain IPv6 packets, expected VXLAN (vxlanMode (IPv6 pool) Always)" in v6.reasons


# -- WireGuard ---------------------------------------------------------------------------------------

WG_TOPO = topo(mode=Mode.ALWAYS, wireguard=True, mode6=Mode.ALWAYS, wireguard6=True)


@pytest.mark.parametrize("family", [4, 6])
def test_wireguard_passes_with_data_between_the_nodes_and_nothing_of_the_pods(family):
    e = direction(WG_TOPO, A, B, family)
    v = verdict(e, {A: wg(e), B: wg(e)}, sent=3)
    assert v.passed, v.reasons
    assert (v.observed, v.wg_data, v.udp_dport) == ("wireguard", 6, 51820 if family == 4 else 51821)
    assert wireshark_filter(e).endswith("&& wg.type == 4")


def test_plaintext_leaking_between_two_wireguard_nodes_fails_even_with_the_tunnel_up():
    e = direction(WG_TOPO, A, B)
    v = verdict(e, {A: wg(e) + plain(e, 1), B: wg(e)})
    assert v.reasons == (f"1 plaintext packets of {e.src_ip} -> {e.dst_ip} on the underlay, expected only WireGuard "
                         "between the nodes (wireguardEnabled: both nodes are WireGuard peers)",)
    assert v.observed == "mixed"


def test_vxlan_between_two_wireguard_nodes_fails():
    e = direction(WG_TOPO, A, B)
    v = verdict(e, {A: vxlan(e), B: vxlan(e)})
    assert f"6 VXLAN packets of {e.src_ip} -> {e.dst_ip} on the underlay (VNI 4096, UDP port 4789), expected only " \
           "WireGuard between the nodes (wireguardEnabled: both nodes are WireGuard peers)" in v.reasons
    assert f"no WireGuard transport data (type 4) from {e.outer_src} -> {e.outer_dst} seen ({A}/eth1, {B}/eth1)" in v.reasons


def test_wireguard_on_the_wrong_port_or_out_of_step_with_the_probes_fails():
    e = direction(topo(mode=Mode.ALWAYS, wireguard=True, wireguard_port=51820), A, B)
    v = verdict(e, {A: wg(e, n=2), B: wg(e, n=2)}, sent=5)
    assert "2 WireGuard transport-data messages 10.10.10.11 -> 10.10.20.12 on the sender for 5 probes sent: " \
           "not in step with the probes" in v.reasons
    other = replace(e, port=51999)
    v = verdict(other, {A: wg(e), B: wg(e)})
    # the listening port on the wire differs from the configured one: the reason names both
    assert "UDP port 51820, expected 51999" in v.reasons


def test_wireguard_seen_only_on_the_sender_fails_naming_the_receiver():
    e = direction(WG_TOPO, A, B)
    v = verdict(e, {A: wg(e), B: []})
    assert v.reasons == (f"WireGuard transport data {e.outer_src} -> {e.outer_dst} not seen on {B}/eth1 (receiver)",)


def test_wireguard_lines_decode_its_port():
    e = direction(topo(mode=Mode.ALWAYS, wireguard6=True, mode6=Mode.ALWAYS), A, B, 6)
    commands = flow_commands(e, "evidence/a-b.pcapng", 4789)
    assert "-d udp.port==51821,wg" in commands.tshark
    assert "ipv6.src==fd00:10::11" in commands.display_filter


def test_the_mtu_judge_fails_a_vxlan_v6_device_set_for_ipv4_overhead():
    from vxcap.core.mtu.judge import judge_mtu
    from vxcap.core.mtu.links import NodeMtus

    def node(name, vxlan_mtu):
        return NodeMtus(node=name, pod_mtu=vxlan_mtu, vxlan_mtu=vxlan_mtu, underlay_mtu=1500, vxlan_ifname="vxlan-v6.calico")

    wrong = judge_mtu(Wire.VXLAN, node(A, 1450), node(B, 1450), underlay_ip=6)
    fails = [f.message for f in wrong if f.level == "fail"]
    assert any("vxlan-v6.calico MTU 1450 on k01-worker, expected <= 1430 (underlay MTU 1500 - 70 VXLAN overhead)" in m
               and "vxlanMTUV6: 1430" in m for m in fails), fails
    right = judge_mtu(Wire.VXLAN, node(A, 1430), node(B, 1430), underlay_ip=6)
    assert not [f for f in right if f.level == "fail"]
    ipip = judge_mtu(Wire.IPIP, node(A, 1500), node(B, 1500))
    assert any("expected <= 1480 (underlay MTU 1500 - 20 IP-in-IP overhead)" in f.message for f in ipip if f.level == "fail")


def test_the_manifest_carries_ipv6_and_wireguard_and_reads_them_back():
    from vxcap.core.manifest import manifest_dict, parse_manifest

    nodes = (replace(NODES[0], wireguard_key="k1="), replace(NODES[1], wireguard_key=""), NODES[2])
    topology = Topology(overlay=Overlay(mode=Mode.ALWAYS, mode6=Mode.CROSS_SUBNET, mtu6=1430, wireguard=True,
                                        wireguard_port=51999), nodes=nodes)
    data = manifest_dict(topology, PODS, (Pair(A, B),), {A: [("eth1", "a.pcap")]})
    back = parse_manifest(data)
    assert back.topology.overlay == topology.overlay
    assert [n.wireguard_key for n in back.topology.nodes] == ["k1=", "", None]
    assert back.topology.node(B).underlay6 == NODES[1].underlay6 and back.pods[0].ip6 == PODS[A].ip6
    assert [e.expected for e in plan(back.topology, back.pairs, back.pods_by_node())] == [
        Wire.VXLAN, Wire.VXLAN, Wire.VXLAN, Wire.VXLAN]  # B published no key: no WireGuard peer
    # an IPv4 VXLAN run's manifest has none of it
    plain_data = manifest_dict(Topology(overlay=Overlay(), nodes=NODES), PODS, (Pair(A, B),), {})
    assert set(plain_data["overlay"]) == {"encapsulation", "mode", "vni", "port", "mtu"}
    assert "wireguard_key" not in str(plain_data) and "ip6" in str(plain_data["pods"])


def test_an_ipv6_only_cluster_plans_ipv6_directions_only_and_the_manifest_says_so():
    from vxcap.core.manifest import manifest_dict, parse_manifest

    topology = topo(mode6=Mode.ALWAYS, ipv4=False)
    es = plan(topology, (Pair(A, B),), PODS)
    assert [(e.src_node, e.family, e.expected) for e in es] == [(A, 6, Wire.VXLAN), (B, 6, Wire.VXLAN)]
    assert {p.family for p in all_paths(topology)} == {6}
    data = manifest_dict(topology, PODS, (Pair(A, B),), {})
    assert data["overlay"]["ipv4"] is False and parse_manifest(data).topology.overlay.ipv4 is False
    with pytest.raises(InputError, match="needs an IPv6 one"):
        Overlay(ipv4=False)


@pytest.mark.parametrize("wire, family, device, limit, field_name", [
    (Wire.IPIP, 4, "tunl0", 1480, "ipipMTU"),
    (Wire.WIREGUARD, 4, "wireguard.cali", 1440, "wireguardMTU"),
    (Wire.WIREGUARD, 6, "wg-v6.cali", 1420, "wireguardMTUV6"),
])
def test_a_tunnel_device_left_at_the_underlay_mtu_fails_naming_its_felix_field(wire, family, device, limit, field_name):
    from vxcap.core.mtu.judge import judge_mtu
    from vxcap.core.mtu.links import NodeMtus

    def node(name, mtu):
        return NodeMtus(node=name, pod_mtu=mtu, vxlan_mtu=mtu, underlay_mtu=1500, vxlan_ifname=device)

    fails = [f.message for f in judge_mtu(wire, node(A, 1500), node(B, 1500), underlay_ip=family) if f.level == "fail"]
    assert any(f"{device} MTU 1500 on k01-worker, expected <= {limit}" in m and f"{field_name}: {limit}" in m
               for m in fails), fails
    assert not [f for f in judge_mtu(wire, node(A, limit), node(B, limit), underlay_ip=family) if f.level == "fail"]
