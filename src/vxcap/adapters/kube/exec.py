"""Commands in a pod, over the API server's exec WebSocket (channel protocol v4/v5).

`kubernetes.stream.stream` swaps `call_api` on the ApiClient it is given for the
length of the call, which would send another thread's plain request down a
WebSocket; so every exec gets an ApiClient of its own.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.stream import stream

from vxcap.adapters.kube.connection import Connection
from vxcap.adapters.kube.errors import KubeError, one_line

STDOUT, STDERR, ERROR = 1, 2, 3


@dataclass(frozen=True, slots=True)
class ExecResult:
    stdout: str
    stderr: str
    returncode: int


def exit_status(status_text: str, what: str) -> int:
    """The exit status in the API server's closing Status (the error channel).

    Success is 0; a non-zero exit is `NonZeroExitCode` with the number in
    details.causes; anything else (the command could not start) is an error.
    """
    if not status_text.strip():
        raise KubeError(f"{what}: the API server closed the stream without an exit status")
    try:
        status = json.loads(status_text)
    except ValueError:
        raise KubeError(f"{what}: unreadable exit status {one_line(status_text)[:200]!r}") from None
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message"))
            except (TypeError, ValueError):
                break
    raise KubeError(f"{what}: {one_line(status.get('message') or status_text)}")


@dataclass
class ExecStream:
    """A started exec: the kubernetes.stream WSClient and the ApiClient it alone uses."""

    ws: Any
    api: client.ApiClient

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.api.close()


def open_exec(conn: Connection, namespace: str, pod: str, argv: list[str], container: str | None = None) -> ExecStream:
    """Start `argv` in the pod with binary channels; returns once the WebSocket is open."""
    api = client.ApiClient(conn.configuration)
    kwargs: dict[str, Any] = dict(command=argv, stderr=True, stdin=False, stdout=True, tty=False)
    if container:
        kwargs["container"] = container
    with conn.translated(f"run {argv[0]} in pod {namespace}/{pod}"):
        try:
            ws = stream(
                client.CoreV1Api(api).connect_get_namespaced_pod_exec,
                pod,
                namespace,
                _preload_content=False,
                binary=True,
                **kwargs,
            )
        except BaseException:
            api.close()
            raise
    return ExecStream(ws, api)


class ExecPump:
    """Reads an exec's channels on a thread until the stream closes.

    Long-running commands (tcpdump) stream for minutes; the pump keeps their
    stdout as bytes and calls `on_stderr` with each piece of stderr.
    """

    def __init__(self, ws: Any, on_stderr=None) -> None:
        self._ws = ws
        self._on_stderr = on_stderr
        self.stdout = bytearray()
        self._stderr = bytearray()
        self._status = bytearray()
        self.done = threading.Event()
        self._halt = threading.Event()
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="vxcap-exec-pump", daemon=True)
        self._thread.start()

    @property
    def stderr(self) -> str:
        return self._stderr.decode(errors="replace")

    @property
    def status_text(self) -> str:
        return self._status.decode(errors="replace")

    def _drain(self) -> None:
        out = self._ws.read_channel(STDOUT)
        if out:
            self.stdout += out
        err = self._ws.read_channel(STDERR)
        if err:
            self._stderr += err
            if self._on_stderr is not None:
                self._on_stderr(err.decode(errors="replace"))
        status = self._ws.read_channel(ERROR)
        if status:
            self._status += status

    def _run(self) -> None:
        try:
            while self._ws.is_open() and not self._halt.is_set():
                self._ws.update(timeout=0.1)
                self._drain()
            self._drain()
        except BaseException as err:  # a dead socket ends the pump; the owner reads `failure`
            self.failure = err
        finally:
            self.done.set()

    def wait(self, timeout: float | None) -> bool:
        return self.done.wait(timeout)

    def halt(self) -> None:
        """Stop reading, so that closing the socket can read the server's close reply itself."""
        self._halt.set()
        self._thread.join(timeout=2.0)


def run(conn: Connection, namespace: str, pod: str, argv: list[str], timeout: float, container: str | None = None) -> ExecResult:
    """Run `argv` to completion in the pod; its output and exit status."""
    what = f"{argv[0]} in pod {namespace}/{pod}"
    started = open_exec(conn, namespace, pod, argv, container)
    pump = ExecPump(started.ws)
    try:
        deadline = time.monotonic() + timeout
        if not pump.wait(max(0.0, deadline - time.monotonic())):
            raise KubeError(f"{what} did not finish within {timeout:g}s")
        if pump.failure is not None:
            raise KubeError(f"{what}: the exec stream broke: {one_line(pump.failure)}")
        code = exit_status(pump.status_text, what)
        return ExecResult(pump.stdout.decode(errors="replace"), pump.stderr, code)
    finally:
        pump.halt()
        started.close()
