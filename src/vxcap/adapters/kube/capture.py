"""tcpdump in a capture pod, its pcap streamed back through the API server.

tcpdump writes the pcap to its stdout (`-w -`), which the exec WebSocket
carries as binary frames, so nothing is stored in the pod and no shell is
involved. stop() sends SIGINT with a second exec (`pkill -INT -x tcpdump`),
tcpdump flushes and exits, and the stream closes with its exit status.

A kubelet does not end an exec'd process when its client goes away: closing
the stream leaves tcpdump running in the pod. So every way out of a capture
(stopped, refused, never listening, an exception) signals tcpdump, SIGKILL
after SIGINT if need be; and `timeout` bounds it whatever happens.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from vxcap.adapters.kube import exec as kexec
from vxcap.adapters.kube.connection import Connection
from vxcap.adapters.kube.errors import KubeError, one_line
from vxcap.adapters.kube.manifests import NOBODY
from vxcap.adapters.pcapfile import capture_destination
from vxcap.core.pcap_records import RecordCount
from vxcap.core.capture import CAPTURE_IMAGE, NODE_TABLE_COMMANDS, is_listening, parse_tcpdump_stats, tcpdump_argv

LISTEN_TIMEOUT_S = 20.0
STOP_ARGV = ["pkill", "-INT", "-x", "tcpdump"]
KILL_ARGV = ["pkill", "-KILL", "-x", "tcpdump"]
SIGNAL_TIMEOUT_S = 5.0  # one pkill exec: a round trip, nothing to wait for
NODE_TABLES_TIMEOUT_S = 30.0


_RECEIVED = re.compile(r"^(\d+) packets? received by filter", re.MULTILINE)

# How tcpdump says the pod's user may not capture: no file capabilities, or
# no_new_privs ignoring them ("You don't have permission ... (socket: Operation
# not permitted)"), or a root tcpdump failing to change user ("Couldn't change to").
_NOT_PERMITTED = ("You don't have permission", "Operation not permitted", "Couldn't change to")
PERMISSION_HINT = (
    f"the capture pod runs as uid {NOBODY}, so its image needs a tcpdump with file capabilities "
    "cap_net_raw,cap_net_admin=eip: build vxcap's with scripts/build-capture-image and load it onto the nodes "
    "(on Kind: vxcap images load --kind <cluster>), or pass --capture-image"
)


@dataclass(frozen=True, slots=True)
class KubeCaptureResult:
    """One finished capture: the pcap written to `path`, and tcpdump's own counts."""

    node: str
    iface: str
    path: Path
    captured: int | None  # "N packets captured"; None when tcpdump printed no stats
    received: int | None  # "N packets received by filter"
    dropped: int | None  # "N packets dropped by kernel"
    stderr: str
    exit_code: int
    killed: bool = False  # tcpdump did not end on SIGINT: the pcap may be cut short


