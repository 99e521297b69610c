"""Kubernetes and Calico objects shaped like the reference lab's real ones (cluster k01).

Shapes follow a Kind v1.32 node with calico-node's annotations
(libcalico-go/lib/backend/k8s/resources/node.go) and the Calico resources as
the API serves them: `crd.projectcalico.org/v1` CRDs (BlockAffinity
`spec.deleted` is a *string*, required by that CRD) or `projectcalico.org/v3`
(`deleted` a bool, omitted when false). The IPPool is the one the lab lesson
prints (shared/reference/calico-overlay-lab.txt).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, replace
from ipaddress import ip_network
from typing import Any

V1 = "crd.projectcalico.org/v1"
V3 = "projectcalico.org/v3"
GROUPS = (V1, V3)


@dataclass(frozen=True)
class LabNode:
    name: str
    underlay: str | None  # address/prefix on eth1, what Calico autodetects (None: an IPv6-only node)
    internal_ip: str  # Kind's docker network address, what the kubelet reports
    block: str  # the IPv4 block; an IPv6-only node's IPv6 block derives from it (see vtep_ip6)
    vtep_mac: str
    control_plane: bool = False
    # A dual-stack node's IPv6 underlay and vxlan-v6.calico MAC (calico-node writes both annotations
    # when an IPv6 pool has vxlanMode); its WireGuard public keys once Felix has WireGuard on.
    underlay6: str | None = None
    vtep_mac6: str | None = None
    wireguard_key: str | None = None
    wireguard_key6: str | None = None
    pod_cidr: str = "10.244.0.0/24"  # spec.podCIDR, Kind's controller-manager's

    @property
    def vtep_ip(self) -> str:
        return str(ip_network(self.block).network_address)

    @property
    def vtep_ip6(self) -> str | None:
        """vxlan-v6.calico's address: the first of an IPv6 block derived from the IPv4 one."""
        if self.underlay6 is None:
            return None
        return "fd00:192:168:" + format(int(self.block.split(".")[2]), "x") + "::"


K01 = (
    LabNode("k01-control-plane", "10.10.10.10/24", "172.18.0.2", "192.168.23.64/26", "66:15:9d:fa:c6:aa", True),
    LabNode("k01-worker", "10.10.10.11/24", "172.18.0.5", "192.168.81.64/26", "66:fb:ad:98:aa:13"),
    LabNode("k01-worker2", "10.10.10.12/24", "172.18.0.3", "192.168.164.128/26", "66:c7:4d:6e:6b:f3"),
    LabNode("k01-worker3", "10.10.20.13/24", "172.18.0.4", "192.168.209.64/26", "66:d2:0c:f0:ef:e5"),
)

def _wg_key(name: str, family: str = "") -> str:
    """A 32-byte Curve25519 public key in base64, as `wg pubkey` prints it (derived from the name, not a real key)."""
    return base64.b64encode(hashlib.sha256(f"{name}{family}".encode()).digest()).decode()


# The same four nodes dual-stack (an IPv6 underlay on eth1 beside the IPv4 one) and with WireGuard keys.
K01_DUAL = tuple(
    replace(n, underlay6=f"fd00:{n.underlay.split('.')[2]}::{n.underlay.split('.')[3].split('/')[0]}/64",
            vtep_mac6=n.vtep_mac[:-2] + "66")
    for n in K01
)
K01_WIREGUARD = tuple(replace(n, wireguard_key=_wg_key(n.name), wireguard_key6=_wg_key(n.name, "v6")) for n in K01_DUAL)
# The same four nodes on an IPv6-only cluster (Kind `ipFamily: ipv6`, Calico with only an IPv6 pool and
# IP_AUTODETECTION_METHOD for IPv4 `none`): IPv6 InternalIPs on Kind's docker network, an IPv6 pod CIDR,
# and only the IPv6 annotations. `block` stays only to derive the IPv6 block (vtep_ip6) from.
K01_V6ONLY = tuple(
    replace(n, underlay=None, internal_ip=f"fc00:f853:ccd:e793::{n.internal_ip.split('.')[3]}",
            pod_cidr=f"fd00:10:244:{i}::/64")
    for i, n in enumerate(K01_DUAL)
)
K01_V6ONLY_WIREGUARD = tuple(replace(n, wireguard_key6=_wg_key(n.name, "v6")) for n in K01_V6ONLY)

