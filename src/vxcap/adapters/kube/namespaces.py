"""The namespaces vxcap's pods go in: there, and admitting them (Pod Security), or one line saying how to make it so."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from vxcap.adapters.kube import manifests
from vxcap.adapters.kube.connection import REQUEST_TIMEOUT, Connection, read_json
from vxcap.adapters.kube.errors import RBAC_HINT, KubeError, label_command, status_message


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


def capture_admission(ns: dict[str, Any]) -> tuple[str, bool] | None:
    """Would this namespace's Pod Security label refuse capture pods? None if not; else
    (why, in one line with the fix; whether vxcap may relabel it itself, being its own).

    Reads the object only (no request): `vxcap doctor` can ask before a run.
    """
    meta = ns.get("metadata") or {}
    name = meta.get("name", "?")
    labels = meta.get("labels") or {}
    enforce = labels.get(manifests.PSA_ENFORCE_LABEL)
    if enforce in (None, "privileged"):
        return None  # no label: the cluster's default level decides, and a refusal will say so
    if labels.get(manifests.MANAGED_BY_LABEL) == manifests.MANAGED_BY:
        return (f"namespace {name} (vxcap's) enforces Pod Security level {enforce!r}, which refuses capture pods: "
                f"vxcap relabels it, or run `{label_command(name)}`"), True
    return (
        f"namespace {name} enforces Pod Security level {enforce!r}, which refuses vxcap's capture pods (hostNetwork, "
        f"NET_RAW, NET_ADMIN); it is not vxcap's, so vxcap leaves it alone: `{label_command(name)}`, "
        "or give capture pods a namespace of their own with --capture-namespace"
    ), False


def _admits(conn: Connection, ns: dict[str, Any], privileged: bool) -> None:
    problem = capture_admission(ns) if privileged else None
    if problem is None:
        return
    why, ours = problem
    if not ours:
        raise KubeError(why)
    name = (ns.get("metadata") or {}).get("name", "?")
    enforce = ((ns.get("metadata") or {}).get("labels") or {}).get(manifests.PSA_ENFORCE_LABEL)
    try:
        with conn.translated(f"relabel namespace {name} {manifests.PSA_ENFORCE_LABEL}=privileged", name):
            read_json(conn.core().patch_namespace(name, manifests.enforce_patch(), _preload_content=False, _request_timeout=REQUEST_TIMEOUT))
    except KubeError as err:
        raise KubeError(
            f"namespace {name} (vxcap's) enforces Pod Security level {enforce!r}, which refuses capture pods, and "
            f"relabelling it failed ({err}): run `{label_command(name)}`"
        ) from None
