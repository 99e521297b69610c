"""A running tcpdump: started, known to be listening, stopped so its pcap is complete.

Knows only tcpdump. The caller says where it runs (an argv prefix such as
`ip netns exec NS`) and what it runs (`vxcap.core.capture.tcpdump_argv`).
Every capture started here is stopped: by `stop()`, by leaving its `with`
block, or at interpreter exit for one a caller forgot.
"""

from __future__ import annotations

import atexit
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vxcap.core.capture import is_listening, parse_tcpdump_stats
from vxcap.core.errors import VxcapError

READY_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0
# --immediate-mode hands packets over as they arrive, but SIGINT breaks tcpdump's
# loop at once: a frame on the wire a moment before the stop may still be queued.
SETTLE = 0.2

_running: set[RunningCapture] = set()
_running_lock = threading.Lock()


class TcpdumpError(VxcapError, RuntimeError):
    """tcpdump would not start or would not stop; the message is one line."""


@dataclass(frozen=True, slots=True)
class CaptureResult:
    path: Path
    captured: int | None  # tcpdump's own count; None when it was killed before reporting
    dropped: int | None  # dropped by the kernel (ring buffer full): the capture is incomplete
    stderr: str


class RunningCapture:
    def __init__(self, proc: subprocess.Popen[bytes], path: Path, argv: list[str]) -> None:
        self._proc = proc
        self.path = path
        self.argv = argv
        self._lines: list[str] = []
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read_stderr, name=f"tcpdump-{proc.pid}", daemon=True)
        self._reader.start()
        self._result: CaptureResult | None = None

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
                raise TcpdumpError(f"tcpdump exited before capturing: {said}")
            if time.monotonic() > deadline:
                self._kill()
                said = _last_words(self._lines) or "nothing"
                raise TcpdumpError(f"tcpdump did not start listening within {timeout:g} s (it said: {said})")

    def stop(self, timeout: float = STOP_TIMEOUT, settle: float = SETTLE) -> CaptureResult:
        """SIGINT, then wait: tcpdump finishes the file and reports its counts. Killed if it will not."""
        if self._result is not None:
            return self._result
        try:
            if self._proc.poll() is None:
                if settle > 0:
                    time.sleep(settle)
                self._proc.send_signal(signal.SIGINT)
                try:
                    self._proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._kill()
        finally:
            if self._proc.poll() is None:
                self._kill()
            _forget(self)
        self._reader.join(2.0)
        stderr = "\n".join(self._lines)
        captured, dropped = parse_tcpdump_stats(stderr)
        self._result = CaptureResult(self.path, captured, dropped, stderr)
        return self._result

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        _forget(self)

    def __enter__(self) -> RunningCapture:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.stop()
        else:  # the run failed anyway: do not wait long for a complete file
            self.stop(timeout=1.0, settle=0)


def _last_words(lines: list[str]) -> str:
    # tcpdump's error is often two lines ("tcpdump: eth9: No such device exists", "(No such device exists)").
    said = [line.strip() for line in lines if line.strip()]
    return " ".join(said[-2:])


def _forget(capture: RunningCapture) -> None:
    with _running_lock:
        _running.discard(capture)


@atexit.register
def _stop_all() -> None:
    with _running_lock:
        leftovers = list(_running)
    for capture in leftovers:
        capture.stop(timeout=1.0, settle=0)


def start(prefix: Sequence[str], tcpdump_argv: Sequence[str], path: Path, ready_timeout: float = READY_TIMEOUT) -> RunningCapture:
    """Start tcpdump (behind `prefix`, e.g. `ip netns exec NS`); return once it listens."""
    argv = [*prefix, *tcpdump_argv]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise TcpdumpError(f"{argv[0]} not found") from None
    capture = RunningCapture(proc, Path(path), argv)
    with _running_lock:
        _running.add(capture)
    try:
        capture._wait_listening(ready_timeout)
    except BaseException:
        capture._kill()
        raise
    return capture