_CREATED = "2025-03-02T14:21:07Z"


def _uid(*parts: str) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def node(
    lab: LabNode,
    *,
    calico_annotations: bool = True,
    with_underlay_annotation: bool = True,
) -> dict[str, Any]:
    annotations = {
        "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }
    if calico_annotations and lab.underlay is not None:  # an IPv6-only node has no IPv4 annotation at all
        if with_underlay_annotation:
            annotations["projectcalico.org/IPv4Address"] = lab.underlay
        annotations["projectcalico.org/IPv4VXLANTunnelAddr"] = lab.vtep_ip
        annotations["projectcalico.org/VXLANTunnelMACAddr"] = lab.vtep_mac
    if calico_annotations:
        if lab.underlay6 is not None and (with_underlay_annotation or lab.underlay is not None):
            annotations["projectcalico.org/IPv6Address"] = lab.underlay6
            annotations["projectcalico.org/IPv6VXLANTunnelAddr"] = lab.vtep_ip6
            annotations["projectcalico.org/VXLANTunnelMACAddrV6"] = lab.vtep_mac6
        if lab.wireguard_key is not None and lab.underlay is not None:
            annotations["projectcalico.org/WireguardPublicKey"] = lab.wireguard_key
            annotations["projectcalico.org/IPv4WireguardInterfaceAddr"] = lab.vtep_ip
        if lab.wireguard_key6 is not None:
            annotations["projectcalico.org/WireguardPublicKeyV6"] = lab.wireguard_key6
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": lab.name,
        "kubernetes.io/os": "linux",
    }
    spec: dict[str, Any] = {"podCIDR": lab.pod_cidr, "podCIDRs": [lab.pod_cidr], "providerID": f"kind://docker/k01/{lab.name}"}
    if lab.control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
        spec["taints"] = [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": lab.name,
            "uid": _uid("node", lab.name),
            "resourceVersion": "1021",
            "creationTimestamp": _CREATED,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": lab.internal_ip},
                {"type": "Hostname", "address": lab.name},
            ],
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "containerRuntimeVersion": "containerd://2.0.2",
                "kubeletVersion": "v1.32.2",
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
            },
        },
    }


def _calico_meta(group: str, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "uid": _uid(group, name),
        "resourceVersion": "2210",
        "generation": 1,
        "creationTimestamp": _CREATED,
    }
    if labels:
        meta["labels"] = dict(labels)
    if group == V1:
        # libcalico-go keeps the v3 metadata it cannot store natively in this annotation.
        meta["annotations"] = {"projectcalico.org/metadata": '{"creationTimestamp":null}'}
    return meta


def ippool(
    group: str,
    *,
    name: str = "default-ipv4-ippool",
    cidr: str = "192.168.0.0/16",
    vxlan_mode: str | None = "CrossSubnet",
    ipip_mode: str | None = "Never",
    disabled: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "allowedUses": ["Workload", "Tunnel"],
        "assignmentMode": "Automatic",
        "blockSize": 26,
        "cidr": cidr,
        "disableBGPExport": True,
        "natOutgoing": True,
        "nodeSelector": "all()",
    }
    if ipip_mode is not None:
        spec["ipipMode"] = ipip_mode
    if vxlan_mode is not None:
        spec["vxlanMode"] = vxlan_mode
    if disabled:
        spec["disabled"] = True
    return {
        "apiVersion": group,
        "kind": "IPPool",
        "metadata": _calico_meta(group, name, {"app.kubernetes.io/managed-by": "tigera-operator"}),
        "spec": spec,
    }


