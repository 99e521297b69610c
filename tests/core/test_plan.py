import re
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest
import yaml

from vxcap.core.errors import InputError
from vxcap.core.lab.spec import lab_from_dict
from vxcap.core.model import Mode, Node, Overlay, Pair, Pod, Topology, Wire
from vxcap.core.plan import all_paths, expected_wire, pair_nodes, plan, resolve_node, resolve_pairs

LAB_FILE = Path(__file__).resolve().parents[2] / "topology" / "k01-lab.yaml"


def node(name, cidr):
    return Node(name=name, underlay=IPv4Interface(cidr))


def test_cross_subnet_same_prefix_is_plain_other_is_vxlan():
    overlay = Overlay(mode=Mode.CROSS_SUBNET)
    a, b, c = node("a", "10.10.10.11/24"), node("b", "10.10.10.12/24"), node("c", "10.10.20.13/24")
    assert expected_wire(overlay, a, b)[0] is Wire.PLAIN
    assert expected_wire(overlay, a, c)[0] is Wire.VXLAN
    assert expected_wire(overlay, c, a)[0] is Wire.VXLAN
    assert "10.10.20.13 is not in 10.10.10.0/24" in expected_wire(overlay, a, c)[1]


def test_cross_subnet_decides_with_the_senders_prefix_so_it_can_differ_by_direction():
    # a /16 on one side and a /24 on the other: a sees b as local, b does not see a.
    overlay = Overlay(mode=Mode.CROSS_SUBNET)
    wide, narrow = node("wide", "10.10.10.11/16"), node("narrow", "10.10.20.13/24")
    assert expected_wire(overlay, wide, narrow)[0] is Wire.PLAIN
    assert expected_wire(overlay, narrow, wide)[0] is Wire.VXLAN


@pytest.mark.parametrize("mode,wire", [(Mode.ALWAYS, Wire.VXLAN), (Mode.NEVER, Wire.PLAIN)])
def test_always_and_never_ignore_subnets(mode, wire):
    overlay = Overlay(mode=mode)
    a, b = node("a", "10.10.10.11/24"), node("b", "10.10.10.12/24")
    c = node("c", "10.10.20.13/24")
    assert expected_wire(overlay, a, b)[0] is wire
    assert expected_wire(overlay, a, c)[0] is wire
    assert expected_wire(overlay, a, b)[1] == f"vxlanMode {mode.value}"


def test_reference_lab_paths(k01):
    paths = {(p.src, p.dst): p.expected for p in all_paths(k01.topology)}
    assert len(paths) == 12
    assert paths[("k01-worker", "k01-worker3")] is Wire.VXLAN
    assert paths[("k01-worker3", "k01-worker")] is Wire.VXLAN
    assert paths[("k01-worker", "k01-worker2")] is Wire.PLAIN
    assert paths[("k01-control-plane", "k01-worker2")] is Wire.PLAIN
    assert sum(w is Wire.VXLAN for w in paths.values()) == 6


@pytest.mark.parametrize("short,full", [("worker", "k01-worker"), ("worker3", "k01-worker3"),
                                        ("control-plane", "k01-control-plane"), ("k01-worker2", "k01-worker2")])
def test_short_names(k01, short, full):
    assert resolve_node(k01.topology, short) == full


def test_unknown_name_lists_the_nodes(k01):
    with pytest.raises(InputError) as err:
        resolve_node(k01.topology, "worker9")
    assert "unknown node 'worker9'" in str(err.value)
    assert "k01-worker3" in str(err.value)


def test_ambiguous_name_lists_the_candidates():
    topo = Topology(overlay=Overlay(), nodes=(node("east-worker", "10.0.0.1/24"), node("west-worker", "10.0.0.2/24")))
    with pytest.raises(InputError, match="ambiguous.*east-worker, west-worker"):
        resolve_node(topo, "worker")


@pytest.mark.parametrize("spec", ["worker", "worker,", ",worker3", "a,b,c", "worker,worker"])
def test_bad_pair_specs(k01, spec):
    with pytest.raises(InputError, match="--pair"):
        resolve_pairs(k01.topology, [spec])


def test_pairs_deduplicate_either_way_round_and_keep_order(k01):
    pairs = resolve_pairs(k01.topology, ["worker,worker3", "worker3,worker", "worker,worker2"])
    assert pairs == (Pair("k01-worker", "k01-worker3"), Pair("k01-worker", "k01-worker2"))
    assert pair_nodes(pairs) == ("k01-worker", "k01-worker3", "k01-worker2")


def test_all_pairs(k01):
    assert len(resolve_pairs(k01.topology, [], all_pairs=True)) == 6


def test_no_pairs_is_an_input_error(k01):
    with pytest.raises(InputError, match="--pair"):
        resolve_pairs(k01.topology, [])


def test_plan_binds_pods_and_underlay(k01):
    pods = {p.node: p for p in k01.pods}
    expectations = plan(k01.topology, (Pair("k01-worker", "k01-worker3"),), pods)
    there, back = expectations
    assert (there.src_node, there.dst_node) == ("k01-worker", "k01-worker3")
    assert there.src_ip == IPv4Address("192.168.81.65") and there.dst_ip == IPv4Address("192.168.209.65")
    assert there.outer_src == IPv4Address("10.10.10.11") and there.outer_dst == IPv4Address("10.10.20.13")
    assert there.inner_dst_mac == "66:d2:0c:f0:ef:e5"
    assert (there.vni, there.port) == (4096, 4789)
    assert back.outer_src == IPv4Address("10.10.20.13") and back.inner_dst_mac == "66:fb:ad:98:aa:13"


