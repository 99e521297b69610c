"""From a CNI's per-pair promises to one concrete expectation per direction of the pairs a run tests.

What `core.plan.plan` does for Calico, for the other CNIs: bound to the test pods, with every
open question answered first. A pair still stated as two formats (DirectRouting, hybrid) is an
error here, never "either": the sender's route table decides it before a run plans
(`core.cni.routes.decisions`). Cilium's VNI becomes the sending pod's security identity.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Address

from vxcap.core.cni import VNI_SENDER_IDENTITY, CniDiscovery, CniError, WireFormat
from vxcap.core.cni.cilium import Endpoint, sender_vni
from vxcap.core.model import Pair, Pod


@dataclass(frozen=True, slots=True)
class CniDirection:
    src_node: str
    dst_node: str
    src_ip: IPv4Address  # the test pods
    dst_ip: IPv4Address
    expected: WireFormat  # vni is a number (or None), never VNI_SENDER_IDENTITY
    reason: str
    outer_src: IPv4Address  # the nodes' underlay addresses the CNI tunnels between
    outer_dst: IPv4Address


def plan_directions(found: CniDiscovery, pairs: tuple[Pair, ...], pods: dict[str, Pod],
                    endpoints: tuple[Endpoint, ...] = ()) -> tuple[CniDirection, ...]:
    paths = {(p.src, p.dst): p for p in found.paths}
    nodes = {n.name: n for n in found.nodes}
    directions = []
    for pair in pairs:
        for src, dst in pair.directions():
            for node in (src, dst):
                if node not in nodes:
                    raise CniError(f"unknown node {node!r}; nodes: {', '.join(nodes)}")
                if node not in pods:
                    raise CniError(f"no test pod on node {node}")
            path = paths[(src, dst)]
            if len(path.expected) != 1:
                raise CniError(f"{src} → {dst}: {path.reason}; decided by {path.decided_by}, which was not read "
                               "(the sender's route table decides it before a run plans)")
            wire, reason = path.expected[0], path.reason
            if wire.vni == VNI_SENDER_IDENTITY:
                identity = sender_vni(endpoints, pods[src].ip)
                wire = replace(wire, vni=identity)
                reason += f"; {pods[src].name} ({pods[src].ip}) has identity {identity}"
            directions.append(CniDirection(src, dst, pods[src].ip, pods[dst].ip, wire, reason,
                                           nodes[src].address, nodes[dst].address))
    return tuple(directions)
