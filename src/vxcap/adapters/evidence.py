"""Evidence people can open: pcapng files that merge every node's capture in time
order, one pcapng interface per node capture, so Wireshark shows on which node
(`k01-worker/eth1`) each frame was seen.

`evidence/<src>-<dst>.pcapng` holds one direction's frames (selected by the
reference decoder: innermost source and destination are the flow's pods),
`evidence/all-nodes.pcapng` every frame of every capture. The captures are read
once, as a streaming k-way merge by timestamp: memory does not grow with them.
"""

from __future__ import annotations

import heapq
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any, BinaryIO

from vxcap.adapters.pcapfile import CaptureFileError, classic_pcap, iter_records
from vxcap.core.encap import reading_for
from vxcap.core.fastdecode import classify, ethernet_key, pair_key
from vxcap.core.manifest import Manifest
from vxcap.core.rundir import ALL_NODES_PCAPNG, FLOW_PCAPNG_DIR, flow_pcapng_name
from vxcap.core.wireshark import interface_name

try:  # optional, built by setup.py: without it the Python loop below writes every file
    from vxcap.core._evidence import blocks as _BLOCKS
except ImportError:  # pragma: no cover - a machine without a C compiler
    _BLOCKS = None

# pcapng (draft-ietf-opsawg-pcapng): block types and option codes written here.
_SHB, _IDB, _EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_OPT_END, _OPT_SHB_USERAPPL, _OPT_IF_NAME, _OPT_IF_TSRESOL = 0, 4, 2, 9
# Frames come with float seconds: exact to the microsecond, not to the nanosecond.
_TSRESOL_MICRO = 6
_TICKS = 10**_TSRESOL_MICRO


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def section_header(application: str = "vxcap") -> bytes:
    options = _option(_OPT_SHB_USERAPPL, application.encode()) + _option(_OPT_END, b"")
    # Section length -1: not computed, readers walk the blocks.
    return _block(_SHB, struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + options)


# A pcap header's link-type field carries FCS information above its low 16 bits; a pcapng
# interface has 16 bits for the link type alone.
_LINKTYPE_BITS = 0xFFFF
_OPTION_MAX = 0xFFFF
_TICKS_MAX = 2**64 - 1


def interface_description(linktype: int, name: str) -> bytes:
    options = (
        _option(_OPT_IF_NAME, name.encode()[:_OPTION_MAX])
        + _option(_OPT_IF_TSRESOL, bytes([_TSRESOL_MICRO]))
        + _option(_OPT_END, b"")
    )
    # Snap length 0: no limit was set on what was kept.
    return _block(_IDB, struct.pack("<HHI", linktype & _LINKTYPE_BITS, 0, 0) + options)


_EPB_HEAD = struct.Struct("<IIIIIII")  # type, length, interface, time high, time low, captured, original
_LENGTH = struct.Struct("<I")
_PADDING = (b"", b"\0\0\0", b"\0\0", b"\0")


def enhanced_packet(interface_id: int, timestamp: float, data: bytes, wire_len: int) -> bytes:
    # A capture's clock can say anything (a pcapng in seconds-resolution ticks reaches 2**64 s):
    # the microsecond count is kept to the 64 bits the block has rather than refused.
    ticks = round(timestamp * _TICKS) if timestamp == timestamp else 0
    if not 0 <= ticks <= _TICKS_MAX:
        ticks = 0 if ticks < 0 else _TICKS_MAX
    caplen = len(data)
    if wire_len < caplen:
        wire_len = caplen
    total = 32 + caplen + (-caplen & 3)
    return b"".join((
        _EPB_HEAD.pack(_EPB, total, interface_id, ticks >> 32, ticks & 0xFFFFFFFF, caplen, min(wire_len, 0xFFFFFFFF)),
        data, _PADDING[caplen & 3], _LENGTH.pack(total),
    ))


