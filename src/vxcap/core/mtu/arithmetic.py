"""VXLAN MTU arithmetic: what fits, what it costs, what a too-big packet meets.

An MTU limits an IP packet, never the Ethernet frame around it. VXLAN carries
the pod's whole Ethernet frame as UDP payload, so what it costs against the
*underlay IP MTU* is

    inner Ethernet header  14   (the pod's frame, carried inside the tunnel)
    VXLAN header            8
    UDP header              8
    outer IPv4 header      20   (IPv6 underlay: 40)
                           --
                           50   (IPv6 underlay: 70)

An inner IP packet of 1450 bytes becomes an outer IP packet of
1450 + 14 + 8 + 8 + 20 = 1500 bytes: exactly an underlay MTU of 1500. The
outer Ethernet header (14) is on the wire too, so a capture on eth1 shows that
frame as 1514 bytes, but like every link header it does not count against the
MTU (neither does the 4-byte FCS, which a capture does not show). Both
Ethernet headers are 14 bytes, which is why "14 + 20 + 8 + 8 = 50" gives the
right number for the wrong reason: the 14 that counts is the inner one.

From the inner MTU follow the largest DF ICMP echo payload (MTU - 20 IPv4 -
8 ICMP = 1422 at 1450: `ping -M do -s 1422`) and the TCP MSS (MTU - 20 IPv4 -
20 TCP = 1410). Pod packets are IPv4 in vxcap's model; `inner_ip=6` is there
for the arithmetic only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from enum import StrEnum

from vxcap.core.encap import ENCAPS
from vxcap.core.errors import InputError
from vxcap.core.model import VXLAN_DEVICE, Wire

ETHERNET_HEADER = 14
ETHERNET_MIN_FRAME = 60  # 64 on the wire minus the FCS a capture does not show
IPV4_HEADER = 20
IPV6_HEADER = 40
UDP_HEADER = 8
VXLAN_HEADER = 8
ICMP_ECHO_HEADER = 8
TCP_HEADER = 20  # without options: what the MSS is defined against
MIN_IPV4_MTU = 68
MIN_IPV6_MTU = 1280
MAX_IP_PACKET = 65535

L4_HEADER = {"icmp": ICMP_ECHO_HEADER, "udp": UDP_HEADER, "tcp": TCP_HEADER}

# Where each setting lives. The pod's veth MTU and vxlan.calico's both come from
# the operator's Installation; manifest installs feed both from calico-config's veth_mtu.
VXLAN_MTU_FIELD = {4: "vxlanMTU", 6: "vxlanMTUV6"}
INSTALLATION_MTU_FIELD = "spec.calicoNetwork.mtu"


def ip_header_len(version: int) -> int:
    if version == 4:
        return IPV4_HEADER
    if version == 6:
        return IPV6_HEADER
    raise InputError(f"IP version {version!r} is not 4 or 6")


def check_mtu(mtu: int, what: str, version: int = 4) -> int:
    lowest = MIN_IPV4_MTU if version == 4 else MIN_IPV6_MTU
    if isinstance(mtu, bool) or not isinstance(mtu, int) or not lowest <= mtu <= MAX_IP_PACKET:
        raise InputError(f"{what} {mtu!r} is out of range ({lowest}..{MAX_IP_PACKET})")
    return mtu


def overhead_parts(underlay_ip: int = 4, wire: Wire = Wire.VXLAN) -> dict[str, int]:
    """What a format (VXLAN unless told) adds to an inner IP packet, every byte of it counted by
    the underlay MTU: core/encap.py's parts."""
    return dict(_parts(underlay_ip, wire))


@lru_cache(maxsize=64)
def _parts(underlay_ip: int, wire: Wire) -> tuple[tuple[str, int], ...]:
    # Asked about 18 times per judged direction, always the same few (wire, family): computed once each.
    ip_header_len(underlay_ip)
    encap = ENCAPS[wire]
    if underlay_ip not in encap.families and wire is not Wire.PLAIN:
        raise InputError(f"{encap.title} does not run over an IPv{underlay_ip} underlay")
    return tuple(encap.parts.get(underlay_ip, {}).items())


def vxlan_overhead(underlay_ip: int = 4) -> int:
    """50 on an IPv4 underlay, 70 on IPv6."""
    return sum(overhead_parts(underlay_ip).values())


def wire_overhead(wire: Wire, underlay_ip: int = 4) -> int:
    """VXLAN 50 / 70, IP-in-IP 20, WireGuard 60 / 80 (IPv4 / IPv6 underlay), plain 0: Felix's numbers."""
    return sum(value for _name, value in _parts(underlay_ip, wire))


