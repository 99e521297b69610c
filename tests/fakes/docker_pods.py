"""The fake API's pods as real Docker containers, confined as their securityContext says.

The fake of tests/fakes/kube_api.py runs whatever a PodRuntime runs. The
process runtimes run every exec as root, whatever the pod asked for, so a pod
spec that could never work on a real node passes there. This runtime asks the
Docker engine for what the kubelet would ask its container runtime for:

  runAsUser / runAsGroup          -> user "UID:GID" (else the image's user)
  runAsNonRoot with uid 0         -> refused, as the kubelet refuses it
  capabilities drop / add         -> cap_drop / cap_add (drop ALL leaves only the added
                                     in the bounding set)
  allowPrivilegeEscalation: false -> no-new-privileges (the kubelet sets no_new_privs)
  readOnlyRootFilesystem          -> read_only
  seccompProfile RuntimeDefault   -> Docker's default profile; unset or Unconfined -> none,
                                     the kubelet's default
  hostNetwork                     -> network_mode "container:<node container>": on a Kind
                                     node, the host network is the node container's
  hostPID / hostIPC               -> pid_mode / ipc_mode "host"
  sysctls (pod level)             -> sysctls (namespaced ones only, as the kubelet allows)

Container-level fields override the pod's, as in Kubernetes. What it cannot
honour (privileged, volumes, a Localhost seccomp profile, an image not in the
local engine) raises rather than run a pod that is not what was asked.

Pods that are not hostNetwork go to `delegate` (e.g. the lab's pod namespaces)
when one is given; else, with `network`, they run as containers on that Docker
network (an internal one: no route out) with its address as their pod IP. Exec is `docker exec`: the container's user, capabilities,
no_new_privs and seccomp, its stdout and stderr streamed into the fake's ExecIO
byte for byte; when the client leaves, the exec'd process runs on, as under a
kubelet, until it exits or its pod is deleted. Deleting the pod removes its container.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import docker
import docker.errors

from tests.fakes.kube_api import CommandFailedToStart, CommandNotFound, ExecIO, PodRuntime

PREFIX = "vxp"
POD_LABEL = "vxcap.io/test-pod"  # namespace/name of the fake pod a container stands for
TEST_LABEL = "vxcap.io/test"  # the same label tests/docker_support.py marks its node containers with
_EXIT_POLL_S = 0.02


class Unsupported(Exception):
    """The pod asks for something this runtime does not emulate, or the kubelet would refuse."""


def security_context(pod: dict) -> dict[str, Any]:
    """The first container's effective securityContext: the pod's, overridden by the container's."""
    pod_level = dict((pod["spec"].get("securityContext") or {}))
    container_level = pod["spec"]["containers"][0].get("securityContext") or {}
    inherited = {k: pod_level[k] for k in ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile") if k in pod_level}
    return {**inherited, **container_level}


def _image_user(client: docker.DockerClient, image: str) -> str:
    try:
        return client.images.get(image).attrs["Config"].get("User") or "0"
    except docker.errors.ImageNotFound:
        raise Unsupported(f"image {image} is not in the local engine (nothing is pulled here)") from None


def create_options(client: docker.DockerClient, pod: dict, network_mode: str) -> dict[str, Any]:
    """The arguments of containers.create() that confine the container as the pod asks."""
    spec = pod["spec"]
    container = spec["containers"][0]
    security = security_context(pod)
    name = pod["metadata"]["name"]
    if security.get("privileged"):
        raise Unsupported(f"pod {name}: privileged containers are refused on this machine")
    if spec.get("volumes") or container.get("volumeMounts"):
        raise Unsupported(f"pod {name}: volumes are not emulated")
    uid, gid = security.get("runAsUser"), security.get("runAsGroup")
    image_user = _image_user(client, container["image"])
    if uid is None:
        uid_text, _, image_gid = image_user.partition(":")
        if not uid_text.isdigit():
            raise Unsupported(f"pod {name}: image user {image_user!r} is not numeric")
        uid = int(uid_text)
        gid = gid if gid is not None else (int(image_gid) if image_gid.isdigit() else None)
    if security.get("runAsNonRoot") and uid == 0:
        raise Unsupported(f"pod {name}: container has runAsNonRoot and would run as root (CreateContainerConfigError)")
    capabilities = security.get("capabilities") or {}
    security_opt = []
    if security.get("allowPrivilegeEscalation") is False:
        security_opt.append("no-new-privileges")
    seccomp = (security.get("seccompProfile") or {}).get("type", "Unconfined")
    if seccomp == "Unconfined":
        security_opt.append("seccomp=unconfined")
    elif seccomp != "RuntimeDefault":
        raise Unsupported(f"pod {name}: seccomp profile {seccomp} is not emulated")
    command = list(container.get("command") or []) + list(container.get("args") or [])
    sysctls = {s["name"]: s["value"] for s in (spec.get("securityContext") or {}).get("sysctls") or []}
    if sysctls and spec.get("hostNetwork"):
        raise Unsupported(f"pod {name}: net sysctls in the host's network namespace are refused by the kubelet")
    return dict(
        image=container["image"],
        command=command or None,
        user=f"{uid}:{gid}" if gid is not None else str(uid),
        cap_drop=list(capabilities.get("drop") or []) or None,
        cap_add=list(capabilities.get("add") or []) or None,
        security_opt=security_opt or None,
        read_only=bool(security.get("readOnlyRootFilesystem")),
        privileged=False,
        network_mode=network_mode,
        pid_mode="host" if spec.get("hostPID") else None,
        ipc_mode="host" if spec.get("hostIPC") else None,
        environment={e["name"]: e["value"] for e in container.get("env") or [] if "value" in e} or None,
        sysctls=sysctls or None,
        labels={TEST_LABEL: "docker-pod", POD_LABEL: f"{pod['metadata'].get('namespace', '')}/{name}"},
        detach=True,
    )


class DockerPods(PodRuntime):
    """hostNetwork pods as containers in their node's network namespace; the rest to `delegate`.

    `nodes` maps a node name to the (Kind-like) container that is that node.
    `amend(pod)`, if given, may change a pod's spec before it runs: a test's way
    to run a spec vxcap no longer builds. `created` lists every container made,
    for checks that none is left; `ran` the create() options of each pod's container.
    """

    def __init__(
        self,
        client: docker.DockerClient,
        nodes: Mapping[str, Any],
        delegate: PodRuntime | None = None,
        amend: Callable[[dict], dict] | None = None,
        network: str | None = None,
    ) -> None:
        self.client = client
        self.nodes = dict(nodes)
        self.delegate = delegate
        self.amend = amend
        self.network = network
        self.created: list[Any] = []
        self.ran: dict[str, dict[str, Any]] = {}  # pod name -> create() options
        self._containers: dict[str, Any] = {}  # pod name -> container
        self._lock = threading.Lock()

    def _ours(self, pod: dict) -> bool:
        return bool(pod["spec"].get("hostNetwork")) or self.delegate is None

    def _network_mode(self, pod: dict) -> str:
        node = pod["spec"].get("nodeName", "")
        if not pod["spec"].get("hostNetwork"):
            if self.network is None:
                raise Unsupported(f"pod {pod['metadata']['name']}: only hostNetwork pods run here without a delegate or a network")
            return self.network
        if node not in self.nodes:
            raise Unsupported(f"pod {pod['metadata']['name']}: no container stands for node {node!r}")
        self.nodes[node].reload()
        return f"container:{self.nodes[node].id}"

    def container_ids(self) -> list[str]:
        with self._lock:
            return [c.id for c in self.created]

    def start(self, pod: dict) -> dict | None:
        if not self._ours(pod):
            return self.delegate.start(pod)
        if self.amend is not None:
            pod = self.amend(pod)
        options = create_options(self.client, pod, self._network_mode(pod))
        name = f"{PREFIX}-{uuid.uuid4().hex[:6]}-{pod['metadata']['name']}"
        container = self.client.containers.create(name=name, **options)
        with self._lock:
            self.created.append(container)
            self.ran[pod["metadata"]["name"]] = options
            self._containers[pod["metadata"]["name"]] = container
        container.start()
        container.reload()
        if container.status != "running":
            raise Unsupported(f"pod {pod['metadata']['name']}: its container is {container.status}: {container.logs()[-300:]!r}")
        if pod["spec"].get("hostNetwork"):
            return None  # the fake gives the pod its node's address, as the kubelet does
        ip = container.attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"]
        return {"podIP": ip, "podIPs": [{"ip": ip}]}

    def stop(self, pod: dict) -> None:
        if not self._ours(pod):
            self.delegate.stop(pod)
            return
        with self._lock:
            container = self._containers.pop(pod["metadata"]["name"], None)
        if container is not None:
            _remove(container)

    def log(self, pod: dict) -> bytes:
        if not self._ours(pod):
            return self.delegate.log(pod)
        with self._lock:
            container = self._containers.get(pod["metadata"]["name"])
        return container.logs() if container is not None else b""

    def exec(self, pod: dict, argv: list[str], io: ExecIO) -> int:
        if not self._ours(pod):
            return self.delegate.exec(pod, argv, io)
        with self._lock:
            container = self._containers.get(pod["metadata"]["name"])
        if container is None:
            raise Unsupported(f"pod {pod['metadata']['name']} has no container")
        api = self.client.api
        exec_id = api.exec_create(container.id, argv, stdout=True, stderr=True)["Id"]
        stream = api.exec_start(exec_id, stream=True, demux=True)
        said = bytearray()  # the runtime's own words when the command cannot start
        ended = threading.Event()

        def pump() -> None:
            try:
                for out, err in stream:
                    if out:
                        if len(said) < 4096:
                            said.extend(out[:4096])
                        io.stdout(out)
                    if err:
                        if len(said) < 4096:
                            said.extend(err[:4096])
                        io.stderr(err)
            except (docker.errors.APIError, OSError):
                pass  # the container went with its pod
            finally:
                ended.set()

        threading.Thread(target=pump, name=f"docker-exec-{exec_id[:8]}", daemon=True).start()
        # As a kubelet: the client leaving does not end the process; its own exit or the
        # pod's deletion (the container removed) does.
        ended.wait()
        code = _exit_code(api, exec_id)
        if code in (126, 127) and b"executable file not found" in said:
            raise CommandNotFound(argv[0] if argv else "")
        refused = _exec_refusal(code, bytes(said))
        if refused is not None:
            raise CommandFailedToStart(refused)
        return code

    def close(self) -> None:
        """Remove every container this runtime made (the fake's stop() normally did)."""
        with self._lock:
            made = list(self.created)
            self._containers.clear()
        for container in made:
            _remove(container)

    def __enter__(self) -> DockerPods:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remove(container: Any) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


# runc's words when execve itself fails (file capabilities outside the bounding set: EPERM).
_RUNC_EXEC_FAILED = re.compile(rb"^exec (\S+): ([^\n]+)\n?$")


def _exec_refusal(code: int, said: bytes) -> str | None:
    """The runtime refused to start the command: the message a kubelet's API server sends, else None."""
    text = " ".join(said.decode(errors="replace").split())
    if code in (126, 127) and text.startswith("OCI runtime exec failed"):
        return text
    found = _RUNC_EXEC_FAILED.match(said)
    if code in (1, 126, 127) and found:
        path, reason = found.group(1).decode(), found.group(2).decode().strip()
        return f"OCI runtime exec failed: exec failed: unable to start container process: exec {path}: {reason}: unknown"
    return None


def _exit_code(api: Any, exec_id: str, timeout: float = 5.0) -> int:
    """The exit status of a finished exec; -1 when its container was removed under it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = api.exec_inspect(exec_id)
        except docker.errors.APIError:
            return -1
        if not state.get("Running") and state.get("ExitCode") is not None:
            return int(state["ExitCode"])
        if time.monotonic() > deadline:
            return -1
        time.sleep(_EXIT_POLL_S)
