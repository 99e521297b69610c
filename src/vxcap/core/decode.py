"""The reference decoder: scapy's dissection of one underlay frame into `FrameFacts`.

VXLAN is recognised by its header, never by scapy's port bindings: scapy binds
VXLAN to UDP 4789, 4790, 6633, 8472 and 48879 and `haslayer(VXLAN)` would let
any of them decide. We take the UDP payload as bytes and read it as VXLAN when
its I flag is set and an inner Ethernet/IPv4 frame follows, so a wrong port is
reported as a wrong port instead of going unseen.

The other formats of core/encap.py: IP-in-IP by the outer protocol number (4) and an IPv4
header inside; WireGuard by its message header (`encap.is_wireguard_message`), asked only of
UDP to a port the `Reading` names; IPv6 (underlay, pods, VXLAN over IPv6) only when the
`Reading` asks for it, else an IPv6 frame is None as before. For IPv6 the `inner_len` is the
whole packet (payload length + 40, what an MTU limits), `ip_proto` the first next header (an
extension header is not followed), and ICMPv6 echoes (128 / 129) read as echo types 8 / 0 so
delivery matches requests to replies the same way for either family.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror
from scapy.layers.inet6 import IPv6, ICMPv6EchoReply, ICMPv6EchoRequest
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether

from vxcap.core.encap import PROTO_IPIP, Reading, is_wireguard_message
from vxcap.core import geneve

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
_ETHERTYPE_IPV6 = 0x86DD
_DEFAULT_READING = Reading()
_V6_ECHO = {ICMPv6EchoRequest: 8, ICMPv6EchoReply: 0}


_ETHERTYPE_8021Q = 0x8100
_ETHERTYPE_8021AD = 0x88A8
_SLL_HEADER = {LINKTYPE_LINUX_SLL: (16, 14), LINKTYPE_LINUX_SLL2: (20, 0)}  # header length, protocol offset


def _after_ethertype(ethertype: int, payload: bytes, ipv6: bool = False) -> tuple[IP | IPv6, int] | None:
    """Through any 802.1Q / 802.1ad tags to an IPv4 (or, read, IPv6) header: (the header, the tags' bytes)."""
    tags = 0
    while ethertype in (_ETHERTYPE_8021Q, _ETHERTYPE_8021AD):
        if len(payload) < 4:
            return None
        ethertype = int.from_bytes(payload[2:4], "big")
        payload = payload[4:]
        tags += 4
    if ipv6 and ethertype == _ETHERTYPE_IPV6 and len(payload) >= 40 and payload[0] >> 4 == 6:
        return IPv6(payload), tags
    if ethertype != _ETHERTYPE_IPV4 or not payload:
        return None
    return IP(payload), tags


def _outer_ip(data: bytes, linktype: int, ipv6: bool = False) -> tuple[IP | IPv6, int] | None:
    if linktype == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return None
        return _after_ethertype(int.from_bytes(data[12:14], "big"), data[14:], ipv6)
    if linktype in _SLL_HEADER:
        # The cooked header's protocol field is an ethertype, except small values
        # (ETH_P_802_3 and friends) which are no Ethernet header at all.
        header_len, proto_at = _SLL_HEADER[linktype]
        if len(data) < header_len:
            return None
        return _after_ethertype(int.from_bytes(data[proto_at : proto_at + 2], "big"), data[header_len:], ipv6)
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4):
        if ipv6 and linktype == LINKTYPE_RAW and len(data) >= 40 and data[0] >> 4 == 6:
            return IPv6(data), 0
        if not data or data[0] >> 4 != 4:
            return None
        return IP(data), 0
    return None


def _is_fragment(ip: IP) -> bool:
    return bool(ip.flags.MF) or ip.frag != 0


def _syn_mss(tcp: TCP) -> int | None:
    """The MSS option of a SYN or SYN-ACK, when scapy read its value whole (IPv4 and IPv6 alike)."""
    if tcp.flags is not None and int(tcp.flags) & 0x02:
        for name, value in tcp.options or ():
            if name == "MSS" and isinstance(value, int):
                return value
    return None


