"""Calico objects (plain dicts, as the API serves them) into a Topology: pure, no cluster."""

from __future__ import annotations

import copy
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from tests.fakes import calico_objects as co
from vxcap.core.calico import (
    CalicoError,
    CalicoObjects,
    felix_settings,
    is_deleted,
    live_blocks,
    overlay_mode,
    pool_encapsulation,
    pool_mode,
    topology_from_calico,
)
from vxcap.core.model import Mode, Wire
from vxcap.core.plan import expected_wire

# The lab lesson's values (shared/reference/calico-overlay-lab.txt), written out here
# rather than read from the fixtures, so a fixture slip cannot agree with a code slip.
LAB = {
    "k01-control-plane": ("10.10.10.10/24", "192.168.23.64/26", "192.168.23.64", "66:15:9d:fa:c6:aa"),
    "k01-worker": ("10.10.10.11/24", "192.168.81.64/26", "192.168.81.64", "66:fb:ad:98:aa:13"),
    "k01-worker2": ("10.10.10.12/24", "192.168.164.128/26", "192.168.164.128", "66:c7:4d:6e:6b:f3"),
    "k01-worker3": ("10.10.20.13/24", "192.168.209.64/26", "192.168.209.64", "66:d2:0c:f0:ef:e5"),
}


def lab_objects(group: str, **overrides) -> CalicoObjects:
    calico = co.lab_calico(group)
    fields = dict(
        nodes=tuple(co.lab_nodes()),
        ippools=tuple(calico["ippools"]),
        block_affinities=tuple(calico["blockaffinities"]),
        felix_configurations=tuple(calico["felixconfigurations"]),
    )
    fields.update(overrides)
    return CalicoObjects(**fields)


@pytest.mark.parametrize("group", co.GROUPS)
def test_the_lab_reads_as_the_lesson_shows_it(group):
    found = topology_from_calico(lab_objects(group), cluster="k01")
    topology = found.topology
    assert topology.cluster == "k01"
    assert topology.pool == IPv4Network("192.168.0.0/16")
    assert topology.overlay.mode is Mode.CROSS_SUBNET
    assert (topology.overlay.vni, topology.overlay.port, topology.overlay.mtu) == (4096, 4789, None)
    assert topology.node_names() == tuple(sorted(LAB))
    for node in topology.nodes:
        underlay, block, vtep_ip, vtep_mac = LAB[node.name]
        assert node.underlay == IPv4Interface(underlay)
        assert node.block == IPv4Network(block)
        assert node.vtep_ip == IPv4Address(vtep_ip)
        assert node.vtep_mac == vtep_mac
    assert found.notes == ()


def test_discovered_prefixes_drive_the_crosssubnet_expectation():
    topology = topology_from_calico(lab_objects(co.V1)).topology
    worker, worker2, worker3 = (topology.node(n) for n in ("k01-worker", "k01-worker2", "k01-worker3"))
    assert expected_wire(topology.overlay, worker, worker2)[0] is Wire.PLAIN
    assert expected_wire(topology.overlay, worker, worker3)[0] is Wire.VXLAN
    assert expected_wire(topology.overlay, worker3, worker)[0] is Wire.VXLAN


# ---- deleted affinities: a string in v1, a bool in v3


@pytest.mark.parametrize(
    ("spec_deleted", "deleted"),
    [("true", True), ("True", True), ("false", False), ("", False), (True, True), (False, False)],
)
def test_is_deleted_reads_both_spellings(spec_deleted, deleted):
    assert is_deleted({"spec": {"deleted": spec_deleted}}) is deleted


def test_is_deleted_when_the_field_is_absent():
    # v3 omits `deleted: false`
    assert is_deleted(co.block_affinity(co.V3, "k01-worker", "192.168.81.64/26")) is False


@pytest.mark.parametrize("group", co.GROUPS)
def test_a_deleted_affinity_does_not_give_the_node_its_block(group):
    affinities = [
        co.block_affinity(group, "k01-worker", "192.168.5.0/26", deleted=True),
        co.block_affinity(group, "k01-worker", "192.168.81.64/26"),
    ]
    assert live_blocks(affinities) == {"k01-worker": [IPv4Network("192.168.81.64/26")]}


