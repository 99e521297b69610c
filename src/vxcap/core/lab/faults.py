"""Faults: one precise way each to break a running lab, as commands.

Pure. Each fault is a value naming nodes by their full names; `fault_steps`
turns it into the `ip`/`bridge` commands that make it so on a lab built by
`lab.plan.lab_steps`. Each changes exactly one thing a verdict must notice:

- VniMismatch: one node's VTEP uses another VNI (its VXLAN goes out with it,
  and the others' VXLAN to it is dropped on arrival).
- SameSubnetViaVxlan: src encapsulates towards a node on its own subnet.
- FdbWrongNode: src's VXLAN for dst is addressed to a third node's underlay IP.
- StaleFdbTowards: every node's FDB entry for one node's VTEP still points at an
  address that node no longer has (here: another node's), as after a node is
  replaced and the others were not told. One broken node, seen from everywhere.
- CrossSubnetPlain: src sends dst's pods' traffic unencapsulated to its gateway.
- PodMtu: the pod's eth0 MTU is changed (sizes and fragments on the wire change).
- RepliesBlackholed: node routes peer's pod block into a blackhole: peer's echo
  requests reach node's pod, whose replies die in node (and so do node's own).
- UnderlayDropsVxlan: the switch drops VXLAN from src's underlay address to dst's,
  that direction only (a policy rule on the router between their subnets).
- NeighbourWrongMac: src's neighbour entry for dst's underlay address holds a MAC
  nobody has: the switch floods src's frames to every port, dst's among them, and
  dst's kernel ignores them (they are not addressed to it).

For the other data planes (lab.dataplanes), each the twin of its healthy lab:

- WireguardPlaintext: in the WireGuard lab, src routes dst's pod block around
  wireguard.cali, straight out of eth1: the pod flow crosses the underlay in clear.
- Wireguard6Plaintext: the same in the wireguard6 lab: src routes dst's IPv6 pod block around
  wg-v6.cali, out of eth1 in clear IPv6.
- Fdb6WrongNode: src's vxlan-v6.calico FDB entry for dst's VTEP holds a third
  node's underlay IPv6 address (outer IPv6 destination of the wrong node).
- Vxlan6Ipv4Mtu: node's vxlan-v6.calico, cali veth and pod eth0 at the IPv4
  VXLAN MTU (underlay - 50) instead of underlay - 70: a full-size pod packet no
  longer fits in one outer IPv6 packet.
- Vxlan6SameSubnet: src encapsulates IPv6 towards a node of its own IPv6 subnet
  (vxlanMode Always where the pool says CrossSubnet).

In the IPIP lab (tunl0, the kernel's or the userspace forwarder's):

- IpipPlain: src routes dst's pod block around tunl0, plain out of eth1 (to dst, or through src's
  gateway), where ipipMode promises IP-in-IP.
- IpipWrongNode: src's tunl0 route for dst's block has a third node's underlay address as next hop:
  the outer destination of src's IP-in-IP is that node's (which decapsulates and forwards it on).
- IpipAsVxlan: src sends dst's pods' traffic through a vxlan.calico (VNI 4096, UDP 4789) made on src
  and dst for the fault, where ipipMode promises IP-in-IP.

For the Flannel lab (lab.flannel), VniMismatch re-makes the node's VTEP as flanneld would with
that VNI (`flannel.<VNI>`, its peers' entries on it), and:

- PortMismatch: one node's VTEP sends to (and listens on) another UDP port, as a flanneld whose
  net-conf.json sets `Port` while the others leave the kernel's 8472 (Calico lab: vxlanPort).
- FlannelDirectRoute: src routes dst's subnet straight to dst's underlay address, as flanneld
  does with DirectRouting on, where the lab promises VXLAN (DirectRouting off): the pods still
  reach each other, in plain on the wire.

For the Cilium lab (lab.cilium), PortMismatch re-makes one node's cilium_vxlan on another port (its
tunnel-port disagrees with the rest), and:

- CiliumForeignIdentity: one pod's traffic carries another security identity than its own as VNI
  (its table's tunnel routes keyed with it), as a datapath with a stale identity would send.
- CiliumPlain: src's pod reaches dst's pods over the underlay unencapsulated (a native-routing route)
  where routing-mode tunnel promises VXLAN.

For the Antrea lab (lab.antrea, Geneve through Open vSwitch), VniMismatch makes one node's tunnel
flows set that VNI (tun_id, which antrea-agent leaves 0), PortMismatch sets one node's antrea-tun0
`dst_port`, and:

- TunnelBypass: src sends dst's pods' traffic plain (its tunnel flow gone, a host route out of br-phy)
  where the lab promises Geneve.
- TunnelTypeMismatch: one node's antrea-tun0 is another tunnel type (VXLAN where Geneve is promised).
"""