def test_plan_needs_a_pod_on_each_node(k01):
    with pytest.raises(InputError, match="no test pod on node k01-worker3"):
        plan(k01.topology, (Pair("k01-worker", "k01-worker3"),),
             {"k01-worker": Pod("p", "k01-worker", IPv4Address("192.168.81.65"))})


def test_lab_file_reference_values(k01):
    t = k01.topology
    assert t.overlay == Overlay(mode=Mode.CROSS_SUBNET, vni=4096, port=4789, mtu=1450)
    assert t.pool == IPv4Network("192.168.0.0/16")
    w3 = t.node("k01-worker3")
    assert w3.block == IPv4Network("192.168.209.64/26") and w3.vtep_ip == IPv4Address("192.168.209.64")
    assert k01.pod_on("k01-worker3").ip == IPv4Address("192.168.209.65")


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["nodes"][0].pop("address"), "nodes[0].address is missing"),
    (lambda d: d["nodes"][1].update(block="10.0.0.0/26"), "outside the pool"),
    (lambda d: d["nodes"][1].update(vtep_mac="zz"), "not a MAC"),
    (lambda d: d["overlay"].update(mode="Sometimes"), "vxlanMode 'Sometimes'"),
    (lambda d: d["nodes"][2].update(address="10.99.0.5/24"), "none of the lab's subnets"),
])
def test_lab_file_errors_name_the_field(mutate, message):
    data = yaml.safe_load(LAB_FILE.read_text())
    mutate(data)
    with pytest.raises(InputError, match=re.escape(message)):
        lab_from_dict(data)


def test_flannels_overlay_words_its_reasons_by_direct_routing():
    a, b, c = (Node(n, IPv4Interface(addr)) for n, addr in (("a", "10.10.10.11/24"), ("b", "10.10.10.12/24"),
                                                           ("c", "10.10.20.13/24")))
    off = Overlay(mode=Mode.ALWAYS, vni=1, port=8472, cni="flannel")
    on = Overlay(mode=Mode.CROSS_SUBNET, vni=1, port=8472, cni="flannel")
    assert expected_wire(off, a, b) == (Wire.VXLAN, "Flannel vxlan, DirectRouting off")
    assert expected_wire(on, a, b) == (Wire.PLAIN, "DirectRouting on, same subnet: 10.10.10.12 is in 10.10.10.0/24")
    assert expected_wire(on, a, c)[0] is Wire.VXLAN
    # Never is Flannel's host-gw (cluster runs): plain, worded as host-gw
    assert expected_wire(Overlay(mode=Mode.NEVER, cni="flannel"), a, c) == (
        Wire.PLAIN, "Flannel host-gw: the peer's pod CIDR routed via its address")
    with pytest.raises(InputError, match="overlay cni 'flannel' with ipipMode Always is not handled"):
        Overlay(mode=Mode.ALWAYS, encapsulation="ipip", cni="flannel")
    with pytest.raises(InputError, match="overlay cni 'weave'"):
        Overlay(cni="weave")


def test_cilium_and_antrea_overlays_word_their_reasons_in_their_settings():
    a, b, c = (Node(n, IPv4Interface(addr)) for n, addr in (("a", "10.10.10.11/24"), ("b", "10.10.10.12/24"),
                                                           ("c", "10.10.20.13/24")))
    tunnel = Overlay(mode=Mode.ALWAYS, encapsulation="geneve", port=6081, vni=0, vni_identity=True, cni="cilium")
    assert expected_wire(tunnel, a, b) == (Wire.GENEVE, "Cilium routing-mode tunnel (geneve)")
    assert expected_wire(Overlay(mode=Mode.NEVER, cni="cilium"), a, c) == (Wire.PLAIN, "Cilium routing-mode native")
    with pytest.raises(InputError, match="overlay cni 'cilium' with vxlanMode CrossSubnet is not handled"):
        Overlay(mode=Mode.CROSS_SUBNET, cni="cilium")  # Cilium has no hybrid
    hybrid = Overlay(mode=Mode.CROSS_SUBNET, encapsulation="vxlan", port=4789, vni=0, cni="antrea")
    assert expected_wire(hybrid, a, b) == (Wire.PLAIN, "Antrea hybrid (vxlan), same subnet: 10.10.10.12 is in 10.10.10.0/24")
    assert expected_wire(hybrid, a, c) == (Wire.VXLAN, "Antrea hybrid (vxlan), other subnet: 10.10.20.13 is not in 10.10.10.0/24")
    assert expected_wire(Overlay(mode=Mode.ALWAYS, encapsulation="geneve", port=6081, vni=0, cni="antrea"), a, c) == (
        Wire.GENEVE, "Antrea trafficEncapMode encap (geneve)")
    with pytest.raises(InputError, match="overlay cni 'antrea' with ipipMode Always is not handled"):
        Overlay(mode=Mode.ALWAYS, encapsulation="ipip", cni="antrea")