def test_the_v1_string_false_is_not_mistaken_for_a_deleted_affinity():
    affinity = co.block_affinity(co.V1, "k01-worker", "192.168.81.64/26")
    assert affinity["spec"]["deleted"] == "false"  # the trap: bool("false") is True
    assert live_blocks([affinity]) == {"k01-worker": [IPv4Network("192.168.81.64/26")]}


def test_blocks_being_released_and_virtual_affinities_are_not_pod_blocks():
    releasing = co.block_affinity(co.V1, "k01-worker", "192.168.7.0/26", state="pendingDeletion")
    virtual = co.block_affinity(co.V1, "k01-worker", "192.168.8.0/26")
    virtual["spec"]["type"] = "virtual"
    assert live_blocks([releasing, virtual]) == {}


def test_a_node_with_only_a_deleted_affinity_has_no_block():
    calico = co.lab_calico(co.V3)
    affinities = [a for a in calico["blockaffinities"] if a["spec"]["node"] != "k01-worker3"]
    affinities.append(co.block_affinity(co.V3, "k01-worker3", "192.168.209.64/26", deleted=True))
    topology = topology_from_calico(lab_objects(co.V3, block_affinities=tuple(affinities))).topology
    assert topology.node("k01-worker3").block is None
    assert topology.node("k01-worker").block == IPv4Network("192.168.81.64/26")


def test_of_several_blocks_the_one_holding_the_vtep_is_chosen_and_noted():
    calico = co.lab_calico(co.V1)
    extra = co.block_affinity(co.V1, "k01-worker", "192.168.0.0/26")  # sorts before the VTEP's block
    found = topology_from_calico(lab_objects(co.V1, block_affinities=(*calico["blockaffinities"], extra)))
    assert found.topology.node("k01-worker").block == IPv4Network("192.168.81.64/26")
    assert any("k01-worker has 2 blocks" in note for note in found.notes)


# ---- underlay address


def test_without_calicos_annotation_the_internal_ip_is_a_noted_slash_32():
    nodes = tuple(co.lab_nodes(with_underlay_annotation=False))
    found = topology_from_calico(lab_objects(co.V1, nodes=nodes))
    worker = found.topology.node("k01-worker")
    assert worker.underlay == IPv4Interface("172.18.0.5/32")
    assert len(found.notes) == 4 and all("/32" in note for note in found.notes)
    # and so CrossSubnet expects VXLAN even between nodes of one subnet
    worker2 = found.topology.node("k01-worker2")
    assert expected_wire(found.topology.overlay, worker, worker2)[0] is Wire.VXLAN


def test_a_node_with_no_ipv4_address_is_an_error():
    node = co.node(co.K01[1], calico_annotations=False)
    node["status"]["addresses"] = [{"type": "Hostname", "address": "k01-worker"}]
    with pytest.raises(CalicoError, match="k01-worker: no IPv4 underlay address"):
        topology_from_calico(lab_objects(co.V1, nodes=(node,)))


def test_a_malformed_vtep_mac_is_an_error_naming_node_and_annotation():
    node = co.node(co.K01[1])
    node["metadata"]["annotations"]["projectcalico.org/VXLANTunnelMACAddr"] = "66:fb:ad"
    with pytest.raises(CalicoError, match="k01-worker: annotation projectcalico.org/VXLANTunnelMACAddr"):
        topology_from_calico(lab_objects(co.V1, nodes=(node,)))


def test_a_node_without_vxlan_annotations_has_no_vtep():
    node = co.node(co.K01[1])
    for key in ("projectcalico.org/IPv4VXLANTunnelAddr", "projectcalico.org/VXLANTunnelMACAddr"):
        del node["metadata"]["annotations"][key]
    worker = topology_from_calico(lab_objects(co.V1, nodes=(node,))).topology.node("k01-worker")
    assert (worker.vtep_ip, worker.vtep_mac) == (None, None)


# ---- FelixConfiguration


def test_felix_defaults_when_unset_or_absent():
    assert felix_settings([co.felix_configuration(co.V1)]) == (4096, 4789, None)
    assert felix_settings([]) == (4096, 4789, None)


def test_felix_values_from_the_default_configuration_only():
    configs = [
        co.felix_configuration(co.V3, "node.k01-worker", vxlanVNI=9),
        co.felix_configuration(co.V3, vxlanVNI=4097, vxlanPort=8472, vxlanMTU=1400),
    ]
    assert felix_settings(configs) == (4097, 8472, 1400)


