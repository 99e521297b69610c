"""A coverage plan: O(N) directions that still reach every node, wire format and subnet pair.

`--all-pairs` is N·(N-1) directions (89,700 for 300 nodes); one `--pair` sees two
nodes. The plan in between guarantees, as a pure function of the topology and a
seed:

- every node sends and receives at least once on each wire format it can take
  part in (Calico CrossSubnet: a same-subnet peer where one exists, and a peer in
  another subnet), so a fault that breaks one node's traffic of one kind shows;
- every ordered pair of underlay subnets is crossed at least once;
- every ordered pair of node classes, per wire format: nodes that differ in what
  vxcap can see (their prefix length, whether their VTEP MAC is known, a Felix
  per-node VNI or port) are judged by different rules, so each combination is exercised.

Pairs are unordered and cover both directions, like `--pair`. Every node needs
four (role, wire) slots and a pair fills two per node, so about N pairs (2N
directions) is the floor; the plan adds one pair per pair of subnets at most.

It works on node *kinds* (own subnet, the subnets containing its address, class):
the wire format between two nodes depends on their kinds only, so nothing here
is quadratic in N.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from ipaddress import IPv4Network

from vxcap.core.errors import InputError
from vxcap.core.model import Node, Pair, Topology, Wire
from vxcap.core.plan import expected_wire

DEFAULT_SEED = 0
DEFAULT_PEERS = 2

Kind = tuple[IPv4Network, frozenset[IPv4Network], str]
Requirement = tuple  # ("send"|"recv", node, wire) | ("subnets", net, net) | ("classes", cls, cls, wire)


@dataclass(frozen=True, slots=True)
class PlannedPair:
    pair: Pair
    reasons: tuple[str, ...]  # what this pair covers that no earlier pair did, the first being why it was chosen


@dataclass(frozen=True, slots=True)
class CoveragePlan:
    seed: int
    peers: int
    pairs: tuple[PlannedPair, ...]
    classes: tuple[tuple[str, int], ...]  # (class, how many nodes)
    subnets: tuple[tuple[str, int], ...]  # (underlay subnet, how many nodes)
    requirements: int  # how many things the plan had to cover

    @property
    def directions(self) -> int:
        return 2 * len(self.pairs)

    def as_pairs(self) -> tuple[Pair, ...]:
        return tuple(p.pair for p in self.pairs)

    def reasons_by_pair(self) -> dict[tuple[str, str], tuple[str, ...]]:
        return {(p.pair.a, p.pair.b): p.reasons for p in self.pairs}


def node_class(node: Node) -> str:
    """What vxcap can see of a node that changes how its traffic is judged: its prefix
    (CrossSubnet decides with it), whether its VTEP MAC is known (the inner MAC is checked
    then), and a Felix per-node override of the VNI or port (its VXLAN carries those)."""
    mac = "VTEP MAC known" if node.vtep_mac else "VTEP MAC unknown"
    text = f"/{node.primary.network.prefixlen}, {mac}"
    overrides = [f"{name} {value}" for name, value in (("VNI", node.vni), ("port", node.port)) if value is not None]
    if overrides:
        text += ", Felix override " + " ".join(overrides)
    return text


def describe(requirement: Requirement) -> str:
    tag = requirement[0]
    if tag == "send":
        return f"{requirement[1]} sends {requirement[2]}"
    if tag == "recv":
        return f"{requirement[1]} receives {requirement[2]}"
    if tag == "subnets":
        return f"subnet {requirement[1]} → {requirement[2]}"
    return f"class {requirement[1]} → {requirement[2]} ({requirement[3]})"


class _Planner:
    def __init__(self, topology: Topology, seed: int, peers: int) -> None:
        self.overlay = topology.overlay
        self.rng = random.Random(seed)
        # Sorted first: the plan depends on the topology and the seed, not on the order nodes were listed in.
        nodes = sorted(topology.nodes, key=lambda n: n.name)
        self.nodes = {n.name: n for n in nodes}
        networks = sorted({n.subnet for n in nodes}, key=lambda net: (int(net.network_address), net.prefixlen))
        self.kind_of: dict[str, Kind] = {}
        members: dict[Kind, list[str]] = {}
        self.by_subnet: dict[IPv4Network, list[str]] = {net: [] for net in networks}
        for node in nodes:
            kind = (node.subnet, frozenset(net for net in networks if node.address in net), node_class(node))
            self.kind_of[node.name] = kind
            members.setdefault(kind, []).append(node.name)
            self.by_subnet[node.subnet].append(node.name)
        self.kinds = sorted(members, key=lambda k: (str(k[0]), sorted(map(str, k[1])), k[2]))
        self.members = {k: self.rng.sample(v, len(v)) for k, v in ((k, members[k]) for k in self.kinds)}
        for net in networks:
            self.by_subnet[net] = self.rng.sample(self.by_subnet[net], len(self.by_subnet[net]))
        self.networks = networks
        self.wire = {(k1, k2): self._wire(k1, k2) for k1 in self.kinds for k2 in self.kinds}
        self.peers = peers
        self.covered: set[Requirement] = set()  # subnet and class pairs
        self.count: dict[Requirement, int] = {}  # (role, node, wire) -> peers so far
        self.target_of: dict[str, dict[Requirement, int]] = {}
        self.pairs: dict[frozenset[str], list] = {}
        self.order: list[tuple[str, str]] = []
        self.cursor: dict[tuple, int] = {}
        self.turn = 0

    def _wire(self, k1: Kind, k2: Kind) -> Wire:
        # Any member stands for its kind: the wire format depends on the kinds alone.
        return expected_wire(self.overlay, self.nodes[self.members[k1][0]], self.nodes[self.members[k2][0]])[0]

    def _usable(self, k1: Kind, k2: Kind) -> bool:
        """Two different nodes of these kinds exist."""
        return k1 != k2 or len(self.members[k1]) > 1

    # --- what a node, a subnet pair, a class pair can take part in --------

    def targets(self, name: str) -> dict[Requirement, int]:
        """(role, node, wire) -> how many different peers the node needs in that role: `peers`,
        or as many as exist."""
        if name not in self.target_of:
            kind = self.kind_of[name]
            found: dict[Requirement, int] = {}
            for k in self.kinds:
                others = len(self.members[k]) - (k == kind)
                if others:
                    for role, wire in (("send", self.wire[kind, k]), ("recv", self.wire[k, kind])):
                        found[(role, name, wire)] = found.get((role, name, wire), 0) + others
            self.target_of[name] = {r: min(self.peers, n) for r, n in found.items()}
        return self.target_of[name]

    def satisfied_by(self, a: str, b: str) -> list[Requirement]:
        found: list[Requirement] = []
        for src, dst in ((a, b), (b, a)):
            wire = self.wire[self.kind_of[src], self.kind_of[dst]]
            s, d = self.nodes[src], self.nodes[dst]
            found += [("send", src, wire), ("recv", dst, wire)]
            if s.subnet != d.subnet:
                found.append(("subnets", str(s.subnet), str(d.subnet)))
            found.append(("classes", node_class(s), node_class(d), wire))
        return found

    def needs(self, name: str, requirement: Requirement) -> bool:
        return self.count.get(requirement, 0) < self.targets(name).get(requirement, 0)

    def useful(self, requirement: Requirement) -> bool:
        if requirement[0] in ("send", "recv"):
            return self.needs(requirement[1], requirement)
        return requirement not in self.covered

    # --- choosing --------------------------------------------------------

    def add(self, a: str, b: str, why: Requirement) -> None:
        new = [r for r in dict.fromkeys([why, *self.satisfied_by(a, b)]) if self.useful(r)]
        texts = []
        for r in new:
            if r[0] in ("send", "recv"):
                self.count[r] = self.count.get(r, 0) + 1
                texts.append(describe(r) + ("" if self.count[r] == 1 else f" (peer {self.count[r]})"))
            else:
                self.covered.add(r)
                texts.append(describe(r))
        self.pairs[frozenset((a, b))] = texts
        self.order.append((a, b))

    def free(self, a: str, b: str) -> bool:
        return a != b and frozenset((a, b)) not in self.pairs

    def pick(self, kind: Kind, avoid: str, wanted: tuple[str, Wire] | None) -> str | None:
        """A member of `kind` not yet paired with `avoid`; one that still needs `wanted` when there is one.

        The cursor moves past members that no longer need it (needs only shrink),
        so finding partners stays about linear over the whole plan.
        """
        members = self.members[kind]
        if wanted is not None:
            role, wire = wanted
            key = (kind, role, wire)
            i = self.cursor.get(key, 0)
            while i < len(members) and not self.needs(members[i], (role, members[i], wire)):
                i += 1
            self.cursor[key] = i
            # A few past the cursor: `avoid` itself, or its earlier partners, may be the first in need.
            for name in members[i:i + 2 + self.peers]:
                if self.free(avoid, name) and self.needs(name, (role, name, wire)):
                    return name
        # Nobody else needs it any more: spread the load round-robin.
        key = (kind, "any")
        i = self.cursor.get(key, 0)
        for step in range(len(members)):
            name = members[(i + step) % len(members)]
            if self.free(avoid, name):
                self.cursor[key] = (i + step + 1) % len(members)
                return name
        return None

    def from_subnet(self, net: IPv4Network) -> str:
        names = self.by_subnet[net]
        i = self.cursor.get(("subnet", net), 0)
        self.cursor[("subnet", net)] = i + 1
        return names[i % len(names)]

    def partner(self, name: str, role: str, wire: Wire) -> str | None:
        kind = self.kind_of[name]
        mirror = "recv" if role == "send" else "send"
        if role == "send":
            candidates = [k for k in self.kinds if self.wire[kind, k] is wire and self._usable(kind, k)]
        else:
            candidates = [k for k in self.kinds if self.wire[k, kind] is wire and self._usable(k, kind)]
        if not candidates:
            return None
        # Start at a different kind each time, so the partners spread over the subnets.
        self.turn += 1
        rotated = candidates[self.turn % len(candidates):] + candidates[: self.turn % len(candidates)]
        for k in rotated:
            chosen = self.pick(k, name, (mirror, wire))
            if chosen is not None and self.needs(chosen, (mirror, chosen, wire)):
                return chosen
        for k in rotated:
            chosen = self.pick(k, name, None)
            if chosen is not None:
                return chosen
        return None

    def plan(self) -> list[PlannedPair]:
        # Every ordered pair of subnets: one pair crosses both ways, its ends taken round-robin.
        for i, g in enumerate(self.networks):
            for h in self.networks[i + 1:]:
                if ("subnets", str(g), str(h)) not in self.covered:
                    self.add(self.from_subnet(g), self.from_subnet(h), ("subnets", str(g), str(h)))
        # Every node, each role and wire format it can take part in.
        for name in self.rng.sample(sorted(self.nodes), len(self.nodes)):
            for requirement in sorted(self.targets(name), key=lambda r: (r[0] != "send", r[2])):
                role, _, wire = requirement
                while self.needs(name, requirement):
                    other = self.partner(name, role, wire)
                    if other is None:
                        break
                    self.add(name, other, requirement)
        # Every ordered pair of classes on every wire format that occurs between them.
        for k1 in self.kinds:
            for k2 in self.kinds:
                if not self._usable(k1, k2):
                    continue
                requirement = ("classes", k1[2], k2[2], self.wire[k1, k2])
                if requirement in self.covered:
                    continue
                a = self.pick(k1, "", None)
                b = self.pick(k2, a or "", None)
                if a is not None and b is not None:
                    self.add(a, b, requirement)
        return [PlannedPair(Pair(a, b), tuple(self.pairs[frozenset((a, b))])) for a, b in self.order]


def coverage_plan(topology: Topology, seed: int = DEFAULT_SEED, peers: int = DEFAULT_PEERS) -> CoveragePlan:
    """A small plan (greedy) that covers every node, subnet pair and class pair.

    `peers`: how many different partners each node needs per role and wire format
    (as many as exist when fewer). Two is the default because one does not name a
    culprit: when the only VXLAN pair of two nodes fails both ways, either could be
    the broken one; with two, the healthy one passes with its other peer.
    """
    if peers < 1:
        raise InputError(f"--peers {peers}: at least 1")
    planner = _Planner(topology, seed, peers)
    pairs = planner.plan() if len(topology.nodes) > 1 else []
    requirements = len(planner.covered) + sum(sum(t.values()) for t in planner.target_of.values())
    classes: dict[str, int] = {}
    for node in topology.nodes:
        classes[node_class(node)] = classes.get(node_class(node), 0) + 1
    return CoveragePlan(
        seed=seed,
        peers=peers,
        pairs=tuple(pairs),
        classes=tuple(sorted(classes.items())),
        subnets=tuple((str(net), len(names)) for net, names in planner.by_subnet.items()),
        requirements=requirements,
    )
