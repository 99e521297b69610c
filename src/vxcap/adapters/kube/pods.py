"""vxcap's pods: created together, watched until Ready (or until they cannot be), explained when they are not, deleted by label."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from vxcap.adapters.kube.batching import Limits, RateLimiter, run_batched
from vxcap.adapters.kube.connection import REQUEST_TIMEOUT, Connection, read_json
from vxcap.adapters.kube.errors import KubeError, one_line
from vxcap.adapters.kube.waiting import cannot_start

_MAX_PARALLEL_CREATES = 8
_EVENTS_PER_POD = 3
_LOG_TAIL_LINES = 5


def create_all(
    conn: Connection,
    namespace: str,
    bodies: list[dict[str, Any]],
    limits: Limits | None = None,
    limiter: RateLimiter | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """POST the pods, in batches, a few at a time and rate limited (vxcap.adapters.kube.batching);
    the created objects, in the same order. `progress(done, total, batch)` after each batch."""
    core = conn.core()

    def create(body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        node = body["spec"].get("nodeName", "?")
        with conn.translated(f"create pod {namespace}/{name} on node {node}", namespace):
            return read_json(
                core.create_namespaced_pod(namespace, body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
            )

    return run_batched(create, bodies, limits or Limits(max_parallel=_MAX_PARALLEL_CREATES), limiter, progress)


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


def wait_settled(
    conn: Connection,
    namespace: str,
    names: list[str],
    selector: str,
    timeout: float,
    load_command: str | None = None,
    required: set[str] | None = None,
    on_ready: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Watch the pods (never poll) until each of `names` is Ready or cannot become so.
    `on_ready(ready, total)` hears each change of how many are Ready, for a live display.

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
    told = [-1]

    def settle() -> bool:
        for name in names:
            pod = latest.get(name)
            if name in failed or pod is None:
                continue
            if has_ended(pod):
                failed[name] = f"pod ended before it was Ready: {explain(conn, namespace, pod)}"
            else:
                stuck = cannot_start(pod, load_command)
                if stuck is not None:
                    failed[name] = stuck
        ready = sum(name in latest and is_ready(latest[name]) for name in names)
        if on_ready is not None and ready != told[0]:
            told[0] = ready
            on_ready(ready, len(names))
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
    conn: Connection, namespace: str, names: list[str], selector: str, timeout: float, load_command: str | None = None,
    on_ready: Callable[[int, int], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every one of `names` Ready, by name; else one KubeError saying why for each that is not."""
    ready, failed = wait_settled(conn, namespace, names, selector, timeout, load_command, required=set(names),
                                 on_ready=on_ready)
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
