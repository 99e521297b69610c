"""Capture on Kind/containerlab nodes through the local Docker engine.

A Kind node is a Docker container named after the node, and its image has no
tcpdump. So we never exec into the node: a short-lived helper container from
vxcap's capture image joins the node's network namespace
(`network_mode=container:<node>`) as nobody, with every capability dropped but
NET_RAW and NET_ADMIN (never privileged), runs tcpdump on the underlay interface into a
file inside itself, and after a clean SIGINT we copy the pcap out with
get_archive. Copying the file, rather than reading tcpdump's stdout, keeps the
pcap byte-exact: the json-file log driver would mangle binary output.

Every container made here carries the managed-by and run-id labels, so
`cleanup()` finds what an interrupted run left behind.

This module knows Docker only. Errors are one-line messages meant to be shown
as they are: DockerUnavailable, CaptureImageMissing, NodeContainerMissing,
TcpdumpMissing, DockerCaptureFailed, all DockerCaptureError.
"""

from __future__ import annotations

import atexit
import json
import os
import tarfile
import threading
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from vxcap.adapters.pcapfile import capture_destination
from vxcap.core.capture import (
    CAPTURE_IMAGE,
    DEFAULT_MAX_PACKETS,
    DEFAULT_SNAPLEN,
    NODE_TABLE_COMMANDS,
    is_listening,
    parse_tcpdump_stats,
    tcpdump_argv,
)
from vxcap.core.errors import VxcapError
from vxcap.core.names import check_container_name

DEFAULT_IMAGE = CAPTURE_IMAGE
BUILD_HINT = "run scripts/build-capture-image"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "vxcap"
RUN_ID_LABEL = "vxcap.io/run-id"
NODE_LABEL = "vxcap.io/node"
ROLE_LABEL = "vxcap.io/role"
CAPTURE_CAPS = ("NET_RAW", "NET_ADMIN")
# Helpers run as nobody with every other capability dropped; the capture image's
# tcpdump carries NET_RAW/NET_ADMIN as file capabilities (scripts/build-capture-image).
HELPER_USER = "65534:65534"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# Inside the helper's own writable layer: a tmpfs would vanish when tcpdump
# exits, before get_archive could read it.
PCAP_IN_CONTAINER = "/var/tmp/vxcap.pcap"
LISTEN_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
# --immediate-mode hands packets over as they come, but SIGINT breaks tcpdump's
# loop at once: a frame on the wire a moment before the stop may still be queued.
SETTLE_S = 0.2
_POLL_S = 0.1
# The exit status of a capture whose duration ran out (coreutils timeout);
# tcpdump itself exits 0 on SIGINT.
DURATION_EXPIRED_EXIT = 124



class DockerCaptureError(VxcapError, RuntimeError):
    """Base of this adapter's errors; the message is one line, fit to show as it is."""


class DockerUnavailable(DockerCaptureError):
    pass


class CaptureImageMissing(DockerCaptureError):
    pass


class NodeContainerMissing(DockerCaptureError):
    pass


class TcpdumpMissing(DockerCaptureError):
    pass


class DockerCaptureFailed(DockerCaptureError):
    """tcpdump or the engine failed in a way none of the other errors names."""


@dataclass(frozen=True, slots=True)
class DockerCaptureResult:
    """One finished capture: the pcap copied to `path`, and tcpdump's own counts."""

    node: str
    iface: str
    path: Path
    captured: int | None  # tcpdump's own count; None when it was killed before reporting
    dropped: int | None  # dropped by the kernel: the capture is incomplete
    stderr: str
    exit_code: int
    killed: bool = False  # tcpdump ignored SIGINT and was killed: the pcap may be cut short


# --- pure helpers (argv, labels, stats) ------------------------------------------------


def capture_command(iface: str, bpf: str, snaplen: int, max_packets: int, duration: float | None) -> list[str]:
    """The capture helper's argv; with a duration, `timeout` ends tcpdump with SIGINT
    (and forwards the SIGINT that stop() sends to PID 1 on to tcpdump)."""
    return tcpdump_argv(iface, PCAP_IN_CONTAINER, bpf, snaplen, max_packets, duration=duration)


def labels_for(run_id: str, role: str, node: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, RUN_ID_LABEL: run_id, ROLE_LABEL: role, NODE_LABEL: node}