class PcapngWriter:
    """One pcapng section whose interfaces are added as their first frame arrives,
    so a flow's file names only the node captures that saw the flow."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.interfaces: dict[tuple[int, int], int] = {}
        self.frames = 0
        handle.write(section_header())

    def add_interface(self, source: int, name: str, linktype: int) -> int:
        interface_id = self.interfaces[(source, linktype)] = len(self.interfaces)
        self.handle.write(interface_description(linktype, name))
        return interface_id

    def write(self, source: int, name: str, linktype: int, timestamp: float, data: bytes, wire_len: int,
              block: bytes | None = None) -> None:
        """`block`: this frame's enhanced packet block when already built with this file's interface id."""
        if block is None:
            interface_id = self.interfaces.get((source, linktype))
            if interface_id is None:
                interface_id = self.add_interface(source, name, linktype)
            block = enhanced_packet(interface_id, timestamp, data, wire_len)
        self.handle.write(block)
        self.frames += 1


def _open_private(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file of the same name keeps its mode through O_TRUNC
    return os.fdopen(fd, "wb")


@dataclass
class _Source:
    index: int
    name: str
    path: Path
    label: str  # the path as the manifest names it: reports travel, local paths do not
    errors: list[str] = field(default_factory=list)

    def frames(self) -> Iterator[tuple[float, int, int, bytes, int]]:
        # A capture that breaks off is evidence up to where it broke; the error is reported.
        try:
            for data, linktype, wire_len, timestamp in iter_records(self.path):
                yield timestamp, self.index, linktype, data, wire_len
        except CaptureFileError as err:
            self.errors.append(str(err).replace(str(self.path), self.label))


@dataclass(frozen=True)
class _FlowOut:
    src_node: str
    dst_node: str
    key: tuple[IPv4Address | IPv6Address, IPv4Address | IPv6Address]
    file: str


def _merge_key(item: tuple) -> tuple[float, int]:
    return item[0], item[1]


def _flows(report: dict[str, Any]) -> list[_FlowOut]:
    flows = []
    for flow in report.get("flows", []):
        key = (ip_address(flow["src_ip"]), ip_address(flow["dst_ip"]))
        wireguard = "wireguard" in (flow.get("expected"), flow.get("observed"))  # expected, or seen instead
        if wireguard and flow.get("outer_src") and flow.get("outer_dst"):
            key = (ip_address(flow["outer_src"]), ip_address(flow["outer_dst"]))  # the pods are encrypted
        flows.append(
            _FlowOut(
                src_node=flow["src_node"],
                dst_node=flow["dst_node"],
                key=key,
                file=flow_pcapng_name(flow["src_node"], flow["dst_node"], flow.get("family", "IPv4")),
            )
        )
    return flows


_CHUNK = 1 << 18  # the blocks of one chunk are built, then written: memory stays at a few chunks
_SCAPY_MTU = 0xFFFF  # iter_records keeps a frame's first 65535 bytes, as scapy's readers do


def _write_one_pcap(source: _Source, shape: tuple[bool, bool, int], everything: PcapngWriter,
                    writers: list[PcapngWriter], by_key: dict[int, list[int]], eth_key: Any, slow: Any,
                    python_ports: frozenset[int] = frozenset()) -> int:
    """The merge loop's work for one classic pcap capture (the frames `iter_records` yields, in its
    order), by the compiled loop: the same blocks in the same files. Returns the frames written.
    `python_ports`: UDP ports the reading gives another format; their frames are keyed by `eth_key`."""
    big, nano, linktype = shape
    name, scale = source.name, 1e-9 if nano else 1e-6
    if linktype == 1:
        def key(frame: bytes):
            return eth_key(frame, 0, len(frame))
    else:
        def key(frame: bytes):
            return slow(frame, 0, len(frame), linktype)
    pairs = sorted(by_key)
    packed = struct.pack(f"={len(pairs)}Q", *pairs)
    ports = struct.pack(f"={len(python_ports)}H", *sorted(python_ports))
    record = struct.Struct((">" if big else "<") + "IIII").unpack_from
    written = 0

    def write(writer: PcapngWriter, chunk: bytes, frames: int) -> None:
        if (0, linktype) not in writer.interfaces:  # one capture, one link type: interface 0 everywhere
            writer.add_interface(0, name, linktype)
        writer.handle.write(chunk)
        writer.frames += frames

    try:
        with open(source.path, "rb") as stream:
            stream.seek(24)
            data, off = b"", 0
            while True:
                off, frames, chunk, filed = _BLOCKS(data, off, len(data), big, nano, linktype, packed, key, False,
                                                   ports)
                if frames:
                    write(everything, chunk, frames)
                    written += frames
                    for slot, flow_chunk, count in filed:
                        for i in by_key[pairs[slot]]:
                            write(writers[i], flow_chunk, count)
                if off + 16 <= len(data):
                    sec, frac, caplen, wire_len = record(data, off)
                    if caplen > _SCAPY_MTU and off + 16 + _SCAPY_MTU <= len(data):
                        # Longer than scapy keeps: its first 65535 bytes, here as in iter_records.
                        frame = data[off + 16:off + 16 + _SCAPY_MTU]
                        block = enhanced_packet(0, sec + frac * scale, frame, wire_len)
                        write(everything, block, 1)
                        written += 1
                        facts = key(frame) if by_key else None
                        for i in by_key.get(facts[0], ()) if facts is not None else ():
                            write(writers[i], block, 1)
                        off += 16 + caplen
                        if off > len(data):  # the rest of the record lies beyond the buffer
                            stream.seek(off - len(data), os.SEEK_CUR)
                            data, off = b"", 0
                        continue
                more = stream.read(_CHUNK)
                if not more:
                    break  # the file ends at a record's end, or inside one (not a frame, as iter_records)
                data, off = data[off:] + more, 0
    except OSError:
        pass  # iter_records ends the file quietly on a read error too
    return written


def write_evidence(run_dir: Path, manifest: Manifest, report: dict[str, Any], compiled: bool = True) -> dict[str, Any]:
    """Write `evidence/` in `run_dir` (0700, files 0600) and say what is in it:

    `{"all_nodes": {"file", "frames"}, "flows": [{"src_node", "dst_node", "file", "frames"}],
    "errors": [...]}`, files relative to `run_dir`. Rewrites earlier evidence.
    `compiled`: one classic pcap capture goes through the compiled loop when it is built (the
    same bytes; the tests hold it to the Python loop, which does everything else).
    """
    run_dir = Path(run_dir)
    out_dir = run_dir / FLOW_PCAPNG_DIR
    out_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(out_dir, 0o700)

    sources = [
        _Source(i, interface_name(cap.node, cap.iface), run_dir / cap.file, cap.file)
        for i, cap in enumerate(manifest.captures)
    ]
    flows = _flows(report)
    # Frames are picked by the fast decoder's classification (src << 32 | dst of the
    # innermost IPv4): the same filing as the verdicts, at a fraction of scapy's cost.
    by_key: dict[int, list[int]] = {}
    for i, flow in enumerate(flows):
        by_key.setdefault(pair_key(*flow.key), []).append(i)
    # The frames are filed as the verdicts read them: with the run's formats (WireGuard ports, IPv6).
    reading = reading_for(manifest.topology)
    eth_key, slow = partial(ethernet_key, reading=reading), partial(classify, reading=reading)

    handles: list[BinaryIO] = []
    try:
        handles.append(_open_private(run_dir / ALL_NODES_PCAPNG))
        everything = PcapngWriter(handles[-1])
        writers = []
        for flow in flows:
            handles.append(_open_private(run_dir / flow.file))
            writers.append(PcapngWriter(handles[-1]))

        # The compiled loop's own key reading knows IPv4 flows and 64-bit keys only: a run that
        # judges IPv6 files its frames with the Python functions alone. The ports the reading gives
        # Geneve or WireGuard (a Calico run's reading names both, to say so when they appear) are
        # handed to the Python function frame by frame.
        plain_reading = not reading.ipv6 and all(k < 1 << 64 for k in by_key)
        usable = compiled and _BLOCKS is not None and len(sources) == 1 and plain_reading
        shape = classic_pcap(sources[0].path) if usable else None
        if shape is not None:
            everything.frames = _write_one_pcap(sources[0], shape, everything, writers, by_key, eth_key, slow,
                                                reading.wireguard_ports | reading.geneve_ports)
            sources_left: list[_Source] = []
        else:
            sources_left = sources
        # heapq.merge is stable: equal timestamps keep the manifest's capture order.
        merged = heapq.merge(*(s.frames() for s in sources_left), key=_merge_key)
        names = [s.name for s in sources]
        interfaces = everything.interfaces
        write_all = everything.handle.write
        # The per-frame loop is most of writing evidence: the all-nodes block is built inline, and
        # reused for a flow's file whenever that file numbers the frame's interface the same.
        written = 0
        for timestamp, index, linktype, data, wire_len in merged:
            written += 1
            interface_id = interfaces.get((index, linktype))
            if interface_id is None:
                interface_id = everything.add_interface(index, names[index], linktype)
            block = enhanced_packet(interface_id, timestamp, data, wire_len)
            write_all(block)
            if not by_key:
                continue
            facts = eth_key(data, 0, len(data)) if linktype == 1 else slow(data, 0, len(data), linktype)
            if facts is None:
                continue
            for i in by_key.get(facts[0], ()):
                writers[i].write(index, names[index], linktype, timestamp, data, wire_len,
                                 block if writers[i].interfaces.get((index, linktype)) == interface_id else None)
        if sources_left:
            everything.frames = written
    finally:
        for handle in handles:
            handle.close()

    return {
        "all_nodes": {"file": ALL_NODES_PCAPNG, "frames": everything.frames},
        "flows": [
            {"src_node": f.src_node, "dst_node": f.dst_node, "file": f.file, "frames": w.frames}
            for f, w in zip(flows, writers)
        ],
        "errors": [e for s in sources for e in s.errors],
    }
