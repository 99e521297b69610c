"""Reading the plain API objects every CNI module needs: names, addresses, pod CIDRs, settings."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any

from vxcap.core.cni import CniError


def name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def namespace(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    found = (obj.get("metadata") or {}).get("annotations") or {}
    return found if isinstance(found, dict) else {}


def internal_ip(node: dict[str, Any]) -> IPv4Address | None:
    for entry in (node.get("status") or {}).get("addresses") or []:
        if entry.get("type") != "InternalIP":
            continue
        try:
            address = ip_address(str(entry.get("address")))
        except ValueError:
            continue
        if isinstance(address, IPv4Address):
            return address
    return None


def pod_cidr(node: dict[str, Any]) -> IPv4Network | None:
    """The node's IPv4 pod CIDR (spec.podCIDRs, else spec.podCIDR), as the node IPAM controller gave it."""
    spec = node.get("spec") or {}
    for text in list(spec.get("podCIDRs") or []) + [spec.get("podCIDR")]:
        if not text:
            continue
        try:
            net = ip_network(str(text), strict=False)
        except ValueError:
            raise CniError(f"node {name(node)}: pod CIDR {text!r} is not a CIDR") from None
        if isinstance(net, IPv4Network):
            return net
    return None


def port(value: Any, what: str, default: int) -> int:
    """A UDP port setting; unset, empty or 0 means the default (every CNI here reads 0 that way)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise CniError(f"{what}={value!r} is not a port number")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise CniError(f"{what}={value!r} is not a port number") from None
    if number == 0:
        return default
    if not 1 <= number <= 65535:
        raise CniError(f"{what}={number} is out of range (1..65535)")
    return number


def truthy(value: Any) -> bool:
    """A ConfigMap flag: ConfigMap values are strings, so "true" (any case) is the only yes."""
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() == "true"


def lookup(mapping: dict[str, Any], key: str) -> Any:
    """Go's encoding/json matches struct fields case-insensitively (an exact match first):
    Flannel's `"VNI"`, `"vni"` and `"Vni"` are one setting, so vxcap reads them the same way."""
    if key in mapping:
        return mapping[key]
    for candidate, value in mapping.items():
        if candidate.lower() == key.lower():
            return value
    return None
