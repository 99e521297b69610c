"""The Kubernetes adapter's one error, and the translation of the client's many into it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from vxcap.core.errors import VxcapError

RBAC_HINT = "deploy/rbac.yaml lists what vxcap needs"
PSA_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
_WEBHOOK = re.compile(r'admission webhook "([^"]+)" denied the request')


def label_command(namespace: str) -> str:
    """The one line that lets a namespace admit capture pods (hostNetwork, NET_RAW, NET_ADMIN)."""
    return f"kubectl label namespace {namespace or '<namespace>'} {PSA_ENFORCE_LABEL}=privileged --overwrite"


def admission_refusal(what: str, message: str, namespace: str = "") -> str | None:
    """One line for a request an admission controller (not RBAC) refused, else None.

    Pod Security admission says `violates PodSecurity "LEVEL:VERSION": ...`; policy
    engines answer through a validating webhook (Kyverno, Gatekeeper, ...) with
    `admission webhook "NAME" denied the request: ...`.
    """
    if "violates PodSecurity" in message:
        return (f"Pod Security admission refused to {what}: {message} (the namespace's {PSA_ENFORCE_LABEL} level forbids "
                f"vxcap's capture pods; allow them with `{label_command(namespace)}`, or give them a namespace of "
                "their own with --capture-namespace)")
    webhook = _WEBHOOK.search(message)
    if webhook:
        return (f"a policy engine's admission webhook ({webhook.group(1)}) refused to {what}: {message} (its owner can "
                f"exempt namespace {namespace or '<namespace>'} from the policy, or give capture pods a namespace "
                "that is exempt with --capture-namespace)")
    return None


class KubeError(VxcapError, RuntimeError):
    """Anything the cluster or its kubeconfig refused; the message is one line, fit to show as it is."""


class NoKubeconfig(KubeError):
    """No kubeconfig anywhere kubectl would look: this machine has no cluster configured."""


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def status_message(err: ApiException) -> str:
    """The `message` of the Status object the API server sent, else the HTTP reason."""
    body = err.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if message:
            return one_line(message)
    reason = one_line(err.reason or "")
    # A failed WebSocket handshake arrives as status 0 with the response body inside the reason.
    found = re.search(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', reason)
    if found:
        return one_line(json.loads(f'"{found.group(1)}"'))
    return reason or f"HTTP {err.status}"


def _unreachable_reason(err: BaseException) -> str:
    reason = getattr(err, "reason", None) or err
    text = one_line(reason)
    errno = re.search(r"\[Errno -?\d+\] ([^'\"]+)", text)
    if errno:
        return errno.group(1).strip().rstrip(")").lower()
    return text.split(": ")[-1] if ": " in text else text


@contextmanager
def translated(what: str, server: str = "", context: str = "", namespace: str = "") -> Iterator[None]:
    """Turn the client's exceptions raised while doing `what` into one-line KubeErrors."""
    where = f"the Kubernetes API at {server}" + (f" (context {context})" if context else "")
    try:
        yield
    except KubeError:
        raise
    except ApiException as err:
        if err.status == 401:
            raise KubeError(f"{where} rejected the kubeconfig's credentials (401 Unauthorized) while trying to {what}") from None
        refused = admission_refusal(what, status_message(err), namespace) if err.status in (400, 403, 422) else None
        if refused is not None:
            raise KubeError(refused) from None
        if err.status == 403:
            raise KubeError(f"forbidden to {what}: {status_message(err)} ({RBAC_HINT})") from None
        if err.status == 0:
            raise KubeError(f"cannot {what}: {status_message(err)}") from None
        raise KubeError(f"cannot {what}: {status_message(err)} (HTTP {err.status})") from None
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as err:
        raise KubeError(f"cannot reach {where} to {what}: {_unreachable_reason(err)}") from None
    except ConfigException as err:
        raise KubeError(f"kubeconfig: {one_line(err)}") from None