def block_affinity(group: str, node_name: str, cidr: str, *, deleted: bool = False, state: str = "confirmed") -> dict[str, Any]:
    # Calico's name: "<node>-<cidr with . and / as ->" (ipam_affinity_v1.go parseKey).
    name = f"{node_name}-{cidr.replace('.', '-').replace('/', '-')}"
    labels = {
        "projectcalico.org/affinity-type": "host",
        "projectcalico.org/hostname-hash": hashlib.sha256(node_name.encode()).hexdigest()[:32],
        "projectcalico.org/ip-version": "6" if ":" in cidr else "4",
    }
    spec: dict[str, Any] = {"cidr": cidr, "node": node_name, "state": state, "type": "host"}
    if group == V1:
        spec["deleted"] = "true" if deleted else "false"  # a string: required by the v1 CRD schema
    elif deleted:
        spec["deleted"] = True
    return {"apiVersion": group, "kind": "BlockAffinity", "metadata": _calico_meta(group, name, labels), "spec": spec}


def felix_configuration(group: str, name: str = "default", **vxlan: int) -> dict[str, Any]:
    """What the tigera-operator writes, with no vxlan* field unless given (Felix then uses its defaults)."""
    spec: dict[str, Any] = {
        "bpfConnectTimeLoadBalancing": "TCP",
        "bpfHostNetworkedNATWithoutCTLB": "Enabled",
        "bpfLogLevel": "",
        "floatingIPs": "Disabled",
        "healthPort": 9099,
        "logSeverityScreen": "Info",
        "reportingInterval": "0s",
    }
    spec.update(vxlan)
    return {"apiVersion": group, "kind": "FelixConfiguration", "metadata": _calico_meta(group, name), "spec": spec}


def lab_nodes(nodes: tuple[LabNode, ...] = K01, **options: bool) -> list[dict[str, Any]]:
    return [node(n, **options) for n in nodes]


def lab_calico(
    group: str,
    nodes: tuple[LabNode, ...] = K01,
    *,
    ipip: str | None = None,
    ipv6_mode: str | None = None,
    wireguard: bool = False,
    wireguard6: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """The lab's Calico resources in one API group, keyed by plural resource name.

    `ipip`: the IPv4 pool's ipipMode (its vxlanMode then Never), as an IP-in-IP install writes it;
    `ipv6_mode`: add Calico's default IPv6 pool with this vxlanMode (dual-stack, or IPv6 only when no node has
    an IPv4 underlay: then it is the only pool); `wireguard[6]`:
    FelixConfiguration wireguardEnabled[V6], as `kubectl patch felixconfiguration default` sets it."""
    v4 = any(n.underlay is not None for n in nodes)  # an IPv6-only cluster has no IPv4 pool and no IPv4 block
    pools = [ippool(group) if ipip is None else ippool(group, vxlan_mode="Never", ipip_mode=ipip)] if v4 else []
    if ipv6_mode is not None:
        pools.append(ippool(group, name="default-ipv6-ippool", cidr="fd00:192:168::/48", vxlan_mode=ipv6_mode,
                            ipip_mode="Never"))
    felix: dict[str, Any] = {}
    if wireguard:
        felix["wireguardEnabled"] = True
    if wireguard6:
        felix["wireguardEnabledV6"] = True
    affinities = [block_affinity(group, n.name, n.block) for n in nodes if n.underlay is not None]
    if ipv6_mode is not None:  # Calico's IPv6 blocks are /122 by default; vxcap reads them on an IPv6-only cluster
        affinities += [block_affinity(group, n.name, f"{n.vtep_ip6}/122") for n in nodes if n.vtep_ip6]
    return {
        "ippools": pools,
        "blockaffinities": affinities,
        "felixconfigurations": [felix_configuration(group, **felix)],
    }
