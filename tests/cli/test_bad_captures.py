"""`vxcap analyze` on every kind of bad, odd or hostile input a run directory can hold.

Each test writes its own run directory: frames built with scapy, written with
scapy's writers or with struct-built headers (nanoseconds, big-endian, cut or
mutated records). A file that cannot be read costs that file only: one line
naming it, in the output and in report.json, and the other files' flows are
still judged. A frame that is legal but unusual is judged like any other, and
judged right. Nothing ever ends in a traceback.
"""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from scapy.utils import PcapNgWriter, wrpcap

from tests.run_support import MAC, POD, UNDERLAY, W, W2, W3, new_run, write_manifest
from vxcap.cli.main import cli
from vxcap.exit_status import ExitStatus

VXLAN_PAIR, PLAIN_PAIR = (W, W3), (W, W2)
DIRECTIONS = [(W, W3), (W3, W), (W, W2), (W2, W)]


# ---------------------------------------------------------------- frames


def inner(src, dst, i=0, payload=56):
    return Ether(dst=MAC[dst]) / IP(src=POD[src], dst=POD[dst]) / ICMP(seq=i) / Raw(b"x" * payload)


def vxlan_ip(src, dst, i=0, vni=4096, header=None, payload=56):
    """IP/UDP/VXLAN/inner; `header` replaces the 8-byte VXLAN header with raw bytes."""
    udp = IP(src=UNDERLAY[src], dst=UNDERLAY[dst]) / UDP(sport=40000 + i, dport=4789)
    if header is None:
        return udp / VXLAN(vni=vni) / inner(src, dst, i, payload)
    return udp / Raw(header) / inner(src, dst, i, payload)


def plain_ip(src, dst, i=0):
    return IP(src=POD[src], dst=POD[dst]) / ICMP(seq=i) / Raw(b"p" * 56)


def node_ips(builder, n=3) -> dict[str, list]:
    """Every node's capture of the healthy run, as IP packets built by `builder(kind, src, dst, i)`:
    each pod's echo requests, and after them the peer's replies (the same packets the other way, type 0)."""
    def replies(packets):
        answered = []
        for packet in packets:
            packet = packet.copy()
            if ICMP in packet and packet[ICMP].type == 8:
                packet[ICMP].type = 0
                del packet[ICMP].chksum
            answered.append(packet)
        return answered

    vx = [builder("vxlan", a, b, i) for a, b in (VXLAN_PAIR, VXLAN_PAIR[::-1]) for i in range(n)]
    pl = [builder("plain", a, b, i) for a, b in (PLAIN_PAIR, PLAIN_PAIR[::-1]) for i in range(n)]
    vx_back = replies([builder("vxlan", b, a, i) for a, b in (VXLAN_PAIR, VXLAN_PAIR[::-1]) for i in range(n)])
    pl_back = replies([builder("plain", b, a, i) for a, b in (PLAIN_PAIR, PLAIN_PAIR[::-1]) for i in range(n)])
    return {W: vx + vx_back + pl + pl_back, W3: vx + vx_back, W2: pl + pl_back}


def healthy_ip(kind, src, dst, i):
    return vxlan_ip(src, dst, i) if kind == "vxlan" else plain_ip(src, dst, i)


def ethernet(frames):
    return [Ether() / f for f in frames]


# ---------------------------------------------------------------- files


