"""What a CNI other than Calico promises on the wire, per ordered node pair.

Each module here turns one CNI's configuration (the API objects as plain dicts)
into `CniDiscovery`: the nodes as that CNI sees them, and for every ordered pair
the wire format(s) its pod traffic must use and why. Pure: nothing here talks to
a cluster, so every default is tested as data.

The formats are vxcap's own small vocabulary (`Encap`), for `vxcap topology`; a cluster
run maps the discovery onto the run path's `Topology` instead (`core.cni.topology`, see docs/cni.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network

from vxcap.core.errors import InputError


class CniError(InputError):
    """The cluster's CNI configuration is missing or one vxcap cannot judge (one line)."""


class Cni(StrEnum):
    CALICO = "calico"
    FLANNEL = "flannel"
    CILIUM = "cilium"
    ANTREA = "antrea"


class Encap(StrEnum):
    """How a pod packet crosses the underlay."""

    PLAIN = "plain"
    VXLAN = "vxlan"
    GENEVE = "geneve"
    GRE = "gre"
    STT = "stt"
    WIREGUARD = "wireguard"


# A VNI that is not one number for the whole overlay but the sending pod's Cilium security
# identity (its CiliumEndpoint's status.identity.id): bound when the test pods exist.
VNI_SENDER_IDENTITY = "sender-identity"


@dataclass(frozen=True, slots=True)
class WireFormat:
    encap: Encap
    port: int | None = None  # UDP destination port (None: not UDP, or plain)
    vni: int | str | None = None  # a number, VNI_SENDER_IDENTITY, or None (no VNI)
    zero_udp_checksum: bool = False  # the outer UDP checksum must be 0 (Cilium's BPF_F_ZERO_CSUM_TX)
    device: str | None = None  # the tunnel device on the node, when the CNI names one

    def describe(self) -> str:
        if self.encap is Encap.PLAIN:
            return "plain"
        parts = [self.encap.value]
        if self.port is not None:
            parts.append(f"UDP {self.port}")
        if self.vni == VNI_SENDER_IDENTITY:
            parts.append("VNI = sender's identity")
        elif self.vni is not None:
            parts.append(f"VNI {self.vni}")
        if self.zero_udp_checksum:
            parts.append("UDP checksum 0")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class CniNode:
    name: str
    address: IPv4Address  # the underlay address the CNI tunnels to
    pod_cidr: IPv4Network | None = None
    vtep_mac: str | None = None
    vni: int | None = None  # what the node itself announces (Flannel's backend-data), when it does


@dataclass(frozen=True, slots=True)
class CniPath:
    """One ordered node pair. `expected` has two formats when a fact only the sending node
    holds decides between them (a route lookup, a transport subnet): `decided_by` names it."""

    src: str
    dst: str
    expected: tuple[WireFormat, ...]
    reason: str
    decided_by: str | None = None


@dataclass(frozen=True, slots=True)
class CniDiscovery:
    cni: Cni
    settings: dict[str, object]  # what was read, with defaults filled in: the JSON's "overlay"
    summary: str  # one line for the nodes table's title
    nodes: tuple[CniNode, ...]
    paths: tuple[CniPath, ...]
    notes: tuple[str, ...] = field(default=())
    source: str = ""  # where the configuration came from, e.g. "ConfigMap kube-system/kube-flannel-cfg"
