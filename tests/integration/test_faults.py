"""Faults during a real run of the embedded lab: a clear message, whatever was
captured kept and judged, and nothing left behind (namespaces, tcpdump, helpers).

Every lab here is named with this session's prefix (tests/lab_support.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from scapy.utils import rdpcap

from tests.docker_support import capture_image, docker_engine, docker_nodes  # noqa: F401 (fixtures)
from tests.fakes.kube_api import start_fake_kube  # noqa: F401 (fixture)
from tests.integration.test_cluster_run import kind_like_nodes  # noqa: F401 (fixture)
from tests.lab_support import SESSION_PREFIX, lab_session_guard, lab_test, running_lab, session_namespaces  # noqa: F401
from vxcap.adapters import netns, tcpdump
from vxcap.adapters.tcpdump import TcpdumpError
from vxcap.cli.main import cli
from vxcap.core.capture import tcpdump_argv
from vxcap.exit_status import ExitStatus
from vxcap.pipeline import STAGES as PIPELINE_STAGES

pytestmark = pytest.mark.usefixtures("lab_session_guard")

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"
POD = {W: "192.168.81.65", W3: "192.168.209.65"}
PAIR = ["--pair", "worker,worker3"]


# ---------------------------------------------------------------- what a test leaves behind


def tcpdumps_of(*markers: str) -> list[int]:
    """tcpdump processes (and the `timeout` or setpriv around them) whose argv names every marker.

    Name this test's own directory among them: another run on the machine writes the same file names."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"tcpdump" in a for a in argv) and all(any(m.encode() in a for a in argv) for m in markers):
            found.append(int(entry.name))
    return found


