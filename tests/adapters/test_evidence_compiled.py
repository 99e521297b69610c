"""The evidence writer's compiled loop (vxcap/core/_evidence.c) against the Python loop it copies:
the same pcapng blocks, the same frames filed in the same flows' files, byte for byte; on every
frame shape the decoder tests draw, and on whole generated captures, damaged ones included."""

import json
import random
import shutil
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import bench_analyze, gen_mix
from tests.core.test_fastdecode import underlay_frames
from vxcap.adapters import evidence
from vxcap.adapters.evidence import enhanced_packet, write_evidence
from vxcap.adapters.rundir import load_manifest
from vxcap.core.fastdecode import classify, ethernet_key

pytestmark = pytest.mark.skipif(evidence._BLOCKS is None, reason="the compiled evidence loop is not built")


def python_key(frame: bytes, linktype: int):
    """How the Python loop files a frame (write_evidence's merge loop)."""
    return ethernet_key(frame, 0, len(frame)) if linktype == 1 else classify(frame, 0, len(frame), linktype)


def records(frames, order: str) -> bytes:
    return b"".join(struct.pack(order + "IIII", sec, frac, len(data), wire_len) + data
                    for data, wire_len, sec, frac in frames)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(underlay_frames(), min_size=1, max_size=12), st.sampled_from("<>"), st.booleans(),
       st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), min_size=12, max_size=12),
       st.lists(st.integers(0, 2**64 - 1), max_size=3), st.booleans())
def test_blocks_and_filing_are_the_python_loops(drawn, order, nano, times, other_keys, through_python):
    linktype = drawn[0][0]
    frames = [(frame, wire_len, *times[i]) for i, (lt, frame, wire_len) in enumerate(drawn) if lt == linktype]
    keys = [python_key(data, linktype) for data, *_ in frames]
    wanted = {facts[0] for facts in keys if facts is not None and isinstance(facts[0], int)} | set(other_keys)
    pairs = sorted(wanted)
    data = records(frames, order)
    off, count, all_nodes, filed = evidence._BLOCKS(
        data, 0, len(data), order == ">", nano, linktype, struct.pack(f"={len(pairs)}Q", *pairs),
        lambda frame: python_key(frame, linktype), through_python)
    assert (off, count) == (len(data), len(frames))
    scale = 1e-9 if nano else 1e-6
    blocks = [enhanced_packet(0, sec + frac * scale, frame, wire_len) for frame, wire_len, sec, frac in frames]
    assert all_nodes == b"".join(blocks)
    expected = {}
    for block, facts in zip(blocks, keys):
        if facts is not None and facts[0] in wanted:
            slot = pairs.index(facts[0])
            chunk, n = expected.get(slot, (b"", 0))
            expected[slot] = (chunk + block, n + 1)
    assert {slot: (chunk, n) for slot, chunk, n in filed} == expected


def test_blocks_stop_at_a_cut_record_and_at_one_longer_than_scapy_keeps():
    frame = b"\x00" * 60
    whole = struct.pack("<IIII", 1, 2, 60, 60) + frame
    long = struct.pack("<IIII", 1, 2, 70000, 70000) + b"\x00" * 70000
    for data, stop in ((whole + whole[:40], len(whole)), (whole + long + whole, len(whole))):
        off, count, _, _ = evidence._BLOCKS(data, 0, len(data), False, False, 1, b"", None, False)
        assert (off, count) == (stop, 1)


def run_dir(tmp_path: Path, capture: bytes) -> Path:
    run = tmp_path / "run"
    run.mkdir(parents=True, exist_ok=True)
    (run / "mix.pcap").write_bytes(capture)
    (run / "manifest.json").write_text(json.dumps(bench_analyze.manifest()))
    return run


def report_for(run: Path) -> dict:
    """Every ordered pair of the k01 pods as a flow (write_evidence reads only these fields)."""
    manifest = load_manifest(run)
    pods = list(manifest.pods)
    return {"flows": [{"src_node": a.node, "dst_node": b.node, "src_ip": str(a.ip), "dst_ip": str(b.ip)}
                      for a in pods for b in pods if a is not b]}


def both_ways(tmp_path: Path, capture: bytes) -> dict:
    """The compiled loop's evidence is the Python loop's, byte for byte; and the compiled loop did run
    (a Calico run's reading names WireGuard's and Geneve's ports: their frames go through Python,
    the rest through the compiled loop). The Python loop's result."""
    outputs = []
    calls = []
    real = evidence._BLOCKS

    def counted(*args):
        calls.append(len(args))
        return real(*args)

    for compiled in (False, True):
        run = run_dir(tmp_path / str(compiled), capture)
        evidence._BLOCKS = counted
        try:
            result = write_evidence(run, load_manifest(run), report_for(run), compiled=compiled)
        finally:
            evidence._BLOCKS = real
        files = {p.name: p.read_bytes() for p in sorted((run / "evidence").iterdir())}
        outputs.append((result, files))
    assert outputs[0] == outputs[1]
    assert outputs[0][0]["all_nodes"]["frames"] > 0 or len(capture) < 40
    assert calls or len(capture) < 24 + 16, "the compiled loop was never used"
    return outputs[0][0]


