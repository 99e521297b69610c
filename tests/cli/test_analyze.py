"""`vxcap analyze` through click's runner, on run directories the tests write with scapy."""

import json
import stat

import pytest
from click.testing import CliRunner
from junitparser import Failure, JUnitXml

from tests.run_support import W, W2, W3, healthy_frames, pings, plain, vx, write_run
from vxcap.cli.main import cli
from vxcap.exit_status import ExitStatus

def analyze(run, *args):
    return CliRunner().invoke(cli, ["analyze", str(run), *args])


def test_healthy_run_passes_and_writes_report_and_junit(tmp_path):
    run = write_run(tmp_path, healthy_frames())
    result = analyze(run)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert "PASS 4/4 directions" in result.output
    report = json.loads((run / "report.json").read_text())
    assert report["verdict"] == "pass"
    flows = {(f["src_node"], f["dst_node"]): f for f in report["flows"]}
    assert flows[(W, W3)]["observed"] == "vxlan" and flows[(W, W3)]["vni"] == 4096
    assert flows[(W3, W)]["outer_src"] == "10.10.20.13" and flows[(W3, W)]["outer_dst"] == "10.10.10.11"
    assert flows[(W, W2)]["observed"] == "plain" and flows[(W, W2)]["packets"] == 12
    assert flows[(W, W2)]["wireshark_filter"] == "ip.src==192.168.81.65 && ip.dst==192.168.164.129"
    cases = list(JUnitXml.fromfile(str(run / "junit.xml")))[0]
    assert sorted(c.name for c in cases) == sorted(
        [f"{W} -> {W3} (vxlan)", f"{W3} -> {W} (vxlan)", f"{W} -> {W2} (plain)", f"{W2} -> {W} (plain)"])
    assert all(not c.result for c in cases)
    assert stat.S_IMODE((run / "report.json").stat().st_mode) == 0o600


def test_wrong_vni_fails_with_exit_1_and_names_both_values(tmp_path):
    frames = healthy_frames()
    cross = vx(W, W3, vni=4097) + vx(W3, W, reply=True) + vx(W3, W) + vx(W, W3, vni=4097, reply=True)
    frames[W] = cross + pings(plain, W, W2) + pings(plain, W2, W)
    frames[W3] = cross
    run = write_run(tmp_path, frames)
    result = analyze(run)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert "VNI 4097, expected 4096" in result.output
    case = next(c for c in list(JUnitXml.fromfile(str(run / "junit.xml")))[0] if c.name.startswith(f"{W} -> {W3}"))
    assert isinstance(case.result[0], Failure) and "VNI 4097, expected 4096" in case.result[0].message


