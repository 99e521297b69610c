"""The objects vxcap creates in a cluster, as plain dicts (pure: tested as data).

Test pods run with no privilege at all: non-root, every capability dropped,
no privilege escalation, read-only root, RuntimeDefault seccomp (they pass the
`restricted` Pod Security level). ping still works because the pod sets the
namespaced, "safe" sysctl net.ipv4.ping_group_range to every group: iputils
ping then uses an unprivileged ICMP datagram socket instead of a raw one, so
NET_RAW is not needed. (containerd 2 sets the same range by default; the sysctl
makes it so on every runtime.)

Capture pods share the node's network namespace (hostNetwork) to see its
underlay interface, and get only NET_RAW and NET_ADMIN: not privileged, no
hostPID, no host mounts, read-only root, RuntimeDefault seccomp. They run as
nobody too, which is why their image is vxcap's capture image (CAPTURE_IMAGE):
a root tcpdump gives up root after opening the interface (Debian's drops to its
`tcpdump` user; `-Z root` asks for root again), and setuid/setgid/initgroups
need CAP_SETUID/CAP_SETGID, which the pod does not hold: "Couldn't change to
'root' uid=0 gid=0: Operation not permitted". A non-root tcpdump skips that step
and takes NET_RAW and NET_ADMIN from its file capabilities instead. They need the
`privileged` Pod Security level (hostNetwork, added capabilities), which the
namespace vxcap creates carries (see deploy/rbac.yaml).

Both kinds exit by themselves after `lifetime` seconds (activeDeadlineSeconds and
a bounded `sleep`), so a run killed with SIGKILL does not leave them forever.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from vxcap.core.capture import CAPTURE_IMAGE
from vxcap.core.names import check_namespace, check_node_name

DEFAULT_NAMESPACE = "vxcap"
# The test pods' image: vxcap's own (iputils ping, python3, iproute2 with -j), the capture
# helpers' too, so one image loaded onto the nodes serves the whole run.
DEFAULT_IMAGE = CAPTURE_IMAGE
DEFAULT_LIFETIME_S = 3600

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "vxcap"
RUN_ID_LABEL = "vxcap.io/run-id"
ROLE_LABEL = "vxcap.io/role"
NODE_LABEL = "vxcap.io/node"
PROBE_ROLE = "probe"
CAPTURE_ROLE = "capture"
CAPTURE_CAPS = ("NET_RAW", "NET_ADMIN")
PSA_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"

# Any unprivileged group may open ICMP echo sockets (the kernel's range is inclusive).
PING_GROUP_RANGE = "0 2147483647"
NOBODY = 65534

CONTROL_PLANE_TOLERATIONS = (
    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
)

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_LABEL_MAX = 63


def valid_label_value(value: str) -> bool:
    return len(value) <= _DNS_LABEL_MAX and bool(_LABEL_VALUE.match(value))


def check_run_id(run_id: str) -> str:
    if not run_id or not valid_label_value(run_id):
        raise ValueError(f"run id {run_id!r} must be a Kubernetes label value (1-63 of A-Z a-z 0-9 - _ .)")
    return run_id


def pod_name(role: str, run_id: str, node: str) -> str:
    """`vxcap-<role>-<run>-<node>`, made a DNS label: lower case, at most 63 characters.

    When it must be cut, a hash of the full name keeps two long node names apart.
    """
    full = f"vxcap-{role}-{run_id}-{node}".lower()
    name = re.sub(r"[^a-z0-9-]+", "-", full).strip("-")
    if len(name) <= _DNS_LABEL_MAX and name == full:
        return name
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{name[: _DNS_LABEL_MAX - 9].rstrip('-')}-{digest}"


def managed_selector(run_id: str | None = None) -> str:
    selector = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
    if run_id is not None:
        selector += f",{RUN_ID_LABEL}={check_run_id(run_id)}"
    return selector


def labels(run_id: str, role: str, node: str) -> dict[str, str]:
    found = {MANAGED_BY_LABEL: MANAGED_BY, RUN_ID_LABEL: check_run_id(run_id), ROLE_LABEL: role}
    if valid_label_value(node):
        found[NODE_LABEL] = node
    return found


def namespace(name: str, level: str = "privileged") -> dict[str, Any]:
    """A namespace vxcap manages; `privileged` when capture pods run in it, else `restricted`
    (test pods meet it, so a namespace of test pods only need not be opened up)."""
    check_namespace(name)
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, PSA_ENFORCE_LABEL: level},
        },
    }


def enforce_patch(level: str = "privileged") -> dict[str, Any]:
    return {"metadata": {"labels": {PSA_ENFORCE_LABEL: level}}}


def _common_spec(node: str, lifetime: int) -> dict[str, Any]:
    check_node_name(node)  # it pins the pod and is part of the pod's name and labels
    return {
        # Pinned by name: the scheduler is not asked, so the pod lands exactly where the test needs it.
        "nodeName": node,
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 1,
        "activeDeadlineSeconds": lifetime,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
    }


def _container(role: str, image: str, lifetime: int, security: dict[str, Any], resources: dict[str, Any]) -> dict[str, Any]:
    # `sleep` keeps the container up for exec; the lifetime also bounds a pod nobody deletes.
    return {
        "name": role,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sleep", str(lifetime)],
        "securityContext": security,
        "resources": resources,
    }


def _pod(role: str, run_id: str, node: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name(role, run_id, node), "labels": labels(run_id, role, node)},
        "spec": spec,
    }


def probe_pod(run_id: str, node: str, image: str = DEFAULT_IMAGE, lifetime: int = DEFAULT_LIFETIME_S) -> dict[str, Any]:
    """The test pod on `node` that pings and is pinged."""
    spec = _common_spec(node, lifetime)
    spec.update(
        tolerations=[dict(t) for t in CONTROL_PLANE_TOLERATIONS],
        securityContext={
            "runAsNonRoot": True,
            "runAsUser": NOBODY,
            "runAsGroup": NOBODY,
            "seccompProfile": {"type": "RuntimeDefault"},
            "sysctls": [{"name": "net.ipv4.ping_group_range", "value": PING_GROUP_RANGE}],
        },
        containers=[
            _container(
                PROBE_ROLE,
                image,
                lifetime,
                security={
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                resources={"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
            )
        ],
    )
    return _pod(PROBE_ROLE, run_id, node, spec)


def capture_pod(run_id: str, node: str, image: str = CAPTURE_IMAGE, lifetime: int = DEFAULT_LIFETIME_S) -> dict[str, Any]:
    """The pod in `node`'s network namespace that runs tcpdump and reads its tables.

    `image` must hold a tcpdump with file capabilities cap_net_raw,cap_net_admin=eip
    (as CAPTURE_IMAGE does): the pod runs as nobody.
    """
    spec = _common_spec(node, lifetime)
    spec.update(
        hostNetwork=True,
        dnsPolicy="ClusterFirstWithHostNet",
        # Capture wherever asked, whatever the node's taints.
        tolerations=[{"operator": "Exists"}],
        containers=[
            _container(
                CAPTURE_ROLE,
                image,
                lifetime,
                security={
                    "privileged": False,
                    "runAsNonRoot": True,
                    "runAsUser": NOBODY,
                    "runAsGroup": NOBODY,
                    # Dropping ALL empties the bounding set but for the two added, so the
                    # file capabilities of tcpdump can grant those two and nothing else.
                    "capabilities": {"drop": ["ALL"], "add": list(CAPTURE_CAPS)},
                    # Must stay true: false sets no_new_privs, under which exec grants no
                    # file capability, and tcpdump as nobody could not capture ("You don't
                    # have permission to perform this capture on that device"). What it
                    # allows stays within the bounding set above: no exec gains more.
                    "allowPrivilegeEscalation": True,
                    "readOnlyRootFilesystem": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                resources={"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
            )
        ],
    )
    return _pod(CAPTURE_ROLE, run_id, node, spec)
