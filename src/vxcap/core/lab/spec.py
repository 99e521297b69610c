"""The embedded lab as data: the lab file's schema, read into plain values.

The lab file (topology/k01-lab.yaml) describes the reference topology; this
module turns its parsed content into a `LabSpec`: the `Topology` vxcap judges
against, plus what only the lab needs to build itself (subnets, gateways, the
underlay interface and its MTU, the pod each node gets).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
    ip_interface,
    ip_network,
)
from typing import Any

from vxcap.core.errors import InputError
from vxcap.core.model import (
    DEFAULT_MTU,
    DEFAULT_PORT,
    DEFAULT_VNI,
    VXLAN_DEVICE,
    VXLAN_V6_DEVICE,
    Mode,
    Node,
    Overlay,
    Pod,
    Subnet,
    Topology,
    normalise_mac,
)


# The data planes the lab builds (`vxcap lab up --overlay`); the first is the reference lab's.
DATAPLANES = ("vxlan", "vxlan6", "dual", "wireguard", "wireguard6", "wireguard-dual", "ipip", "flannel", "cilium", "antrea")
# Felix's defaults (felix/config/config_params.go, felix/dataplane/linux/int_dataplane.go): the same
# VNI and port for both families; per-family overheads 50 (VXLAN/IPv4), 70 (VXLAN/IPv6), 60 (WireGuard/IPv4), 20 (IPIP).
VXLAN_V6_OVERHEAD = 70
WIREGUARD_PORT = 51820
WIREGUARD_OVERHEAD = 60
# wireguardListeningPortV6 and the IPv6 overhead (40 IPv6 + 8 UDP + 32 WireGuard): wg-v6.cali's MTU 1420 on 1500.
WIREGUARD_PORT_V6 = 51821
WIREGUARD_V6_OVERHEAD = 80
IPIP_OVERHEAD = 20


@dataclass(frozen=True, slots=True)
class Subnet6:
    """An underlay subnet's IPv6 side: the lab's own ULA /64 and the switch's address on it."""

    name: str
    network: IPv6Network
    gateway: IPv6Address


@dataclass(frozen=True, slots=True)
class Node6:
    """A node's IPv6 side, as Calico's node annotations would give it (projectcalico.org/IPv6Address,
    VXLANTunnelMACAddrV6, IPv6VXLANTunnelAddr) and its IPv6 block."""

    name: str
    underlay: IPv6Interface
    block: IPv6Network
    vtep_mac: str

    @property
    def address(self) -> IPv6Address:
        return self.underlay.ip

    @property
    def vtep_ip(self) -> IPv6Address:
        return self.block.network_address

    @property
    def pod_ip(self) -> IPv6Address:
        return self.block.network_address + 1


@dataclass(frozen=True, slots=True)
class Vxlan6:
    """The IPv6 IPPool's vxlanMode and Felix's vxlanVNI / vxlanPort / vxlanMTUV6."""

    mode: str = "CrossSubnet"
    vni: int = 4096
    port: int = 4789
    mtu: int = 1430


@dataclass(frozen=True, slots=True)
class Wireguard:
    """FelixConfiguration wireguardEnabled, wireguardListeningPort, wireguardMTU (IPv4)."""

    port: int = WIREGUARD_PORT
    mtu: int = 1440


@dataclass(frozen=True, slots=True)
class Wireguard6:
    """FelixConfiguration wireguardEnabledV6, wireguardListeningPortV6, wireguardMTUV6."""

    port: int = WIREGUARD_PORT_V6
    mtu: int = 1420


@dataclass(frozen=True, slots=True)
class Ipip:
    """The IPPool's ipipMode and Felix's ipipMTU."""

    mode: str = "CrossSubnet"
    mtu: int = 1480


@dataclass(frozen=True, slots=True)
class Flannel:
    """net-conf.json's Backend for `"Type": "vxlan"`: VNI, Port and MTU live in the topology's
    overlay (so runs judge them); DirectRouting is the overlay's mode (CrossSubnet on, Always off)."""

    direct_routing: bool = False
    vni: int = 1

    @property
    def device(self) -> str:
        # flanneld names its VTEP after the VNI (pkg/backend/vxlan/vxlan.go: fmt.Sprintf("flannel.%d", cfg.VNI)).
        return f"flannel.{self.vni}"


@dataclass(frozen=True, slots=True)
class Cilium:
    """routing-mode tunnel, tunnel-protocol vxlan: the port and MTU live in the topology's overlay;
    here each test pod's security identity (pod name -> identity), what its CiliumEndpoint would say."""

    identities: tuple[tuple[str, int], ...] = ()

    def identity_of(self, pod: str) -> int:
        for name, identity in self.identities:
            if name == pod:
                return identity
        raise InputError(f"lab file: pod {pod!r} has no security identity (dataplane.cilium.identities)")


