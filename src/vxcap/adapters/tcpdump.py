"""A running tcpdump: started, known to be listening, stopped so its pcap is complete.

Knows only tcpdump. The caller says where it runs (an argv prefix such as
`ip netns exec NS`) and what it runs (`vxcap.core.capture.tcpdump_argv`).
Every capture started here is stopped: by `stop()`, by leaving its `with`
block, or at interpreter exit for one a caller forgot. It runs in a process
group of its own, so killing it also kills what runs under it (tcpdump under
`timeout`), and a terminal's Ctrl-C reaches vxcap only: vxcap stops tcpdump
with SIGINT itself, after the last probe, so the file is complete. And if
vxcap dies without stopping it (SIGKILL, a crash), the kernel sends it SIGINT
(PR_SET_PDEATHSIG, set in the vfork-ed child by _spawn.c, or by `setpriv
--pdeathsig INT` where that is not compiled): no tcpdump outlives the vxcap
that started it, and its file is still complete.

A capture started with a `duration` ends with SIGINT when its time is up even if vxcap hangs: one
watchdog process per batch (`start_many`) holds the batch's pidfds and signals them at the deadline
(_spawn.c), where `timeout -s INT` in front of each tcpdump did it before (and still does where
_spawn.c is not compiled).
"""

from __future__ import annotations

import atexit
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager as ContextManager
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vxcap.core.pcap_records import RecordCount
from vxcap.core.capture import is_listening, parse_tcpdump_stats, timeout_argv
from vxcap.core.errors import VxcapError

READY_TIMEOUT = 5.0
# What `timeout` and `setpriv` exit with when the command cannot be found or run.
_NOT_FOUND_EXIT, _NOT_EXECUTABLE_EXIT = 127, 126
# What `timeout` (vxcap.core.capture.timeout_argv) exits with when the capture's time ran out.
_DURATION_EXPIRED_EXIT = 124
STOP_TIMEOUT = 5.0
# --immediate-mode hands packets over as they arrive, but SIGINT breaks tcpdump's
# loop at once: a frame on the wire a moment before the stop may still be queued.
SETTLE = 0.2

_running: set[RunningCapture] = set()
_running_lock = threading.Lock()


class TcpdumpError(VxcapError, RuntimeError):
    """tcpdump would not start, or ended before it was stopped (its packet count or time
    limit reached, killed, its interface gone); the message is one line."""


@dataclass(frozen=True, slots=True)
class CaptureResult:
    path: Path
    captured: int | None  # tcpdump's own count; None when it was killed before reporting
    dropped: int | None  # dropped by the kernel (ring buffer full): the capture is incomplete
    stderr: str


