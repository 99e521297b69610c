"""An in-process Kubernetes API server that speaks real HTTP to the real client.

No API server can run on the test machines, and mocking the kubernetes
client's Python objects would test nothing the client does. So this serves the
slice of the API vxcap uses over HTTP on 127.0.0.1 (a random port): discovery,
nodes, namespaces, pods (create/get/list/delete/deletecollection, and watch as
a chunked stream of JSON lines), pods/log, pods/exec (a WebSocket speaking the
v4/v5 channel protocols), events, and Calico's resources in whichever API
groups a test enables (a missing group answers 404 like a real cluster).

Every request is recorded, classified as RBAC sees it (verb, group, resource,
subresource, namespace), so tests can hold the code to deploy/rbac.yaml.

What runs "inside" a pod is pluggable: a `PodRuntime` gets each pod when it
starts and stops and every exec's argv, and writes the exec's stdout/stderr; a
later test can back pods with real network namespaces.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import re
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from tests.fakes import calico_objects as co
from tests.fakes import cni_objects

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
V4_PROTOCOL = "v4.channel.k8s.io"
V5_PROTOCOL = "v5.channel.k8s.io"
STDOUT, STDERR, ERROR = 1, 2, 3

PENDING_MESSAGE = (
    "0/4 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
    "3 Insufficient cpu. preemption: 0/4 nodes are available: 4 No preemption victims found for incoming pod."
)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_object(code: int, reason: str, message: str, details: dict | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.body = status_object(code, reason, message, details)
        self.code = code


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    what = f"{resource}.{group}" if group else resource
    return ApiError(404, "NotFound", f'{what} "{name}" not found', {"name": name, "kind": resource})


# ---------------------------------------------------------------- selectors


def _parse_label_selector(text: str) -> list[tuple[str, str, str | None]]:
    terms = []
    for raw in filter(None, (t.strip() for t in text.split(","))):
        if "!=" in raw:
            key, value = raw.split("!=", 1)
            terms.append(("!=", key.strip(), value.strip()))
        elif "==" in raw:
            key, value = raw.split("==", 1)
            terms.append(("=", key.strip(), value.strip()))
        elif "=" in raw:
            key, value = raw.split("=", 1)
            terms.append(("=", key.strip(), value.strip()))
        elif raw.startswith("!"):
            terms.append(("!", raw[1:].strip(), None))
        else:
            terms.append(("exists", raw, None))
    return terms


def labels_match(obj: dict, selector: str | None) -> bool:
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for op, key, value in _parse_label_selector(selector):
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!" and key in labels:
            return False
    return True


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def fields_match(obj: dict, selector: str | None) -> bool:
    if not selector:
        return True
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        key, value = re.split(r"!=|==|=", term, maxsplit=1)
        actual = _dig(obj, key.strip())
        actual = "" if actual is None else str(actual)
        if (actual == value.strip()) == negate:
            return False
    return True


# ---------------------------------------------------------------- RBAC view of a request


@dataclass(frozen=True)
class Access:
    """A request as the authorizer sees it; `resource` None for non-resource URLs."""

    verb: str
    group: str | None = None
    resource: str | None = None
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    access: tuple[Access, ...]


def classify(method: str, path: str, query: dict[str, list[str]]) -> tuple[Access, ...]:
    """The RBAC checks a real API server makes for one request (more than one for exec)."""
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis") or (parts[0] == "api" and len(parts) < 3) or (parts[0] == "apis" and len(parts) < 4):
        return (Access(verb=method.lower(), path=path),)
    if parts[0] == "api":
        group, rest = "", parts[2:]
    else:
        group, rest = parts[1], parts[3:]
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if resource == "namespaces" and name and not namespace:
        namespace = name
    watching = query.get("watch", [""])[0] in ("true", "1")
    if method == "GET":
        verb = "get" if name else ("watch" if watching else "list")
    elif method == "POST":
        verb = "create"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    elif method in ("PUT",):
        verb = "update"
    elif method == "PATCH":
        verb = "patch"
    else:
        verb = method.lower()
    access = Access(verb=verb, group=group, resource=resource, subresource=sub, namespace=namespace, name=name, path=path)
    if sub == "exec" and method == "GET":
        # A WebSocket exec is a GET; since Kubernetes 1.31 it must also pass `create` on pods/exec.
        return (access, Access("create", group, resource, sub, namespace, name, path))
    return (access,)


# ---------------------------------------------------------------- pod runtime


class ExecIO:
    """What an exec'd process can do: write its streams, and notice the client leaving."""

    def __init__(self, send: Callable[[int, bytes], None]):
        self._send = send
        self.client_gone = threading.Event()

    def stdout(self, data: bytes | str) -> None:
        self._send(STDOUT, data.encode() if isinstance(data, str) else data)

    def stderr(self, data: bytes | str) -> None:
        self._send(STDERR, data.encode() if isinstance(data, str) else data)


class CommandNotFound(Exception):
    pass


class CommandFailedToStart(Exception):
    """The runtime could not start the command (e.g. exec refused with EPERM); the message is its words."""


