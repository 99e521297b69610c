"""Cilium's promises, from the `cilium-config` ConfigMap and the CiliumEndpoints' identities.

Facts from cilium/cilium (checked in the stored source, 2026):
- pkg/defaults/defaults.go: RoutingMode "tunnel", TunnelProtocol "vxlan", TunnelPortVXLAN 8472,
  TunnelPortGeneve 6081; pkg/datapath/tunnel: a tunnel-port of 0 means the protocol's default.
- The `tunnel` key (vxlan | geneve | disabled) was deprecated in 1.14 for `routing-mode` +
  `tunnel-protocol` and removed in 1.15 (cilium/cilium#29053); cilium-cli reads the new keys
  first and falls back on the old one, and so does vxcap.
- bpf/lib/encap.h: the tunnel key's id (the VXLAN/Geneve VNI) is the packet's source security
  identity (`key.tunnel_id = seclabel`), set with BPF_F_ZERO_CSUM_TX: the outer UDP checksum is 0.
- Devices cilium_vxlan / cilium_geneve; native routing sends pod packets plain.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from itertools import permutations
from typing import Any

from vxcap.core.cni import VNI_SENDER_IDENTITY, Cni, CniDiscovery, CniError, CniNode, CniPath, Encap, WireFormat
from vxcap.core.cni import objects as o

CONFIGMAP = "cilium-config"
NAMESPACE = "kube-system"
DEFAULT_PORTS = {"vxlan": 8472, "geneve": 6081}
DEVICES = {"vxlan": "cilium_vxlan", "geneve": "cilium_geneve"}
WIREGUARD_PORT = 51871  # pkg/wireguard/agent: listenPort
WIREGUARD_DEVICE = "cilium_wg0"


@dataclass(frozen=True, slots=True)
class CiliumConfig:
    routing_mode: str  # "tunnel" | "native"
    protocol: str | None  # "vxlan" | "geneve" in tunnel mode
    port: int | None
    wireguard: bool = False
    from_old_key: bool = False


def parse_config(data: dict[str, Any], where: str = CONFIGMAP) -> tuple[CiliumConfig, list[str]]:
    notes: list[str] = []
    mode = str(data.get("routing-mode") or "").strip().lower()
    protocol = str(data.get("tunnel-protocol") or "").strip().lower()
    old = str(data.get("tunnel") or "").strip().lower()
    from_old = False
    if not mode and old:
        from_old = True
        notes.append(f"{where} sets the old `tunnel: {old}` key (removed in Cilium 1.15); read as "
                     + ("routing-mode native" if old == "disabled" else f"routing-mode tunnel, tunnel-protocol {old}"))
        if old == "disabled":
            mode = "native"
        else:
            mode, protocol = "tunnel", protocol or old
    elif mode and old and (old == "disabled") != (mode == "native"):
        notes.append(f"{where} sets both routing-mode {mode} and the old tunnel: {old}; Cilium 1.14+ follows routing-mode")
    mode = mode or "tunnel"
    if mode not in ("tunnel", "native"):
        raise CniError(f"{where}: routing-mode {mode!r} is not tunnel or native")
    if o.truthy(data.get("enable-ipsec")):
        raise CniError(f"{where} enables IPsec: pod traffic is ESP, which vxcap does not judge yet")
    wireguard = o.truthy(data.get("enable-wireguard"))
    if mode == "native":
        return CiliumConfig("native", None, None, wireguard, from_old), notes
    protocol = protocol or "vxlan"
    if protocol not in DEFAULT_PORTS:
        raise CniError(f"{where}: tunnel-protocol {protocol!r} is not vxlan or geneve")
    port = o.port(data.get("tunnel-port"), f"{where}: tunnel-port", DEFAULT_PORTS[protocol])
    return CiliumConfig("tunnel", protocol, port, wireguard, from_old), notes


@dataclass(frozen=True, slots=True)
class Endpoint:
    namespace: str
    name: str
    identity: int
    ip: IPv4Address
    node_ip: IPv4Address | None


def endpoints(items: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> tuple[Endpoint, ...]:
    """The CiliumEndpoints with an identity and an IPv4 address: the VNI each pod's packets carry."""
    found = []
    for item in items:
        status = item.get("status") or {}
        identity = (status.get("identity") or {}).get("id")
        networking = status.get("networking") or {}
        if not isinstance(identity, int) or isinstance(identity, bool):
            continue
        node_ip = None
        try:
            parsed_node = ip_address(str(networking.get("node") or ""))
            node_ip = parsed_node if isinstance(parsed_node, IPv4Address) else None
        except ValueError:
            pass
        for pair in networking.get("addressing") or []:
            try:
                ip = ip_address(str((pair or {}).get("ipv4") or ""))
            except ValueError:
                continue
            if isinstance(ip, IPv4Address):
                found.append(Endpoint(o.namespace(item), o.name(item), identity, ip, node_ip))
    return tuple(found)