def _l4_facts_v6(ip: IPv6) -> tuple[int | None, None, tuple[int, int, int] | None]:
    """What `_l4_facts` says, for an IPv6 packet whose first next header is TCP or ICMPv6 echo."""
    layer = ip.payload
    if isinstance(layer, TCP):
        return _syn_mss(layer), None, None
    echo_type = _V6_ECHO.get(type(layer))
    if echo_type is not None and layer.id is not None and layer.seq is not None:
        return None, None, (echo_type, layer.id, layer.seq)
    return None, None, None


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
        return _syn_mss(layer), None, None
    if isinstance(layer, ICMP):
        if layer.type == 3 and layer.code == 4:
            quoted = layer.payload
            return None, (layer.nexthopmtu, IPv4Address(quoted.dst) if isinstance(quoted, IPerror) else None), None
        if layer.type in (0, 8) and layer.id is not None and layer.seq is not None:
            return None, None, (layer.type, layer.id, layer.seq)
    return None, None, None


def _vxlan_inner(payload: bytes, ipv6: bool = False) -> tuple[int, Ether, IP | IPv6] | None:
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
    if ipv6 and isinstance(layer, IPv6) and layer.version == 6:
        # a whole fixed header, as the fast path asks (scapy would fill a cut one with defaults)
        tags, walk = 0, inner.payload
        while isinstance(walk, (Dot1Q, Dot1AD)):
            tags, walk = tags + 1, walk.payload
        return (vni, inner, layer) if len(payload) >= VXLAN_HEADER_LEN + 14 + 4 * tags + 40 else None
    if not isinstance(layer, IP) or layer.version != 4:
        return None
    return vni, inner, layer


def _geneve_inner(payload: bytes, ipv6: bool = False):
    """(header, inner Ethernet, inner IP) if `payload` is Geneve (version 0, protocol 0x6558, whole
    options) carrying an Ethernet frame with IPv4 (or, read, IPv6) in it; else None."""
    try:
        header, offset = geneve.parse(payload)
    except geneve.GeneveError:
        return None
    if header.protocol != geneve.ETHERNET:
        return None
    # the same inner reading as VXLAN's, from after the options
    found = _vxlan_inner(b"\x08" + bytes(VXLAN_HEADER_LEN - 1) + payload[offset:], ipv6)
    return None if found is None else (header, found[1], found[2])


def _inner_facts(ip: IP | IPv6) -> dict:
    """The innermost packet's fields, either family."""
    if isinstance(ip, IPv6):
        mss, frag_needed, echo = _l4_facts_v6(ip)
        src, dst, proto, length = IPv6Address(ip.src), IPv6Address(ip.dst), ip.nh, ip.plen + 40
    else:
        mss, frag_needed, echo = _l4_facts(ip)
        src, dst, proto, length = IPv4Address(ip.src), IPv4Address(ip.dst), ip.proto, ip.len
    return dict(
        src=src,
        dst=dst,
        ip_proto=proto,
        inner_len=length,
        tcp_mss=mss,
        frag_needed_mtu=frag_needed and frag_needed[0],
        frag_needed_dst=frag_needed and frag_needed[1],
        echo_type=echo and echo[0],
        echo_id=echo and echo[1],
        echo_seq=echo and echo[2],
    )


def _ipip_inner(outer: IP) -> IP | None:
    """The IPv4 packet an unfragmented (offset 0) IP-in-IP packet carries, read from the outer
    payload as the outer total length bounds it; fewer than 20 bytes or another version is none."""
    # `original`: the bytes scapy dissected the payload from, cut at the outer total length (bytes()
    # of the payload would add the padding after it)
    payload = getattr(outer.payload, "original", None) or b""
    if len(payload) < 20 or payload[0] >> 4 != 4:
        return None
    return IP(payload)


