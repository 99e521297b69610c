"""Flannel, Cilium and Antrea clusters as the API serves them, for the HTTP fake (kube_api.py).

Shapes follow each project's own manifest: kube-flannel.yml (flannel-io/flannel Documentation/,
v0.28: ConfigMap kube-flannel-cfg and DaemonSet kube-flannel-ds in kube-flannel; older
installs used kube-system), Cilium's Helm output (ConfigMap cilium-config and DaemonSet cilium
in kube-system; releases before 1.14 wrote `tunnel: vxlan` instead of routing-mode and
tunnel-protocol), and Antrea's build/yamls/antrea.yml (ConfigMap antrea-config in kube-system,
which v1.0 and earlier named with a kustomize hash: antrea-config-5ct9ktdt77). The nodes are the
reference lab's four (calico_objects.K01) without Calico's annotations.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.fakes import calico_objects as co

_CREATED = "2025-03-02T14:21:07Z"
POD_CIDRS = {n.name: f"10.244.{i}.0/24" for i, n in enumerate(co.K01)}
FLANNEL_MACS = {n.name: f"b2:6e:3c:00:0{i}:1{i}" for i, n in enumerate(co.K01)}


@dataclass
class CniObjects:
    """What the fake serves besides nodes and Calico: DaemonSets, ConfigMaps, CiliumEndpoints."""

    daemonsets: list[dict] = field(default_factory=list)
    configmaps: list[dict] = field(default_factory=list)
    ciliumendpoints: list[dict] | None = None  # None: cilium.io is not served (404, no CRD)
    # As the Cilium agent does: a CiliumEndpoint for every pod (not hostNetwork) the fake starts,
    # removed with the pod, its identity one per distinct label set (cilium_agent_endpoints).
    cilium_agent: bool = False
    identities: dict[tuple[str, tuple[tuple[str, str], ...]], int] = field(default_factory=dict)


def _meta(name: str, namespace: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": co._uid(namespace, name),
                            "resourceVersion": "4411", "creationTimestamp": _CREATED}
    if labels:
        meta["labels"] = dict(labels)
    return meta


def configmap(name: str, namespace: str, data: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, namespace, labels), "data": dict(data)}


def daemonset(name: str, namespace: str, labels: dict[str, str], image: str,
              configmaps: dict[str, str] | None = None) -> dict[str, Any]:
    """A DaemonSet whose pods mount `configmaps` (volume name -> ConfigMap name), Ready on every node."""
    volumes = [{"name": vol, "configMap": {"name": cm, "defaultMode": 420}} for vol, cm in (configmaps or {}).items()]
    volumes.append({"name": "lib-modules", "hostPath": {"path": "/lib/modules", "type": ""}})
    nodes = len(co.K01)
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _meta(name, namespace, labels),
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)},
                         "spec": {"hostNetwork": True, "containers": [{"name": name, "image": image}], "volumes": volumes}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        },
        "status": {"currentNumberScheduled": nodes, "desiredNumberScheduled": nodes, "numberAvailable": nodes,
                   "numberMisscheduled": 0, "numberReady": nodes, "observedGeneration": 1, "updatedNumberScheduled": nodes},
    }


def kube_proxy() -> dict[str, Any]:
    return daemonset("kube-proxy", "kube-system", {"k8s-app": "kube-proxy"}, "registry.k8s.io/kube-proxy:v1.32.2",
                     {"kube-proxy": "kube-proxy"})


def plain_nodes() -> list[dict[str, Any]]:
    """The lab's nodes with no Calico annotation and a pod CIDR each, as kube-controller-manager allocates."""
    nodes = co.lab_nodes(calico_annotations=False)
    for node in nodes:
        cidr = POD_CIDRS[node["metadata"]["name"]]
        node["spec"]["podCIDR"], node["spec"]["podCIDRs"] = cidr, [cidr]
    return nodes


def underlay_nodes() -> list[dict[str, Any]]:
    """plain_nodes whose InternalIP is the lab's underlay address (kubelet's --node-ip on eth1), as a
    cluster must be set up whose CNI tunnels to the InternalIP (Cilium, Antrea) over the lab's underlay."""
    nodes = plain_nodes()
    for node, lab in zip(nodes, co.K01):
        for address in node["status"]["addresses"]:
            if address["type"] == "InternalIP":
                address["address"] = lab.underlay.split("/")[0]
    return nodes


# ------------------------------------------------------------------------- Flannel


