"""What the cluster lets us do, asked the way kubectl auth can-i asks: a
SelfSubjectAccessReview per permission, answered by the API server's own authorizer.
Also the API server's version (is it reachable at all) and the images each node reports."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from vxcap.adapters.kube.connection import REQUEST_TIMEOUT, Connection, read_json


def server_version(conn: Connection) -> str:
    with conn.translated("read the server version"):
        info = read_json(client.VersionApi(conn.api).get_code(_preload_content=False, _request_timeout=REQUEST_TIMEOUT))
    return str((info or {}).get("gitVersion") or "unknown version")


def can_i(conn: Connection, verb: str, resource: str, group: str = "", subresource: str = "",
          namespace: str = "") -> tuple[bool, str]:
    """(allowed, the authorizer's reason or denial), as `kubectl auth can-i` would hear it."""
    attributes: dict[str, Any] = {"verb": verb, "resource": resource, "group": group}
    if subresource:
        attributes["subresource"] = subresource
    if namespace:
        attributes["namespace"] = namespace
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}
    with conn.translated(f"ask whether it may {verb} {resource}"):
        answer = read_json(client.AuthorizationV1Api(conn.api).create_self_subject_access_review(
            body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT))
    status = (answer or {}).get("status") or {}
    return bool(status.get("allowed")), str(status.get("reason") or status.get("evaluationError") or "")


def nodes(conn: Connection) -> list[dict[str, Any]]:
    """The Node objects as dicts (their status.images says what each kubelet has pulled)."""
    with conn.translated("list nodes"):
        listing = read_json(conn.core().list_node(_preload_content=False, _request_timeout=REQUEST_TIMEOUT))
    return list((listing or {}).get("items") or [])


def namespace(conn: Connection, name: str) -> dict[str, Any] | None:
    """The Namespace object, or None when there is none (vxcap would create it)."""
    from kubernetes.client.exceptions import ApiException

    with conn.translated(f"read namespace {name}"):
        try:
            return read_json(conn.core().read_namespace(name, _preload_content=False, _request_timeout=REQUEST_TIMEOUT))
        except ApiException as err:
            if err.status == 404:
                return None
            raise
