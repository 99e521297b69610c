"""Fuzzing the decoders with damaged frames and damaged files.

Real captures are built with scapy (pcap in both byte orders, micro- and
nanosecond, pcapng, gzip; Ethernet, 802.1Q, Linux SLL/SLL2 and raw IP), then
mutated: bit flips, cuts, insertions, deletions, overwritten and repeated
spans, garbage headers. Whatever the bytes, a decoder returns a result or
raises its documented error (DecodeError, CaptureFileError: ValueErrors with
a one-line message), and the fast decoder says the same however the input is
chunked. Examples are bounded so the file runs in well under 30 s.
"""

from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from scapy.utils import PcapNgWriter, PcapWriter

from vxcap.adapters.pcapfile import CaptureFileError, iter_frames, pick_frames, read_flows
from vxcap.core.decode import decode_frame
from vxcap.core.fastdecode import DecodeError, DecodeResult, FastDecoder, classify, decode_bytes
from vxcap.core.frames import FrameFacts

NODE = {"w": "10.10.10.11", "w3": "10.10.20.13"}
POD = {"w": "192.168.81.65", "w3": "192.168.209.65", "w2": "192.168.164.129"}
VTEP_W3 = "66:d2:0c:f0:ef:e5"


def ip_frames() -> list:
    """What an underlay carries, as IP packets: VXLAN both ways, plain pod traffic, and neighbours."""
    vxlan = [
        IP(src=NODE[a], dst=NODE[b]) / UDP(sport=40000 + i, dport=4789) / VXLAN(vni=4096)
        / Ether(dst=VTEP_W3) / IP(src=POD[a], dst=POD[b]) / ICMP(seq=i) / Raw(b"v" * 48)
        for i, (a, b) in enumerate([("w", "w3"), ("w3", "w"), ("w", "w3")])
    ]
    plain = [IP(src=POD["w"], dst=POD["w2"]) / ICMP(seq=i) / Raw(b"p" * 56) for i in range(3)]
    other = [IP(src=NODE["w"], dst=NODE["w3"]) / TCP(dport=6443), IP(src=NODE["w"], dst=NODE["w3"], flags=1) / UDP(dport=4789)]
    return vxlan + plain + other


def ethernet_frames() -> list:
    framed = [Ether() / packet for packet in ip_frames()]
    framed.insert(2, Ether() / ARP())
    framed.insert(4, Ether() / Dot1Q(vlan=10) / ip_frames()[0])
    framed.append(Ether() / IPv6() / UDP())
    return framed


def pcap_bytes(frames: list, linktype: int = 1, order: str = "<", nano: bool = False, snaplen: int = 65535) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for i, frame in enumerate(frames):
        data = bytes(frame)
        kept = data[:snaplen]
        out.append(struct.pack(order + "IIII", 1_700_000_000 + i, i * 1000, len(kept), len(data)) + kept)
    return b"".join(out)


def scapy_written(writer_class, frames: list, **options) -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "capture"
        writer = writer_class(str(path), **options)
        for frame in frames:
            writer.write(frame)
        writer.close()
        return path.read_bytes()


def real_captures() -> dict[str, bytes]:
    eth = ethernet_frames()
    captures = {
        "pcap": scapy_written(PcapWriter, eth),
        "pcap-nano-big-endian": pcap_bytes(eth, order=">", nano=True),
        "pcap-snaplen-96": pcap_bytes(eth, snaplen=96),
        "pcapng": scapy_written(PcapNgWriter, eth),
        "sll": pcap_bytes([CookedLinux(proto=0x0800) / p for p in ip_frames()], linktype=113),
        "sll2": pcap_bytes([CookedLinuxV2(proto=0x0800) / p for p in ip_frames()], linktype=276),
        "raw-ip": pcap_bytes(ip_frames(), linktype=101),
    }
    captures["pcapng-gzip"] = gzip.compress(captures["pcapng"], mtime=0)
    return captures


