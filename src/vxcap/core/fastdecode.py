"""The fast decoder: pcap/pcapng bytes in, per-flow tallies out, with no object per frame.

It says what `vxcap.core.decode.decode_frame` (scapy's dissection) says about
every frame, at a few hundred times its speed, so the verdict can read a whole
capture and keep scapy for the handful of sample frames it re-reads.

Everything is fed as byte chunks (`FastDecoder.feed`), so memory stays flat
however long the capture. Per frame the hot loop only unpacks a few fields at
fixed offsets and bumps a counter keyed by a tuple of ints; frames of uncommon
shape (tags, IP options, short or odd headers, other link types) go through
`classify`, which checks the bounds of every read.

One definition, copies for speed: `classify` is the classification. `ethernet_key` (its common
Ethernet shapes in a few unpacks), the hot loop `_pcap_records` (ethernet_key inlined: a call
per frame costs ~30%) and the compiled loop (_skim.c) are copies kept because they are faster,
and tests hold each to it so they cannot drift: tests/core/test_classify_copies.py compares
ethernet_key with classify frame by frame, and tests/core/test_fastdecode.py runs both loops,
Python and compiled, on generated captures against the scapy reference (decode.py).

Where this decoder deliberately differs from decode.py (see `classify`):
  * VXLAN flags with both G (0x80) and P (0x04) bits: scapy's VXLAN class
    reads an 11-byte header, fails, and the frame counts as plain; here it is
    VXLAN, as RFC 7348 says reserved bits are ignored on receipt.
  * Linux cooked captures (SLL, SLL2) with protocol 0x88a8: scapy's binding
    names a field SLL does not have, so the 802.1ad tag is not followed; here
    it is, as it is after Ethernet.
  * SLL/SLL2 protocol 1 is ETH_P_802_3 (Novell raw 802.3, no Ethernet header);
    scapy dissects an Ethernet header there, here it is not IPv4.

The formats beyond IPv4 VXLAN (core/encap.py) are read by `classify` alone, the copies handing
it such frames: IP-in-IP (outer protocol 4), WireGuard (UDP to a port the `Reading` names whose
first byte is 1..4) and, when the `Reading` asks for IPv6, IPv6 frames (the compiled loop stops
at them and the Python loop reads them). Their keys are the "general" shape below.

Three kinds of frame are counted without being judged, so a flow that is missing
can be explained: IPv6 frames (by ethertype, or version 6 on a raw link); VXLAN
to the caller's VXLAN ports that carries IPv6; and frames to those ports that
are not VXLAN as this decoder (and decode.py) reads it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from functools import lru_cache, partial
from struct import Struct

from vxcap.core import geneve
from vxcap.core.encap import PROTO_IPIP, Reading, is_wireguard_message

from vxcap.core.frames import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    FlowKey,
    FlowTally,
)
from vxcap.core.model import DEFAULT_PORT, Wire

try:  # the compiled pcap loop (setup.py builds it when a C compiler is there); the Python loop is the reference
    from vxcap.core._skim import tally as _TALLY
except ImportError:  # pragma: no cover - depends on the machine
    _TALLY = None

SUPPORTED_LINKTYPES = frozenset(
    {LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_LINUX_SLL2}
)
SAMPLE_FRAMES_PER_FLOW = 3
VXLAN_PORTS = frozenset({DEFAULT_PORT})

# A record or block longer than this is taken for corruption rather than waited
# for: it bounds the memory a damaged length field can make us hold.
MAX_RECORD = 1 << 24

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": "<",  # microseconds, little-endian
    b"\x4d\x3c\xb2\xa1": "<",  # nanoseconds
    b"\xa1\xb2\xc3\xd4": ">",
    b"\xa1\xb2\x3c\x4d": ">",
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_PCAPNG_BYTE_ORDER = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
_PCAP_HEADER_LEN = 24
_BLOCK_SHB, _BLOCK_IDB, _BLOCK_OPB, _BLOCK_SPB, _BLOCK_EPB = 0x0A0D0D0A, 1, 2, 3, 6

_ETH_IPV4, _ETH_8021Q, _ETH_8021AD, _ETH_IPV6 = 0x0800, 0x8100, 0x88A8, 0x86DD
_VXLAN_I = 0x08
_VXLAN_MIN = 8 + 14 + 20  # VXLAN header + inner Ethernet + inner IPv4 header
_FRAG_BITS = 0x3FFF  # MF flag and fragment offset
_MF = 0x2000
_OFFSET_BITS = 0x1FFF
_LOW32 = 0xFFFFFFFF

_U16 = Struct("!H").unpack_from
_U32 = Struct("!I").unpack_from
_PAIR = Struct("!Q").unpack_from  # IPv4 source and destination as one int: src << 32 | dst
# An ICMP echo's type, code, checksum, identifier and sequence as one int; masked with _ECHO_BITS
# to type << 56 | identifier << 16 | sequence (the key's echo field).
_ECHO = Struct("!Q").unpack_from
_ECHO_BITS = 0xFF00_0000_FFFF_FFFF  # the hot loops write it as a literal
# IPv4 header fields, from the version byte: version/IHL, total length, flags/offset, proto, src<<32|dst
_IPV4 = Struct("!BxHxxHxBxxQ").unpack_from
# Untagged Ethernet + 20-byte IPv4 header, from the frame start (destination MAC first).
_ETH_IPV4_HDR = Struct("!6s6xHBxHxxHxBxxQ").unpack_from
# UDP + VXLAN + inner Ethernet + inner IPv4 after a 20-byte outer header (frame offset 34 to 84):
# dport, VXLAN flags, VNI<<8|reserved, inner dst MAC, inner ethertype, inner version/IHL, inner total
# length, inner flags/offset, inner proto, inner src<<32|dst
_UDP_VXLAN = Struct("!2xH4xB3xI6s6xHBxH2xHxB2xQ").unpack_from


class DecodeError(ValueError):
    """The bytes are not a pcap/pcapng capture, or hold frames of a link type vxcap cannot read.

    The message is one line.
    """


@dataclass
class DecodeResult:
    """What one capture says, per flow (innermost IPv4 src -> dst)."""

    flows: dict[FlowKey, FlowTally]
    frames: int  # packet records read in full, of any protocol
    linktypes: set[int]
    truncated: bool = False  # the capture ends inside a record; every record before it counts
    problem: str | None = None  # why decoding stopped before the end (a damaged record), one line
    format: str = "pcap"  # "pcap" or "pcapng"
    ipv4_frames: int = 0  # frames tallied in `flows`
    # The first frames of each flow, as 0-based record indices in capture order: the
    # frames worth dissecting in full (scapy) to check the fast path: the sample frames.
    sample_frames: dict[FlowKey, list[int]] = field(default_factory=dict)
    ipv6_frames: int = 0  # not judged: vxcap reads IPv4 underlays
    # UDP destination port (of those the decoder was given) -> VXLAN frames to it carrying IPv6
    # pods: not judged either (vxcap reads IPv4 pods), tallied as plain UDP between the nodes.
    ipv6_in_vxlan: dict[int, int] = field(default_factory=dict)
    # UDP destination port (of those the decoder was given) -> frames to it that are not
    # VXLAN (see `classify`); they are tallied as plain UDP between the outer addresses.
    not_vxlan: dict[int, int] = field(default_factory=dict)
    # Where each sample frame is: 0-based record index -> (file offset of its pcap record or
    # pcapng block, link type), so a reader can seek to it rather than read from the start.
    frame_at: dict[int, tuple[int, int]] = field(default_factory=dict)
    # IPv4 frames of flows the caller does not judge (see FastDecoder's `judged`): counted, not kept.
    unjudged_frames: int = 0


# A frame's facts are reduced to a key of ints (bytes for the MACs), counted per key. A "pair" is
# src<<32|dst for IPv4, and _V6 | src<<128 | dst for IPv6 (above 64 bits, so never taken for IPv4):
#   plain: (src<<32|dst, MF+offset bits, proto, total length, wire length, MSS, frag-needed MTU, echo,
#           outer dst MAC)
#   plain UDP that is not VXLAN: the plain key + (UDP destination port,)
#   VXLAN carrying IPv6: the plain key + (UDP destination port, "ipv6") (counted, never judged)
#   IPv6: IPV6 (counted, never judged)
#   VXLAN: (inner src<<32|dst, outer src<<32|dst, UDP dport, VNI<<8|reserved, inner dst MAC,
#           outer MF+offset bits, inner proto, inner total length, wire length, MSS, frag-needed MTU, echo,
#           outer dst MAC)
# (MSS: of a TCP SYN / SYN-ACK; frag-needed: (next-hop MTU, quoted dst or None) of an ICMP 3/4;
# echo: ICMP type (8 or 0) << 56 | identifier << 16 | sequence, one int so an echo costs no tuple;
# else None. Outer dst MAC: the link header's destination (6 bytes), None on a link without one
# (SLL, raw IP): a frame flooded to a port is not a frame sent to that node.)
#   general (IP-in-IP; WireGuard; VXLAN where an IPv6 header is involved): the VXLAN key's 13 fields
#           (dport, VNI word and inner MAC None where the format has none) + (Wire value, WireGuard
#           message type or None); WireGuard's inner pair is the outer pair (the pods are encrypted).
# and each key holds [frames, [(index, file offset, link type) of its first frames]].

IPV6 = ("ipv6",)
_V6 = 1 << 256
_M128 = (1 << 128) - 1
_DEFAULT_READING = Reading()
_WIRE_VXLAN, _WIRE_IPIP, _WIRE_WG, _WIRE_GENEVE = "vxlan", "ipip", "wireguard", "geneve"
_INNER_IPV6 = "ipv6"  # the last field of a plain UDP key: VXLAN to that port, with IPv6 inside


def pair_key(src, dst) -> int:
    """The `pair` field of a fact key (see the key shapes) for two addresses of one family."""
    if src.version == 6:
        return _V6 | int(src) << 128 | int(dst)
    return int(src) << 32 | int(dst)


def _unjudged(pair: int, judged) -> bool:
    """Neither address of a key's pair (IPv4 or IPv6, see the key shapes) is judged."""
    if pair < 0x10000000000000000:
        return pair >> 32 not in judged and pair & _LOW32 not in judged
    return pair >> 128 & _M128 not in judged and pair & _M128 not in judged


