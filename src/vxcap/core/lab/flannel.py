"""The lab's Flannel data plane: the vxlan backend on the kernel's VXLAN device, as flanneld programs it.

Pure, like `lab.plan`. Facts from flannel-io/flannel (commit cdf7605, pkg/backend/vxlan):

- vxlan.go: the device is `flannel.<VNI>` (VNI default 1), made with Port from net-conf.json,
  0 when unset so the kernel's own default applies: 8472, not IANA's 4789. Learning off.
- device.go: MTU = the external interface's MTU - 50; the lease's subnet address as a /32 on the
  device; FDB entries `NUD_PERMANENT, NTF_SELF` (MAC -> the peer's public IP); ARP entries
  `NUD_PERMANENT` (the peer's subnet address -> its VtepMAC).
- vxlan_network.go: per peer, either the direct route `<peer subnet> via <public IP>` (DirectRouting
  on and `ip.DirectRouting`: one route to the peer, without a gateway) or the VXLAN route
  `<peer subnet> via <peer subnet address> dev flannel.1 onlink`, with the neighbour and FDB entry.

The pods hang off the bridge plugin's cni0 (the subnet's first address), each pod taking the
next one, its default route through cni0: what Flannel's CNI config (`flannel` delegating to
`bridge`) gives a pod.
"""

from __future__ import annotations

import hashlib
from typing import Any

from vxcap.core.errors import InputError
from vxcap.core.lab.plan import POD_IFACE, Check, LabNames, Step, bridge, ip
from vxcap.core.lab.spec import Flannel, LabSpec
from vxcap.core.model import Node

# Flannel's defaults (pkg/backend/vxlan/vxlan.go, Documentation/configuration.md): VNI 1, the kernel's
# VXLAN port (Linux's IANA-predating 8472), Network 10.244.0.0/16 in kube-flannel.yml, SubnetLen 24.
DEFAULT_VNI = 1
KERNEL_VXLAN_PORT = 8472
OVERHEAD = 50
NETWORK = "10.244.0.0/16"
BRIDGE = "cni0"


def flannel_description(data: dict[str, Any], direct_routing: bool) -> dict[str, Any]:
    """A lab description (the lab file's structure) with Flannel's vxlan backend over the same
    underlay: each node a /24 of 10.244.0.0/16 (leases in node order), VNI 1, port 8472, MTU
    underlay - 50; DirectRouting as the overlay's mode (CrossSubnet: plain where the peer is
    reached without a gateway, which in this lab is exactly the peers on the sender's subnet)."""
    nodes = data.get("nodes") or []
    if len(nodes) > 256:
        raise InputError(f"a Flannel lab gives each node a /24 of {NETWORK}: at most 256 nodes")
    mtu = int((data.get("underlay") or {}).get("mtu", 1500)) - OVERHEAD
    return {
        **{k: v for k, v in data.items() if k not in ("expected_wire", "dataplane")},
        "overlay": {"encapsulation": "vxlan", "cni": "flannel", "mode": "CrossSubnet" if direct_routing else "Always",
                    "vni": DEFAULT_VNI, "port": KERNEL_VXLAN_PORT, "mtu": mtu},
        "pool": {"cidr": NETWORK},
        "nodes": [{**n, "block": f"10.244.{i}.0/24"} for i, n in enumerate(nodes)],
        "dataplane": {"overlay": "flannel", "flannel": {"direct_routing": direct_routing}},
    }


def _config(spec: LabSpec) -> Flannel:
    if spec.flannel is None:
        raise InputError(f"needs a Flannel lab (--cni flannel); this one is {spec.dataplane}")
    return spec.flannel


def host_veth(node: str) -> str:
    """The bridge plugin names the host end `veth` + 8 hex digits."""
    return "veth" + hashlib.sha1(node.encode()).hexdigest()[:8]


def direct(spec: LabSpec, src: Node, dst: Node) -> bool:
    """flanneld's choice for `dst`'s subnet on `src`: the direct route only with DirectRouting on and
    the peer reached without a gateway (here: on src's own subnet; other subnets go via the switch)."""
    return _config(spec).direct_routing and dst.address in src.subnet


