"""What a run needs, as checks: plain data in, one verdict per check out, each with its fix.

The I/O (the host, the API server, Docker) is done by vxcap.doctor through the adapters;
this module decides what the answers mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"  # a run can start; something will be slower, narrower, or need a flag
    FAIL = "fail"  # a run cannot start until this is fixed
    SKIP = "skip"  # not checked: it depends on a check that failed


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    detail: str
    fix: str = ""


def can_start(checks: Iterable[Check]) -> bool:
    return not any(check.level is Level.FAIL for check in checks)


# -- privileges (the embedded lab)

CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
CAP_SYS_ADMIN = 21  # creating and entering network namespaces
LAB_CAPABILITIES = {"CAP_NET_ADMIN": CAP_NET_ADMIN, "CAP_NET_RAW": CAP_NET_RAW, "CAP_SYS_ADMIN": CAP_SYS_ADMIN}


def effective_capabilities(proc_status: str) -> int | None:
    """CapEff from /proc/self/status, as a bit mask; None when the text has none."""
    for line in proc_status.splitlines():
        if line.startswith("CapEff:"):
            try:
                return int(line.split(":", 1)[1].strip(), 16)
            except ValueError:
                return None
    return None


def privileges(euid: int, cap_eff: int | None) -> Check:
    name = "root or the capabilities"
    missing = [cap for cap, bit in LAB_CAPABILITIES.items() if cap_eff is None or not cap_eff >> bit & 1]
    if euid == 0 and not missing:
        return Check(name, Level.OK, "running as root")
    if not missing:
        return Check(name, Level.OK, "not root, but holds " + ", ".join(LAB_CAPABILITIES))
    return Check(name, Level.FAIL, f"uid {euid}, missing {', '.join(missing)}",
                 "run as root (sudo): the lab creates network namespaces and runs tcpdump")


def tool(name: str, path: str | None, package: str) -> Check:
    if path:
        return Check(f"{name} present", Level.OK, path)
    return Check(f"{name} present", Level.FAIL, f"{name} is not on PATH", f"apt-get install {package} (or bash scripts/install)")


def kernel_vxlan(state: str | None, release: str) -> Check:
    """`state`: 'loaded', 'builtin', 'module' (loadable), or None (found nowhere)."""
    name = "kernel VXLAN support"
    said = {"loaded": "vxlan module loaded", "builtin": "vxlan built into the kernel",
            "module": "vxlan module available (loaded on first use)"}
    if state in said:
        return Check(name, Level.OK, f"{said[state]} ({release})")
    return Check(name, Level.FAIL, f"no vxlan module for kernel {release}",
                 f"apt-get install linux-modules-extra-{release} (or a kernel with CONFIG_VXLAN), then modprobe vxlan")


# -- RBAC (a cluster)


@dataclass(frozen=True)
class Permission:
    """One verb on one resource, granted in any of `groups` (Calico serves one of two)."""

    verb: str
    resource: str
    groups: tuple[str, ...] = ("",)
    subresource: str = ""
    namespaced: bool = False

    def label(self, namespace: str) -> str:
        what = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = f" in namespace {namespace}" if self.namespaced else ""
        group = "" if self.groups == ("",) else f" ({' or '.join(self.groups)})"
        return f"{self.verb} {what}{group}{where}"


CALICO_GROUPS = ("crd.projectcalico.org", "projectcalico.org")

# Exactly what deploy/rbac.yaml grants (tests/test_rbac.py holds the two in step).
NEEDED: tuple[Permission, ...] = (
    Permission("list", "nodes"),
    Permission("get", "namespaces"),
    *(Permission("list", plural, CALICO_GROUPS) for plural in ("ippools", "blockaffinities", "felixconfigurations")),
    *(Permission(verb, "pods", namespaced=True) for verb in ("list", "watch", "create", "deletecollection")),
    Permission("get", "pods", subresource="exec", namespaced=True),
    Permission("create", "pods", subresource="exec", namespaced=True),
    Permission("get", "pods", subresource="log", namespaced=True),
    Permission("list", "events", namespaced=True),
)


def permission_check(permission: Permission, namespace: str, answers: Mapping[str, tuple[bool, str]]) -> Check:
    """`answers`: per API group asked, (allowed, the authorizer's reason)."""
    name = f"may {permission.label(namespace)}"
    if any(allowed for allowed, _ in answers.values()):
        return Check(name, Level.OK, "granted")
    reasons = "; ".join(reason for _, reason in answers.values() if reason)
    return Check(name, Level.FAIL, "denied" + (f": {reasons}" if reasons else ""),
                 "kubectl apply -f deploy/rbac.yaml, and run vxcap as its ServiceAccount (see the file)")


def rbac_summary(checks: Sequence[Check]) -> list[Check]:
    """All granted: one line. Else one line per permission denied, each with its fix."""
    denied = [check for check in checks if check.level is not Level.OK]
    if denied:
        return denied
    return [Check("RBAC (deploy/rbac.yaml)", Level.OK, f"all {len(checks)} permissions granted")]


# -- the capture image


def image_names(node: Mapping) -> set[str]:
    """Every name (tag or digest) the kubelet reports for the images on a Node object."""
    names: set[str] = set()
    for image in (node.get("status") or {}).get("images") or []:
        names.update(str(n) for n in image.get("names") or [])
    return names


def _matches(reported: str, image: str) -> bool:
    # The kubelet reports registry-qualified names (docker.io/vxcap/netshoot-lite:tag).
    return reported == image or reported.endswith("/" + image)


def image_on_nodes(nodes: Sequence[Mapping], image: str) -> Check:
    name = "capture image on the nodes"
    missing = [
        str((node.get("metadata") or {}).get("name", "?"))
        for node in nodes
        if not any(_matches(reported, image) for reported in image_names(node))
    ]
    if not nodes:
        return Check(name, Level.SKIP, "no nodes listed")
    if not missing:
        return Check(name, Level.OK, f"{image} on all {len(nodes)} node(s)")
    return Check(name, Level.WARN, f"{image} not reported on {', '.join(missing)} (capture pods there would pull it)",
                 f"kind load docker-image {image} (Kind), or push it where the nodes pull from and pass --capture-image")
