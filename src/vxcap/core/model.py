"""The topology and intent model: what the cluster is and what its overlay promises.

Values only. Everything here is frozen so that a plan made from it cannot drift
while a run is in flight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from vxcap.core.errors import InputError


class Mode(StrEnum):
    """Calico's `vxlanMode` on the IPPool."""

    CROSS_SUBNET = "CrossSubnet"
    ALWAYS = "Always"
    NEVER = "Never"

    @classmethod
    def parse(cls, text: str) -> Mode:
        for mode in cls:
            if mode.value.lower() == str(text).lower():
                return mode
        allowed = ", ".join(m.value for m in cls)
        raise InputError(f"vxlanMode {text!r} is not one vxcap handles ({allowed})")


class Wire(StrEnum):
    """What a pod-to-pod packet looks like on the underlay."""

    PLAIN = "plain"
    VXLAN = "vxlan"


# Calico's defaults (FelixConfiguration vxlanVNI / vxlanPort) and the IANA VXLAN port.
DEFAULT_VNI = 4096
DEFAULT_PORT = 4789
DEFAULT_MTU = 1450
# The VTEPs Calico creates on every node (IPv4 and IPv6 pools): the one place their names are written.
VXLAN_DEVICE = "vxlan.calico"
VXLAN_V6_DEVICE = "vxlan-v6.calico"

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def normalise_mac(text: str | None) -> str | None:
    if text is None or text == "":
        return None
    mac = str(text).strip().lower().replace("-", ":")
    if not _MAC.match(mac):
        raise InputError(f"{text!r} is not a MAC address (expected six hex bytes like 66:fb:ad:98:aa:13)")
    return mac


@dataclass(frozen=True, slots=True)
class Overlay:
    mode: Mode = Mode.CROSS_SUBNET
    vni: int = DEFAULT_VNI
    port: int = DEFAULT_PORT
    mtu: int | None = DEFAULT_MTU  # None: Calico's "auto"
    encapsulation: str = "vxlan"

    def __post_init__(self) -> None:
        if not 0 <= self.vni < 2**24:
            raise InputError(f"VNI {self.vni} is out of range (0..16777215)")
        if not 1 <= self.port <= 65535:
            raise InputError(f"UDP port {self.port} is out of range (1..65535)")
        if self.mtu is not None and not 68 <= self.mtu <= 65535:
            raise InputError(f"MTU {self.mtu} is out of range (68..65535)")
        if self.encapsulation != "vxlan":
            raise InputError(f"encapsulation {self.encapsulation!r} is not handled (only vxlan)")


@dataclass(frozen=True, slots=True)
class Node:
    """A Kubernetes node as the overlay sees it.

    `underlay` carries the prefix: CrossSubnet decides with it.
    """

    name: str
    underlay: IPv4Interface
    block: IPv4Network | None = None
    vtep_ip: IPv4Address | None = None
    vtep_mac: str | None = None
    underlay_mtu: int | None = None
    # A FelixConfiguration `node.<name>` override of vxlanVNI / vxlanPort: this node's VXLAN
    # goes out with it (None: the overlay's).
    vni: int | None = None
    port: int | None = None

    @property
    def address(self) -> IPv4Address:
        return self.underlay.ip

    @property
    def subnet(self) -> IPv4Network:
        return self.underlay.network


@dataclass(frozen=True, slots=True)
class Pod:
    name: str
    node: str
    ip: IPv4Address


@dataclass(frozen=True, slots=True)
class Pair:
    """An unordered request to test two nodes; it covers both directions."""

    a: str
    b: str

    def directions(self) -> tuple[tuple[str, str], tuple[str, str]]:
        return ((self.a, self.b), (self.b, self.a))


@dataclass(frozen=True, slots=True)
class Topology:
    overlay: Overlay
    nodes: tuple[Node, ...]
    pool: IPv4Network | None = None
    cluster: str = ""
    subnets: tuple[Subnet, ...] = field(default=())

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise InputError(f"unknown node {name!r}; nodes: {', '.join(self.node_names())}")

    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)


@dataclass(frozen=True, slots=True)
class Subnet:
    """An underlay segment of the lab and its gateway (the switch's SVI)."""

    name: str
    network: IPv4Network
    gateway: IPv4Address
    vlan: int | None = None
