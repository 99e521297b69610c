"""evidence/*.pcapng, read back with tshark: exactly the expected frames, on the
right pcapng interface (`node/eth1`), in time order across the node captures."""

import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import wrpcap, wrpcapng

from tests.run_support import MAC, POD, UNDERLAY, W, W2, W3, new_run, write_manifest
from vxcap.adapters.evidence import write_evidence
from vxcap.adapters.rundir import load_manifest
from vxcap.pipeline import analyze

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")

T0 = 1_700_000_000.0


def vx(src, dst, seq, at):
    frame = (Ether() / IP(src=UNDERLAY[src], dst=UNDERLAY[dst]) / UDP(sport=40000 + seq, dport=4789)
             / VXLAN(vni=4096) / Ether(dst=MAC[dst]) / IP(src=POD[src], dst=POD[dst]) / ICMP(seq=seq))
    frame.time = T0 + at
    return frame


def plain(src, dst, seq, at):
    frame = Ether() / IP(src=POD[src], dst=POD[dst]) / ICMP(seq=seq)
    frame.time = T0 + at
    return frame


def write_run(tmp_path, frames, pcapng_nodes=()):
    run = new_run(tmp_path)
    names = {node: f"{node}-eth1.pcapng" if node in pcapng_nodes else f"{node}-eth1.pcap" for node in frames}
    for node, name in names.items():
        (wrpcapng if node in pcapng_nodes else wrpcap)(str(run / name), frames[node])
    return write_manifest(run, names, mtu=None)


def frames_seen():
    """Each echo leaves the sender's eth1 before it reaches the receiver's: the
    captures interleave in time, and no single capture holds the whole story."""
    return {
        W: [vx(W, W3, 1, 0.000), vx(W3, W, 1, 0.020), plain(W, W2, 1, 0.100), plain(W2, W, 1, 0.130),
            vx(W, W3, 2, 1.000), vx(W3, W, 2, 1.020)],
        W3: [vx(W, W3, 1, 0.004), vx(W3, W, 1, 0.016), vx(W, W3, 2, 1.004), vx(W3, W, 2, 1.016)],
        W2: [arp(W2, W, 0.050), plain(W, W2, 1, 0.102), plain(W2, W, 1, 0.128)],
    }


def arp(src, dst, at):
    frame = Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=UNDERLAY[src], pdst=UNDERLAY[dst])
    frame.time = T0 + at
    return frame