def max_inner_mtu(underlay_mtu: int, wire: Wire = Wire.VXLAN, underlay_ip: int = 4) -> int:
    """The largest pod IP packet that crosses an underlay of `underlay_mtu` unfragmented."""
    check_mtu(underlay_mtu, "underlay MTU", underlay_ip)
    inner = underlay_mtu - wire_overhead(wire, underlay_ip)
    if inner < MIN_IPV4_MTU:
        raise InputError(f"underlay MTU {underlay_mtu} leaves {inner} bytes for pod packets: below {MIN_IPV4_MTU}")
    return inner


def max_icmp_payload(mtu: int, inner_ip: int = 4) -> int:
    """`ping -M do -s N`: the largest N whose echo request fits `mtu`."""
    return mtu - ip_header_len(inner_ip) - ICMP_ECHO_HEADER


def icmp_packet_len(payload: int, inner_ip: int = 4) -> int:
    return payload + ip_header_len(inner_ip) + ICMP_ECHO_HEADER


def tcp_mss(mtu: int, inner_ip: int = 4) -> int:
    return mtu - ip_header_len(inner_ip) - TCP_HEADER


def outer_packet_len(inner_packet: int, wire: Wire = Wire.VXLAN, underlay_ip: int = 4) -> int:
    """The IP packet the underlay carries for one pod packet: what its MTU is compared with."""
    return inner_packet + wire_overhead(wire, underlay_ip)


def frame_len(inner_packet: int, wire: Wire = Wire.VXLAN, underlay_ip: int = 4) -> int:
    """The frame a capture on the underlay shows (outer Ethernet header, no FCS, padded to 60)."""
    return max(ETHERNET_MIN_FRAME, ETHERNET_HEADER + outer_packet_len(inner_packet, wire, underlay_ip))


@dataclass(frozen=True, slots=True)
class HeaderShare:
    """How much of one captured frame is headers (and padding) rather than payload."""

    payload: int
    l4: str
    wire: Wire
    frame: int

    @property
    def header_bytes(self) -> int:
        return self.frame - self.payload

    @property
    def share(self) -> float:
        return self.header_bytes / self.frame


def header_share(payload: int, wire: Wire, l4: str = "tcp", underlay_ip: int = 4, inner_ip: int = 4) -> HeaderShare:
    if l4 not in L4_HEADER:
        raise InputError(f"layer-4 protocol {l4!r} is not one of {', '.join(L4_HEADER)}")
    if payload < 0:
        raise InputError(f"payload {payload} is negative")
    inner = payload + L4_HEADER[l4] + ip_header_len(inner_ip)
    return HeaderShare(payload, l4, wire, frame_len(inner, wire, underlay_ip))


class DfFate(StrEnum):
    """What happens to one DF pod packet, from the MTUs alone."""

    CROSSES = "crosses"
    REFUSED_LOCALLY = "refused-locally"  # EMSGSIZE in the pod: never on the wire
    FRAG_NEEDED = "frag-needed"  # the node refuses to forward it and answers ICMP 3/4
    OUTER_FRAGMENTED = "outer-fragmented"  # encapsulated, then the outer UDP packet is fragmented


@dataclass(frozen=True, slots=True)
class DfOutcome:
    packet: int  # the pod's IP packet
    wire: Wire
    fate: DfFate
    outer_packet: int  # what the underlay would carry
    outer_frame: int  # what a capture on the underlay would show
    limit: int | None  # the MTU that stops it
    stopped_at: str | None  # the interface with that MTU
    explanation: str


