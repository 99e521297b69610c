"""Reading what a cluster's CNI promises: its agent DaemonSet, its ConfigMap, Cilium's endpoints.

The core (vxcap.core.cni) turns the plain objects into expectations; this module only knows
where each CNI keeps them and how the API answers when they are not there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from vxcap.adapters.kube.connection import REQUEST_TIMEOUT, Connection, read_json
from vxcap.adapters.kube.discovery import discover as discover_calico
from vxcap.adapters.kube.discovery import list_nodes
from vxcap.adapters.kube.errors import KubeError
from vxcap.core.calico import Discovery
from vxcap.core.cni import Cni, CniDiscovery, CniError, antrea, cilium, detect, flannel
from vxcap.core.names import check_node_name

CILIUM_ENDPOINTS = ("cilium.io", "v2", "ciliumendpoints")


@dataclass(frozen=True)
class Found:
    """What `--cni` resolved to: Calico's Topology (judged by `run` today) or another CNI's expectations."""

    cni: Cni
    calico: Discovery | None = None
    other: CniDiscovery | None = None
    notes: tuple[str, ...] = ()


def _absent(err: ApiException) -> bool:
    # 404: no such object or resource. 403: not allowed to look; auto-detection carries on
    # with what it may read (deploy/rbac.yaml grants Calico's resources only; deploy/rbac-cni.yaml adds these).
    return err.status in (403, 404)


def list_daemonsets(conn: Connection) -> list[dict[str, Any]] | None:
    """Every DaemonSet in the cluster, or None when the API refuses the list."""
    with conn.translated("list daemonsets"):
        try:
            response = client.AppsV1Api(conn.api).list_daemon_set_for_all_namespaces(
                _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as err:
            if _absent(err):
                return None
            raise
    return list((read_json(response) or {}).get("items") or [])


def get_configmap(conn: Connection, namespace: str, name: str) -> dict[str, Any] | None:
    with conn.translated(f"get configmap {namespace}/{name}", namespace):
        try:
            response = conn.core().read_namespaced_config_map(name, namespace, _preload_content=False,
                                                              _request_timeout=REQUEST_TIMEOUT)
        except ApiException as err:
            if _absent(err):
                return None
            raise
    return read_json(response)


def list_configmaps(conn: Connection, namespace: str, label_selector: str = "") -> list[dict[str, Any]]:
    with conn.translated(f"list configmaps in {namespace}", namespace):
        try:
            response = conn.core().list_namespaced_config_map(namespace, label_selector=label_selector,
                                                              _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as err:
            if _absent(err):
                return []
            raise
    return list((read_json(response) or {}).get("items") or [])


def list_cilium_endpoints(conn: Connection) -> list[dict[str, Any]]:
    group, version, plural = CILIUM_ENDPOINTS
    with conn.translated(f"list {plural}.{group}"):
        try:
            response = conn.custom().list_cluster_custom_object(group, version, plural, _preload_content=False,
                                                                _request_timeout=REQUEST_TIMEOUT)
        except ApiException as err:
            if _absent(err):
                return []
            raise
    return list((read_json(response) or {}).get("items") or [])


def _flannel_configmap(conn: Connection, agent: detect.Agent | None) -> dict[str, Any] | None:
    places = [(agent.namespace, agent.configmap)] if agent is not None and agent.configmap else []
    places += [(ns, flannel.CONFIGMAP) for ns in flannel.NAMESPACES]
    for namespace, name in places:
        found = get_configmap(conn, namespace, name)
        if found is not None:
            return found
    return None


def _cilium_configmap(conn: Connection, agent: detect.Agent | None) -> dict[str, Any] | None:
    namespace = agent.namespace if agent is not None else cilium.NAMESPACE
    return get_configmap(conn, namespace, (agent.configmap if agent and agent.configmap else cilium.CONFIGMAP))


def _antrea_configmap(conn: Connection, agent: detect.Agent | None) -> dict[str, Any] | None:
    if agent is not None and agent.configmap:
        found = get_configmap(conn, agent.namespace, agent.configmap)
        if found is not None:
            return found
    namespace = agent.namespace if agent is not None else antrea.NAMESPACE
    return antrea.find_configmap(list_configmaps(conn, namespace, "app=antrea"))


_CONFIGMAPS = {Cni.FLANNEL: _flannel_configmap, Cni.CILIUM: _cilium_configmap, Cni.ANTREA: _antrea_configmap}
_WHERE = {
    Cni.FLANNEL: f"ConfigMap {flannel.CONFIGMAP} in {' or '.join(flannel.NAMESPACES)}",
    Cni.CILIUM: f"ConfigMap {cilium.NAMESPACE}/{cilium.CONFIGMAP}",
    Cni.ANTREA: f"ConfigMap {antrea.NAMESPACE}/{antrea.CONFIGMAP}[-hash] with {antrea.AGENT_CONF}",
}


def _other(conn: Connection, cni: Cni, configmap: dict[str, Any], notes: list[str]) -> Found:
    nodes = list_nodes(conn)
    for node in nodes:
        check_node_name(str((node.get("metadata") or {}).get("name", "")), f"context {conn.context}: node name")
    try:
        if cni is Cni.FLANNEL:
            found = flannel.discover(configmap, nodes)
        elif cni is Cni.CILIUM:
            found = cilium.discover(configmap, nodes, list_cilium_endpoints(conn))
        else:
            found = antrea.discover(configmap, nodes)
    except CniError as err:
        raise KubeError(f"context {conn.context}: {err}") from None
    return Found(cni, other=found, notes=tuple(notes) + found.notes)


def discover(conn: Connection, choice: str = "auto") -> Found:
    """The CNI `choice` names (auto: the one whose agent runs) and what it promises."""
    forced = None if choice == "auto" else Cni(choice)
    if forced is Cni.CALICO:
        calico, _ = discover_calico(conn)
        return Found(Cni.CALICO, calico=calico, notes=calico.notes)
    notes: list[str] = []
    daemonsets = list_daemonsets(conn)
    if daemonsets is None:
        notes.append("not allowed to list DaemonSets; the CNI was told by its ConfigMap (deploy/rbac-cni.yaml grants the list)")
        daemonsets = []
    try:
        agent = detect.choose(detect.agents(daemonsets), forced)
    except CniError as err:
        raise KubeError(f"context {conn.context}: {err}") from None
    if forced is not None:
        configmap = _CONFIGMAPS[forced](conn, agent)
        if configmap is None:
            raise KubeError(f"context {conn.context}: --cni {forced.value}: no {_WHERE[forced]}")
        return _other(conn, forced, configmap, notes)
    if agent is not None and agent.cni is not Cni.CALICO:
        configmap = _CONFIGMAPS[agent.cni](conn, agent)
        if configmap is None:
            raise KubeError(f"context {conn.context}: {agent.cni.value} runs (DaemonSet {agent.namespace}/{agent.daemonset}) "
                            f"but there is no {_WHERE[agent.cni]}")
        return _other(conn, agent.cni, configmap, notes)
    if agent is None:
        for cni in (Cni.FLANNEL, Cni.CILIUM, Cni.ANTREA):
            configmap = _CONFIGMAPS[cni](conn, None)
            if configmap is not None:
                return _other(conn, cni, configmap, notes)
    try:
        calico, _ = discover_calico(conn)
    except KubeError as err:
        if agent is None and "no Calico found" in str(err):
            raise KubeError(f"context {conn.context}: {detect.not_identified()}") from None
        raise
    return Found(Cni.CALICO, calico=calico, notes=tuple(notes) + calico.notes)


def identify(conn: Connection) -> Cni:
    """Only which CNI runs (for `run --cni auto`): its agent, else its ConfigMap, else Calico, whose
    own discovery then says plainly when there is no Calico either."""
    daemonsets = list_daemonsets(conn) or []
    try:
        agent = detect.choose(detect.agents(daemonsets))
    except CniError as err:
        raise KubeError(f"context {conn.context}: {err}") from None
    if agent is not None:
        return agent.cni
    for cni in (Cni.FLANNEL, Cni.CILIUM, Cni.ANTREA):
        if _CONFIGMAPS[cni](conn, None) is not None:
            return cni
    return Cni.CALICO