from __future__ import annotations

from dataclasses import dataclass

from vxcap.core.errors import InputError
from vxcap.core.lab.plan import (
    FELIX_PROTO,
    POD_IFACE,
    LabNames,
    Step,
    bridge,
    fdb_steps,
    ip,
    vxlan_steps,
)
from vxcap.core.lab import antrea, cilium, dataplanes, flannel
from vxcap.core.lab.spec import LabSpec
from vxcap.core.model import DEFAULT_PORT, DEFAULT_VNI, VXLAN_DEVICE, VXLAN_V6_DEVICE, Node, Wire
from vxcap.core.plan import expected_wire


@dataclass(frozen=True, slots=True)
class VniMismatch:
    node: str
    vni: int


@dataclass(frozen=True, slots=True)
class PortMismatch:
    node: str
    port: int


@dataclass(frozen=True, slots=True)
class FlannelDirectRoute:
    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class CiliumForeignIdentity:
    node: str  # whose test pod's packets carry `identity` instead of its own
    identity: int


@dataclass(frozen=True, slots=True)
class CiliumPlain:
    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class SameSubnetViaVxlan:
    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class FdbWrongNode:
    src: str
    dst: str
    wrong: str


@dataclass(frozen=True, slots=True)
class StaleFdbTowards:
    node: str  # whose VTEP the others' entries are stale for
    stale: str  # the node whose underlay address those entries hold instead


@dataclass(frozen=True, slots=True)
class CrossSubnetPlain:
    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class PodMtu:
    node: str
    mtu: int


@dataclass(frozen=True, slots=True)
class RepliesBlackholed:
    node: str
    peer: str


@dataclass(frozen=True, slots=True)
class UnderlayDropsVxlan:
    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class NeighbourWrongMac:
    src: str
    dst: str
    mac: str = "02:00:5e:00:99:99"  # locally administered, on no port of the lab


@dataclass(frozen=True, slots=True)
class WireguardPlaintext:
    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class Wireguard6Plaintext:
    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class Fdb6WrongNode:
    src: str
    dst: str
    wrong: str


@dataclass(frozen=True, slots=True)
class Vxlan6Ipv4Mtu:
    node: str


@dataclass(frozen=True, slots=True)
class Vxlan6SameSubnet:
    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class IpipPlain:
    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class IpipWrongNode:
    src: str
    dst: str
    wrong: str


@dataclass(frozen=True, slots=True)
class IpipAsVxlan:
    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class TunnelBypass:
    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class TunnelTypeMismatch:
    node: str
    tunnel_type: str


Fault = (VniMismatch | SameSubnetViaVxlan | FdbWrongNode | StaleFdbTowards | CrossSubnetPlain | PodMtu | RepliesBlackholed
         | UnderlayDropsVxlan | NeighbourWrongMac | WireguardPlaintext | Wireguard6Plaintext | Fdb6WrongNode | Vxlan6Ipv4Mtu | Vxlan6SameSubnet
         | PortMismatch | FlannelDirectRoute | IpipPlain | IpipWrongNode | IpipAsVxlan | CiliumForeignIdentity | CiliumPlain
         | TunnelBypass | TunnelTypeMismatch)


def _needs(spec: LabSpec, what: str, ok: bool) -> None:
    if not ok:
        raise InputError(f"fault: needs a lab with {what}; this one is {spec.dataplane}")


