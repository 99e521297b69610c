"""Deciding the pairs a CNI leaves to the sending node, from that node's own route table.

Flannel's DirectRouting asks the kernel (`ip route get <peer>`, pkg/ip/iface.go `DirectRouting`):
plain when the one route found has no gateway. Antrea's hybrid mode asks whether the peer lies in
the sender's transport interface subnet (`NeedsTunnelToPeer`), which is the prefix of the kernel's
connected route whose preferred source is the node's own address. Both read `ip -j route` output,
the `route.json` node table every vxcap run already saves beside each capture.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address, ip_network
from itertools import permutations
from typing import Any

from vxcap.core.cni import CniNode
from vxcap.core.explain import route_to

Routes = list[dict[str, Any]]


def without_gateway(routes: Routes, peer: IPv4Address) -> bool | None:
    """Flannel's test: the route to `peer` is a plain unicast route with no gateway.
    None when the table has no route to it at all (nothing to decide with)."""
    route = route_to(routes, peer)
    if route is None:
        return None
    if route.get("type") not in (None, "unicast"):
        return False  # blackhole/unreachable/prohibit: `ip route get` fails, and flannel then tunnels
    if route.get("nexthops"):
        return False  # multipath: next hops through gateways
    return not route.get("gateway")


def in_transport_subnet(routes: Routes, own: IPv4Address, peer: IPv4Address) -> bool | None:
    """Antrea's test: `peer` is inside the subnet of the interface holding `own` (the kernel's
    connected route with `prefsrc own`). None when the table shows no such interface."""
    subnets = []
    for route in routes:
        if route.get("protocol") != "kernel" or route.get("scope") != "link" or route.get("prefsrc") != str(own):
            continue
        try:
            subnets.append(ip_network(str(route.get("dst")), strict=False))
        except ValueError:
            continue
    if not subnets:
        return None
    return any(peer in net for net in subnets)


def decisions(nodes: tuple[CniNode, ...], tables: Mapping[str, Routes], question: str) -> dict[tuple[str, str], bool]:
    """Per ordered pair, the answer the sender's table gives (`question`: "gateway" for Flannel's
    DirectRouting, "subnet" for Antrea's hybrid); pairs with no table or no answer are left out."""
    answers: dict[tuple[str, str], bool] = {}
    for src, dst in permutations(nodes, 2):
        routes = tables.get(src.name)
        if routes is None:
            continue
        answer = without_gateway(routes, dst.address) if question == "gateway" else \
            in_transport_subnet(routes, src.address, dst.address)
        if answer is not None:
            answers[(src.name, dst.name)] = answer
    return answers