def device_steps(spec: LabSpec, names: LabNames, node: Node, vni: int | None = None,
                 port: int | None = None) -> list[Step]:
    """flannel.<VNI> with its /32, up. `vni`/`port` other than the lab's make one node's flanneld
    disagree with the rest (the faults): another VNI is another device, `flannel.<that VNI>`."""
    ov, ns = spec.topology.overlay, names.node(node.name)
    vni = ov.vni if vni is None else vni
    port = ov.port if port is None else port
    dev = f"flannel.{vni}"
    assert node.block is not None and node.vtep_mac is not None
    # Port 8472 is left to the kernel, as flanneld leaves Port 0: `ip` then warns on stderr, harmlessly.
    dstport = () if port == KERNEL_VXLAN_PORT else ("dstport", port)
    return [
        ip(ns, "link", "add", dev, "address", node.vtep_mac, "mtu", ov.mtu, "type", "vxlan", "id", vni,
           *dstport, "local", node.address, "dev", spec.underlay_iface, "nolearning"),
        ip(ns, "addr", "add", f"{node.block.network_address}/32", "dev", dev),
        ip(ns, "link", "set", dev, "up"),
    ]


def peer_steps(spec: LabSpec, names: LabNames, node: Node, dev: str | None = None) -> list[Step]:
    """Per other node, as vxlan_network.go handles its lease: the direct route, or neighbour, FDB
    entry and then the onlink route (flanneld sets the route last, so the kernel never ARPs for it)."""
    ns, dev = names.node(node.name), dev or _config(spec).device
    steps = []
    for other in spec.topology.nodes:
        if other.name == node.name:
            continue
        assert other.block is not None
        if direct(spec, node, other):
            steps.append(ip(ns, "route", "add", other.block, "via", other.address))
            continue
        gw = other.block.network_address
        steps += [
            ip(ns, "neigh", "add", gw, "lladdr", other.vtep_mac, "dev", dev, "nud", "permanent"),
            bridge(ns, "fdb", "add", other.vtep_mac, "dev", dev, "dst", other.address, "self", "permanent"),
            ip(ns, "route", "add", other.block, "via", gw, "dev", dev, "onlink"),
        ]
    return steps


def encap_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    return device_steps(spec, names, node) + peer_steps(spec, names, node)


def pod_attach_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    """cni0 with the subnet's first address, the pod's veth on it (the node side)."""
    ns, mtu, veth = names.node(node.name), spec.pod_mtu, host_veth(node.name)
    assert node.block is not None
    return [
        ip(ns, "link", "add", BRIDGE, "mtu", mtu, "type", "bridge"),
        ip(ns, "addr", "add", f"{node.block.network_address + 1}/{node.block.prefixlen}", "dev", BRIDGE),
        ip(ns, "link", "set", BRIDGE, "up"),
        ip(ns, "link", "add", veth, "mtu", mtu, "type", "veth", "peer", "name", POD_IFACE, "mtu", mtu,
           "netns", names.pod(node.name)),
        ip(ns, "link", "set", veth, "master", BRIDGE, "up"),
    ]


def pod_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    ns, pod = names.pod(node.name), spec.pod_on(node.name)
    assert node.block is not None
    return [
        ip(ns, "link", "set", "lo", "up"),
        ip(ns, "link", "set", POD_IFACE, "up"),
        ip(ns, "addr", "add", f"{pod.ip}/{node.block.prefixlen}", "dev", POD_IFACE),
        ip(ns, "route", "add", "default", "via", node.block.network_address + 1, "dev", POD_IFACE),
    ]


# --- checks -----------------------------------------------------------------------------------