def mix_bytes(tmp_path: Path, mix: str, count: int, seed: int) -> bytes:
    path = tmp_path / f"{mix}-{seed}.pcap"
    gen_mix.generate(count, seed, path, mix=mix)
    return path.read_bytes()


@pytest.mark.parametrize("mix", ["quiet", "busy"])
def test_write_evidence_compiled_is_the_python_loop_on_the_benchmark_mixes(tmp_path, mix):
    capture = mix_bytes(tmp_path, mix, 6000, 3)
    both_ways(tmp_path / "whole", capture)
    # and the judged frames do land in the flows' files (a test that files nothing proves little)
    run = run_dir(tmp_path / "again", capture)
    result = write_evidence(run, load_manifest(run), report_for(run))
    assert sum(flow["frames"] for flow in result["flows"]) > 50


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**31), st.sampled_from(["quiet", "busy"]))
def test_write_evidence_compiled_is_the_python_loop_on_damaged_captures(tmp_path_factory, seed, mix):
    tmp_path = tmp_path_factory.mktemp("damaged")
    rng = random.Random(seed)
    capture = bytearray(mix_bytes(tmp_path, mix, 300, seed % 1000))
    damage = rng.choice(["cut", "long", "bytes", "big-endian"])
    if damage == "cut":  # a capture killed mid-record, or its header cut
        capture = capture[:rng.randrange(len(capture))]
    elif damage == "long":  # a record longer than scapy keeps, whole or cut by the file's end
        at = 24
        for _ in range(rng.randrange(100)):
            at += 16 + struct.unpack_from("<I", capture, at + 8)[0]
        size = rng.choice([65535, 65536, 70000, 300000])
        record = struct.pack("<IIII", 5, 6, size, size + 4) + bytes(rng.randrange(256) for _ in range(64)) * (size // 64 + 1)
        capture[at:at] = record[:16 + size]
        if rng.random() < 0.3:
            capture = capture[:at + rng.randrange(16 + size)]
    elif damage == "bytes":  # flipped bytes anywhere after the file header
        for _ in range(rng.randrange(1, 20)):
            capture[rng.randrange(24, len(capture))] = rng.randrange(256)
    else:  # the same frames, written by a big-endian machine with nanosecond times
        out = bytearray(struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        at = 24
        while at + 16 <= len(capture):
            sec, usec, caplen, wire_len = struct.unpack_from("<IIII", capture, at)
            out += struct.pack(">IIII", sec, usec * 1000 + rng.randrange(1000), caplen, wire_len)
            out += capture[at + 16:at + 16 + caplen]
            at += 16 + caplen
        capture = out
    both_ways(tmp_path, bytes(capture))
    shutil.rmtree(tmp_path)


def test_geneve_and_wireguard_frames_are_filed_as_the_python_loop_files_them(tmp_path):
    """A Calico run's reading decodes Geneve on 6081 and names WireGuard on 51820/51821: the compiled
    loop hands those ports' frames to the Python function, so a Geneve frame carrying two pods'
    echo is filed under the pods' flow, not the nodes' (as a plain UDP datagram would be)."""
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.layers.vxlan import VXLAN
    from scapy.packet import Raw

    from vxcap.core import geneve

    w, w3 = gen_mix.POD["worker"], gen_mix.POD["worker3"]
    inner = bytes(Ether() / IP(src=w, dst=w3) / ICMP(id=7, seq=1) / (b"x" * 40))
    frames = [
        Ether() / IP(src="10.10.10.11", dst="10.10.20.13") / UDP(sport=40000, dport=4789) / VXLAN(vni=4096)
        / Ether() / IP(src=w, dst=w3) / ICMP(id=7, seq=2) / (b"x" * 40),
        Ether() / IP(src="10.10.10.11", dst="10.10.20.13") / UDP(sport=51820, dport=51820)
        / Raw(b"\x04\x00\x00\x00" + b"\x00" * 28 + b"y" * 32),
        Ether() / IP(src=w, dst=w3) / ICMP(id=7, seq=3) / (b"x" * 40),
        Ether() / IP(src="10.10.10.11", dst="10.10.20.13") / UDP(sport=40001, dport=6081)
        / Raw(geneve.build(geneve.GeneveHeader(vni=0, protocol=geneve.ETHERNET)) + inner),
    ]
    data = [bytes(f) for f in frames]
    capture = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1) + records(
        [(d, len(d), 1_700_000_000 + i, 0) for i, d in enumerate(data)], "<")
    result = both_ways(tmp_path, capture)
    (flow,) = [f for f in result["flows"] if (f["src_node"], f["dst_node"]) == ("k01-worker", "k01-worker3")]
    assert flow["frames"] == 3  # the VXLAN, the plain and the Geneve echo; the WireGuard message is the nodes'
