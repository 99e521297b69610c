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

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from vxcap.core.frames import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
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


@dataclass(frozen=True, slots=True)
class SizeTally:
    frames: int = 0
    max_frame: int | None = None  # largest frame that is not an offload aggregate
    offload_frames: int = 0
    max_offload_frame: int | None = None
    oversize_frames: int = 0
    outer_fragments: int = 0


def size_tally_of_counts(
    sizes: Mapping[tuple[int, int | None, int, bool], int], iface_mtu: int | None, link_header: int = 14
) -> SizeTally:
    """Frame sizes from a flow's counted sizes (`FlowTally.sizes`: (ip_proto, inner_len, wire_len,
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
