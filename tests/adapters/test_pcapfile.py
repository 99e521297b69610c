"""Capture files on disk: read_flows (fast path) and iter_frames (scapy's readers) agree on every frame."""

from __future__ import annotations

import gzip
import struct
from ipaddress import IPv4Address

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, CookedLinuxV2, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from scapy.utils import PcapNgWriter, wrpcap

from vxcap.adapters.pcapfile import CaptureFileError, Frame, frames_at, iter_frames, pick_frames, read_flows
from vxcap.core.decode import decode_frame
from vxcap.core.frames import tally
from vxcap.core.model import Wire

POD_A, POD_B, POD_C = "192.168.23.70", "192.168.209.70", "192.168.81.70"


def packets():
    cross = (Ether() / IP(src="10.10.10.10", dst="10.10.20.13") / UDP(sport=40001, dport=4789) / VXLAN(vni=4096)
             / Ether(dst="66:d2:0c:f0:ef:e5") / IP(src=POD_A, dst=POD_B) / ICMP() / Raw(b"x" * 56))
    same = Ether() / IP(src=POD_A, dst=POD_C) / ICMP() / Raw(b"y" * 56)
    out = [cross, same, Ether() / ARP(), cross.copy(), same.copy(), same.copy()]
    for i, packet in enumerate(out):
        packet.time = 1_700_000_000 + i / 4
    return out


def reference(path):
    return tally(decode_frame(f.data, f.linktype, f.wire_len) for f in iter_frames(path))


def test_read_flows_agrees_with_scapy_frame_by_frame(tmp_path):
    path = tmp_path / "mix.pcap"
    wrpcap(str(path), packets())
    result = read_flows(path)
    assert result.frames == 6
    assert result.flows == reference(path)
    assert result.flows[(IPv4Address(POD_A), IPv4Address(POD_B))].encaps == {Wire.VXLAN: 2}


def test_small_chunks_read_the_same(tmp_path):
    path = tmp_path / "mix.pcap"
    wrpcap(str(path), packets())
    assert read_flows(path, chunk_size=7) == read_flows(path)


def test_the_vxlan_ports_named_are_where_frames_that_are_not_vxlan_are_counted(tmp_path):
    def to(dport, flags):
        return (Ether() / IP(src="10.10.10.10", dst="10.10.20.13") / UDP(sport=40001, dport=dport)
                / VXLAN(flags=flags, vni=4096) / Ether() / IP(src=POD_A, dst=POD_B) / ICMP())

    path = tmp_path / "ports.pcap"
    wrpcap(str(path), [to(4789, 0x00), to(4789, 0x00), to(8472, 0x00), to(4789, 0x08), to(8472, 0x08)])
    assert read_flows(path).not_vxlan == {4789: 2}  # 4789 unless told otherwise
    assert read_flows(path, vxlan_ports=frozenset({8472})).not_vxlan == {8472: 1}
    assert read_flows(path, chunk_size=7, vxlan_ports=frozenset({4789, 8472})).not_vxlan == {4789: 2, 8472: 1}


def test_pcapng_and_gzip(tmp_path):
    ng = tmp_path / "mix.pcapng"
    writer = PcapNgWriter(str(ng))
    for packet in packets():
        writer.write(packet)
    writer.close()
    assert read_flows(ng).flows == reference(ng)
    zipped = tmp_path / "mix.pcapng.gz"
    zipped.write_bytes(gzip.compress(ng.read_bytes()))
    assert read_flows(zipped) == read_flows(ng)
    assert list(iter_frames(zipped)) == list(iter_frames(ng))