def test_a_node_override_applies_to_that_node_only():
    configs = [
        co.felix_configuration(co.V3, "node.k01-worker", vxlanVNI=9),
        co.felix_configuration(co.V3, vxlanVNI=4097, vxlanPort=8472, vxlanMTU=1400),
    ]
    assert felix_settings(configs, "k01-worker") == (9, 8472, 1400)
    assert felix_settings(configs, "k01-worker3") == (4097, 8472, 1400)


def test_a_node_override_sets_what_that_nodes_vxlan_must_carry_and_is_noted():
    from vxcap.core.model import Pair, Pod
    from vxcap.core.plan import plan

    felix = (co.felix_configuration(co.V1), co.felix_configuration(co.V1, "node.k01-worker3", vxlanVNI=4097))
    found = topology_from_calico(lab_objects(co.V1, felix_configurations=felix))
    topology = found.topology
    assert topology.overlay.vni == 4096 and topology.node("k01-worker3").vni == 4097
    assert topology.node("k01-worker").vni is None
    assert ("FelixConfiguration node.k01-worker3 sets vxlanVNI 4097 (the cluster's is 4096): k01-worker3's VXLAN "
            "must carry it, and the other nodes' must still reach it") in found.notes
    pods = {n: Pod(f"p-{n}", n, IPv4Address(ip)) for n, ip in (("k01-worker", "192.168.81.65"),
                                                                 ("k01-worker3", "192.168.209.65"))}
    to_w3, from_w3 = plan(topology, (Pair("k01-worker", "k01-worker3"),), pods)
    assert (to_w3.vni, from_w3.vni) == (4096, 4097)


def test_felix_mtu_zero_means_auto():
    assert felix_settings([co.felix_configuration(co.V1, vxlanMTU=0)])[2] is None


def test_felix_values_reach_the_overlay():
    calico = co.lab_calico(co.V1)
    felix = (co.felix_configuration(co.V1, vxlanVNI=5000, vxlanPort=4790, vxlanMTU=1410),)
    overlay = topology_from_calico(lab_objects(co.V1, felix_configurations=felix)).topology.overlay
    assert (overlay.vni, overlay.port, overlay.mtu) == (5000, 4790, 1410)
    assert calico["felixconfigurations"][0]["spec"].get("vxlanVNI") is None


def test_an_out_of_range_vni_is_an_error_naming_the_felixconfiguration():
    felix = (co.felix_configuration(co.V1, vxlanVNI=1 << 24),)
    with pytest.raises(CalicoError, match="FelixConfiguration default: VNI 16777216 is out of range"):
        topology_from_calico(lab_objects(co.V1, felix_configurations=felix))


# ---- the overlay mode


@pytest.mark.parametrize(
    ("vxlan", "mode"), [("Always", Mode.ALWAYS), ("CrossSubnet", Mode.CROSS_SUBNET), ("Never", Mode.NEVER), (None, Mode.NEVER)]
)
def test_pool_mode(vxlan, mode):
    assert pool_mode(co.ippool(co.V1, vxlan_mode=vxlan)) is mode


# IP-in-IP was refused until vxcap judged it (issue 15); now a pool's ipipMode is its encapsulation.
@pytest.mark.parametrize("vxlan", ["Never", None])
@pytest.mark.parametrize(("ipip", "mode"), [("Always", Mode.ALWAYS), ("CrossSubnet", Mode.CROSS_SUBNET)])
def test_an_ipip_pool_is_ipip_with_its_mode(vxlan, ipip, mode):
    pool = co.ippool(co.V1, vxlan_mode=vxlan, ipip_mode=ipip)
    assert (pool_encapsulation(pool), pool_mode(pool)) == (("ipip", mode), mode)


def test_ipip_on_an_ipv6_pool_is_refused_in_one_line():
    with pytest.raises(CalicoError) as caught:
        pool_encapsulation(co.ippool(co.V3, cidr="fd00:192:168::/48", vxlan_mode="Never", ipip_mode="Always"))
    assert "no IP-in-IP over IPv6" in str(caught.value) and "\n" not in str(caught.value)