def l4_facts(buf, q: int, end: int, ihl: int, total_len: int, proto: int):
    """(TCP SYN MSS, ICMP fragmentation-needed (next-hop MTU, quoted destination), ICMP echo
    (type << 56 | identifier << 16 | sequence)) of the unfragmented IPv4 packet at q, read as scapy does.

    The transport header is read within the captured bytes and the IP total length
    (unless that is shorter than the IP header, as TSO captures show it); a
    header cut short is no header, and an MSS counts only when its value is whole.
    """
    l4 = q + ihl
    stop = end if total_len < ihl else min(end, q + total_len)
    if proto == 6:
        if stop - l4 < 20 or not buf[l4 + 13] & 2:
            return None, None, None
        o = l4 + 20
        options_end = min(stop, o + max(((buf[l4 + 12] >> 4) - 5) * 4, 0))
        while o < options_end:
            kind = buf[o]
            if kind == 0:
                break
            if kind == 1:
                o += 1
                continue
            length = buf[o + 1] if o + 1 < options_end else 0
            if length < 2:
                length = 2  # scapy steps over a malformed length as if it were 2
            if kind == 2 and min(length, options_end - o) == 4:
                return _U16(buf, o + 2)[0], None, None
            o += length
        return None, None, None
    if proto == 1 and stop - l4 >= 8:
        icmp_type = buf[l4]
        if icmp_type == 3 and buf[l4 + 1] == 4:
            # scapy reads the quoted header as soon as its 20 bytes are there
            return None, (_U16(buf, l4 + 6)[0], _U32(buf, l4 + 24)[0] if stop - l4 >= 28 else None), None
        if icmp_type == 8 or icmp_type == 0:
            return None, None, _ECHO(buf, l4)[0] & _ECHO_BITS
    return None, None, None


