"""Expectations: what each direction between two nodes must look like on the wire.

Chosen by pure functions from the intent (pool mode, node subnets, VNI, port),
the way cilium-cli picks expectations: plain values, decided before any packet
is seen, so the verdict can never be bent by what was observed.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

from vxcap.core.errors import InputError
from vxcap.core.model import IPAddress, Mode, Node, Overlay, Pair, Pod, Topology, Wire
from vxcap.core.names import check_node_name


@dataclass(frozen=True, slots=True)
class NodePath:
    """One ordered node pair and the wire format its pod traffic must use."""

    src: str
    dst: str
    expected: Wire
    reason: str
    family: int = 4


@dataclass(frozen=True, slots=True)
class Expectation:
    """One direction of one pair, bound to the pods that carry its traffic."""

    src_node: str
    dst_node: str
    src_ip: IPAddress
    dst_ip: IPAddress
    expected: Wire
    reason: str
    vni: int
    port: int  # the UDP port of the expected format (VXLAN's, or WireGuard's listening port)
    outer_src: IPAddress
    outer_dst: IPAddress
    inner_dst_mac: str | None  # the receiving node's VTEP MAC, when known
    family: int = 4  # the pods' and the underlay's IP version: each family is judged on its own
    vni_is: str | None = None  # what `vni` is when not the overlay's one (Cilium: the sender's security identity)

    @property
    def key(self) -> tuple[IPAddress, IPAddress]:
        return (self.src_ip, self.dst_ip)

    @property
    def tunnel_key(self) -> tuple[IPAddress, IPAddress]:
        """Where a format that hides the pods (WireGuard) is tallied: the nodes' outer pair."""
        return (self.outer_src, self.outer_dst)


# Cilium's and Antrea's words for the overlay's mode: (Always, Never, CrossSubnet).
_TUNNEL_WORDS = {
    "cilium": ("Cilium routing-mode tunnel ({})", "Cilium routing-mode native", "routing-mode"),
    "antrea": ("Antrea trafficEncapMode encap ({})", "Antrea trafficEncapMode noEncap", "Antrea hybrid"),
}


def expected_wire(overlay: Overlay, src: Node, dst: Node, family: int = 4) -> tuple[Wire, str]:
    """Calico's choice for `family` traffic leaving `src` towards `dst` (or Flannel's vxlan backend's,
    when `overlay.cni` says so: DirectRouting on is CrossSubnet, off is Always, host-gw Never; or
    Cilium's routing-mode and Antrea's trafficEncapMode, worded as theirs).

    WireGuard first: Felix routes pod traffic to a peer that published a public key through
    wireguard.cali (wg-v6.cali), ahead of the pool's encapsulation (its routing rule,
    wireguardRoutingRulePriority 99), so the underlay carries WireGuard and neither VXLAN nor
    IP-in-IP. Then the pool's mode. CrossSubnet asks whether the *sending* node's underlay
    prefix contains the receiver's address, so with mismatched prefixes the answer can differ by
    direction (felix: `calc.vxlan_resolver` compares against the local CIDR; IP-in-IP the same).
    """
    v6 = "V6" if family == 6 else ""
    if overlay.wireguard_on(family):
        keys = (src.wireguard_key, dst.wireguard_key) if family == 4 else (src.wireguard_key6, dst.wireguard_key6)
        if all(key != "" for key in keys):  # None: not known, taken as published
            return Wire.WIREGUARD, f"wireguardEnabled{v6}: both nodes are WireGuard peers"
        missing = src.name if keys[0] == "" else dst.name
        why = f"wireguardEnabled{v6}, but {missing} has no WireGuard public key: "
    else:
        why = ""
    if family == 4 and overlay.cni == "flannel":
        # Flannel's DirectRouting: plain only where the route to the peer has no gateway (in vxcap's
        # model, the peer is in the sender's subnet); off, always VXLAN. host-gw: always plain.
        if overlay.mode is Mode.ALWAYS:
            return Wire.VXLAN, "Flannel vxlan, DirectRouting off"
        if overlay.mode is Mode.NEVER:
            return Wire.PLAIN, "Flannel host-gw: the peer's pod CIDR routed via its address"
        mode, wire, field, why = overlay.mode, Wire.VXLAN, "DirectRouting", "DirectRouting on, "
    elif family == 4 and overlay.cni in _TUNNEL_WORDS:
        wire = Wire(overlay.encapsulation)
        tunnel, native, hybrid = _TUNNEL_WORDS[overlay.cni]
        if overlay.mode is Mode.ALWAYS:
            return wire, tunnel.format(wire.value)
        if overlay.mode is Mode.NEVER:
            return Wire.PLAIN, native
        mode, field, why = overlay.mode, hybrid, f"{hybrid} ({wire.value}), "
    elif family == 4:
        if not overlay.ipv4:
            raise InputError("no IPv4 pool: there is no IPv4 pod traffic to expect")
        mode, wire = overlay.mode, Wire(overlay.encapsulation)
        # Geneve is no Calico pool mode: the tunnel's (Antrea's encap / hybrid, Cilium's tunnel) mode words it
        field = "Geneve tunnel" if wire is Wire.GENEVE else f"{overlay.encapsulation}Mode"
    else:
        if overlay.mode6 is None:
            raise InputError("no IPv6 pool: there is no IPv6 pod traffic to expect")
        mode, wire, field = overlay.mode6, Wire.VXLAN, "vxlanMode (IPv6 pool)"
    if mode is Mode.ALWAYS:
        return wire, f"{why}{field} Always"
    if mode is Mode.NEVER:
        return Wire.PLAIN, f"{why}{field} Never"
    address, subnet = dst.address_of(family), src.subnet_of(family)
    if address is None or subnet is None:
        raise InputError(f"no IPv{family} underlay address on {dst.name if address is None else src.name}")
    if address in subnet:
        return Wire.PLAIN, f"{why}same subnet: {address} is in {subnet}"
    return wire, f"{why}other subnet: {address} is not in {subnet}"


