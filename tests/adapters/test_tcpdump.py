"""tcpdump's process handling: started and listening, stopped with a complete pcap, never left behind.

The real-tcpdump tests run it in a namespace of this session (root); the
process-handling edge cases use small stand-in programs, since no real
tcpdump ignores SIGINT or never starts listening on demand.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from scapy.utils import rdpcap

from tests.lab_support import SESSION_PREFIX, lab_test
from vxcap.adapters import tcpdump
from vxcap.adapters.tcpdump import TcpdumpError
from vxcap.core.capture import tcpdump_argv


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def loopback_ns():
    ns = f"{SESSION_PREFIX}-tcpdump"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=True)


@lab_test
def test_a_stopped_capture_holds_every_packet_and_tcpdumps_counts(loopback_ns, tmp_path):
    path = tmp_path / "lo.pcap"
    prefix = ["ip", "netns", "exec", loopback_ns]
    with tcpdump.start(prefix, tcpdump_argv("lo", path, "icmp"), path) as cap:
        subprocess.run(prefix + ["ping", "-n", "-c", "3", "-i", "0.05", "127.0.0.1"], check=True, capture_output=True)
        result = cap.stop()
    frames = rdpcap(str(path))
    assert len(frames) == 6  # three echo requests and three replies, each seen once on lo
    assert (result.captured, result.dropped) == (6, 0)
    assert result.path == path
    assert gone(cap.pid)


@lab_test
def test_a_filter_tcpdump_rejects_is_reported_in_its_words(loopback_ns, tmp_path):
    path = tmp_path / "x.pcap"
    with pytest.raises(TcpdumpError, match="exited before capturing: .*syntax error"):
        tcpdump.start(["ip", "netns", "exec", loopback_ns], tcpdump_argv("lo", path, "host host"), path)


@lab_test
def test_a_missing_interface_is_reported(loopback_ns, tmp_path):
    path = tmp_path / "x.pcap"
    with pytest.raises(TcpdumpError, match="eth9"):
        tcpdump.start(["ip", "netns", "exec", loopback_ns], tcpdump_argv("eth9", path, ""), path)


def test_a_missing_program_is_a_clear_error(tmp_path):
    with pytest.raises(TcpdumpError, match="not found"):
        tcpdump.start([], ["vxcap-no-such-tcpdump", "-i", "lo"], tmp_path / "x.pcap")


SILENT = "import time; time.sleep(30)"
DEAF = (
    "import signal, sys, time; signal.signal(signal.SIGINT, signal.SIG_IGN);"
    "print('tcpdump: listening on lo, link-type EN10MB', file=sys.stderr, flush=True); time.sleep(30)"
)


def test_a_program_that_never_listens_times_out_and_is_killed(tmp_path):
    started = time.monotonic()
    with pytest.raises(TcpdumpError, match="did not start listening within 0.5 s"):
        tcpdump.start([], [sys.executable, "-c", SILENT], tmp_path / "x.pcap", ready_timeout=0.5)
    assert time.monotonic() - started < 3
    assert not tcpdump._running


def test_one_that_ignores_sigint_is_killed_on_stop(tmp_path):
    cap = tcpdump.start([], [sys.executable, "-c", DEAF], tmp_path / "x.pcap")
    started = time.monotonic()
    result = cap.stop(timeout=0.5, settle=0)
    assert time.monotonic() - started < 3
    assert gone(cap.pid)
    assert result.captured is None  # killed: it never reported
    assert cap.stop() is result


def test_leaving_the_block_on_an_exception_stops_it(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with tcpdump.start([], [sys.executable, "-c", DEAF], tmp_path / "x.pcap") as cap:
            raise RuntimeError("boom")
    assert gone(cap.pid)


def test_a_forgotten_capture_is_stopped_at_exit(tmp_path):
    cap = tcpdump.start([], [sys.executable, "-c", DEAF], tmp_path / "x.pcap")
    assert cap in tcpdump._running
    tcpdump._stop_all()  # what atexit runs
    assert gone(cap.pid)
    assert not tcpdump._running


EARLY = (
    "import sys; print('tcpdump: listening on lo, link-type EN10MB', file=sys.stderr, flush=True);"
    "print('3 packets captured', file=sys.stderr, flush=True); sys.exit(0)"
)


@lab_test
def test_stop_many_stops_every_capture_whole_and_says_which_ended_early(loopback_ns, tmp_path):
    """stop_many: one settle, SIGINT to all, their exits awaited together; each capture's result as
    stop() gives it (tcpdump's counts, the whole file), and the one that had ended by itself named."""
    prefix = ["ip", "netns", "exec", loopback_ns]
    paths = [tmp_path / f"lo{i}.pcap" for i in range(3)]
    specs = [(prefix, tcpdump_argv("lo", path, "icmp"), path) for path in paths]
    specs.append(([], [sys.executable, "-c", EARLY, "-c", "3"], tmp_path / "early.pcap"))
    captures = tcpdump.start_many(specs)
    assert all(isinstance(c, tcpdump.RunningCapture) for c in captures)
    subprocess.run(prefix + ["ping", "-n", "-c", "2", "-i", "0.05", "127.0.0.1"], check=True, capture_output=True)
    captures[-1].wait(5)
    outcomes = tcpdump.RunningCapture.stop_many(captures)
    for path, (result, failure) in zip(paths, outcomes[:3]):
        assert failure is None
        assert (result.captured, result.dropped) == (4, 0)
        assert len(rdpcap(str(path))) == 4
    result, failure = outcomes[3]
    assert result is None
    assert isinstance(failure, TcpdumpError)
    assert "ended before it was stopped" in str(failure)
    assert all(gone(c.pid) for c in captures)
    # as after stop(): a second stop returns the same result
    assert captures[0].stop() is outcomes[0][0]


SLEEPER = "import time; print('ready', flush=True); time.sleep(60)"


@pytest.mark.skipif(tcpdump._vfork_spawn is None, reason="_spawn.c is not compiled (setpriv does its work)")
def test_the_compiled_spawn_sets_the_parent_death_signal_in_place_of_setpriv(tmp_path):
    """What `setpriv --pdeathsig INT` guaranteed, from _spawn.c: SIGKILL the process that started
    the capture's process, and the kernel sends that process SIGINT at once."""
    starter = (
        "import sys; from vxcap.adapters import tcpdump;"
        f"proc = tcpdump._start_process([sys.executable, '-c', {SLEEPER!r}]);"
        "print(proc.pid, flush=True); import time; time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        time.sleep(0.3)
        assert not gone(child)
        assert os.getsid(child) == child  # a session of its own, as start_new_session made it
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 5
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(child), "the child outlived the process that started it"


@pytest.mark.skipif(tcpdump._vfork_spawn is None, reason="_spawn.c is not compiled (setpriv does its work)")
def test_the_compiled_spawn_gives_stderr_exit_status_and_exec_errors():
    proc = tcpdump._start_process([sys.executable, "-c", "import sys; print('said', file=sys.stderr); sys.exit(3)"])
    assert isinstance(proc, tcpdump._Spawned)
    assert proc.stderr.read() == b"said\n"
    assert proc.wait(5) == 3 == proc.poll()
    slow = tcpdump._start_process([sys.executable, "-c", "import time; time.sleep(5)"])
    with pytest.raises(subprocess.TimeoutExpired):
        slow.wait(0.1)
    slow.kill()
    assert slow.wait() == -9
    with pytest.raises(FileNotFoundError):  # exec's own error, from the child
        tcpdump._vfork_spawn([b"/nonexistent/vxcap-tcpdump"], 0, 1, 2, 2)
