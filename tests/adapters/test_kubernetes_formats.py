"""Discovery of Calico's other data planes through the HTTP fake API, in both Calico API groups:
IP-in-IP pools, IPv6 pools with dual-stack nodes, and Felix's WireGuard settings; and what
`vxcap topology` then says per ordered node pair and family."""

from __future__ import annotations

import json
from ipaddress import IPv6Address, IPv6Interface, IPv6Network

import pytest
from click.testing import CliRunner

from tests.adapters.test_kubernetes import cluster
from tests.fakes import calico_objects as co
from tests.fakes.kube_api import start_fake_kube  # noqa: F401 (fixture)
from vxcap.core.model import Mode, Wire
from vxcap.core.plan import all_paths

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"


def paths(topology):
    return {(p.src, p.dst, p.family): (p.expected, p.reason) for p in all_paths(topology)}


@pytest.mark.parametrize("group", co.GROUPS)
def test_an_ipip_pool_is_discovered_and_planned(start_fake_kube, group):
    fake = start_fake_kube(calico_groups=(group,), calico={group: co.lab_calico(group, ipip="CrossSubnet")})
    topology = cluster(fake).discover()
    assert (topology.overlay.encapsulation, topology.overlay.mode, topology.overlay.mode6) == ("ipip", Mode.CROSS_SUBNET, None)
    found = paths(topology)
    assert found[(W, W3, 4)] == (Wire.IPIP, "other subnet: 10.10.20.13 is not in 10.10.10.0/24")
    assert found[(W, W2, 4)][0] is Wire.PLAIN
    assert not any(family == 6 for _, _, family in found)


@pytest.mark.parametrize("group", co.GROUPS)
def test_a_dual_stack_cluster_plans_each_family(start_fake_kube, group):
    fake = start_fake_kube(calico_groups=(group,), nodes=co.lab_nodes(co.K01_DUAL),
                           calico={group: co.lab_calico(group, co.K01_DUAL, ipv6_mode="Always")})
    topology = cluster(fake).discover()
    assert (topology.overlay.mode, topology.overlay.mode6, topology.pool6) == (
        Mode.CROSS_SUBNET, Mode.ALWAYS, IPv6Network("fd00:192:168::/48"))
    worker = topology.node(W)
    assert (worker.underlay6, worker.vtep_mac6, worker.vtep_ip6) == (
        IPv6Interface("fd00:10::11/64"), "66:fb:ad:98:aa:66", IPv6Address("fd00:192:168:51::"))
    assert worker.block is not None and worker.block.version == 4  # IPv6 blocks are not taken for the IPv4 one
    found = paths(topology)
    assert found[(W, W2, 4)][0] is Wire.PLAIN and found[(W, W2, 6)] == (Wire.VXLAN, "vxlanMode (IPv6 pool) Always")
    assert len(found) == 2 * 12


def test_an_ipv6_pool_without_ipv6_nodes_is_noted(start_fake_kube):
    fake = start_fake_kube(calico={co.V1: co.lab_calico(co.V1, ipv6_mode="CrossSubnet")})
    kube = cluster(fake)
    topology = kube.discover()
    assert topology.overlay.mode6 is Mode.CROSS_SUBNET
    assert not any(p.family == 6 for p in all_paths(topology))
    assert any("no projectcalico.org/IPv6Address on k01-control-plane" in note for note in kube.notes)


@pytest.mark.parametrize("group", co.GROUPS)
def test_wireguard_settings_and_keys_are_discovered(start_fake_kube, group):
    calico = co.lab_calico(group, co.K01_WIREGUARD, ipv6_mode="Always", wireguard=True, wireguard6=True)
    fake = start_fake_kube(calico_groups=(group,), nodes=co.lab_nodes(co.K01_WIREGUARD), calico={group: calico})
    topology = cluster(fake).discover()
    overlay = topology.overlay
    assert (overlay.wireguard, overlay.wireguard6, overlay.wireguard_port, overlay.wireguard_port6) == (True, True, 51820, 51821)
    assert {wire for wire, _ in paths(topology).values()} == {Wire.WIREGUARD}