class RunningCapture:
    def __init__(self, proc: Any, path: Path, argv: list[str], duration: float | None = None) -> None:
        # proc: a subprocess.Popen, or a _Spawned (the same calls) when _spawn.c started it
        self._proc = proc
        self.duration = duration  # the time bound start_many was given (the watchdog's, or `timeout`'s in argv)
        self.watchdog: _Watchdog | None = None
        self.path = path
        self.argv = argv
        self._lines: list[str] = []
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read_stderr, name=f"tcpdump-{proc.pid}", daemon=True)
        self._reader.start()
        self._result: CaptureResult | None = None
        self._count = RecordCount()  # packets_so_far goes on from where it stopped

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _read_stderr(self) -> None:
        # Drained to the end, or tcpdump would block on a full pipe.
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self._lines.append(line)
            if is_listening(line):
                self._listening.set()

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.02):
            if self._proc.poll() is not None:
                self._reader.join(1.0)
                said = _last_words(self._lines) or f"exit status {self._proc.returncode}"
                if self._proc.returncode in (_NOT_FOUND_EXIT, _NOT_EXECUTABLE_EXIT) and "tcpdump" in said:
                    raise TcpdumpError(f"tcpdump not found where the capture runs: {said}")
                raise TcpdumpError(f"tcpdump exited before capturing: {said}")
            if time.monotonic() > deadline:
                self._kill()
                said = _last_words(self._lines) or "nothing"
                raise TcpdumpError(f"tcpdump did not start listening within {timeout:g} s (it said: {said})")

    def packets_so_far(self) -> int | None:
        """Packets in the file up to now (tcpdump -U writes each one at once); None if unreadable."""
        count = self._count
        try:
            with open(self.path, "rb") as handle:
                start = count.resume_at
                handle.seek(start)
                count.feed(handle.read(), start)
        except OSError:
            return None
        return count.records if count.readable else None

    def running(self) -> bool:
        """Whether tcpdump still runs: it ends by itself at its packet count or duration."""
        return self._proc.poll() is None

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` s for tcpdump to end by itself; True if it did."""
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, timeout: float = STOP_TIMEOUT, settle: float = SETTLE) -> CaptureResult:
        """SIGINT, then wait: tcpdump finishes the file and reports its counts. Killed if it will not.

        If it had ended on its own before, the file misses what came after: TcpdumpError says
        how it ended, once; the file is kept and a second call returns the result.
        """
        if self._result is not None:
            return self._result
        ended_early = self._proc.poll() is not None
        try:
            if self._proc.poll() is None:
                if settle > 0:
                    time.sleep(settle)
                self._proc.send_signal(signal.SIGINT)
                if not _exited(self._proc, timeout):
                    self._kill()
        finally:
            if self._proc.poll() is None:
                self._kill()
            _forget(self)
        return self._finish(ended_early)

    @staticmethod
    def stop_many(
        captures: Sequence[RunningCapture], timeout: float = STOP_TIMEOUT, settle: float = SETTLE
    ) -> list[tuple[CaptureResult | None, Exception | None]]:
        """`stop` for many captures at once, from one thread: one settle, SIGINT to each, then
        every exit awaited together in one poll(2) on their pidfds (a thread per capture cost
        hundreds of threads at 256 nodes). Per capture, its result or why it failed (as `stop`)."""
        pending = [c for c in captures if c._result is None]
        early = {id(c): c._proc.poll() is not None for c in pending}
        try:
            live = [c for c in pending if not early[id(c)]]
            if live:
                if settle > 0:
                    time.sleep(settle)
                for capture in live:
                    capture._proc.send_signal(signal.SIGINT)
                _all_exited([c._proc for c in live], timeout)
        finally:
            for capture in pending:
                if capture._proc.poll() is None:
                    capture._kill()
                _forget(capture)
        results: list[tuple[CaptureResult | None, Exception | None]] = []
        for capture in captures:
            try:
                results.append((capture._finish(early[id(capture)]) if id(capture) in early else capture.stop(), None))
            except Exception as err:  # noqa: BLE001 - the caller names the node
                results.append((None, err))
        return results

    def _finish(self, ended_early: bool) -> CaptureResult:
        self._reader.join(2.0)
        stderr = "\n".join(self._lines)
        captured, dropped = parse_tcpdump_stats(stderr)
        self._result = CaptureResult(self.path, captured, dropped, stderr)
        code = self._proc.returncode
        if ended_early:
            # It ended on its own before being stopped: what came after is not in the file.
            raise TcpdumpError(f"tcpdump ended before it was stopped ({self._how_it_ended(code)}); "
                               f"{self.path.name} keeps what it wrote until then")
        return self._result

    def _how_it_ended(self, code: int) -> str:
        # Checked first: tcpdump ended by the watchdog's SIGINT exits 0, as at its packet count.
        if self.watchdog is not None and self.watchdog.signalled(self):
            return f"it reached its time limit, {self.duration:g} s"
        if code == 0:
            return f"it reached its packet count, -c {_option(self.argv, '-c')}"
        if code == _DURATION_EXPIRED_EXIT:
            return f"it reached its time limit, {_option(self.argv, 'timeout')} s"
        how = f"killed by {_signal_name(-code)}" if code < 0 else f"exit status {code}"
        said = _last_words([line for line in self._lines if not is_listening(line)])
        return f"{how}: {said}" if said else how

    def _kill(self) -> None:
        # The whole group: SIGKILL to `timeout` alone would orphan the tcpdump under it.
        # Only while the leader is not reaped, so its id cannot have been reused.
        if self._proc.returncode is None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass  # the group is gone already
        self._proc.wait()
        _forget(self)

    def __enter__(self) -> RunningCapture:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.stop()
        else:  # the run failed anyway: do not wait long for a complete file
            try:
                self.stop(timeout=1.0, settle=0)
            except TcpdumpError:
                pass  # the error under way is the news


def _exited(proc: subprocess.Popen, timeout: float) -> bool:
    """Whether the process ended within `timeout` (reaped if so), waiting in poll(2) on a pidfd:
    subprocess's wait with a timeout polls with sleeps that grow to 50 ms, and a run stops
    hundreds of captures at once."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except ProcessLookupError:  # already gone (and perhaps reaped): wait says which
        pidfd = None
    if pidfd is not None:
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if not poller.poll(timeout * 1000):
                return False
        finally:
            os.close(pidfd)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def _all_exited(procs: Sequence[subprocess.Popen], timeout: float) -> None:
    """Wait until every process has ended or `timeout` has passed, in poll(2) on their pidfds; the
    ended ones are reaped (the caller kills what is left)."""
    deadline = time.monotonic() + timeout
    fds: dict[int, subprocess.Popen] = {}
    try:
        for proc in procs:
            try:
                fds[os.pidfd_open(proc.pid)] = proc
            except ProcessLookupError:
                proc.poll()
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        waiting = len(fds)
        while waiting and (left := deadline - time.monotonic()) > 0:
            for fd, _event in poller.poll(left * 1000):
                poller.unregister(fd)
                fds[fd].poll()
                waiting -= 1
    finally:
        for fd in fds:
            os.close(fd)


def _option(argv: list[str], name: str) -> str:
    """The value after `name` (for `timeout`: its duration, after `-s SIGNAL`); '?' if absent."""
    if name not in argv:
        return "?"
    at = argv.index(name) + 1
    if name == "timeout" and argv[at : at + 1] == ["-s"]:
        at += 2
    return argv[at] if at < len(argv) else "?"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_words(lines: list[str]) -> str:
    # tcpdump's error is often two lines ("tcpdump: eth9: No such device exists", "(No such device exists)").
    said = [line.strip() for line in lines if line.strip()]
    return " ".join(said[-2:])


def _forget(capture: RunningCapture) -> None:
    with _running_lock:
        _running.discard(capture)
    if capture.watchdog is not None:
        capture.watchdog.release(capture)


class _Watchdog:
    """The forked watchdog of a batch of captures (_spawn.c's `watchdog`): SIGINT to each still
    running at `deadline` (time.monotonic()), through pidfds. Ended (SIGKILL, reaped) once every
    capture it guards is stopped, on whatever way out; it tells which captures it ended."""

    # How long to wait for a watchdog past its deadline to finish writing its report and signalling.
    REPORT_WAIT = 2.0

    def __init__(self, captures: Sequence[RunningCapture], deadline: float) -> None:
        assert _fork_watchdog is not None
        self.deadline = deadline
        self._index = {id(capture): i for i, capture in enumerate(captures)}
        self._guarded = set(self._index)
        self._lock = threading.Lock()
        self._signalled: set[int] | None = None  # read from the report once the watchdog is reaped
        pidfds: list[int] = []
        try:
            for capture in captures:
                pidfds.append(_pidfd_of_unreaped(capture._proc))
            # Read without blocking once it is reaped: a process forked meanwhile by another thread
            # could hold the write end too, and no EOF would come.
            read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
            try:
                self.pid = _fork_watchdog(pidfds, deadline, write_end)
                # Signalled and awaited through a pidfd: if some other code reaped it, no recycled pid is hit.
                self._pidfd = os.pidfd_open(self.pid)
            except BaseException:
                os.close(read_end)
                raise
            finally:
                os.close(write_end)
        finally:
            for fd in pidfds:
                if fd >= 0:
                    os.close(fd)
        self._report = read_end
        self.returncode: int | None = None

    def release(self, capture: RunningCapture) -> None:
        with self._lock:
            self._guarded.discard(id(capture))
            if self._guarded or self.returncode is not None:
                return
        self.end()

    def end(self) -> None:
        """SIGKILL and reap it (its pid is not reaped until then: no recycled pid is signalled),
        then read what it reported."""
        with self._lock:
            if self.returncode is None:
                self._kill_and_reap()

    def _kill_and_reap(self) -> None:
        try:
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it had exited (and was reaped elsewhere, or is a zombie waitpid takes below)
        self._reap()

    def _reap(self) -> None:
        while True:
            try:
                _pid, status = os.waitpid(self.pid, 0)
            except ChildProcessError:  # reaped by someone else
                self.returncode = 255
                break
            except InterruptedError:
                continue
            self.returncode = os.waitstatus_to_exitcode(status)
            break
        os.close(self._pidfd)
        bitmap = b""
        try:
            while chunk := os.read(self._report, 65536):  # everything it wrote is there: it has exited
                bitmap += chunk
        except BlockingIOError:
            pass
        os.close(self._report)
        self._signalled = {i for i in range(len(bitmap) * 8) if bitmap[i // 8] >> (i % 8) & 1}

    def signalled(self, capture: RunningCapture) -> bool:
        """Whether the watchdog sent this capture its SIGINT (the capture had reached its time limit)."""
        if self._signalled is None:
            if time.monotonic() < self.deadline:
                return False  # it cannot have fired yet
            with self._lock:
                if self.returncode is None:
                    # Past the deadline: let it finish (a few system calls), then read its report.
                    poller = select.poll()
                    poller.register(self._pidfd, select.POLLIN)
                    poller.poll(self.REPORT_WAIT * 1000)
                    self._kill_and_reap()
        assert self._signalled is not None
        return self._index.get(id(capture)) in self._signalled


def _pidfd_of_unreaped(proc: Any) -> int:
    """A pidfd of the process, or -1 once it is reaped (its pid may be another process's by now)."""
    if proc.returncode is not None:
        return -1
    try:
        fd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return -1
    if proc.returncode is not None:  # reaped meanwhile: the pidfd may name a newcomer
        os.close(fd)
        return -1
    return fd


def _stopped_when_vxcap_dies() -> list[str]:
    # SIGINT, not SIGKILL: timeout passes it on and tcpdump closes its file as on stop().
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "INT", "--"] if setpriv else []


try:  # the same parent-death signal, set in a vfork-ed child instead of by a `setpriv` exec (_spawn.c)
    from vxcap.adapters._spawn import spawn as _vfork_spawn
    from vxcap.adapters._spawn import watchdog as _fork_watchdog
except ImportError:  # not compiled: setpriv does it, and `timeout` bounds each capture's time
    _vfork_spawn = None
    _fork_watchdog = None


class _Spawned:
    """The part of subprocess.Popen that RunningCapture uses, for a process started by _spawn.c:
    pid, returncode, stderr (a pipe), poll, wait and send_signal; reaped once, under a lock."""

    def __init__(self, argv: list[str], pid: int, stderr: Any) -> None:
        self.args, self.pid, self.stderr = argv, pid, stderr
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def _reaped(self, flags: int) -> bool:
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:  # reaped by someone else: its status is lost
            self.returncode = 255 if self.returncode is None else self.returncode
            return True
        if pid == 0:
            return False
        self.returncode = os.waitstatus_to_exitcode(status)
        return True

    def poll(self) -> int | None:
        if self.returncode is None and self._lock.acquire(blocking=False):
            try:
                if self.returncode is None:
                    self._reaped(os.WNOHANG)
            finally:
                self._lock.release()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        if timeout is not None:
            try:
                pidfd = os.pidfd_open(self.pid)
            except ProcessLookupError:
                pidfd = None
            if pidfd is not None:
                try:
                    poller = select.poll()
                    poller.register(pidfd, select.POLLIN)
                    if not poller.poll(max(0.0, timeout) * 1000):
                        raise subprocess.TimeoutExpired(self.args, timeout)
                finally:
                    os.close(pidfd)
        with self._lock:
            while self.returncode is None:
                self._reaped(0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _start_process(argv: list[str]) -> Any:
    """The capture's process, in a session of its own, stdin and stdout on /dev/null, stderr a pipe,
    SIGINT to it when this thread dies: vfork-ed by _spawn.c, else Popen behind `setpriv`."""
    program = shutil.which(argv[0]) if _vfork_spawn is not None else None
    if program is None:
        return subprocess.Popen(
            [*_stopped_when_vxcap_dies(), *argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True,
        )
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            pid = _vfork_spawn([os.fsencode(program), *map(os.fsencode, argv[1:])], null, null, write_end,
                               signal.SIGINT)
        finally:
            os.close(null)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return _Spawned(argv, pid, os.fdopen(read_end, "rb"))


@atexit.register
def _stop_all() -> None:
    with _running_lock:
        leftovers = list(_running)
    for capture in leftovers:
        try:
            capture.stop(timeout=1.0, settle=0)
        except TcpdumpError:
            pass  # nobody is left to tell


def _spawn(
    prefix: Sequence[str], tcpdump_argv: Sequence[str], path: Path, where: Callable[[], ContextManager] | None = None,
    duration: float | None = None,
) -> RunningCapture:
    """`where`: a context the process is started in (a network namespace the thread enters), when the
    caller says where it runs that way rather than with an argv prefix. `duration`: the capture's time
    bound, which goes to a watchdog, or to `timeout` in front of tcpdump where there is none."""
    bound = timeout_argv(duration) if duration is not None and _fork_watchdog is None else []
    argv = [*prefix, *bound, *tcpdump_argv]
    try:
        with where() if where is not None else nullcontext():
            proc = _start_process(argv)
    except FileNotFoundError:
        raise TcpdumpError(f"{argv[0]} not found") from None
    except VxcapError as err:  # `where` could not be entered (a namespace gone): this capture fails, not the batch
        raise TcpdumpError(f"tcpdump could not be started there: {err}") from None
    capture = RunningCapture(proc, Path(path), argv, duration)
    with _running_lock:
        _running.add(capture)
    return capture


def start_many(
    specs: Sequence[tuple[Sequence[str], Sequence[str], Path] | tuple[Sequence[str], Sequence[str], Path, Any]],
    ready_timeout: float = READY_TIMEOUT,
    duration: float | None = None,
    batch: int | None = None,
) -> list[RunningCapture | TcpdumpError]:
    """`start` for many captures at once: all spawned, then each awaited, so their start-ups
    overlap (hundreds of nodes would otherwise start one after the other). From the thread
    that lives as long as the captures, like `start`. Per spec, its capture or why it failed.
    A spec is (prefix, tcpdump argv, path), or with a fourth item, `_spawn`'s `where`.

    `batch`: start that many at a time (each batch spawned, then awaited). `duration`: each
    capture ends with SIGINT that many seconds after the start began, even if vxcap hangs: one
    watchdog process for all, started once they listen (where _spawn.c is not compiled,
    `timeout -s INT` in front of each tcpdump). The argv must not bound the time itself."""
    if duration is not None:
        timeout_argv(duration)  # the same check of the value, with or without `timeout`
    deadline = time.monotonic() + duration if duration is not None else 0.0
    step = batch if batch else max(1, len(specs))
    spawned: list[RunningCapture | TcpdumpError] = []
    results: list[RunningCapture | TcpdumpError] = []
    try:
        for first in range(0, len(specs), step):
            spawned = []
            for prefix, argv, path, *where in specs[first:first + step]:
                try:
                    spawned.append(_spawn(prefix, argv, path, *where[:1], duration=duration))
                except TcpdumpError as err:
                    spawned.append(err)
            for capture in spawned:
                if isinstance(capture, RunningCapture):
                    try:
                        capture._wait_listening(ready_timeout)
                    except TcpdumpError as err:
                        capture._kill()
                        results.append(err)
                        continue
                results.append(capture)
        spawned = []
        listening = [capture for capture in results if isinstance(capture, RunningCapture)]
        if duration is not None and _fork_watchdog is not None and listening:
            watchdog = _Watchdog(listening, deadline)
            for capture in listening:
                capture.watchdog = watchdog
        return results
    except BaseException:
        for capture in results:
            if isinstance(capture, RunningCapture):
                capture._kill()
        for capture in spawned:
            if isinstance(capture, RunningCapture):
                capture._kill()
        raise


def start(
    prefix: Sequence[str], tcpdump_argv: Sequence[str], path: Path, ready_timeout: float = READY_TIMEOUT,
    duration: float | None = None,
) -> RunningCapture:
    """Start tcpdump (behind `prefix`, e.g. `ip netns exec NS`); return once it listens.

    Call it from a thread that lives as long as the capture (the main thread): the
    kernel's parent-death signal follows the thread that started the process.
    `duration`: its time bound, as in `start_many`.
    """
    if duration is not None:
        (started,) = start_many([(prefix, tcpdump_argv, path)], ready_timeout, duration)
        if isinstance(started, TcpdumpError):
            raise started
        return started
    capture = _spawn(prefix, tcpdump_argv, path)
    try:
        capture._wait_listening(ready_timeout)
    except BaseException:
        capture._kill()
        raise
    return capture