def sender_vni(found: tuple[Endpoint, ...], pod_ip: IPv4Address) -> int:
    """The VNI a pod's tunnelled packets must carry: its security identity."""
    for endpoint in found:
        if endpoint.ip == pod_ip:
            if not 0 < endpoint.identity < 2**24:
                raise CniError(f"CiliumEndpoint {endpoint.namespace}/{endpoint.name}: identity {endpoint.identity} "
                               "does not fit a 24-bit VNI")
            return endpoint.identity
    raise CniError(f"no CiliumEndpoint has address {pod_ip}: is the pod managed by Cilium (and Ready)?")


def _wire(config: CiliumConfig) -> tuple[WireFormat, str]:
    if config.wireguard:
        # Encryption wraps whatever routing does; the pod packet is only seen inside WireGuard.
        return WireFormat(Encap.WIREGUARD, port=WIREGUARD_PORT, device=WIREGUARD_DEVICE), "enable-wireguard"
    if config.routing_mode == "native":
        return WireFormat(Encap.PLAIN), "routing-mode native"
    assert config.protocol is not None and config.port is not None
    wire = WireFormat(Encap(config.protocol), port=config.port, vni=VNI_SENDER_IDENTITY, zero_udp_checksum=True,
                      device=DEVICES[config.protocol])
    return wire, f"routing-mode tunnel ({config.protocol}): VNI = the sending pod's security identity"


def discover(
    configmap: dict[str, Any],
    nodes: list[dict[str, Any]] | tuple[dict[str, Any], ...],
    endpoint_items: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
) -> CniDiscovery:
    where = f"ConfigMap {o.namespace(configmap)}/{o.name(configmap)}"
    config, notes = parse_config(dict(configmap.get("data") or {}), where)
    if not nodes:
        raise CniError("the cluster has no nodes")
    cni_nodes = []
    for raw in sorted(nodes, key=o.name):
        address = o.internal_ip(raw)
        if address is None:
            raise CniError(f"node {o.name(raw)}: no IPv4 InternalIP")
        cni_nodes.append(CniNode(o.name(raw), address, o.pod_cidr(raw)))
    wire, reason = _wire(config)
    paths = tuple(CniPath(s.name, d.name, (wire,), reason) for s, d in permutations(cni_nodes, 2))
    found = endpoints(endpoint_items)
    settings: dict[str, object] = {"routing_mode": config.routing_mode, "wireguard": config.wireguard}
    if config.routing_mode == "tunnel":
        settings.update(protocol=config.protocol, port=config.port, vni="sender's security identity",
                        device=DEVICES[str(config.protocol)], outer_udp_checksum=0)
        settings["identities"] = {f"{e.namespace}/{e.name}": e.identity for e in found}
        if not found:
            notes.append("no CiliumEndpoint read yet: each direction's VNI is bound when its test pod exists")
    summary = f"cilium {config.routing_mode}"
    if config.routing_mode == "tunnel":
        summary += f" {config.protocol}: UDP {config.port}, VNI = sender's identity, UDP checksum 0"
    if config.wireguard:
        summary += f", WireGuard (UDP {WIREGUARD_PORT})"
    return CniDiscovery(Cni.CILIUM, settings, summary, tuple(cni_nodes), paths, tuple(notes), where)