def _wireguard_plaintext(spec: LabSpec, names: LabNames, fault: WireguardPlaintext) -> list[Step]:
    _needs(spec, "WireGuard (--overlay wireguard)", spec.ipv4_encap == "wireguard")
    src, dst = spec.topology.node(fault.src), spec.topology.node(fault.dst)
    _distinct(src, dst)
    # Same subnet: straight to dst's eth1; otherwise through src's gateway, as a plain CrossSubnet route would.
    hop = dst.address if dst.address in src.subnet else spec.subnet_of(src).gateway
    return [ip(names.node(src.name), "route", "replace", dst.block, "via", hop, "dev", spec.underlay_iface,
               "onlink", "proto", FELIX_PROTO)]


def _wireguard6_plaintext(spec: LabSpec, names: LabNames, fault: Wireguard6Plaintext) -> list[Step]:
    _needs(spec, "IPv6 WireGuard (--overlay wireguard6)", spec.ipv6_encap == "wireguard")
    _distinct(spec.topology.node(fault.src), spec.topology.node(fault.dst))
    src, dst = spec.node6(fault.src), spec.node6(fault.dst)
    hop = dst.address if dst.address in src.underlay.network else spec.subnet6_of(src).gateway
    return [ip(names.node(src.name), "route", "replace", dst.block, "via", hop, "dev", spec.underlay_iface,
               "onlink", "proto", FELIX_PROTO)]


def _ipip_pair(spec: LabSpec, fault: IpipPlain | IpipWrongNode | IpipAsVxlan) -> tuple[Node, Node]:
    _needs(spec, "IPIP (--overlay ipip)", spec.ipv4_encap == "ipip")
    src, dst = spec.topology.node(fault.src), spec.topology.node(fault.dst)
    _distinct(src, dst)
    if not dataplanes.ipip_peer(spec, src, dst):
        raise InputError(f"fault: {src.name} sends plain to {dst.name} (CrossSubnet, one subnet); pick an IPIP pair")
    return src, dst


def _ipip_plain(spec: LabSpec, names: LabNames, fault: IpipPlain) -> list[Step]:
    src, dst = _ipip_pair(spec, fault)
    hop = dst.address if dst.address in src.subnet else spec.subnet_of(src).gateway
    return [ip(names.node(src.name), "route", "replace", dst.block, "via", hop, "dev", spec.underlay_iface,
               "onlink", "proto", FELIX_PROTO)]


def _ipip_wrong_node(spec: LabSpec, names: LabNames, fault: IpipWrongNode) -> list[Step]:
    src, dst = _ipip_pair(spec, fault)
    wrong = spec.topology.node(fault.wrong)
    _distinct(src, dst, wrong)
    return [ip(names.node(src.name), "route", "replace", dst.block, "via", wrong.address, "dev", dataplanes.IPIP_DEVICE,
               "onlink", "proto", FELIX_PROTO)]


def _ipip_as_vxlan(spec: LabSpec, names: LabNames, fault: IpipAsVxlan) -> list[Step]:
    src, dst = _ipip_pair(spec, fault)
    mtu = spec.underlay_mtu - 50

    def device(node: Node) -> list[Step]:
        ns = names.node(node.name)
        return [ip(ns, "link", "add", VXLAN_DEVICE, "address", node.vtep_mac, "mtu", mtu, "type", "vxlan", "id", DEFAULT_VNI,
                   "dstport", DEFAULT_PORT, "local", node.address, "dev", spec.underlay_iface, "nolearning"),
                ip(ns, "addr", "add", f"{node.vtep_ip}/32", "dev", VXLAN_DEVICE),
                ip(ns, "link", "set", VXLAN_DEVICE, "up")]

    ns = names.node(src.name)
    # dst only needs the device to take the VXLAN in; its replies keep going back through tunl0.
    return device(src) + device(dst) + [
        ip(ns, "neigh", "replace", dst.vtep_ip, "lladdr", dst.vtep_mac, "dev", VXLAN_DEVICE, "nud", "permanent"),
        bridge(ns, "fdb", "replace", dst.vtep_mac, "dev", VXLAN_DEVICE, "dst", dst.address, "self", "permanent"),
        ip(ns, "route", "replace", dst.block, "via", dst.vtep_ip, "dev", VXLAN_DEVICE, "onlink", "proto", FELIX_PROTO),
    ]