def classify(buf, p: int, end: int, linktype: int, wire_len: int = 0, reading: Reading = _DEFAULT_READING):
    """The fact key of the frame in buf[p:end] (original length `wire_len`): IPV6 for an IPv6
    frame (unless `reading.ipv6`: then its key), None when it carries no IP the verdicts look at.

    Reads only inside [p, end), whatever the bytes say.
    """
    mac = None  # the outer destination MAC: only Ethernet has one
    if linktype == LINKTYPE_ETHERNET:
        if end - p < 14:
            return None
        ethertype = _U16(buf, p + 12)[0]
        mac = bytes(buf[p : p + 6])
        q = p + 14
    elif linktype == LINKTYPE_LINUX_SLL:
        if end - p < 16:
            return None
        ethertype = _U16(buf, p + 14)[0]
        q = p + 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        if end - p < 20:
            return None
        ethertype = _U16(buf, p)[0]
        q = p + 20
    elif linktype == LINKTYPE_RAW or linktype == LINKTYPE_IPV4:
        if linktype == LINKTYPE_RAW and end > p and buf[p] >> 4 == 6:
            return _ipv6_key(buf, p, end, wire_len, None, False, reading) if reading.ipv6 else IPV6
        ethertype = _ETH_IPV4
        q = p
    else:
        return None
    tagged_at = q
    while ethertype == _ETH_8021Q or ethertype == _ETH_8021AD:
        if end - q < 4:
            return None
        ethertype = _U16(buf, q + 2)[0]
        q += 4
    if ethertype != _ETH_IPV4:
        if ethertype != _ETH_IPV6:
            return None
        if reading.ipv6:
            return _ipv6_key(buf, q, end, wire_len - (q - tagged_at), mac, wire_len > end - p, reading)
        return IPV6
    # 802.1Q / 802.1ad tags are the switch's business, not the node's MTU: sizes count without them.
    # Whether the frame was cut (snap length) is the captured bytes against the original length, tags and all.
    partly_captured = wire_len > end - p
    wire_len -= q - tagged_at
    if end - q < 20:
        return None
    version_ihl, total_len, flags_frag, proto, pair = _IPV4(buf, q)
    if version_ihl >> 4 != 4:
        return None
    frag = flags_frag & _FRAG_BITS
    ihl = (version_ihl & 15) * 4
    if flags_frag & _OFFSET_BITS or ihl < 20:
        return (pair, frag, proto, total_len, wire_len, None, None, None, mac)
    if proto == PROTO_IPIP:
        # The inner IPv4 packet within the outer total length (all captured bytes when that is
        # shorter than the header, as TSO captures show it): fewer than 20 bytes is plain.
        stop = end if total_len < ihl else min(end, q + total_len)
        i = q + ihl
        if stop - i >= 20 and buf[i] >> 4 == 4:
            return _inner_key(buf, i, stop, pair, None, None, None, frag, wire_len, mac, _WIRE_IPIP, None)
    if proto != 17:
        return (pair, frag, proto, total_len, wire_len, *l4_facts(buf, q, end, ihl, total_len, proto), mac)
    plain = (pair, frag, proto, total_len, wire_len, None, None, None, mac)
    # The UDP header must fit in the IP payload (bounded by the total length,
    # unless that is shorter than the header, as TSO captures show it) ...
    udp = q + ihl
    payload_len = total_len - ihl
    if 0 <= payload_len < 8 or end - udp < 8:
        return plain
    # ... but the VXLAN frame is read to the end of the captured frame, as scapy does.
    # What is not VXLAN is plain, keyed with its port: "not VXLAN" is decode.py's reading
    # (an 8-byte header with the I flag, then Ethernet, any tags, IPv4), so a short header,
    # a clear I flag or an inner frame of another kind all count; reserved bits never do
    # (RFC 7348). Bytes that end before the inner IPv4 header tell nothing when the frame
    # is only partly here (cut by the snaplen, or a first fragment): that is plain, uncounted.
    dport = _U16(buf, udp + 2)[0]
    v = udp + 8
    key = _udp_tunnel_key(buf, udp, end, dport, pair, frag, total_len, wire_len, mac, reading)
    if key is not None:
        return key
    if end - v < _VXLAN_MIN:
        return plain if partly_captured or flags_frag & _MF else (*plain, dport)
    if not buf[v] & _VXLAN_I:
        return (*plain, dport)
    inner_type = _U16(buf, v + 20)[0]
    i = v + 22
    while inner_type == _ETH_8021Q or inner_type == _ETH_8021AD:
        if end - i < 4:
            return plain if partly_captured or flags_frag & _MF else (*plain, dport)
        inner_type = _U16(buf, i + 2)[0]
        i += 4
    if inner_type != _ETH_IPV4:
        if inner_type == _ETH_IPV6 and reading.ipv6:
            if end - i >= 40 and buf[i] >> 4 == 6:
                return _inner_key(buf, i, end, pair, dport, _U32(buf, v + 4)[0], bytes(buf[v + 8 : v + 14]), frag,
                                  wire_len, mac, _WIRE_VXLAN, None)
            return plain if partly_captured or flags_frag & _MF else (*plain, dport)
        # VXLAN it is, carrying IPv6 pods: counted as such, not as a malformed header.
        return (*plain, dport, _INNER_IPV6) if inner_type == _ETH_IPV6 else (*plain, dport)
    if end - i < 20:
        return plain if partly_captured or flags_frag & _MF else (*plain, dport)
    if buf[i] >> 4 != 4:
        return (*plain, dport)
    return _vxlan_key(buf, v, i, end, pair, dport, frag, wire_len, mac)


def _v6_echo(buf, l4: int, stop: int):
    """An ICMPv6 echo (128 request, 129 reply) as the echo field of an IPv4 one (types 8 / 0)."""
    if stop - l4 >= 8:
        kind = buf[l4]
        if kind == 128 or kind == 129:
            return (8 if kind == 128 else 0) << 56 | _U32(buf, l4 + 4)[0]
    return None


def _udp_tunnel_key(buf, udp: int, end: int, dport: int, pair: int, frag: int, total_len: int, wire_len: int, mac,
                    reading):
    """The key of a WireGuard message or a Geneve frame in the UDP datagram at `udp` (either outer
    family), on the ports `reading` gives them; None when it is neither (then VXLAN or plain UDP)."""
    v = udp + 8
    if dport in reading.wireguard_ports:
        wg_type = is_wireguard_message(bytes(buf[v : min(end, v + 4)]), _U16(buf, udp + 4)[0] - 8)
        if wg_type is not None:
            return (pair, pair, dport, None, None, frag, 17, total_len, wire_len, None, None, None, mac, _WIRE_WG,
                    wg_type)
    if dport in reading.geneve_ports:
        return _geneve_key(buf, v, end, pair, dport, frag, wire_len, mac, reading)
    return None


def _geneve_key(buf, v: int, end: int, pair: int, dport: int, frag: int, wire_len: int, mac, reading):
    """The key of a Geneve frame whose header is at v, or None when it is not one decode.py reads as
    Geneve (version 0, whole options, protocol 0x6558, Ethernet with a whole IPv4 / read IPv6 header)."""
    try:
        header, offset = geneve.parse(bytes(buf[v : min(end, v + geneve.BASE_LENGTH + geneve.MAX_OPTIONS_LENGTH)]))
    except geneve.GeneveError:
        return None
    g = v + offset
    if header.protocol != geneve.ETHERNET or end - g < 34:
        return None
    inner_type = _U16(buf, g + 12)[0]
    i = g + 14
    while inner_type == _ETH_8021Q or inner_type == _ETH_8021AD:
        if end - i < 4:
            return None
        inner_type = _U16(buf, i + 2)[0]
        i += 4
    if inner_type == _ETH_IPV4:
        whole = end - i >= 20 and buf[i] >> 4 == 4
    elif inner_type == _ETH_IPV6 and reading.ipv6:
        whole = end - i >= 40 and buf[i] >> 4 == 6
    else:
        whole = False
    if not whole:
        return None
    return _inner_key(buf, i, end, pair, dport, _U32(buf, v + 4)[0], bytes(buf[g : g + 6]), frag, wire_len, mac,
                      _WIRE_GENEVE, None)


def _inner_key(buf, i: int, end: int, outer_pair: int, dport, vni, inner_mac, frag: int, wire_len: int, mac,
               wire: str, wg_type):
    """The general key of an encapsulated packet whose innermost IP header (either family, whole) is at i."""
    mss = next_hop_mtu = echo = None
    if buf[i] >> 4 == 6:
        plen, nh = _U16(buf, i + 4)[0], buf[i + 6]
        inner_pair = _V6 | int.from_bytes(buf[i + 8 : i + 24], "big") << 128 | int.from_bytes(buf[i + 24 : i + 40], "big")
        inner_len, inner_proto = plen + 40, nh
        stop = min(end, i + inner_len)
        if nh == 6:
            mss = l4_facts(buf, i, end, 40, inner_len, 6)[0]
        elif nh == 58:
            echo = _v6_echo(buf, i + 40, stop)
    else:
        inner_version_ihl, inner_len, inner_flags_frag, inner_proto, inner_pair = _IPV4(buf, i)
        inner_ihl = (inner_version_ihl & 15) * 4
        if (inner_proto == 6 or inner_proto == 1) and inner_ihl >= 20 and not inner_flags_frag & _OFFSET_BITS:
            mss, next_hop_mtu, echo = l4_facts(buf, i, end, inner_ihl, inner_len, inner_proto)
    return (inner_pair, outer_pair, dport, vni, inner_mac, frag, inner_proto, inner_len, wire_len, mss, next_hop_mtu,
            echo, mac, wire, wg_type)


