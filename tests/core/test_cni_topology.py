"""A CNI's promises as the run path's Topology (core.cni.topology), pure: what each configuration plans
per direction, what is refused in one line, and the two facts a run binds once its pods exist."""

from __future__ import annotations

import json
from ipaddress import ip_address

import pytest

from tests.fakes import cni_objects as cn
from vxcap.core.cni import CniError, antrea, cilium, flannel
from vxcap.core.cni.topology import needs_route_tables, topology_of, with_identities, with_route_tables
from vxcap.core.errors import InputError
from vxcap.core.model import Mode, Pair, Pod, Wire
from vxcap.core.plan import plan

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"
PODS = {W: Pod("vxcap-probe-w", W, ip_address("10.244.1.2")), W2: Pod("vxcap-probe-w2", W2, ip_address("10.244.2.2")),
        W3: Pod("vxcap-probe-w3", W3, ip_address("10.244.3.2"))}
PAIRS = (Pair(W, W2), Pair(W, W3))


def by_direction(expectations):
    return {(e.src_node, e.dst_node): e for e in expectations}


def flannel_topology(backend: dict):
    objects = cn.flannel(backend)
    return topology_of(flannel.discover(objects.configmaps[0], cn.flannel_nodes()), cluster="k01")


def routes(own: str, prefix: str, gateway_to: dict[str, str] | None = None) -> list[dict]:
    """`ip -j route` of a node on `prefix` holding `own`, with a route via a gateway per other subnet."""
    table = [{"dst": "default", "gateway": "172.18.0.1", "dev": "eth0", "flags": []},
             {"dst": prefix, "dev": "eth1", "protocol": "kernel", "scope": "link", "prefsrc": own, "flags": []}]
    table += [{"dst": net, "gateway": gw, "dev": "eth1", "flags": []} for net, gw in (gateway_to or {}).items()]
    return table


def test_flannel_vxlan_without_direct_routing_is_vxlan_on_its_port_and_vni_every_way():
    topology = flannel_topology({"Type": "vxlan", "VNI": 7, "Port": 4790})
    assert (topology.overlay.cni, topology.overlay.mode, topology.overlay.vni, topology.overlay.port) == \
        ("flannel", Mode.ALWAYS, 7, 4790)
    found = by_direction(plan(topology, PAIRS, PODS))
    assert {(e.expected, e.vni, e.port) for e in found.values()} == {(Wire.VXLAN, 7, 4790)}
    assert found[(W, W3)].reason == "Flannel vxlan, DirectRouting off"
    # The peer's VtepMAC (flanneld's backend-data) is the inner destination MAC, its lease's .0 the VTEP.
    assert found[(W, W3)].inner_dst_mac == cn.FLANNEL_MACS[W3]
    assert str(topology.node(W3).vtep_ip) == "10.244.3.0"
    assert not needs_route_tables(topology)


def test_flannel_direct_routing_is_decided_by_the_senders_route_tables():
    topology = flannel_topology({"Type": "vxlan", "DirectRouting": True})
    assert needs_route_tables(topology)
    tables = {W: routes("10.10.10.11", "10.10.10.0/24", {"10.10.20.0/24": "10.10.10.1"}),
              W2: routes("10.10.10.12", "10.10.10.0/24", {"10.10.20.0/24": "10.10.10.1"}),
              W3: routes("10.10.20.13", "10.10.20.0/24", {"10.10.10.0/24": "10.10.20.1"})}
    settled = with_route_tables(topology, tables, (W, W2, W3))
    found = by_direction(plan(settled, PAIRS, PODS))
    assert {d: e.expected for d, e in found.items()} == {(W, W2): Wire.PLAIN, (W2, W): Wire.PLAIN,
                                                         (W, W3): Wire.VXLAN, (W3, W): Wire.VXLAN}
    assert found[(W, W2)].reason == "DirectRouting on, same subnet: 10.10.10.12 is in 10.10.10.0/24"
    # Unsettled, a /32 underlay would expect VXLAN everywhere: the run settles before it plans.
    assert str(topology.node(W).underlay) == "10.10.10.11/32"


def test_a_route_lookup_that_disagrees_with_the_subnet_is_refused_not_guessed():
    topology = flannel_topology({"Type": "vxlan", "DirectRouting": True})
    # k01-worker reaches 10.10.20.0/24 on-link, without a gateway: flanneld sends plain there.
    table = routes("10.10.10.11", "10.10.10.0/24") + [{"dst": "10.10.20.0/24", "dev": "eth1", "flags": []}]
    with pytest.raises(CniError, match=r"^DirectRouting k01-worker → k01-worker3: `ip route get 10.10.20.13` has no gateway "
                                       r"though 10.10.20.13 is outside 10.10.10.0/24"):
        with_route_tables(topology, {W: table}, (W,))
    with pytest.raises(CniError, match="node k01-worker: its route table could not be read"):
        with_route_tables(topology, {}, (W,))


def test_flannel_host_gw_is_plain_and_wireguard_is_refused_in_one_line():
    topology = flannel_topology({"Type": "host-gw"})
    found = by_direction(plan(topology, PAIRS, PODS))
    assert {e.expected for e in found.values()} == {Wire.PLAIN}
    assert found[(W, W3)].reason == "Flannel host-gw: the peer's pod CIDR routed via its address"
    with pytest.raises(CniError) as err:
        flannel_topology({"Type": "wireguard"})
    assert str(err.value) == ("ConfigMap kube-flannel/kube-flannel-cfg: Flannel's wireguard backend is not one vxcap run "
                              "judges yet (`vxcap topology --cni flannel` states what it promises)")