def _fdb6_wrong_node(spec: LabSpec, names: LabNames, fault: Fdb6WrongNode) -> list[Step]:
    _needs(spec, "IPv6 VXLAN (--overlay vxlan6 or dual)", spec.has_ipv6)
    src, dst, wrong = (spec.node6(spec.topology.node(n).name) for n in (fault.src, fault.dst, fault.wrong))
    if len({src.name, dst.name, wrong.name}) != 3:
        raise InputError(f"fault: nodes {src.name}, {dst.name}, {wrong.name} must all be different")
    if not dataplanes.vxlan6_peer(spec, src, dst):
        raise InputError(f"fault: {src.name} sends plain IPv6 to {dst.name}, so no FDB entry decides; pick a VXLAN pair")
    return [bridge(names.node(src.name), "fdb", "replace", dst.vtep_mac, "dev", VXLAN_V6_DEVICE,
                   "dst", wrong.address, "self", "permanent")]


def _vxlan6_ipv4_mtu(spec: LabSpec, names: LabNames, fault: Vxlan6Ipv4Mtu) -> list[Step]:
    _needs(spec, "IPv6 VXLAN (--overlay vxlan6 or dual)", spec.has_ipv6)
    node = spec.topology.node(fault.node)
    mtu = spec.underlay_mtu - 50  # what vxlanMTU (IPv4) would be: 20 bytes too many for an IPv6 outer header
    n6 = spec.node6(node.name)
    # Re-made, not changed: the kernel caps a device bound to eth1 at eth1's MTU - 70 (and deleting
    # it takes its routes, neighbours and FDB entries along).
    return [
        ip(names.node(node.name), "link", "del", VXLAN_V6_DEVICE),
        *dataplanes.vxlan6_device_steps(spec, names, n6, mtu=mtu),
        *dataplanes.fdb6_steps(spec, names, n6),
        ip(names.node(node.name), "link", "set", names.cali(node.name), "mtu", mtu),
        ip(names.pod(node.name), "link", "set", POD_IFACE, "mtu", mtu),
    ]


def _vxlan6_same_subnet(spec: LabSpec, names: LabNames, fault: Vxlan6SameSubnet) -> list[Step]:
    _needs(spec, "IPv6 VXLAN (--overlay vxlan6 or dual)", spec.has_ipv6)
    src, dst = (spec.node6(spec.topology.node(n).name) for n in (fault.src, fault.dst))
    if src.name == dst.name:
        raise InputError(f"fault: nodes {src.name}, {dst.name} must all be different")
    if dataplanes.vxlan6_peer(spec, src, dst):
        raise InputError(f"fault: {src.name} already sends IPv6 VXLAN to {dst.name}; pick two nodes that talk plain")
    ns = names.node(src.name)
    return [
        # The VTEP's host route first: IPv6 takes an onlink gateway only where its own route leaves
        # by the same device, and dst's block (which holds its VTEP address) still goes out of eth1.
        ip(ns, "route", "replace", f"{dst.vtep_ip}/128", "dev", VXLAN_V6_DEVICE),
        ip(ns, "route", "replace", dst.block, "via", dst.vtep_ip, "dev", VXLAN_V6_DEVICE, "onlink"),
        ip(ns, "neigh", "replace", dst.vtep_ip, "lladdr", dst.vtep_mac, "dev", VXLAN_V6_DEVICE, "nud", "permanent"),
        bridge(ns, "fdb", "replace", dst.vtep_mac, "dev", VXLAN_V6_DEVICE, "dst", dst.address, "self", "permanent"),
    ]


def _wire(spec: LabSpec, src: Node, dst: Node) -> Wire:
    return expected_wire(spec.topology.overlay, src, dst)[0]