CAPTURES = real_captures()
FRAMES = [(1, bytes(f)) for f in ethernet_frames()] + [(101, bytes(p)) for p in ip_frames()]


# -- mutations ------------------------------------------------------------------------


@st.composite
def mutation(draw, size: int):
    at = draw(st.integers(0, max(size - 1, 0)))
    kind = draw(st.sampled_from(["flip", "cut", "insert", "delete", "overwrite", "repeat"]))
    if kind == "flip":
        return (kind, at, draw(st.integers(0, 7)))
    if kind in ("insert", "overwrite"):
        return (kind, at, draw(st.binary(min_size=1, max_size=40)))
    return (kind, at, draw(st.integers(1, 120)))


def mutate(data: bytes, ops) -> bytes:
    out = bytearray(data)
    for kind, at, arg in ops:
        at = min(at, len(out))
        if kind == "flip" and at < len(out):
            out[at] ^= 1 << arg
        elif kind == "cut":
            del out[at:]
        elif kind == "insert":
            out[at:at] = arg
        elif kind == "delete":
            del out[at : at + arg]
        elif kind == "overwrite":
            out[at : at + len(arg)] = arg
        elif kind == "repeat":
            out[at:at] = out[at : at + arg]
    return bytes(out)


@st.composite
def damaged_captures(draw, names=tuple(sorted(CAPTURES))):
    name = draw(st.sampled_from(names))
    data = CAPTURES[name]
    ops = draw(st.lists(mutation(len(data)), min_size=1, max_size=6))
    return name, mutate(data, ops)


def one_line(err: BaseException) -> str:
    message = str(err)
    assert message and "\n" not in message, repr(message)
    return message


def fed_in_chunks(data: bytes, sizes: list[int]) -> DecodeResult:
    decoder = FastDecoder()
    at, i = 0, 0
    while at < len(data):
        size = sizes[i % len(sizes)]
        decoder.feed(memoryview(data)[at : at + size])
        at += size
        i += 1
    return decoder.close()


def decoded_or_error(decode, data: bytes):
    try:
        return decode(data)
    except DecodeError as err:
        return ("DecodeError", one_line(err))


# -- the fast decoder on bytes -----------------------------------------------------------

PCAP_HEADER = CAPTURES["pcap"][:24]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_captures(tuple(n for n in sorted(CAPTURES) if "gzip" not in n)), st.lists(st.integers(1, 300), min_size=1, max_size=4))
# A record length field that claims more than the file holds, in the middle of a file.
@example(("pcap", PCAP_HEADER + struct.pack("<IIII", 0, 0, 0x7FFFFFFF, 60) + b"\0" * 60), [7])
# A pcapng section header whose length is not a multiple of 4.
@example(("pcapng", b"\x0a\x0d\x0d\x0a\x1d\x00\x00\x00\x4d\x3c\x2b\x1a" + b"\0" * 40), [5])
def test_damaged_captures_decode_or_raise_decode_error_whatever_the_chunking(damaged, sizes):
    _, data = damaged
    whole = decoded_or_error(decode_bytes, data)
    assert decoded_or_error(lambda d: fed_in_chunks(d, sizes), data) == whole
    if isinstance(whole, DecodeResult):
        assert whole.problem is None or "\n" not in whole.problem
        assert whole.ipv4_frames + whole.ipv6_frames <= whole.frames
        assert set(whole.not_vxlan) <= {4789} and sum(whole.not_vxlan.values()) <= whole.ipv4_frames
        for flow, indices in whole.sample_frames.items():
            assert flow in whole.flows and indices == sorted(indices) and all(0 <= i < whole.frames for i in indices)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([0xA1B2C3D4, 0xA1B23C4D, 0xD4C3B2A1, 0x4D3CB2A1, 0x0A0D0D0A, 0x12345678]),
    st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
    st.binary(max_size=200),
)
def test_garbage_file_headers_raise_only_decode_error(magic, major, minor, snaplen, linktype, rest):
    data = struct.pack("<IHHiIII", magic, major, minor, 0, 0, snaplen, linktype) + rest
    result = decoded_or_error(decode_bytes, data)
    assert isinstance(result, (DecodeResult, tuple))


