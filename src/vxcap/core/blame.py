"""Blame: the node that the failing directions have in common.

A coverage run judges each node with several peers. When one node is broken
(a wrong VNI, stale FDB entries towards it), the directions through it fail and
its peers' other directions pass; naming that node is the first thing a reader
wants from hundreds of verdicts. Pure: directions and their verdicts in, a
finding (or nothing) out. It only names what the verdicts support: a single
failing direction, or failures all between the same two nodes that nothing else
tells apart, name no one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# A node is named when at least this many failing directions go through it.
MIN_FAILURES = 2
MAX_NAMED = 3


@dataclass(frozen=True, slots=True)
class Direction:
    src: str
    dst: str
    wire: str
    passed: bool


@dataclass(frozen=True, slots=True)
class Blame:
    nodes: tuple[tuple[str, int], ...]  # (node, failing directions through it), most first
    failed: int  # failing directions in the run
    explained: int  # of those, through a named node
    passed_through: int  # passing directions through the named nodes
    between: tuple[str, ...] = ()  # failures all between these two, and nothing tells which

    @property
    def message(self) -> str:
        if self.between:
            a, b = self.between
            return (f"the {self.failed} failing directions are all between {a} and {b}; no other direction "
                    f"tells which of the two is broken (run each with another peer)")
        if len(self.nodes) == 1:
            (node, count), = self.nodes
            share = "all" if count == self.failed else f"{count} of"
            others = ""
            if self.passed_through == 1:
                others = "; its other direction passes"
            elif self.passed_through:
                others = f"; its other {self.passed_through} directions pass"
            return f"{share} {self.failed} failing directions go through {node}{others}: look there first"
        listing = ", ".join(f"{node} ({count})" for node, count in self.nodes)
        return f"{self.explained} of {self.failed} failing directions go through {listing}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [{"node": node, "failed": count} for node, count in self.nodes],
            "failed": self.failed,
            "explained": self.explained,
            "passed_through": self.passed_through,
            "between": list(self.between),
            "message": self.message,
        }


def _through(direction: Direction) -> tuple[str, str]:
    return direction.src, direction.dst


def _alibi(node: str, wires: set[str], passing: list[Direction]) -> bool:
    """The node carried traffic of a failing wire format elsewhere, and it passed."""
    return any(node in _through(d) and d.wire in wires for d in passing)


def blame(directions: Iterable[Direction]) -> Blame | None:
    """The node(s) the failing directions go through, or None when the verdicts do not say."""
    every = list(directions)
    failing = [d for d in every if not d.passed]
    passing = [d for d in every if d.passed]
    if len(failing) < MIN_FAILURES or not passing:
        return None  # one failure is its own explanation; all failing is no one node's doing
    common = set(_through(failing[0]))
    for d in failing[1:]:
        common &= set(_through(d))
    if len(common) == 2:
        a, b = sorted(common)
        wires = {d.wire for d in failing}
        suspects = [n for n in (a, b) if not _alibi(n, wires, passing)]
        if len(suspects) != 1:
            return Blame(nodes=(), failed=len(failing), explained=0, passed_through=0, between=(a, b))
        common = set(suspects)
    named: list[tuple[str, int]] = []
    left = failing
    while left and len(named) < MAX_NAMED:
        counts = Counter(n for d in left for n in set(_through(d)))
        if common:
            node = next(iter(common))
        else:
            wires = {d.wire for d in left}
            # Most failures first; between equals, the one with no passing direction of that kind, then by name.
            node = min(counts, key=lambda n: (-counts[n], _alibi(n, wires, passing), n))
        if counts[node] < MIN_FAILURES:
            break
        named.append((node, counts[node]))
        left = [d for d in left if node not in _through(d)]
        common = set()
    if not named:
        return None
    names = {node for node, _ in named}
    return Blame(
        nodes=tuple(named),
        failed=len(failing),
        explained=len(failing) - len(left),
        passed_through=sum(1 for d in passing if names & set(_through(d))),
    )


def blame_flows(flows: Iterable[dict[str, Any]]) -> Blame | None:
    """`blame` over report.json's flows."""
    return blame(
        Direction(f["src_node"], f["dst_node"], str(f.get("expected")), f.get("verdict") == "pass") for f in flows
    )