def label_filters(run_id: str | None) -> list[str]:
    filters = [f"{MANAGED_BY_LABEL}={MANAGED_BY}"]
    if run_id is not None:
        filters.append(f"{RUN_ID_LABEL}={run_id}")
    return filters


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _says_tcpdump_missing(text: str) -> bool:
    text = text.lower()
    return "tcpdump" in text and ("executable file not found" in text or "no such file" in text)


def _one_line(err: Exception) -> str:
    text = getattr(err, "explanation", None) or str(err)
    return " ".join(str(text).split())


def _short_id() -> str:
    return uuid.uuid4().hex[:12]


# --- the engine -------------------------------------------------------------------------


class DockerCaptures:
    """Captures and evidence through the local Docker engine.

    `client` is a docker.DockerClient; without one we connect lazily to
    `base_url` (or DOCKER_HOST, or the default socket) on first use, so
    constructing this never fails and `node_container_running` can answer
    False when no engine is there.
    """

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        image: str = DEFAULT_IMAGE,
        run_id: str | None = None,
        base_url: str | None = None,
        listen_timeout: float = LISTEN_TIMEOUT_S,
    ) -> None:
        self._given_client = client
        self._client_cache: docker.DockerClient | None = client
        self.image = image
        # It becomes part of every helper container's name.
        self.run_id = check_container_name(run_id or _short_id(), "run id")
        self.base_url = base_url
        self.listen_timeout = listen_timeout

    # -- connection

    @property
    def address(self) -> str:
        return self.base_url or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET

    def _unavailable(self) -> DockerUnavailable:
        return DockerUnavailable(f"Docker is not reachable at {self.address}: start dockerd or use --capture pod")

    def client(self) -> docker.DockerClient:
        if self._client_cache is None:
            try:
                if self.base_url:
                    client = docker.DockerClient(base_url=self.base_url)
                else:
                    client = docker.from_env()
                client.ping()
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                raise self._unavailable() from None
            self._client_cache = client
        return self._client_cache

    def ping(self) -> None:
        """Raise DockerUnavailable unless the engine answers."""
        client = self.client()
        try:
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            raise self._unavailable() from None

    def close(self) -> None:
        if self._client_cache is not None and self._given_client is None:
            self._client_cache.close()
        self._client_cache = self._given_client

    # -- lookups

    def node_container_running(self, name: str) -> bool:
        """True when the engine is reachable and has a running container named `name`."""
        check_container_name(name, "node container name")
        try:
            container = self.client().containers.get(name)
        except (DockerUnavailable, docker.errors.DockerException, requests.exceptions.RequestException):
            return False  # NotFound included: no such container
        return container.status == "running"

    def _running_node(self, node: str) -> Any:
        check_container_name(node, "node container name")
        try:
            container = self.client().containers.get(node)
        except docker.errors.NotFound:
            raise NodeContainerMissing(f"no Docker container named {node!r}: is the Kind/containerlab node up?") from None
        except requests.exceptions.RequestException:
            raise self._unavailable() from None
        if container.status != "running":
            raise NodeContainerMissing(f"Docker container {node!r} is {container.status}, not running")
        return container

    def require_image(self) -> None:
        try:
            self.client().images.get(self.image)
        except docker.errors.ImageNotFound:
            raise CaptureImageMissing(f"capture image {self.image} is not in the local Docker engine: {BUILD_HINT}") from None
        except requests.exceptions.RequestException:
            raise self._unavailable() from None

    # -- containers

    def _create_helper(self, node_container: Any, node: str, role: str, command: list[str], cap_add: list[str] | None) -> Any:
        try:
            return self.client().containers.create(
                self.image,
                command=command,
                name=f"vxcap-{role}-{self.run_id}-{node}-{_short_id()[:4]}",
                labels=labels_for(self.run_id, role, node),
                network_mode=f"container:{node_container.id}",
                user=HELPER_USER,
                cap_drop=["ALL"],
                cap_add=cap_add,
                privileged=False,
                detach=True,
                tty=False,
                stdin_open=False,
            )
        except docker.errors.ImageNotFound:
            raise CaptureImageMissing(f"capture image {self.image} is not in the local Docker engine: {BUILD_HINT}") from None
        except docker.errors.APIError as err:
            raise DockerCaptureFailed(f"cannot create the {role} container for {node}: {_one_line(err)}") from None
        except requests.exceptions.RequestException:
            raise self._unavailable() from None

    def start_capture(
        self,
        node: str,
        iface: str = "eth1",
        bpf: str = "",
        snaplen: int = DEFAULT_SNAPLEN,
        max_packets: int = DEFAULT_MAX_PACKETS,
        duration: float | None = None,
        out_path: str | Path | None = None,
    ) -> RunningDockerCapture:
        """Start tcpdump on `iface` of the node container; returns once it is listening.

        The pcap is copied to `out_path` (a new temp file by default) by `stop()`.
        """
        command = capture_command(iface, bpf, snaplen, max_packets, duration)
        node_container = self._running_node(node)
        self.require_image()
        container = self._create_helper(node_container, node, "capture", command, list(CAPTURE_CAPS))
        running = RunningDockerCapture(container, node=node, iface=iface, out_path=out_path)
        try:
            running._start(self.listen_timeout)
        except requests.exceptions.RequestException:
            running._discard()
            raise self._unavailable() from None
        except BaseException:
            running._discard()
            raise
        return running

    def node_tables(self, node: str) -> dict[str, str]:
        """JSON dumps of the node's links, routes, neighbours and FDB, keyed by file name.

        A command that fails yields a JSON object {"error": ..., "argv": [...]}
        in its file, so one missing table never costs the others.
        """
        node_container = self._running_node(node)
        self.require_image()
        container = self._create_helper(node_container, node, "evidence", ["sleep", "infinity"], None)
        try:
            try:
                container.start()
            except docker.errors.APIError as err:
                raise DockerCaptureFailed(f"cannot start the evidence container for {node}: {_one_line(err)}") from None
            files: dict[str, str] = {}
            for name, argv in NODE_TABLE_COMMANDS.items():
                try:
                    code, (out, err) = container.exec_run(list(argv), stdout=True, stderr=True, demux=True)
                except requests.exceptions.RequestException:
                    raise self._unavailable() from None
                out_text = (out or b"").decode(errors="replace")
                if code == 0:
                    files[name] = out_text
                else:
                    message = _last_line((err or b"").decode(errors="replace") or out_text)
                    files[name] = json.dumps({"error": message, "argv": list(argv), "exit_code": code})
            return files
        finally:
            _remove_quietly(container)

    def cleanup(self, run_id: str | None = None) -> list[str]:
        """Remove the containers vxcap made (of one run, or of every run); returns their names."""
        try:
            containers = self.client().containers.list(all=True, filters={"label": label_filters(run_id)})
        except requests.exceptions.RequestException:
            raise self._unavailable() from None
        names = []
        for container in containers:
            _remove(container)
            names.append(container.name)
        return names


