"""Interface MTUs from the `ip -d -j link` node table vxcap saves beside each pcap.

iproute2 leaves out what a device does not have (no "linkinfo" on lo, no
"info_data" on a veth) and older versions print fewer keys, so every field
but the name is optional here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from vxcap.core.errors import InputError
from vxcap.core.model import VXLAN_DEVICE, VXLAN_V6_DEVICE

CALICO_VXLAN_IFNAME = {4: VXLAN_DEVICE, 6: VXLAN_V6_DEVICE}
DEFAULT_UNDERLAY_IFNAME = "eth1"
POD_IFNAME = "eth0"


@dataclass(frozen=True, slots=True)
class LinkFacts:
    ifname: str
    mtu: int | None = None
    kind: str | None = None  # linkinfo.info_kind: veth, vxlan, dummy, ...
    address: str | None = None
    up: bool | None = None  # the UP flag: administratively up
    vni: int | None = None  # vxlan only, from here down
    port: int | None = None
    local: str | None = None
    parent: str | None = None  # the device a vxlan sends through (Calico: the node-IP interface)

    @property
    def local_ip_version(self) -> int | None:
        try:
            return ip_address(self.local).version if self.local else None
        except ValueError:
            return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _link(entry: dict) -> LinkFacts | None:
    name = _str(entry.get("ifname"))
    if name is None:
        return None
    linkinfo = entry.get("linkinfo") if isinstance(entry.get("linkinfo"), dict) else {}
    data = linkinfo.get("info_data") if isinstance(linkinfo.get("info_data"), dict) else {}
    flags = entry.get("flags")
    return LinkFacts(
        ifname=name.split("@", 1)[0],  # text output's "eth0@if12", should it ever reach us
        mtu=_int(entry.get("mtu")),
        kind=_str(linkinfo.get("info_kind")),
        address=_str(entry.get("address")),
        up=("UP" in flags) if isinstance(flags, list) else None,
        vni=_int(data.get("id")),
        port=_int(data.get("port")),
        local=_str(data.get("local")) or _str(data.get("local6")),
        parent=_str(data.get("link")),
    )


def interface_mtus(link_json_text: str) -> dict[str, LinkFacts]:
    """`ip -d -j link` output -> facts per interface name; entries without a name are skipped."""
    if not link_json_text or not link_json_text.strip():
        raise InputError("ip -d -j link output is empty")
    try:
        entries = json.loads(link_json_text)
    except json.JSONDecodeError as err:
        raise InputError(f"ip -d -j link output is not JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    if not isinstance(entries, list):
        raise InputError(f"ip -d -j link output is a JSON {type(entries).__name__}, expected a list of interfaces")
    links: dict[str, LinkFacts] = {}
    for entry in entries:
        link = _link(entry) if isinstance(entry, dict) else None
        if link is not None:
            links[link.ifname] = link
    return links


@dataclass(frozen=True, slots=True)
class NodeMtus:
    """The three MTUs that decide one node's side of a path, and the names to report them by."""

    node: str
    pod_mtu: int | None = None
    vxlan_mtu: int | None = None
    underlay_mtu: int | None = None
    pod: str | None = None
    pod_ifname: str = POD_IFNAME
    vxlan_ifname: str = CALICO_VXLAN_IFNAME[4]
    underlay_ifname: str = DEFAULT_UNDERLAY_IFNAME

    @property
    def pod_label(self) -> str:
        return f"pod {self.pod} {self.pod_ifname}" if self.pod else f"pod {self.pod_ifname}"


def node_mtus(
    node: str,
    node_links: dict[str, LinkFacts] | None,
    pod_links: dict[str, LinkFacts] | None = None,
    *,
    pod: str | None = None,
    underlay_ip: int = 4,
    underlay_ifname: str | None = None,
    pod_ifname: str = POD_IFNAME,
    tunnel_ifname: str | None = None,
) -> NodeMtus:
    """Pick pod eth0, vxlan.calico and the underlay interface out of a node's and its pod's links.

    The underlay interface is `underlay_ifname` if given, else the device
    vxlan.calico sends through (Calico binds it to the node-IP interface), else eth1.
    """
    node_links = node_links or {}
    # the path's tunnel device: the family's VXLAN one unless told (tunl0, wireguard.cali, ...)
    vxlan_ifname = tunnel_ifname or CALICO_VXLAN_IFNAME[underlay_ip]
    vxlan = node_links.get(vxlan_ifname)
    if vxlan is None:
        # Another CNI's VTEP (Flannel's flannel.<VNI>): the node's one VXLAN device of this family.
        others = [link for link in node_links.values()
                  if link.kind == "vxlan" and link.local_ip_version in (underlay_ip, None)]
        if len(others) == 1:
            vxlan, vxlan_ifname = others[0], others[0].ifname
    if underlay_ifname is None:
        underlay_ifname = (vxlan.parent if vxlan else None) or DEFAULT_UNDERLAY_IFNAME
    underlay = node_links.get(underlay_ifname)
    pod_link = (pod_links or {}).get(pod_ifname)
    return NodeMtus(
        node=node,
        pod_mtu=pod_link.mtu if pod_link else None,
        vxlan_mtu=vxlan.mtu if vxlan else None,
        underlay_mtu=underlay.mtu if underlay else None,
        pod=pod,
        pod_ifname=pod_ifname,
        vxlan_ifname=vxlan_ifname,
        underlay_ifname=underlay_ifname,
    )