def test_json_output_is_the_report(tmp_path):
    run = write_run(tmp_path, healthy_frames())
    result = analyze(run, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads((run / "report.json").read_text())


def test_unreadable_capture_is_reported_and_the_others_still_analysed(tmp_path):
    run = write_run(tmp_path, healthy_frames())
    (run / f"{W2}-eth1.pcap").write_bytes(b"this is not a capture file at all")
    result = analyze(run, "--json")
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    report = json.loads(result.stdout)
    assert len(report["errors"]) == 1 and report["errors"][0].startswith(f"{W2}-eth1.pcap: ")
    flows = {(f["src_node"], f["dst_node"]): f for f in report["flows"]}
    assert flows[(W, W3)]["verdict"] == "pass"


@pytest.mark.parametrize("mangle,message", [
    (lambda run: (run / "manifest.json").unlink(), "manifest.json does not exist"),
    (lambda run: (run / "manifest.json").write_text("{not json"), "is not JSON"),
    (lambda run: (run / f"{W3}-eth1.pcap").unlink(), "file 'k01-worker3-eth1.pcap' does not exist"),
    (lambda run: (run / "manifest.json").write_text(json.dumps({"version": 1})), "manifest.overlay is missing"),
])
def test_bad_run_directories_are_one_line_usage_errors(tmp_path, mangle, message):
    run = write_run(tmp_path, healthy_frames())
    mangle(run)
    result = analyze(run)
    assert result.exit_code == ExitStatus.USAGE
    assert message in result.output
    assert "Traceback" not in result.output


def test_not_a_directory(tmp_path):
    result = analyze(tmp_path / "nope")
    assert result.exit_code == ExitStatus.USAGE and "is not a directory" in result.output


def test_discovery_notes_travel_with_the_run_and_are_shown(tmp_path):
    run = write_run(tmp_path, healthy_frames())
    manifest = json.loads((run / "manifest.json").read_text())
    note = "k01-worker3: InternalIP 10.10.20.13/32 has no prefix: CrossSubnet behaves like Always for it"
    manifest["notes"] = [note]
    (run / "manifest.json").write_text(json.dumps(manifest))
    result = analyze(run)
    assert json.loads((run / "report.json").read_text())["notes"] == [note]
    assert note in " ".join(result.output.split())


def test_a_per_node_vni_override_is_what_that_nodes_vxlan_must_carry(tmp_path):
    # worker3's Felix says VNI 4097 (FelixConfiguration node.k01-worker3): its VXLAN carries 4097 and passes;
    # the twin without the override reads the same captures as a VNI fault.
    cross = vx(W, W3) + vx(W3, W, vni=4097, reply=True) + vx(W3, W, vni=4097) + vx(W, W3, reply=True)
    frames = healthy_frames()
    frames[W] = cross + pings(plain, W, W2) + pings(plain, W2, W)
    frames[W3] = cross
    run = write_run(tmp_path, frames)
    manifest = json.loads((run / "manifest.json").read_text())
    assert analyze(run).exit_code == ExitStatus.VERDICT_FAILED
    assert "VNI 4097, expected 4096" in json.dumps(json.loads((run / "report.json").read_text())["flows"])
    for node in manifest["nodes"]:
        if node["name"] == W3:
            node["vni"] = 4097
    (run / "manifest.json").write_text(json.dumps(manifest))
    result = analyze(run)
    assert result.exit_code == ExitStatus.SUCCESS, result.output


def _tagged(frames):
    from scapy.layers.l2 import Dot1Q, Ether

    return [Ether(src=f[Ether].src, dst=f[Ether].dst) / Dot1Q(vlan=20) / f[Ether].payload for f in frames]


def _with_link_evidence(run):
    for node in (W, W2, W3):
        links = [{"ifname": "eth1", "mtu": 1500, "address": "02:42:0a:0a:0a:99", "link_type": "ether"}]
        (run / f"{node}-eth1.link.json").write_text(json.dumps(links))


@pytest.mark.parametrize("tag", [False, True], ids=["untagged", "8021q-tagged"])
def test_a_full_size_frame_fits_the_underlay_with_or_without_a_vlan_tag(tmp_path, tag):
    # 1422-byte echoes make 1500-byte outer IP packets: a 1514-byte frame, 1518 with an 802.1Q tag.
    # The tag is the switch port's: it must not make the frame read bigger than the node's MTU.
    big = b"x" * 1422
    cross = (vx(W, W3, payload=big) + vx(W3, W, reply=True, payload=big)
             + vx(W3, W, payload=big) + vx(W, W3, reply=True, payload=big))
    frames = {W: cross, W3: cross}
    if tag:
        frames = {node: _tagged(f) for node, f in frames.items()}
    run = write_run(tmp_path, frames, pairs=((W, W3),))
    _with_link_evidence(run)
    result = analyze(run)
    report = json.loads((run / "report.json").read_text())
    assert not any("oversize" in r or "MTU" in r for f in report["flows"] for r in f["reasons"]), result.output
    assert {f["max_frame_len"] for f in report["flows"]} == {1514}
    # ... while a frame really too big still reads oversize, tagged or not
    too_big = vx(W, W3, payload=big + b"yyyy")
    frames = {node: f + (_tagged(too_big) if tag else too_big) for node, f in frames.items()}
    (tmp_path / "again").mkdir()
    run = write_run(tmp_path / "again", frames, pairs=((W, W3),))
    _with_link_evidence(run)
    analyze(run)
    report = json.loads((run / "report.json").read_text())
    forward = next(f for f in report["flows"] if f["src_node"] == W)
    assert any("IP packet 1504 > underlay MTU 1500" in r for r in forward["reasons"]), forward["reasons"]


def test_a_busy_nodes_other_flows_change_no_verdict_and_leave_only_counts(tmp_path):
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.layers.vxlan import VXLAN

    from tests.run_support import UNDERLAY

    # 400 other pod pairs between the same nodes, VXLAN and plain, among the test pods' frames
    others = [Ether() / IP(src=UNDERLAY[W], dst=UNDERLAY[W3]) / UDP(sport=40000, dport=4789) / VXLAN(vni=4096)
              / Ether() / IP(src=f"10.244.1.{i % 250 + 1}", dst=f"10.244.2.{i // 250 + 1}") / ICMP()
              for i in range(300)]
    others += [Ether() / IP(src=f"10.244.1.{i + 1}", dst="10.244.3.1") / ICMP() for i in range(100)]
    quiet = healthy_frames()
    busy = {node: others[:200] + frames + others[200:] for node, frames in quiet.items()}
    (tmp_path / "quiet").mkdir()
    (tmp_path / "busy").mkdir()
    quiet_report = json.loads(analyze(write_run(tmp_path / "quiet", quiet), "--json").stdout)
    result = analyze(write_run(tmp_path / "busy", busy), "--json")
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    busy_report = json.loads(result.stdout)
    assert busy_report["verdict"] == quiet_report["verdict"] == "pass"
    assert [(f["src_node"], f["dst_node"], f["verdict"], f["observed"], f["packets"]) for f in busy_report["flows"]] == [
        (f["src_node"], f["dst_node"], f["verdict"], f["observed"], f["packets"]) for f in quiet_report["flows"]]
    assert not [w for w in busy_report["warnings"] if "10.244" in w]
