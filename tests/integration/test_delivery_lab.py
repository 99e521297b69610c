"""Delivery on the real namespace lab: real kernel, real tcpdump, faults that break delivery
and leave the wire format right, each with its healthy twin.

Every lab here is named with this session's prefix (tests/lab_support.py).
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from click.testing import CliRunner

from tests.lab_support import flows, lab_session_guard, lab_test, running_lab, vxcap_run  # noqa: F401
from vxcap.adapters import netns, tcpdump
from vxcap.cli.main import cli
from vxcap.core.lab.faults import NeighbourWrongMac, RepliesBlackholed, UnderlayDropsVxlan
from vxcap.core.manifest import ProbeCount, manifest_dict
from vxcap.core.model import Pair
from vxcap.exit_status import ExitStatus

pytestmark = pytest.mark.usefixtures("lab_session_guard")

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"
COUNT = 2  # vxcap_run's echoes per direction


def analyze(run_dir):
    result = CliRunner().invoke(cli, ["analyze", str(run_dir)])
    assert "Traceback" not in result.output
    return result, json.loads((run_dir / "report.json").read_text())


def assert_delivered(flow):
    d = flow["delivery"]
    assert d["sent"] == COUNT and d["left_sender"] >= COUNT, d
    assert d["left_sender"] == d["arrived_receiver"] == d["answered"] == d["replies_back"], d
    assert d["notes"] == [] and flow["not_checked"] == [], flow


@lab_test
def test_the_healthy_twin_delivers_every_echo_at_every_hop_and_survives_analyze(tmp_path):
    with running_lab():
        result, run_dir, report = vxcap_run(tmp_path, "worker,worker3", "worker,worker2", count=COUNT)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    for flow in report["flows"]:
        assert flow["verdict"] == "pass", flow
        assert_delivered(flow)
    # The counts are on the terminal: the table's Echoes column (left → arrived, replies back ← answered);
    # the per-direction delivery lines are kept for directions with notes, checks not made or a failure.
    assert "Echoes" in result.output and "Echo delivery per direction" not in result.output
    for flow in report["flows"]:
        d = flow["delivery"]
        assert f"{d['left_sender']} → {d['arrived_receiver']}" in result.output
        assert f"{d['replies_back']} ← {d['answered']}" in result.output
    assert all(c["usable"] and c["kernel_dropped"] == 0 and c["damaged"] is None for c in report["captures"])
    # The healthy twin of the cut capture below: analyze of the untouched directory passes the same way.
    again, rejudged = analyze(run_dir)
    assert again.exit_code == ExitStatus.SUCCESS, again.output
    assert [f["delivery"] for f in rejudged["flows"]] == [f["delivery"] for f in report["flows"]]


@lab_test
def test_replies_blackholed_at_the_receiver_fail_naming_the_receiver(tmp_path):
    with running_lab() as lab:
        lab.apply_fault(RepliesBlackholed(W3, W))
        result, _, report = vxcap_run(tmp_path, "worker,worker3", count=COUNT)
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    forward = flows(report)[(W, W3)]
    # the wire format is right all the way: only delivery can catch it
    assert (forward["observed"], forward["vni"]) == ("vxlan", 4096)
    assert forward["verdict"] == "fail"
    (reason,) = [r for r in forward["reasons"] if "answered" in r]
    assert re.fullmatch(rf"\d+ echo requests reached {W3}/eth1, 0 answered", reason), reason
    d = forward["delivery"]
    assert d["arrived_receiver"] >= COUNT and d["answered"] == 0 and d["replies_back"] == 0
    assert reason in result.output


@lab_test
def test_the_underlay_dropping_vxlan_one_way_fails_that_direction_at_its_hop(tmp_path):
    with running_lab() as lab:
        lab.apply_fault(UnderlayDropsVxlan(W, W3))
        result, _, report = vxcap_run(tmp_path, "worker,worker3", count=COUNT)
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    forward, backward = flows(report)[(W, W3)], flows(report)[(W3, W)]
    (reason,) = [r for r in forward["reasons"] if " reached " in r]
    assert re.fullmatch(rf"\d+ left {W}/eth1, 0 reached {W3}/eth1", reason), reason
    assert forward["delivery"]["left_sender"] >= COUNT and forward["delivery"]["arrived_receiver"] == 0
    # The other way the requests get there and are answered; their replies die on the same broken hop.
    d = backward["delivery"]
    assert d["arrived_receiver"] == d["answered"] >= COUNT and d["replies_back"] == 0
    assert not any("0 reached" in r or "0 answered" in r for r in backward["reasons"]), backward["reasons"]
    assert f"{d['answered']} of {d['answered']} replies that left {W}/eth1 never reached {W3}/eth1" in d["notes"]


@lab_test
def test_frames_flooded_past_the_receiver_do_not_count_as_arrived(tmp_path):
    # worker addresses worker2 to a MAC nobody has: the switch floods the frames to every port of the
    # VLAN. A promiscuous capture on worker2 sees them; they were never worker2's, and nothing answers.
    with running_lab() as lab:
        lab.apply_fault(NeighbourWrongMac(W, W2))
        result, _, report = vxcap_run(tmp_path, "worker,worker2", count=COUNT)
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    forward = flows(report)[(W, W2)]
    (reason,) = [r for r in forward["reasons"] if " reached " in r]
    # (a capture that is not promiscuous does not see the flooded frames at all: same hop, no count)
    assert re.fullmatch(rf"(\d+) left {W}/eth1, 0 reached {W2}/eth1( \(\1 seen there addressed to another MAC: "
                        rf"flooded, not delivered\))?", reason), reason
    assert forward["delivery"]["arrived_receiver"] == 0


@lab_test
def test_a_receiver_missing_from_the_manifest_cannot_pass(tmp_path):
    with running_lab():
        result, run_dir, _ = vxcap_run(tmp_path, "worker,worker3", count=COUNT)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for node in manifest["nodes"]:
        if node["name"] == W3:
            node["captures"] = []
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    again, report = analyze(run_dir)
    assert again.exit_code == ExitStatus.VERDICT_FAILED, again.output
    assert f"no usable capture of {W3} (receiver): none in manifest.json" in flows(report)[(W, W3)]["reasons"]
    assert f"no usable capture of {W3} (sender): none in manifest.json" in flows(report)[(W3, W)]["reasons"]


@lab_test
def test_a_capture_cut_mid_file_is_inconclusive_unless_every_echo_is_accounted_for(tmp_path):
    with running_lab():
        result, run_dir, _ = vxcap_run(tmp_path, "worker,worker3", count=COUNT)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    pcap = run_dir / f"{W3}-eth1.pcap"
    data = pcap.read_bytes()
    pcap.write_bytes(data[: len(data) // 2 + 7])  # tcpdump killed hard, half-way, inside a record
    again, report = analyze(run_dir)
    assert again.exit_code == ExitStatus.VERDICT_FAILED, again.output
    (capture,) = [c for c in report["captures"] if c["node"] == W3]
    assert capture["damaged"] == "the last record is cut short"
    failing = [f for f in report["flows"] if f["verdict"] == "fail"]
    assert failing, report["flows"]
    for flow in failing:
        assert any(r.startswith(f"inconclusive: {W3}/eth1 is damaged (the last record is cut short)")
                   for r in flow["reasons"]), flow["reasons"]


# ---------------------------------------------------------------- kernel drops: a capture that says it is incomplete


def _ping(lab, src, dst, *options):
    out = subprocess.run(["ip", "netns", "exec", lab.pod_netns(src), "ping", "-n", *options, str(lab.pod(dst).ip)],
                         capture_output=True, text=True, timeout=60)
    summary = re.search(r"(\d+) packets transmitted, (\d+) received", out.stdout)
    assert summary, out.stdout + out.stderr
    return int(summary.group(1)), int(summary.group(2))


def _captured_run(tmp_path, lab, tiny_buffer_on=None, flood=False):
    """W2 <-> W3 captured on both nodes' eth1 while each pod pings the other; `tiny_buffer_on`'s tcpdump
    gets a 1 KiB kernel buffer (-B 1). `flood`: W2 pings W3 as fast as the kernel answers (ping -f)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    captures, running = {}, []
    for node in (W2, W3):
        path = run_dir / f"{node}-eth1.pcap"
        if node == tiny_buffer_on:
            argv = ["tcpdump", "-i", "eth1", "-nn", "-B", "1", "-s", "262144", "-Z", "root", "-w", str(path),
                    "icmp or udp port 4789"]
            running.append((node, tcpdump.start(netns.exec_prefix(lab.node_netns(node)), argv, path)))
        else:
            running.append((node, lab.start_capture(node, path, "icmp or udp port 4789")))
        captures[node] = [("eth1", path.name)]
    forward = _ping(lab, W2, W3, "-f", "-c", "3000", "-s", "1400") if flood else _ping(lab, W2, W3, "-c", "5", "-i", "0.05")
    backward = _ping(lab, W3, W2, "-c", "5", "-i", "0.05")
    facts = {}
    for node, capture in running:
        result = capture.stop()
        facts[(node, "eth1")] = {"kernel_dropped": result.dropped}
        for name, text in lab.node_tables(node).items():
            (run_dir / f"{node}-eth1.{name}").write_text(text)
    pods = {node: lab.pod(node) for node in (W2, W3)}
    probes = [ProbeCount(W2, W3, *forward), ProbeCount(W3, W2, *backward)]
    manifest = manifest_dict(lab.spec.topology, pods, (Pair(W2, W3),), captures, capture_facts=facts, probes=probes)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir, facts


