"""Antrea's promises, from the `antrea-config` ConfigMap's antrea-agent.conf.

Facts from antrea-io/antrea (checked at fc70f2b, 2026):
- build/charts/antrea/conf/antrea-agent.conf and values.yaml: trafficEncapMode "encap",
  tunnelType "geneve", tunnelPort 0 = the IANA port (6081 Geneve, 4789 VXLAN, 7471 STT; GRE has none),
  trafficEncryptionMode "none" | "ipsec" | "wireGuard" (wireGuard.port 51820).
- pkg/agent/config/traffic_encap_mode.go: modes encap, noEncap, hybrid, networkPolicyOnly,
  matched case-insensitively; cmd/antrea-agent/options.go: empty means encap / geneve.
- pkg/agent/config/node_config.go `NeedsTunnelToPeer`: encap always tunnels; hybrid tunnels
  only when the peer's IP is outside the local transport interface's subnet; WireGuard
  replaces the tunnel. networkPolicyOnly leaves pod traffic to the primary CNI.
- pkg/agent/openflow/pipeline.go `podClassifierFlow`: tun_id is set only for Multi-cluster's
  label IDs, so a pod's tunnelled packets carry VNI 0.
- Older releases (v1.0.0's build/yamls/antrea.yml) name the ConfigMap with a kustomize hash,
  `antrea-config-5ct9ktdt77`, and leave every key commented out (all defaults).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from itertools import permutations
from typing import Any

import yaml

from vxcap.core.cni import Cni, CniDiscovery, CniError, CniNode, CniPath, Encap, WireFormat
from vxcap.core.cni import objects as o

CONFIGMAP = "antrea-config"
CONFIGMAP_NAME = re.compile(r"^antrea-config(-[a-z0-9]{6,12})?$")  # the hash suffix of kustomize releases
NAMESPACE = "kube-system"
AGENT_CONF = "antrea-agent.conf"
MODES = ("encap", "noEncap", "hybrid", "networkPolicyOnly")
IANA_PORTS = {"geneve": 6081, "vxlan": 4789, "stt": 7471}
TUNNEL_TYPES = ("geneve", "vxlan", "gre", "stt")
WIREGUARD_PORT = 51820
TUNNEL_DEVICE = "antrea-tun0"
WIREGUARD_DEVICE = "antrea-wg0"
TRANSPORT_ANNOTATION = "node.antrea.io/transport-addresses"


@dataclass(frozen=True, slots=True)
class AntreaConfig:
    mode: str
    tunnel_type: str
    port: int | None  # None for GRE
    encryption: str = "none"
    wireguard_port: int = WIREGUARD_PORT


def _choice(value: Any, allowed: tuple[str, ...], default: str, what: str) -> str:
    text = str(value or "").strip()
    if not text:
        return default
    for choice in allowed:
        if choice.lower() == text.lower():
            return choice
    raise CniError(f"{what} {text!r} is not one of {', '.join(allowed)}")


def parse_agent_conf(text: str, where: str = AGENT_CONF) -> AntreaConfig:
    try:
        conf = yaml.safe_load(text or "") or {}
    except yaml.YAMLError:
        raise CniError(f"{where} is not YAML") from None
    if not isinstance(conf, dict):
        raise CniError(f"{where} is not a YAML mapping")
    mode = _choice(conf.get("trafficEncapMode"), MODES, "encap", f"{where}: trafficEncapMode")
    tunnel = _choice(conf.get("tunnelType"), TUNNEL_TYPES, "geneve", f"{where}: tunnelType")
    encryption = _choice(conf.get("trafficEncryptionMode"), ("none", "ipsec", "wireGuard"), "none",
                         f"{where}: trafficEncryptionMode")
    port = None if tunnel == "gre" else o.port(conf.get("tunnelPort"), f"{where}: tunnelPort", IANA_PORTS[tunnel])
    wg = conf.get("wireGuard") if isinstance(conf.get("wireGuard"), dict) else {}
    wg_port = o.port(wg.get("port"), f"{where}: wireGuard.port", WIREGUARD_PORT)
    return AntreaConfig(mode, tunnel, port, encryption, wg_port)


def _tunnel(config: AntreaConfig) -> WireFormat:
    if config.encryption == "wireGuard":
        return WireFormat(Encap.WIREGUARD, port=config.wireguard_port, device=WIREGUARD_DEVICE)
    vni = None if config.tunnel_type in ("gre", "stt") else 0
    return WireFormat(Encap(config.tunnel_type), port=config.port, vni=vni, device=TUNNEL_DEVICE)


def _path(config: AntreaConfig, src: CniNode, dst: CniNode, connected: Mapping[tuple[str, str], bool] | None) -> CniPath:
    tunnel = _tunnel(config)
    what = "WireGuard" if config.encryption == "wireGuard" else config.tunnel_type
    if config.mode == "noEncap":
        return CniPath(src.name, dst.name, (WireFormat(Encap.PLAIN),), "trafficEncapMode noEncap")
    if config.mode == "encap":
        return CniPath(src.name, dst.name, (tunnel,), f"trafficEncapMode encap ({what})")
    question = f"is {dst.address} in {src.name}'s transport subnet"
    same = None if connected is None else connected.get((src.name, dst.name))
    if same is True:
        return CniPath(src.name, dst.name, (WireFormat(Encap.PLAIN),), f"hybrid: {dst.address} is in {src.name}'s transport subnet")
    if same is False:
        return CniPath(src.name, dst.name, (tunnel,), f"hybrid: {dst.address} is outside {src.name}'s transport subnet ({what})")
    return CniPath(src.name, dst.name, (WireFormat(Encap.PLAIN), tunnel),
                   f"hybrid: plain within the sender's transport subnet, else {what}", decided_by=question)


def _tunnel_address(node: dict[str, Any]) -> IPv4Address:
    """Where peers tunnel to: the transport interface's address when the agent annotated one
    (pkg/agent/types/annotations.go, set when transportInterface is not the Node IP's), else the InternalIP."""
    for text in str(o.annotations(node).get(TRANSPORT_ANNOTATION) or "").split(","):
        try:
            address = ip_address(text.strip())
        except ValueError:
            continue
        if isinstance(address, IPv4Address):
            return address
    address = o.internal_ip(node)
    if address is None:
        raise CniError(f"node {o.name(node)}: no IPv4 InternalIP")
    return address


def find_configmap(items: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> dict[str, Any] | None:
    """The agent's ConfigMap among a namespace's: `antrea-config`, or an older release's hashed name."""
    matches = sorted((i for i in items if CONFIGMAP_NAME.match(o.name(i)) and AGENT_CONF in (i.get("data") or {})),
                     key=lambda i: (o.name(i) != CONFIGMAP, o.name(i)))
    return matches[0] if matches else None


def discover(
    configmap: dict[str, Any],
    nodes: list[dict[str, Any]] | tuple[dict[str, Any], ...],
    connected: Mapping[tuple[str, str], bool] | None = None,
) -> CniDiscovery:
    """`connected[(src, dst)]`: whether `dst` is in `src`'s transport subnet, when known (hybrid)."""
    where = f"ConfigMap {o.namespace(configmap)}/{o.name(configmap)}"
    text = (configmap.get("data") or {}).get(AGENT_CONF)
    if text is None:
        raise CniError(f"{where} has no {AGENT_CONF}")
    config = parse_agent_conf(text, f"{where} {AGENT_CONF}")
    if config.mode == "networkPolicyOnly":
        raise CniError(f"{where}: trafficEncapMode networkPolicyOnly: Antrea only enforces policy and the primary CNI "
                       "carries pod traffic; give --cni for that one")
    if config.encryption == "ipsec":
        raise CniError(f"{where}: trafficEncryptionMode ipsec: pod traffic is ESP, which vxcap does not judge yet")
    if not nodes:
        raise CniError("the cluster has no nodes")
    notes: list[str] = []
    if o.name(configmap) != CONFIGMAP:
        notes.append(f"{where}: an older release's hashed ConfigMap name")
    cni_nodes = tuple(CniNode(o.name(raw), _tunnel_address(raw), o.pod_cidr(raw)) for raw in sorted(nodes, key=o.name))
    if config.mode == "hybrid" and connected is None:
        notes.append("hybrid: the API does not say each node's transport subnet; every pair states both formats "
                     "until the node's own addresses decide")
    paths = tuple(_path(config, s, d, connected) for s, d in permutations(cni_nodes, 2))
    tunnel = _tunnel(config)
    settings: dict[str, object] = {"traffic_encap_mode": config.mode, "tunnel_type": config.tunnel_type,
                                   "port": config.port, "encryption": config.encryption}
    if tunnel.vni is not None:
        settings["vni"] = tunnel.vni
    summary = f"antrea {config.mode}"
    if config.mode != "noEncap":
        summary += f" ({tunnel.describe()})" if config.encryption != "wireGuard" else f" (WireGuard, UDP {config.wireguard_port})"
    return CniDiscovery(Cni.ANTREA, settings, summary, cni_nodes, paths, tuple(notes), where)