def decode_frame(
    data: bytes, linktype: int = LINKTYPE_ETHERNET, wire_len: int | None = None, reading: Reading = _DEFAULT_READING
) -> FrameFacts | None:
    """Facts about one frame, or None when it carries no IP the verdicts look at (IPv4, and
    IPv6 when `reading.ipv6`).

    Never raises on malformed input: a frame scapy cannot make sense of is None.
    """
    wire_len = len(data) if wire_len is None else wire_len
    try:
        found = _outer_ip(data, linktype, reading.ipv6)
    except Exception:  # scapy raises assorted errors on garbage; a bad frame is just not ours
        return None
    if found is None:
        return None
    outer, vlan_bytes = found
    v6 = isinstance(outer, IPv6)
    if not v6 and outer.version != 4:
        return None
    wire_len -= vlan_bytes  # tags are the switch port's, not the node's MTU
    address = IPv6Address if v6 else IPv4Address
    outer_src, outer_dst = address(outer.src), address(outer.dst)
    dst_mac = data[:6].hex(":") if linktype == LINKTYPE_ETHERNET else None
    # IPv6: a fragment header (44) right after the fixed header marks a fragment; DF is IPv4's alone.
    fragment = outer.nh == 44 if v6 else _is_fragment(outer)
    df = False if v6 else bool(outer.flags.DF)
    outer_facts = dict(outer_src=outer_src, outer_dst=outer_dst, wire_len=wire_len, outer_fragment=fragment,
                       outer_df=df, outer_dst_mac=dst_mac)
    proto = outer.nh if v6 else outer.proto
    unfragmented = not fragment if v6 else outer.frag == 0
    if proto == 17 and unfragmented and isinstance(outer.payload, UDP):
        udp = outer.payload
        payload = bytes(udp.payload)
        if udp.dport in reading.wireguard_ports and udp.len is not None:
            wg_type = is_wireguard_message(payload[:4], udp.len - 8)
            if wg_type is not None:
                # Encrypted: the pods are not on the wire; the frame belongs to the nodes' tunnel.
                return FrameFacts(encap=Wire.WIREGUARD, src=outer_src, dst=outer_dst, ip_proto=17,
                                  udp_sport=udp.sport, udp_dport=udp.dport, wg_type=wg_type,
                                  inner_len=outer.plen + 40 if v6 else outer.len, **outer_facts)
        if udp.dport in reading.geneve_ports:
            try:
                read = _geneve_inner(payload, reading.ipv6)
            except Exception:
                read = None
            if read is not None:
                header, inner_eth, inner_ip = read
                return FrameFacts(
                    encap=Wire.GENEVE, udp_sport=udp.sport, udp_dport=udp.dport, vni=header.vni,
                    inner_src_mac=inner_eth.src.lower(), inner_dst_mac=inner_eth.dst.lower(),
                    geneve_options=tuple((o.option_class, o.type, len(o.data)) for o in header.options),
                    **_inner_facts(inner_ip), **outer_facts,
                )
        try:
            found = _vxlan_inner(payload, reading.ipv6)
        except Exception:
            found = None
        if found is not None:
            vni, inner_eth, inner_ip = found
            return FrameFacts(
                encap=Wire.VXLAN,
                udp_sport=udp.sport,
                udp_dport=udp.dport,
                vni=vni,
                inner_src_mac=inner_eth.src.lower(),
                inner_dst_mac=inner_eth.dst.lower(),
                **_inner_facts(inner_ip),
                **outer_facts,
            )
    if proto == PROTO_IPIP and not v6 and unfragmented and outer.ihl >= 5:
        try:
            inner_ip = _ipip_inner(outer)
        except Exception:
            inner_ip = None
        if inner_ip is not None:
            return FrameFacts(encap=Wire.IPIP, **_inner_facts(inner_ip), **outer_facts)
    return FrameFacts(encap=Wire.PLAIN, **_inner_facts(outer), **outer_facts)