class PodRuntime:
    """The behaviour of containers. Override what a test needs.

    start(pod) runs when the pod becomes Running and may return status fields to
    set (e.g. {"podIP": ...}); exec(pod, argv, io) returns the exit status;
    stop(pod) runs on deletion; log(pod) is the main container's log.
    """

    def start(self, pod: dict) -> dict | None:
        return None

    def exec(self, pod: dict, argv: list[str], io: ExecIO) -> int:
        raise CommandNotFound(argv[0] if argv else "")

    def stop(self, pod: dict) -> None:
        return None

    def log(self, pod: dict) -> bytes:
        return b""


class CommandRuntime(PodRuntime):
    """Dispatch exec by argv[0] to handlers `(pod, argv, io) -> exit status`; records every exec."""

    def __init__(self, handlers: dict[str, Callable[[dict, list[str], ExecIO], int]] | None = None, logs: dict[str, bytes] | None = None):
        self.handlers = dict(handlers or {})
        self.logs = dict(logs or {})
        self.execs: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()

    def exec(self, pod: dict, argv: list[str], io: ExecIO) -> int:
        with self._lock:
            self.execs.append((pod["metadata"]["name"], list(argv)))
        handler = self.handlers.get(argv[0] if argv else "")
        if handler is None:
            raise CommandNotFound(argv[0] if argv else "")
        return handler(pod, argv, io)

    def log(self, pod: dict) -> bytes:
        return self.logs.get(pod["metadata"]["name"], b"")


