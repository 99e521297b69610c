"""IPv6-only clusters in the model (no IPv4 underlay, no IPv4 pod address, no placeholder), and WireGuard
named where VXLAN or plain was promised, from frames built with scapy. Each fault twin fails naming the
format; its healthy twin passes."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv6Address, IPv6Interface

import pytest

from tests.core.test_encap_verdict import NODES, PODS, A, B, C, direction, plain, topo, verdict, vxlan, wg
from vxcap.core.capture import capture_filter
from vxcap.core.encap import reading_for
from vxcap.core.errors import InputError
from vxcap.core.manifest import manifest_dict, parse_manifest
from vxcap.core.model import Mode, Node, Overlay, Pair, Pod, Topology, Wire
from vxcap.core.plan import all_paths, plan

V6_NODES = tuple(replace(n, underlay=None, vtep_mac=None) for n in NODES)
V6_PODS = {name: replace(pod, ip=None) for name, pod in PODS.items()}


def v6_topology(**overlay) -> Topology:
    return Topology(overlay=Overlay(**{"mode6": Mode.CROSS_SUBNET, "ipv4": False, **overlay}), nodes=V6_NODES)


# -- IPv6 only -------------------------------------------------------------------------------------------

def test_a_node_and_a_pod_need_one_address_of_either_family_not_an_ipv4_one():
    node = Node("v6", underlay6=IPv6Interface("fd00:10::11/64"))
    assert (node.underlay, node.address, str(node.subnet)) == (None, IPv6Address("fd00:10::11"), "fd00:10::/64")
    assert (node.address_of(4), node.subnet_of(4)) == (None, None)
    with pytest.raises(InputError, match="node bare: no underlay address"):
        Node("bare")
    assert Pod("p", "v6", ip6=IPv6Address("fd00::1")).address == IPv6Address("fd00::1")
    with pytest.raises(InputError, match="pod p: no address"):
        Pod("p", "v6")


def test_an_ipv6_only_topology_plans_every_pair_in_ipv6_with_its_reason():
    topology = v6_topology()
    paths = {(p.src, p.dst): (p.family, p.expected, p.reason) for p in all_paths(topology)}
    assert len(paths) == 6
    assert paths[(A, B)] == (6, Wire.VXLAN, "other subnet: fd00:20::12 is not in fd00:10::/64")
    assert paths[(A, C)] == (6, Wire.PLAIN, "same subnet: fd00:10::13 is in fd00:10::/64")
    es = plan(topology, (Pair(A, B),), V6_PODS)
    assert [(e.family, str(e.outer_src), str(e.src_ip)) for e in es] == [
        (6, "fd00:10::11", "fd00:192:168:81::41"), (6, "fd00:20::12", "fd00:192:168:164::81")]


def test_an_ipv6_only_run_passes_on_ipv6_vxlan_and_the_capture_filter_has_no_ipv4_term():
    topology = v6_topology()
    e = next(e for e in plan(topology, (Pair(A, B),), V6_PODS) if e.src_node == A)
    v = verdict(e, {A: vxlan(e), B: vxlan(e)})
    assert v.passed and v.observed == "vxlan", v.reasons
    pods = [p.ip6 for p in V6_PODS.values()]
    nodes = [n.address_of(6) for n in V6_NODES]
    bpf = capture_filter("precise", pods, nodes, 4789, wires=[Wire.VXLAN, Wire.WIREGUARD],
                         wireguard_ports=[51820, 51821])["bpf"]
    assert "ip6 and udp" in bpf and "udp port 51821" in bpf
    assert "0x0800" not in bpf and "icmp" not in bpf and "ip[" not in bpf  # no IPv4 VXLAN, fragment or ICMP term


def test_an_ipv6_only_manifest_has_no_ipv4_placeholder_and_reads_back_the_same():
    topology = v6_topology(mtu6=1430)
    data = manifest_dict(topology, V6_PODS, (Pair(A, B),), {A: [("eth1", "a.pcap")], B: [("eth1", "b.pcap")]})
    assert not [n for n in data["nodes"] if "underlay" in n] and not [p for p in data["pods"] if "ip" in p]
    back = parse_manifest(data)
    assert back.topology.node(A).underlay is None and back.topology.node(A).underlay6 == NODES[0].underlay6
    assert {p.ip for p in back.pods} == {None} and back.pods[0].ip6 == PODS[A].ip6
    assert [(e.family, e.expected) for e in plan(back.topology, back.pairs, back.pods_by_node())] == [
        (6, Wire.VXLAN), (6, Wire.VXLAN)]
    # neither family: the old one-line error
    del data["nodes"][0]["underlay6"]
    with pytest.raises(InputError, match=r"manifest: nodes\[0\]\.underlay is missing"):
        parse_manifest(data)


# -- WireGuard where it was not promised ------------------------------------------------------------------

def test_the_decoders_read_wireguard_on_felixs_ports_even_when_the_overlay_has_it_off():
    reading = reading_for(topo(mode=Mode.CROSS_SUBNET))
    assert {51820, 51821} <= reading.wireguard_ports


def test_wireguard_where_vxlan_is_promised_fails_naming_wireguard_and_vxlan_passes():
    e = direction(topo(mode=Mode.ALWAYS), A, B)
    assert e.expected is Wire.VXLAN
    v = verdict(e, {A: wg(e, dport=51820), B: wg(e, dport=51820)})
    assert v.reasons == ("6 WireGuard transport-data packets between 10.10.10.11 and 10.10.20.12 on UDP 51820, "
                         "expected VXLAN (vxlanMode Always)",)
    assert (v.observed, str(v.outer_src), str(v.outer_dst)) == ("wireguard", "10.10.10.11", "10.10.20.12")
    healthy = verdict(e, {A: vxlan(e), B: vxlan(e)})
    assert healthy.passed, healthy.reasons


def test_wireguard_where_plain_is_promised_fails_naming_wireguard_in_either_family():
    e = direction(topo(mode=Mode.CROSS_SUBNET), A, C)
    assert e.expected is Wire.PLAIN
    v = verdict(e, {A: wg(e, dport=51820), C: wg(e, dport=51820)})
    assert v.reasons == ("6 WireGuard transport-data packets between 10.10.10.11 and 10.10.10.13 on UDP 51820, "
                         "expected plain IPv4 (same subnet: 10.10.10.13 is in 10.10.10.0/24)",)
    assert verdict(e, {A: plain(e), C: plain(e)}).passed
    six = next(x for x in plan(v6_topology(), (Pair(A, C),), V6_PODS) if x.src_node == A)
    v6 = verdict(six, {A: wg(six, dport=51821), C: wg(six, dport=51821)})
    assert v6.reasons == ("6 WireGuard transport-data packets between fd00:10::11 and fd00:10::13 on UDP 51821, "
                          "expected plain IPv6 (same subnet: fd00:10::13 is in fd00:10::/64)",)


def test_wireguard_beside_the_promised_vxlan_is_named_too():
    e = direction(topo(mode=Mode.ALWAYS), A, B)
    v = verdict(e, {A: vxlan(e) + wg(e, n=1, dport=51820), B: vxlan(e) + wg(e, n=1, dport=51820)})
    assert v.reasons == ("2 WireGuard transport-data packets between 10.10.10.11 and 10.10.20.12 on UDP 51820, "
                         "expected VXLAN (vxlanMode Always)",)
    assert v.observed == "mixed"


def test_wireguard_between_other_nodes_is_not_this_directions():
    e = direction(topo(mode=Mode.ALWAYS), A, B)
    other = wg(e, dport=51820, outer=("10.10.10.13", "10.10.20.12"))  # worker3 -> worker2, not A -> B
    v = verdict(e, {A: vxlan(e) + other, B: vxlan(e) + other})
    assert v.passed, v.reasons


# -- the IPv6-only labs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("overlay", ["vxlan6", "wireguard6"])
def test_an_ipv6_only_lab_gives_no_ipv4_address_to_anything_and_is_judged_without_one(overlay):
    from ipaddress import ip_interface

    from tests.lab_support import dataplane_spec
    from vxcap.core.lab.encap_topology import lab_pods, lab_topology
    from vxcap.core.lab.plan import LabNames, lab_steps

    spec = dataplane_spec(overlay)
    added = [s.argv[s.argv.index("add") + 1] for s in lab_steps(spec, LabNames.for_spec(spec, "vxt"))
             if s.argv[:3] == ("ip", "addr", "add")]
    assert added and {ip_interface(a).version for a in added} == {6}, added  # switch, nodes, pods
    topology = lab_topology(spec)
    assert (topology.pool, topology.subnets, topology.overlay.families()) == (None, (), (6,))
    assert {(n.underlay, n.block, n.vtep_ip, n.vtep_mac) for n in topology.nodes} == {(None, None, None, None)}
    assert {p.ip for p in lab_pods(spec)} == {None} and None not in {p.ip6 for p in lab_pods(spec)}
    dual = dataplane_spec("dual")  # a dual-stack lab keeps its IPv4 side
    assert None not in {n.underlay for n in lab_topology(dual).nodes} and None not in {p.ip for p in lab_pods(dual)}
