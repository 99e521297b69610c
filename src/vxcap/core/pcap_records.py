"""Counting the records of a pcap file while tcpdump is still writing it: how the
live progress says how many packets each node has captured so far."""

from __future__ import annotations

import struct
from dataclasses import dataclass

_GLOBAL_HEADER = 24
_RECORD_HEADER = 16
_ENDIAN = {
    b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",  # microsecond timestamps
    b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">",  # nanosecond timestamps
}


@dataclass
class RecordCount:
    """Complete records seen so far, and where the next one starts: fed more bytes,
    it goes on from there, so each tick reads only what was appended."""

    records: int = 0
    offset: int = 0  # into the whole file
    endian: str | None = None

    def feed(self, data: bytes, start: int) -> None:
        """`data` is the file from byte `start` on (start <= offset); a record cut short waits for the rest."""
        if self.endian is None:
            if start > 0 or len(data) < _GLOBAL_HEADER:
                return
            self.endian = _ENDIAN.get(bytes(data[:4]))
            if self.endian is None:
                self.endian = ""  # not pcap (pcapng, or garbage): never counted
                return
            self.offset = _GLOBAL_HEADER
        if not self.endian:
            return
        fmt = self.endian + "I"
        at = self.offset - start
        while at + _RECORD_HEADER <= len(data):
            (included,) = struct.unpack_from(fmt, data, at + 8)
            end = at + _RECORD_HEADER + included
            if end > len(data):
                break
            self.records += 1
            at = end
        self.offset = start + at

    @property
    def resume_at(self) -> int:
        """Where the next feed's data must start."""
        return self.offset if self.endian else 0

    @property
    def readable(self) -> bool:
        return self.endian != ""
