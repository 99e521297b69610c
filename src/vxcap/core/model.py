"""The topology and intent model: what the cluster is and what its overlay promises.

Values only. Everything here is frozen so that a plan made from it cannot drift
while a run is in flight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network

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
    IPIP = "ipip"
    WIREGUARD = "wireguard"
    GENEVE = "geneve"  # RFC 8926: Antrea's default tunnel, Cilium's tunnel-protocol geneve


# An address of either family: IPv4 underlays and pods, and IPv6 ones on IPv6 and dual-stack clusters.
IPAddress = IPv4Address | IPv6Address
FAMILIES = (4, 6)


# Calico's defaults (FelixConfiguration vxlanVNI / vxlanPort) and the IANA VXLAN port.
DEFAULT_VNI = 4096
DEFAULT_PORT = 4789
DEFAULT_MTU = 1450
# The VTEPs Calico creates on every node (IPv4 and IPv6 pools): the one place their names are written.
VXLAN_DEVICE = "vxlan.calico"
VXLAN_V6_DEVICE = "vxlan-v6.calico"
IPIP_DEVICE = "tunl0"
WG_DEVICE = "wireguard.cali"
WG_V6_DEVICE = "wg-v6.cali"
# FelixConfiguration wireguardListeningPort / wireguardListeningPortV6 defaults (felix/config/config_params.go).
DEFAULT_WG_PORT = 51820
DEFAULT_WG_PORT_V6 = 51821
ENCAPSULATIONS = ("vxlan", "ipip", "geneve")  # an IPv4 IPPool's vxlanMode / ipipMode; geneve: Antrea / Cilium tunnels
DEFAULT_GENEVE_PORT = 6081  # IANA's, Antrea's and Cilium's default
CNIS = ("calico", "flannel", "cilium", "antrea")  # whose promise the overlay's mode words (Overlay.cni)

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
    encapsulation: str = "vxlan"  # the IPv4 pool's: "vxlan" (vxlanMode) or "ipip" (ipipMode); `mode` is its mode
    # The IPv6 pool's vxlanMode (None: no IPv6 pool). Calico has no IP-in-IP over IPv6.
    mode6: Mode | None = None
    mtu6: int | None = None  # vxlanMTUV6 (None: auto)
    # FelixConfiguration wireguardEnabled / wireguardEnabledV6 and their listening ports.
    wireguard: bool = False
    wireguard6: bool = False
    wireguard_port: int = DEFAULT_WG_PORT
    wireguard_port6: int = DEFAULT_WG_PORT_V6
    # Whose promise `mode` words: Calico's pool mode, or Flannel's vxlan backend (the lab's
    # `--cni flannel`), where CrossSubnet is DirectRouting on, Always is DirectRouting off and Never
    # host-gw; Cilium's routing-mode (Always: tunnel, Never: native); Antrea's trafficEncapMode
    # (Always: encap, CrossSubnet: hybrid, Never: noEncap).
    cni: str = "calico"
    # False: an IPv6-only cluster (no IPv4 pool): no IPv4 direction is planned, and the nodes'
    # and pods' IPv4 addresses are names only.
    ipv4: bool = True
    # Cilium's tunnel: the VNI is the sending pod's security identity, so each node's `vni` override
    # is its test pod's identity and a direction's VNI is its sender's (Expectation.vni_is says so).
    vni_identity: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.vni < 2**24:
            raise InputError(f"VNI {self.vni} is out of range (0..16777215)")
        if not 1 <= self.port <= 65535:
            raise InputError(f"UDP port {self.port} is out of range (1..65535)")
        if self.mtu is not None and not 68 <= self.mtu <= 65535:
            raise InputError(f"MTU {self.mtu} is out of range (68..65535)")
        if self.encapsulation not in ENCAPSULATIONS:
            raise InputError(f"encapsulation {self.encapsulation!r} is not handled ({', '.join(ENCAPSULATIONS)})")
        if self.cni not in CNIS or (self.cni == "flannel" and self.encapsulation != "vxlan") or \
                (self.cni in ("cilium", "antrea") and self.encapsulation == "ipip") or \
                (self.cni == "cilium" and self.mode is Mode.CROSS_SUBNET):
            raise InputError(f"overlay cni {self.cni!r} with {self.encapsulation}Mode {self.mode.value} is not handled "
                             "(calico; flannel with vxlan; cilium and antrea with vxlan or geneve, cilium not CrossSubnet)")
        if not self.ipv4 and self.mode6 is None:
            raise InputError("an overlay without an IPv4 pool needs an IPv6 one (mode6)")
        for port in (self.wireguard_port, self.wireguard_port6):
            if not 1 <= port <= 65535:
                raise InputError(f"WireGuard port {port} is out of range (1..65535)")

    def wireguard_on(self, family: int) -> bool:
        return self.wireguard if family == 4 else self.wireguard6

    def wireguard_port_for(self, family: int) -> int:
        return self.wireguard_port if family == 4 else self.wireguard_port6

    def families(self) -> tuple[int, ...]:
        """The pod families the overlay has pools for."""
        return tuple(f for f, on in ((4, self.ipv4), (6, self.mode6 is not None)) if on)


@dataclass(frozen=True, slots=True)
class Node:
    """A Kubernetes node as the overlay sees it.

    `underlay` / `underlay6` carry the prefix: CrossSubnet decides with it. Each family's is
    optional (an IPv6-only cluster's nodes have no IPv4 address), but a node has one at least.
    """

    name: str
    underlay: IPv4Interface | None = None
    block: IPv4Network | None = None
    vtep_ip: IPv4Address | None = None
    vtep_mac: str | None = None
    underlay_mtu: int | None = None
    # A FelixConfiguration `node.<name>` override of vxlanVNI / vxlanPort: this node's VXLAN
    # goes out with it (None: the overlay's).
    vni: int | None = None
    port: int | None = None
    # The IPv6 underlay (projectcalico.org/IPv6Address), its pod block and vxlan-v6.calico's
    # address and MAC (IPv6VXLANTunnelAddr, VXLANTunnelMACAddrV6): None on an IPv4-only node.
    underlay6: IPv6Interface | None = None
    block6: IPv6Network | None = None
    vtep_ip6: IPv6Address | None = None
    vtep_mac6: str | None = None
    # projectcalico.org/WireguardPublicKey[V6]: Felix peers only with nodes that published one.
    # None: not known (a lab, a topology file), taken as published when WireGuard is on.
    wireguard_key: str | None = None
    wireguard_key6: str | None = None

    def __post_init__(self) -> None:
        if self.underlay is None and self.underlay6 is None:
            raise InputError(f"node {self.name}: no underlay address (neither IPv4 nor IPv6)")

    @property
    def primary(self) -> IPv4Interface | IPv6Interface:
        """The underlay a node is known by: its IPv4 one, or its IPv6 one on an IPv6-only node."""
        return self.underlay if self.underlay is not None else self.underlay6  # type: ignore[return-value]

    @property
    def address(self) -> IPAddress:
        return self.primary.ip

    def address_of(self, family: int) -> IPAddress | None:
        underlay = self.underlay if family == 4 else self.underlay6
        return None if underlay is None else underlay.ip

    def subnet_of(self, family: int) -> IPv4Network | IPv6Network | None:
        underlay = self.underlay if family == 4 else self.underlay6
        return None if underlay is None else underlay.network

    def vtep_mac_of(self, family: int) -> str | None:
        return self.vtep_mac if family == 4 else self.vtep_mac6

    @property
    def subnet(self) -> IPv4Network | IPv6Network:
        return self.primary.network


@dataclass(frozen=True, slots=True)
class Pod:
    name: str
    node: str
    ip: IPv4Address | None = None  # None: a pod of an IPv6-only cluster
    ip6: IPv6Address | None = None  # the pod's IPv6 address on a dual-stack or IPv6-only cluster

    def __post_init__(self) -> None:
        if self.ip is None and self.ip6 is None:
            raise InputError(f"pod {self.name}: no address (neither IPv4 nor IPv6)")

    @property
    def address(self) -> IPAddress:
        """The address a pod is known by: its IPv4 one, or its IPv6 one on an IPv6-only cluster."""
        return self.ip if self.ip is not None else self.ip6  # type: ignore[return-value]

    def ip_of(self, family: int) -> IPAddress | None:
        return self.ip if family == 4 else self.ip6


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
    pool6: IPv6Network | None = None
    # name -> node, made once: a 256-node run looks nodes up by name tens of thousands of times
    _by_name: dict[str, Node] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update((node.name, node) for node in reversed(self.nodes))  # the first of a name wins

    def node(self, name: str) -> Node:
        found = self._by_name.get(name)
        if found is not None:
            return found
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