def pcap_struct(frames, linktype=1, order="<", nano=False, snaplen=65535) -> bytes:
    """A classic pcap written by hand: any byte order and time resolution, records cut to snaplen."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for i, frame in enumerate(frames):
        data = bytes(frame)
        kept = data[:snaplen]
        fraction = i * (1000 if nano else 1)
        out.append(struct.pack(order + "IIII", 1_700_000_000, fraction, len(kept), len(data)) + kept)
    return b"".join(out)


def scapy_pcap(frames, tmp_path: Path, **options) -> bytes:
    path = tmp_path / "scratch.pcap"
    wrpcap(str(path), frames, **options)
    data = path.read_bytes()
    path.unlink()
    return data


def scapy_pcapng(frames, tmp_path: Path) -> bytes:
    path = tmp_path / "scratch.pcapng"
    writer = PcapNgWriter(str(path))
    for frame in frames:
        writer.write(frame)
    writer.close()
    data = path.read_bytes()
    path.unlink()
    return data


def write_run(tmp_path: Path, files: dict[str, bytes], names: dict[str, str] | None = None) -> Path:
    run = new_run(tmp_path)
    captures = {node: (names or {}).get(node, f"{node}-eth1.pcap") for node in files}
    for node, name in captures.items():
        (run / name).write_bytes(files[node])
    return write_manifest(run, captures, (VXLAN_PAIR, PLAIN_PAIR))


def healthy_files(tmp_path: Path) -> dict[str, bytes]:
    return {node: scapy_pcap(ethernet(ips), tmp_path) for node, ips in node_ips(healthy_ip).items()}


# ---------------------------------------------------------------- running and reading


def analyze(run: Path):
    result = CliRunner().invoke(cli, ["analyze", str(run)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def report_of(run: Path) -> dict:
    return json.loads((run / "report.json").read_text())


def flows(report) -> dict:
    return {(f["src_node"], f["dst_node"]): f for f in report["flows"]}


def assert_reference_verdicts(report, directions=DIRECTIONS):
    """What the reference lab's healthy run says: VXLAN VNI 4096 between the node IPs across subnets, plain within."""
    f = flows(report)
    for src, dst in directions:
        flow = f[(src, dst)]
        assert flow["verdict"] == "pass", flow
        if {src, dst} == set(VXLAN_PAIR):
            assert (flow["observed"], flow["vni"], flow["udp_dport"]) == ("vxlan", 4096, 4789)
            assert (flow["outer_src"], flow["outer_dst"]) == (UNDERLAY[src], UNDERLAY[dst])
        else:
            assert flow["observed"] == "plain" and flow["vni"] is None
        assert flow["packets"] >= 3


def output_lines(result) -> list[str]:
    return [line.strip() for line in result.output.splitlines()]


# ---------------------------------------------------------------- files that cannot be read


def cut_in_a_record(tmp_path):
    data = healthy_files(tmp_path)[W2]
    return data[:-30]  # tcpdump killed hard in the middle of the last record


def damaged_length(tmp_path):
    data = bytearray(healthy_files(tmp_path)[W2])
    first_record = 24
    second = first_record + 16 + struct.unpack_from("<I", data, first_record + 8)[0]
    struct.pack_into("<I", data, second + 8, 0x7FFFFFF0)  # a record that claims 2 GB
    return bytes(data), second


UNREADABLE = [
    pytest.param(lambda tmp: b"GET / HTTP/1.1\r\nHost: example\r\n\r\n",
                 f"{W2}-eth1.pcap: not a pcap or pcapng capture (starts with 47455420)", id="not-a-capture"),
    pytest.param(lambda tmp: b"", f"{W2}-eth1.pcap: empty file: not a pcap or pcapng capture", id="empty"),
    pytest.param(lambda tmp: b"\xd4\xc3\xb2\xa1\x02\x00\x04",
                 f"{W2}-eth1.pcap: not a pcap or pcapng capture (too short for a file header)", id="half-a-header"),
    pytest.param(lambda tmp: struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 147),
                 f"{W2}-eth1.pcap: pcap link type 147 is not supported (Ethernet, Linux SLL/SLL2 or raw IPv4)",
                 id="unsupported-link-type"),
    pytest.param(lambda tmp: b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\xde\xad\xbe\xef" + b"\0" * 16,
                 f"{W2}-eth1.pcap: not a pcapng capture (bad byte-order magic in the section header)", id="bad-pcapng"),
    pytest.param(lambda tmp: gzip.compress(b"not a capture either"),
                 f"{W2}-eth1.pcap: not a pcap or pcapng capture (starts with 6e6f7420)", id="gzip-of-garbage"),
    pytest.param(lambda tmp: gzip.compress(healthy_files(tmp)[W2])[:-20],
                 f"{W2}-eth1.pcap: cannot read: Compressed file ended before the end-of-stream marker was reached",
                 id="gzip-cut-short"),
]


@pytest.mark.parametrize("content,message", UNREADABLE)
def test_a_file_that_cannot_be_read_costs_that_file_only(tmp_path, content, message):
    files = healthy_files(tmp_path)
    files[W2] = content(tmp_path)
    run = write_run(tmp_path, files)
    result = analyze(run)
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    report = report_of(run)
    assert report["errors"] == [message]
    assert f"✗ {message}" in output_lines(result)
    assert report["verdict"] == "fail"
    assert_reference_verdicts(report, [(W, W3), (W3, W)])  # the other files still count
    assert str(run) not in message  # reports travel: no local paths
    # ... and no direction through worker2 can pass without its capture: the reason names it
    assert f"no usable capture of {W2} (receiver): {message}" in flows(report)[(W, W2)]["reasons"]
    assert f"no usable capture of {W2} (sender): {message}" in flows(report)[(W2, W)]["reasons"]