def _ipv6_key(buf, q: int, end: int, wire_len: int, mac, partly_captured: bool, reading: Reading):
    """The key of an IPv6 frame whose header starts at q (`reading.ipv6`). Extension headers are
    not followed: the first next header is the protocol, a fragment header (44) marks a fragment."""
    if end - q < 40 or buf[q] >> 4 != 6:
        return IPV6  # not a whole IPv6 header: counted, as before
    plen, nh = _U16(buf, q + 4)[0], buf[q + 6]
    pair = _V6 | int.from_bytes(buf[q + 8 : q + 24], "big") << 128 | int.from_bytes(buf[q + 24 : q + 40], "big")
    frag = 1 if nh == 44 else 0
    total_len = plen + 40
    stop = min(end, q + total_len)
    mss = echo = None
    if nh == 6:
        mss = l4_facts(buf, q, end, 40, total_len, 6)[0]
    elif nh == 58:
        echo = _v6_echo(buf, q + 40, stop)
    plain = (pair, frag, nh, total_len, wire_len, mss, None, echo, mac)
    if nh != 17:
        return plain
    udp = q + 40
    if plen < 8 or end - udp < 8:
        return plain
    dport = _U16(buf, udp + 2)[0]
    v = udp + 8
    key = _udp_tunnel_key(buf, udp, end, dport, pair, frag, total_len, wire_len, mac, reading)
    if key is not None:
        return key
    if end - v < _VXLAN_MIN:
        return plain if partly_captured else (*plain, dport)
    if not buf[v] & _VXLAN_I:
        return (*plain, dport)
    inner_type = _U16(buf, v + 20)[0]
    i = v + 22
    while inner_type == _ETH_8021Q or inner_type == _ETH_8021AD:
        if end - i < 4:
            return plain if partly_captured else (*plain, dport)
        inner_type = _U16(buf, i + 2)[0]
        i += 4
    if inner_type == _ETH_IPV6:
        whole = end - i >= 40 and buf[i] >> 4 == 6
    elif inner_type == _ETH_IPV4:
        whole = end - i >= 20 and buf[i] >> 4 == 4
    else:
        return (*plain, dport)
    if not whole:
        return plain if partly_captured and end - i < (40 if inner_type == _ETH_IPV6 else 20) else (*plain, dport)
    return _inner_key(buf, i, end, pair, dport, _U32(buf, v + 4)[0], bytes(buf[v + 8 : v + 14]), frag, wire_len,
                      mac, _WIRE_VXLAN, None)


def _vxlan_key(buf, v: int, i: int, end: int, outer_pair: int, dport: int, frag: int, wire_len: int, mac):
    inner_version_ihl, inner_len, inner_flags_frag, inner_proto, inner_pair = _IPV4(buf, i)
    inner_ihl = (inner_version_ihl & 15) * 4
    mss = next_hop_mtu = echo = None
    if (inner_proto == 6 or inner_proto == 1) and inner_ihl >= 20 and not inner_flags_frag & _OFFSET_BITS:
        mss, next_hop_mtu, echo = l4_facts(buf, i, end, inner_ihl, inner_len, inner_proto)
    return (
        inner_pair,
        outer_pair,
        dport,
        _U32(buf, v + 4)[0],
        bytes(buf[v + 8 : v + 14]),
        frag,
        inner_proto,
        inner_len,
        wire_len,
        mss,
        next_hop_mtu,
        echo,
        mac,
    )


def ethernet_key(buf, p: int, end: int, wire_len: int = 0, reading: Reading = _DEFAULT_READING):
    """`classify` for an Ethernet frame, in a few unpacks for the common shapes (untagged IPv4, ICMP/TCP/VXLAN).
    A copy for speed, held to `classify` by tests/core/test_classify_copies.py.

    The pcap loop inlines these same lines; constants are literals as global
    lookups cost more than the rest of a frame's work. TCP SYNs and ICMP
    fragmentation-needed, whose transport header matters, go through `classify`.
    """
    caplen = end - p
    if caplen < 34:  # Ethernet + IPv4 header
        return classify(buf, p, end, 1, wire_len, reading)
    dst_mac, ethertype, version_ihl, total_len, flags_frag, proto, pair = _ETH_IPV4_HDR(buf, p)
    if ethertype != 0x0800:
        if ethertype == 0x8100 or ethertype == 0x88A8:
            return classify(buf, p, end, 1, wire_len, reading)
        if ethertype == 0x86DD:
            return classify(buf, p, end, 1, wire_len, reading) if reading.ipv6 else IPV6
        return None  # ARP, LLDP, ...
    if version_ihl != 0x45:
        return classify(buf, p, end, 1, wire_len, reading)
    if flags_frag & 0x1FFF:
        return (pair, flags_frag & 0x3FFF, proto, total_len, wire_len, None, None, None, dst_mac)
    if proto == 4:  # IP-in-IP
        return classify(buf, p, end, 1, wire_len, reading)
    if proto != 17:
        if proto == 1 and caplen >= 42 and (total_len >= 28 or total_len < 20):  # a whole ICMP header
            icmp_type = buf[p + 34]
            if icmp_type == 8 or icmp_type == 0:
                return (pair, flags_frag & 0x3FFF, 1, total_len, wire_len, None, None,
                        _ECHO(buf, p + 34)[0] & 0xFF000000FFFFFFFF, dst_mac)
            if icmp_type == 3:
                return classify(buf, p, end, 1, wire_len, reading)
        elif proto == 6 and caplen >= 48 and buf[p + 47] & 2:
            return classify(buf, p, end, 1, wire_len, reading)
        return (pair, flags_frag & 0x3FFF, proto, total_len, wire_len, None, None, None, dst_mac)
    if caplen < 84 or 20 <= total_len < 28:  # 84: up to the inner IPv4 header's end
        return classify(buf, p, end, 1, wire_len, reading)
    dport, vflags, vni, mac, inner_type, inner_vihl, inner_len, inner_ff, inner_proto, inner_pair = _UDP_VXLAN(buf, p + 34)
    if dport in reading.geneve_ports:  # read as Geneve first (its options can set VXLAN's I bit), in classify
        return classify(buf, p, end, 1, wire_len, reading)
    if not vflags & 0x08:
        if 0 < vflags < 5:  # shaped like a WireGuard message: the port decides, in classify
            return classify(buf, p, end, 1, wire_len, reading)
        return (pair, flags_frag & 0x3FFF, 17, total_len, wire_len, None, None, None, dst_mac, dport)
    if inner_type == 0x0800 and inner_vihl >> 4 == 4:
        if (inner_proto == 6 or inner_proto == 1) and (
            inner_vihl != 0x45 or inner_ff & 0x1FFF or (inner_proto == 6 and caplen >= 98 and buf[p + 97] & 2)
        ):
            return classify(buf, p, end, 1, wire_len, reading)
        if inner_proto == 1 and caplen >= 92 and (inner_len >= 28 or inner_len < 20):
            icmp_type = buf[p + 84]
            if icmp_type == 8 or icmp_type == 0:
                return (inner_pair, pair, dport, vni, mac, flags_frag & 0x3FFF, 1, inner_len, wire_len, None, None,
                        _ECHO(buf, p + 84)[0] & 0xFF000000FFFFFFFF, dst_mac)
            if icmp_type == 3:
                return classify(buf, p, end, 1, wire_len, reading)
        return (inner_pair, pair, dport, vni, mac, flags_frag & 0x3FFF, inner_proto, inner_len, wire_len, None, None,
                None, dst_mac)
    return classify(buf, p, end, 1, wire_len, reading)