@dataclass(frozen=True, slots=True)
class Antrea:
    """antrea-agent.conf's trafficEncapMode (encap, or hybrid: plain within the transport subnet) with
    tunnelType geneve; VNI, port and MTU live in the topology's overlay (lab.antrea builds it)."""

    hybrid: bool = False


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
    # Which of Calico's data planes the lab builds (DATAPLANES). "vxlan" is the reference lab:
    # `topology` (IPv4, VXLAN CrossSubnet) says all of it. The others add or replace:
    # vxlan6 is IPv6 only (no IPv4 on eth1 or the pods); dual is vxlan plus vxlan6;
    # wireguard and ipip replace vxlan.calico for IPv4; wireguard6 is vxlan6's addressing with
    # wg-v6.cali instead of vxlan-v6.calico; wireguard-dual is wireguard plus wireguard6 (dual's addressing).
    dataplane: str = "vxlan"
    subnets6: tuple[Subnet6, ...] = field(default=())
    nodes6: tuple[Node6, ...] = field(default=())
    vxlan6: Vxlan6 | None = None
    wireguard: Wireguard | None = None
    wireguard6: Wireguard6 | None = None
    ipip: Ipip | None = None
    flannel: Flannel | None = None
    cilium: Cilium | None = None
    antrea: Antrea | None = None

    @property
    def cluster(self) -> str:
        return self.topology.cluster

    @property
    def has_ipv4(self) -> bool:
        return self.dataplane not in ("vxlan6", "wireguard6")

    @property
    def has_ipv6(self) -> bool:
        return self.dataplane in ("vxlan6", "dual", "wireguard6", "wireguard-dual")

    @property
    def ipv6_encap(self) -> str | None:
        """What carries IPv6 pod traffic between nodes: vxlan | wireguard, None without IPv6."""
        if not self.has_ipv6:
            return None
        return "wireguard" if self.dataplane in ("wireguard6", "wireguard-dual") else "vxlan"

    @property
    def ipv4_encap(self) -> str | None:
        """What carries IPv4 pod traffic between nodes: vxlan | wireguard | ipip | flannel, None without IPv4."""
        if not self.has_ipv4:
            return None
        if self.dataplane == "wireguard-dual":
            return "wireguard"
        return self.dataplane if self.dataplane in ("wireguard", "ipip", "flannel", "cilium", "antrea") else "vxlan"

    @property
    def pod_mtu(self) -> int:
        """The pods' (and their cali veths') MTU: Felix gives the CNI the smallest MTU of the enabled encapsulations."""
        mtus = []
        if self.ipv4_encap in ("vxlan", "flannel", "cilium", "antrea"):
            mtus.append(self.topology.overlay.mtu)
        if self.ipv4_encap == "wireguard" and self.wireguard is not None:
            mtus.append(self.wireguard.mtu)
        if self.ipv4_encap == "ipip" and self.ipip is not None:
            mtus.append(self.ipip.mtu)
        if self.ipv6_encap == "vxlan" and self.vxlan6 is not None:
            mtus.append(self.vxlan6.mtu)
        if self.ipv6_encap == "wireguard" and self.wireguard6 is not None:
            mtus.append(self.wireguard6.mtu)
        return min(m for m in mtus if m is not None)

    def node6(self, name: str) -> Node6:
        for node in self.nodes6:
            if node.name == name:
                return node
        raise InputError(f"lab file: node {name!r} has no IPv6 address (nodes[].address6/block6)")

    def subnet6_of(self, node: Node6) -> Subnet6:
        for subnet in self.subnets6:
            if node.address in subnet.network:
                return subnet
        raise InputError(f"node {node.name} ({node.underlay}) is in none of the lab's IPv6 subnets")

    def describe(self) -> dict[str, Any]:
        """What the lab is, as plain data: the data plane and, per node and family, its addresses and encapsulation."""
        nodes = []
        for node in self.topology.nodes:
            entry: dict[str, Any] = {"name": node.name}
            if self.has_ipv4:
                entry["ipv4"] = {"underlay": str(node.underlay), "block": str(node.block),
                                 "pod": str(self.pod_on(node.name).ip), "encapsulation": self.ipv4_encap}
            if self.has_ipv6:
                n6 = self.node6(node.name)
                entry["ipv6"] = {"underlay": str(n6.underlay), "block": str(n6.block), "pod": str(n6.pod_ip),
                                 **({"vtep": str(n6.vtep_ip), "vtep_mac": n6.vtep_mac} if self.ipv6_encap == "vxlan" else {}),
                                 "encapsulation": self.ipv6_encap}
            nodes.append(entry)
        out: dict[str, Any] = {"cluster": self.cluster, "dataplane": self.dataplane, "underlay_iface": self.underlay_iface,
                               "underlay_mtu": self.underlay_mtu, "pod_mtu": self.pod_mtu, "nodes": nodes}
        if self.has_ipv4 and self.ipv4_encap == "vxlan":
            ov = self.topology.overlay
            out["vxlan"] = {"device": VXLAN_DEVICE, "mode": ov.mode.value, "vni": ov.vni, "port": ov.port, "mtu": ov.mtu}
        if self.ipv6_encap == "vxlan" and self.vxlan6 is not None:
            out["vxlan6"] = {"device": VXLAN_V6_DEVICE, "mode": self.vxlan6.mode, "vni": self.vxlan6.vni,
                             "port": self.vxlan6.port, "mtu": self.vxlan6.mtu}
        if self.ipv4_encap == "wireguard" and self.wireguard is not None:
            out["wireguard"] = {"device": "wireguard.cali", "port": self.wireguard.port, "mtu": self.wireguard.mtu}
        if self.ipv6_encap == "wireguard" and self.wireguard6 is not None:
            out["wireguard6"] = {"device": "wg-v6.cali", "port": self.wireguard6.port, "mtu": self.wireguard6.mtu}
        if self.ipv4_encap == "ipip" and self.ipip is not None:
            out["ipip"] = {"device": "tunl0", "mode": self.ipip.mode, "mtu": self.ipip.mtu}
        if self.flannel is not None:
            ov = self.topology.overlay
            out["flannel"] = {"device": self.flannel.device, "vni": ov.vni, "port": ov.port, "mtu": ov.mtu,
                              "direct_routing": self.flannel.direct_routing, "mode": ov.mode.value}
        if self.cilium is not None:
            ov = self.topology.overlay
            out["cilium"] = {"device": "cilium_vxlan", "routing_mode": "tunnel", "tunnel_protocol": "vxlan",
                             "port": ov.port, "mtu": ov.mtu, "identities": dict(self.cilium.identities)}
        if self.antrea is not None:
            ov = self.topology.overlay
            out["antrea"] = {"tunnel": "antrea-tun0", "tunnel_type": ov.encapsulation, "vni": ov.vni, "port": ov.port,
                             "mtu": ov.mtu, "traffic_encap_mode": "hybrid" if self.antrea.hybrid else "encap"}
        return out

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
        cni=str(ov.get("cni", "calico")),
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
    return _with_dataplane(spec, data)