def test_a_capture_cut_in_the_middle_of_a_record_counts_every_frame_before_it(tmp_path):
    files = healthy_files(tmp_path)
    files[W2] = cut_in_a_record(tmp_path)
    run = write_run(tmp_path, files)
    result = analyze(run)
    warning = f"{W2}-eth1.pcap: the last record is cut short (capture killed?); every frame before it counts"
    report = report_of(run)
    assert report["warnings"] == [warning] and report["errors"] == []
    assert f"! {warning}" in output_lines(result)
    # The last frame of W2's file, W's reply to W2's third echo on its way in, was cut: W2 -> W can no
    # longer show that reply back, and a cut capture cannot tell a lost reply from a missing record.
    assert flows(report)[(W, W2)]["seen_on"] == {f"{W}/eth1": 6, f"{W2}/eth1": 5, f"{W3}/eth1": 0}
    from_w2 = flows(report)[(W2, W)]
    assert from_w2["verdict"] == "fail" and from_w2["reasons"] == [
        f"inconclusive: {W2}/eth1 is damaged (the last record is cut short), and not every echo request is "
        "accounted for (3 left, 3 arrived, 3 answered, 2 came back)"]
    assert from_w2["delivery"] == {"sent": None, "left_sender": 3, "arrived_receiver": 3, "answered": 3,
                                   "replies_back": 2, "flooded": 0,
                                   "notes": [f"1 of 3 replies that left {W}/eth1 never reached {W2}/eth1"]}
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    # Every echo of W -> W2 is accounted for at every hop, cut capture or not: it passes.
    assert_reference_verdicts(report, [(W, W3), (W3, W), (W, W2)])
    capture = next(c for c in report["captures"] if c["node"] == W2)
    assert capture["damaged"] == "the last record is cut short" and capture["usable"]


def test_a_record_claiming_gigabytes_stops_the_file_there_with_a_warning(tmp_path):
    files = healthy_files(tmp_path)
    files[W2], at = damaged_length(tmp_path)
    run = write_run(tmp_path, files)
    result = analyze(run)
    warning = f"{W2}-eth1.pcap: damaged record at byte {at}: claims {0x7FFFFFF0} bytes"
    report = report_of(run)
    assert report["warnings"] == [warning]
    assert f"! {warning}" in output_lines(result)
    # one frame of W2's capture was read before the damage: W -> W2 is on it, W2 -> W is not
    assert flows(report)[(W, W2)]["seen_on"][f"{W2}/eth1"] == 1
    assert flows(report)[(W2, W)]["verdict"] == "fail"
    assert f"{POD[W2]} -> {POD[W]} not seen on {W2}/eth1 (sender)" in flows(report)[(W2, W)]["reasons"]
    assert result.exit_code == ExitStatus.VERDICT_FAILED


def test_a_pcapng_whose_second_section_is_cut_short_keeps_what_came_before(tmp_path):
    # scapy's reader raised its own exception here (not a CaptureFileError): analyze crashed in the evidence step
    files = {node: scapy_pcapng(ethernet(ips), tmp_path) for node, ips in node_ips(healthy_ip).items()}
    files[W3] += struct.pack("<IIIHHq", 0x0A0D0D0A, 100, 0x1A2B3C4D, 1, 0, -1) + b"\0" * 8
    run = write_run(tmp_path, files)
    result = analyze(run)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    report = report_of(run)
    assert report["warnings"] == [f"{W3}-eth1.pcap: the last record is cut short (capture killed?); every frame before it counts"]
    assert_reference_verdicts(report)
    (evidence_error,) = report["evidence"]["errors"]
    assert evidence_error.endswith(
        f"{W3}-eth1.pcap: damaged after frame 12: PcapNg: Invalid Section Header Block options (too short)")


