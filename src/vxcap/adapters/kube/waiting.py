"""Waiting reasons no wait outlasts, and what to do about each: pure, on pod objects as JSON."""

from __future__ import annotations

from typing import Any

from vxcap.adapters.kube import manifests
from vxcap.adapters.kube.errors import one_line


# The kubelet retries these, but nothing changes until someone loads the image,
# fixes the reference or the spec.
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


def cannot_start(pod: dict[str, Any], load_command: str | None) -> str | None:
    found = terminal_waiting(pod)
    if found is None:
        return None
    reason, message = found
    meta = pod.get("metadata") or {}
    node = (pod.get("spec") or {}).get("nodeName", "?")
    said = f"{reason}: {message}" if message else reason
    return f"pod {meta.get('name', '?')} on {node} cannot start ({said}): {terminal_hint(pod, reason, message, load_command)}"