class ProcessRuntime(PodRuntime):
    """Runs each exec as a real local process: `prefix(pod) + argv`, e.g. ["ip", "netns", "exec", ns].

    As a kubelet, it leaves a process running when its exec client disconnects;
    only the process's own end or the pod's deletion ends it.

    `pkill` is not run but emulated against the processes this runtime started
    for the same pod: a real pkill, even inside a network namespace, sees every
    process of the host (and other people's tcpdumps).
    """

    def __init__(
        self,
        prefix: Callable[[dict], list[str]] = lambda pod: [],
        on_start: Callable[[dict], dict | None] | None = None,
        on_stop: Callable[[dict], None] | None = None,
    ):
        self.prefix = prefix
        self.on_start = on_start
        self.on_stop = on_stop
        self._running: dict[str, list[tuple[list[str], subprocess.Popen]]] = {}
        self._lock = threading.Lock()

    def start(self, pod: dict) -> dict | None:
        return self.on_start(pod) if self.on_start else None

    def stop(self, pod: dict) -> None:
        with self._lock:
            running = self._running.pop(pod["metadata"]["name"], [])
        for _, proc in running:
            if proc.poll() is None:
                proc.kill()
        if self.on_stop:
            self.on_stop(pod)

    def exec(self, pod: dict, argv: list[str], io: ExecIO) -> int:
        name = pod["metadata"]["name"]
        if argv[:1] == ["pkill"]:
            return self._pkill(name, argv[1:])
        try:
            proc = subprocess.Popen(self.prefix(pod) + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError:
            raise CommandNotFound(argv[0]) from None
        entry = (argv, proc)
        with self._lock:
            self._running.setdefault(name, []).append(entry)

        def pump(stream, write) -> None:
            while chunk := os.read(stream.fileno(), 65536):
                write(chunk)

        pumps = [
            threading.Thread(target=pump, args=(proc.stdout, io.stdout), daemon=True),
            threading.Thread(target=pump, args=(proc.stderr, io.stderr), daemon=True),
        ]
        for thread in pumps:
            thread.start()
        # A kubelet does not kill an exec'd process when the client goes away: it runs on
        # (its output unread) until it exits or its pod is deleted (stop()).
        proc.wait()
        for thread in pumps:
            thread.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
        with self._lock:
            if entry in self._running.get(name, []):
                self._running[name].remove(entry)
        return proc.returncode

    def alive(self, pod_name: str) -> list[list[str]]:
        """The argv of every exec still running in the pod (what a leak looks like)."""
        with self._lock:
            return [argv for argv, proc in self._running.get(pod_name, []) if proc.poll() is None]

    def _pkill(self, pod_name: str, args: list[str]) -> int:
        sig = signal.SIGTERM
        exact = None
        for i, arg in enumerate(args):
            if arg == "-x" and i + 1 < len(args):
                exact = args[i + 1]
            elif arg.startswith("-") and arg[1:].isalpha() and arg != "-x":
                sig = getattr(signal, f"SIG{arg[1:]}")
        with self._lock:
            running = list(self._running.get(pod_name, []))
        hit = 0
        for argv, proc in running:
            names = {os.path.basename(a) for a in argv}
            if proc.poll() is None and (exact is None or exact in names):
                proc.send_signal(sig)
                hit += 1
        return 0 if hit else 1


# ---------------------------------------------------------------- Pod Security admission, as the API server enforces it

# Capabilities the baseline level lets a container add (Pod Security Standards).
BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                 "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}


def _quoted(items) -> str:
    return ", ".join(f'"{i}"' for i in items)


def pod_security_violations(pod: dict, level: str) -> list[str]:
    """What the PodSecurity admission plugin lists for `pod` at `level`, in its words (the checks vxcap's pods meet)."""
    if level not in ("baseline", "restricted"):
        return []
    spec = pod.get("spec") or {}
    found = []
    host = [f"{f}=true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]
    if host:
        found.append(f"host namespaces ({', '.join(host)})")
    containers = spec.get("containers") or []
    privileged = [c["name"] for c in containers if (c.get("securityContext") or {}).get("privileged")]
    if privileged:
        found.append(f"privileged (container {_quoted(privileged)} must not set securityContext.privileged=true)")
    if level == "restricted":
        escalating = [c["name"] for c in containers if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False]
        if escalating:
            found.append(f"allowPrivilegeEscalation != false (container {_quoted(escalating)} must set securityContext.allowPrivilegeEscalation=false)")
    for c in containers:
        added = sorted(set((((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or [])))
        allowed = {"NET_BIND_SERVICE"} if level == "restricted" else BASELINE_CAPS
        bad = [cap for cap in added if cap not in allowed]
        if bad:
            name = "unrestricted capabilities" if level == "restricted" else "non-default capabilities"
            found.append(f'{name} (container "{c["name"]}" must not include {_quoted(bad)} in securityContext.capabilities.add)')
    return found


# ---------------------------------------------------------------- images on nodes, as the kubelet sees them

BACKOFF_DELAY_S = 0.3  # ErrImagePull turns into ImagePullBackOff after this (the kubelet: 10 s and up)
_REFERENCE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$")


def normalized_image(image: str) -> str:
    """containerd's full reference: docker.io/ and library/ added, :latest when untagged."""
    name, digest = (image.split("@", 1) + [""])[:2]
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if ":" not in name.rsplit("/", 1)[-1] and not digest:
        name += ":latest"
    return name + (f"@{digest}" if digest else "")


def image_waiting(image: str, policy: str, on_node: bool, pullable: bool) -> tuple[str, str, str] | None:
    """(reason, message, event message) a kubelet gives a container whose image it cannot get; None if it can."""
    if not _REFERENCE.match(image):
        message = (f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": '
                   "invalid reference format: repository name must be lowercase")
        return "InvalidImageName", message, message
    if on_node and policy != "Always":
        return None
    if policy == "Never":
        message = f'Container image "{image}" is not present with pull policy of Never'
        return "ErrImageNeverPull", message, message
    if pullable:
        return None
    full = normalized_image(image)
    message = (f'rpc error: code = Unknown desc = failed to pull and unpack image "{full}": failed to resolve reference '
               f'"{full}": pull access denied, repository does not exist or may require authorization: '
               "server message: insufficient_scope: authorization failed")
    return "ErrImagePull", message, f'Failed to pull image "{image}": {message}'


@dataclass
class Fate:
    """What becomes of a pod: Running and Ready after `delay`, stuck Pending with a
    scheduler event, Failed (its container exited) with `log`, or Pending with its
    container waiting for `reason` (e.g. CreateContainerConfigError) and `message`."""

    kind: str = "ready"  # ready | pending | failed | waiting
    delay: float = 0.05
    reason: str = "FailedScheduling"
    message: str = PENDING_MESSAGE
    log: bytes = b""
    exit_code: int = 1


# ---------------------------------------------------------------- the server


@dataclass
class _WatchEvent:
    rv: int
    type: str
    obj: dict


@dataclass
class FakeKube:
    """The cluster's state and the HTTP server in front of it."""

    calico_groups: tuple[str, ...] = (co.V1,)
    nodes: list[dict] = field(default_factory=co.lab_nodes)
    calico: dict[str, dict[str, list[dict]]] | None = None  # group -> plural -> items; default: the lab in each group
    runtime: PodRuntime = field(default_factory=CommandRuntime)
    fates: dict[str, Fate] = field(default_factory=dict)  # by node name; default Fate()
    exec_protocol: str = V5_PROTOCOL  # what the server picks when the client offers it
    namespaces: dict[str, dict] = field(default_factory=dict)
    forbidden: set[tuple[str, str]] = field(default_factory=set)  # (verb, resource[/subresource]) answered 403
    authorize: Callable[[Access], bool] | None = None  # an authorizer, e.g. deploy/rbac.yaml's rules
    user: str = "system:serviceaccount:vxcap:vxcap"
    # Images each node holds (normalized or not); None: every image on every node.
    # A pod pinned to a node without its image stays Pending: ErrImagePull, then ImagePullBackOff.
    node_images: dict[str, set[str]] | None = None
    registry: set[str] = field(default_factory=set)  # images a node could pull
    # A validating webhook (a policy engine): (namespace, pod) -> None to admit, or (HTTP code, message) to deny.
    webhook: Callable[[str, dict], tuple[int, str] | None] | None = None
    # DaemonSets, ConfigMaps and CiliumEndpoints (tests/fakes/cni_objects.py): none unless a test serves a CNI.
    cni: cni_objects.CniObjects = field(default_factory=cni_objects.CniObjects)

    def __post_init__(self) -> None:
        if self.calico is None:
            self.calico = {group: co.lab_calico(group) for group in self.calico_groups}
        self.pods: dict[tuple[str, str], dict] = {}
        self.events: list[dict] = []
        self.runtime_logs: dict[tuple[str, str], bytes] = {}  # logs of pods whose fate ended them
        self.requests: list[Request] = []
        self.access_reviews: list[Access] = []  # what SelfSubjectAccessReviews asked (SSAR block below)
        self._rv = itertools.count(3000)
        self._watch_log: list[_WatchEvent] = []
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._ip_counters: dict[str, itertools.count] = {}
        self._timers: list[threading.Timer] = []
        self._stopping = threading.Event()
        self.server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeKube:
        handler = type("BoundHandler", (_Handler,), {"kube": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        for timer in self._timers:
            timer.cancel()
        with self._lock:
            remaining = list(self.pods.values())
        for pod in remaining:  # whatever the runtime started for a pod ends with the cluster
            self.runtime.stop(copy.deepcopy(pod))
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self.server is not None, "start() first"
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def write_kubeconfig(self, path: Path, context: str = "kind-k01") -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "fake-token-for-tests"}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    # -- what tests inspect

    def accesses(self) -> list[Access]:
        with self._lock:
            return [a for r in self.requests for a in r.access]

    def requested(self, method: str, path_pattern: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == method and re.fullmatch(path_pattern, r.path)]

    def pods_in(self, namespace: str) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(p) for (ns, _), p in sorted(self.pods.items()) if ns == namespace]

    # -- state changes (under the lock)

    def _next_rv(self) -> str:
        return str(next(self._rv))

    def _emit(self, kind: str, obj: dict) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        self._watch_log.append(_WatchEvent(rv, kind, copy.deepcopy(obj)))
        self._changed.notify_all()

    def _node(self, name: str) -> dict | None:
        return next((n for n in self.nodes if n["metadata"]["name"] == name), None)

    def _node_ip(self, name: str) -> str:
        node = self._node(name) or {}
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                return address["address"]
        return "10.255.255.254"

    def _pod_ip(self, node_name: str) -> str:
        block = None
        for resources in (self.calico or {}).values():
            for affinity in resources.get("blockaffinities", []):
                spec = affinity["spec"]
                if spec["node"] == node_name and str(spec.get("deleted", "false")).lower() != "true":
                    block = ip_network(spec["cidr"])
        if block is None:
            block = ip_network("10.244.0.0/24")
        counter = self._ip_counters.setdefault(node_name, itertools.count(1))
        # Address 0 of a Calico block is the node's VTEP; pods get the next ones.
        return str(block.network_address + next(counter))

    def create_pod(self, namespace: str, body: dict) -> dict:
        if namespace not in self.namespaces:
            raise not_found("namespaces", namespace)
        pod = copy.deepcopy(body)
        meta = pod.setdefault("metadata", {})
        name = meta.get("name", "")
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", name) or len(name) > 253:
            raise ApiError(422, "Invalid", f'Pod "{name}" is invalid: metadata.name: Invalid value: "{name}"')
        if (namespace, name) in self.pods:
            raise ApiError(409, "AlreadyExists", f'pods "{name}" already exists', {"name": name, "kind": "pods"})
        spec = pod.get("spec") or {}
        if not spec.get("containers"):
            raise ApiError(422, "Invalid", f'Pod "{name}" is invalid: spec.containers: Required value')
        labels = (self.namespaces[namespace].get("metadata") or {}).get("labels") or {}
        level = labels.get("pod-security.kubernetes.io/enforce", "privileged")
        violations = pod_security_violations(pod, level)
        if violations:
            version = labels.get("pod-security.kubernetes.io/enforce-version", "latest")
            raise ApiError(403, "Forbidden", f'pods "{name}" is forbidden: violates PodSecurity "{level}:{version}": {", ".join(violations)}')
        if self.webhook is not None:
            denied = self.webhook(namespace, pod)
            if denied is not None:
                code, message = denied
                raise ApiError(code, "Forbidden" if code == 403 else "BadRequest", message)
        meta.update(
            namespace=namespace,
            uid=hashlib.sha256(f"{namespace}/{name}/{time.time()}".encode()).hexdigest()[:36],
            creationTimestamp=_now(),
            resourceVersion=self._next_rv(),
        )
        pod.setdefault("apiVersion", "v1")
        pod.setdefault("kind", "Pod")
        node_name = spec.get("nodeName", "")
        pod["status"] = {
            "phase": "Pending",
            "qosClass": "BestEffort",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": _now()}] if node_name else [],
        }
        self.pods[(namespace, name)] = pod
        self._emit("ADDED", pod)
        fate = self.fates.get(node_name, Fate())
        timer = threading.Timer(fate.delay, self._apply_fate, args=(namespace, name, fate))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()
        return copy.deepcopy(pod)

    def _apply_fate(self, namespace: str, name: str, fate: Fate) -> None:
        with self._lock:
            pod = self.pods.get((namespace, name))
            if pod is None or self._stopping.is_set():
                return
            spec = pod["spec"]
            node_name = spec.get("nodeName", "")
            container = spec["containers"][0]
            if fate.kind == "pending":
                self._record_event(pod, fate.reason, fate.message)
                return
            if fate.kind == "waiting":
                self._wait_container(pod, fate.reason, fate.message)
                return
            pulled = self._image_trouble(pod)
            if pulled is not None:
                reason, message, event = pulled
                self._record_event(pod, "Failed", event, component="kubelet")
                self._wait_container(pod, reason, message)
                if reason == "ErrImagePull":
                    timer = threading.Timer(BACKOFF_DELAY_S, self._back_off, args=(namespace, name))
                    timer.daemon = True
                    self._timers.append(timer)
                    timer.start()
                return
            host_network = bool(spec.get("hostNetwork"))
            status = pod["status"]
            status.update(hostIP=self._node_ip(node_name), startTime=_now())
            ip = status["hostIP"] if host_network else self._pod_ip(node_name)
            status.update(podIP=ip, podIPs=[{"ip": ip}])
            if fate.kind == "failed":
                self.runtime_logs[(namespace, name)] = fate.log
                status["phase"] = "Failed"
                status["containerStatuses"] = [
                    {
                        "name": container["name"],
                        "image": container.get("image", ""),
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": fate.exit_code, "reason": "Error", "finishedAt": _now()}},
                    }
                ]
            else:
                try:
                    extra = self.runtime.start(copy.deepcopy(pod)) or {}
                except Exception as err:  # noqa: BLE001 - the runtime could not create the container: a kubelet says so
                    self._wait_container(pod, "CreateContainerError", " ".join(str(err).split()))
                    return
                status.update(extra)
                status["phase"] = "Running"
                cni_objects.pod_started(self.cni, pod)  # Cilium's agent writes the pod's CiliumEndpoint
                status["conditions"] = [
                    {"type": t, "status": "True", "lastTransitionTime": _now()}
                    for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
                ]
                status["containerStatuses"] = [
                    {
                        "name": container["name"],
                        "image": container.get("image", ""),
                        "imageID": f"docker.io/{container.get('image', '')}@sha256:{'0' * 64}",
                        "containerID": f"containerd://{hashlib.sha256(name.encode()).hexdigest()}",
                        "ready": True,
                        "started": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": _now()}},
                    }
                ]
            pod["metadata"]["resourceVersion"] = self._next_rv()
            self._emit("MODIFIED", pod)

    def _image_trouble(self, pod: dict) -> tuple[str, str, str] | None:
        if self.node_images is None:
            return None
        container = pod["spec"]["containers"][0]
        image = container.get("image", "")
        node = pod["spec"].get("nodeName", "")
        held = {normalized_image(i) for i in self.node_images.get(node, set())}
        pullable = normalized_image(image) in {normalized_image(i) for i in self.registry}
        policy = container.get("imagePullPolicy") or ("Always" if normalized_image(image).endswith(":latest") else "IfNotPresent")
        return image_waiting(image, policy, normalized_image(image) in held, pullable)

    def _wait_container(self, pod: dict, reason: str, message: str) -> None:
        """Pending, its container waiting for `reason`: what a kubelet reports for a container it cannot create."""
        container = pod["spec"]["containers"][0]
        status = pod["status"]
        status.update(hostIP=self._node_ip(pod["spec"].get("nodeName", "")), startTime=_now())
        status["conditions"] = [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": _now()},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": _now(),
             "message": f"containers with unready status: [{container['name']}]"},
        ]
        status["containerStatuses"] = [{
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "",
            "ready": False,
            "started": False,
            "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}},
        }]
        pod["metadata"]["resourceVersion"] = self._next_rv()
        self._emit("MODIFIED", pod)

    def _back_off(self, namespace: str, name: str) -> None:
        with self._lock:
            pod = self.pods.get((namespace, name))
            if pod is None or self._stopping.is_set():
                return
            image = pod["spec"]["containers"][0].get("image", "")
            message = f'Back-off pulling image "{image}"'
            self._record_event(pod, "BackOff", message, component="kubelet")
            self._wait_container(pod, "ImagePullBackOff", message)

    def _record_event(self, pod: dict, reason: str, message: str, component: str = "default-scheduler") -> None:
        meta = pod["metadata"]
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{hashlib.sha256(message.encode()).hexdigest()[:16]}",
                "namespace": meta["namespace"],
                "resourceVersion": self._next_rv(),
                "creationTimestamp": _now(),
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
            },
            "reason": reason,
            "message": message,
            "type": "Warning",
            "count": 1,
            "firstTimestamp": _now(),
            "lastTimestamp": _now(),
            "source": {"component": component},
            "reportingComponent": component,
        }
        self.events.append(event)

    def delete_pod(self, namespace: str, name: str) -> dict:
        pod = self.pods.pop((namespace, name), None)
        if pod is None:
            raise not_found("pods", name)
        pod["metadata"]["resourceVersion"] = self._next_rv()
        pod["metadata"]["deletionTimestamp"] = _now()
        self._emit("DELETED", pod)
        cni_objects.pod_deleted(self.cni, namespace, name)  # and the agent its CiliumEndpoint
        self.runtime.stop(copy.deepcopy(pod))
        return copy.deepcopy(pod)


# ---------------------------------------------------------------- WebSocket framing (RFC 6455, server side)


def _ws_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        header = bytes([0x80 | opcode, n])
    elif n < 1 << 16:
        header = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return header + payload


def _ws_read(rfile) -> tuple[int, bytes] | None:
    head = rfile.read(2)
    if len(head) < 2:
        return None
    opcode = head[0] & 0x0F
    masked = head[1] & 0x80
    n = head[1] & 0x7F
    if n == 126:
        n = int.from_bytes(rfile.read(2), "big")
    elif n == 127:
        n = int.from_bytes(rfile.read(8), "big")
    mask = rfile.read(4) if masked else b"\0\0\0\0"
    data = rfile.read(n)
    if len(data) < n:
        return None
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


# ---------------------------------------------------------------- HTTP handler

_CALICO_PLURALS = ("ippools", "blockaffinities", "felixconfigurations")


class _Handler(BaseHTTPRequestHandler):
    kube: FakeKube
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # the test output stays quiet
        return

    # -- plumbing

    def _send_json(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_bytes(self, code: int, data: bytes, content_type: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        raw = self._raw_body
        return json.loads(raw) if raw else None

    def _dispatch(self, method: str) -> None:
        # Read before any answer: a refused request's body left unread would be taken for the next request.
        length = int(self.headers.get("Content-Length") or 0)
        self._raw_body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        query = parse_qs(split.query)
        access = classify(method, split.path, query)
        kube = self.kube
        with kube._lock:
            kube.requests.append(Request(method, split.path, query, access))
        try:
            for a in access:
                if a.resource == SSAR_RESOURCE:
                    continue  # every authenticated user may ask (system:basic-user); see the SSAR block below
                key = f"{a.resource}/{a.subresource}" if a.subresource else str(a.resource)
                if (a.verb, key) in kube.forbidden or (kube.authorize is not None and a.resource and not kube.authorize(a)):
                    scope = f' in the namespace "{a.namespace}"' if a.namespace else " at the cluster scope"
                    raise ApiError(
                        403,
                        "Forbidden",
                        f'{a.resource} is forbidden: User "{kube.user}" cannot {a.verb} resource "{key}" '
                        f'in API group "{a.group}"{scope}',
                    )
            self._route(method, split.path, query)
        except ApiError as err:
            self._send_json(err.code, err.body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # -- routes

    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        kube = self.kube
        q = {k: v[0] for k, v in query.items()}
        if path in ("/version", "/version/") and method == "GET":  # the client's VersionApi asks for /version/
            return self._send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.2", "platform": "linux/amd64"})
        if path == "/api" and method == "GET":
            return self._send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if path == "/apis" and method == "GET":
            return self._send_json(200, self._group_list())
        if cni_objects.route(self, kube.cni, method, path, q):
            return None
        m = re.fullmatch(r"/apis/([^/]+)/([^/]+)/([^/]+)(?:/([^/]+))?", path)
        if m and method == "GET":
            return self._calico(*m.groups())
        if path == "/api/v1/nodes" and method == "GET":
            with kube._lock:
                items = [copy.deepcopy(n) for n in kube.nodes if labels_match(n, q.get("labelSelector"))]
            return self._send_json(200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "1021"}, "items": items})
        m = re.fullmatch(r"/api/v1/nodes/([^/]+)", path)
        if m and method == "GET":
            with kube._lock:
                found = kube._node(m.group(1))
            if found is None:
                raise not_found("nodes", m.group(1))
            return self._send_json(200, found)
        if path == "/api/v1/namespaces" and method == "POST":
            return self._create_namespace(self._body() or {})
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)", path)
        if m and method == "PATCH":
            return self._patch_namespace(m.group(1), self._body())
        if m and method == "GET":
            with kube._lock:
                ns = kube.namespaces.get(m.group(1))
            if ns is None:
                raise not_found("namespaces", m.group(1))
            return self._send_json(200, ns)
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods", path)
        if m:
            return self._pods(method, m.group(1), q)
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)", path)
        if m:
            return self._pod(method, m.group(1), m.group(2))
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/log", path)
        if m and method == "GET":
            return self._log(m.group(1), m.group(2), q)
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/exec", path)
        if m and method in ("GET", "POST"):
            return self._exec(m.group(1), m.group(2), query)
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/events", path)
        if m and method == "GET":
            with kube._lock:
                items = [
                    copy.deepcopy(e)
                    for e in kube.events
                    if e["metadata"]["namespace"] == m.group(1) and fields_match(e, q.get("fieldSelector"))
                ]
            return self._send_json(200, {"kind": "EventList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})
        if path == SSAR_PATH and method == "POST":
            return self._send_json(201, self_subject_access_review(kube, self._body() or {}))
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _group_list(self) -> dict:
        groups = []
        for gv in self.kube.calico_groups:
            group, version = gv.split("/")
            entry = {"groupVersion": gv, "version": version}
            groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _calico(self, group: str, version: str, plural: str, name: str | None) -> None:
        gv = f"{group}/{version}"
        resources = (self.kube.calico or {}).get(gv) if gv in self.kube.calico_groups else None
        if resources is None or plural not in _CALICO_PLURALS:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        with self.kube._lock:
            items = [copy.deepcopy(i) for i in resources.get(plural, [])]
        kind = {"ippools": "IPPool", "blockaffinities": "BlockAffinity", "felixconfigurations": "FelixConfiguration"}[plural]
        if name is not None:
            found = next((i for i in items if i["metadata"]["name"] == name), None)
            if found is None:
                raise not_found(plural, name, group)
            return self._send_json(200, found)
        return self._send_json(200, {"apiVersion": gv, "kind": f"{kind}List", "metadata": {"resourceVersion": "2210"}, "items": items})

    def _patch_namespace(self, name: str, patch: Any) -> None:
        """A merge patch of labels (what vxcap sends); a JSON patch list is refused as unsupported here."""
        if not isinstance(patch, dict):
            raise ApiError(415, "UnsupportedMediaType", "only merge patches are emulated")
        with self.kube._lock:
            ns = self.kube.namespaces.get(name)
            if ns is None:
                raise not_found("namespaces", name)
            for key, value in ((patch.get("metadata") or {}).get("labels") or {}).items():
                labels = ns["metadata"].setdefault("labels", {})
                if value is None:
                    labels.pop(key, None)
                else:
                    labels[key] = value
            ns["metadata"]["resourceVersion"] = self.kube._next_rv()
            body = copy.deepcopy(ns)
        self._send_json(200, body)

    def _create_namespace(self, body: dict) -> None:
        name = (body.get("metadata") or {}).get("name", "")
        with self.kube._lock:
            if name in self.kube.namespaces:
                raise ApiError(409, "AlreadyExists", f'namespaces "{name}" already exists', {"name": name, "kind": "namespaces"})
            ns = copy.deepcopy(body)
            ns.setdefault("apiVersion", "v1")
            ns.setdefault("kind", "Namespace")
            ns["metadata"].update(uid=hashlib.sha256(name.encode()).hexdigest()[:36], resourceVersion=self.kube._next_rv())
            ns["status"] = {"phase": "Active"}
            self.kube.namespaces[name] = ns
        self._send_json(201, ns)

    def _pods(self, method: str, namespace: str, q: dict[str, str]) -> None:
        kube = self.kube
        if method == "POST":
            with kube._lock:
                pod = kube.create_pod(namespace, self._body() or {})
            return self._send_json(201, pod)
        if method == "GET" and q.get("watch") in ("true", "1"):
            return self._watch_pods(namespace, q)
        if method == "GET":
            with kube._lock:
                items = [
                    copy.deepcopy(p)
                    for (ns, _), p in sorted(kube.pods.items())
                    if ns == namespace and labels_match(p, q.get("labelSelector")) and fields_match(p, q.get("fieldSelector"))
                ]
                rv = str(kube._watch_log[-1].rv if kube._watch_log else 2999)
            return self._send_json(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": rv}, "items": items})
        if method == "DELETE":
            with kube._lock:
                names = [
                    name
                    for (ns, name), p in sorted(kube.pods.items())
                    if ns == namespace and labels_match(p, q.get("labelSelector")) and fields_match(p, q.get("fieldSelector"))
                ]
                items = [kube.delete_pod(namespace, name) for name in names]
            return self._send_json(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    def _pod(self, method: str, namespace: str, name: str) -> None:
        kube = self.kube
        with kube._lock:
            if method == "GET":
                pod = kube.pods.get((namespace, name))
                if pod is None:
                    raise not_found("pods", name)
                body = copy.deepcopy(pod)
            elif method == "DELETE":
                body = kube.delete_pod(namespace, name)
            else:
                raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")
        self._send_json(200, body)

    def _log(self, namespace: str, name: str, q: dict[str, str]) -> None:
        kube = self.kube
        with kube._lock:
            pod = kube.pods.get((namespace, name))
            if pod is None:
                raise not_found("pods", name)
            pod = copy.deepcopy(pod)
            data = kube.runtime_logs.get((namespace, name))
        if data is None:
            data = kube.runtime.log(pod)
        tail = q.get("tailLines")
        if tail:
            data = b"".join(data.splitlines(keepends=True)[-int(tail) :])
        self._send_bytes(200, data)

    # -- watch: a chunked stream of JSON lines, as the API server sends it

    def _watch_pods(self, namespace: str, q: dict[str, str]) -> None:
        kube = self.kube
        deadline = time.monotonic() + float(q.get("timeoutSeconds") or 300)

        def matches(obj: dict) -> bool:
            return (
                obj["metadata"].get("namespace") == namespace
                and labels_match(obj, q.get("labelSelector"))
                and fields_match(obj, q.get("fieldSelector"))
            )

        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(event_type: str, obj: dict) -> None:
            line = json.dumps({"type": event_type, "object": obj}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()

        with kube._lock:
            if q.get("resourceVersion") not in (None, "", "0"):
                since = int(q["resourceVersion"])
                backlog = [e for e in kube._watch_log if e.rv > since]
            else:
                backlog = [_WatchEvent(0, "ADDED", copy.deepcopy(p)) for p in kube.pods.values()]
                since = kube._watch_log[-1].rv if kube._watch_log else 0
        try:
            for event in backlog:
                if matches(event.obj):
                    send(event.type, event.obj)
                since = max(since, event.rv)
            while not kube._stopping.is_set():
                with kube._changed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    fresh = [e for e in kube._watch_log if e.rv > since]
                    if not fresh:
                        kube._changed.wait(timeout=min(remaining, 0.5))
                        continue
                for event in fresh:
                    since = max(since, event.rv)
                    if matches(event.obj):
                        send(event.type, event.obj)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        self.close_connection = True

    # -- exec: a WebSocket carrying the channel protocol

    def _exec(self, namespace: str, name: str, query: dict[str, list[str]]) -> None:
        kube = self.kube
        argv = query.get("command", [])
        with kube._lock:
            pod = kube.pods.get((namespace, name))
            if pod is None:
                raise not_found("pods", name)
            pod = copy.deepcopy(pod)
        if pod["status"].get("phase") != "Running":
            raise ApiError(400, "BadRequest", f"pod {name} is not running (phase {pod['status'].get('phase')})")
        if self.headers.get("Upgrade", "").lower() != "websocket":
            raise ApiError(400, "BadRequest", "Upgrade request required")
        offered = [p.strip() for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        if kube.exec_protocol in offered:
            protocol = kube.exec_protocol
        elif V4_PROTOCOL in offered:
            protocol = V4_PROTOCOL
        else:
            raise ApiError(400, "BadRequest", f"no supported channel protocol in {offered}")
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True

        write_lock = threading.Lock()
        conn: socket.socket = self.connection

        def send_frame(opcode: int, payload: bytes) -> None:
            with write_lock:
                conn.sendall(_ws_frame(opcode, payload))

        def send(channel: int, data: bytes) -> None:
            if data and not io.client_gone.is_set():
                try:
                    send_frame(0x2, bytes([channel]) + data)
                except OSError:
                    io.client_gone.set()

        io = ExecIO(send)

        def read_client() -> None:
            while True:
                try:
                    frame = _ws_read(self.rfile)
                except (OSError, ValueError):
                    frame = None
                if frame is None or frame[0] == 0x8:
                    if frame is not None and not io.client_gone.is_set():
                        try:  # answer the close handshake, as a real server does
                            send_frame(0x8, frame[1][:2])
                        except OSError:
                            pass
                    io.client_gone.set()
                    return
                if frame[0] == 0x9:  # ping
                    try:
                        send_frame(0xA, frame[1])
                    except OSError:
                        pass

        reader = threading.Thread(target=read_client, daemon=True)
        reader.start()
        # The API server opens each channel with an empty message.
        for channel in (STDOUT, STDERR, ERROR):
            send_frame(0x2, bytes([channel]))
        try:
            try:
                code = kube.runtime.exec(pod, list(argv), io)
                if code == 0:
                    status = {"metadata": {}, "status": "Success"}
                else:
                    status = {
                        "metadata": {},
                        "status": "Failure",
                        "message": f"command terminated with non-zero exit code: error executing command {argv}, exit code {code}",
                        "reason": "NonZeroExitCode",
                        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
                    }
            except CommandFailedToStart as refused:
                status = {
                    "metadata": {},
                    "status": "Failure",
                    "message": str(refused),
                    "reason": "InternalError",
                    "code": 500,
                }
            except CommandNotFound as missing:
                status = {
                    "metadata": {},
                    "status": "Failure",
                    "message": (
                        "OCI runtime exec failed: exec failed: unable to start container process: "
                        f'exec: "{missing}": executable file not found in $PATH: unknown'
                    ),
                    "reason": "InternalError",
                    "code": 500,
                }
            if not io.client_gone.is_set():
                send_frame(0x2, bytes([ERROR]) + json.dumps(status).encode())
                send_frame(0x8, (1000).to_bytes(2, "big"))
        except OSError:
            pass
        reader.join(timeout=2)
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# ---------------------------------------------------------------- SelfSubjectAccessReview (vxcap doctor)
# `kubectl auth can-i` as the API server answers it: the review's resourceAttributes go through the
# same authorizer as real requests (FakeKube.authorize, e.g. deploy/rbac.yaml's rules, and `forbidden`).

SSAR_RESOURCE = "selfsubjectaccessreviews"
SSAR_PATH = f"/apis/authorization.k8s.io/v1/{SSAR_RESOURCE}"


def self_subject_access_review(kube: FakeKube, body: dict) -> dict:
    attrs = (body.get("spec") or {}).get("resourceAttributes") or {}
    access = Access(
        verb=attrs.get("verb", ""), group=attrs.get("group", ""), resource=attrs.get("resource", ""),
        subresource=attrs.get("subresource", ""), namespace=attrs.get("namespace", ""), name=attrs.get("name", ""),
    )
    key = f"{access.resource}/{access.subresource}" if access.subresource else str(access.resource)
    allowed = (access.verb, key) not in kube.forbidden and (kube.authorize is None or kube.authorize(access))
    with kube._lock:
        kube.access_reviews.append(access)
    status: dict[str, Any] = {"allowed": allowed}
    if allowed:
        status["reason"] = "fake authorizer"
    else:
        status["denied"] = False  # RBAC never denies outright: it just does not allow
        status["reason"] = f'no RBAC rule lets {kube.user} {access.verb} {key} in group "{access.group}"'
    review = copy.deepcopy(body)
    review.update(apiVersion="authorization.k8s.io/v1", kind="SelfSubjectAccessReview", status=status)
    review.setdefault("metadata", {})
    return review


# ---------------------------------------------------------------- pytest fixtures

@dataclass
class RunningFake:
    kube: FakeKube
    kubeconfig: Path


@pytest.fixture
def start_fake_kube(tmp_path: Path):
    """A factory: `start_fake_kube(**FakeKube options)` serves a fake cluster and writes a
    kubeconfig for it; every fake started is stopped when the test ends."""
    started: list[FakeKube] = []

    def start(context: str = "kind-k01", **options: Any) -> RunningFake:
        kube = FakeKube(**options).start()
        started.append(kube)
        path = kube.write_kubeconfig(tmp_path / f"kubeconfig-{len(started)}", context=context)
        return RunningFake(kube, path)

    yield start
    for kube in started:
        kube.stop()


@pytest.fixture
def fake_kube(start_fake_kube) -> RunningFake:
    """The lab cluster k01 with Calico's CRDs (crd.projectcalico.org/v1)."""
    return start_fake_kube()
