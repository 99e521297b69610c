"""Which CNI runs a cluster, told by its agent DaemonSet (and where that DaemonSet reads its ConfigMap).

Every CNI here runs one agent per node as a DaemonSet with a well-known name and labels
(from each project's own manifest). The DaemonSet also names the ConfigMap it mounts,
which is how an older Antrea's hash-suffixed `antrea-config-<hash>` is found without guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vxcap.core.cni import Cni, CniError
from vxcap.core.cni import antrea, cilium, flannel
from vxcap.core.cni import objects as o


@dataclass(frozen=True, slots=True)
class Agent:
    cni: Cni
    namespace: str
    daemonset: str
    configmap: str | None  # the ConfigMap its pods mount, when it is the CNI's configuration


# (cni, DaemonSet names, labels any one of which identifies it, the ConfigMap's expected name)
_SIGNS: tuple[tuple[Cni, tuple[str, ...], tuple[tuple[str, str], ...]], ...] = (
    (Cni.CALICO, ("calico-node",), (("k8s-app", "calico-node"),)),
    # kube-flannel-ds today; older manifests had one per architecture (kube-flannel-ds-amd64, ...)
    (Cni.FLANNEL, ("kube-flannel-ds",), (("app", "flannel"),)),
    (Cni.CILIUM, ("cilium",), (("k8s-app", "cilium"),)),
    (Cni.ANTREA, ("antrea-agent",), (("component", "antrea-agent"),)),
)

LOOKED_FOR = ("DaemonSets calico-node, kube-flannel-ds, cilium, antrea-agent (any namespace); "
              "ConfigMaps kube-flannel-cfg (kube-flannel, kube-system), cilium-config and antrea-config[-hash] "
              "(kube-system); Calico IPPools")


def _is(ds: dict[str, Any], names: tuple[str, ...], labels: tuple[tuple[str, str], ...]) -> bool:
    name = o.name(ds)
    if any(name == n or name.startswith(f"{n}-") for n in names):
        return True
    own = (ds.get("metadata") or {}).get("labels") or {}
    return any(own.get(k) == v for k, v in labels)


def _mounted_configmap(ds: dict[str, Any], cni: Cni) -> str | None:
    volumes = (((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes") or []
    names = [str((v.get("configMap") or {}).get("name") or "") for v in volumes if isinstance(v, dict)]
    for candidate in names:
        if cni is Cni.FLANNEL and candidate == flannel.CONFIGMAP:
            return candidate
        if cni is Cni.CILIUM and candidate == cilium.CONFIGMAP:
            return candidate
        if cni is Cni.ANTREA and antrea.CONFIGMAP_NAME.match(candidate):
            return candidate
    return None


def agents(daemonsets: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> tuple[Agent, ...]:
    """The CNI agents among the cluster's DaemonSets, one per CNI (the first found)."""
    found: dict[Cni, Agent] = {}
    for ds in sorted(daemonsets, key=lambda d: (o.namespace(d), o.name(d))):
        for cni, names, labels in _SIGNS:
            if cni not in found and _is(ds, names, labels):
                found[cni] = Agent(cni, o.namespace(ds), o.name(ds), _mounted_configmap(ds, cni))
    return tuple(found[c] for c in Cni if c in found)


def choose(found: tuple[Agent, ...], forced: Cni | None = None) -> Agent | None:
    """The one CNI to judge. `forced` (--cni) picks it when several run (a policy-only Antrea or
    Cilium chained on another CNI); None when nothing was found and nothing forced."""
    if forced is not None:
        return next((a for a in found if a.cni is forced), None)
    if len(found) > 1:
        listing = ", ".join(f"{a.cni.value} (DaemonSet {a.namespace}/{a.daemonset})" for a in found)
        raise CniError(f"more than one CNI agent runs: {listing}; say which carries pod traffic with --cni")
    return found[0] if found else None


def not_identified() -> CniError:
    return CniError(f"no CNI identified: looked for {LOOKED_FOR}; give --cni calico|flannel|cilium|antrea")