def test_evidence_errors_name_the_capture_without_its_local_path(tmp_path):
    files = {node: scapy_pcapng(ethernet(ips), tmp_path) for node, ips in node_ips(healthy_ip).items()}
    files[W3] += struct.pack("<IIIHHq", 0x0A0D0D0A, 100, 0x1A2B3C4D, 1, 0, -1) + b"\0" * 8
    run = write_run(tmp_path, files)
    analyze(run)
    assert report_of(run)["evidence"]["errors"] == [
        f"{W3}-eth1.pcap: damaged after frame 12: PcapNg: Invalid Section Header Block options (too short)"]


# ---------------------------------------------------------------- legal but unusual: judged, and judged right


def all_as(tmp_path, write) -> dict[str, bytes]:
    return {node: write(ips) for node, ips in node_ips(healthy_ip).items()}


FORMATS = [
    pytest.param(lambda ips, tmp: scapy_pcapng(ethernet(ips), tmp), id="pcapng"),
    pytest.param(lambda ips, tmp: gzip.compress(scapy_pcapng(ethernet(ips), tmp)), id="pcapng-gzip"),
    pytest.param(lambda ips, tmp: pcap_struct(ethernet(ips), nano=True), id="nanosecond-pcap"),
    pytest.param(lambda ips, tmp: pcap_struct(ethernet(ips), order=">"), id="big-endian-pcap"),
    pytest.param(lambda ips, tmp: pcap_struct(ethernet(ips), order=">", nano=True), id="big-endian-nanosecond-pcap"),
    pytest.param(lambda ips, tmp: pcap_struct([CookedLinux(proto=0x0800) / p for p in ips], linktype=113), id="linux-sll"),
    pytest.param(lambda ips, tmp: pcap_struct([CookedLinuxV2(proto=0x0800) / p for p in ips], linktype=276), id="linux-sll2"),
    pytest.param(lambda ips, tmp: pcap_struct(ips, linktype=101), id="raw-ip"),
    pytest.param(lambda ips, tmp: pcap_struct(ips, linktype=228), id="raw-ipv4"),
    pytest.param(lambda ips, tmp: pcap_struct([Ether() / Dot1Q(vlan=100) / p for p in ips]), id="8021q-tagged-underlay"),
    pytest.param(lambda ips, tmp: pcap_struct([Ether(type=0x88A8) / Dot1Q(vlan=100) / Dot1Q(vlan=7) / p for p in ips]),
                 id="qinq-tagged-underlay"),
    pytest.param(lambda ips, tmp: pcap_struct(ethernet(ips), snaplen=96), id="snaplen-96"),
]


@pytest.mark.parametrize("write", FORMATS)
def test_legal_formats_and_link_types_are_judged_right(tmp_path, write):
    run = write_run(tmp_path, all_as(tmp_path, lambda ips: write(ips, tmp_path)))
    result = analyze(run)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    report = report_of(run)
    assert report["errors"] == [] and report["warnings"] == []
    assert_reference_verdicts(report)


def test_frames_cut_before_the_icmp_header_cannot_prove_delivery(tmp_path):
    # snaplen 84 ends VXLAN frames at the inner IPv4 header: the wire format is judged, but no echo's
    # identifier and sequence are there to follow from hop to hop, so those directions cannot pass.
    run = write_run(tmp_path, all_as(tmp_path, lambda ips: pcap_struct(ethernet(ips), snaplen=84)))
    result = analyze(run)
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    report = report_of(run)
    for src, dst in (VXLAN_PAIR, VXLAN_PAIR[::-1]):
        flow = flows(report)[(src, dst)]
        assert (flow["observed"], flow["vni"]) == ("vxlan", 4096)
        assert flow["reasons"] == [f"no echo request seen leaving {src}/eth1: delivery not proven"]
    assert_reference_verdicts(report, [(W, W2), (W2, W)])  # plain frames keep their ICMP header at 84 bytes


def test_snaplen_cut_frames_are_sized_by_their_original_length(tmp_path):
    big = lambda kind, src, dst, i: vxlan_ip(src, dst, i, payload=1300) if kind == "vxlan" else plain_ip(src, dst, i)  # noqa: E731
    ips = node_ips(big)
    run = write_run(tmp_path, {node: pcap_struct(ethernet(p), snaplen=128) for node, p in ips.items()})
    result = analyze(run)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    expected = len(Ether() / vxlan_ip(W, W3, payload=1300))
    assert flows(report_of(run))[(W, W3)]["max_frame_len"] == expected > 128


