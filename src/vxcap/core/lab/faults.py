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
"""

from __future__ import annotations

from dataclasses import dataclass

from vxcap.core.errors import InputError
from vxcap.core.lab.plan import (
    POD_IFACE,
    LabNames,
    Step,
    bridge,
    fdb_steps,
    ip,
    vxlan_steps,
)
from vxcap.core.lab.spec import LabSpec
from vxcap.core.model import VXLAN_DEVICE, Node, Wire
from vxcap.core.plan import expected_wire


@dataclass(frozen=True, slots=True)
class VniMismatch:
    node: str
    vni: int


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


Fault = (VniMismatch | SameSubnetViaVxlan | FdbWrongNode | StaleFdbTowards | CrossSubnetPlain | PodMtu | RepliesBlackholed
         | UnderlayDropsVxlan | NeighbourWrongMac)


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
    # The kernel will not change a VXLAN id in place: delete and re-create, and
    # deleting the device takes its routes, neighbours and FDB entries with it.
    return [
        ip(names.node(node.name), "link", "del", VXLAN_DEVICE),
        *vxlan_steps(spec, names, node, vni=fault.vni),
        *fdb_steps(spec, names, node),
    ]


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
    raise InputError(f"fault: {fault!r} is not a fault vxcap knows")