def test_iter_frames_gives_link_type_original_length_and_time(tmp_path):
    path = tmp_path / "cooked.pcap"
    frame = CookedLinuxV2(proto=0x0800) / IP(src=POD_A, dst=POD_C) / ICMP() / Raw(b"z" * 500)
    frame.time = 1_700_000_123.5
    frame.wirelen = 1000
    wrpcap(str(path), [frame], linktype=276)
    (only,) = list(iter_frames(path))
    assert only.linktype == 276 and only.wire_len == 1000
    assert only.timestamp == pytest.approx(1_700_000_123.5)
    assert only.data == bytes(frame)
    assert read_flows(path).flows[(IPv4Address(POD_A), IPv4Address(POD_C))].max_wire_len == 1000


def test_nanosecond_big_endian_pcap_time(tmp_path):
    data = bytes(Ether() / IP(src=POD_A, dst=POD_C) / ICMP())
    path = tmp_path / "nano.pcap"
    path.write_bytes(struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
                     + struct.pack(">IIII", 1_700_000_000, 250_000_000, len(data), len(data)) + data)
    assert list(iter_frames(path)) == [Frame(data, 1, len(data), pytest.approx(1_700_000_000.25))]
    assert read_flows(path).frames == 1


def test_a_cut_last_record_is_left_out_by_both(tmp_path):
    path = tmp_path / "cut.pcap"
    wrpcap(str(path), packets())
    path.write_bytes(path.read_bytes()[:-10])
    result = read_flows(path)
    assert result.truncated and result.frames == 5
    assert len(list(iter_frames(path))) == 5
    assert result.flows == reference(path)


def test_pick_frames_returns_the_evidence_frames_of_each_flow(tmp_path):
    path = tmp_path / "mix.pcap"
    wrpcap(str(path), packets())
    result = read_flows(path, samples_per_flow=2)
    picked = pick_frames(path, [i for indices in result.sample_frames.values() for i in indices])
    assert sorted(picked) == [0, 1, 3, 4]
    for flow, indices in result.sample_frames.items():
        for index in indices:
            frame = picked[index]
            assert decode_frame(frame.data, frame.linktype, frame.wire_len).key == flow
    assert pick_frames(path, []) == {}


@pytest.mark.parametrize("form", ["pcap", "pcap-big-endian", "pcapng", "pcapng.gz"])
def test_frames_at_reads_back_the_evidence_frames_scapy_reads(tmp_path, form):
    path = tmp_path / f"mix.{form}"
    if form.startswith("pcapng"):
        writer = PcapNgWriter(str(path))
        for packet in packets():
            writer.write(packet)
        writer.close()
    else:
        wrpcap(str(path), packets(), endianness=">" if form.endswith("big-endian") else "<")
    if form.endswith(".gz"):
        path.write_bytes(gzip.compress(path.read_bytes()))
    result = read_flows(path, samples_per_flow=2, judged=frozenset({int(IPv4Address(POD_B))}))
    assert set(result.sample_frames) == {(IPv4Address(POD_A), IPv4Address(POD_B))}  # the judged flow only
    read = frames_at(path, result.frame_at)
    assert sorted(read) == [0, 3]
    scapy = list(iter_frames(path))
    for index, frame in read.items():
        assert tuple(frame) == tuple(scapy[index][:3])
    assert frames_at(path, {}) == {}


@pytest.mark.parametrize("content", [b"", b"just some text\n", b"\xd4\xc3\xb2\xa1\x02\x00"])
def test_not_a_capture_is_a_one_line_capture_file_error(tmp_path, content):
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    for read in (read_flows, lambda p: list(iter_frames(p))):
        with pytest.raises(CaptureFileError) as caught:
            read(path)
        message = str(caught.value)
        assert str(path) in message and "\n" not in message


def test_a_missing_file_is_a_capture_file_error(tmp_path):
    for read in (read_flows, lambda p: list(iter_frames(p))):
        with pytest.raises(CaptureFileError, match="cannot read"):
            read(tmp_path / "nope.pcap")


def test_an_unsupported_link_type_is_a_capture_file_error(tmp_path):
    path = tmp_path / "null.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 0))
    with pytest.raises(CaptureFileError, match="link type 0"):
        read_flows(path)