def test_vxlan_reserved_bits_are_ignored_as_rfc_7348_asks(tmp_path):
    header = struct.pack("!BBBBI", 0x08 | 0x40, 0xFF, 0xFF, 0xFF, (4096 << 8) | 0xAB)  # every reserved bit set
    vx = lambda kind, src, dst, i: vxlan_ip(src, dst, i, header=header) if kind == "vxlan" else plain_ip(src, dst, i)  # noqa: E731
    run = write_run(tmp_path, {node: pcap_struct(ethernet(p)) for node, p in node_ips(vx).items()})
    result = analyze(run)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert_reference_verdicts(report_of(run))


def test_unrelated_traffic_of_any_kind_changes_no_verdict_and_what_cannot_be_judged_is_named(tmp_path):
    noise = [
        Ether() / ARP(psrc=UNDERLAY[W], pdst=UNDERLAY[W2]),
        Ether(dst="01:80:c2:00:00:0e", type=0x88CC) / Raw(b"\x02\x07\x04" + b"\0" * 20),  # LLDP
        Ether() / IPv6(src="fd00::1", dst="fd00::2") / UDP(dport=4789) / VXLAN(vni=4096) / inner(W, W3),
        Ether() / IP(src=UNDERLAY[W], dst=UNDERLAY[W3]) / TCP(dport=6443, flags="S"),
        Ether() / IP(src="172.18.0.5", dst="172.18.0.4") / UDP(dport=53) / Raw(b"\0" * 30),
        Ether() / IP(src=UNDERLAY[W], dst=UNDERLAY[W3]) / UDP(dport=4789) / VXLAN(vni=4096) / Ether() / IPv6() / ICMP(),
        Ether() / IP(src=UNDERLAY[W], dst=UNDERLAY[W3], proto=47) / Raw(b"\0" * 24),  # GRE
        Ether(type=0x0800) / Raw(b"\x60" + b"\0" * 39),  # IPv6 behind an IPv4 ethertype
        Ether(type=0x9000) / Raw(b"\0" * 46),
        Ether() / Raw(b""),
    ]
    files = {node: pcap_struct(noise + ethernet(ips) + noise) for node, ips in node_ips(healthy_ip).items()}
    run = write_run(tmp_path, files)
    result = analyze(run)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    report = report_of(run)
    assert report["errors"] == []
    # Each file holds the noise twice: the IPv6-underlay VXLAN frame, and the VXLAN to 4789 whose inner
    # frame is IPv6 (valid VXLAN; vxcap judges IPv4 pods only). DNS on 53, GRE, LLDP and the rest: no word.
    assert report["warnings"] == [
        warning
        for node in (W, W2, W3)
        for warning in (
            f"{node}-eth1.pcap: 2 VXLAN frames to UDP port 4789 carry IPv6 pod traffic, not judged "
            "(vxcap reads IPv4 pods)",
            f"{node}-eth1.pcap: 2 IPv6 frames not judged (vxcap reads IPv4 underlays)",
        )
    ]
    assert_reference_verdicts(report)


def test_outer_ip_fragments_are_decoded_and_fail_the_direction_as_an_mtu_fault(tmp_path):
    """VXLAN fragmented on the underlay: the first fragment still reads as the flow's VXLAN
    (VNI, outer IPs), the rest are the nodes' own IP, and the direction fails: the overlay
    sends packets the underlay cannot carry whole."""
    def fragmented(kind, src, dst, i):
        return vxlan_ip(src, dst, i, payload=1400) if kind == "vxlan" else plain_ip(src, dst, i)

    files = {}
    for node, packets in node_ips(fragmented).items():
        frames = []
        for packet in packets:
            frames += fragment(packet, fragsize=800) if packet.haslayer(VXLAN) else [packet]
        files[node] = pcap_struct(ethernet(frames))
    run = write_run(tmp_path, files)
    result = analyze(run)
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    report = report_of(run)
    assert report["errors"] == []
    for src, dst in (VXLAN_PAIR, VXLAN_PAIR[::-1]):
        flow = flows(report)[(src, dst)]
        assert (flow["observed"], flow["vni"], flow["outer_src"], flow["outer_dst"]) == (
            "vxlan", 4096, UNDERLAY[src], UNDERLAY[dst])
        # three first fragments of the requests and three of the replies, on each of two captures
        assert flow["outer_fragments"] == flow["packets"] == 12
        assert flow["verdict"] == "fail" and any("fragmented" in reason for reason in flow["reasons"]), flow
    assert_reference_verdicts(report, [(W, W2), (W2, W)])


