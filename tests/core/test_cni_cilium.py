"""Cilium's cilium-config and CiliumEndpoints into per-direction expectations (pure)."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from tests.fakes import cni_objects as cn
from vxcap.core.cni import VNI_SENDER_IDENTITY, CniError, Encap, WireFormat, cilium


def configmap(data: dict[str, str]) -> dict:
    return cn.cilium(data).configmaps[0]


def only_wire(found) -> WireFormat:
    (wire,) = {p.expected for p in found.paths}
    assert len(wire) == 1
    return wire[0]


def test_tunnel_vxlan_port_0_is_8472_with_the_senders_identity_and_a_zero_checksum():
    found = cilium.discover(configmap(cn.CILIUM_CONFIG), cn.plain_nodes())
    assert only_wire(found) == WireFormat(Encap.VXLAN, port=8472, vni=VNI_SENDER_IDENTITY, zero_udp_checksum=True,
                                          device="cilium_vxlan")
    assert found.nodes[1].address == ip_address("172.18.0.5")  # the InternalIP Cilium tunnels to


def test_geneve_defaults_to_6081_and_an_explicit_port_wins():
    geneve = {**cn.CILIUM_CONFIG, "tunnel-protocol": "geneve"}
    assert only_wire(cilium.discover(configmap(geneve), cn.plain_nodes())).port == 6081
    assert only_wire(cilium.discover(configmap({**geneve, "tunnel-port": "7000"}), cn.plain_nodes())).port == 7000


def test_native_routing_is_plain():
    found = cilium.discover(configmap({**cn.CILIUM_CONFIG, "routing-mode": "native"}), cn.plain_nodes())
    assert only_wire(found) == WireFormat(Encap.PLAIN)
    assert "routing-mode native" in found.paths[0].reason


def test_an_empty_config_is_ciliums_defaults_tunnel_vxlan():
    config, notes = cilium.parse_config({})
    assert (config.routing_mode, config.protocol, config.port) == ("tunnel", "vxlan", 8472) and notes == []


@pytest.mark.parametrize("old, mode, protocol", [("vxlan", "tunnel", "vxlan"), ("geneve", "tunnel", "geneve"),
                                                 ("disabled", "native", None)])
def test_the_removed_tunnel_key_of_older_releases_is_still_read_and_said(old, mode, protocol):
    config, notes = cilium.parse_config({**cn.OLD_CILIUM_CONFIG, "tunnel": old})
    assert (config.routing_mode, config.protocol) == (mode, protocol) and config.from_old_key
    assert len(notes) == 1 and "old `tunnel:" in notes[0] and "removed in Cilium 1.15" in notes[0]


def test_routing_mode_wins_over_a_contradicting_old_key():
    config, notes = cilium.parse_config({"routing-mode": "native", "tunnel": "vxlan"})
    assert config.routing_mode == "native" and "follows routing-mode" in notes[0]


def test_wireguard_and_ipsec():
    found = cilium.discover(configmap({**cn.CILIUM_CONFIG, "enable-wireguard": "true"}), cn.plain_nodes())
    assert only_wire(found) == WireFormat(Encap.WIREGUARD, port=51871, device="cilium_wg0")
    with pytest.raises(CniError, match="IPsec"):
        cilium.discover(configmap({**cn.CILIUM_CONFIG, "enable-ipsec": "true"}), cn.plain_nodes())


def test_bad_values_are_named():
    with pytest.raises(CniError, match="routing-mode 'bgp' is not tunnel or native"):
        cilium.parse_config({"routing-mode": "bgp"})
    with pytest.raises(CniError, match="tunnel-protocol 'gre'"):
        cilium.parse_config({"routing-mode": "tunnel", "tunnel-protocol": "gre"})


def test_the_vni_of_a_direction_is_its_sending_pods_identity():
    endpoints = cilium.endpoints([
        cn.cilium_endpoint("probe-a", "vxcap", 48213, "10.0.1.17", "172.18.0.5"),
        cn.cilium_endpoint("probe-b", "vxcap", 5123, "10.0.2.9", "172.18.0.3"),
        {"metadata": {"name": "no-identity-yet"}, "status": {"networking": {"addressing": [{"ipv4": "10.0.3.3"}]}}},
    ])
    assert [e.name for e in endpoints] == ["probe-a", "probe-b"]
    assert cilium.sender_vni(endpoints, ip_address("10.0.1.17")) == 48213
    assert cilium.sender_vni(endpoints, ip_address("10.0.2.9")) == 5123
    with pytest.raises(CniError, match="no CiliumEndpoint has address 10.0.3.3"):
        cilium.sender_vni(endpoints, ip_address("10.0.3.3"))


def test_identities_read_are_shown_and_none_is_said():
    found = cilium.discover(configmap(cn.CILIUM_CONFIG), cn.plain_nodes(), cn.cilium().ciliumendpoints)
    assert found.settings["identities"] == {"kube-system/coredns-668d6bf9bc-2xkqz": 17284,
                                            "kube-system/coredns-668d6bf9bc-q8v5n": 17284}
    bare = cilium.discover(configmap(cn.CILIUM_CONFIG), cn.plain_nodes(), [])
    assert any("no CiliumEndpoint" in n for n in bare.notes)
