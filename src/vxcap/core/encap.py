"""One model of an encapsulation: what a pod packet looks like on the underlay, as data.

The decoders (decode.py, fastdecode.py), the verdict, the MTU arithmetic, the capture
filters and the Wireshark lines all read an `Encap` from `ENCAPS` rather than each knowing
VXLAN its own way. Adding a format (Geneve, say) is one more entry here, a branch in each
decoder that recognises its header, and its BPF terms in core/capture.py.

Facts are Calico's (felix/dataplane/linux/int_dataplane.go: ipipMTUOverhead 20,
vxlanMTUOverhead 50, vxlanV6MTUOverhead 70, wireguardMTUOverhead 60, wireguardV6MTUOverhead 80;
felix/config/config_params.go: WireguardListeningPort 51820, WireguardListeningPortV6 51821,
interfaces wireguard.cali / wg-v6.cali; dataplanedefs: tunl0, vxlan.calico, vxlan-v6.calico).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from vxcap.core.model import (
    DEFAULT_GENEVE_PORT,
    DEFAULT_PORT,
    DEFAULT_WG_PORT,
    DEFAULT_WG_PORT_V6,
    IPIP_DEVICE,
    VXLAN_DEVICE,
    VXLAN_V6_DEVICE,
    WG_DEVICE,
    WG_V6_DEVICE,
    Topology,
    Wire,
)

IP_HEADER = MappingProxyType({4: 20, 6: 40})
PROTO_IPIP = 4
PROTO_UDP = 17

# WireGuard's messages (the protocol's paper, section 5.4): the first byte is the type,
# then three reserved zero bytes. Type 4 carries data; its header is 16 bytes
# (type, reserved, receiver index, counter) and the encrypted packet ends in a 16-byte tag.
WG_HANDSHAKE_INIT, WG_HANDSHAKE_RESPONSE, WG_COOKIE_REPLY, WG_TRANSPORT_DATA = 1, 2, 3, 4
WG_MESSAGE_LEN = MappingProxyType({1: 148, 2: 92, 3: 64})  # fixed lengths; type 4 is 32 + 16n
WG_DATA_MIN = 32


@dataclass(frozen=True, slots=True)
class Check:
    """One header field held against the expectation: `label` for reasons, the FlowTally
    counter that tallies what was seen, the Expectation attribute that says what must be."""

    label: str
    seen: str
    expected: str
    needs_known: bool = False  # an expectation value of None means "unknown": not checked, said so


@dataclass(frozen=True, slots=True)
class Encap:
    wire: Wire
    title: str  # as reasons and reports name it
    outer_proto: int | None  # the outer IP protocol that carries it (None: the pod packet itself)
    families: frozenset[int]  # underlay families Calico builds it on
    # IP bytes it adds to a pod packet, per underlay family, part by part (the outer IP header last)
    parts: Mapping[int, Mapping[str, int]] = field(default_factory=dict)
    inner_flow: bool = True  # pod addresses readable on the wire (WireGuard: encrypted, keyed by the nodes)
    checks: tuple[Check, ...] = ()
    devices: Mapping[int, str] = field(default_factory=dict)  # family -> the Calico device
    mtu_fields: Mapping[int, str] = field(default_factory=dict)  # family -> FelixConfiguration field
    default_ports: Mapping[int, int] = field(default_factory=dict)  # family -> UDP port, for UDP formats
    wireshark_dissector: str | None = None  # for `-d udp.port==P,<dissector>`
    wireshark_ports: frozenset[int] = frozenset()  # where Wireshark dissects it without being told
    wireshark_filter: str | None = None  # display-filter term that marks the format's frames

    def overhead(self, family: int = 4) -> int:
        return sum(self.parts.get(family, {}).values())

    def device(self, family: int = 4) -> str | None:
        return self.devices.get(family)


_OUTER_CHECKS = (Check("outer source", "outer_srcs", "outer_src"), Check("outer destination", "outer_dsts", "outer_dst"))
# VXLAN and Geneve carry the pod's Ethernet frame over UDP under a VNI: the same fields say the same things.
_ETHERNET_OVERLAY_CHECKS = (
    Check("UDP port", "udp_dports", "port"),
    Check("VNI", "vnis", "vni"),
    *_OUTER_CHECKS,
    Check("inner destination MAC", "inner_dst_macs", "inner_dst_mac", needs_known=True),
)


def _parts(*named: tuple[str, int]) -> Mapping[int, Mapping[str, int]]:
    return MappingProxyType({
        family: MappingProxyType({**dict(named), f"outer_ipv{family}": IP_HEADER[family]}) for family in (4, 6)
    })


PLAIN = Encap(Wire.PLAIN, "plain", None, frozenset({4, 6}), inner_flow=True)
VXLAN = Encap(
    Wire.VXLAN,
    "VXLAN",
    PROTO_UDP,
    frozenset({4, 6}),
    # The pod's Ethernet frame rides inside: the inner Ethernet header counts against the underlay MTU.
    parts=_parts(("inner_ethernet", 14), ("vxlan", 8), ("udp", 8)),
    checks=_ETHERNET_OVERLAY_CHECKS,
    devices=MappingProxyType({4: VXLAN_DEVICE, 6: VXLAN_V6_DEVICE}),
    mtu_fields=MappingProxyType({4: "vxlanMTU", 6: "vxlanMTUV6"}),
    default_ports=MappingProxyType({4: DEFAULT_PORT, 6: DEFAULT_PORT}),
    wireshark_dissector="vxlan",
    wireshark_ports=frozenset({DEFAULT_PORT}),
    wireshark_filter="vxlan",
)
IPIP = Encap(
    Wire.IPIP,
    "IP-in-IP",
    PROTO_IPIP,
    frozenset({4}),  # "IPIP is not supported on IPv6 pools" (api/pkg/apis/projectcalico/v3/ippool.go)
    parts=MappingProxyType({4: MappingProxyType({"outer_ipv4": 20})}),
    checks=_OUTER_CHECKS,
    devices=MappingProxyType({4: IPIP_DEVICE}),
    mtu_fields=MappingProxyType({4: "ipipMTU"}),
    wireshark_filter="ip.proto==4",
)
WIREGUARD = Encap(
    Wire.WIREGUARD,
    "WireGuard",
    PROTO_UDP,
    frozenset({4, 6}),
    # Felix's 60 / 80: outer IP + UDP 8 + the data message's 16-byte header + 16-byte tag.
    parts=_parts(("udp", 8), ("wireguard_header", 16), ("wireguard_tag", 16)),
    inner_flow=False,
    checks=(Check("UDP port", "udp_dports", "port"), *_OUTER_CHECKS),
    devices=MappingProxyType({4: WG_DEVICE, 6: WG_V6_DEVICE}),
    mtu_fields=MappingProxyType({4: "wireguardMTU", 6: "wireguardMTUV6"}),
    default_ports=MappingProxyType({4: DEFAULT_WG_PORT, 6: DEFAULT_WG_PORT_V6}),
    wireshark_dissector="wg",
    wireshark_ports=frozenset({DEFAULT_WG_PORT}),
    wireshark_filter="wg",
)

GENEVE = Encap(
    Wire.GENEVE,
    "Geneve",
    PROTO_UDP,
    frozenset({4, 6}),
    # RFC 8926: an 8-byte base header, then Opt Len × 4 option bytes (0..252), then the pod's Ethernet
    # frame (protocol 0x6558). Without options 50 over IPv4 / 70 over IPv6, like VXLAN; every option
    # adds its 4-byte header and data (Antrea sends none; Cilium none unless its DSR option is on), so
    # the parts here are the floor and a capture's options raise it (core/geneve.py reads them).
    parts=_parts(("inner_ethernet", 14), ("geneve", 8), ("udp", 8)),
    checks=_ETHERNET_OVERLAY_CHECKS,
    default_ports=MappingProxyType({4: DEFAULT_GENEVE_PORT, 6: DEFAULT_GENEVE_PORT}),
    wireshark_dissector="geneve",
    wireshark_ports=frozenset({DEFAULT_GENEVE_PORT}),
    wireshark_filter="geneve",
)

ENCAPS: Mapping[Wire, Encap] = MappingProxyType({e.wire: e for e in (PLAIN, VXLAN, IPIP, WIREGUARD, GENEVE)})


def encap(wire: Wire | str) -> Encap:
    return ENCAPS[Wire(wire)]


def is_wireguard_message(head: bytes | memoryview, length: int) -> int | None:
    """The message type of a WireGuard message, or None: `head` its first captured bytes,
    `length` the UDP header's length less 8 (a header-declared length, so a capture cut by
    its snap length still reads).

    Read as the protocol lays it out: a type byte of 1..4, three reserved zero bytes, and the
    type's length (fixed for the handshakes and the cookie, 32 + 16n for transport data).
    Only ever asked of payloads to a configured WireGuard port: on its own this is too weak a sign.
    """
    n = length
    if len(head) < 4 or head[1] or head[2] or head[3]:
        return None
    kind = head[0]
    if kind == WG_TRANSPORT_DATA:
        return kind if n >= WG_DATA_MIN and n % 16 == 0 else None
    return kind if WG_MESSAGE_LEN.get(kind) == n else None


@dataclass(frozen=True, slots=True)
class Reading:
    """What the decoders are told to look for beyond IPv4 VXLAN on the default port: the run's formats.

    The default reads as vxcap always did (VXLAN on 4789, IP-in-IP by its protocol number,
    IPv6 counted but not judged), so a run of an IPv4 VXLAN overlay decodes the same frames the same way.
    """

    vxlan_ports: frozenset[int] = frozenset({DEFAULT_PORT})
    wireguard_ports: frozenset[int] = frozenset()
    ipv6: bool = False  # judge IPv6 frames (the underlay or the pods), rather than only count them
    # UDP ports whose payload is read as Geneve (before VXLAN: a Geneve header with 8..15 words of
    # options has VXLAN's I bit set). Only the run's port and 6081: the header alone is too weak a sign.
    geneve_ports: frozenset[int] = frozenset()


def reading_for(topology: Topology) -> Reading:
    """What the decoders read for this overlay: VXLAN on its port, WireGuard on Felix's listening
    ports when it is on, IPv6 when there is an IPv6 pool or IPv6 WireGuard (IP-in-IP always)."""
    overlay = topology.overlay
    wireguard = {port for port, on in ((overlay.wireguard_port, overlay.wireguard),
                                       (overlay.wireguard_port6, overlay.wireguard6)) if on}
    # Felix's default port of each family it is off in, as Geneve's always: WireGuard where it is not promised
    # (turned on by an environment variable discovery cannot read, say) is then named, not "no packets seen".
    wireguard |= {port for port, on in ((DEFAULT_WG_PORT, overlay.wireguard), (DEFAULT_WG_PORT_V6, overlay.wireguard6))
                  if not on}
    geneve = overlay.encapsulation == Wire.GENEVE.value
    return Reading(vxlan_ports=frozenset({DEFAULT_PORT if geneve else overlay.port}),
                   wireguard_ports=frozenset(wireguard), ipv6=overlay.mode6 is not None or overlay.wireguard6,
                   # Geneve's own port always (and the overlay's, for a Geneve overlay): a Geneve tunnel where
                   # VXLAN or another port was promised is then named as Geneve, not as no packets at all
                   geneve_ports=frozenset({overlay.port, DEFAULT_GENEVE_PORT} if geneve else {DEFAULT_GENEVE_PORT}))