# ---------------------------------------------------------------- malformed VXLAN: not the flow, and said so


MALFORMED = [
    pytest.param(struct.pack("!BBBB", 0x08, 0, 0x10, 0), id="short-header"),  # 4 bytes, then the inner frame
    pytest.param(struct.pack("!B3xI", 0x00, 4096 << 8), id="i-flag-clear"),
]


@pytest.mark.parametrize("header", MALFORMED)
def test_malformed_vxlan_is_not_taken_for_the_flow(tmp_path, header):
    def bad(kind, src, dst, i):
        if kind == "vxlan" and (src, dst) == VXLAN_PAIR:
            udp = IP(src=UNDERLAY[src], dst=UNDERLAY[dst]) / UDP(sport=40000 + i, dport=4789)
            return udp / Raw(header) / inner(src, dst, i)
        return healthy_ip(kind, src, dst, i)

    run = write_run(tmp_path, {node: pcap_struct(ethernet(p)) for node, p in node_ips(bad).items()})
    result = analyze(run)
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    report = report_of(run)
    forward = flows(report)[VXLAN_PAIR]
    assert forward["verdict"] == "fail" and forward["packets"] == 0
    assert forward["reasons"] == [f"no packets of {POD[W]} -> {POD[W3]} seen ({W}/eth1, {W2}/eth1, {W3}/eth1)"]
    assert f"✗ {W} → {W3}: {forward['reasons'][0]}" in output_lines(result)
    # W's answers to W3's echoes go out in the same malformed VXLAN: nothing shows them answered.
    assert flows(report)[(W3, W)]["reasons"] == [f"3 echo requests reached {W}/eth1, 0 answered"]
    assert_reference_verdicts(report, [(W, W2), (W2, W)])


@pytest.mark.parametrize("header", MALFORMED)
def test_malformed_vxlan_is_named_in_a_per_file_warning(tmp_path, header):
    def bad(kind, src, dst, i):
        if kind == "vxlan" and (src, dst) == VXLAN_PAIR:
            return IP(src=UNDERLAY[src], dst=UNDERLAY[dst]) / UDP(dport=4789) / Raw(header) / inner(src, dst, i)
        return healthy_ip(kind, src, dst, i)

    run = write_run(tmp_path, {node: pcap_struct(ethernet(p)) for node, p in node_ips(bad).items()})
    analyze(run)
    warnings = report_of(run)["warnings"]
    assert f"{W}-eth1.pcap: 6 frames to UDP port 4789 are not valid VXLAN" in " ".join(warnings)  # 3 echoes, 3 replies


def test_an_ipv6_underlay_is_named_in_a_per_file_warning(tmp_path):
    def v6(kind, src, dst, i):
        if kind == "vxlan":
            return IPv6(src=f"fd00::{1 if src == W else 3}", dst=f"fd00::{3 if src == W else 1}") / UDP(dport=4789) / VXLAN(vni=4096) / inner(src, dst, i)
        return healthy_ip(kind, src, dst, i)

    run = write_run(tmp_path, {node: pcap_struct(ethernet(p)) for node, p in node_ips(v6).items()})
    result = analyze(run)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert f"{W}-eth1.pcap: 12 IPv6 frames not judged (vxcap reads IPv4 underlays)" in report_of(run)["warnings"]


def test_an_ipv6_underlay_or_inner_traffic_is_not_taken_for_the_ipv4_flow(tmp_path):
    def v6(kind, src, dst, i):
        if kind == "vxlan" and (src, dst) == VXLAN_PAIR:  # VXLAN over an IPv6 underlay
            return IPv6(src="fd00::1", dst="fd00::3") / UDP(dport=4789) / VXLAN(vni=4096) / inner(src, dst, i)
        if kind == "plain" and (src, dst) == PLAIN_PAIR:  # IPv6 pod traffic where IPv4 was expected
            return IPv6(src="fd00:10::1", dst="fd00:10::2") / ICMP()
        return healthy_ip(kind, src, dst, i)

    run = write_run(tmp_path, {node: pcap_struct(ethernet(p)) for node, p in node_ips(v6).items()})
    result = analyze(run)
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    report = report_of(run)
    assert report["errors"] == []
    for src, dst in (VXLAN_PAIR, PLAIN_PAIR):
        assert flows(report)[(src, dst)]["reasons"] == [
            f"no packets of {POD[src]} -> {POD[dst]} seen ({W}/eth1, {W2}/eth1, {W3}/eth1)"]
        # ... and the peer's echoes, answered the same way, are answered by nothing vxcap can read
        assert flows(report)[(dst, src)]["reasons"] == [f"3 echo requests reached {W}/eth1, 0 answered"]


