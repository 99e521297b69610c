"""Why a direction failed, from the sender's own tables.

A run saves each node's `ip -j route`, `ip -j neigh`, `bridge -j fdb` and
`ip -d -j link` beside its pcap. For a failing direction this reads the
forwarding decision the sender's kernel made for the destination pod: the route
it matched and, through vxlan.calico, the neighbour entry and FDB entry that
chose the outer destination, and the VNI/port the device encapsulates with.
Pure: JSON texts in, sentences out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any

from vxcap.core import rundir
from vxcap.core.model import VXLAN_DEVICE


@dataclass(frozen=True)
class NodeTables:
    routes: list[dict[str, Any]] = field(default_factory=list)
    neigh: list[dict[str, Any]] = field(default_factory=list)
    fdb: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)


def _entries(text: str | None) -> list[dict[str, Any]]:
    try:
        data = json.loads(text) if text else []
    except (json.JSONDecodeError, TypeError):
        return []
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def node_tables(texts: dict[str, str | None]) -> NodeTables:
    """From the node tables' texts by their run directory suffix (vxcap.core.rundir.NODE_TABLES)."""
    return NodeTables(
        routes=_entries(texts.get(rundir.ROUTES)),
        neigh=_entries(texts.get(rundir.NEIGHBOURS)),
        fdb=_entries(texts.get(rundir.FDB)),
        links=_entries(texts.get(rundir.NODE_LINKS)),
    )


def _network(route: dict[str, Any]) -> IPv4Network | None:
    dst = route.get("dst")
    if dst == "default":
        return ip_network("0.0.0.0/0")
    try:
        net = ip_network(str(dst), strict=False)
    except ValueError:
        return None
    return net if net.version == 4 else None


def route_to(routes: list[dict[str, Any]], address: IPv4Address) -> dict[str, Any] | None:
    """The route the kernel matches for `address`: the longest prefix (main table)."""
    best, best_len = None, -1
    for route in routes:
        net = _network(route)
        if net is not None and address in net and net.prefixlen > best_len:
            best, best_len = route, net.prefixlen
    return best


def describe_route(route: dict[str, Any]) -> str:
    words = [route["type"]] if route.get("type") not in (None, "unicast") else []
    words.append(str(route.get("dst")))
    if route.get("gateway"):
        words += ["via", str(route["gateway"])]
    if route.get("dev"):
        words += ["dev", str(route["dev"])]
    words += [str(f) for f in route.get("flags", [])]
    return " ".join(words)


def _vxlan_device(links: list[dict[str, Any]], name: str = VXLAN_DEVICE) -> dict[str, Any] | None:
    for link in links:
        if link.get("ifname") == name:
            return link
    return None


def _tunnel(links: list[dict[str, Any]], dev: object) -> bool:
    """vxlan.calico, or another CNI's VXLAN device (Flannel's flannel.1) as the saved links show it."""
    if dev == VXLAN_DEVICE:
        return True
    link = _vxlan_device(links, str(dev)) if dev else None
    return ((link or {}).get("linkinfo") or {}).get("info_kind") == "vxlan"


def explain(sender_name: str, sender: NodeTables, dst_ip: str) -> list[str]:
    """The sender's forwarding decision for `dst_ip`, hop by hop, as far as its tables go."""
    try:
        address = ip_address(dst_ip)
    except ValueError:
        return []
    route = route_to(sender.routes, address)
    if route is None:
        return [f"{sender_name} has no route to {dst_ip}"] if sender.routes else []
    lines = [f"{sender_name} routes {dst_ip} by `{describe_route(route)}`"]
    dev = route.get("dev")
    if not _tunnel(sender.links, dev):
        return lines
    gateway = route.get("gateway") or dst_ip
    mac = next((n.get("lladdr") for n in sender.neigh
                if n.get("dst") == gateway and n.get("dev") == dev), None)
    if mac is None:
        lines.append(f"{sender_name} has no neighbour entry for {gateway} on {dev}")
        return lines
    remote = next((f.get("dst") for f in sender.fdb
                   if f.get("mac") == mac and f.get("ifname") == dev), None)
    hop = f"neighbour {gateway} is {mac}; "
    hop += f"its FDB entry sends {mac} to {remote}" if remote else f"no FDB entry for {mac}"
    lines.append(f"{sender_name}: {hop}")
    device = _vxlan_device(sender.links, str(dev))
    data = ((device or {}).get("linkinfo") or {}).get("info_data") or {}
    if data:
        lines.append(f"{sender_name}: {dev} encapsulates with VNI {data.get('id')}, "
                     f"UDP port {data.get('port')}, MTU {device.get('mtu')}")
    return lines