def assert_no_tcpdump_of(marker: str) -> None:
    deadline = time.monotonic() + 5  # a process SIGINTed a moment ago may still be writing its last lines
    while tcpdumps_of(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tcpdumps_of(marker) == []


def assert_nothing_left(marker: str) -> None:
    assert_no_tcpdump_of(marker)
    assert not session_namespaces()


def vxcap(*args: str):
    return CliRunner().invoke(cli, list(args))


def run_dir_of(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


def flows(report) -> dict:
    return {(f["src_node"], f["dst_node"]): f for f in report["flows"]}


def spawn_run(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vxcap", "run", "--lab", "--prefix", SESSION_PREFIX, "--out", str(out), *PAIR, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def read_until(proc: subprocess.Popen, stage: str, timeout: float = 60, required: bool = True) -> str | None:
    """stderr up to and including the progress line of `stage` (printed as the stage starts);
    None if vxcap ended without it and `required` is False."""
    seen, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if line.split()[:1] == [stage]:
            return seen
    if required or proc.poll() is None and time.monotonic() >= deadline:
        raise AssertionError(f"no {stage!r} line: {seen}")
    return None


def finish(proc: subprocess.Popen, timeout: float = 90) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return out, err


# ---------------------------------------------------------------- every tcpdump is bounded, for real


@lab_test
def test_a_capture_ends_by_itself_at_its_packet_count(tmp_path):
    with running_lab() as lab:
        path = tmp_path / "count.pcap"
        argv = tcpdump_argv("eth1", path, "icmp", max_packets=4)
        capture = tcpdump.start(netns.exec_prefix(lab.node_netns(W)), argv, path)
        lab.ping(W, lab.pod(W2).ip, count=8, interval=0.1)  # plain ICMP on eth1
        assert capture.wait(5), "tcpdump did not end at its packet count"
        # the run must hear that later packets are missing: one line, then the result as usual
        with pytest.raises(TcpdumpError, match=r"^tcpdump ended before it was stopped \(it reached its packet count, "
                                               r"-c 4\); count.pcap keeps what it wrote until then$"):
            capture.stop()
        result = capture.stop()
        assert result.captured == 4
        assert len(rdpcap(str(path))) == 4
    assert_nothing_left(str(tmp_path))


@lab_test
@pytest.mark.parametrize("bound", ["timeout", "watchdog"])
def test_a_capture_ends_by_itself_when_its_time_is_up_with_a_complete_file(tmp_path, bound):
    """Bounded by `timeout -s INT 3` in its argv (the fallback, and the containers' way), or by the
    watchdog process that the lab's captures share (_spawn.c)."""
    if bound == "watchdog" and tcpdump._fork_watchdog is None:
        pytest.skip("_spawn.c is not compiled (`timeout` does its work)")
    with running_lab() as lab:
        path = tmp_path / "time.pcap"
        started = time.monotonic()
        if bound == "timeout":
            argv = tcpdump_argv("eth1", path, "icmp", duration=3)
            capture = tcpdump.start(netns.exec_prefix(lab.node_netns(W)), argv, path)
        else:
            argv = tcpdump_argv("eth1", path, "icmp", duration=None)
            capture = tcpdump.start(netns.exec_prefix(lab.node_netns(W)), argv, path, duration=3)
            assert "timeout" not in capture.argv and capture.watchdog is not None
        lab.ping(W, lab.pod(W2).ip, count=3, interval=0.1)
        assert capture.running()
        assert capture.wait(8), "tcpdump did not end when its time was up"
        assert 2.5 < time.monotonic() - started < 8
        with pytest.raises(TcpdumpError, match=r"^tcpdump ended before it was stopped \(it reached its time limit, "
                                               r"3 s\); time.pcap keeps what it wrote until then$"):
            capture.stop()
        result = capture.stop()
        assert result.captured == 6 == len(rdpcap(str(path)))  # ended by SIGINT: counts printed, file whole
    assert_nothing_left(str(tmp_path))


def process_ended(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split() or ["?"])[0] in ("Z", "X")
    except OSError:
        return True


@lab_test
def test_the_lab_captures_with_the_default_duration(tmp_path):
    """600 s, then SIGINT: from the run's one watchdog (its SIGINT at the deadline is shown in
    tests/adapters/test_tcpdump.py), or `timeout -s INT 600` in front where _spawn.c is not compiled."""
    with running_lab() as lab:
        single = lab.start_capture(W, tmp_path / "w.pcap", "icmp")
        batch = lab.start_captures([(W2, tmp_path / "w2.pcap", "icmp"), (W3, tmp_path / "w3.pcap", "icmp")])
        watchdogs = set()
        for capture in [single, *batch]:
            with capture:
                assert capture.duration == 600
                if tcpdump._fork_watchdog is None:
                    tcpdump_at = capture.argv.index("tcpdump")
                    assert capture.argv[tcpdump_at - 4 : tcpdump_at] == ["timeout", "-s", "INT", "600"]
                    continue
                assert "timeout" not in capture.argv
                assert 590 < capture.watchdog.deadline - time.monotonic() <= 600
                assert not process_ended(capture.watchdog.pid)
                watchdogs.add(capture.watchdog)
        if tcpdump._fork_watchdog is not None:
            assert len(watchdogs) == 2  # one for the batch, one for the single capture
            assert all(process_ended(w.pid) and w.returncode == -signal.SIGKILL for w in watchdogs)
    assert_nothing_left(str(tmp_path))


@lab_test
@pytest.mark.parametrize("bound", ["timeout", "watchdog"])
def test_a_tcpdump_outlives_no_vxcap_killed_hard(tmp_path, bound):
    """The parent-death signal: SIGKILL the process that started tcpdump, and tcpdump
    ends at once, with a complete file, instead of running on for its whole duration;
    its watchdog, where it has one, dies at once too."""
    if bound == "watchdog" and tcpdump._fork_watchdog is None:
        pytest.skip("_spawn.c is not compiled (`timeout` does its work)")
    with running_lab() as lab:
        path = tmp_path / "orphan.pcap"
        how = (f"tcpdump_argv('eth1', {str(path)!r}, 'icmp'), Path({str(path)!r}))" if bound == "timeout" else
               f"tcpdump_argv('eth1', {str(path)!r}, 'icmp', duration=None), Path({str(path)!r}), duration=600)")
        starter = (
            "import sys, time; from pathlib import Path; from vxcap.adapters import tcpdump;"
            "from vxcap.core.capture import tcpdump_argv;"
            f"c = tcpdump.start({netns.exec_prefix(lab.node_netns(W))!r}, {how};"
            " print('listening', c.watchdog.pid if c.watchdog else 0, flush=True); time.sleep(60)"
        )
        proc = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True)
        try:
            said, watchdog = proc.stdout.readline().split()
            assert said == "listening"
            assert (watchdog != "0") == (bound == "watchdog")
            if bound == "watchdog":  # asleep, holding only the pidfd and its report pipe (set up before, it
                # would end on seeing its parent gone, whatever its parent-death signal)
                deadline = time.monotonic() + 5
                while len(os.listdir(f"/proc/{watchdog}/fd")) != 2 and time.monotonic() < deadline:
                    time.sleep(0.05)
            lab.ping(W, lab.pod(W2).ip, count=2, interval=0.1)
            assert tcpdumps_of(str(path))
        finally:
            proc.kill()
            proc.wait()
        assert_no_tcpdump_of(str(path))
        assert len(rdpcap(str(path))) == 4  # two requests, two replies: written whole
        deadline = time.monotonic() + 5
        while not process_ended(int(watchdog)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watchdog == "0" or process_ended(int(watchdog)), "the watchdog outlived vxcap"
    assert_nothing_left(str(tmp_path))


VANISHING = (
    "import sys, time; print('tcpdump: listening on eth1, link-type EN10MB', file=sys.stderr, flush=True);"
    "time.sleep(0.3); print('tcpdump: pcap_loop: The interface disappeared', file=sys.stderr, flush=True); sys.exit(1)"
)


def test_a_capture_whose_interface_disappears_says_so_when_stopped(tmp_path):
    capture = tcpdump.start([], [sys.executable, "-c", VANISHING], tmp_path / "gone.pcap")
    assert capture.wait(5)
    with pytest.raises(TcpdumpError) as caught:
        capture.stop()
    assert str(caught.value) == ("tcpdump ended before it was stopped (exit status 1: tcpdump: pcap_loop: The "
                                 "interface disappeared); gone.pcap keeps what it wrote until then")
    assert capture.stop().captured is None  # once said, the result as usual


# ---------------------------------------------------------------- a node's capture fails, the other still counts


@lab_test
def test_a_node_without_its_interface_fails_its_capture_and_the_other_is_still_judged(tmp_path):
    out = tmp_path / "out"
    with running_lab() as lab:
        subprocess.run(["ip", "-n", lab.node_netns(W3), "link", "delete", "eth1"], check=True)
        result = vxcap("run", "--lab", "--prefix", SESSION_PREFIX, "--out", str(out), *PAIR, "--count", "2")
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    assert "Traceback" not in result.output
    report = json.loads((run_dir_of(out) / "report.json").read_text())
    (error,) = [e for e in report["errors"] if e.startswith(f"capture on {W3}/eth1")]
    assert error.startswith(f"capture on {W3}/eth1 did not start: tcpdump exited before capturing: ")
    assert "eth1" in error and "No such device" in error
    assert f"✗ {error}" in result.output
    forward = flows(report)[(W, W3)]
    # worker's capture is judged: its VXLAN toward worker3 left on the wire, right as far as it went
    assert forward["observed"] == "vxlan" and forward["vni"] == 4096
    assert list(forward["seen_on"]) == [f"{W}/eth1"] and forward["seen_on"][f"{W}/eth1"] >= 2
    manifest = json.loads((run_dir_of(out) / "manifest.json").read_text())
    assert [n.get("captures") for n in manifest["nodes"] if n["name"] == W3] == [[]]  # what is missing, said
    assert [n.get("capture_error") for n in manifest["nodes"] if n["name"] == W3] == [error]
    # ... and no direction through worker3 can pass without it: the reason names the missing capture
    assert forward["verdict"] == "fail" and f"no usable capture of {W3} (receiver): {error}" in forward["reasons"]
    assert f"no usable capture of {W3} (sender): {error}" in flows(report)[(W3, W)]["reasons"]
    assert_nothing_left(str(out))


@lab_test
def test_a_node_that_does_not_exist_is_exit_2_and_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    result = vxcap("run", "--lab", "--prefix", SESSION_PREFIX, "--out", str(out), "--pair", "worker,k01-worker7")
    assert result.exit_code == ExitStatus.USAGE, result.output
    assert [line for line in result.output.splitlines() if line.startswith("error:")] == [
        "error: unknown node 'k01-worker7'; nodes: k01-control-plane, k01-worker, k01-worker2, k01-worker3"]
    assert not out.exists() or not any(out.iterdir())
    assert_nothing_left(str(out))


@lab_test
def test_a_capture_killed_half_way_is_reported_and_what_it_wrote_is_judged(tmp_path):
    out = tmp_path / "out"
    proc = spawn_run(out, "--count", "12")
    try:
        read_until(proc, "probe")
        time.sleep(1.0)  # a few echo requests on the wire, and in worker3's pcap
        victims = [pid for pid in tcpdumps_of(str(out), f"{W3}-eth1.pcap") if Path(f"/proc/{pid}/comm").read_text().strip() == "tcpdump"]
        assert len(victims) == 1, victims
        os.kill(victims[0], signal.SIGKILL)
    finally:
        out_text, err = finish(proc)
    assert proc.returncode == ExitStatus.VERDICT_FAILED, out_text + err
    assert "Traceback" not in err + out_text
    report = json.loads((run_dir_of(out) / "report.json").read_text())
    (error,) = [e for e in report["errors"] if e.startswith(f"capture on {W3}/eth1")]
    assert error == (f"capture on {W3}/eth1 failed: tcpdump ended before it was stopped (killed by SIGKILL); "
                     f"{W3}-eth1.pcap keeps what it wrote until then")
    assert error in out_text
    forward = flows(report)[(W, W3)]
    seen = forward["seen_on"]
    assert 0 < seen[f"{W3}/eth1"] < seen[f"{W}/eth1"], report  # worker3's capture counts until it died
    assert forward["observed"] == "vxlan" and forward["vni"] == 4096
    # ... as evidence, but a capture that died mid-run cannot vouch for a direction through worker3
    assert forward["verdict"] == "fail" and any(
        r.startswith(f"no usable capture of {W3} (receiver): {W3}-eth1.pcap: the capture backend failed")
        for r in forward["reasons"]), forward["reasons"]
    assert_nothing_left(str(out))


# ---------------------------------------------------------------- Ctrl-C at every stage

# Every stage a lab run announces (cross-check needs --cross-check and tshark: not here).
STAGES = [stage for stage in PIPELINE_STAGES if stage != "cross-check"]


@lab_test
@pytest.mark.parametrize("stage", STAGES)
def test_ctrl_c_at_every_stage_leaves_nothing_and_no_traceback(tmp_path, stage):
    out = tmp_path / "out"
    proc = spawn_run(out, "--count", "5")
    try:
        if read_until(proc, stage, required=False) is not None:
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    finally:
        out_text, err = finish(proc)
    assert "Traceback" not in err + out_text, err
    assert proc.returncode in (ExitStatus.INTERRUPTED, ExitStatus.SUCCESS), err
    if proc.returncode == ExitStatus.INTERRUPTED:
        assert "interrupted" in err
    assert_nothing_left(str(out))


@lab_test
@pytest.mark.parametrize("stage", ["discover", "capture", "probe", "decode"])
def test_sigterm_at_a_stage_is_like_ctrl_c(tmp_path, stage):
    out = tmp_path / "out"
    proc = spawn_run(out, "--count", "5")
    try:
        read_until(proc, stage)
        proc.send_signal(signal.SIGTERM)
    finally:
        out_text, err = finish(proc)
    assert "Traceback" not in err + out_text, err
    assert proc.returncode in (ExitStatus.INTERRUPTED, ExitStatus.SUCCESS), err
    assert_nothing_left(str(out))


# ---------------------------------------------------------------- after vxcap was killed hard


@lab_test
def test_lab_up_after_a_crashed_run_leaves_a_healthy_lab_and_no_tcpdump(tmp_path):
    out = tmp_path / "out"
    proc = spawn_run(out, "--count", "100")
    try:
        read_until(proc, "probe")
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)  # vxcap and its pings; nothing of it runs its cleanup
    finally:
        finish(proc)
    try:
        assert session_namespaces()  # the crashed run's lab is still there
        up = vxcap("lab", "up", "--prefix", SESSION_PREFIX)
        assert up.exit_code == ExitStatus.SUCCESS, up.output
        assert "lab is healthy" in up.output
        assert_no_tcpdump_of(str(out))
        status = vxcap("lab", "status", "--prefix", SESSION_PREFIX)
        assert status.exit_code == ExitStatus.SUCCESS, status.output
        # what the crashed run captured is still there, whole, for `vxcap analyze`
        run_dir = run_dir_of(out)
        assert len(rdpcap(str(run_dir / f"{W}-eth1.pcap"))) > 0
    finally:
        down = vxcap("lab", "down", "--prefix", SESSION_PREFIX)
        assert down.exit_code == ExitStatus.SUCCESS, down.output
    assert_nothing_left(str(out))


@lab_test
def test_ctrl_c_while_the_run_builds_its_lab_removes_the_half_built_lab(tmp_path):
    out = tmp_path / "out"
    proc = spawn_run(out, "--count", "5")
    try:
        read_until(proc, "discover")
        deadline = time.monotonic() + 10
        while not session_namespaces() and time.monotonic() < deadline:
            time.sleep(0.002)
        assert session_namespaces(), "the lab build was not seen"
        os.killpg(proc.pid, signal.SIGINT)  # in the middle of the build
    finally:
        out_text, err = finish(proc)
    try:
        assert "Traceback" not in err + out_text, err
        assert proc.returncode == ExitStatus.INTERRUPTED, err
        assert "interrupted: the lab the run built has been removed" in err
        assert_nothing_left(str(out))
    finally:  # the lab the bug leaves must not outlive this test
        vxcap("lab", "down", "--prefix", SESSION_PREFIX)
        assert not session_namespaces()


# ---------------------------------------------------------------- a cluster whose capture image has no tcpdump


@lab_test
def test_a_capture_image_without_tcpdump_fails_each_capture_in_one_line(tmp_path, start_fake_kube, docker_engine,
                                                                       capture_image, kind_like_nodes):
    import uuid

    from tests.docker_support import image_without_tcpdump
    from tests.integration.test_cluster_run import LabPods, lab_adopting, lab_node_inodes, vxcap_run
    from tests.integration.test_cluster_run import assert_nothing_left as assert_cluster_clean

    tag = image_without_tcpdump(docker_engine, capture_image, f"vxd-test/no-tcpdump:{uuid.uuid4().hex[:8]}")
    try:
        with lab_adopting(kind_like_nodes) as lab:
            fake = start_fake_kube(runtime=LabPods(lab))
            result, run_dir, report = vxcap_run(tmp_path / "out", *PAIR, "--kubeconfig", str(fake.kubeconfig),
                                                "--capture", "docker", "--capture-image", tag)
            assert_cluster_clean(fake.kube, lab_node_inodes(lab))
    finally:
        docker_engine.images.remove(tag, force=True)
    assert not session_namespaces()
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    assert "Traceback" not in result.output
    missing = f"capture image {tag} has no tcpdump: run scripts/build-capture-image"
    assert [e for e in report["errors"] if "tcpdump" in e] == [
        f"capture on {W}/eth1 did not start: {missing}", f"capture on {W3}/eth1 did not start: {missing}"]
    assert all(f"✗ capture on {node}/eth1 did not start: {missing}" in result.output for node in (W, W3))
    # the evidence helpers need no tcpdump: the nodes' tables are still kept
    assert json.loads((run_dir / f"{W}-eth1.route.json").read_text())
    assert {f["verdict"] for f in report["flows"]} == {"fail"}