# -- frames, one at a time ---------------------------------------------------------------


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(FRAMES), st.sampled_from([1, 113, 276, 101, 228]), st.data())
def test_damaged_frames_are_facts_or_nothing_in_both_decoders(frame, linktype, data):
    _, raw = frame
    damaged = mutate(raw, data.draw(st.lists(mutation(len(raw)), min_size=1, max_size=4)))
    facts = decode_frame(damaged, linktype, data.draw(st.integers(0, 70000)))
    assert facts is None or isinstance(facts, FrameFacts)
    key = classify(damaged, 0, len(damaged), linktype)
    assert key is None or isinstance(key, tuple)


# -- files on disk: the streaming reader, scapy's readers, and what analyze does with them ----


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_captures())
def test_damaged_files_read_or_raise_capture_file_error(damaged):
    from vxcap.stages.decode import decode_point

    name, data = damaged
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"{name}.pcap"
        path.write_bytes(data)
        try:
            result = read_flows(path, chunk_size=512)
        except CaptureFileError as err:
            assert one_line(err).startswith(str(path))
            result = None
        try:
            frames = list(iter_frames(path))
        except CaptureFileError as err:
            assert one_line(err).startswith(str(path))
            frames = None
        if result is not None:
            wanted = [i for indices in result.sample_frames.values() for i in indices]
            try:
                picked = pick_frames(path, wanted)
            except CaptureFileError as err:
                one_line(err)
            else:
                assert set(picked) <= set(wanted)
            if frames is not None and not result.problem:
                # scapy numbers the frames as the fast decoder does: evidence indices point at the same frames
                assert len(frames) == result.frames, (len(frames), result.frames)
        try:
            decode_point(path, [])
        except ValueError as err:  # CaptureFileError, or the decoders disagreeing: both one line
            one_line(err)


def test_an_empty_and_a_missing_file_are_capture_file_errors(tmp_path):
    empty, absent = tmp_path / "empty.pcap", tmp_path / "absent.pcap"
    empty.write_bytes(b"")
    cases = [
        (read_flows, empty, f"{empty}: empty file: not a pcap or pcapng capture"),
        (lambda p: list(iter_frames(p)), empty, f"{empty}: not a pcap or pcapng capture ("),
        (read_flows, absent, f"{absent}: cannot read: No such file or directory"),
        (lambda p: list(iter_frames(p)), absent, f"{absent}: cannot read: No such file or directory"),
    ]
    for read, path, says in cases:
        try:
            read(path)
        except CaptureFileError as err:
            assert one_line(err).startswith(says), str(err)
        else:
            raise AssertionError(f"{path} was read")


# -- the evidence writer: whatever it reads, it writes pcapng that reads back ------------------------


