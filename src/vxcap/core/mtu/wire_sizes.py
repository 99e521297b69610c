"""Frame sizes on a capture: MTU violation, or segmentation offload?

tcpdump on a host sees packets where the stack hands them to the driver and
where it receives them: before GSO/TSO has cut a TCP super-packet into
MTU-sized segments, after GRO has glued received ones together. So a capture
on a 1500-byte link can hold 64 KB TCP "frames" (plain, or inside VXLAN as
one huge outer UDP packet) that never existed on the cable. Only TCP and UDP
are segmented or aggregated that way, and never as IP fragments; anything
else larger than the MTU did travel that big.

The frame's IP packet is its captured length minus the link header, and it is
that packet which is compared with the interface MTU.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from vxcap.core.errors import InputError
from vxcap.core.frames import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    FrameFacts,
)

IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP = 1, 6, 17
SEGMENTABLE = frozenset({IPPROTO_TCP, IPPROTO_UDP})  # TSO/GSO/GRO for TCP, UDP GSO/GRO for UDP

LINK_HEADER = {
    LINKTYPE_ETHERNET: 14,
    LINKTYPE_LINUX_SLL: 16,
    LINKTYPE_LINUX_SLL2: 20,
    LINKTYPE_RAW: 0,
    LINKTYPE_IPV4: 0,
}


def link_header_len(linktype: int) -> int:
    """Bytes in front of the IP header for a pcap link type (untagged Ethernet)."""
    try:
        return LINK_HEADER[linktype]
    except KeyError:
        raise InputError(f"pcap link type {linktype} is not one vxcap reads") from None


class FrameSize(StrEnum):
    FITS = "fits"
    OFFLOAD = "offload"  # bigger than the MTU, but a GSO/TSO/GRO aggregate: never on the wire like this
    OVERSIZE = "oversize"  # bigger than the MTU and really that big


def classify_frame_size(
    wire_len: int,
    iface_mtu: int,
    ip_proto: int,
    *,
    fragment: bool = False,
    link_header: int = 14,
) -> FrameSize:
    """`ip_proto` is the innermost protocol: a VXLAN frame is offload when the TCP inside it is."""
    if wire_len - link_header <= iface_mtu:
        return FrameSize.FITS
    if ip_proto in SEGMENTABLE and not fragment:
        return FrameSize.OFFLOAD
    return FrameSize.OVERSIZE


def is_offload_frame(wire_len: int, iface_mtu: int, ip_proto: int, *, fragment: bool = False, link_header: int = 14) -> bool:
    size = classify_frame_size(wire_len, iface_mtu, ip_proto, fragment=fragment, link_header=link_header)
    return size is FrameSize.OFFLOAD


@dataclass(frozen=True, slots=True)
class SizeTally:
    frames: int = 0
    max_frame: int | None = None  # largest frame that is not an offload aggregate
    offload_frames: int = 0
    max_offload_frame: int | None = None
    oversize_frames: int = 0
    outer_fragments: int = 0


def size_tally(frames: Iterable[FrameFacts | None], iface_mtu: int, link_header: int = 14) -> SizeTally:
    """Sizes of decoded frames on one interface (None entries, frames of no interest, are skipped)."""
    count = offload = oversize = fragments = 0
    biggest: int | None = None
    biggest_offload: int | None = None
    for facts in frames:
        if facts is None:
            continue
        count += 1
        fragments += facts.outer_fragment
        size = classify_frame_size(
            facts.wire_len, iface_mtu, facts.ip_proto, fragment=facts.outer_fragment, link_header=link_header
        )
        if size is FrameSize.OFFLOAD:
            offload += 1
            biggest_offload = max(biggest_offload or 0, facts.wire_len)
            continue
        oversize += size is FrameSize.OVERSIZE
        biggest = max(biggest or 0, facts.wire_len)
    return SizeTally(count, biggest, offload, biggest_offload, oversize, fragments)


def size_tally_of_counts(
    sizes: Mapping[tuple[int, int | None, int, bool], int], iface_mtu: int | None, link_header: int = 14
) -> SizeTally:
    """`size_tally` from a flow's counted sizes (`FlowTally.sizes`: (ip_proto, inner_len, wire_len,
    outer_fragment) -> frames). Without the interface's MTU nothing can be called offload."""
    count = offload = oversize = fragments = 0
    biggest: int | None = None
    biggest_offload: int | None = None
    for (ip_proto, _inner_len, wire_len, fragment), n in sizes.items():
        count += n
        if fragment:
            fragments += n
        if iface_mtu is None:
            biggest = max(biggest or 0, wire_len)
            continue
        size = classify_frame_size(wire_len, iface_mtu, ip_proto, fragment=fragment, link_header=link_header)
        if size is FrameSize.OFFLOAD:
            offload += n
            biggest_offload = max(biggest_offload or 0, wire_len)
            continue
        if size is FrameSize.OVERSIZE:
            oversize += n
        biggest = max(biggest or 0, wire_len)
    return SizeTally(count, biggest, offload, biggest_offload, oversize, fragments)


_ETHERTYPE_IPV4 = 0x0800
_VLAN_TAGS = (0x8100, 0x88A8)
_VXLAN_FLAG_I = 0x08


def _ip_offset(data: bytes, linktype: int) -> int | None:
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4):
        return 0
    if linktype == LINKTYPE_LINUX_SLL:
        return 16 if data[14:16] == b"\x08\x00" else None
    if linktype == LINKTYPE_LINUX_SLL2:
        return 20 if data[0:2] == b"\x08\x00" else None
    if linktype != LINKTYPE_ETHERNET:
        return None
    return _after_ethernet(data, 0)


def _after_ethernet(data: bytes, start: int) -> int | None:
    offset = start + 12
    while len(data) >= offset + 2:
        (ethertype,) = struct.unpack_from("!H", data, offset)
        if ethertype in _VLAN_TAGS:
            offset += 4
            continue
        return offset + 2 if ethertype == _ETHERTYPE_IPV4 else None
    return None


def _frag_needed_in_ip(data: bytes, at: int, depth: int) -> int | None:
    if len(data) < at + 20 or data[at] >> 4 != 4:
        return None
    header = (data[at] & 0x0F) * 4
    (flags_offset,) = struct.unpack_from("!H", data, at + 6)
    if flags_offset & 0x1FFF:  # a later fragment: no transport header to read
        return None
    proto, body = data[at + 9], at + header
    if proto == IPPROTO_ICMP and len(data) >= body + 8:
        if data[body] == 3 and data[body + 1] == 4:
            return struct.unpack_from("!H", data, body + 6)[0]
        return None
    # One level of VXLAN, recognised by its header as the decoder does, whatever the port.
    if proto == IPPROTO_UDP and depth == 0 and len(data) >= body + 8 + 8 + 14:
        vxlan = body + 8
        if data[vxlan] & _VXLAN_FLAG_I:
            inner = _after_ethernet(data, vxlan + 8)
            if inner is not None:
                return _frag_needed_in_ip(data, inner, depth + 1)
    return None


def frag_needed_mtu(data: bytes, linktype: int = LINKTYPE_ETHERNET) -> int | None:
    """The next-hop MTU of an ICMP fragmentation-needed (type 3 code 4), plain or inside VXLAN; else None."""
    at = _ip_offset(data, linktype)
    return None if at is None else _frag_needed_in_ip(data, at, 0)