def flannel_nodes(backend: str = "vxlan", vni: int = 1, macs: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """What flanneld writes on each node (pkg/subnet/kube/annotations.go); public-ip is the lab's underlay.
    `macs`: each node's VtepMAC (the Flannel lab's, when the fake fronts it)."""
    nodes = plain_nodes()
    for node, lab in zip(nodes, co.K01):
        annotations = node["metadata"]["annotations"]
        data = {"VNI": vni, "VtepMAC": (macs or FLANNEL_MACS)[lab.name]} if backend == "vxlan" else None
        annotations.update({
            "flannel.alpha.coreos.com/backend-data": json.dumps(data, separators=(",", ":")) if data else "null",
            "flannel.alpha.coreos.com/backend-type": backend,
            "flannel.alpha.coreos.com/kube-subnet-manager": "true",
            "flannel.alpha.coreos.com/public-ip": lab.underlay.split("/")[0],
        })
    return nodes


def flannel(backend: dict[str, Any] | None = None, namespace: str = "kube-flannel",
            ds_name: str = "kube-flannel-ds") -> CniObjects:
    net_conf = {"Network": "10.244.0.0/16", "EnableNFTables": False, "Backend": backend or {"Type": "vxlan"}}
    labels = {"tier": "node", "k8s-app": "flannel", "app": "flannel"}
    cni_conf = '{"name": "cbr0", "cniVersion": "0.3.1", "plugins": [{"type": "flannel"}, {"type": "portmap"}]}'
    return CniObjects(
        daemonsets=[kube_proxy(), daemonset(ds_name, namespace, {"tier": "node", "app": "flannel", "k8s-app": "flannel"},
                                            "ghcr.io/flannel-io/flannel:v0.28.9",
                                            {"flannel-cfg": "kube-flannel-cfg"})],
        configmaps=[configmap("kube-flannel-cfg", namespace,
                              {"cni-conf.json": cni_conf, "net-conf.json": json.dumps(net_conf, indent=2)}, labels)],
    )


# ------------------------------------------------------------------------- Cilium

CILIUM_CONFIG = {  # a trimmed `cilium install` (1.16) ConfigMap: every value a string
    "cluster-name": "default", "cluster-id": "0", "identity-allocation-mode": "crd", "ipam": "cluster-pool",
    "cluster-pool-ipv4-cidr": "10.0.0.0/8", "enable-ipv4": "true", "enable-ipv6": "false",
    "kube-proxy-replacement": "false", "enable-l7-proxy": "true", "routing-mode": "tunnel",
    "tunnel-protocol": "vxlan", "tunnel-port": "0", "enable-wireguard": "false", "enable-ipsec": "false",
}
OLD_CILIUM_CONFIG = {  # 1.13: the `tunnel` key, no routing-mode
    "cluster-name": "default", "identity-allocation-mode": "crd", "ipam": "cluster-pool",
    "enable-ipv4": "true", "tunnel": "vxlan", "enable-wireguard": "false",
}


def cilium_endpoint(pod: str, namespace: str, identity: int, ip: str, node_ip: str,
                    labels: dict[str, str] | None = None) -> dict[str, Any]:
    identity_labels = [f"k8s:{k}={v}" for k, v in sorted((labels or {}).items())]
    return {
        "apiVersion": "cilium.io/v2", "kind": "CiliumEndpoint",
        "metadata": {**_meta(pod, namespace, {"app": pod.rsplit("-", 2)[0]}),
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": co._uid("pod", pod)}]},
        "status": {
            "encryption": {}, "external-identifiers": {"k8s-namespace": namespace, "k8s-pod-name": pod, "pod-name": f"{namespace}/{pod}"},
            "id": 1000 + identity % 1000,
            "identity": {"id": identity, "labels": identity_labels + [f"k8s:io.kubernetes.pod.namespace={namespace}"]},
            "networking": {"addressing": [{"ipv4": ip}], "node": node_ip},
            "state": "ready",
        },
    }


# Cilium allocates identities for label sets from 256 up (pkg/identity: MinimalAllocationIdentity);
# the fake starts further in, as a cluster that has seen other workloads would.
FIRST_IDENTITY = 21054


def pod_started(objects: CniObjects, pod: dict[str, Any]) -> None:
    """The agent's side of a pod start: its CiliumEndpoint, with the identity of its label set
    (one identity per distinct set of labels in a namespace, as Cilium's are)."""
    if not objects.cilium_agent or objects.ciliumendpoints is None or (pod.get("spec") or {}).get("hostNetwork"):
        return
    meta, status = pod["metadata"], pod.get("status") or {}
    labels = dict(meta.get("labels") or {})
    key = (meta["namespace"], tuple(sorted(labels.items())))
    identity = objects.identities.setdefault(key, FIRST_IDENTITY + len(objects.identities))
    objects.ciliumendpoints.append(cilium_endpoint(meta["name"], meta["namespace"], identity, status["podIP"],
                                                   status.get("hostIP", ""), labels))


def pod_deleted(objects: CniObjects, namespace: str, name: str) -> None:
    if objects.ciliumendpoints is not None:
        objects.ciliumendpoints[:] = [e for e in objects.ciliumendpoints
                                      if (e["metadata"]["namespace"], e["metadata"]["name"]) != (namespace, name)]


def cilium(data: dict[str, str] | None = None, endpoints: list[dict] | None = None, agent: bool = False) -> CniObjects:
    labels = {"k8s-app": "cilium", "app.kubernetes.io/name": "cilium-agent", "app.kubernetes.io/part-of": "cilium"}
    if endpoints is None:
        endpoints = [cilium_endpoint("coredns-668d6bf9bc-2xkqz", "kube-system", 17284, "10.0.1.201", "172.18.0.5"),
                     cilium_endpoint("coredns-668d6bf9bc-q8v5n", "kube-system", 17284, "10.0.2.97", "172.18.0.3")]
    return CniObjects(
        daemonsets=[kube_proxy(), daemonset("cilium", "kube-system", labels, "quay.io/cilium/cilium:v1.16.5",
                                            {"cilium-config-path": "cilium-config"})],
        configmaps=[configmap("cilium-config", "kube-system", dict(CILIUM_CONFIG if data is None else data))],
        ciliumendpoints=endpoints,
        cilium_agent=agent,
    )


# ------------------------------------------------------------------------- Antrea

ANTREA_AGENT_CONF = """\
# FeatureGates is a map of feature names to bools that enable or disable experimental features.
featureGates:
  AntreaProxy: true
ovsBridge: "br-int"
ovsDatapathType: "system"
hostGateway: "antrea-gw0"
trafficEncapMode: "{mode}"
noSNAT: false
tunnelType: "{tunnel}"
tunnelPort: {port}
tunnelCsum: false
trafficEncryptionMode: "none"
"""
# v1.0.0's file: every setting commented out, so every one is Antrea's default.
OLD_ANTREA_AGENT_CONF = """\
# Name of the OpenVSwitch bridge antrea-agent will create and use.
# Make sure it doesn't conflict with your existing OpenVSwitch bridges.
#ovsBridge: br-int

# Determines how traffic is encapsulated. It has the following options:
# encap(default):    Inter-node Pod traffic is always encapsulated and Pod to external network
#                    traffic is SNAT'd.
#trafficEncapMode: encap

# Tunnel protocols used for encapsulating traffic across Nodes. Supported values:
# - geneve (default)
# - vxlan
# - gre
# - stt
#tunnelType: geneve
"""


def antrea(mode: str = "encap", tunnel: str = "geneve", port: int = 0, *, configmap_name: str = "antrea-config",
           agent_conf: str | None = None) -> CniObjects:
    labels = {"app": "antrea"}
    conf = ANTREA_AGENT_CONF.format(mode=mode, tunnel=tunnel, port=port) if agent_conf is None else agent_conf
    controller_conf = "# antrea-controller.conf\nnodeIPAM:\n  enableNodeIPAM: false\n"
    return CniObjects(
        daemonsets=[kube_proxy(), daemonset("antrea-agent", "kube-system", {"app": "antrea", "component": "antrea-agent"},
                                            "antrea/antrea-agent-ubuntu:v2.2.0", {"antrea-config": configmap_name})],
        configmaps=[configmap(configmap_name, "kube-system", {"antrea-agent.conf": conf, "antrea-cni.conflist": "{}",
                                                              "antrea-controller.conf": controller_conf}, labels),
                    configmap("coredns", "kube-system", {"Corefile": ".:53 {\n    forward . /etc/resolv.conf\n}\n"},
                              {"k8s-app": "kube-dns"})],
    )


# ------------------------------------------------------------------------- serving them


def route(handler: Any, objects: CniObjects, method: str, path: str, q: dict[str, str]) -> bool:
    """Answer the request if it is for one of these objects; False leaves it to the other routes."""
    from tests.fakes.kube_api import labels_match, not_found

    if method != "GET":
        return False
    if path == "/apis/apps/v1/daemonsets":
        items = [copy.deepcopy(d) for d in objects.daemonsets if labels_match(d, q.get("labelSelector"))]
        handler._send_json(200, {"apiVersion": "apps/v1", "kind": "DaemonSetList", "metadata": {"resourceVersion": "4411"}, "items": items})
        return True
    m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/configmaps(?:/([^/]+))?", path)
    if m:
        namespace, name = m.groups()
        items = [copy.deepcopy(c) for c in objects.configmaps if c["metadata"]["namespace"] == namespace]
        if name is not None:
            found = next((c for c in items if c["metadata"]["name"] == name), None)
            if found is None:
                raise not_found("configmaps", name)
            handler._send_json(200, found)
        else:
            items = [c for c in items if labels_match(c, q.get("labelSelector"))]
            handler._send_json(200, {"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "4411"}, "items": items})
        return True
    if path == "/apis/cilium.io/v2/ciliumendpoints" and objects.ciliumendpoints is not None:
        with handler.kube._lock:
            items = [copy.deepcopy(e) for e in objects.ciliumendpoints]
        handler._send_json(200, {"apiVersion": "cilium.io/v2", "kind": "CiliumEndpointList", "metadata": {"resourceVersion": "4411"}, "items": items})
        return True
    return False