def _distinct(*nodes: Node) -> None:
    if len({n.name for n in nodes}) != len(nodes):
        raise InputError(f"fault: nodes {', '.join(n.name for n in nodes)} must all be different")


def _vni_mismatch(spec: LabSpec, names: LabNames, fault: VniMismatch) -> list[Step]:
    node = spec.topology.node(fault.node)
    if not 0 <= fault.vni < 2**24:
        raise InputError(f"fault: VNI {fault.vni} is out of range (0..16777215)")
    if fault.vni == spec.topology.overlay.vni:
        raise InputError(f"fault: VNI {fault.vni} is the lab's own; a mismatch needs another")
    if spec.antrea is not None:
        return antrea.vni_fault_steps(spec, names, node, fault.vni)
    # The kernel will not change a VXLAN id in place: delete and re-create, and
    # deleting the device takes its routes, neighbours and FDB entries with it.
    if spec.flannel is not None:
        return [ip(names.node(node.name), "link", "del", spec.flannel.device),
                *flannel.device_steps(spec, names, node, vni=fault.vni),
                *flannel.peer_steps(spec, names, node, dev=f"flannel.{fault.vni}")]
    return [
        ip(names.node(node.name), "link", "del", VXLAN_DEVICE),
        *vxlan_steps(spec, names, node, vni=fault.vni),
        *fdb_steps(spec, names, node),
    ]


def _port_mismatch(spec: LabSpec, names: LabNames, fault: PortMismatch) -> list[Step]:
    node = spec.topology.node(fault.node)
    if not 1 <= fault.port <= 65535:
        raise InputError(f"fault: UDP port {fault.port} is out of range (1..65535)")
    if fault.port == spec.topology.overlay.port:
        raise InputError(f"fault: UDP port {fault.port} is the lab's own; a mismatch needs another")
    if spec.antrea is not None:
        return antrea.port_fault_steps(spec, names, node, fault.port)
    _needs(spec, "a VXLAN data plane (vxlan, --cni flannel or --cni cilium)",
           spec.ipv4_encap in ("vxlan", "flannel", "cilium"))
    ns = names.node(node.name)
    if spec.cilium is not None:  # deleting the device takes its neighbours and the pod table's routes along
        return [ip(ns, "link", "del", cilium.DEVICE), *cilium.device_steps(spec, names, node, port=fault.port),
                *cilium.route_steps(spec, names, node)]
    if spec.flannel is not None:
        return [ip(ns, "link", "del", spec.flannel.device), *flannel.device_steps(spec, names, node, port=fault.port),
                *flannel.peer_steps(spec, names, node)]
    return [ip(ns, "link", "del", VXLAN_DEVICE), *vxlan_steps(spec, names, node, port=fault.port),
            *fdb_steps(spec, names, node)]


def _flannel_direct_route(spec: LabSpec, names: LabNames, fault: FlannelDirectRoute) -> list[Step]:
    _needs(spec, "Flannel (--cni flannel)", spec.flannel is not None)
    src, dst = spec.topology.node(fault.src), spec.topology.node(fault.dst)
    _distinct(src, dst)
    if flannel.direct(spec, src, dst):
        raise InputError(f"fault: {src.name} already routes {dst.name}'s pods plain (DirectRouting); "
                         "pick a pair the lab sends VXLAN between")
    if dst.address not in src.subnet:
        raise InputError(f"fault: {src.name} reaches {dst.name} through a gateway, where flanneld never routes "
                         "directly; pick nodes on one subnet")
    return [ip(names.node(src.name), "route", "replace", dst.block, "via", dst.address)]


def _cilium_foreign_identity(spec: LabSpec, names: LabNames, fault: CiliumForeignIdentity) -> list[Step]:
    _needs(spec, "Cilium (--cni cilium)", spec.cilium is not None)
    node = spec.topology.node(fault.node)
    if not 0 < fault.identity < 2**24:
        raise InputError(f"fault: identity {fault.identity} does not fit a VNI (1..16777215)")
    if fault.identity == cilium.identity(spec, node):
        raise InputError(f"fault: {fault.identity} is {spec.pod_on(node.name).name}'s own identity; pick another")
    return cilium.route_steps(spec, names, node, vni=fault.identity, verb="replace")


