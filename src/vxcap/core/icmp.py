"""ICMP and ICMPv6 echo as bytes: the request vxcap sends from a pod, and what comes back to it.

Pure: `vxcap.adapters.echo` owns the sockets. Raw IPv4 sockets hand over whole
IPv4 packets (header included), so `read_icmp` starts at the IP header and
checks the bounds of every read: whatever arrives in a pod is not ours to trust.
Raw ICMPv6 sockets hand over the ICMPv6 message alone (RFC 3542: no IPv6 header;
the source comes with recvfrom), so `read_icmp6` starts at the ICMPv6 header.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
import struct
from struct import Struct

from vxcap.core.errors import InputError
from vxcap.core.ping import MAX_PING_SIZE as MAX_ECHO_PAYLOAD
from vxcap.core.ping import MAX_PING_SIZE6 as MAX_ECHO_PAYLOAD6

ECHO_REQUEST, ECHO_REPLY, DEST_UNREACH = 8, 0, 3
FRAG_NEEDED_CODE = 4
_HEADER = Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_IPV4_MIN = 20

# RFC 4443: echo request 128, echo reply 129, Packet Too Big 2 (its second word the MTU).
ECHO6_REQUEST, ECHO6_REPLY, PACKET_TOO_BIG = 128, 129, 2
NEXT_HEADER_ICMPV6 = 58
_IPV6_HEADER = 40


# Payload bytes repeat their offset (mod 256), so a cut or mangled echo shows; sliced, not built per echo.
_PATTERN = bytes(range(256)) * 256


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(identifier: int, sequence: int, payload_size: int) -> bytes:
    """An ICMP echo request (no IP header: the kernel adds it) with `payload_size` bytes of
    payload, ping's -s."""
    if not 0 <= identifier <= 0xFFFF or not 0 <= sequence <= 0xFFFF:
        raise InputError(f"ICMP identifier {identifier} and sequence {sequence} must fit 16 bits")
    if not 0 <= payload_size <= MAX_ECHO_PAYLOAD:
        raise InputError(f"echo payload {payload_size} is out of range (0..{MAX_ECHO_PAYLOAD})")
    payload = _PATTERN[:payload_size]
    unsummed = _HEADER.pack(ECHO_REQUEST, 0, 0, identifier, sequence) + payload
    return _HEADER.pack(ECHO_REQUEST, 0, checksum(unsummed), identifier, sequence) + payload


@dataclass(frozen=True, slots=True)
class EchoReply:
    source: IPv4Address | IPv6Address
    identifier: int
    sequence: int


@dataclass(frozen=True, slots=True)
class FragNeeded:
    """ICMP destination unreachable, fragmentation needed (RFC 1191), quoting one of our echoes."""

    source: IPv4Address  # the hop that could not forward it
    next_hop_mtu: int
    quoted_destination: IPv4Address
    identifier: int
    sequence: int


def _icmp_at(packet: bytes, offset: int = 0) -> tuple[IPv4Address, IPv4Address, tuple[int, int, int, int], int] | None:
    """(source, destination, (type, code, identifier, sequence), end of the ICMP header) of the
    IPv4 + ICMP packet at `offset`, if both headers are whole; else None."""
    if len(packet) < offset + _IPV4_MIN or packet[offset] >> 4 != 4:
        return None
    header_len = (packet[offset] & 0x0F) * 4
    start = offset + header_len
    if header_len < _IPV4_MIN or packet[offset + 9] != 1 or len(packet) < start + _HEADER.size:
        return None
    source = IPv4Address(packet[offset + 12 : offset + 16])
    destination = IPv4Address(packet[offset + 16 : offset + 20])
    kind, code, _, identifier, sequence = _HEADER.unpack_from(packet, start)
    return source, destination, (kind, code, identifier, sequence), start + _HEADER.size


def read_icmp(packet: bytes) -> EchoReply | FragNeeded | None:
    """What an IPv4 packet received on a raw ICMP socket says about our echoes; None: nothing."""
    outer = _icmp_at(packet)
    if outer is None:
        return None
    source, _, (kind, code, identifier, sequence), end = outer
    if kind == ECHO_REPLY and code == 0:
        return EchoReply(source, identifier, sequence)
    if kind != DEST_UNREACH or code != FRAG_NEEDED_CODE:
        return None
    # RFC 1191: the next-hop MTU is the low 16 bits of the header's second word; the
    # quoted datagram (its IP header and first 8 bytes) says which echo was too big.
    quoted = _icmp_at(packet, end)
    if quoted is None:
        return None
    _, quoted_destination, (quoted_kind, _, quoted_id, quoted_seq), _ = quoted
    if quoted_kind != ECHO_REQUEST:
        return None
    return FragNeeded(source, sequence, quoted_destination, quoted_id, quoted_seq)


