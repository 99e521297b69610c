"""tcpdump's process handling: started and listening, stopped with a complete pcap, never left behind.

The real-tcpdump tests run it in a namespace of this session (root); the
process-handling edge cases use small stand-in programs, since no real
tcpdump ignores SIGINT or never starts listening on demand.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

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


@contextmanager
def killed_afterwards(code: str):
    """A Python process running `code`, which prints the pids it started on one line: yields them,
    then SIGKILLs that process (nothing of it runs its cleanup)."""
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        yield tuple(int(pid) for pid in parent.stdout.readline().split())
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.skipif(tcpdump._vfork_spawn is None, reason="_spawn.c is not compiled (setpriv does its work)")
def test_the_compiled_spawn_sets_the_parent_death_signal_in_place_of_setpriv(tmp_path):
    """What `setpriv --pdeathsig INT` guaranteed, from _spawn.c: SIGKILL the process that started
    the capture's process, and the kernel sends that process SIGINT at once."""
    starter = (
        "import sys; from vxcap.adapters import tcpdump;"
        f"proc = tcpdump._start_process([sys.executable, '-c', {SLEEPER!r}]);"
        "print(proc.pid, flush=True); import time; time.sleep(60)"
    )
    with killed_afterwards(starter) as (child,):
        time.sleep(0.3)
        assert not gone(child)
        assert os.getsid(child) == child  # a session of its own, as start_new_session made it
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


# ---------------------------------------------------------------- the watchdog: one process bounds a batch's time

needs_watchdog = pytest.mark.skipif(tcpdump._fork_watchdog is None, reason="_spawn.c is not compiled (`timeout` does its work)")

# Records the signal that ended it in the file named by its first argument, as tcpdump would end on it.
RECORDER = (
    "import signal, sys, time\n"
    "def ended(number, frame):\n"
    "    open(sys.argv[1], 'w').write(signal.Signals(number).name)\n"
    "    print('1 packet captured', file=sys.stderr, flush=True)\n"
    "    sys.exit(0)\n"
    "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGHUP): signal.signal(s, ended)\n"
    "print('tcpdump: listening on lo, link-type EN10MB', file=sys.stderr, flush=True)\n"
    "time.sleep(60)\n"
)


def ended(pid: int) -> bool:
    """Gone, or a zombie nobody reaps (an orphan's new parent may not)."""
    try:
        state = (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split() or ["?"])[0]
    except OSError:
        return True
    return state in ("Z", "X")