def _cilium_plain(spec: LabSpec, names: LabNames, fault: CiliumPlain) -> list[Step]:
    _needs(spec, "Cilium (--cni cilium)", spec.cilium is not None)
    src, dst = spec.topology.node(fault.src), spec.topology.node(fault.dst)
    _distinct(src, dst)
    return cilium.plain_steps(spec, names, src, dst)


def _same_subnet_via_vxlan(spec: LabSpec, names: LabNames, fault: SameSubnetViaVxlan) -> list[Step]:
    src, dst = spec.topology.node(fault.src), spec.topology.node(fault.dst)
    _distinct(src, dst)
    if _wire(spec, src, dst) is not Wire.PLAIN:
        raise InputError(f"fault: {src.name} already sends VXLAN to {dst.name}; pick two nodes that talk plain")
    ns = names.node(src.name)
    return [
        ip(ns, "route", "replace", dst.block, "via", dst.vtep_ip, "dev", VXLAN_DEVICE, "onlink"),
        ip(ns, "neigh", "replace", dst.vtep_ip, "lladdr", dst.vtep_mac, "dev", VXLAN_DEVICE, "nud", "permanent"),
        bridge(ns, "fdb", "replace", dst.vtep_mac, "dev", VXLAN_DEVICE, "dst", dst.address, "self", "permanent"),
    ]


def _fdb_wrong_node(spec: LabSpec, names: LabNames, fault: FdbWrongNode) -> list[Step]:
    src, dst, wrong = (spec.topology.node(n) for n in (fault.src, fault.dst, fault.wrong))
    _distinct(src, dst, wrong)
    if _wire(spec, src, dst) is not Wire.VXLAN:
        raise InputError(f"fault: {src.name} sends plain to {dst.name}, so no FDB entry decides; pick a VXLAN pair")
    return [bridge(names.node(src.name), "fdb", "replace", dst.vtep_mac, "dev", VXLAN_DEVICE,
                   "dst", wrong.address, "self", "permanent")]


def _stale_fdb_towards(spec: LabSpec, names: LabNames, fault: StaleFdbTowards) -> list[Step]:
    node, stale = spec.topology.node(fault.node), spec.topology.node(fault.stale)
    _distinct(node, stale)
    senders = [src for src in spec.topology.nodes
               if src.name not in (node.name, stale.name) and _wire(spec, src, node) is Wire.VXLAN]
    if not senders:
        raise InputError(f"fault: no node sends VXLAN to {node.name}, so no FDB entry towards it exists")
    return [bridge(names.node(src.name), "fdb", "replace", node.vtep_mac, "dev", VXLAN_DEVICE,
                   "dst", stale.address, "self", "permanent") for src in senders]


def _cross_subnet_plain(spec: LabSpec, names: LabNames, fault: CrossSubnetPlain) -> list[Step]:
    src, dst = spec.topology.node(fault.src), spec.topology.node(fault.dst)
    _distinct(src, dst)
    if dst.address in src.subnet:
        raise InputError(f"fault: {src.name} and {dst.name} share a subnet; pick nodes on different subnets")
    gateway = spec.subnet_of(src).gateway
    return [ip(names.node(src.name), "route", "replace", dst.block, "via", gateway, "dev", spec.underlay_iface)]


def _pod_mtu(spec: LabSpec, names: LabNames, fault: PodMtu) -> list[Step]:
    node = spec.topology.node(fault.node)
    if not 68 <= fault.mtu <= 65535:
        raise InputError(f"fault: MTU {fault.mtu} is out of range (68..65535)")
    return [ip(names.pod(node.name), "link", "set", POD_IFACE, "mtu", fault.mtu)]


def _replies_blackholed(spec: LabSpec, names: LabNames, fault: RepliesBlackholed) -> list[Step]:
    node, peer = spec.topology.node(fault.node), spec.topology.node(fault.peer)
    _distinct(node, peer)
    return [ip(names.node(node.name), "route", "replace", "blackhole", peer.block)]