def _with_dataplane(spec: LabSpec, data: dict[str, Any]) -> LabSpec:
    """The lab file's `dataplane` section and IPv6 fields (absent: the reference VXLAN lab)."""
    dp = data.get("dataplane") or {}
    if not isinstance(dp, dict):
        raise InputError("lab file: dataplane must be a mapping (overlay: vxlan|vxlan6|dual|wireguard|ipip, ...)")
    kind = str(dp.get("overlay", "vxlan"))
    if kind not in DATAPLANES:
        raise InputError(f"lab file: dataplane.overlay {kind!r} is not one the lab builds ({', '.join(DATAPLANES)})")
    if kind == "vxlan":
        return spec
    changes: dict[str, Any] = {"dataplane": kind}
    if kind in ("vxlan6", "dual", "wireguard6", "wireguard-dual"):
        if kind not in ("wireguard6", "wireguard-dual"):
            v6 = dp.get("vxlan6") or {}
            changes["vxlan6"] = Vxlan6(mode=str(v6.get("mode", "CrossSubnet")), vni=int(v6.get("vni", 4096)),
                                       port=int(v6.get("port", 4789)),
                                       mtu=int(v6.get("mtu", spec.underlay_mtu - VXLAN_V6_OVERHEAD)))
        else:
            wg6 = dp.get("wireguard6") or {}
            changes["wireguard6"] = Wireguard6(port=int(wg6.get("port", WIREGUARD_PORT_V6)),
                                               mtu=int(wg6.get("mtu", spec.underlay_mtu - WIREGUARD_V6_OVERHEAD)))
        changes["subnets6"] = tuple(
            Subnet6(name=str(s["name"]),
                    network=_parse("an IPv6 network", IPv6Network, _field(s, "cidr6", f"subnets[{i}]"), f"subnets[{i}].cidr6"),
                    gateway=_parse("an IPv6 address", IPv6Address, _field(s, "gateway6", f"subnets[{i}]"),
                                   f"subnets[{i}].gateway6"))
            for i, s in enumerate(data["subnets"])
        )
        changes["nodes6"] = tuple(
            Node6(name=str(n["name"]),
                  underlay=_parse("an IPv6 address with prefix", IPv6Interface, _field(n, "address6", f"nodes[{i}]"),
                                  f"nodes[{i}].address6"),
                  block=_parse("an IPv6 network", IPv6Network, _field(n, "block6", f"nodes[{i}]"), f"nodes[{i}].block6"),
                  vtep_mac=normalise_mac(_field(n, "vtep_mac6", f"nodes[{i}]")) or "")
            for i, n in enumerate(data["nodes"])
        )
    if kind in ("wireguard", "wireguard-dual"):
        wg = dp.get("wireguard") or {}
        changes["wireguard"] = Wireguard(port=int(wg.get("port", WIREGUARD_PORT)),
                                         mtu=int(wg.get("mtu", spec.underlay_mtu - WIREGUARD_OVERHEAD)))
    if kind == "flannel":
        changes.update(_flannel(spec, dp.get("flannel") or {}))
    if kind == "cilium":
        changes.update(_cilium(spec, dp.get("cilium") or {}))
    if kind == "antrea":
        changes.update(_antrea(spec, dp.get("antrea") or {}))
    if kind == "ipip":
        ii = dp.get("ipip") or {}
        changes["ipip"] = Ipip(mode=str(ii.get("mode", "CrossSubnet")), mtu=int(ii.get("mtu", spec.underlay_mtu - IPIP_OVERHEAD)))
    out = replace(spec, **changes)
    for node6 in out.nodes6:
        out.subnet6_of(node6)
    return out


