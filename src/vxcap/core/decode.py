"""The reference decoder: scapy's dissection of one underlay frame into `FrameFacts`.

VXLAN is recognised by its header, never by scapy's port bindings: scapy binds
VXLAN to UDP 4789, 4790, 6633, 8472 and 48879 and `haslayer(VXLAN)` would let
any of them decide. We take the UDP payload as bytes and read it as VXLAN when
its I flag is set and an inner Ethernet/IPv4 frame follows, so a wrong port is
reported as a wrong port instead of going unseen.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import CookedLinux, Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet

try:  # scapy >= 2.5
    from scapy.layers.l2 import CookedLinuxV2
except ImportError:  # pragma: no cover
    CookedLinuxV2 = None

from vxcap.core.frames import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    Encap,
    FrameFacts,
)

VXLAN_HEADER_LEN = 8
VXLAN_FLAG_I = 0x08
_ETHERTYPE_IPV4 = 0x0800


def _outer_ip(data: bytes, linktype: int) -> IP | None:
    if linktype == LINKTYPE_ETHERNET:
        pkt: Packet = Ether(data)
    elif linktype == LINKTYPE_LINUX_SLL:
        pkt = CookedLinux(data)
    elif linktype == LINKTYPE_LINUX_SLL2 and CookedLinuxV2 is not None:
        pkt = CookedLinuxV2(data)
    elif linktype in (LINKTYPE_RAW, LINKTYPE_IPV4):
        if not data or data[0] >> 4 != 4:
            return None
        pkt = IP(data)
    else:
        return None
    # Through any 802.1Q / 802.1ad tags to the first IPv4 header.
    layer = pkt
    while layer is not None and not isinstance(layer, IP):
        if not isinstance(layer, (Ether, CookedLinux, Dot1Q, Dot1AD)) and not (
            CookedLinuxV2 is not None and isinstance(layer, CookedLinuxV2)
        ):
            return None
        layer = layer.payload if layer.payload else None
    return layer


def _is_fragment(ip: IP) -> bool:
    return bool(ip.flags.MF) or ip.frag != 0


def _vxlan_inner(payload: bytes) -> tuple[VXLAN, Ether, IP] | None:
    """The VXLAN header and inner frame, if `payload` is one (I flag, Ethernet, IPv4)."""
    if len(payload) < VXLAN_HEADER_LEN + 14 + 20 or not payload[0] & VXLAN_FLAG_I:
        return None
    header = VXLAN(payload[:VXLAN_HEADER_LEN])
    inner = Ether(payload[VXLAN_HEADER_LEN:])
    layer = inner.payload
    while isinstance(layer, (Dot1Q, Dot1AD)):
        layer = layer.payload
    if not isinstance(layer, IP) or layer.version != 4:
        return None
    return header, inner, layer


def decode_frame(data: bytes, linktype: int = LINKTYPE_ETHERNET, wire_len: int | None = None) -> FrameFacts | None:
    """Facts about one frame, or None when it carries no IPv4 the verdicts look at.

    Never raises on malformed input: a frame scapy cannot make sense of is None.
    """
    wire_len = len(data) if wire_len is None else wire_len
    try:
        outer = _outer_ip(data, linktype)
    except Exception:  # scapy raises assorted errors on garbage; a bad frame is just not ours
        return None
    if outer is None or outer.version != 4:
        return None
    outer_src, outer_dst = IPv4Address(outer.src), IPv4Address(outer.dst)
    fragment = _is_fragment(outer)
    df = bool(outer.flags.DF)
    if outer.proto == 17 and outer.frag == 0 and isinstance(outer.payload, UDP):
        udp = outer.payload
        try:
            found = _vxlan_inner(bytes(udp.payload))
        except Exception:
            found = None
        if found is not None:
            header, inner_eth, inner_ip = found
            return FrameFacts(
                encap=Encap.VXLAN,
                src=IPv4Address(inner_ip.src),
                dst=IPv4Address(inner_ip.dst),
                outer_src=outer_src,
                outer_dst=outer_dst,
                wire_len=wire_len,
                ip_proto=inner_ip.proto,
                outer_fragment=fragment,
                outer_df=df,
                udp_sport=udp.sport,
                udp_dport=udp.dport,
                vni=header.vni,
                inner_src_mac=inner_eth.src.lower(),
                inner_dst_mac=inner_eth.dst.lower(),
                inner_len=inner_ip.len,
            )
    return FrameFacts(
        encap=Encap.PLAIN,
        src=outer_src,
        dst=outer_dst,
        outer_src=outer_src,
        outer_dst=outer_dst,
        wire_len=wire_len,
        ip_proto=outer.proto,
        outer_fragment=fragment,
        outer_df=df,
        inner_len=outer.len,
    )
