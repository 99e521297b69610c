"""The judge stage's view of the captures: what each capture point saw of each direction."""

from __future__ import annotations

from vxcap.core.frames import FlowKey, FlowTally
from vxcap.core.plan import Expectation
from vxcap.core.verdict import CapturePoint


# Up to this many captures, every direction's `seen_on` names each of them (0 where it saw
# nothing); beyond, only those that saw the flow and the two ends' (else report.json grows
# with directions x captures: 16 MB for a 256-node coverage run).
SEEN_ON_EVERY_CAPTURE = 32


def flow_views(
    seen: dict[CapturePoint, dict[FlowKey, FlowTally]], expectations: list[Expectation]
) -> list[dict[CapturePoint, FlowTally | None]]:
    """What each capture point saw of each direction's flow, for `judge`."""
    if len(seen) <= SEEN_ON_EVERY_CAPTURE:
        return [{point: flows.get(e.key) for point, flows in seen.items()} for e in expectations]
    by_key: dict[FlowKey, list[CapturePoint]] = {}
    by_node: dict[str, list[CapturePoint]] = {}
    for point, flows in seen.items():
        by_node.setdefault(point.node, []).append(point)
        for key in flows:
            by_key.setdefault(key, []).append(point)
    order = {point: i for i, point in enumerate(seen)}
    views = []
    for e in expectations:
        points = set(by_key.get(e.key, ())) | set(by_node.get(e.src_node, ())) | set(by_node.get(e.dst_node, ()))
        views.append({point: seen[point].get(e.key) for point in sorted(points, key=order.__getitem__)})
    return views