def test_a_node_without_a_wireguard_key_is_not_a_peer(start_fake_kube):
    nodes = co.K01_WIREGUARD[:3] + (co.K01_DUAL[3],)  # worker3 has not published a key
    calico = co.lab_calico(co.V3, nodes, wireguard=True)
    calico["felixconfigurations"] = [co.felix_configuration(co.V3, wireguardEnabled=True, wireguardListeningPort=51999)]
    fake = start_fake_kube(calico_groups=(co.V3,), nodes=co.lab_nodes(nodes), calico={co.V3: calico})
    kube = cluster(fake)
    topology = kube.discover()
    found = paths(topology)
    assert found[(W, W2, 4)] == (Wire.WIREGUARD, "wireguardEnabled: both nodes are WireGuard peers")
    wire, reason = found[(W, W3, 4)]
    assert wire is Wire.VXLAN and reason == ("wireguardEnabled, but k01-worker3 has no WireGuard public key: "
                                            "other subnet: 10.10.20.13 is not in 10.10.10.0/24")
    assert topology.overlay.wireguard_port == 51999
    assert any("no projectcalico.org/WireguardPublicKey on k01-worker3" in note for note in kube.notes)


def test_vxcap_topology_states_each_pair_and_family_with_its_reason(start_fake_kube):
    from vxcap.cli.main import cli

    fake = start_fake_kube(nodes=co.lab_nodes(co.K01_DUAL),
                           calico={co.V1: co.lab_calico(co.V1, co.K01_DUAL, ipv6_mode="CrossSubnet")})
    runner = CliRunner()
    result = runner.invoke(cli, ["topology", "--kubeconfig", str(fake.kubeconfig), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["overlay"]["mode6"] == "CrossSubnet"
    six = [p for p in data["paths"] if p["family"] == "IPv6" and (p["src"], p["dst"]) == (W, W3)]
    assert six == [{"src": W, "dst": W3, "family": "IPv6", "expected": "vxlan",
                    "reason": "other subnet: fd00:20::13 is not in fd00:10::/64"}]
    table = runner.invoke(cli, ["topology", "--kubeconfig", str(fake.kubeconfig)], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "IPv6 vxlanMode CrossSubnet" in table.output and "fd00:10::11/64" in table.output


@pytest.mark.parametrize("group", co.GROUPS)
def test_an_ipv6_only_cluster_is_discovered_without_any_ipv4(start_fake_kube, group):
    fake = start_fake_kube(calico_groups=(group,), nodes=co.lab_nodes(co.K01_V6ONLY),
                           calico={group: co.lab_calico(group, co.K01_V6ONLY, ipv6_mode="CrossSubnet")})
    kube = cluster(fake)
    topology = kube.discover()
    assert (topology.overlay.ipv4, topology.overlay.mode6, topology.overlay.families()) == (False, Mode.CROSS_SUBNET, (6,))
    assert (topology.pool, topology.pool6) == (None, IPv6Network("fd00:192:168::/48"))
    worker = topology.node(W)
    assert (worker.underlay, worker.block, worker.vtep_ip, worker.vtep_mac) == (None, None, None, None)
    assert (worker.underlay6, worker.block6, worker.vtep_ip6, worker.vtep_mac6) == (
        IPv6Interface("fd00:10::11/64"), IPv6Network("fd00:192:168:51::/122"), IPv6Address("fd00:192:168:51::"),
        "66:fb:ad:98:aa:66")
    found = paths(topology)
    assert len(found) == 12 and {family for _, _, family in found} == {6}
    assert found[(W, W3, 6)] == (Wire.VXLAN, "other subnet: fd00:20::13 is not in fd00:10::/64")
    assert found[(W, W2, 6)] == (Wire.PLAIN, "same subnet: fd00:10::12 is in fd00:10::/64")
    assert not kube.notes


def test_an_ipv6_only_node_without_calicos_annotation_falls_back_to_its_ipv6_internal_ip(start_fake_kube):
    fake = start_fake_kube(calico_groups=(co.V3,), nodes=co.lab_nodes(co.K01_V6ONLY, with_underlay_annotation=False),
                           calico={co.V3: co.lab_calico(co.V3, co.K01_V6ONLY, ipv6_mode="CrossSubnet")})
    kube = cluster(fake)
    topology = kube.discover()
    assert topology.node(W).underlay6 == IPv6Interface("fc00:f853:ccd:e793::5/128")
    assert any("no projectcalico.org/IPv6Address annotation; using InternalIP fc00:f853:ccd:e793::5 as /128" in note
               for note in kube.notes)
    assert {wire for wire, _ in paths(topology).values()} == {Wire.VXLAN}  # every other node another subnet


@pytest.mark.parametrize("group", co.GROUPS)
def test_an_ipv6_only_wireguard_cluster_expects_wireguard_on_51821(start_fake_kube, group):
    calico = co.lab_calico(group, co.K01_V6ONLY_WIREGUARD, ipv6_mode="Never", wireguard6=True)
    fake = start_fake_kube(calico_groups=(group,), nodes=co.lab_nodes(co.K01_V6ONLY_WIREGUARD), calico={group: calico})
    topology = cluster(fake).discover()
    assert (topology.overlay.ipv4, topology.overlay.wireguard6, topology.overlay.wireguard_port6) == (False, True, 51821)
    assert set(paths(topology).values()) == {(Wire.WIREGUARD, "wireguardEnabledV6: both nodes are WireGuard peers")}


def test_vxcap_topology_of_an_ipv6_only_cluster_states_each_pair_in_ipv6(start_fake_kube):
    from vxcap.cli.main import cli

    fake = start_fake_kube(nodes=co.lab_nodes(co.K01_V6ONLY),
                           calico={co.V1: co.lab_calico(co.V1, co.K01_V6ONLY, ipv6_mode="CrossSubnet")})
    runner = CliRunner()
    result = runner.invoke(cli, ["topology", "--kubeconfig", str(fake.kubeconfig), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["overlay"]["ipv4"] is False
    assert {p["family"] for p in data["paths"]} == {"IPv6"} and len(data["paths"]) == 12
    assert [n["underlay"] for n in data["nodes"]] == [None] * 4
    assert {"src": W, "dst": W3, "family": "IPv6", "expected": "vxlan",
            "reason": "other subnet: fd00:20::13 is not in fd00:10::/64"} in data["paths"]
    table = runner.invoke(cli, ["topology", "--kubeconfig", str(fake.kubeconfig)], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "IPv6 only · vxlanMode CrossSubnet" in table.output
    assert "fd00:10::11/64" in table.output and "fd00:192:168:51::/122" in table.output
    assert "10.10." not in table.output and "192.168.81" not in table.output


def test_test_pods_on_an_ipv6_only_cluster_carry_their_ipv6_address_and_no_ipv4_one(start_fake_kube):
    from vxcap.core.plan import plan
    from vxcap.core.model import Pair

    fake = start_fake_kube(calico_groups=(co.V3,), nodes=co.lab_nodes(co.K01_V6ONLY),
                           calico={co.V3: co.lab_calico(co.V3, co.K01_V6ONLY, ipv6_mode="CrossSubnet")})
    kube = cluster(fake)
    topology = kube.discover()
    pods = kube.create_test_pods("r1", (W, W3), timeout=10)
    assert {pod.ip for pod in pods.values()} == {None}
    assert pods[W].ip6 is not None and pods[W].ip6 in topology.node(W).block6  # from the node's IPv6 block
    es = plan(topology, (Pair(W, W3),), pods)
    assert [(e.family, e.expected, str(e.outer_dst)) for e in es] == [(6, Wire.VXLAN, "fd00:20::13"),
                                                                      (6, Wire.VXLAN, "fd00:10::11")]
