"""Capture files on disk: the fast per-flow decode, and raw frames for scapy's dissection.

`read_flows` streams the file through the pure `FastDecoder` in fixed-size
chunks, so memory does not grow with the capture. `iter_frames` hands frames to
the reference decoder (`vxcap.core.decode.decode_frame`) through scapy's own
pcap/pcapng readers; its frame numbering is the one `DecodeResult.sample_frames` uses.
Gzip-compressed captures are read as scapy reads them.
"""

from __future__ import annotations

import gzip
import logging
import os
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from vxcap.core.encap import Reading
from vxcap.core.fastdecode import SAMPLE_FRAMES_PER_FLOW, VXLAN_PORTS, DecodeError, DecodeResult, FastDecoder

CHUNK_SIZE = 8 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_SCAPY_MTU = 0xFFFF  # scapy's readers cut frames to this many bytes


class CaptureFileError(ValueError):
    """A capture file that cannot be read: missing, empty, not pcap/pcapng, or of an unsupported link type.

    The message is one line and names the file.
    """


class _ReaderChatter(logging.Filter):
    """scapy's readers log each oddity they meet ("PcapNg: invalid interface id ...") on
    stderr; vxcap reports a damaged capture once, as one line, so those are dropped."""

    PREFIXES = ("Pcap: ", "PcapNg: ", "PcapReader: ")

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(self.PREFIXES))


_SCAPY_LOG = "scapy.runtime"
_chatter = _ReaderChatter()


def _quiet_scapy_readers() -> None:
    logger = logging.getLogger(_SCAPY_LOG)
    if _chatter not in logger.filters:
        logger.addFilter(_chatter)


class Frame(NamedTuple):
    data: bytes
    linktype: int
    wire_len: int  # the frame's original length, not the captured one
    timestamp: float  # seconds since the epoch


def _open(path: Path):
    raw = open(path, "rb")  # noqa: SIM115 - handed to the caller, who closes it
    if raw.peek(2)[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw
    return raw, None


def read_flows(
    path: str | Path,
    chunk_size: int = CHUNK_SIZE,
    samples_per_flow: int = SAMPLE_FRAMES_PER_FLOW,
    vxlan_ports: frozenset[int] = VXLAN_PORTS,
    judged: frozenset[int] | None = None,
    reading: Reading | None = None,
) -> DecodeResult:
    """Per-flow tallies of the whole capture at `path`, read `chunk_size` bytes at a time; frames to
    `vxlan_ports` that are not VXLAN are counted in `not_vxlan`. `judged`: see `FastDecoder`;
    `reading`: what else to read (core/encap.Reading: WireGuard ports, IPv6)."""
    path = Path(path)
    decoder = FastDecoder(samples_per_flow, vxlan_ports, judged, reading=reading)
    try:
        stream, raw = _open(path)
        try:
            # One buffer, refilled in place: memory stays at one chunk however long the file.
            view = memoryview(bytearray(chunk_size))
            readinto = stream.readinto
            while filled := readinto(view):
                decoder.feed(view[:filled])
        finally:
            stream.close()
            if raw is not None:
                raw.close()
        return decoder.close()
    except DecodeError as err:
        raise CaptureFileError(f"{path}: {err}") from None
    except (OSError, EOFError, zlib.error) as err:
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise CaptureFileError(f"{path}: cannot read: {reason}") from None


def iter_frames(path: str | Path) -> Iterator[Frame]:
    """Every complete frame of the capture at `path`, in order, read by scapy.

    A record cut short by the end of the file is not yielded, so frame numbers
    match `read_flows`'s `frames` and `sample_frames`.
    """
    from scapy.error import Scapy_Exception  # scapy is heavy: loaded only when frames are wanted
    from scapy.utils import RawPcapReader

    path = Path(path)
    _quiet_scapy_readers()
    try:
        reader = RawPcapReader(str(path))
    except OSError as err:
        raise CaptureFileError(f"{path}: cannot read: {err.strerror or err}") from None
    except (Scapy_Exception, struct.error, EOFError, ValueError, zlib.error) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise CaptureFileError(f"{path}: not a pcap or pcapng capture ({reason})") from None
    read = 0
    try:
        with reader:
            for frame in _frames(reader):
                yield frame
                read += 1
    except (Scapy_Exception, struct.error, OSError, zlib.error, EOFError, ValueError) as err:
        # scapy reads a damaged block in the middle of a file with an exception of its own:
        # the frames before it count, and the damage is one line naming the file.
        reason = " ".join(str(err).split()) or type(err).__name__
        raise CaptureFileError(f"{path}: damaged after frame {read}: {reason}") from None


_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
               b"\xa1\xb2\xc3\xd4": (">", 1e-6), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}