class _Pcapng:
    """Struct readers for one pcapng section's byte order."""

    def __init__(self, order: str) -> None:
        self.header = Struct(order + "II").unpack_from  # block type, total length
        self.u16 = Struct(order + "H").unpack_from
        self.u32 = Struct(order + "I").unpack_from
        self.epb = Struct(order + "I8xII").unpack_from  # interface, captured length, original length
        # an enhanced packet block's type, length, interface, captured and original length in one read
        self.epb_head = Struct(order + "III8xII").unpack_from
        self.opb = Struct(order + "H10xII").unpack_from
        self.idb = Struct(order + "H2xI").unpack_from  # link type, snaplen


_PCAPNG = {"<": _Pcapng("<"), ">": _Pcapng(">")}
_BYTE_ORDER_MAGIC = Struct("<I").unpack_from
_HEAD = 1 << 16  # bytes of a new chunk joined to an incomplete record left by the previous one


class FastDecoder:
    """Streaming pcap/pcapng decoder: `feed()` chunks in file order, then `close()`.

    Raises DecodeError (only) for input that is not a capture or frames of an
    unsupported link type; damage and truncation are reported in the result.
    """

    def __init__(
        self,
        samples_per_flow: int = SAMPLE_FRAMES_PER_FLOW,
        vxlan_ports: frozenset[int] = VXLAN_PORTS,
        judged: frozenset[int] | None = None,
        compiled: bool = True,
        reading: Reading | None = None,
    ) -> None:
        """`judged`: the IPv4 addresses (as ints) whose flows are kept in detail, the rest only
        counted (`DecodeResult.unjudged_frames`, and the per-port and IPv6 counts); None keeps
        every flow. A frame is judged when its innermost source or destination is one of them, so
        a busy node's thousands of other flows cost neither memory nor a dictionary entry."""
        self._samples_per_flow = samples_per_flow
        self._judged = judged
        # What to read beyond IPv4 VXLAN (core/encap.Reading): classify, and the copies that hand it
        # frames, are bound to it; the default reads as vxcap always did.
        reading = Reading(vxlan_ports=vxlan_ports) if reading is None else reading
        vxlan_ports = reading.vxlan_ports
        self._reading = reading
        plain_reading = not reading.wireguard_ports and not reading.ipv6 and not reading.geneve_ports
        self._classify = classify if plain_reading else partial(classify, reading=reading)
        self._eth_key = ethernet_key if plain_reading else partial(ethernet_key, reading=reading)
        # The compiled pcap loop (`_skim.tally`), when built and asked for: it counts the frames of
        # the common shapes as `_pcap_records` does and stops where that loop must read (`classify`).
        # False: Python alone, the reference the tests hold the compiled loop to.
        # IPv6 addresses are for the Python loop: the compiled one hands it every IPv6 frame.
        self._tally = _TALLY if compiled else None
        self._judged_bytes = _judged_bytes(judged or frozenset())
        self._raw: dict[bytes, list] = {}  # the compiled loop's: a frame's facts as bytes -> its entry in _agg
        self._unjudged = 0
        self._last_linktype = LINKTYPE_ETHERNET  # of the pcapng packet `_count` is handed
        self._port_counts: dict[tuple, int] = {}  # (port,) or (port, "ipv6") of unjudged frames -> count
        self._vxlan_ports = vxlan_ports  # where frames that are not VXLAN are counted (DecodeResult.not_vxlan)
        self._ports_bytes = b"".join(p.to_bytes(2, "big") for p in sorted(vxlan_ports) if 0 <= p < 2**16)
        self._pending = b""  # the start of a record the next chunk completes
        self._pending_at = 0  # its file offset
        self._base = 0  # file offset of the buffer being decoded, for messages
        self._format: str | None = None
        self._stopped = False  # a damaged record: the rest of the input is ignored
        self._problem: str | None = None
        self._agg: dict[tuple, list] = {}
        self._frames = 0
        self._linktypes: set[int] = set()
        self._pcap_order = "<"
        self._pcap_linktype = LINKTYPE_ETHERNET
        self._ng = _PCAPNG["<"]  # the current section's byte order ...
        self._ng_interfaces: list[tuple[int, int]] = []  # ... and its interfaces' (link type, snaplen)

    # -- input -------------------------------------------------------------

    def feed(self, chunk) -> None:
        """Decode the next bytes of the capture (bytes, bytearray or memoryview; not kept after the call)."""
        if self._stopped or not len(chunk):
            return
        pending = self._pending
        chunk_at = self._pending_at + len(pending)
        pos = 0
        if pending:
            # Finish the record cut by the previous chunk's end on a small joined
            # buffer, then go on in `chunk` itself: no copy of the whole chunk.
            joined = pending + bytes(chunk[:_HEAD])
            used = self._consume(joined, 0, self._pending_at)
            if used < len(pending) and len(chunk) > _HEAD:  # a record longer than _HEAD
                joined = pending + bytes(chunk)
                used = self._consume(joined, 0, self._pending_at)
            pos = used - len(pending)
            if self._stopped:
                return
            if pos < 0 or len(chunk) <= _HEAD:
                self._pending, self._pending_at = joined[used:], self._pending_at + used
                return
        used = self._consume(chunk, pos, chunk_at)
        self._pending, self._pending_at = bytes(chunk[used:]), chunk_at + used

    def close(self) -> DecodeResult:
        if self._format is None:
            if not self._pending:
                raise DecodeError("empty file: not a pcap or pcapng capture")
            raise DecodeError("not a pcap or pcapng capture (too short for a file header)")
        truncated = bool(self._pending) and not self._stopped
        flows, sample_frames, frame_at, tallied, ipv6_frames, not_vxlan, ipv6_in_vxlan = self._flows()
        return DecodeResult(
            flows=flows,
            frames=self._frames,
            linktypes=set(self._linktypes),
            truncated=truncated,
            problem=self._problem,
            format=self._format,
            ipv4_frames=tallied,
            sample_frames=sample_frames,
            ipv6_frames=ipv6_frames,
            not_vxlan=not_vxlan,
            ipv6_in_vxlan=ipv6_in_vxlan,
            frame_at=frame_at,
            unjudged_frames=self._unjudged,
        )

    def _consume(self, buf, off: int, base: int) -> int:
        """Decode every complete record in buf from `off` (file offset `base` + off); where decoding stopped."""
        self._base = base
        if self._format is None:
            off = self._start(buf, off)
            if self._format is None:
                return off
        if self._format == "pcap":
            return self._pcap_records(buf, off)
        return self._pcapng_blocks(buf, off)

    def _start(self, buf, off: int) -> int:
        magic = bytes(buf[off : off + 4])
        if len(magic) < 4:
            return off
        if magic in _PCAP_MAGIC:
            if len(buf) - off < _PCAP_HEADER_LEN:
                return off
            order = _PCAP_MAGIC[magic]
            linktype = Struct(order + "20xI").unpack_from(buf, off)[0] & 0xFFFF  # upper bits: FCS info
            if linktype not in SUPPORTED_LINKTYPES:
                raise DecodeError(f"pcap link type {linktype} is not supported (Ethernet, Linux SLL/SLL2 or raw IPv4)")
            self._format, self._pcap_order, self._pcap_linktype = "pcap", order, linktype
            self._linktypes.add(linktype)
            return off + _PCAP_HEADER_LEN
        if magic == _PCAPNG_SHB:
            if len(buf) - off < 12:
                return off
            if bytes(buf[off + 8 : off + 12]) not in _PCAPNG_BYTE_ORDER:
                raise DecodeError("not a pcapng capture (bad byte-order magic in the section header)")
            self._format = "pcapng"
            return off
        raise DecodeError(f"not a pcap or pcapng capture (starts with {magic.hex()})")

    def _stop(self, problem: str) -> None:
        self._stopped = True
        self._problem = problem

    def _count(self, key, at: int) -> None:
        idx = self._frames
        self._frames = idx + 1
        if key is None:
            return
        judged = self._judged
        if judged is not None and len(key) != 1 and _unjudged(key[0], judged):
            self._count_unjudged(key)
            return
        tally = self._agg.get(key)
        if tally is None:
            self._agg[key] = [1, [(idx, at, self._last_linktype)]]
        else:
            tally[0] += 1
            if tally[0] <= self._samples_per_flow:
                tally[1].append((idx, at, self._last_linktype))

    def _count_unjudged(self, key) -> None:
        """A frame of a flow nobody judges: only what the warnings need (its port, when it went to a VXLAN port)."""
        self._unjudged += 1
        if 9 < len(key) < 13:  # plain UDP with its port (VXLAN keys are 13 long)
            port = key[9:]
            self._port_counts[port] = self._port_counts.get(port, 0) + 1

    # -- classic pcap --------------------------------------------------------

    def _pcap_records(self, buf, off: int) -> int:
        # The hot loop. ethernet_key and _count are inlined and everything is a
        # local or a literal: a call or a global lookup per frame costs ~30%. A copy of
        # the classification, held to the reference by test_fastdecode's generated captures.
        n = len(buf)
        linktype = self._pcap_linktype
        record = Struct(self._pcap_order + "8xII").unpack_from
        eth_ipv4 = _ETH_IPV4_HDR
        udp_vxlan = _UDP_VXLAN
        echo = _ECHO
        slow = self._classify
        ipv6 = IPV6
        read_v6 = self._reading.ipv6
        geneve_ports = self._reading.geneve_ports
        agg = self._agg
        get = agg.get
        nev = self._samples_per_flow
        idx = self._frames
        ethernet = linktype == LINKTYPE_ETHERNET
        judged = self._judged
        unjudged = self._count_unjudged
        skipped = 0  # unjudged frames counted here rather than by `unjudged`
        ports = self._vxlan_ports
        base = self._base
        compiled = self._tally if ethernet else None
        big_endian = self._pcap_order == ">"
        judged_bytes, ports_bytes, has_judged = self._judged_bytes, self._ports_bytes, judged is not None
        while off + 16 <= n:
            if compiled is not None:
                # Everything of the common shapes, counted in C; the record it stops at is read below.
                off, idx, unjudged_there = compiled(buf, off, n, big_endian, judged_bytes, has_judged, ports_bytes,
                                                    agg, self._raw, nev, idx, base, linktype,
                                                    None if read_v6 else ipv6, slow, unjudged)
                skipped += unjudged_there
                if off + 16 > n:
                    break
            caplen, wire_len = record(buf, off)
            at = off
            p = off + 16
            end = p + caplen
            if end > n:
                if caplen > MAX_RECORD:
                    self._frames = idx
                    self._unjudged += skipped
                    self._stop(f"damaged record at byte {self._base + off}: claims {caplen} bytes")
                    return n
                break
            off = end
            if not ethernet or caplen < 34:
                key = slow(buf, p, end, linktype, wire_len)
            else:
                dst_mac, ethertype, version_ihl, total_len, flags_frag, proto, pair = eth_ipv4(buf, p)
                if ethertype != 0x0800:
                    if ethertype == 0x8100 or ethertype == 0x88A8:
                        key = slow(buf, p, end, 1, wire_len)
                    elif ethertype == 0x86DD:
                        key = slow(buf, p, end, 1, wire_len) if read_v6 else ipv6
                    else:
                        idx += 1
                        continue
                elif version_ihl != 0x45 or (proto == 4 and not flags_frag & 0x1FFF):  # options; IP-in-IP
                    key = slow(buf, p, end, 1, wire_len)
                elif proto != 17 or flags_frag & 0x1FFF:
                    # Plain, keyed by this pair whatever the transport says: an unjudged one costs no key.
                    if judged is not None and pair >> 32 not in judged and pair & 0xFFFFFFFF not in judged:
                        skipped += 1
                        idx += 1
                        continue
                    key = (pair, flags_frag & 0x3FFF, proto, total_len, wire_len, None, None, None, dst_mac)
                    if flags_frag & 0x1FFF:  # a fragment: no transport header to read
                        pass
                    elif proto == 1:
                        if caplen >= 42 and (total_len >= 28 or total_len < 20):  # a whole ICMP header
                            icmp_type = buf[p + 34]
                            if icmp_type == 8 or icmp_type == 0:
                                key = (pair, flags_frag & 0x3FFF, 1, total_len, wire_len, None, None,
                                       echo(buf, p + 34)[0] & 0xFF000000FFFFFFFF, dst_mac)
                            elif icmp_type == 3:
                                key = slow(buf, p, end, 1, wire_len)
                    elif proto == 6 and caplen >= 48 and buf[p + 47] & 2:
                        key = slow(buf, p, end, 1, wire_len)
                elif caplen < 84 or 20 <= total_len < 28:
                    # Too short for VXLAN with IPv4 inside: plain, keyed by this pair, with its UDP port
                    # only when that is one of ours (unjudged, nothing else of it is counted).
                    if (judged is not None and pair >> 32 not in judged and pair & 0xFFFFFFFF not in judged
                            and (caplen < 42 or (buf[p + 36] << 8 | buf[p + 37]) not in ports)):
                        skipped += 1
                        idx += 1
                        continue
                    key = slow(buf, p, end, 1, wire_len)
                else:
                    (dport, vflags, vni, mac, inner_type, inner_vihl, inner_len, inner_ff, inner_proto,
                     inner_pair) = udp_vxlan(buf, p + 34)
                    if dport in geneve_ports:  # read as Geneve first, in classify
                        key = slow(buf, p, end, 1, wire_len)
                    elif not vflags & 0x08:
                        if 0 < vflags < 5:  # shaped like a WireGuard message: the port decides, in classify
                            key = slow(buf, p, end, 1, wire_len)
                        else:
                            key = (pair, flags_frag & 0x3FFF, 17, total_len, wire_len, None, None, None, dst_mac,
                                   dport)
                    elif inner_type == 0x0800 and inner_vihl >> 4 == 4:
                        # VXLAN keyed by the inner pair, on every path below: an unjudged one costs no key.
                        if (judged is not None and inner_pair >> 32 not in judged
                                and inner_pair & 0xFFFFFFFF not in judged):
                            skipped += 1
                            idx += 1
                            continue
                        key = (inner_pair, pair, dport, vni, mac, flags_frag & 0x3FFF, inner_proto, inner_len,
                               wire_len, None, None, None, dst_mac)
                        if inner_proto == 1:
                            if inner_vihl != 0x45 or inner_ff & 0x1FFF:
                                key = slow(buf, p, end, 1, wire_len)
                            elif caplen >= 92 and (inner_len >= 28 or inner_len < 20):
                                icmp_type = buf[p + 84]
                                if icmp_type == 8 or icmp_type == 0:
                                    key = (inner_pair, pair, dport, vni, mac, flags_frag & 0x3FFF, 1, inner_len,
                                           wire_len, None, None, echo(buf, p + 84)[0] & 0xFF000000FFFFFFFF,
                                           dst_mac)
                                elif icmp_type == 3:
                                    key = slow(buf, p, end, 1, wire_len)
                        elif inner_proto == 6 and (
                            inner_vihl != 0x45 or inner_ff & 0x1FFF or (caplen >= 98 and buf[p + 97] & 2)
                        ):
                            key = slow(buf, p, end, 1, wire_len)
                    else:
                        key = slow(buf, p, end, 1, wire_len)
            if key is not None:
                if judged is not None and len(key) != 1:
                    pair = key[0]
                    if (pair >> 32 not in judged and pair & 0xFFFFFFFF not in judged if pair < 0x10000000000000000
                            else _unjudged(pair, judged)):
                        unjudged(key)
                        idx += 1
                        continue
                tally = get(key)
                if tally is None:
                    agg[key] = [1, [(idx, base + at, linktype)]]
                else:
                    count = tally[0] + 1
                    tally[0] = count
                    if count <= nev:
                        tally[1].append((idx, base + at, linktype))
            idx += 1
        self._frames = idx
        self._unjudged += skipped
        return off

    # -- pcapng ----------------------------------------------------------------

    def _pcapng_blocks(self, buf, off: int) -> int:
        # The hot loop handles enhanced packet blocks of described interfaces;
        # every other block (and any damage) goes through _block.
        n = len(buf)
        ng = self._ng
        epb_head, u32 = ng.epb_head, ng.u32
        linktypes = [linktype for linktype, _ in self._ng_interfaces]
        agg = self._agg
        get = agg.get
        nev = self._samples_per_flow
        idx = self._frames
        eth_key = self._eth_key
        slow = self._classify
        known = self._linktypes  # link types already checked as supported
        judged = self._judged
        unjudged = self._count_unjudged
        base = self._base
        while off + 28 <= n:
            block_type, block_len, interface, caplen, wire_len = epb_head(buf, off)
            end = off + block_len
            if (
                block_type != 6
                or block_len & 3
                or not 32 <= block_len <= MAX_RECORD
                or end > n
                or interface >= len(linktypes)
                or linktypes[interface] not in known
                or u32(buf, end - 4)[0] != block_len
            ):
                self._frames = idx
                used = self._block(buf, off, n)
                if used is None:
                    return n
                if not used:
                    return off
                off += used
                idx = self._frames
                ng = self._ng
                epb_head, u32 = ng.epb_head, ng.u32
                linktypes = [linktype for linktype, _ in self._ng_interfaces]
                continue
            p = off + 28
            at = off
            off = end
            linktype = linktypes[interface]
            if caplen > block_len - 32:
                caplen = block_len - 32
            if linktype == 1:
                key = eth_key(buf, p, p + caplen, wire_len)
            else:
                key = slow(buf, p, p + caplen, linktype, wire_len)
            if key is not None:
                if judged is not None and len(key) != 1:
                    pair = key[0]
                    if (pair >> 32 not in judged and pair & 0xFFFFFFFF not in judged if pair < 0x10000000000000000
                            else _unjudged(pair, judged)):
                        unjudged(key)
                        idx += 1
                        continue
                tally = get(key)
                if tally is None:
                    agg[key] = [1, [(idx, base + at, linktype)]]
                else:
                    count = tally[0] + 1
                    tally[0] = count
                    if count <= nev:
                        tally[1].append((idx, base + at, linktype))
            idx += 1
        self._frames = idx
        if off + 12 <= n:  # a block shorter than an enhanced packet block's head
            used = self._block(buf, off, n)
            if used is None:
                return n
            if used:
                return self._pcapng_blocks(buf, off + used)
        return off

    def _block(self, buf, off: int, n: int) -> int | None:
        """Decode the block at off: its length, 0 if it is not all in buf yet, None if it is damaged."""
        if _BYTE_ORDER_MAGIC(buf, off)[0] == _BLOCK_SHB:  # reads the same in either byte order
            if off + 12 > n:
                return 0
            magic = _BYTE_ORDER_MAGIC(buf, off + 8)[0]
            if magic not in (0x1A2B3C4D, 0x4D3C2B1A):
                self._stop(f"damaged pcapng section header at byte {self._base + off}")
                return None
            self._ng = _PCAPNG["<" if magic == 0x1A2B3C4D else ">"]
        ng = self._ng
        block_type, block_len = ng.header(buf, off)
        if block_len < 12 or block_len % 4 or block_len > MAX_RECORD:
            self._stop(f"damaged pcapng block at byte {self._base + off}: length {block_len}")
            return None
        if off + block_len > n:
            return 0
        if ng.u32(buf, off + block_len - 4)[0] != block_len:
            self._stop(f"damaged pcapng block at byte {self._base + off}: trailing length differs")
            return None
        if block_type == _BLOCK_EPB or block_type == _BLOCK_OPB:
            if block_len < 32:
                self._stop(f"damaged pcapng packet block at byte {self._base + off}")
                return None
            interface, caplen, wire_len = (ng.epb if block_type == _BLOCK_EPB else ng.opb)(buf, off + 8)
            self._packet(buf, off + 28, min(caplen, block_len - 32), wire_len, interface, self._base + off)
        elif block_type == _BLOCK_SPB:
            if block_len < 16:
                self._stop(f"damaged pcapng packet block at byte {self._base + off}")
                return None
            if self._ng_interfaces:
                wire_len = ng.u32(buf, off + 8)[0]
                snaplen = self._ng_interfaces[0][1]
                self._packet(buf, off + 12, min(wire_len, block_len - 16, snaplen or wire_len), wire_len, 0, self._base + off)
        elif block_type == _BLOCK_IDB:
            if block_len < 20:
                self._stop(f"damaged pcapng interface block at byte {self._base + off}")
                return None
            self._ng_interfaces.append(ng.idb(buf, off + 8))
        elif block_type == _BLOCK_SHB:
            if block_len < 28 or ng.u16(buf, off + 12)[0] != 1:
                self._stop(f"unsupported pcapng section header at byte {self._base + off}")
                return None
            self._ng_interfaces = []
        return block_len

    def _packet(self, buf, p: int, caplen: int, wire_len: int, interface: int, at: int) -> None:
        if interface >= len(self._ng_interfaces):
            return  # a packet of an interface never described: scapy skips it too
        linktype = self._ng_interfaces[interface][0]
        if linktype not in self._linktypes:
            if linktype not in SUPPORTED_LINKTYPES:
                raise DecodeError(
                    f"pcapng interface {interface} has link type {linktype}, which is not supported "
                    "(Ethernet, Linux SLL/SLL2 or raw IPv4)"
                )
            self._linktypes.add(linktype)
        end = p + caplen
        self._last_linktype = linktype
        if linktype == LINKTYPE_ETHERNET:
            self._count(self._eth_key(buf, p, end, wire_len), at)
        else:
            self._count(self._classify(buf, p, end, linktype, wire_len), at)

    # -- output --------------------------------------------------------------

    def _flows(
        self,
    ) -> tuple[
        dict[FlowKey, FlowTally],
        dict[FlowKey, list[int]],
        dict[int, tuple[int, int]],
        int,
        int,
        dict[int, int],
        dict[int, int],
    ]:
        flows: dict[FlowKey, FlowTally] = {}
        ipv6_frames = 0
        not_vxlan: dict[int, int] = {}
        ipv6_in_vxlan: dict[int, int] = {}
        ports = self._vxlan_ports
        for port_key, count in self._port_counts.items():
            if port_key[0] in ports:
                counts = not_vxlan if len(port_key) == 1 else ipv6_in_vxlan
                counts[port_key[0]] = counts.get(port_key[0], 0) + count
        positions: dict[FlowKey, list[tuple[int, int, int]]] = {}
        addresses: dict[int, IPv4Address] = {}

        def address(value: int) -> IPv4Address:
            found = addresses.get(value)
            if found is None:
                found = addresses[value] = IPv4Address(value)
            return found

        def address6(value: int) -> IPv6Address:
            found = addresses.get(value | _V6)
            if found is None:
                found = addresses[value | _V6] = IPv6Address(value)
            return found

        macs: dict[bytes, str] = {}

        def mac_text(value: bytes) -> str:
            found = macs.get(value)
            if found is None:
                found = macs[value] = value.hex(":")
            return found

        def pair(value: int) -> FlowKey:
            if value >= _V6:
                return (address6(value >> 128 & _M128), address6(value & _M128))
            return (address(value >> 32), address(value & _LOW32))

        # Flows and outer pairs are gathered under the packed integers the loop keyed them by, and
        # made addresses once each at the end: an IPv4Address hashes through hex(), and a 256-node
        # run's captures hold ~47,000 aggregates, each hashing four to eight of them.
        by_int: dict[int, FlowTally] = {}
        frames_of: dict[int, list[tuple[int, int, int]]] = {}
        outers_of: dict[int, Counter] = {}
        tallied = 0
        for key, (count, first) in self._agg.items():
            if len(key) == 1:  # IPV6
                ipv6_frames += count
                continue
            flow_int = key[0]
            flow = by_int.get(flow_int)
            if flow is None:
                flow = by_int[flow_int] = FlowTally()
                frames_of[flow_int] = []
                outers_of[flow_int] = Counter()
            flow.packets += count
            tallied += count
            if len(key) == 15:  # the general shape: IP-in-IP, WireGuard, VXLAN with IPv6 in it
                _, outer, dport, vni, mac, frag, proto, ip_len, wire_len, mss, next_hop_mtu, echo, dst_mac, wire, \
                    wg_type = key
                flow.encaps[Wire(wire)] += count
                if vni is not None:
                    flow.vnis[vni >> 8] += count
                if dport is not None:
                    flow.udp_dports[dport] += count
                outers_of[flow_int][outer] += count
                if mac is not None:
                    flow.inner_dst_macs[mac.hex(":")] += count
                if wg_type is not None:
                    flow.wg_types[wg_type] += count
            elif len(key) != 13:
                _, frag, proto, ip_len, wire_len, mss, next_hop_mtu, echo, dst_mac = key[:9]
                flow.encaps[Wire.PLAIN] += count
                if len(key) > 9 and key[9] in ports:
                    counts = not_vxlan if len(key) == 10 else ipv6_in_vxlan
                    counts[key[9]] = counts.get(key[9], 0) + count
            else:
                _, outer, dport, vni, mac, frag, proto, ip_len, wire_len, mss, next_hop_mtu, echo, dst_mac = key
                flow.encaps[Wire.VXLAN] += count
                flow.vnis[vni >> 8] += count
                flow.udp_dports[dport] += count
                outers_of[flow_int][outer] += count
                flow.inner_dst_macs[mac.hex(":")] += count
            if frag:
                flow.outer_fragments += count
            if wire_len > flow.max_wire_len:
                flow.max_wire_len = wire_len
            flow.sizes[(proto, ip_len, wire_len, bool(frag))] += count
            if mss is not None:
                flow.tcp_mss[mss] += count
            if next_hop_mtu is not None:
                mtu, quoted = next_hop_mtu
                flow.frag_needed[(mtu, None if quoted is None else address(quoted))] += count
            dst_mac = None if dst_mac is None else mac_text(dst_mac)
            flow.outer_dst_macs[dst_mac] += count
            if echo is not None:
                flow.echoes[(echo >> 56, ip_len)] += count
                flow.echo_ids[(echo >> 56, echo >> 16 & 0xFFFF, echo & 0xFFFF, dst_mac)] += count
            frames_of[flow_int].extend(first)
        for flow_int, flow in by_int.items():
            flow_key = pair(flow_int)
            flows[flow_key] = flow
            positions[flow_key] = frames_of[flow_int]
            for outer, count in outers_of[flow_int].items():
                flow.outer_pairs[pair(outer)] += count
        sample_frames: dict[FlowKey, list[int]] = {}
        frame_at: dict[int, tuple[int, int]] = {}
        for flow_key, frames in positions.items():
            frames.sort()
            del frames[self._samples_per_flow :]
            sample_frames[flow_key] = [index for index, _, _ in frames]
            frame_at.update((index, (at, linktype)) for index, at, linktype in frames)
        return flows, sample_frames, frame_at, tallied, ipv6_frames, not_vxlan, ipv6_in_vxlan


@lru_cache(maxsize=4)
def _judged_bytes(judged: frozenset[int]) -> bytes:
    """The compiled loop's sorted IPv4 addresses: the same set for every capture of a run (one
    decoder each: 256 sorts of 512 addresses at 256 nodes), made once."""
    return b"".join(a.to_bytes(4, "big") for a in sorted(judged) if 0 <= a < 2**32)


def decode_bytes(
    data: bytes,
    samples_per_flow: int = SAMPLE_FRAMES_PER_FLOW,
    vxlan_ports: frozenset[int] = VXLAN_PORTS,
    judged: frozenset[int] | None = None,
) -> DecodeResult:
    """Decode a whole capture held in memory."""
    decoder = FastDecoder(samples_per_flow, vxlan_ports, judged)
    decoder.feed(data)
    return decoder.close()

