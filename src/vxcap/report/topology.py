"""`vxcap topology --json`: what was discovered and the plan `vxcap run` builds from it."""

from __future__ import annotations

from typing import Any

from vxcap.core.model import Topology
from vxcap.core.plan import NodePath


def topology_dict(topology: Topology, paths: tuple[NodePath, ...]) -> dict[str, Any]:
    overlay = topology.overlay
    return {
        "overlay": {"mode": overlay.mode.value, "vni": overlay.vni, "port": overlay.port, "mtu": overlay.mtu,
                    "encapsulation": overlay.encapsulation, "ipv4": overlay.ipv4,
                    "mode6": None if overlay.mode6 is None else overlay.mode6.value, "mtu6": overlay.mtu6,
                    "wireguard": overlay.wireguard, "wireguard6": overlay.wireguard6,
                    "wireguard_port": overlay.wireguard_port, "wireguard_port6": overlay.wireguard_port6},
        "nodes": [
            {
                "name": n.name,
                "underlay": None if n.underlay is None else str(n.underlay),  # None: an IPv6-only node
                "block": None if n.block is None else str(n.block),
                "vtep_ip": None if n.vtep_ip is None else str(n.vtep_ip),
                "vtep_mac": n.vtep_mac,
                "underlay6": None if n.underlay6 is None else str(n.underlay6),
                "vtep_mac6": n.vtep_mac6,
                # An IPv6-only node's block and VTEP are its IPv6 ones (a node with IPv4 shows those above)
                **({"block6": None if n.block6 is None else str(n.block6),
                    "vtep_ip6": None if n.vtep_ip6 is None else str(n.vtep_ip6)} if n.underlay is None else {}),
            }
            for n in topology.nodes
        ],
        "paths": [{"src": p.src, "dst": p.dst, "family": f"IPv{p.family}", "expected": p.expected.value, "reason": p.reason}
                  for p in paths],
    }
