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