def cilium_topology(data: dict[str, str]):
    objects = cn.cilium({**cn.CILIUM_CONFIG, **data}, endpoints=[])
    return topology_of(cilium.discover(objects.configmaps[0], cn.underlay_nodes()))


def test_cilium_tunnel_binds_each_senders_vni_to_its_test_pods_identity():
    topology = cilium_topology({"tunnel-protocol": "geneve"})
    assert (topology.overlay.encapsulation, topology.overlay.port, topology.overlay.vni_identity) == ("geneve", 6081, True)
    with pytest.raises(InputError, match="node k01-worker has no vni"):
        plan(topology, PAIRS, PODS)  # never judged against a VNI nobody read
    endpoints = cilium.endpoints([cn.cilium_endpoint(p.name, "vxcap", 30000 + i, str(p.ip), "10.10.10.11")
                                  for i, p in enumerate(PODS.values())])
    found = by_direction(plan(with_identities(topology, endpoints, PODS), PAIRS, PODS))
    assert {d: (e.expected, e.vni, e.port) for d, e in found.items()} == {
        (W, W2): (Wire.GENEVE, 30000, 6081), (W2, W): (Wire.GENEVE, 30001, 6081),
        (W, W3): (Wire.GENEVE, 30000, 6081), (W3, W): (Wire.GENEVE, 30002, 6081)}
    assert found[(W3, W)].vni_is == "the sender's security identity"
    assert found[(W3, W)].reason == "Cilium routing-mode tunnel (geneve)"
    assert str(found[(W3, W)].outer_src) == "10.10.20.13"  # the InternalIP Cilium tunnels to
    with pytest.raises(CniError, match="no CiliumEndpoint has address 10.244.3.2"):
        with_identities(topology, endpoints[:2], PODS)


def test_cilium_native_is_plain_and_wireguard_is_refused():
    found = by_direction(plan(cilium_topology({"routing-mode": "native"}), PAIRS, PODS))
    assert {(e.expected, e.reason) for e in found.values()} == {(Wire.PLAIN, "Cilium routing-mode native")}
    with pytest.raises(CniError, match="Cilium's enable-wireguard is not one vxcap run judges yet"):
        cilium_topology({"enable-wireguard": "true"})


def antrea_topology(mode: str, tunnel: str = "geneve", port: int = 0):
    objects = cn.antrea(mode, tunnel, port)
    return topology_of(antrea.discover(objects.configmaps[0], cn.underlay_nodes()))


@pytest.mark.parametrize(("mode", "tunnel", "wire", "port", "reason"), [
    ("encap", "geneve", Wire.GENEVE, 6081, "Antrea trafficEncapMode encap (geneve)"),
    ("encap", "vxlan", Wire.VXLAN, 4789, "Antrea trafficEncapMode encap (vxlan)"),
    ("noEncap", "geneve", Wire.PLAIN, 6081, "Antrea trafficEncapMode noEncap"),
])
def test_antrea_encap_and_no_encap(mode, tunnel, wire, port, reason):
    topology = antrea_topology(mode, tunnel)
    found = by_direction(plan(topology, PAIRS, PODS))
    assert {(e.expected, e.vni, e.port, e.reason) for e in found.values()} == {(wire, 0, port, reason)}


def test_antrea_hybrid_tunnels_only_across_the_transport_subnet():
    topology = antrea_topology("hybrid", "vxlan", 4790)
    assert needs_route_tables(topology)
    tables = {n: routes(a, net) for n, a, net in ((W, "10.10.10.11", "10.10.10.0/24"), (W2, "10.10.10.12", "10.10.10.0/24"),
                                                  (W3, "10.10.20.13", "10.10.20.0/24"))}
    found = by_direction(plan(with_route_tables(topology, tables, (W, W2, W3)), PAIRS, PODS))
    assert {d: (e.expected, e.port) for d, e in found.items()} == {
        (W, W2): (Wire.PLAIN, 4790), (W2, W): (Wire.PLAIN, 4790), (W, W3): (Wire.VXLAN, 4790), (W3, W): (Wire.VXLAN, 4790)}
    assert found[(W, W3)].reason == "Antrea hybrid (vxlan), other subnet: 10.10.20.13 is not in 10.10.10.0/24"


@pytest.mark.parametrize("tunnel", ["gre", "stt"])
def test_antrea_gre_and_stt_are_refused_naming_the_tunnel(tunnel):
    with pytest.raises(CniError) as err:
        antrea_topology("encap", tunnel)
    assert str(err.value) == (f"ConfigMap kube-system/antrea-config: Antrea's tunnelType {tunnel} is not one vxcap run "
                              "judges yet (`vxcap topology --cni antrea` states what it promises)")
    assert "\n" not in str(err.value)


def test_a_cilium_run_is_judged_again_by_analyze_with_the_same_identities():
    from vxcap.core.manifest import manifest_dict, parse_manifest

    topology = with_identities(cilium_topology({}), cilium.endpoints(
        [cn.cilium_endpoint(p.name, "vxcap", 40000 + i, str(p.ip), "") for i, p in enumerate(PODS.values())]), PODS)
    manifest = parse_manifest(json.loads(json.dumps(manifest_dict(topology, PODS, PAIRS, {}))))
    # The manifest keeps what judging needs (involved nodes, their VNIs); `vxcap analyze` plans the same.
    assert manifest.topology.overlay == topology.overlay
    assert plan(manifest.topology, PAIRS, PODS) == plan(topology, PAIRS, PODS)
    assert {n.name: n.vni for n in manifest.topology.nodes} == {W: 40000, W2: 40001, W3: 40002}
