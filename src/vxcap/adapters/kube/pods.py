"""vxcap's pods: created together, watched until Ready, explained when they are not, deleted by label."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from vxcap.adapters.kube import manifests
from vxcap.adapters.kube.connection import REQUEST_TIMEOUT, Connection, read_json
from vxcap.adapters.kube.errors import RBAC_HINT, KubeError, label_command, one_line, status_message

_MAX_PARALLEL_CREATES = 8
_EVENTS_PER_POD = 3
_LOG_TAIL_LINES = 5


def ensure_namespace(conn: Connection, name: str, privileged: bool = True) -> None:
    """The namespace exists and admits what vxcap puts in it.

    Absent: created, labelled for Pod Security (`privileged` when capture pods go in
    it, else `restricted`). Present and vxcap's (managed-by label) with a stricter
    enforce level: relabelled; if that is refused, the exact `kubectl label` line is
    the error. Present and someone else's: left alone; if its enforce label forbids
    capture pods, the error says so before any pod is made. A 403 on the lookup is
    not taken for "exists": vxcap tries to create it, and only AlreadyExists means it is there.
    """
    core = conn.core()
    level = "privileged" if privileged else "restricted"
    found = None
    lookup_refused = ""
    with conn.translated(f"look up namespace {name}", name):
        try:
            found = read_json(core.read_namespace(name, _preload_content=False, _request_timeout=REQUEST_TIMEOUT))
        except ApiException as err:
            if err.status == 403:
                lookup_refused = status_message(err)
            elif err.status != 404:
                raise
    if found is not None:
        _admits(conn, found, privileged)
        return
    with conn.translated(f"create namespace {name}", name):
        try:
            read_json(core.create_namespace(manifests.namespace(name, level), _preload_content=False, _request_timeout=REQUEST_TIMEOUT))
        except ApiException as err:
            if err.status == 409:  # there already (created meanwhile, or hidden from the lookup): the pods will tell
                return
            if err.status == 403 and lookup_refused:
                raise KubeError(
                    f"cannot tell whether namespace {name} exists: forbidden to get it ({lookup_refused}) and to create it "
                    f"({status_message(err)}); grant `get` on namespaces ({RBAC_HINT}) or create it: "
                    f"kubectl create namespace {name} && {label_command(name)}"
                ) from None
            raise


def _admits(conn: Connection, ns: dict[str, Any], privileged: bool) -> None:
    meta = ns.get("metadata") or {}
    name = meta.get("name", "?")
    labels = meta.get("labels") or {}
    enforce = labels.get(manifests.PSA_ENFORCE_LABEL)
    if not privileged or enforce in (None, "privileged"):
        return  # no label: the cluster's default level decides, and a refusal will say so
    if labels.get(manifests.MANAGED_BY_LABEL) != manifests.MANAGED_BY:
        raise KubeError(
            f"namespace {name} enforces Pod Security level {enforce!r}, which refuses vxcap's capture pods (hostNetwork, "
            f"NET_RAW, NET_ADMIN); it is not vxcap's, so vxcap leaves it alone: `{label_command(name)}`, "
            "or give capture pods a namespace of their own with --capture-namespace"
        )
    try:
        with conn.translated(f"relabel namespace {name} {manifests.PSA_ENFORCE_LABEL}=privileged", name):
            read_json(conn.core().patch_namespace(name, manifests.enforce_patch(), _preload_content=False, _request_timeout=REQUEST_TIMEOUT))
    except KubeError as err:
        raise KubeError(
            f"namespace {name} (vxcap's) enforces Pod Security level {enforce!r}, which refuses capture pods, and "
            f"relabelling it failed ({err}): run `{label_command(name)}`"
        ) from None


def create_all(conn: Connection, namespace: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST the pods in parallel; the created objects, in the same order."""
    core = conn.core()

    def create(body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        node = body["spec"].get("nodeName", "?")
        with conn.translated(f"create pod {namespace}/{name} on node {node}", namespace):
            return read_json(
                core.create_namespaced_pod(namespace, body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
            )

    if not bodies:
        return []
    with ThreadPoolExecutor(max_workers=min(_MAX_PARALLEL_CREATES, len(bodies)), thread_name_prefix="vxcap-create") as pool:
        return list(pool.map(create, bodies))


def is_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def has_ended(pod: dict[str, Any]) -> bool:
    """Its container exited (or the kubelet refused it): waiting longer cannot help."""
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


def _container_state(pod: dict[str, Any]) -> str:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        for kind in ("waiting", "terminated"):
            detail = state.get(kind)
            if detail:
                parts = [detail.get("reason") or kind]
                if "exitCode" in detail:
                    parts.append(f"exit {detail['exitCode']}")
                if detail.get("message"):
                    parts.append(one_line(detail["message"]))
                return " ".join(parts[:2]) + (f": {parts[2]}" if len(parts) > 2 else "")
    return ""


def pod_events(conn: Connection, namespace: str, name: str) -> list[str]:
    """The pod's latest distinct events as `Reason: message`."""
    with conn.translated(f"read the events of pod {namespace}/{name}"):
        listing = read_json(
            conn.core().list_namespaced_event(
                namespace,
                field_selector=f"involvedObject.name={name}",
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )
    items = sorted(
        listing.get("items") or [],
        key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp") or "",
    )
    seen: list[str] = []
    for event in reversed(items):
        text = f"{event.get('reason', '')}: {one_line(event.get('message', ''))}"
        if text not in seen:
            seen.append(text)
        if len(seen) == _EVENTS_PER_POD:
            break
    return seen


def pod_log_tail(conn: Connection, namespace: str, name: str) -> str:
    try:
        with conn.translated(f"read the log of pod {namespace}/{name}"):
            response = conn.core().read_namespaced_pod_log(
                name, namespace, tail_lines=_LOG_TAIL_LINES, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
            try:
                return one_line(response.data.decode(errors="replace"))
            finally:
                response.release_conn()
    except KubeError:
        return ""  # the log is a courtesy in an error message, never a second error


def explain(conn: Connection, namespace: str, pod: dict[str, Any]) -> str:
    """One line on why a pod is not Ready: phase, container state, events (and log, if it ended)."""
    meta = pod.get("metadata") or {}
    name = meta.get("name", "?")
    node = (pod.get("spec") or {}).get("nodeName", "?")
    parts = [f"{name} on {node}: {(pod.get('status') or {}).get('phase', 'Unknown')}"]
    state = _container_state(pod)
    if state:
        parts.append(state)
    try:
        events = pod_events(conn, namespace, name)
    except KubeError as err:  # the pod's trouble is the news; unreadable events are a footnote
        events = [f"(events unavailable: {err})"]
    if events:
        parts.append("events: " + " | ".join(events))
    if has_ended(pod):
        tail = pod_log_tail(conn, namespace, name)
        if tail:
            parts.append(f"log: {tail}")
    return "; ".join(parts)


# Waiting reasons no wait outlasts: the kubelet retries them, but nothing changes until
# someone loads the image, fixes the reference or the spec.
IMAGE_REASONS = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "RegistryUnavailable")
CONFIG_REASONS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
TERMINAL_REASONS = IMAGE_REASONS + ("InvalidImageName",) + CONFIG_REASONS


def terminal_waiting(pod: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, message) of a container waiting for something that will not come by itself."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in TERMINAL_REASONS:
            return waiting["reason"], one_line(waiting.get("message") or "")
    return None


def _config_field(message: str) -> str:
    """The pod spec field a kubelet config error is about, as far as its message says."""
    lowered = message.lower()
    for needle, field in (
        ("runasnonroot", "securityContext.runAsNonRoot (the image's user is root; vxcap's pods run as uid 65534)"),
        ("non-numeric user", "securityContext.runAsUser (the image names its user by name)"),
        ("sysctl", "spec.securityContext.sysctls"),
        ("seccomp", "securityContext.seccompProfile"),
        ("apparmor", "the AppArmor profile"),
        ("capabilit", "securityContext.capabilities"),
        ("secret", "a Secret the pod refers to"),
        ("configmap", "a ConfigMap the pod refers to"),
    ):
        if needle in lowered:
            return field
    return "spec.containers[0]"


def terminal_hint(pod: dict[str, Any], reason: str, message: str, load_command: str | None) -> str:
    """What to do about a terminal waiting reason, in one clause."""
    spec = pod.get("spec") or {}
    container = (spec.get("containers") or [{}])[0]
    image = container.get("image", "?")
    node = spec.get("nodeName", "?")
    capture = ((pod.get("metadata") or {}).get("labels") or {}).get(manifests.ROLE_LABEL) == manifests.CAPTURE_ROLE
    option = "--capture-image" if capture else "--image"
    if reason in IMAGE_REASONS:
        load = f"load it onto the nodes with `{load_command}`, or " if load_command else ""
        return (f"image {image} is not on node {node} and cannot be pulled: {load}push it to a registry the nodes "
                f"pull from and pass {option} (docs/images.md)")
    if reason == "InvalidImageName":
        return f"{option} {image!r} is not a valid image reference"
    return f"the kubelet refused the pod's {_config_field(message)}"


def _cannot_start(pod: dict[str, Any], load_command: str | None) -> str | None:
    found = terminal_waiting(pod)
    if found is None:
        return None
    reason, message = found
    meta = pod.get("metadata") or {}
    node = (pod.get("spec") or {}).get("nodeName", "?")
    said = f"{reason}: {message}" if message else reason
    return f"pod {meta.get('name', '?')} on {node} cannot start ({said}): {terminal_hint(pod, reason, message, load_command)}"


def wait_settled(
    conn: Connection,
    namespace: str,
    names: list[str],
    selector: str,
    timeout: float,
    load_command: str | None = None,
    required: set[str] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Watch the pods (never poll) until each of `names` is Ready or cannot become so.

    Returns (Ready pods by name, why each other one is not, by name). A pod that
    ended (Failed/Succeeded) or waits for a terminal reason (ErrImagePull,
    CreateContainerConfigError, ...) is settled at once: no wait outlasts those;
    pods still not Ready at the deadline are explained by their events. When a
    `required` pod cannot become Ready, the wait ends there: the others no longer matter.
    """
    core = conn.core()
    deadline = time.monotonic() + timeout
    with conn.translated(f"list pods in {namespace}"):
        listing = read_json(
            core.list_namespaced_pod(namespace, label_selector=selector, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
        )
    latest: dict[str, dict[str, Any]] = {}
    for pod in listing.get("items") or []:
        latest[pod["metadata"]["name"]] = pod
    resource_version = (listing.get("metadata") or {}).get("resourceVersion")
    failed: dict[str, str] = {}

    def settle() -> bool:
        for name in names:
            pod = latest.get(name)
            if name in failed or pod is None:
                continue
            if has_ended(pod):
                failed[name] = f"pod ended before it was Ready: {explain(conn, namespace, pod)}"
            else:
                stuck = _cannot_start(pod, load_command)
                if stuck is not None:
                    failed[name] = stuck
        if required and any(name in failed for name in required):
            return True
        return all(name in failed or (name in latest and is_ready(latest[name])) for name in names)

    while not settle():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        # "object": events stay plain dicts; the client's models reject fields they do not know.
        watcher = watch.Watch(return_type="object")
        events = watcher.stream(
            core.list_namespaced_pod,
            namespace,
            label_selector=selector,
            resource_version=resource_version,
            timeout_seconds=max(1, int(remaining + 0.999)),
            _request_timeout=(REQUEST_TIMEOUT[0], remaining + 5),
        )
        with conn.translated(f"watch pods in {namespace}"):
            try:
                for event in events:
                    pod = event["raw_object"]
                    name = pod["metadata"]["name"]
                    resource_version = pod["metadata"].get("resourceVersion", resource_version)
                    if event["type"] == "DELETED":
                        latest.pop(name, None)
                        if name in names and name not in failed:
                            failed[name] = f"pod {namespace}/{name} was deleted while vxcap waited for it"
                    else:
                        latest[name] = pod
                    if settle() or time.monotonic() >= deadline:
                        break
            finally:
                watcher.stop()
                events.close()
    ready = {name: latest[name] for name in names if name not in failed and name in latest and is_ready(latest[name])}
    if required and any(name in failed for name in required):
        return ready, failed  # the others were cut short, not late
    late = [name for name in names if name not in ready and name not in failed]
    if late:
        reasons = [explain(conn, namespace, latest[name]) if name in latest else f"{name}: not found" for name in late]
        for name, reason in zip(late, reasons):
            failed[name] = f"pods not Ready after {timeout:g}s: {reason}"
    return ready, failed


def wait_ready(
    conn: Connection, namespace: str, names: list[str], selector: str, timeout: float, load_command: str | None = None
) -> dict[str, dict[str, Any]]:
    """Every one of `names` Ready, by name; else one KubeError saying why for each that is not."""
    ready, failed = wait_settled(conn, namespace, names, selector, timeout, load_command, required=set(names))
    if not failed:
        return ready
    return raise_failed(failed, timeout)


def raise_failed(failed: dict[str, str], timeout: float):
    """One KubeError for pods that cannot become Ready: those that said why first, else the deadline's."""
    settled = [text for text in failed.values() if not text.startswith("pods not Ready after")]
    if settled:
        raise KubeError(" || ".join(settled))
    prefix = f"pods not Ready after {timeout:g}s: "
    raise KubeError(prefix + " || ".join(text[len(prefix):] for text in failed.values()))


def delete_matching(conn: Connection, namespace: str, selector: str) -> list[str]:
    """Delete every pod the label selector matches; the names it deleted (none if none)."""
    with conn.translated(f"delete pods {selector} in {namespace}"):
        try:
            listing = read_json(
                conn.core().delete_collection_namespaced_pod(
                    namespace,
                    label_selector=selector,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as err:
            if err.status == 404:  # no such namespace: nothing to clean
                return []
            raise
    return [item["metadata"]["name"] for item in (listing or {}).get("items") or []]
