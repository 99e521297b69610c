"""Antrea's antrea-agent.conf into per-direction expectations (pure)."""

from __future__ import annotations

import pytest

from tests.fakes import cni_objects as cn
from vxcap.core.cni import CniError, Encap, WireFormat, antrea


def configmap(mode: str = "encap", tunnel: str = "geneve", port: int = 0, **options) -> dict:
    return cn.antrea(mode, tunnel, port, **options).configmaps[0]


def wires(found) -> set:
    return {p.expected for p in found.paths}


@pytest.mark.parametrize("tunnel, port", [("geneve", 6081), ("vxlan", 4789), ("stt", 7471)])
def test_encap_uses_the_iana_port_of_its_tunnel_when_tunnel_port_is_0(tunnel, port):
    found = antrea.discover(configmap("encap", tunnel), cn.plain_nodes())
    (only,) = wires(found)
    assert only[0].encap is Encap(tunnel) and only[0].port == port and only[0].device == "antrea-tun0"


def test_gre_has_no_port_and_an_explicit_tunnel_port_wins():
    (gre,) = wires(antrea.discover(configmap("encap", "gre"), cn.plain_nodes()))
    assert gre == (WireFormat(Encap.GRE, port=None, vni=None, device="antrea-tun0"),)
    (custom,) = wires(antrea.discover(configmap("encap", "vxlan", 8472), cn.plain_nodes()))
    assert custom[0].port == 8472 and custom[0].vni == 0


def test_no_encap_is_plain():
    assert wires(antrea.discover(configmap("noEncap"), cn.plain_nodes())) == {(WireFormat(Encap.PLAIN),)}


def test_hybrid_encapsulates_only_across_transport_subnets():
    undecided = antrea.discover(configmap("hybrid"), cn.plain_nodes())
    assert all(len(p.expected) == 2 and p.decided_by for p in undecided.paths)
    assert any("transport subnet" in n for n in undecided.notes)
    same = {("k01-worker", "k01-worker2"): True, ("k01-worker", "k01-worker3"): False}
    decided = antrea.discover(configmap("hybrid"), cn.plain_nodes(), same)
    by_pair = {(p.src, p.dst): p for p in decided.paths}
    assert by_pair[("k01-worker", "k01-worker2")].expected == (WireFormat(Encap.PLAIN),)
    assert by_pair[("k01-worker", "k01-worker3")].expected[0].encap is Encap.GENEVE


def test_the_old_hashed_configmap_with_every_key_commented_out_is_antreas_defaults():
    cm = configmap(configmap_name="antrea-config-5ct9ktdt77", agent_conf=cn.OLD_ANTREA_AGENT_CONF)
    found = antrea.discover(cm, cn.plain_nodes())
    assert wires(found) == {(WireFormat(Encap.GENEVE, port=6081, vni=0, device="antrea-tun0"),)}
    assert any("hashed ConfigMap name" in n for n in found.notes)


def test_find_configmap_prefers_the_plain_name_and_ignores_others():
    plain = configmap()
    hashed = configmap(configmap_name="antrea-config-5ct9ktdt77")
    other = cn.configmap("antrea-ca", "kube-system", {"ca.crt": "x"}, {"app": "antrea"})
    assert antrea.find_configmap([other, hashed, plain]) is plain
    assert antrea.find_configmap([other, hashed]) is hashed
    assert antrea.find_configmap([other]) is None


def test_modes_are_matched_case_insensitively_as_antrea_does():
    assert antrea.parse_agent_conf("trafficEncapMode: NOENCAP\n").mode == "noEncap"


def test_policy_only_ipsec_and_unknown_values_are_refused_in_one_line():
    with pytest.raises(CniError, match="networkPolicyOnly.*primary CNI"):
        antrea.discover(configmap("networkPolicyOnly"), cn.plain_nodes())
    with pytest.raises(CniError, match="ipsec"):
        antrea.discover(configmap(agent_conf="trafficEncryptionMode: ipsec\n"), cn.plain_nodes())
    with pytest.raises(CniError, match="tunnelType 'ipip' is not one of geneve, vxlan, gre, stt"):
        antrea.parse_agent_conf("tunnelType: ipip\n")
    with pytest.raises(CniError, match="is not YAML"):
        antrea.parse_agent_conf("a: [\n")


def test_wireguard_replaces_the_tunnel():
    found = antrea.discover(configmap(agent_conf="trafficEncryptionMode: wireGuard\nwireGuard:\n  port: 51821\n"),
                            cn.plain_nodes())
    assert wires(found) == {(WireFormat(Encap.WIREGUARD, port=51821, device="antrea-wg0"),)}


def test_peers_tunnel_to_the_transport_address_when_the_agent_annotated_one():
    nodes = cn.plain_nodes()
    nodes[1]["metadata"]["annotations"]["node.antrea.io/transport-addresses"] = "fd00::11,10.10.10.11"
    found = antrea.discover(configmap(), nodes)
    assert [str(n.address) for n in found.nodes] == ["172.18.0.2", "10.10.10.11", "172.18.0.3", "172.18.0.4"]