def _underlay_drops_vxlan(spec: LabSpec, names: LabNames, fault: UnderlayDropsVxlan) -> list[Step]:
    src, dst = spec.topology.node(fault.src), spec.topology.node(fault.dst)
    _distinct(src, dst)
    if dst.address in src.subnet:
        raise InputError(f"fault: {src.name} reaches {dst.name} without the router; pick nodes on different subnets")
    port = spec.topology.overlay.port
    return [ip(names.switch, "rule", "add", "from", src.address, "to", dst.address, "ipproto", "udp",
               "dport", port, "priority", 100, "blackhole")]


def _neighbour_wrong_mac(spec: LabSpec, names: LabNames, fault: NeighbourWrongMac) -> list[Step]:
    src, dst = spec.topology.node(fault.src), spec.topology.node(fault.dst)
    _distinct(src, dst)
    if dst.address not in src.subnet:
        raise InputError(f"fault: {src.name} reaches {dst.name} through the router; pick nodes on one subnet")
    return [ip(names.node(src.name), "neigh", "replace", dst.address, "lladdr", fault.mac,
               "dev", spec.underlay_iface, "nud", "permanent")]


def fault_steps(spec: LabSpec, names: LabNames, fault: Fault) -> list[Step]:
    """The commands that put `fault` into a healthy lab built with the same names."""
    if isinstance(fault, VniMismatch):
        return _vni_mismatch(spec, names, fault)
    if isinstance(fault, SameSubnetViaVxlan):
        return _same_subnet_via_vxlan(spec, names, fault)
    if isinstance(fault, FdbWrongNode):
        return _fdb_wrong_node(spec, names, fault)
    if isinstance(fault, StaleFdbTowards):
        return _stale_fdb_towards(spec, names, fault)
    if isinstance(fault, CrossSubnetPlain):
        return _cross_subnet_plain(spec, names, fault)
    if isinstance(fault, PodMtu):
        return _pod_mtu(spec, names, fault)
    if isinstance(fault, RepliesBlackholed):
        return _replies_blackholed(spec, names, fault)
    if isinstance(fault, UnderlayDropsVxlan):
        return _underlay_drops_vxlan(spec, names, fault)
    if isinstance(fault, NeighbourWrongMac):
        return _neighbour_wrong_mac(spec, names, fault)
    if isinstance(fault, WireguardPlaintext):
        return _wireguard_plaintext(spec, names, fault)
    if isinstance(fault, Wireguard6Plaintext):
        return _wireguard6_plaintext(spec, names, fault)
    if isinstance(fault, Fdb6WrongNode):
        return _fdb6_wrong_node(spec, names, fault)
    if isinstance(fault, Vxlan6Ipv4Mtu):
        return _vxlan6_ipv4_mtu(spec, names, fault)
    if isinstance(fault, Vxlan6SameSubnet):
        return _vxlan6_same_subnet(spec, names, fault)
    if isinstance(fault, PortMismatch):
        return _port_mismatch(spec, names, fault)
    if isinstance(fault, FlannelDirectRoute):
        return _flannel_direct_route(spec, names, fault)
    if isinstance(fault, IpipPlain):
        return _ipip_plain(spec, names, fault)
    if isinstance(fault, IpipWrongNode):
        return _ipip_wrong_node(spec, names, fault)
    if isinstance(fault, IpipAsVxlan):
        return _ipip_as_vxlan(spec, names, fault)
    if isinstance(fault, CiliumForeignIdentity):
        return _cilium_foreign_identity(spec, names, fault)
    if isinstance(fault, CiliumPlain):
        return _cilium_plain(spec, names, fault)
    if isinstance(fault, TunnelBypass):
        src, dst = spec.topology.node(fault.src), spec.topology.node(fault.dst)
        _distinct(src, dst)
        return antrea.plain_fault_steps(spec, names, src, dst)
    if isinstance(fault, TunnelTypeMismatch):
        return antrea.tunnel_type_fault_steps(spec, names, spec.topology.node(fault.node), fault.tunnel_type)
    raise InputError(f"fault: {fault!r} is not a fault vxcap knows")