def _frames_until_damage(path: Path) -> list:
    frames = []
    try:
        for frame in iter_frames(path):
            frames.append(frame)
    except CaptureFileError:
        pass
    return frames


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_captures(), st.integers(0, 2**32 - 1), st.booleans())
# The pcap link-type field with FCS information above its low 16 bits (found on a public capture
# corpus): Ethernet frames that end in a 4-byte FCS. It made interface_description die in struct.pack.
@example(("pcap", CAPTURES["pcap"]), 0x14000001, True)
@example(("pcap-nano-big-endian", CAPTURES["pcap-nano-big-endian"]), 0xFFFFFFFF, True)
def test_the_evidence_writer_never_crashes_and_writes_every_frame_it_read(damaged, linktype_field, set_linktype):
    from tests.run_support import POD as RUN_POD, W, W3, write_manifest
    from vxcap.adapters.evidence import write_evidence
    from vxcap.core.rundir import ALL_NODES_PCAPNG
    from vxcap.adapters.rundir import load_manifest

    name, data = damaged
    if set_linktype and name.startswith("pcap") and not name.startswith("pcapng") and len(data) >= 24:
        order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        data = data[:20] + struct.pack(order + "I", linktype_field) + data[24:]
    with tempfile.TemporaryDirectory() as directory:
        run = Path(directory)
        (run / "a.pcap").write_bytes(data)
        (run / "b.pcap").write_bytes(CAPTURES["pcapng"])
        write_manifest(run, {W: "a.pcap", W3: "b.pcap"})
        report = {"flows": [{"src_node": W, "dst_node": W3, "src_ip": POD["w"], "dst_ip": POD["w3"]},
                            {"src_node": W3, "dst_node": W, "src_ip": RUN_POD[W3], "dst_ip": RUN_POD[W]}]}
        written = write_evidence(run, load_manifest(run), report)
        read = _frames_until_damage(run / "a.pcap") + _frames_until_damage(run / "b.pcap")
        back = list(iter_frames(run / ALL_NODES_PCAPNG))  # scapy reads all of it: no damage written
        assert written["all_nodes"]["frames"] == len(back) == len(read)
        # an original length shorter than the captured bytes is written as the captured length
        assert sorted((f.data, f.linktype & 0xFFFF, max(f.wire_len, len(f.data))) for f in read) == sorted(
            (f.data, f.linktype, f.wire_len) for f in back)
        for flow in written["flows"]:
            assert len(list(iter_frames(run / flow["file"]))) == flow["frames"]
        assert all("\n" not in error for error in written["errors"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_captures(tuple(n for n in sorted(CAPTURES) if "gzip" not in n)), st.lists(st.integers(1, 300), min_size=1,
       max_size=4), st.one_of(st.none(), st.sets(st.sampled_from(sorted(set(POD.values()) | set(NODE.values()))))))
def test_damaged_captures_read_the_same_with_and_without_the_compiled_loop(damaged, sizes, judged):
    from ipaddress import IPv4Address

    _, data = damaged
    addresses = None if judged is None else frozenset(int(IPv4Address(a)) for a in judged)

    def decode(compiled: bool):
        def run(d: bytes):
            decoder = FastDecoder(judged=addresses, compiled=compiled)
            at, i = 0, 0
            while at < len(d):
                decoder.feed(memoryview(d)[at : at + sizes[i % len(sizes)]])
                at += sizes[i % len(sizes)]
                i += 1
            return decoder.close()
        return run

    assert decoded_or_error(decode(True), data) == decoded_or_error(decode(False), data)


def _read_until_damage(read, path: Path) -> tuple[list, bool]:
    frames = []
    try:
        for frame in read(path):
            frames.append(tuple(frame))
    except CaptureFileError as err:
        one_line(err)
        return frames, True
    return frames, False


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_captures(), st.integers(17, 4096))
@example(("pcap", CAPTURES["pcap"][:24] + struct.pack("<IIII", 0, 0, 70000, 70000) + b"x" * 70000), 64)
@example(("pcap", CAPTURES["pcap"][:24] + struct.pack("<IIII", 0, 0, 70000, 70000) + b"x" * 65535), 64)
@example(("pcap", CAPTURES["pcap"][:24] + struct.pack("<IIII", 0, 0, 70000, 70000) + b"x" * 65534), 64)
def test_the_struct_record_reader_yields_what_scapy_s_reader_yields(damaged, chunk_size):
    # The evidence writer reads classic pcap with struct (iter_records); scapy's reader (iter_frames)
    # is the reference: the same frames, bytes, link type, original length and time, and the same end.
    from vxcap.adapters.pcapfile import iter_records

    name, data = damaged
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"{name}.pcap"
        path.write_bytes(data)
        assert _read_until_damage(lambda p: iter_records(p, chunk_size), path) == _read_until_damage(iter_frames, path)
