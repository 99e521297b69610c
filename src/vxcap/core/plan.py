"""Expectations: what each direction between two nodes must look like on the wire.

Chosen by pure functions from the intent (pool mode, node subnets, VNI, port),
the way cilium-cli picks expectations: plain values, decided before any packet
is seen, so the verdict can never be bent by what was observed.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from itertools import permutations

from vxcap.core.errors import InputError
from vxcap.core.model import Mode, Node, Overlay, Pair, Pod, Topology, Wire
from vxcap.core.names import check_node_name


@dataclass(frozen=True, slots=True)
class NodePath:
    """One ordered node pair and the wire format its pod traffic must use."""

    src: str
    dst: str
    expected: Wire
    reason: str


@dataclass(frozen=True, slots=True)
class Expectation:
    """One direction of one pair, bound to the pods that carry its traffic."""

    src_node: str
    dst_node: str
    src_ip: IPv4Address
    dst_ip: IPv4Address
    expected: Wire
    reason: str
    vni: int
    port: int
    outer_src: IPv4Address
    outer_dst: IPv4Address
    inner_dst_mac: str | None  # the receiving node's VTEP MAC, when known

    @property
    def key(self) -> tuple[IPv4Address, IPv4Address]:
        return (self.src_ip, self.dst_ip)


def expected_wire(overlay: Overlay, src: Node, dst: Node) -> tuple[Wire, str]:
    """Calico's choice for traffic leaving `src` towards `dst`.

    CrossSubnet asks whether the *sending* node's underlay prefix contains the
    receiver's address, so with mismatched prefixes the answer can differ by
    direction (felix: `calc.vxlan_resolver` compares against the local CIDR).
    """
    if overlay.mode is Mode.ALWAYS:
        return Wire.VXLAN, "vxlanMode Always"
    if overlay.mode is Mode.NEVER:
        return Wire.PLAIN, "vxlanMode Never"
    if dst.address in src.subnet:
        return Wire.PLAIN, f"same subnet: {dst.address} is in {src.subnet}"
    return Wire.VXLAN, f"other subnet: {dst.address} is not in {src.subnet}"


def all_paths(topology: Topology) -> tuple[NodePath, ...]:
    """Every ordered node pair: what `vxcap topology` shows and `run` plans from."""
    return tuple(
        NodePath(src.name, dst.name, *expected_wire(topology.overlay, src, dst))
        for src, dst in permutations(topology.nodes, 2)
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
            wire, reason = expected_wire(topology.overlay, src, dst)
            expectations.append(
                Expectation(
                    src_node=src.name,
                    dst_node=dst.name,
                    src_ip=pods[src.name].ip,
                    dst_ip=pods[dst.name].ip,
                    expected=wire,
                    reason=reason,
                    # The sender's Felix decides what its VXLAN carries; whether the receiver
                    # takes it is for delivery to show.
                    vni=topology.overlay.vni if src.vni is None else src.vni,
                    port=topology.overlay.port if src.port is None else src.port,
                    outer_src=src.address,
                    outer_dst=dst.address,
                    inner_dst_mac=dst.vtep_mac,
                )
            )
    return tuple(expectations)