def wait_for(check, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


@lab_test
@needs_watchdog
def test_the_watchdog_ends_real_tcpdumps_with_sigint_at_their_deadline(loopback_ns, tmp_path):
    """No `timeout` in front: the batch's one watchdog SIGINTs each tcpdump at the deadline, so each
    writes its file whole and prints its counts; each is reported as ended by its time limit, and
    the one that had ended at its packet count before is not."""
    prefix = ["ip", "netns", "exec", loopback_ns]
    paths = [tmp_path / f"lo{i}.pcap" for i in range(2)]
    specs = [(prefix, tcpdump_argv("lo", path, "icmp", duration=None), path) for path in paths]
    specs.append(([], [sys.executable, "-c", EARLY, "-c", "3"], tmp_path / "early.pcap"))
    started = time.monotonic()
    captures = tcpdump.start_many(specs, duration=2)
    assert all(isinstance(c, tcpdump.RunningCapture) for c in captures)
    assert not any("timeout" in a for c in captures for a in c.argv)
    (watchdog,) = {id(c.watchdog): c.watchdog for c in captures}.values()
    assert watchdog is not None and not ended(watchdog.pid)
    subprocess.run(prefix + ["ping", "-n", "-c", "2", "-i", "0.05", "127.0.0.1"], check=True, capture_output=True)
    assert all(c.wait(8) for c in captures), "a capture did not end when its time was up"
    assert 1.8 < time.monotonic() - started < 8
    for capture, path in zip(captures, paths):
        with pytest.raises(TcpdumpError, match=rf"^tcpdump ended before it was stopped \(it reached its time limit, "
                                               rf"2 s\); {path.name} keeps what it wrote until then$"):
            capture.stop()
        result = capture.stop()
        assert (result.captured, result.dropped) == (4, 0)  # ended by SIGINT: counts printed, file whole
        assert len(rdpcap(str(path))) == 4
    with pytest.raises(TcpdumpError, match=r"\(it reached its packet count, -c "):
        captures[2].stop()
    assert watchdog.returncode == 0  # it had fired and exited by itself; reaped
    assert ended(watchdog.pid)


@needs_watchdog
def test_the_watchdog_signals_with_sigint_and_a_normal_stop_kills_and_reaps_it(tmp_path):
    marks = [tmp_path / f"signal{i}" for i in range(3)]
    captures = tcpdump.start_many([([], [sys.executable, "-c", RECORDER, str(mark)], tmp_path / "x.pcap")
                                   for mark in marks], duration=1)
    watchdog = captures[0].watchdog
    assert all(c.wait(8) for c in captures)
    assert [mark.read_text() for mark in marks] == ["SIGINT"] * 3  # not SIGALRM or SIGTERM: tcpdump's counts
    for capture in captures:
        with pytest.raises(TcpdumpError, match=r"it reached its time limit, 1 s"):
            capture.stop()
    assert ended(watchdog.pid)

    # Stopped before the deadline: the watchdog lives while one capture does, then is killed and reaped.
    marks = [tmp_path / f"stop{i}" for i in range(2)]
    captures = tcpdump.start_many([([], [sys.executable, "-c", RECORDER, str(mark)], tmp_path / "x.pcap")
                                   for mark in marks], duration=600)
    watchdog = captures[0].watchdog
    assert captures[1].watchdog is watchdog
    assert 590 < watchdog.deadline - time.monotonic() <= 600
    assert captures[0].stop(settle=0).captured == 1
    assert not ended(watchdog.pid) and watchdog.returncode is None
    (result, failure), = tcpdump.RunningCapture.stop_many(captures[1:], settle=0)
    assert failure is None and result.captured == 1
    assert watchdog.returncode == -signal.SIGKILL
    assert gone(watchdog.pid)  # reaped, not a zombie
    assert [mark.read_text() for mark in marks] == ["SIGINT"] * 2  # stop()'s own SIGINT


@needs_watchdog
def test_a_forgotten_or_failed_batch_ends_its_watchdog(tmp_path):
    captures = tcpdump.start_many([([], [sys.executable, "-c", DEAF], tmp_path / "x.pcap")], duration=600)
    watchdog = captures[0].watchdog
    tcpdump._stop_all()  # what atexit runs
    assert gone(watchdog.pid)
    with pytest.raises(RuntimeError, match="boom"):
        with tcpdump.start([], [sys.executable, "-c", DEAF], tmp_path / "x.pcap", duration=600) as cap:
            watchdog = cap.watchdog
            raise RuntimeError("boom")
    assert gone(watchdog.pid) and gone(cap.pid)


@needs_watchdog
def test_a_watchdog_dies_with_the_process_that_started_it_and_the_capture_gets_sigint(tmp_path):
    """SIGKILL the process that started the batch: the watchdog dies at once (PR_SET_PDEATHSIG SIGKILL,
    it does not wait out the 600 s), and the capture gets its own parent-death SIGINT."""
    mark = tmp_path / "signal"
    starter = (
        "import sys, time; from vxcap.adapters import tcpdump;"
        f"(c,) = tcpdump.start_many([([], [sys.executable, '-c', {RECORDER!r}, {str(mark)!r}], 'x.pcap')], duration=600);"
        "print(c.pid, c.watchdog.pid, flush=True); time.sleep(60)"
    )
    with killed_afterwards(starter) as (child, watchdog):
        # Set up and asleep once it holds only the capture's pidfd and its report pipe: killed
        # before, it would end on seeing its parent gone, and prove nothing about PDEATHSIG.
        assert wait_for(lambda: len(os.listdir(f"/proc/{watchdog}/fd")) == 2)
        assert not ended(child) and not ended(watchdog)
    assert wait_for(lambda: ended(watchdog)), "the watchdog outlived the process that started it"
    assert wait_for(lambda: ended(child)), "the capture outlived the process that started it"
    assert mark.read_text() == "SIGINT"


def test_without_the_watchdog_timeout_bounds_each_capture(tmp_path, monkeypatch):
    """Where _spawn.c is not compiled: `timeout -s INT` in front of each, and the same report."""
    monkeypatch.setattr(tcpdump, "_fork_watchdog", None)
    mark = tmp_path / "signal"
    (capture,) = tcpdump.start_many([([], [sys.executable, "-c", RECORDER, str(mark)], tmp_path / "x.pcap")],
                                    duration=1)
    assert capture.watchdog is None
    assert capture.argv[:4] == ["timeout", "-s", "INT", "1"]
    assert capture.wait(8)
    with pytest.raises(TcpdumpError, match=r"it reached its time limit, 1 s"):
        capture.stop()
    assert mark.read_text() == "SIGINT"