def _remove(container: Any) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


def _remove_quietly(container: Any) -> None:
    """Remove on a path that may already be failing: never mask the error under way."""
    try:
        _remove(container)
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        pass  # the engine is gone, and the container with it or left for cleanup()


# Captures started and not yet stopped or discarded, removed at interpreter exit
# if a caller forgot them: a helper container must not outlive the run.
_live: set[RunningDockerCapture] = set()
_live_lock = threading.Lock()


@atexit.register
def _discard_forgotten() -> None:
    with _live_lock:
        forgotten = list(_live)
    for capture in forgotten:
        capture._discard()


class RunningDockerCapture:
    """A tcpdump running in a helper container; `stop()` (or leaving the `with`) ends it."""

    def __init__(self, container: Any, node: str, iface: str, out_path: str | Path | None) -> None:
        self._container = container
        self.node = node
        self.iface = iface
        self.out_path = Path(out_path) if out_path is not None else None
        self.result: DockerCaptureResult | None = None
        self._done = False
        with _live_lock:
            _live.add(self)

    @property
    def container_id(self) -> str:
        return self._container.id

    @property
    def container_name(self) -> str:
        return self._container.name

    def _stderr(self) -> str:
        return self._container.logs(stdout=False, stderr=True).decode(errors="replace")

    def _start(self, listen_timeout: float) -> None:
        try:
            self._container.start()
        except docker.errors.APIError as err:
            if _says_tcpdump_missing(_one_line(err)):
                raise TcpdumpMissing(f"capture image {self._image_name()} has no tcpdump: {BUILD_HINT}") from None
            raise DockerCaptureFailed(f"cannot start the capture container on {self.node}: {_one_line(err)}") from None
        deadline = time.monotonic() + listen_timeout
        while True:
            stderr = self._stderr()
            if any(is_listening(line) for line in stderr.splitlines()):
                return
            self._container.reload()
            if self._container.status in ("exited", "dead"):
                code = self._container.attrs["State"]["ExitCode"]
                if code == 127 or _says_tcpdump_missing(stderr):
                    raise TcpdumpMissing(f"capture image {self._image_name()} has no tcpdump: {BUILD_HINT}")
                raise DockerCaptureFailed(f"tcpdump on {self.node}:{self.iface} exited ({code}) before listening: {_last_line(stderr)}")
            if time.monotonic() > deadline:
                raise DockerCaptureFailed(f"tcpdump on {self.node}:{self.iface} was not listening after {listen_timeout:g}s: {_last_line(stderr)}")
            time.sleep(_POLL_S)

    def _image_name(self) -> str:
        config_image = self._container.attrs.get("Config", {}).get("Image")
        return config_image or self._container.image.id

    def running(self) -> bool:
        """Whether tcpdump still runs (it ends by itself at max_packets or the duration)."""
        self._container.reload()
        return self._container.status == "running"

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` s for tcpdump to end by itself; True if it did."""
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)
        return True

    def stop(self, timeout: float = STOP_TIMEOUT_S, settle: float = SETTLE_S) -> DockerCaptureResult:
        """SIGINT tcpdump, copy its pcap out, remove the helper container. Idempotent."""
        if self.result is not None:
            return self.result
        if self._done:
            raise DockerCaptureFailed(f"the capture on {self.node} was discarded")
        try:
            killed = self._interrupt(timeout, settle)
            state = self._container.attrs["State"]
            exit_code = int(state.get("ExitCode", -1))
            stderr = self._stderr()
            path = self._copy_pcap(stderr, exit_code)
            captured, dropped = parse_tcpdump_stats(stderr)
            self.result = DockerCaptureResult(
                node=self.node,
                iface=self.iface,
                path=path,
                captured=captured,
                dropped=dropped,
                stderr=stderr,
                exit_code=exit_code,
                killed=killed,
            )
            return self.result
        except requests.exceptions.ConnectionError as err:
            raise DockerCaptureFailed(f"lost the Docker engine while stopping the capture on {self.node}: {_one_line(err)}") from None
        finally:
            self._discard()

    def _interrupt(self, timeout: float, settle: float) -> bool:
        """End tcpdump with SIGINT so it closes the pcap; SIGKILL only if it will not go."""
        self._container.reload()
        if self._container.status == "running":
            if settle > 0:
                time.sleep(settle)
            try:
                self._container.kill(signal="SIGINT")
            except docker.errors.APIError:
                pass  # it exited between reload and kill
        try:
            self._container.wait(timeout=timeout)
            killed = False
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            self._container.kill()
            self._container.wait(timeout=10)
            killed = True
        self._container.reload()
        return killed

    def _copy_pcap(self, stderr: str, exit_code: int) -> Path:
        try:
            chunks, _ = self._container.get_archive(PCAP_IN_CONTAINER)
            # Spooled: a long capture's pcap need not fit in memory twice.
            archive = tempfile.SpooledTemporaryFile(max_size=64 << 20)
            for chunk in chunks:
                archive.write(chunk)
            archive.seek(0)
        except docker.errors.NotFound:
            raise DockerCaptureFailed(f"tcpdump on {self.node}:{self.iface} wrote no pcap (exit {exit_code}): {_last_line(stderr)}") from None
        with archive, tarfile.open(fileobj=archive) as tar:
            member = tar.getmembers()[0]
            source = tar.extractfile(member)
            if source is None:
                raise DockerCaptureFailed(f"the pcap copied from {self.node} is not a regular file")
            path = capture_destination(self.out_path, self.node, self.iface)
            with open(path, "wb") as out:
                while block := source.read(1 << 20):
                    out.write(block)
        return path

    def _discard(self) -> None:
        """Remove the helper container whatever state it is in."""
        if self._done:
            return
        self._done = True
        with _live_lock:
            _live.discard(self)
        _remove_quietly(self._container)

    def __enter__(self) -> RunningDockerCapture:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.stop()
        else:
            self._discard()
