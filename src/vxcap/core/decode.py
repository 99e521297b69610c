"""The reference decoder: scapy's dissection of one underlay frame into `FrameFacts`.

VXLAN is recognised by its header, never by scapy's port bindings: scapy binds
VXLAN to UDP 4789, 4790, 6633, 8472 and 48879 and `haslayer(VXLAN)` would let
any of them decide. We take the UDP payload as bytes and read it as VXLAN when
its I flag is set and an inner Ethernet/IPv4 frame follows, so a wrong port is
reported as a wrong port instead of going unseen.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether

from vxcap.core.frames import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    FrameFacts,
)
from vxcap.core.model import Wire

VXLAN_HEADER_LEN = 8
VXLAN_FLAG_I = 0x08
_ETHERTYPE_IPV4 = 0x0800


_ETHERTYPE_8021Q = 0x8100
_ETHERTYPE_8021AD = 0x88A8
_SLL_HEADER = {LINKTYPE_LINUX_SLL: (16, 14), LINKTYPE_LINUX_SLL2: (20, 0)}  # header length, protocol offset


def _after_ethertype(ethertype: int, payload: bytes) -> tuple[IP, int] | None:
    """Through any 802.1Q / 802.1ad tags to an IPv4 header: (the header, the tags' bytes)."""
    tags = 0
    while ethertype in (_ETHERTYPE_8021Q, _ETHERTYPE_8021AD):
        if len(payload) < 4:
            return None
        ethertype = int.from_bytes(payload[2:4], "big")
        payload = payload[4:]
        tags += 4
    if ethertype != _ETHERTYPE_IPV4 or not payload:
        return None
    return IP(payload), tags


def _outer_ip(data: bytes, linktype: int) -> tuple[IP, int] | None:
    if linktype == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return None
        return _after_ethertype(int.from_bytes(data[12:14], "big"), data[14:])
    if linktype in _SLL_HEADER:
        # The cooked header's protocol field is an ethertype, except small values
        # (ETH_P_802_3 and friends) which are no Ethernet header at all.
        header_len, proto_at = _SLL_HEADER[linktype]
        if len(data) < header_len:
            return None
        return _after_ethertype(int.from_bytes(data[proto_at : proto_at + 2], "big"), data[header_len:])
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4):
        if not data or data[0] >> 4 != 4:
            return None
        return IP(data), 0
    return None


def _is_fragment(ip: IP) -> bool:
    return bool(ip.flags.MF) or ip.frag != 0


def _l4_facts(ip: IP) -> tuple[int | None, tuple[int, IPv4Address | None] | None, tuple[int, int, int] | None]:
    """(MSS of a TCP SYN / SYN-ACK, (next-hop MTU, quoted destination) of an ICMP fragmentation-needed,
    ICMP echo (type, identifier, sequence)) as scapy dissects them.

    scapy binds TCP and ICMP only to an unfragmented offset, cuts the IP payload
    to the total length and leaves a header it cannot complete as Raw; an MSS
    option counts only when its value is whole (scapy's struct-sized value).
    """
    if ip.ihl is None or ip.ihl < 5:
        return None, None, None
    layer = ip.payload
    if isinstance(layer, TCP):
        if layer.flags is not None and int(layer.flags) & 0x02:
            for name, value in layer.options or ():
                if name == "MSS" and isinstance(value, int):
                    return value, None, None
        return None, None, None
    if isinstance(layer, ICMP):
        if layer.type == 3 and layer.code == 4:
            quoted = layer.payload
            return None, (layer.nexthopmtu, IPv4Address(quoted.dst) if isinstance(quoted, IPerror) else None), None
        if layer.type in (0, 8) and layer.id is not None and layer.seq is not None:
            return None, None, (layer.type, layer.id, layer.seq)
    return None, None, None


def _vxlan_inner(payload: bytes) -> tuple[int, Ether, IP] | None:
    """The VNI and inner frame, if `payload` is VXLAN (I flag, Ethernet, IPv4).

    The header is read as RFC 7348 lays it out (VNI in bytes 4-6), never through
    scapy's VXLAN class, which reads other flag combinations as longer GPE/GBP
    headers; reserved bits are ignored on receipt, as the RFC asks.
    """
    if len(payload) < VXLAN_HEADER_LEN + 14 + 20 or not payload[0] & VXLAN_FLAG_I:
        return None
    vni = int.from_bytes(payload[4:7], "big")
    inner = Ether(payload[VXLAN_HEADER_LEN:])
    layer = inner.payload
    while isinstance(layer, (Dot1Q, Dot1AD)):
        layer = layer.payload
    if not isinstance(layer, IP) or layer.version != 4:
        return None
    return vni, inner, layer


def decode_frame(data: bytes, linktype: int = LINKTYPE_ETHERNET, wire_len: int | None = None) -> FrameFacts | None:
    """Facts about one frame, or None when it carries no IPv4 the verdicts look at.

    Never raises on malformed input: a frame scapy cannot make sense of is None.
    """
    wire_len = len(data) if wire_len is None else wire_len
    try:
        found = _outer_ip(data, linktype)
    except Exception:  # scapy raises assorted errors on garbage; a bad frame is just not ours
        return None
    if found is None:
        return None
    outer, vlan_bytes = found
    if outer.version != 4:
        return None
    wire_len -= vlan_bytes  # tags are the switch port's, not the node's MTU
    outer_src, outer_dst = IPv4Address(outer.src), IPv4Address(outer.dst)
    dst_mac = data[:6].hex(":") if linktype == LINKTYPE_ETHERNET else None
    fragment = _is_fragment(outer)
    df = bool(outer.flags.DF)
    if outer.proto == 17 and outer.frag == 0 and isinstance(outer.payload, UDP):
        udp = outer.payload
        try:
            found = _vxlan_inner(bytes(udp.payload))
        except Exception:
            found = None
        if found is not None:
            vni, inner_eth, inner_ip = found
            mss, frag_needed, echo = _l4_facts(inner_ip)
            return FrameFacts(
                encap=Wire.VXLAN,
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
                vni=vni,
                inner_src_mac=inner_eth.src.lower(),
                inner_dst_mac=inner_eth.dst.lower(),
                inner_len=inner_ip.len,
                tcp_mss=mss,
                frag_needed_mtu=frag_needed and frag_needed[0],
                frag_needed_dst=frag_needed and frag_needed[1],
                echo_type=echo and echo[0],
                echo_id=echo and echo[1],
                echo_seq=echo and echo[2],
                outer_dst_mac=dst_mac,
            )
    mss, frag_needed, echo = _l4_facts(outer)
    return FrameFacts(
        encap=Wire.PLAIN,
        src=outer_src,
        dst=outer_dst,
        outer_src=outer_src,
        outer_dst=outer_dst,
        wire_len=wire_len,
        ip_proto=outer.proto,
        outer_fragment=fragment,
        outer_df=df,
        inner_len=outer.len,
        tcp_mss=mss,
        frag_needed_mtu=frag_needed and frag_needed[0],
        frag_needed_dst=frag_needed and frag_needed[1],
        echo_type=echo and echo[0],
        echo_id=echo and echo[1],
        echo_seq=echo and echo[2],
        outer_dst_mac=dst_mac,
    )