def _flannel(spec: LabSpec, fl: dict[str, Any]) -> dict[str, Any]:
    """A Flannel lab: the overlay section holds VNI, Port and MTU; DirectRouting must agree with its mode,
    and the test pod is the node's second address (the cni0 bridge takes the first, as the bridge plugin does)."""
    ov = spec.topology.overlay
    direct = fl.get("direct_routing", False)
    if not isinstance(direct, bool):
        raise InputError(f"lab file: dataplane.flannel.direct_routing {direct!r} must be true or false")
    want = Mode.CROSS_SUBNET if direct else Mode.ALWAYS
    if ov.mode is not want:
        raise InputError(f"lab file: Flannel with DirectRouting {'on' if direct else 'off'} is overlay.mode "
                         f"{want.value}, not {ov.mode.value}")
    pods = tuple(Pod(name=f"vxcap-{n.name}", node=n.name, ip=n.block.network_address + 2)
                 for n in spec.topology.nodes if n.block is not None)
    return {"flannel": Flannel(direct_routing=direct, vni=ov.vni), "pods": pods}


def _cilium(spec: LabSpec, cl: dict[str, Any]) -> dict[str, Any]:
    """A Cilium lab: the overlay is cni cilium (vxlan, Always); each pod's identity a cluster-local one
    (Cilium allocates those from 256 up: pkg/identity/numericidentity.go, MinimalAllocationIdentity)."""
    ov = spec.topology.overlay
    if ov.cni != "cilium":
        raise InputError(f"lab file: a Cilium lab's overlay.cni is cilium, not {ov.cni}")
    raw = cl.get("identities") or {}
    if not isinstance(raw, dict):
        raise InputError("lab file: dataplane.cilium.identities must map pod names to identities")
    pods = tuple(Pod(name=f"vxcap-{n.name}", node=n.name, ip=n.block.network_address + 2)
                 for n in spec.topology.nodes if n.block is not None)
    identities = []
    for pod in pods:
        value = raw.get(pod.name)
        if not isinstance(value, int) or isinstance(value, bool) or not 256 <= value < 2**24:
            raise InputError(f"lab file: dataplane.cilium.identities.{pod.name} {value!r} must be an identity "
                             "from 256 (the reserved ones are below) to 16777215 (a 24-bit VNI)")
        identities.append((pod.name, value))
    return {"cilium": Cilium(identities=tuple(identities)), "pods": pods}


def _antrea(spec: LabSpec, an: dict[str, Any]) -> dict[str, Any]:
    """An Antrea lab: Geneve in the overlay section, hybrid as its mode (CrossSubnet; encap is Always);
    the test pod is the node's second address (antrea-gw0 takes the first, as Antrea's IPAM does)."""
    ov = spec.topology.overlay
    hybrid = an.get("hybrid", False)
    if not isinstance(hybrid, bool):
        raise InputError(f"lab file: dataplane.antrea.hybrid {hybrid!r} must be true or false")
    want = Mode.CROSS_SUBNET if hybrid else Mode.ALWAYS
    if ov.encapsulation != "geneve" or ov.mode is not want:
        raise InputError(f"lab file: Antrea's trafficEncapMode {'hybrid' if hybrid else 'encap'} is overlay.encapsulation "
                         f"geneve, mode {want.value}; not {ov.encapsulation}, {ov.mode.value}")
    pods = tuple(Pod(name=f"vxcap-{n.name}", node=n.name, ip=n.block.network_address + 2)
                 for n in spec.topology.nodes if n.block is not None)
    return {"antrea": Antrea(hybrid=hybrid), "pods": pods}