def classic_pcap(path: str | Path) -> tuple[bool, bool, int] | None:
    """(big endian, nanosecond times, link type) of an uncompressed classic pcap whose whole
    header is there, as `iter_records` reads it; None for anything else (pcapng, gzip, unreadable)."""
    try:
        with open(path, "rb") as probe:
            head = probe.read(24)
    except OSError:
        return None
    shape = _PCAP_MAGIC.get(head[:4]) if len(head) == 24 else None
    if shape is None:
        return None
    order, scale = shape
    return order == ">", scale == 1e-9, struct.unpack(order + "I", head[20:])[0] & 0xFFFF


def iter_records(path: str | Path, chunk_size: int = 1 << 20) -> Iterator[tuple[bytes, int, int, float]]:
    """The frames `iter_frames` yields, as plain tuples in `Frame`'s field order (a named tuple costs
    as much as reading the record), the same frames in the same order, read with `struct` for an
    uncompressed classic pcap (scapy's reader costs about 5 us a frame: most of writing evidence);
    pcapng and gzip files, and anything that does not start as a whole pcap header, through
    `iter_frames`. The tests hold it to `iter_frames` on fuzzed files."""
    path = Path(path)
    try:
        with open(path, "rb") as probe:
            head = probe.read(24)
    except OSError:
        head = b""
    shape = _PCAP_MAGIC.get(head[:4]) if len(head) == 24 else None
    if shape is None:
        yield from iter_frames(path)
        return
    order, scale = shape
    linktype = struct.unpack(order + "I", head[20:])[0] & 0xFFFF  # as iter_frames masks it
    record = struct.Struct(order + "IIII").unpack_from
    try:
        with open(path, "rb") as stream:
            stream.seek(24)
            read = stream.read
            data, off = read(chunk_size), 0
            while True:
                if off + 16 > len(data):
                    more = read(chunk_size)
                    if not more:
                        return  # the file ends inside a record header, or at a record's end
                    data, off = data[off:] + more, 0
                    continue
                sec, usec, caplen, wire_len = record(data, off)
                # scapy keeps a frame's first 65535 bytes and skips the rest
                want = caplen if caplen < _SCAPY_MTU else _SCAPY_MTU
                if off + 16 + want > len(data):
                    more = read(max(chunk_size, want + 16))
                    if not more:
                        return  # the file ends inside this record: not a frame (as iter_frames)
                    data, off = data[off:] + more, 0
                    continue
                yield data[off + 16:off + 16 + want], linktype, wire_len, sec + usec * scale
                off += 16 + caplen
                if off > len(data):  # the rest of a long record lies beyond the buffer
                    stream.seek(off - len(data), os.SEEK_CUR)
                    data, off = b"", 0
    except OSError:
        return  # scapy's reader ends the file quietly on a read error too