# --- ICMPv6 ---------------------------------------------------------------------------------


def checksum6(source: IPv6Address, destination: IPv6Address, message: bytes) -> int:
    """The ICMPv6 checksum (RFC 4443 2.3): over the IPv6 pseudo-header (RFC 8200 8.1) and `message`."""
    pseudo = source.packed + destination.packed + struct.pack("!I3xB", len(message), NEXT_HEADER_ICMPV6)
    return checksum(pseudo + message)


def echo6_request(
    identifier: int,
    sequence: int,
    payload_size: int,
    source: IPv6Address | None = None,
    destination: IPv6Address | None = None,
) -> bytes:
    """An ICMPv6 echo request (no IPv6 header) with `payload_size` bytes of payload, `ping -6 -s`.

    Its checksum covers the IPv6 addresses, which a raw socket's sender does not know
    before routing picks the source: Linux computes it on every raw ICMPv6 socket
    (RFC 3542 3.1; IPV6_CHECKSUM is refused there), so without addresses it is left 0
    for the kernel. With both, it is filled, for a whole packet built elsewhere.
    """
    if not 0 <= identifier <= 0xFFFF or not 0 <= sequence <= 0xFFFF:
        raise InputError(f"ICMPv6 identifier {identifier} and sequence {sequence} must fit 16 bits")
    if not 0 <= payload_size <= MAX_ECHO_PAYLOAD6:
        raise InputError(f"echo payload {payload_size} is out of range (0..{MAX_ECHO_PAYLOAD6})")
    if (source is None) != (destination is None):
        raise InputError("an ICMPv6 checksum needs both the source and the destination address")
    payload = _PATTERN[:payload_size]
    unsummed = _HEADER.pack(ECHO6_REQUEST, 0, 0, identifier, sequence) + payload
    if source is None or destination is None:
        return unsummed
    summed = checksum6(source, destination, unsummed)
    return _HEADER.pack(ECHO6_REQUEST, 0, summed, identifier, sequence) + payload


@dataclass(frozen=True, slots=True)
class PacketTooBig:
    """ICMPv6 Packet Too Big (RFC 4443 3.2), quoting one of our echoes: IPv6's fragmentation-needed."""

    source: IPv6Address  # the hop that could not forward it
    mtu: int
    quoted_destination: IPv6Address
    identifier: int
    sequence: int

    @property
    def next_hop_mtu(self) -> int:  # the name FragNeeded gives it: one reading for both families
        return self.mtu


def read_icmp6(message: bytes, source: IPv6Address) -> EchoReply | PacketTooBig | None:
    """What an ICMPv6 message from `source` (a raw ICMPv6 socket's recvfrom) says about our echoes."""
    if len(message) < _HEADER.size:
        return None
    kind, code, _, identifier, sequence = _HEADER.unpack_from(message)
    if kind == ECHO6_REPLY and code == 0:
        return EchoReply(source, identifier, sequence)
    if kind != PACKET_TOO_BIG or code != 0:
        return None
    # The quote: as much of the invoking packet as fits, from its IPv6 header on. Our echo
    # carries no extension headers, so its ICMPv6 header follows at once.
    mtu = struct.unpack_from("!I", message, 4)[0]
    quote = _HEADER.size
    if len(message) < quote + _IPV6_HEADER + _HEADER.size or message[quote] >> 4 != 6:
        return None
    if message[quote + 6] != NEXT_HEADER_ICMPV6:
        return None
    quoted_destination = IPv6Address(message[quote + 24 : quote + 40])
    quoted_kind, _, _, quoted_id, quoted_seq = _HEADER.unpack_from(message, quote + _IPV6_HEADER)
    if quoted_kind != ECHO6_REQUEST:
        return None
    return PacketTooBig(source, mtu, quoted_destination, quoted_id, quoted_seq)
