"""Flannel's net-conf.json and node annotations into per-direction expectations (pure)."""

from __future__ import annotations

import json
from ipaddress import ip_address, ip_network

import pytest

from tests.fakes import cni_objects as cn
from vxcap.core.cni import CniError, Encap, WireFormat, flannel


def configmap(backend: dict | None, namespace: str = "kube-flannel") -> dict:
    return cn.flannel(backend, namespace=namespace).configmaps[0]


def wire_of(found, src: str, dst: str) -> tuple[WireFormat, ...]:
    return next(p.expected for p in found.paths if (p.src, p.dst) == (src, dst))


def test_the_manifest_default_is_vxlan_vni_1_on_the_kernel_port_8472():
    found = flannel.discover(configmap({"Type": "vxlan"}), cn.flannel_nodes())
    assert found.settings["vni"] == 1 and found.settings["port"] == 8472 and found.settings["device"] == "flannel.1"
    assert len(found.paths) == 12  # every ordered pair of four nodes
    for path in found.paths:
        assert path.expected == (WireFormat(Encap.VXLAN, port=8472, vni=1, device="flannel.1"),)
        assert path.decided_by is None


def test_keys_are_read_case_insensitively_as_go_json_does():
    config = flannel.parse_net_conf(json.dumps({"backend": {"type": "vxlan", "vni": 7, "port": 4789, "mtu": 1500,
                                                           "directrouting": True}}))
    assert (config.vni, config.port, config.mtu, config.direct_routing) == (7, 4789, 1500, True)
    assert config.device == "flannel.7"
    assert flannel.settings(config)["device_mtu"] == 1450  # flannel's device: MTU - 50


def test_a_missing_backend_is_flannels_old_udp_and_refused_by_name():
    with pytest.raises(CniError, match="no Backend.*udp backend"):
        flannel.parse_net_conf('{"Network": "10.244.0.0/16"}')
    with pytest.raises(CniError, match="Backend.Type 'ipsec' is not one vxcap judges"):
        flannel.parse_net_conf('{"Backend": {"Type": "ipsec"}}')


def test_node_annotations_give_the_underlay_pod_cidr_and_vtep_mac():
    found = flannel.discover(configmap(None), cn.flannel_nodes())
    worker3 = next(n for n in found.nodes if n.name == "k01-worker3")
    assert worker3.address == ip_address("10.10.20.13")  # public-ip, not the InternalIP 172.18.0.4
    assert worker3.pod_cidr == ip_network("10.244.3.0/24")
    assert worker3.vtep_mac == cn.FLANNEL_MACS["k01-worker3"] and worker3.vni == 1


def test_a_node_announcing_another_vni_is_named():
    nodes = cn.flannel_nodes(vni=3)
    found = flannel.discover(configmap({"Type": "vxlan"}), nodes)
    assert any("announces VNI 3" in note and "ConfigMap says 1" in note for note in found.notes)


def test_a_node_without_flannels_annotation_falls_back_on_its_internal_ip_with_a_note():
    nodes = cn.flannel_nodes()
    del nodes[1]["metadata"]["annotations"]["flannel.alpha.coreos.com/public-ip"]
    found = flannel.discover(configmap(None), nodes)
    assert next(n for n in found.nodes if n.name == "k01-worker").address == ip_address("172.18.0.5")
    assert any("k01-worker: no flannel.alpha.coreos.com/public-ip" in note for note in found.notes)


def test_direct_routing_states_both_formats_until_the_route_decides():
    backend = {"Type": "vxlan", "DirectRouting": True}
    undecided = flannel.discover(configmap(backend), cn.flannel_nodes())
    path = next(p for p in undecided.paths if (p.src, p.dst) == ("k01-worker", "k01-worker3"))
    assert [w.encap for w in path.expected] == [Encap.PLAIN, Encap.VXLAN]
    assert path.decided_by == "ip route get 10.10.20.13 on k01-worker"
    connected = {("k01-worker", "k01-worker2"): True, ("k01-worker", "k01-worker3"): False}
    decided = flannel.discover(configmap(backend), cn.flannel_nodes(), connected)
    assert wire_of(decided, "k01-worker", "k01-worker2") == (WireFormat(Encap.PLAIN),)
    assert [w.encap for w in wire_of(decided, "k01-worker", "k01-worker3")] == [Encap.VXLAN]
    # A pair whose route was not read stays undecided rather than guessed.
    assert len(wire_of(decided, "k01-worker3", "k01-worker")) == 2


def test_host_gw_is_always_plain_and_wireguard_is_on_its_listen_port():
    for path in flannel.discover(configmap({"Type": "host-gw"}), cn.flannel_nodes("host-gw")).paths:
        assert path.expected == (WireFormat(Encap.PLAIN),) and "layer-2" in path.reason
    wg = flannel.discover(configmap({"Type": "wireguard"}), cn.flannel_nodes("wireguard"))
    assert {p.expected for p in wg.paths} == {(WireFormat(Encap.WIREGUARD, port=51820, device="flannel-wg"),)}


def test_flannel_in_kube_system_is_read_and_said():
    found = flannel.discover(configmap(None, namespace="kube-system"), cn.flannel_nodes())
    assert found.source == "ConfigMap kube-system/kube-flannel-cfg"
    assert any("older manifests" in note for note in found.notes)


@pytest.mark.parametrize("backend, message", [
    ({"Type": "vxlan", "VNI": "x"}, "Backend.VNI 'x' is not a number"),
    ({"Type": "vxlan", "VNI": 1 << 24}, "out of range"),
    ({"Type": "vxlan", "Port": 70000}, "Backend.Port=70000 is out of range"),
])
def test_bad_settings_are_one_line_naming_the_field(backend, message):
    with pytest.raises(CniError, match=message):
        flannel.discover(configmap(backend), cn.flannel_nodes())


def test_net_conf_that_is_not_json_is_named():
    bad = configmap(None)
    bad["data"]["net-conf.json"] = "{not json"
    with pytest.raises(CniError, match="ConfigMap kube-flannel/kube-flannel-cfg net-conf.json is not JSON"):
        flannel.discover(bad, cn.flannel_nodes())


def test_an_explicit_vni_0_is_kept_as_go_keeps_it():
    config = flannel.parse_net_conf('{"Backend": {"Type": "vxlan", "VNI": 0}}')
    assert config.vni == 0 and config.device == "flannel.0"
