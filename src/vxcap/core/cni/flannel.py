"""Flannel's promises, from its ConfigMap's net-conf.json and the annotations flanneld writes on every node.

Facts from flannel-io/flannel (checked at cdf7605, v0.28):
- pkg/subnet/config.go: net-conf.json's `Backend.Type`; no Backend at all means "udp".
  Go's encoding/json matches keys case-insensitively, so "VNI" and "vni" are one setting.
- pkg/backend/vxlan/vxlan.go: VNI defaults to 1, the device is `flannel.<VNI>`, Port 0 (unset)
  leaves the kernel's default, which is 8472 (drivers/net/vxlan/vxlan_core.c `udp_port`);
  MTU defaults to the external interface's. device.go: the device's MTU is that MTU - 50.
- pkg/backend/vxlan/vxlan_network.go + pkg/ip/iface.go `DirectRouting`: with DirectRouting,
  a peer is reached plain when `ip route get <peer public-ip>` gives one route without a
  gateway: a route lookup on the sending node, not a prefix test.
- pkg/backend/hostgw/hostgw.go: host-gw is always plain, routing each pod CIDR via the
  peer's public IP (so the peer must be on the same layer-2 segment).
- pkg/backend/wireguard/wireguard.go: device `flannel-wg`, ListenPort 51820 by default.
- pkg/subnet/kube/annotations.go: the node annotations under `flannel.alpha.coreos.com/`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from itertools import permutations
from typing import Any

from vxcap.core.cni import Cni, CniDiscovery, CniError, CniNode, CniPath, Encap, WireFormat
from vxcap.core.cni import objects as o
from vxcap.core.errors import InputError
from vxcap.core.model import normalise_mac

CONFIGMAP = "kube-flannel-cfg"
NAMESPACES = ("kube-flannel", "kube-system")  # the current manifest's, then older installs'
NET_CONF = "net-conf.json"

ANNOTATION_PREFIX = "flannel.alpha.coreos.com/"
ANNOTATION_BACKEND_DATA = ANNOTATION_PREFIX + "backend-data"
ANNOTATION_BACKEND_TYPE = ANNOTATION_PREFIX + "backend-type"
ANNOTATION_PUBLIC_IP = ANNOTATION_PREFIX + "public-ip"

DEFAULT_VNI = 1
KERNEL_VXLAN_PORT = 8472
VXLAN_OVERHEAD = 50
WIREGUARD_PORT = 51820
WIREGUARD_DEVICE = "flannel-wg"
HANDLED = ("vxlan", "host-gw", "wireguard")


@dataclass(frozen=True, slots=True)
class FlannelConfig:
    network: str | None
    backend: str
    vni: int = DEFAULT_VNI
    port: int = KERNEL_VXLAN_PORT
    mtu: int | None = None  # Backend.MTU; None: the node's external interface MTU
    direct_routing: bool = False
    listen_port: int = WIREGUARD_PORT

    @property
    def device(self) -> str:
        if self.backend == "wireguard":
            return WIREGUARD_DEVICE
        return f"flannel.{self.vni}"


def parse_net_conf(text: str, where: str = NET_CONF) -> FlannelConfig:
    try:
        conf = json.loads(text)
    except (TypeError, ValueError) as err:
        raise CniError(f"{where} is not JSON ({err})") from None
    if not isinstance(conf, dict):
        raise CniError(f"{where} is not a JSON object")
    backend = o.lookup(conf, "Backend")
    if backend is None:
        raise CniError(f"{where} has no Backend, which flanneld reads as the old udp backend; vxcap handles {', '.join(HANDLED)}")
    if not isinstance(backend, dict):
        raise CniError(f"{where}: Backend is not a JSON object")
    kind = str(o.lookup(backend, "Type") or "")
    if kind not in HANDLED:
        raise CniError(f"{where}: Backend.Type {kind!r} is not one vxcap judges ({', '.join(HANDLED)})")
    vni = o.lookup(backend, "VNI")
    try:
        # Only an absent VNI is the default: Go's json.Unmarshal writes an explicit 0 over it.
        vni = DEFAULT_VNI if vni is None else int(vni)
    except (TypeError, ValueError):
        raise CniError(f"{where}: Backend.VNI {vni!r} is not a number") from None
    if not 0 <= vni < 2**24:
        raise CniError(f"{where}: Backend.VNI {vni} is out of range (0..16777215)")
    mtu = o.lookup(backend, "MTU")
    try:
        mtu = int(mtu) if mtu else None
    except (TypeError, ValueError):
        raise CniError(f"{where}: Backend.MTU {mtu!r} is not a number") from None
    direct = o.lookup(backend, "DirectRouting")
    return FlannelConfig(
        network=None if o.lookup(conf, "Network") is None else str(o.lookup(conf, "Network")),
        backend=kind,
        vni=vni,
        port=o.port(o.lookup(backend, "Port"), f"{where}: Backend.Port", KERNEL_VXLAN_PORT),
        mtu=mtu,
        direct_routing=direct is True or str(direct).lower() == "true",
        listen_port=o.port(o.lookup(backend, "ListenPort"), f"{where}: Backend.ListenPort", WIREGUARD_PORT),
    )


def _node(raw: dict[str, Any], config: FlannelConfig, notes: list[str]) -> CniNode:
    name = o.name(raw)
    annotations = o.annotations(raw)
    address: IPv4Address | None = None
    text = annotations.get(ANNOTATION_PUBLIC_IP)
    if text:
        try:
            parsed = ip_address(str(text))
        except ValueError:
            raise CniError(f"node {name}: annotation {ANNOTATION_PUBLIC_IP}={text!r} is not an address") from None
        address = parsed if isinstance(parsed, IPv4Address) else None
    if address is None:
        address = o.internal_ip(raw)
        if address is None:
            raise CniError(f"node {name}: no IPv4 address (neither {ANNOTATION_PUBLIC_IP} nor an InternalIP)")
        notes.append(f"node {name}: no {ANNOTATION_PUBLIC_IP} annotation (flanneld not running there yet?); using InternalIP {address}")
    kind = annotations.get(ANNOTATION_BACKEND_TYPE)
    if kind and kind != config.backend:
        notes.append(f"node {name} announces backend-type {kind}, the ConfigMap says {config.backend}: "
                     "its flanneld runs an older configuration (restart it)")
    vni = mac = None
    data = annotations.get(ANNOTATION_BACKEND_DATA)
    if data and config.backend == "vxlan":
        try:
            parsed_data = json.loads(data)
        except ValueError:
            raise CniError(f"node {name}: annotation {ANNOTATION_BACKEND_DATA} is not JSON") from None
        if isinstance(parsed_data, dict):
            vni = parsed_data.get("VNI")
            try:
                mac = normalise_mac(parsed_data.get("VtepMAC"))
            except InputError as err:
                raise CniError(f"node {name}: {ANNOTATION_BACKEND_DATA} VtepMAC: {err}") from None
            if vni is not None and vni != config.vni:
                notes.append(f"node {name} announces VNI {vni} in {ANNOTATION_BACKEND_DATA}, the ConfigMap says {config.vni}: "
                             "its flannel device was made with the other one")
    return CniNode(name=name, address=address, pod_cidr=o.pod_cidr(raw), vtep_mac=mac,
                   vni=vni if isinstance(vni, int) else None)


def _path(config: FlannelConfig, src: CniNode, dst: CniNode, connected: Mapping[tuple[str, str], bool] | None) -> CniPath:
    if config.backend == "host-gw":
        return CniPath(src.name, dst.name, (WireFormat(Encap.PLAIN),),
                       f"host-gw: {dst.pod_cidr or 'the pod CIDR'} routed via {dst.address} (needs layer-2 adjacency)")
    if config.backend == "wireguard":
        wire = WireFormat(Encap.WIREGUARD, port=config.listen_port, device=WIREGUARD_DEVICE)
        return CniPath(src.name, dst.name, (wire,), f"backend wireguard: {WIREGUARD_DEVICE} to {dst.address}")
    vxlan = WireFormat(Encap.VXLAN, port=config.port, vni=config.vni, device=config.device)
    if not config.direct_routing:
        return CniPath(src.name, dst.name, (vxlan,), f"backend vxlan ({config.device})")
    lookup = f"ip route get {dst.address} on {src.name}"
    direct = None if connected is None else connected.get((src.name, dst.name))
    if direct is True:
        return CniPath(src.name, dst.name, (WireFormat(Encap.PLAIN),), f"DirectRouting: {lookup} has no gateway")
    if direct is False:
        return CniPath(src.name, dst.name, (vxlan,), f"DirectRouting, but {lookup} goes through a gateway")
    return CniPath(src.name, dst.name, (WireFormat(Encap.PLAIN), vxlan),
                   "DirectRouting: plain if the route to the peer has no gateway, else VXLAN", decided_by=lookup)


def settings(config: FlannelConfig) -> dict[str, object]:
    found: dict[str, object] = {"backend": config.backend}
    if config.backend == "vxlan":
        found.update(vni=config.vni, port=config.port, device=config.device, direct_routing=config.direct_routing,
                     # flannel's device MTU is its configured (else the uplink's) MTU minus VXLAN's 50 bytes
                     device_mtu=None if config.mtu is None else config.mtu - VXLAN_OVERHEAD)
    elif config.backend == "wireguard":
        found.update(port=config.listen_port, device=WIREGUARD_DEVICE)
    if config.network:
        found["network"] = config.network
    return found


def _summary(config: FlannelConfig) -> str:
    if config.backend == "vxlan":
        mtu = "underlay − 50" if config.mtu is None else str(config.mtu - VXLAN_OVERHEAD)
        direct = ", DirectRouting" if config.direct_routing else ""
        return f"flannel vxlan{direct}: VNI {config.vni}, UDP {config.port}, {config.device} MTU {mtu}"
    if config.backend == "wireguard":
        return f"flannel wireguard: {WIREGUARD_DEVICE}, UDP {config.listen_port}"
    return "flannel host-gw: plain, routed via each peer's address"


def discover(
    configmap: dict[str, Any],
    nodes: list[dict[str, Any]] | tuple[dict[str, Any], ...],
    connected: Mapping[tuple[str, str], bool] | None = None,
) -> CniDiscovery:
    """`connected[(src, dst)]`: whether `src`'s route to `dst` has no gateway (from the node's
    route table), when known; without it a DirectRouting pair states both formats."""
    where = f"ConfigMap {o.namespace(configmap)}/{o.name(configmap)}"
    text = (configmap.get("data") or {}).get(NET_CONF)
    if not text:
        raise CniError(f"{where} has no {NET_CONF}")
    config = parse_net_conf(text, f"{where} {NET_CONF}")
    if not nodes:
        raise CniError("the cluster has no nodes")
    notes: list[str] = []
    if o.namespace(configmap) == "kube-system":
        notes.append(f"{where}: Flannel in kube-system, as older manifests installed it")
    cni_nodes = tuple(_node(raw, config, notes) for raw in sorted(nodes, key=o.name))
    paths = tuple(_path(config, src, dst, connected) for src, dst in permutations(cni_nodes, 2))
    return CniDiscovery(Cni.FLANNEL, settings(config), _summary(config), cni_nodes, paths, tuple(notes), where)