def df_outcome(
    packet: int,
    *,
    wire: Wire,
    pod_mtu: int | None,
    underlay_mtu: int,
    vxlan_mtu: int | None = None,
    underlay_ip: int = 4,
    pod_ifname: str = "eth0",
    vxlan_ifname: str = VXLAN_DEVICE,
    underlay_ifname: str = "eth1",
) -> DfOutcome:
    """The first MTU a DF pod packet of `packet` bytes meets on its way out, and what that does.

    Kernel behaviour as measured on Linux 6.x namespaces: a pod refuses locally
    (`ping: local error: message too long, mtu=1450`); a node answers ICMP
    fragmentation-needed when the next device's MTU is smaller; a VXLAN device
    (Calico's, `df unset`) fragments the *outer* packet rather than refuse it.
    """
    overhead = wire_overhead(wire, underlay_ip)
    outer = packet + overhead
    frame = max(ETHERNET_MIN_FRAME, ETHERNET_HEADER + outer)

    def outcome(fate: DfFate, limit: int | None, where: str | None, why: str) -> DfOutcome:
        return DfOutcome(packet, wire, fate, outer, frame, limit, where, why)

    if pod_mtu is not None and packet > pod_mtu:
        return outcome(
            DfFate.REFUSED_LOCALLY,
            pod_mtu,
            f"pod {pod_ifname}",
            f"{packet} > pod {pod_ifname} MTU {pod_mtu}: the pod's kernel refuses it (EMSGSIZE, "
            f"ping: 'local error: message too long, mtu={pod_mtu}'); nothing reaches the wire",
        )
    if wire is Wire.VXLAN and vxlan_mtu is not None and packet > vxlan_mtu:
        return outcome(
            DfFate.FRAG_NEEDED,
            vxlan_mtu,
            vxlan_ifname,
            f"{packet} > {vxlan_ifname} MTU {vxlan_mtu}: the node drops it and returns ICMP "
            f"fragmentation-needed (mtu {vxlan_mtu}) to the pod, which then refuses that size locally; "
            "where that ICMP is filtered the flow is black-holed",
        )
    if outer > underlay_mtu:
        if wire is Wire.VXLAN:
            return outcome(
                DfFate.OUTER_FRAGMENTED,
                underlay_mtu,
                underlay_ifname,
                f"encapsulated {packet} + {overhead} = {outer} > underlay {underlay_ifname} MTU {underlay_mtu}: "
                "the inner DF bit does not reach the outer header, so the node fragments the outer UDP packet; "
                "it is lost (black-holed) wherever fragments are dropped",
            )
        return outcome(
            DfFate.FRAG_NEEDED,
            underlay_mtu,
            underlay_ifname,
            f"{packet} > underlay {underlay_ifname} MTU {underlay_mtu}: the node drops it and returns ICMP "
            f"fragmentation-needed (mtu {underlay_mtu}) to the pod; where that ICMP is filtered the flow is black-holed",
        )
    return outcome(
        DfFate.CROSSES,
        None,
        None,
        f"{packet}" + (f" + {overhead} = {outer}" if overhead else "") + f" <= underlay MTU {underlay_mtu}: crosses",
    )


@dataclass(frozen=True, slots=True)
class PlainPathCost:
    """What a plain path loses by running at the overlay's pod MTU (CrossSubnet's one MTU for all)."""

    pod_mtu: int
    underlay_mtu: int
    unused: int  # bytes of every full-size packet
    mss: int
    possible_mss: int

    @property
    def payload_loss(self) -> float:
        """Share of TCP payload capacity per full-size packet left unused."""
        return (self.possible_mss - self.mss) / self.possible_mss


def plain_path_cost(pod_mtu: int, underlay_mtu: int, inner_ip: int = 4) -> PlainPathCost | None:
    if pod_mtu >= underlay_mtu:
        return None
    unused = underlay_mtu - pod_mtu
    return PlainPathCost(pod_mtu, underlay_mtu, unused, tcp_mss(pod_mtu, inner_ip), tcp_mss(underlay_mtu, inner_ip))


@dataclass(frozen=True, slots=True)
class Headroom:
    """Underlay MTU a pod MTU leaves unused, and what it could be."""

    pod_mtu: int
    underlay_mtu: int
    allowed_pod_mtu: int
    setting: str

    @property
    def unused(self) -> int:
        return self.allowed_pod_mtu - self.pod_mtu


def calico_mtu_setting(mtu: int | None = None, underlay_ip: int = 4, wire: Wire = Wire.VXLAN) -> str:
    """Where to set the overlay MTU: FelixConfiguration for the tunnel device (the format's own
    field: vxlanMTU[V6], ipipMTU, wireguardMTU[V6]), the Installation for pods too."""
    value = "" if mtu is None else f": {mtu}"
    field_name = ENCAPS[wire].mtu_fields.get(underlay_ip, VXLAN_MTU_FIELD[underlay_ip])
    return (
        f"{field_name}{value} in FelixConfiguration "
        f"or {INSTALLATION_MTU_FIELD}{value} in the operator Installation"
    )


def headroom(pod_mtu: int, underlay_mtu: int, wire: Wire = Wire.VXLAN, underlay_ip: int = 4) -> Headroom | None:
    """None when the pod MTU already uses what the underlay allows (or more)."""
    allowed = max_inner_mtu(underlay_mtu, wire, underlay_ip)
    if pod_mtu >= allowed:
        return None
    return Headroom(pod_mtu, underlay_mtu, allowed, calico_mtu_setting(allowed, underlay_ip, wire))