def capture_argv(iface: str, bpf: str, snaplen: int, max_packets: int, duration: float | None) -> list[str]:
    """tcpdump to stdout; with a duration, `timeout` sends it SIGINT when time is up."""
    return tcpdump_argv(iface, "-", bpf, snaplen, max_packets, duration=duration)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _refusal(stderr: str) -> str | None:
    """tcpdump's words for a capture it was not permitted (with the line explaining them), else None."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if any(phrase in line for phrase in _NOT_PERMITTED):
            return " ".join(lines[i : i + 2])
    return None


class KubeCapture:
    """A tcpdump running in a capture pod; `stop()` ends it and writes the pcap."""

    def __init__(self, conn: Connection, namespace: str, pod: str, node: str, iface: str, out_path: Path | None) -> None:
        self._conn = conn
        self.namespace = namespace
        self.pod = pod
        self.node = node
        self.iface = iface
        self.out_path = out_path
        self.result: KubeCaptureResult | None = None
        self._listening = threading.Event()
        self._stream: kexec.ExecStream | None = None
        self._pump: kexec.ExecPump | None = None
        self._count = RecordCount()  # packets_so_far goes on from where it stopped

    def _on_stderr(self, text: str) -> None:
        if any(is_listening(line) for line in text.splitlines()):
            self._listening.set()

    def start(self, argv: list[str], listen_timeout: float = LISTEN_TIMEOUT_S) -> KubeCapture:
        self._stream = kexec.open_exec(self._conn, self.namespace, self.pod, argv)
        self._pump = kexec.ExecPump(self._stream.ws, on_stderr=self._on_stderr)
        try:
            self._await_listening(listen_timeout)
        except KubeError:
            raise  # each refusal above already ended what it started
        except BaseException:  # Ctrl-C while waiting: tcpdump must not outlive the run
            self._abandon()
            raise
        return self

    def _await_listening(self, listen_timeout: float) -> None:
        assert self._pump is not None and self._stream is not None
        deadline = time.monotonic() + listen_timeout
        while not self._listening.wait(0.05):
            where = f"tcpdump on {self.node}:{self.iface}"
            if self._pump.done.is_set():
                self._pump.halt()
                self._stream.close()
                stderr = self._pump.stderr
                refusal = _refusal(stderr)
                if refusal is not None:
                    raise KubeError(f"{where} was not permitted to capture ({refusal}): {PERMISSION_HINT}")
                raise KubeError(f"{where} ended before listening: {_last_line(stderr or self._pump.status_text)}")
            if time.monotonic() > deadline:
                said = _last_line(self._pump.stderr)
                self._abandon()  # it may start listening later, unwatched: end it now
                raise KubeError(f"{where} was not listening after {listen_timeout:g}s: {said}")

    def _signal(self, argv: list[str]) -> bool:
        """pkill in the pod; True when it ran (exit 1, nothing matched, counts: it is gone)."""
        try:
            return kexec.run(self._conn, self.namespace, self.pod, argv, timeout=SIGNAL_TIMEOUT_S).returncode in (0, 1)
        except KubeError:
            return False

    def _abandon(self) -> None:
        """End tcpdump without keeping what it wrote: SIGINT, then SIGKILL if the stream does not close."""
        assert self._pump is not None and self._stream is not None
        try:
            if not self._pump.done.is_set():
                self._signal(STOP_ARGV)
                if not self._pump.wait(SIGNAL_TIMEOUT_S):
                    self._signal(KILL_ARGV)
        finally:
            self._pump.halt()
            self._stream.close()

    def packets_so_far(self) -> int | None:
        """Packets streamed back up to now (the pcap arrives as tcpdump writes it)."""
        if self._pump is None:
            return None
        count = self._count
        start = count.resume_at
        count.feed(bytes(self._pump.stdout[start:]), start)
        return count.records if count.readable else None

    def running(self) -> bool:
        return self._pump is not None and not self._pump.done.is_set()

    def stop(self, timeout: float = 10.0) -> KubeCaptureResult:
        """SIGINT tcpdump, wait for the stream to close, write the pcap. Idempotent."""
        if self.result is not None:
            return self.result
        assert self._pump is not None and self._stream is not None, "start() first"
        killed = False
        try:
            if not self._pump.done.is_set():
                # Exit 1 means it had already gone (max packets or the duration): not an error.
                # A failed pkill is not the end: the stream below says whether tcpdump went.
                self._signal(STOP_ARGV)
            if not self._pump.wait(timeout):
                killed = True  # what streamed so far is kept; the process must not outlive the run
                self._signal(KILL_ARGV)
        finally:
            self._pump.halt()
            self._stream.close()
        stderr = self._pump.stderr
        if killed:
            exit_code = -1
        else:
            try:
                exit_code = kexec.exit_status(self._pump.status_text, f"tcpdump on {self.node}")
            except KubeError:
                exit_code = -1
        data = bytes(self._pump.stdout)
        if not data:
            raise KubeError(f"tcpdump on {self.node}:{self.iface} wrote no pcap (exit {exit_code}): {_last_line(stderr)}")
        path = self._write(data)
        captured, dropped = parse_tcpdump_stats(stderr)
        received = _RECEIVED.findall(stderr)
        self.result = KubeCaptureResult(
            node=self.node,
            iface=self.iface,
            path=path,
            captured=captured,
            received=int(received[-1]) if received else None,
            dropped=dropped,
            stderr=stderr,
            exit_code=exit_code,
            killed=killed,
        )
        return self.result

    def _write(self, data: bytes) -> Path:
        path = capture_destination(self.out_path, self.node, self.iface)
        path.write_bytes(data)
        return path

    def __enter__(self) -> KubeCapture:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.result is None and self._stream is not None:
            if exc_type is None:
                self.stop()
            elif self._pump is not None:
                self._abandon()
            else:
                self._stream.close()


def node_tables(conn: Connection, namespace: str, pod: str) -> dict[str, str]:
    """The node's links, routes, neighbours and FDB as JSON text, keyed by file name.

    A command that fails yields {"error", "argv", "exit_code"} in its file, so
    one missing table never costs the others.
    """
    files: dict[str, str] = {}
    for name, argv in NODE_TABLE_COMMANDS.items():
        try:
            result = kexec.run(conn, namespace, pod, list(argv), timeout=NODE_TABLES_TIMEOUT_S)
        except KubeError as err:
            files[name] = json.dumps({"error": one_line(err), "argv": list(argv), "exit_code": None})
            continue
        if result.returncode == 0:
            files[name] = result.stdout
        else:
            message = _last_line(result.stderr or result.stdout)
            files[name] = json.dumps({"error": message, "argv": list(argv), "exit_code": result.returncode})
    return files
