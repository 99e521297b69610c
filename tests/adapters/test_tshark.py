"""The tshark cross-check on run directories written with scapy: agreement on
healthy captures (with the frames where decoders usually part ways), and a line
for each disagreement."""

import shutil

import pytest
from scapy.layers.inet import ICMP, IP, UDP, fragment
from scapy.layers.l2 import Ether

from tests.run_support import POD, W, W2, W3, healthy_frames, vx, write_run
from vxcap.adapters.tshark import TsharkError, cross_check
from vxcap.core.errors import VxcapError
from vxcap.adapters.rundir import load_manifest
from vxcap.pipeline import analyze

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (apt-get install tshark)")

def healthy(port=4789):
    return healthy_frames(port)


def check(run, **kwargs):
    report = analyze(run).report
    return report, cross_check(run, load_manifest(run), report, **kwargs)


def test_healthy_captures_agree(tmp_path):
    report, lines = check(write_run(tmp_path, healthy()))
    assert report["verdict"] == "pass"
    assert lines == []


def test_frames_where_decoders_part_ways_still_agree(tmp_path):
    """An ICMP error quotes an IPv4 header (not the flow's address), and a big VXLAN
    packet fragmented on the underlay: both decoders must count them the same way."""
    frames = healthy()
    quoted = Ether() / IP(src=POD[W2], dst=POD[W]) / ICMP(type=3, code=3) / IP(src=POD[W], dst=POD[W2]) / UDP()
    big = vx(W, W3, n=1, payload=b"x" * 1400)[0]
    pieces = [Ether() / piece for piece in fragment(big[IP], fragsize=800)]
    frames[W] += [quoted] + pieces
    frames[W2] += [quoted]
    report, lines = check(write_run(tmp_path, frames))
    flows = {(f["src_node"], f["dst_node"]): f for f in report["flows"]}
    # 3 requests and 3 replies on each of two captures, plus the ICMP error / the three fragments
    assert flows[(W2, W)]["packets"] == 14 and flows[(W, W3)]["packets"] == 13
    assert lines == []


def test_vxlan_on_a_port_the_manifest_names_is_decoded_as_vxlan(tmp_path):
    # 8472 (the Linux kernel's VXLAN port) is one tshark does not dissect by default:
    # agreement here means cross_check told tshark about it.
    report, lines = check(write_run(tmp_path, healthy(port=8472), port=8472))
    assert report["verdict"] == "pass"
    assert lines == []


def test_vxlan_on_a_port_tshark_was_not_told_about_is_a_disagreement(tmp_path):
    report, lines = check(write_run(tmp_path, healthy(port=8472), port=4789))
    assert any("UDP port 8472, expected 4789" in r for f in report["flows"] for r in f["reasons"])
    assert f"{W} -> {W3} ({POD[W]} -> {POD[W3]}) on {W}/eth1: tshark saw 0 packets, vxcap 6" in lines
    assert f"{W3} -> {W} ({POD[W3]} -> {POD[W]}) on {W3}/eth1: tshark saw 0 packets, vxcap 6" in lines
    assert f"{W} -> {W3} ({POD[W]} -> {POD[W3]}): tshark sees it as none, vxcap as vxlan" in lines
    assert any("told VXLAN is on UDP 4789" in line and "UDP 8472" in line for line in lines)
    # The plain pair is decoded alike by both.
    assert not any(f"{W} -> {W2} " in line or f"{W2} -> {W} " in line for line in lines)
    assert all("\n" not in line for line in lines)


def test_a_report_that_does_not_match_its_captures_is_caught(tmp_path):
    run = write_run(tmp_path, healthy())
    report = analyze(run).report
    flow = next(f for f in report["flows"] if (f["src_node"], f["dst_node"]) == (W, W3))
    flow["vni"] = 4097
    flow["outer_dst"] = "10.10.20.99"
    flow["seen_on"][f"{W3}/eth1"] = 2
    lines = cross_check(run, load_manifest(run), report)
    name = f"{W} -> {W3} ({POD[W]} -> {POD[W3]})"
    assert f"{name}: tshark VNI 4096, vxcap 4097" in lines
    assert f"{name}: tshark outer 10.10.10.11 -> 10.10.20.13, vxcap 10.10.10.11 -> 10.10.20.99" in lines
    assert f"{name} on {W3}/eth1: tshark saw 6 packets, vxcap 2" in lines
    assert len(lines) == 3


def test_missing_tshark_is_a_one_line_error(tmp_path):
    run = write_run(tmp_path, healthy())
    with pytest.raises(TsharkError) as err:
        check(run, tshark_path=tmp_path / "nowhere" / "tshark")
    assert isinstance(err.value, VxcapError)
    message = str(err.value)
    assert "tshark not found at" in message and "nowhere" in message and "\n" not in message
