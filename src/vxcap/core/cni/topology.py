"""A CNI's promises (`CniDiscovery`) as the run path's `Topology`, so a cluster run of Flannel, Cilium
or Antrea goes through the one pipeline Calico's does: the same plan, capture filters, decoder, verdicts
and Wireshark lines, with the CNI's port, VNI and format.

Two facts only exist once a run is under way, and are bound here from plain data the target reads:
- the pairs a CNI leaves to the sending node (Flannel's DirectRouting, Antrea's hybrid): each node's
  underlay prefix from its own route table (`with_route_tables`);
- Cilium's VNI, the sending pod's security identity: each node's `vni` from its test pod's
  CiliumEndpoint (`with_identities`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, ip_network
from typing import Any

from vxcap.core.cni import Cni, CniDiscovery, CniError
from vxcap.core.cni.cilium import Endpoint, sender_vni
from vxcap.core.cni.routes import without_gateway
from vxcap.core.model import Mode, Node, Overlay, Pod, Topology

Routes = list[dict[str, Any]]


def _refused(found: CniDiscovery, what: str) -> CniError:
    return CniError(f"{found.source}: {what} is not one vxcap run judges yet "
                    f"(`vxcap topology --cni {found.cni.value}` states what it promises)")


def _overlay(found: CniDiscovery) -> Overlay:
    s = found.settings
    if found.cni is Cni.FLANNEL:
        backend = s["backend"]
        if backend == "host-gw":
            return Overlay(mode=Mode.NEVER, cni="flannel", mtu=None)
        if backend != "vxlan":
            raise _refused(found, f"Flannel's {backend} backend")
        mode = Mode.CROSS_SUBNET if s["direct_routing"] else Mode.ALWAYS
        return Overlay(mode=mode, vni=int(s["vni"]), port=int(s["port"]), cni="flannel",
                       mtu=s.get("device_mtu"))  # type: ignore[arg-type]
    if found.cni is Cni.CILIUM:
        if s.get("wireguard"):
            raise _refused(found, "Cilium's enable-wireguard")
        if s["routing_mode"] == "native":
            return Overlay(mode=Mode.NEVER, cni="cilium", mtu=None)
        # The overlay's own VNI is never used: each sender's is its identity (vni_identity).
        return Overlay(mode=Mode.ALWAYS, encapsulation=str(s["protocol"]), port=int(s["port"]),  # type: ignore[arg-type]
                       vni=0, vni_identity=True, cni="cilium", mtu=None)
    if found.cni is Cni.ANTREA:
        if s.get("encryption") not in (None, "none"):
            raise _refused(found, f"Antrea's trafficEncryptionMode {s['encryption']}")
        mode = {"encap": Mode.ALWAYS, "hybrid": Mode.CROSS_SUBNET, "noEncap": Mode.NEVER}[str(s["traffic_encap_mode"])]
        tunnel = str(s["tunnel_type"])
        if tunnel not in ("geneve", "vxlan"):
            if mode is not Mode.NEVER:
                raise _refused(found, f"Antrea's tunnelType {tunnel}")
            tunnel = "geneve"  # noEncap never tunnels: the type is not used
        return Overlay(mode=mode, encapsulation=tunnel, port=int(s["port"]), vni=int(s.get("vni") or 0),  # type: ignore[arg-type]
                       cni="antrea", mtu=None)
    raise CniError(f"{found.cni.value}: not one vxcap maps onto a run")


def needs_route_tables(topology: Topology) -> bool:
    """Whether some pairs are the sender's route table's to decide (DirectRouting, hybrid)."""
    return topology.overlay.mode is Mode.CROSS_SUBNET and topology.overlay.cni in ("flannel", "antrea")


def topology_of(found: CniDiscovery, cluster: str = "") -> Topology:
    """The run path's Topology for a non-Calico CNI. Each node's underlay is its address as a /32 until
    `with_route_tables` gives it its prefix (only DirectRouting and hybrid ask for one)."""
    overlay = _overlay(found)
    nodes = tuple(Node(name=n.name, underlay=IPv4Interface(f"{n.address}/32"), block=n.pod_cidr,
                       vtep_ip=None if n.pod_cidr is None or found.cni is not Cni.FLANNEL else n.pod_cidr.network_address,
                       vtep_mac=n.vtep_mac if found.cni is Cni.FLANNEL else None)
                  for n in found.nodes)
    return Topology(overlay=overlay, nodes=nodes, cluster=cluster)


def connected_prefix(routes: Routes, own: IPv4Address) -> int | None:
    """The prefix of the kernel's connected route whose preferred source is `own`: the node's underlay subnet."""
    for route in routes:
        if route.get("protocol") != "kernel" or route.get("scope") != "link" or route.get("prefsrc") != str(own):
            continue
        try:
            network = ip_network(str(route.get("dst")), strict=False)
        except ValueError:
            continue
        if own in network:
            return network.prefixlen
    return None


def with_route_tables(topology: Topology, tables: Mapping[str, Routes], senders: tuple[str, ...]) -> Topology:
    """Each sender's underlay prefix from its own route table (`ip -j route`), so the plan's subnet test
    decides DirectRouting / hybrid. For Flannel, whose test is `ip route get` (no gateway), the route to
    every peer must agree with that subnet: where it does not, the pair cannot be judged by a prefix,
    and that is said in one line rather than guessed."""
    nodes = {n.name: n for n in topology.nodes}
    for name in senders:
        node = nodes[name]
        routes = tables.get(name)
        if routes is None:
            raise CniError(f"node {name}: its route table could not be read, and it decides which of its pairs "
                           "are plain (DirectRouting / hybrid)")
        prefix = connected_prefix(routes, node.address)
        if prefix is None:
            raise CniError(f"node {name}: no connected route with source {node.address} in its route table "
                           "(the underlay subnet DirectRouting / hybrid decide with)")
        nodes[name] = replace(node, underlay=IPv4Interface(f"{node.address}/{prefix}"))
        if topology.overlay.cni != "flannel":
            continue
        for peer in topology.nodes:
            if peer.name == name:
                continue
            direct = without_gateway(routes, peer.address)
            same = peer.address in nodes[name].underlay.network
            if direct is not None and direct != same:
                raise CniError(f"DirectRouting {name} → {peer.name}: `ip route get {peer.address}` "
                               f"{'has no gateway' if direct else 'goes through a gateway'} though {peer.address} is "
                               f"{'outside' if direct else 'inside'} {nodes[name].underlay.network}: vxcap cannot judge it yet")
    return replace(topology, nodes=tuple(nodes[n.name] for n in topology.nodes))


def with_identities(topology: Topology, endpoints: tuple[Endpoint, ...], pods: Mapping[str, Pod]) -> Topology:
    """Cilium's tunnel: each node's `vni` is its test pod's security identity (its CiliumEndpoint's
    status.identity.id), the VNI every packet that pod sends must carry."""
    vnis = {node: sender_vni(endpoints, pod.ip) for node, pod in pods.items()}
    return replace(topology, nodes=tuple(replace(n, vni=vnis[n.name]) if n.name in vnis else n for n in topology.nodes))