def _frames(reader) -> Iterator[Frame]:
    from scapy.utils import RawPcapNgReader

    if isinstance(reader, RawPcapNgReader):
        for data, meta in reader:
            if meta.tshigh is None:  # simple packet blocks carry no time
                timestamp = 0.0
            else:
                timestamp = ((meta.tshigh << 32) | meta.tslow) / meta.tsresol
            yield Frame(data, meta.linktype, meta.wirelen, timestamp)
    else:
        linktype = reader.linktype & 0xFFFF  # the link type; the bits above it say whether frames end in an FCS
        scale = 1e-9 if reader.nano else 1e-6
        for data, meta in reader:
            if len(data) < min(meta.caplen, _SCAPY_MTU):
                return  # the file ends inside this record
            yield Frame(data, linktype, meta.wirelen, meta.sec + meta.usec * scale)


def pick_frames(path: str | Path, indices: Iterable[int]) -> dict[int, Frame]:
    """The frames at these 0-based indices (e.g. `DecodeResult.sample_frames`), reading no further than needed."""
    wanted = set(indices)
    found: dict[int, Frame] = {}
    if not wanted:
        return found
    last = max(wanted)
    for index, frame in enumerate(iter_frames(path)):
        if index in wanted:
            found[index] = frame
        if index >= last:
            break
    return found


class RawFrame(NamedTuple):
    data: bytes  # cut to 65535 bytes, as scapy's readers cut it
    linktype: int
    wire_len: int


_PCAP_RECORD = {"<": struct.Struct("<8xII"), ">": struct.Struct(">8xII")}
_PCAPNG_HEAD = {"<": struct.Struct("<II"), ">": struct.Struct(">II")}
_PCAPNG_EPB = {"<": struct.Struct("<I8xII"), ">": struct.Struct(">I8xII")}


def frames_at(path: str | Path, frame_at: dict[int, tuple[int, int]]) -> dict[int, RawFrame]:
    """The frames the fast decoder located (`DecodeResult.frame_at`: index -> (file offset of the
    record or block, link type)), read by seeking to each: a few frames of a long capture cost a
    few reads, not a pass over the file. A record that is not where it was said to be is left out."""
    path = Path(path)
    found: dict[int, RawFrame] = {}
    if not frame_at:
        return found
    try:
        stream, raw = _open(path)
        try:
            head = stream.read(4)
            pcap_order = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<",
                          b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}.get(head)
            for index, (at, linktype) in sorted(frame_at.items(), key=lambda item: item[1][0]):
                stream.seek(at)
                frame = _pcap_record(stream, pcap_order) if pcap_order else _pcapng_block(stream)
                if frame is not None:
                    found[index] = RawFrame(frame[0], linktype, frame[1])
        finally:
            stream.close()
            if raw is not None:
                raw.close()
    except (OSError, EOFError, zlib.error) as err:
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise CaptureFileError(f"{path}: cannot read: {reason}") from None
    return found


def _pcap_record(stream, order: str) -> tuple[bytes, int] | None:
    head = stream.read(16)
    if len(head) < 16:
        return None
    caplen, wire_len = _PCAP_RECORD[order].unpack(head)
    data = stream.read(min(caplen, _SCAPY_MTU))
    return (data, wire_len) if len(data) == min(caplen, _SCAPY_MTU) else None


def _pcapng_block(stream) -> tuple[bytes, int] | None:
    head = stream.read(28)
    if len(head) < 12:
        return None
    # A block does not say its byte order; its section does: the type tells it. Simple packet
    # blocks (cut by their interface's snap length, which only the section says) are not read back.
    for order in ("<", ">"):
        block_type, block_len = _PCAPNG_HEAD[order].unpack_from(head)
        if block_type == 6 and len(head) == 28 and block_len >= 32:
            _, caplen, wire_len = _PCAPNG_EPB[order].unpack_from(head, 8)
            data = stream.read(min(caplen, block_len - 32, _SCAPY_MTU))
            return data, wire_len
    return None


def capture_destination(out_path: str | Path | None, node: str, iface: str) -> Path:
    """Where a capture copied back from a node goes: `out_path`, or a new private temp file."""
    if out_path is None:
        fd, name = tempfile.mkstemp(prefix=f"vxcap-{node}-{iface}-", suffix=".pcap")
        os.close(fd)
        path = Path(name)
    else:
        path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
