"""Names that reach argv, API objects and file paths, checked where they enter.

A node, pod, namespace, container or interface name is handed to tcpdump, the
Kubernetes API, the Docker engine and the run directory's file names. Each is
held to the rules of the system that owns it, so a name like `../../etc`, `eth1 `
or `-w/tmp/x` is refused up front with an InputError naming the field, instead
of becoming a path outside the run directory or an argument nobody meant.
"""

from __future__ import annotations

import re

from vxcap.core.errors import InputError

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
IFNAMSIZ = 16  # the kernel's buffer, NUL included: 15 bytes of name at most

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# Docker's own rule for container names (daemon/names: RestrictedNameChars).
_CONTAINER_NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_CONTAINER_NAME_MAX = 255


def _refuse(field: str, value: object, rule: str) -> InputError:
    return InputError(f"{field} {value!r} is not valid: {rule}")


def _text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{field} must be a non-empty string, got {value!r}")
    return value


def check_dns_label(value: object, field: str) -> str:
    """A DNS-1123 label (namespaces, pod names): 1-63 of a-z 0-9 '-', alphanumeric at both ends."""
    text = _text(value, field)
    if len(text) > DNS1123_LABEL_MAX or not _DNS1123_LABEL.fullmatch(text):
        raise _refuse(field, value, "a DNS-1123 label is 1-63 lower-case letters, digits or '-', "
                                    "starting and ending with a letter or digit")
    return text


def check_namespace(value: object, field: str = "namespace") -> str:
    return check_dns_label(value, field)


def check_pod_name(value: object, field: str = "pod name") -> str:
    return check_dns_label(value, field)


def check_node_name(value: object, field: str = "node name") -> str:
    """A Kubernetes node name: a DNS-1123 subdomain (dot-separated labels, at most 253 characters)."""
    text = _text(value, field)
    if len(text) > DNS1123_SUBDOMAIN_MAX or not _DNS1123_SUBDOMAIN.fullmatch(text):
        raise _refuse(field, value, "a node name is a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', "
                                    "starting and ending with a letter or digit, at most 253 characters")
    return text


def check_container_name(value: object, field: str = "container name") -> str:
    """A Docker container name as the engine accepts it: [a-zA-Z0-9][a-zA-Z0-9_.-]*."""
    text = _text(value, field)
    if len(text) > _CONTAINER_NAME_MAX or not _CONTAINER_NAME.fullmatch(text):
        raise _refuse(field, value, "a container name starts with a letter or digit and has only letters, "
                                    "digits, '_', '.' and '-'")
    return text


def check_iface(value: object, field: str = "interface") -> str:
    """A Linux interface name as the kernel accepts it (dev_valid_name): 1-15 bytes, not '.' or '..',
    no '/', ':' or whitespace; printable characters only, as it also lands in file names and argv."""
    text = _text(value, field)
    rule = "an interface name is 1-15 characters, not '.' or '..', without '/', ':', whitespace or control characters"
    if len(text.encode()) >= IFNAMSIZ or text in (".", ".."):
        raise _refuse(field, value, rule)
    if any(c in "/:" or c.isspace() or not c.isprintable() for c in text):
        raise _refuse(field, value, rule)
    return text


def check_relative_file(value: object, field: str) -> str:
    """A file named relative to a directory that it must stay inside: no absolute path, no '..'."""
    text = _text(value, field)
    if "\0" in text or "\\" in text:
        raise _refuse(field, value, "a file name inside the run directory has no NUL or backslash")
    if text.startswith("/") or ".." in text.split("/"):
        raise _refuse(field, value, "a file must be inside the run directory: a relative path without '..'")
    return text
