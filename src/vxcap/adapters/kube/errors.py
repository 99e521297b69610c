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


class KubeError(VxcapError, RuntimeError):
    """Anything the cluster or its kubeconfig refused; the message is one line, fit to show as it is."""


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
def translated(what: str, server: str = "", context: str = "") -> Iterator[None]:
    """Turn the client's exceptions raised while doing `what` into one-line KubeErrors."""
    where = f"the Kubernetes API at {server}" + (f" (context {context})" if context else "")
    try:
        yield
    except KubeError:
        raise
    except ApiException as err:
        if err.status == 401:
            raise KubeError(f"{where} rejected the kubeconfig's credentials (401 Unauthorized) while trying to {what}") from None
        if err.status == 403:
            raise KubeError(f"forbidden to {what}: {status_message(err)} ({RBAC_HINT})") from None
        if err.status == 0:
            raise KubeError(f"cannot {what}: {status_message(err)}") from None
        raise KubeError(f"cannot {what}: {status_message(err)} (HTTP {err.status})") from None
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as err:
        raise KubeError(f"cannot reach {where} to {what}: {_unreachable_reason(err)}") from None
    except ConfigException as err:
        raise KubeError(f"kubeconfig: {one_line(err)}") from None
