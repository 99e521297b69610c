"""The Geneve header (RFC 8926), read and written as plain data.

Declared the way scapy declares a layer: an ordered table of named bit fields, with one
generic packer and unpacker, so the layout is written once and matches the RFC's figure:

     0                   1                   2                   3
    |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
    |        Virtual Network Identifier (VNI)       |    Reserved   |
    |                    Variable-Length Options                    |

    option: |          Option Class         |      Type     |R|R|R| Length  |  data (Length × 4 bytes)

Parsing never raises anything but `GeneveError` (a ValueError), whatever the bytes: the
decoder reads captures of other people's traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

GENEVE_PORT = 6081  # IANA
ETHERNET = 0x6558  # Transparent Ethernet Bridging: what Antrea's and Cilium's Geneve carry
BASE_LENGTH = 8
OPTION_HEADER_LENGTH = 4
MAX_OPTIONS_LENGTH = 0x3F * 4  # Opt Len is 6 bits of 4-byte words: 252 bytes
MAX_OPTION_DATA = 0x1F * 4  # an option's Length is 5 bits of 4-byte words: 124 bytes
CRITICAL_TYPE_BIT = 0x80  # the high bit of an option's Type: a receiver that does not know it must drop


class GeneveError(ValueError):
    """Bytes that are not a Geneve header vxcap can read (truncated, unknown version, bad lengths)."""


class Field(NamedTuple):
    name: str
    bits: int


BASE_FIELDS = (
    Field("version", 2), Field("opt_len", 6), Field("oam", 1), Field("critical", 1), Field("reserved1", 6),
    Field("protocol", 16), Field("vni", 24), Field("reserved2", 8),
)
OPTION_FIELDS = (Field("option_class", 16), Field("type", 8), Field("reserved", 3), Field("length", 5))


def unpack_fields(fields: tuple[Field, ...], data: bytes) -> dict[str, int]:
    """Big-endian bit fields, MSB first, from exactly sum(bits)/8 bytes."""
    total = sum(f.bits for f in fields)
    value = int.from_bytes(data[: total // 8], "big")
    result = {}
    shift = total
    for f in fields:
        shift -= f.bits
        result[f.name] = (value >> shift) & ((1 << f.bits) - 1)
    return result


def pack_fields(fields: tuple[Field, ...], values: dict[str, int]) -> bytes:
    total = sum(f.bits for f in fields)
    value = 0
    for f in fields:
        v = int(values.get(f.name, 0))
        if not 0 <= v < 1 << f.bits:
            raise GeneveError(f"Geneve {f.name} {v} does not fit {f.bits} bits")
        value = (value << f.bits) | v
    return value.to_bytes(total // 8, "big")


@dataclass(frozen=True, slots=True)
class GeneveOption:
    option_class: int
    type: int
    data: bytes = b""
    reserved: int = 0

    @property
    def critical(self) -> bool:
        return bool(self.type & CRITICAL_TYPE_BIT)

    def __len__(self) -> int:
        return OPTION_HEADER_LENGTH + len(self.data)


@dataclass(frozen=True, slots=True)
class GeneveHeader:
    vni: int
    protocol: int = ETHERNET
    options: tuple[GeneveOption, ...] = ()
    oam: bool = False
    critical: bool = False  # the C bit: some option is critical (a sender sets it; vxcap reports it)
    version: int = 0
    reserved1: int = 0
    reserved2: int = 0

    @property
    def length(self) -> int:
        """Bytes from the header's start to the payload."""
        return BASE_LENGTH + sum(len(o) for o in self.options)


def parse_options(data: bytes) -> tuple[GeneveOption, ...]:
    options = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < OPTION_HEADER_LENGTH:
            raise GeneveError(f"Geneve option at byte {offset} is truncated ({len(data) - offset} of 4 header bytes)")
        head = unpack_fields(OPTION_FIELDS, data[offset : offset + OPTION_HEADER_LENGTH])
        end = offset + OPTION_HEADER_LENGTH + head["length"] * 4
        if end > len(data):
            raise GeneveError(f"Geneve option at byte {offset} says {head['length'] * 4} data bytes; "
                              f"only {len(data) - offset - OPTION_HEADER_LENGTH} remain in Opt Len")
        options.append(GeneveOption(head["option_class"], head["type"], bytes(data[offset + OPTION_HEADER_LENGTH : end]),
                                    head["reserved"]))
        offset = end
    return tuple(options)


def parse(data: bytes) -> tuple[GeneveHeader, int]:
    """The header at the start of `data` (a UDP payload) and the offset of what it carries."""
    if len(data) < BASE_LENGTH:
        raise GeneveError(f"Geneve header truncated: {len(data)} of {BASE_LENGTH} bytes")
    base = unpack_fields(BASE_FIELDS, data[:BASE_LENGTH])
    if base["version"] != 0:
        # RFC 8926 §3.4: a packet of an unknown version must be dropped, so its fields mean nothing.
        raise GeneveError(f"Geneve version {base['version']} (only 0 is defined)")
    end = BASE_LENGTH + base["opt_len"] * 4
    if end > len(data):
        raise GeneveError(f"Geneve Opt Len says {base['opt_len'] * 4} option bytes; only {len(data) - BASE_LENGTH} follow")
    header = GeneveHeader(
        vni=base["vni"], protocol=base["protocol"], options=parse_options(data[BASE_LENGTH:end]),
        oam=bool(base["oam"]), critical=bool(base["critical"]), version=base["version"],
        reserved1=base["reserved1"], reserved2=base["reserved2"],
    )
    return header, end


def build_option(option: GeneveOption) -> bytes:
    if len(option.data) % 4 or len(option.data) > MAX_OPTION_DATA:
        raise GeneveError(f"Geneve option data is {len(option.data)} bytes: it must be a multiple of 4, at most {MAX_OPTION_DATA}")
    head = pack_fields(OPTION_FIELDS, {"option_class": option.option_class, "type": option.type,
                                       "reserved": option.reserved, "length": len(option.data) // 4})
    return head + option.data


def build(header: GeneveHeader) -> bytes:
    options = b"".join(build_option(o) for o in header.options)
    if len(options) > MAX_OPTIONS_LENGTH:
        raise GeneveError(f"Geneve options are {len(options)} bytes; Opt Len holds at most {MAX_OPTIONS_LENGTH}")
    base = pack_fields(BASE_FIELDS, {
        "version": header.version, "opt_len": len(options) // 4, "oam": int(header.oam), "critical": int(header.critical),
        "reserved1": header.reserved1, "protocol": header.protocol, "vni": header.vni, "reserved2": header.reserved2,
    })
    return base + options
