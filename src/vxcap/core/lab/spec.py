"""The embedded lab as data: the lab file's schema, read into plain values.

The lab file (topology/k01-lab.yaml) describes the reference topology; this
module turns its parsed content into a `LabSpec`: the `Topology` vxcap judges
against, plus what only the lab needs to build itself (subnets, gateways, the
underlay interface and its MTU, the pod each node gets).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_address, ip_interface, ip_network
from typing import Any

from vxcap.core.errors import InputError
from vxcap.core.model import DEFAULT_MTU, DEFAULT_PORT, DEFAULT_VNI, Mode, Node, Overlay, Pod, Subnet, Topology, normalise_mac


@dataclass(frozen=True, slots=True)
class LabSpec:
    topology: Topology
    underlay_iface: str
    underlay_mtu: int
    pods: tuple[Pod, ...]
    # Underlay and pod neighbours written PERMANENT instead of learnt by ARP. The kernel's
    # neighbour table is shared by every namespace and keeps at most gc_thresh3 (1024)
    # learnt entries in all: a lab of hundreds of nodes would overflow it and drop packets.
    # Permanent entries are not counted. Generated labs above 32 nodes set it.
    static_neighbours: bool = False

    @property
    def cluster(self) -> str:
        return self.topology.cluster

    def pod_on(self, node: str) -> Pod:
        for pod in self.pods:
            if pod.node == node:
                return pod
        raise InputError(f"no lab pod on node {node!r}")

    def subnet_of(self, node: Node) -> Subnet:
        for subnet in self.topology.subnets:
            if node.address in subnet.network:
                return subnet
        raise InputError(f"node {node.name} ({node.underlay}) is in none of the lab's subnets")


def vtep_ip(block: IPv4Network) -> IPv4Address:
    """Calico gives vxlan.calico the first address of the node's block."""
    return block.network_address


def lab_pod_ip(block: IPv4Network) -> IPv4Address:
    """The lab's test pod takes the next address, as the first pod on a fresh node would."""
    return block.network_address + 1


def _field(data: dict[str, Any], key: str, where: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise InputError(f"lab file: {where}.{key} is missing")
    return data[key]


def _parse(kind: str, parser: Any, text: Any, where: str) -> Any:
    try:
        return parser(str(text))
    except ValueError as err:
        raise InputError(f"lab file: {where} {text!r} is not {kind}: {err}") from None


def lab_from_dict(data: Any) -> LabSpec:
    if not isinstance(data, dict):
        raise InputError("lab file: expected a mapping at the top level")
    cluster = str(_field(data, "cluster", "lab"))
    ov = data.get("overlay") or {}
    overlay = Overlay(
        mode=Mode.parse(ov.get("mode", Mode.CROSS_SUBNET.value)),
        vni=int(ov.get("vni", DEFAULT_VNI)),
        port=int(ov.get("port", DEFAULT_PORT)),
        mtu=int(ov.get("mtu", DEFAULT_MTU)),
        encapsulation=str(ov.get("encapsulation", "vxlan")),
    )
    pool_cidr = (data.get("pool") or {}).get("cidr")
    pool = _parse("a network", ip_network, pool_cidr, "pool.cidr") if pool_cidr else None
    underlay = data.get("underlay") or {}
    iface = str(underlay.get("iface", "eth1"))
    underlay_mtu = int(underlay.get("mtu", 1500))
    static_neighbours = underlay.get("static_neighbours", False)
    if not isinstance(static_neighbours, bool):
        raise InputError(f"lab file: underlay.static_neighbours {static_neighbours!r} must be true or false")

    subnets = tuple(
        Subnet(
            name=str(_field(s, "name", f"subnets[{i}]")),
            network=_parse("a network", ip_network, _field(s, "cidr", f"subnets[{i}]"), f"subnets[{i}].cidr"),
            gateway=_parse("an address", ip_address, _field(s, "gateway", f"subnets[{i}]"), f"subnets[{i}].gateway"),
            vlan=s.get("vlan"),
        )
        for i, s in enumerate(_field(data, "subnets", "lab"))
    )
    nodes = []
    for i, n in enumerate(_field(data, "nodes", "lab")):
        where = f"nodes[{i}]"
        address: IPv4Interface = _parse("an address with prefix", ip_interface, _field(n, "address", where), f"{where}.address")
        block: IPv4Network = _parse("a network", ip_network, _field(n, "block", where), f"{where}.block")
        if pool is not None and not block.subnet_of(pool):
            raise InputError(f"lab file: {where}.block {block} is outside the pool {pool}")
        nodes.append(
            Node(
                name=str(_field(n, "name", where)),
                underlay=address,
                block=block,
                vtep_ip=vtep_ip(block),
                vtep_mac=normalise_mac(n.get("vtep_mac")),
                underlay_mtu=underlay_mtu,
            )
        )
    if len({n.name for n in nodes}) != len(nodes):
        raise InputError("lab file: node names must be unique")
    topology = Topology(overlay=overlay, nodes=tuple(nodes), pool=pool, cluster=cluster, subnets=subnets)
    spec = LabSpec(
        topology=topology,
        underlay_iface=iface,
        underlay_mtu=underlay_mtu,
        static_neighbours=static_neighbours,
        pods=tuple(Pod(name=f"vxcap-{n.name}", node=n.name, ip=lab_pod_ip(n.block)) for n in nodes),
    )
    for node in nodes:
        spec.subnet_of(node)
    return spec