def path_families(topology: Topology, src: Node, dst: Node) -> tuple[int, ...]:
    """The families a pair of nodes carries pod traffic in: IPv4 (unless the cluster is IPv6 only)
    where both nodes have an IPv4 underlay address, and IPv6 where there is an IPv6 pool and both nodes have an IPv6 underlay address."""
    families = [4] if topology.overlay.ipv4 and src.underlay is not None and dst.underlay is not None else []
    if topology.overlay.mode6 is not None and src.underlay6 is not None and dst.underlay6 is not None:
        families.append(6)
    return tuple(families)


def all_paths(topology: Topology) -> tuple[NodePath, ...]:
    """Every ordered node pair and family: what `vxcap topology` shows and `run` plans from."""
    return tuple(
        NodePath(src.name, dst.name, *expected_wire(topology.overlay, src, dst, family), family=family)
        for src, dst in permutations(topology.nodes, 2)
        for family in path_families(topology, src, dst)
    )


def resolve_node(topology: Topology, name: str) -> str:
    """`worker` means `k01-worker`: an exact name, else the one node named `<cluster>-<name>`
    or ending in `-<name>`. Anything else is an error that lists the nodes."""
    names = topology.node_names()
    wanted = name.strip()
    if wanted in names:
        return wanted
    if topology.cluster and f"{topology.cluster}-{wanted}" in names:
        return f"{topology.cluster}-{wanted}"
    matches = [n for n in names if n.endswith(f"-{wanted}")]
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(names)
    if not matches:
        raise InputError(f"unknown node {wanted!r}; nodes: {listing}")
    raise InputError(f"node name {wanted!r} is ambiguous ({', '.join(matches)}); nodes: {listing}")


def split_pair(spec: str) -> tuple[str, str]:
    """`A,B` as two names, checked before anything is contacted (which nodes exist is discovery's to say)."""
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 2 or not all(parts):
        raise InputError(f"--pair {spec!r}: expected two node names separated by a comma, like worker,worker3")
    for part in parts:
        check_node_name(part, f"--pair {spec!r}: node name")
    if parts[0] == parts[1]:
        raise InputError(f"--pair {spec!r}: a pair needs two different nodes")
    return parts[0], parts[1]


def parse_pair(topology: Topology, spec: str) -> Pair:
    a, b = (resolve_node(topology, p) for p in split_pair(spec))
    if a == b:
        raise InputError(f"--pair {spec!r}: a pair needs two different nodes")
    return Pair(a, b)


def resolve_pairs(topology: Topology, specs: list[str] | tuple[str, ...], all_pairs: bool = False) -> tuple[Pair, ...]:
    """Pairs in the order given, each once whichever way round it was written."""
    if all_pairs:
        names = topology.node_names()
        return tuple(Pair(a, b) for i, a in enumerate(names) for b in names[i + 1 :])
    if not specs:
        raise InputError("no pair to test: give --pair A,B (repeatable) or --all-pairs")
    seen: set[frozenset[str]] = set()
    pairs = []
    for spec in specs:
        pair = parse_pair(topology, spec)
        if frozenset((pair.a, pair.b)) not in seen:
            seen.add(frozenset((pair.a, pair.b)))
            pairs.append(pair)
    return tuple(pairs)


def pair_nodes(pairs: tuple[Pair, ...]) -> tuple[str, ...]:
    """The nodes a set of pairs involves, in first-mention order: one capture and one pod each."""
    ordered: dict[str, None] = {}
    for pair in pairs:
        ordered.setdefault(pair.a)
        ordered.setdefault(pair.b)
    return tuple(ordered)


def plan(topology: Topology, pairs: tuple[Pair, ...], pods: dict[str, Pod]) -> tuple[Expectation, ...]:
    """One expectation per direction of every pair; `pods` maps node name to its test pod."""
    expectations = []
    for pair in pairs:
        for src_name, dst_name in pair.directions():
            src, dst = topology.node(src_name), topology.node(dst_name)
            for node in (src, dst):
                if node.name not in pods:
                    raise InputError(f"no test pod on node {node.name}")
            for family in path_families(topology, src, dst):
                src_ip, dst_ip = pods[src.name].ip_of(family), pods[dst.name].ip_of(family)
                if src_ip is None or dst_ip is None:
                    continue  # a pod without an address of this family: nothing of it to expect
                wire, reason = expected_wire(topology.overlay, src, dst, family)
                port = topology.overlay.port if src.port is None else src.port
                if wire is Wire.WIREGUARD:
                    port = topology.overlay.wireguard_port_for(family)
                if topology.overlay.vni_identity and src.vni is None and wire is not Wire.PLAIN:
                    raise InputError(f"overlay.vni_identity: node {src.name} has no vni (its test pod's security "
                                     "identity, the VNI of what it sends)")
                expectations.append(
                    Expectation(
                        src_node=src.name,
                        dst_node=dst.name,
                        src_ip=src_ip,
                        dst_ip=dst_ip,
                        expected=wire,
                        reason=reason,
                        # The sender's Felix decides what its VXLAN carries; whether the receiver
                        # takes it is for delivery to show.
                        vni=topology.overlay.vni if src.vni is None else src.vni,
                        vni_is="the sender's security identity" if topology.overlay.vni_identity else None,
                        port=port,
                        outer_src=src.address_of(family),
                        outer_dst=dst.address_of(family),
                        inner_dst_mac=dst.vtep_mac_of(family),
                        family=family,
                    )
                )
    return tuple(expectations)