def _link(links: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((link for link in links if link.get("ifname") == name), None)


def _info(link: dict[str, Any], key: str) -> Any:
    return ((link.get("linkinfo") or {}).get("info_data") or {}).get(key)


def _addr(link: dict[str, Any], address: object, prefixlen: int) -> bool:
    return any(a.get("family") == "inet" and a.get("local") == str(address) and a.get("prefixlen") == prefixlen
               for a in link.get("addr_info", []))


def _differences(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    return [f"{k}={got.get(k)!r} (want {v!r})" for k, v in want.items() if got.get(k) != v]


def device_check(spec: LabSpec, node: Node, links: list[dict[str, Any]]) -> Check:
    """flannel.<VNI>: a VXLAN device, up, its VNI, UDP port, local address, MTU, MAC, no learning, the /32."""
    ov, dev = spec.topology.overlay, _config(spec).device
    link = _link(links, dev)
    if link is None:
        others = [lk["ifname"] for lk in links if str(lk.get("ifname", "")).startswith("flannel.")]
        return Check(dev, False, "missing" + (f" ({', '.join(others)} instead)" if others else ""))
    assert node.block is not None
    got = {"kind": (link.get("linkinfo") or {}).get("info_kind"), "up": "UP" in link.get("flags", []),
           "id": _info(link, "id"), "port": _info(link, "port"), "local": _info(link, "local"),
           "mtu": link.get("mtu"), "address": link.get("address"), "learning": _info(link, "learning")}
    want = {"kind": "vxlan", "up": True, "id": ov.vni, "port": ov.port, "local": str(node.address), "mtu": ov.mtu,
            "address": node.vtep_mac, "learning": False}
    wrong = _differences(want, got)
    if not _addr(link, node.block.network_address, 32):
        wrong.append(f"no address {node.block.network_address}/32")
    return Check(dev, not wrong, "; ".join(wrong))


def peer_checks(spec: LabSpec, node: Node, routes: list[dict[str, Any]], neighbours: list[dict[str, Any]],
                fdb: list[dict[str, Any]]) -> list[Check]:
    """Per other node: its subnet's route (direct, or onlink through flannel.1), and for VXLAN peers
    the PERMANENT neighbour and the FDB entry flanneld writes."""
    dev, eth = _config(spec).device, spec.underlay_iface
    by_dst: dict[str, dict[str, Any]] = {}
    for route in routes:
        by_dst.setdefault(str(route.get("dst")), route)
    neigh = {(n.get("dst"), n.get("dev")): n for n in neighbours}
    entries = {(e.get("mac"), e.get("ifname")): e for e in fdb}
    checks = []
    for other in spec.topology.nodes:
        if other.name == node.name:
            continue
        assert other.block is not None
        route = by_dst.get(str(other.block))
        name = f"route {other.block}"
        if direct(spec, node, other):
            want = {"gateway": str(other.address), "dev": eth}
            checks.append(Check(name, route is not None and not _differences(want, route),
                                "missing" if route is None else "; ".join(_differences(want, route))))
            continue
        gw = str(other.block.network_address)
        want = {"gateway": gw, "dev": dev}
        wrong = ["missing"] if route is None else _differences(want, route)
        if route is not None and "onlink" not in route.get("flags", []):
            wrong.append("not onlink")
        checks.append(Check(name, not wrong, "; ".join(wrong)))
        entry = neigh.get((gw, dev))
        wrong = (["missing"] if entry is None else
                 _differences({"lladdr": other.vtep_mac}, entry)
                 + ([] if "PERMANENT" in entry.get("state", []) else [f"state {entry.get('state')} (want PERMANENT)"]))
        checks.append(Check(f"neigh {gw}", not wrong, "; ".join(wrong)))
        entry = entries.get((other.vtep_mac, dev))
        wrong = (["missing"] if entry is None else
                 _differences({"dst": str(other.address)}, entry)
                 + ([] if entry.get("state") == "permanent" else [f"state {entry.get('state')!r} (want permanent)"]))
        checks.append(Check(f"fdb {other.vtep_mac}", not wrong, "; ".join(wrong)))
    return checks


def pod_checks(spec: LabSpec, node: Node, links: list[dict[str, Any]], pod_links: list[dict[str, Any]],
               pod_routes: list[dict[str, Any]]) -> list[Check]:
    assert node.block is not None
    mtu, gw, pod = spec.pod_mtu, node.block.network_address + 1, spec.pod_on(node.name)
    checks = []
    for name, link, want_addr in ((BRIDGE, _link(links, BRIDGE), (gw, node.block.prefixlen)),
                                  (host_veth(node.name), _link(links, host_veth(node.name)), None),
                                  (f"pod {POD_IFACE}", _link(pod_links, POD_IFACE), (pod.ip, node.block.prefixlen))):
        if link is None:
            checks.append(Check(name, False, "missing"))
            continue
        wrong = _differences({"up": True, "mtu": mtu}, {"up": "UP" in link.get("flags", []), "mtu": link.get("mtu")})
        if want_addr is not None and not _addr(link, *want_addr):
            wrong.append(f"no address {want_addr[0]}/{want_addr[1]}")
        if name == host_veth(node.name) and link.get("master") != BRIDGE:
            wrong.append(f"master={link.get('master')!r} (want {BRIDGE!r})")
        checks.append(Check(name, not wrong, "; ".join(wrong)))
    default = next((r for r in pod_routes if r.get("dst") == "default"), None)
    wrong = ["missing"] if default is None else _differences({"gateway": str(gw), "dev": POD_IFACE}, default)
    checks.append(Check("pod default", not wrong, "; ".join(wrong)))
    return checks