@lab_test
def test_kernel_drops_make_a_direction_inconclusive_unless_every_echo_is_accounted_for(tmp_path):
    with running_lab() as lab:
        run_dir, facts = _captured_run(tmp_path, lab, tiny_buffer_on=W3, flood=True)
    dropped = facts[(W3, "eth1")]["kernel_dropped"]
    assert dropped > 0, "the flood did not overrun a 1 KiB capture buffer"
    result, report = analyze(run_dir)
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    (capture,) = [c for c in report["captures"] if c["node"] == W3]
    assert capture["kernel_dropped"] == dropped
    flood = flows(report)[(W2, W3)]
    assert flood["verdict"] == "fail"
    # (worker2's own capture may have dropped some under the flood too: then both are named)
    assert any(r.startswith("inconclusive: ") and f"{W3}/eth1 dropped {dropped} packets in the kernel" in r
               for r in flood["reasons"]), flood["reasons"]
    assert flood["delivery"]["sent"] == 3000


@lab_test
def test_the_healthy_twin_of_kernel_drops_passes(tmp_path):
    with running_lab() as lab:
        run_dir, facts = _captured_run(tmp_path, lab)
    assert all(f["kernel_dropped"] == 0 for f in facts.values())
    result, report = analyze(run_dir)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    for flow in report["flows"]:
        d = flow["delivery"]
        assert d["sent"] == 5 and d["left_sender"] == d["arrived_receiver"] == d["answered"] == d["replies_back"] == 5