def test_both_encapsulations_on_one_pool_is_refused():
    with pytest.raises(CalicoError, match="both ipipMode Always and vxlanMode Always"):
        pool_mode(co.ippool(co.V1, vxlan_mode="Always", ipip_mode="Always"))


def test_an_unknown_vxlan_mode_is_refused():
    with pytest.raises(CalicoError, match="vxlanMode 'Sometimes'"):
        pool_mode(co.ippool(co.V1, vxlan_mode="Sometimes"))


def test_the_mode_comes_from_the_pool_that_holds_the_blocks():
    pools = (
        co.ippool(co.V1, name="unused", cidr="10.99.0.0/16", vxlan_mode="Always"),
        co.ippool(co.V1),
    )
    mode, pool, notes = overlay_mode(pools, [IPv4Network("192.168.81.64/26")])
    assert (mode, pool, notes) == (Mode.CROSS_SUBNET, IPv4Network("192.168.0.0/16"), ())


def test_an_unused_ipip_pool_does_not_stop_a_vxlan_run():
    pools = (co.ippool(co.V1, name="old", cidr="10.99.0.0/16", vxlan_mode="Never", ipip_mode="Always"), co.ippool(co.V1))
    topology = topology_from_calico(lab_objects(co.V1, ippools=pools)).topology
    assert topology.overlay.mode is Mode.CROSS_SUBNET


def test_pools_holding_blocks_that_disagree_are_refused():
    pools = (
        co.ippool(co.V1, name="a", cidr="192.168.0.0/17", vxlan_mode="Always"),
        co.ippool(co.V1, name="b", cidr="192.168.128.0/17", vxlan_mode="CrossSubnet"),
    )
    with pytest.raises(CalicoError, match=r"disagree on vxlanMode: a \(Always\), b \(CrossSubnet\)"):
        topology_from_calico(lab_objects(co.V1, ippools=pools))


def test_pools_that_agree_give_the_mode_but_no_single_pool():
    pools = (
        co.ippool(co.V1, name="a", cidr="192.168.0.0/17", vxlan_mode="Always"),
        co.ippool(co.V1, name="b", cidr="192.168.128.0/17", vxlan_mode="Always"),
    )
    topology = topology_from_calico(lab_objects(co.V1, ippools=pools)).topology
    assert topology.overlay.mode is Mode.ALWAYS
    assert topology.pool is None


def test_without_block_affinities_the_enabled_pools_decide_and_it_is_noted():
    pools = (co.ippool(co.V1, name="off", cidr="10.99.0.0/16", vxlan_mode="Never", disabled=True), co.ippool(co.V1))
    found = topology_from_calico(lab_objects(co.V1, ippools=pools, block_affinities=()))
    assert found.topology.overlay.mode is Mode.CROSS_SUBNET
    assert all(node.block is None for node in found.topology.nodes)
    assert any("no block affinities yet" in note for note in found.notes)


def test_no_pool_is_no_calico():
    with pytest.raises(CalicoError, match="no Calico IPPool found"):
        topology_from_calico(lab_objects(co.V1, ippools=()))


def test_only_disabled_pools_is_an_error():
    pools = (co.ippool(co.V1, disabled=True),)
    with pytest.raises(CalicoError, match="no enabled IPv4 Calico IPPool"):
        topology_from_calico(lab_objects(co.V1, ippools=pools))


def test_ipv6_pools_and_blocks_are_left_out():
    pools = (co.ippool(co.V1, name="v6", cidr="fd00:10::/48", vxlan_mode="Always"), co.ippool(co.V1))
    calico = co.lab_calico(co.V1)
    v6_block = co.block_affinity(co.V1, "k01-worker", "fd00:10:0:1::/122")
    found = topology_from_calico(
        lab_objects(co.V1, ippools=pools, block_affinities=(*calico["blockaffinities"], v6_block))
    )
    assert found.topology.overlay.mode is Mode.CROSS_SUBNET
    assert found.topology.node("k01-worker").block == IPv4Network("192.168.81.64/26")


def test_a_cluster_without_nodes_is_an_error():
    with pytest.raises(CalicoError, match="no nodes"):
        topology_from_calico(lab_objects(co.V1, nodes=()))


def test_inputs_are_not_modified():
    objects = lab_objects(co.V1)
    before = copy.deepcopy(objects)
    topology_from_calico(objects)
    assert objects == before