# ---------------------------------------------------------------- manifests: one message naming the field, exit 2


def manifest_of(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def rewrite(run: Path, change) -> None:
    data = manifest_of(run)
    change(data)
    (run / "manifest.json").write_text(json.dumps(data))


def set_path(data, path, value=None, delete=False):
    *parents, last = path
    for key in parents:
        data = data[key]
    if delete:
        del data[last]
    else:
        data[last] = value


BAD_MANIFESTS = [
    pytest.param(lambda run: (run / "manifest.json").write_text("{\"version\": 1,"),
                 "manifest.json is not JSON: Expecting property name enclosed in double quotes: line 1 column 15 (char 14)", id="not-json"),
    pytest.param(lambda run: (run / "manifest.json").write_bytes(b"\xff\xfe\x00garbage"), "is not JSON: ", id="binary"),
    pytest.param(lambda run: (run / "manifest.json").write_text("[1, 2]"),
                 "manifest: the top level must be a JSON object", id="a-list"),
    pytest.param(lambda run: rewrite(run, lambda d: set_path(d, ["pairs"], delete=True)),
                 "manifest: manifest.pairs is missing", id="missing-pairs"),
    pytest.param(lambda run: rewrite(run, lambda d: set_path(d, ["nodes", 0, "underlay"], delete=True)),
                 "manifest: nodes[0].underlay is missing", id="missing-underlay"),
    pytest.param(lambda run: rewrite(run, lambda d: set_path(d, ["nodes", 2, "captures", 0, "file"], "k01-worker3.pcap")),
                 f"manifest: captures of node {W3}: file 'k01-worker3.pcap' does not exist in ", id="file-missing"),
    pytest.param(lambda run: rewrite(run, lambda d: set_path(d, ["pods", 1, "ip"], "192.168.164.300")),
                 "manifest: pods[1].ip '192.168.164.300' is not an IPv4 address", id="bad-pod-ip"),
    pytest.param(lambda run: rewrite(run, lambda d: set_path(d, ["pods", 1, "ip"], "fd00::1")),
                 "manifest: pods[1].ip 'fd00::1' is not an IPv4 address", id="ipv6-pod-ip"),
    pytest.param(lambda run: rewrite(run, lambda d: set_path(d, ["nodes", 1, "underlay"], "10.10.10.12")),
                 "manifest: nodes[1].underlay '10.10.10.12' needs a prefix length, like 10.10.10.11/24", id="no-prefix"),
    pytest.param(lambda run: rewrite(run, lambda d: set_path(d, ["nodes", 0, "name"], "../../etc")),
                 "manifest: nodes[0].name '../../etc' is not valid: a node name is a DNS-1123 subdomain", id="node-path"),
    pytest.param(lambda run: rewrite(run, lambda d: set_path(d, ["nodes", 0, "captures", 0, "iface"], "eth 1")),
                 "manifest: nodes[0].captures[0].iface 'eth 1' is not valid: an interface name is 1-15 characters",
                 id="iface-with-a-space"),
    pytest.param(lambda run: rewrite(run, lambda d: set_path(d, ["nodes", 0, "captures", 0, "file"], "/etc/shadow")),
                 "manifest: nodes[0].captures[0].file '/etc/shadow' is not valid: a file must be inside the run directory",
                 id="absolute-file"),
    pytest.param(lambda run: rewrite(run, lambda d: set_path(d, ["nodes", 0, "captures", 0, "file"], "../run/k01-worker-eth1.pcap")),
                 "manifest: nodes[0].captures[0].file '../run/k01-worker-eth1.pcap' is not valid", id="dotdot-file"),
]


@pytest.mark.parametrize("mangle,message", BAD_MANIFESTS)
def test_a_bad_manifest_is_one_line_naming_the_field_and_exit_2(tmp_path, mangle, message):
    run = write_run(tmp_path, healthy_files(tmp_path))
    mangle(run)
    result = analyze(run)
    assert result.exit_code == ExitStatus.USAGE, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0]
    assert not (run / "report.json").exists()  # nothing judged, nothing written