def read(path: Path) -> list[tuple[str, ...]]:
    """(interface name, time, innermost src, innermost dst, ICMP seq, frame length) per frame, as tshark reads it."""
    out = subprocess.run(
        [TSHARK, "-r", str(path), "-T", "fields", "-E", "separator=|",
         "-e", "frame.interface_name", "-e", "frame.time_epoch", "-e", "ip.src", "-e", "ip.dst",
         "-e", "icmp.seq", "-e", "frame.len", "-e", "frame.cap_len"],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        iface, when, src, dst, seq, length, caplen = line.split("|")
        rows.append((iface, f"{float(when) - T0:.3f}", src.split(",")[-1], dst.split(",")[-1], seq, length, caplen))
    return rows


@pytest.fixture()
def evidence(tmp_path):
    run = write_run(tmp_path, frames_seen(), pcapng_nodes=(W3,))
    outcome = analyze(run)
    return run, write_evidence(run, load_manifest(run), outcome.report)


def test_each_direction_holds_exactly_its_frames_from_every_node_in_time_order(evidence):
    run, _ = evidence
    assert [row[:5] for row in read(run / "evidence" / f"{W}-{W3}.pcapng")] == [
        (f"{W}/eth1", "0.000", POD[W], POD[W3], "1"),
        (f"{W3}/eth1", "0.004", POD[W], POD[W3], "1"),
        (f"{W}/eth1", "1.000", POD[W], POD[W3], "2"),
        (f"{W3}/eth1", "1.004", POD[W], POD[W3], "2"),
    ]
    assert [row[:5] for row in read(run / "evidence" / f"{W3}-{W}.pcapng")] == [
        (f"{W3}/eth1", "0.016", POD[W3], POD[W], "1"),
        (f"{W}/eth1", "0.020", POD[W3], POD[W], "1"),
        (f"{W3}/eth1", "1.016", POD[W3], POD[W], "2"),
        (f"{W}/eth1", "1.020", POD[W3], POD[W], "2"),
    ]
    assert [row[:5] for row in read(run / "evidence" / f"{W2}-{W}.pcapng")] == [
        (f"{W2}/eth1", "0.128", POD[W2], POD[W], "1"),
        (f"{W}/eth1", "0.130", POD[W2], POD[W], "1"),
    ]


def test_all_nodes_merges_every_frame_of_every_capture_in_time_order(evidence):
    run, written = evidence
    rows = read(run / "evidence" / "all-nodes.pcapng")
    assert len(rows) == 6 + 4 + 3  # the ARP frame too: all-nodes is the captures, merged
    times = [float(row[1]) for row in rows]
    assert times == sorted(times)
    assert sorted(row[0] for row in rows) == sorted([f"{W}/eth1"] * 6 + [f"{W3}/eth1"] * 4 + [f"{W2}/eth1"] * 3)
    assert written["all_nodes"] == {"file": "evidence/all-nodes.pcapng", "frames": 13}
    assert {(f["src_node"], f["dst_node"]): f["frames"] for f in written["flows"]} == {
        (W, W3): 4, (W3, W): 4, (W, W2): 2, (W2, W): 2}
    assert written["errors"] == []


def test_one_pcapng_interface_per_node_capture(evidence):
    run, _ = evidence
    out = subprocess.run(
        [TSHARK, "-r", str(run / "evidence" / "all-nodes.pcapng"), "-T", "fields",
         "-e", "frame.interface_id", "-e", "frame.interface_name"],
        capture_output=True, text=True, check=True,
    ).stdout
    pairs = {tuple(line.split("\t")) for line in out.splitlines()}
    assert len(pairs) == 3 and len({name for _, name in pairs}) == 3 and len({i for i, _ in pairs}) == 3
    # A plain same-subnet flow never crossed worker3: its file names only the two nodes that saw it.
    names = {row[0] for row in read(run / "evidence" / f"{W}-{W2}.pcapng")}
    assert names == {f"{W}/eth1", f"{W2}/eth1"}


def test_original_length_survives_a_snap_length(tmp_path):
    frames = frames_seen()
    cut = plain(W, W2, 7, 0.5) / (b"x" * 1400)
    kept = bytes(cut)[:96]
    cut_frame = Ether(kept)
    cut_frame.time = cut.time
    cut_frame.wirelen = len(cut)
    frames[W2].append(cut_frame)
    run = write_run(tmp_path, frames)
    write_evidence(run, load_manifest(run), analyze(run).report)
    row = [r for r in read(run / "evidence" / f"{W}-{W2}.pcapng") if r[4] == "7"]
    assert row and row[0][5:] == (str(len(cut)), "96")


def test_private_files_and_a_rerun_replaces_them(tmp_path):
    run = write_run(tmp_path, frames_seen())
    (run / "evidence").mkdir(mode=0o755)
    stale = run / "evidence" / "all-nodes.pcapng"
    stale.write_bytes(b"an older, longer file that must not leave a tail behind" * 100)
    stale.chmod(0o644)
    write_evidence(run, load_manifest(run), analyze(run).report)
    assert stat.S_IMODE((run / "evidence").stat().st_mode) == 0o700
    files = sorted((run / "evidence").iterdir())
    assert [f.name for f in files] == sorted(
        ["all-nodes.pcapng", f"{W}-{W3}.pcapng", f"{W3}-{W}.pcapng", f"{W}-{W2}.pcapng", f"{W2}-{W}.pcapng"])
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert len(read(stale)) == 13


def test_an_unreadable_capture_is_reported_and_the_others_still_merged(tmp_path):
    run = write_run(tmp_path, frames_seen())
    report = analyze(run).report
    (run / f"{W2}-eth1.pcap").write_bytes(b"not a capture file, not at all")
    written = write_evidence(run, load_manifest(run), report)
    assert len(written["errors"]) == 1 and f"{W2}-eth1.pcap" in written["errors"][0]
    rows = read(run / "evidence" / "all-nodes.pcapng")
    assert {row[0] for row in rows} == {f"{W}/eth1", f"{W3}/eth1"} and len(rows) == 10


def test_a_run_that_judged_nothing_still_gets_all_nodes(tmp_path):
    run = write_run(tmp_path, frames_seen())
    written = write_evidence(run, load_manifest(run), {"flows": []})
    assert written["flows"] == [] and written["all_nodes"]["frames"] == 13
    assert len(read(run / "evidence" / "all-nodes.pcapng")) == 13
