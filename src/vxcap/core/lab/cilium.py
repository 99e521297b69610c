"""The lab's Cilium data plane: routing-mode tunnel over VXLAN, on the kernel's collect_md VXLAN device.

Pure, like `lab.plan`. Facts from cilium/cilium (the stored source):

- pkg/defaults: routing-mode tunnel and tunnel-protocol vxlan by default, tunnel-port 8472 for
  vxlan (6081 for geneve); the device is `cilium_vxlan`, made in external (collect_md) mode: it has
  no VNI or peer of its own, each packet brings its tunnel key.
- bpf/lib/overloadable_skb.h `ctx_set_encap_info`: `key.tunnel_id = get_tunnel_id(seclabel)`
  (the VNI is the packet's *source security identity*), `key.tunnel_ttl = IPDEFTTL` (64), set with
  `BPF_F_ZERO_CSUM_TX`: the outer UDP checksum is 0. bpf/lib/encap.h calls it per packet, from
  bpf_lxc, with the sending endpoint's identity.
- pkg/mtu/mtu.go: TunnelOverheadIPv4 = 50, so pod traffic gets underlay - 50.
- pkg/identity/numericidentity.go: identities below 256 are reserved; the allocator hands out
  cluster-local ones from MinimalNumericIdentity 256 to 65535. Two pods of one node have two
  identities when their labels differ.

How the lab stands in for the BPF programs, with nothing but `ip`: per test pod, a policy-routing
table chosen by `ip rule from <pod ip>`, whose route to each other node's pod CIDR is a
lightweight-tunnel route `encap ip id <that pod's identity> dst <peer underlay> ttl 64` out of
cilium_vxlan: the kernel then sets the tunnel key bpf_lxc would (no `csum` flag: checksum 0).
A collect_md device cannot resolve neighbours (ARP has no tunnel key to travel with), so each
peer's router address has a permanent neighbour entry, as Cilium's BPF never asks ARP either.
Pods have a /32 and a default route via their node's router address (cilium_host's), whose ARP the
node answers from its lxc veth (a local address; bpf_lxc's ARP responder in Cilium).
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address
from typing import Any

from vxcap.core.errors import InputError
from vxcap.core.lab.plan import POD_IFACE, Check, LabNames, NodeDump, Step, ip
from vxcap.core.lab.spec import Cilium, LabSpec
from vxcap.core.model import Node

DEVICE = "cilium_vxlan"
HOST, NET = "cilium_host", "cilium_net"
TUNNEL_PORT = 8472
OVERHEAD = 50
TTL = 64  # IPDEFTTL, as ctx_set_encap_info sets it
# Cilium's cluster-pool IPAM default: clusterPoolIPv4PodCIDRList 10.0.0.0/8, a /24 per node.
NETWORK = "10.0.0.0/8"
FIRST_IDENTITY, LAST_IDENTITY = 256, 65535
TABLE_BASE = 2000  # the lab's per-pod tables: 2000 + the node's index


def identities(pod_names: list[str]) -> dict[str, int]:
    """Distinct cluster-local identities, fixed per pod name (a lab rebuilt gets the same ones)."""
    taken: dict[str, int] = {}
    span = LAST_IDENTITY - FIRST_IDENTITY + 1
    for name in pod_names:
        value = FIRST_IDENTITY + int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "big") % span
        while value in taken.values():
            value = FIRST_IDENTITY + (value - FIRST_IDENTITY + 1) % span
        taken[name] = value
    return taken


def cilium_description(data: dict[str, Any]) -> dict[str, Any]:
    """A lab description (the lab file's structure) with Cilium's vxlan tunnel over the same underlay:
    each node a /24 of 10.0.0.0/8, port 8472, MTU underlay - 50, each test pod its own identity."""
    nodes = data.get("nodes") or []
    if len(nodes) > 256:
        raise InputError("a Cilium lab gives each node a /24 of 10.0.0.0/16 (10.0.<n>.0/24): at most 256 nodes")
    mtu = int((data.get("underlay") or {}).get("mtu", 1500)) - OVERHEAD
    return {
        **{k: v for k, v in data.items() if k not in ("expected_wire", "dataplane")},
        "overlay": {"encapsulation": "vxlan", "cni": "cilium", "mode": "Always", "port": TUNNEL_PORT, "mtu": mtu},
        "pool": {"cidr": NETWORK},
        "nodes": [{**n, "block": f"10.0.{i}.0/24"} for i, n in enumerate(nodes)],
        "dataplane": {"overlay": "cilium",
                      "cilium": {"identities": identities([f"vxcap-{n['name']}" for n in nodes])}},
    }


def _config(spec: LabSpec) -> Cilium:
    if spec.cilium is None:
        raise InputError(f"needs a Cilium lab (--cni cilium); this one is {spec.dataplane}")
    return spec.cilium


def router_ip(node: Node) -> IPv4Address:
    """cilium_host's address: the first of the node's pod CIDR (Cilium takes one from it)."""
    assert node.block is not None
    return node.block.network_address + 1


def lxc(node: str) -> str:
    """Cilium names the host end of a pod's veth `lxc` + a hash."""
    return "lxc" + hashlib.sha1(node.encode()).hexdigest()[:8]


def table(spec: LabSpec, node: Node) -> int:
    return TABLE_BASE + [n.name for n in spec.topology.nodes].index(node.name)


def identity(spec: LabSpec, node: Node) -> int:
    """The security identity of `node`'s test pod: the VNI of everything it sends."""
    return _config(spec).identity_of(spec.pod_on(node.name).name)


def endpoints(spec: LabSpec) -> list[dict[str, Any]]:
    """The test pods as CiliumEndpoints (the fields `core.cni.cilium.endpoints` reads): a lab run
    binds each direction's VNI from these, as a cluster run does from the API's."""
    return [{"metadata": {"namespace": "default", "name": pod.name},
             "status": {"identity": {"id": _config(spec).identity_of(pod.name)},
                        "networking": {"node": str(spec.topology.node(pod.node).address),
                                       "addressing": [{"ipv4": str(pod.ip)}]}}}
            for pod in spec.pods]


def device_steps(spec: LabSpec, names: LabNames, node: Node, port: int | None = None) -> list[Step]:
    """cilium_vxlan in external mode on `port` (another than the lab's: a node whose tunnel-port
    disagrees), up, and per peer the permanent neighbour of its router address."""
    ov, ns = spec.topology.overlay, names.node(node.name)
    steps = [ip(ns, "link", "add", DEVICE, "address", node.vtep_mac, "mtu", ov.mtu, "type", "vxlan", "external",
                "dstport", ov.port if port is None else port),
             ip(ns, "link", "set", DEVICE, "up")]
    return steps + [ip(ns, "neigh", "add", router_ip(other), "lladdr", other.vtep_mac, "dev", DEVICE, "nud", "permanent")
                    for other in _others(spec, node)]


def route_steps(spec: LabSpec, names: LabNames, node: Node, vni: int | None = None, verb: str = "add") -> list[Step]:
    """The pod's table: each peer's pod CIDR through the tunnel, keyed with the pod's identity
    (or `vni`: a pod whose traffic carries another identity than its own)."""
    ns, key = names.node(node.name), identity(spec, node) if vni is None else vni
    return [ip(ns, "route", verb, other.block, "via", router_ip(other), "dev", DEVICE, "onlink",
               "encap", "ip", "id", key, "dst", other.address, "ttl", TTL, "table", table(spec, node))
            for other in _others(spec, node)]


def node_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    """After the underlay: cilium_host/cilium_net with the router address, cilium_vxlan and its peers,
    the pod's lxc veth and /32 route, its rule and its table."""
    ns, mtu, pod = names.node(node.name), spec.pod_mtu, spec.pod_on(node.name)
    veth = lxc(node.name)
    return [
        ip(ns, "link", "add", HOST, "type", "veth", "peer", "name", NET),
        ip(ns, "addr", "add", f"{router_ip(node)}/32", "dev", HOST),
        ip(ns, "link", "set", HOST, "up"),
        ip(ns, "link", "set", NET, "up"),
        *device_steps(spec, names, node),
        ip(ns, "link", "add", veth, "mtu", mtu, "type", "veth", "peer", "name", POD_IFACE, "mtu", mtu,
           "netns", names.pod(node.name)),
        ip(ns, "link", "set", veth, "up"),
        ip(ns, "route", "add", pod.ip, "dev", veth, "scope", "link"),
        ip(ns, "rule", "add", "from", pod.ip, "lookup", table(spec, node), "priority", 100),
        *route_steps(spec, names, node),
    ]


def pod_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    ns, pod, gw = names.pod(node.name), spec.pod_on(node.name), router_ip(node)
    return [
        ip(ns, "link", "set", "lo", "up"),
        ip(ns, "link", "set", POD_IFACE, "up"),
        ip(ns, "addr", "add", f"{pod.ip}/32", "dev", POD_IFACE),
        ip(ns, "route", "add", gw, "dev", POD_IFACE, "scope", "link"),
        ip(ns, "route", "add", "default", "via", gw, "dev", POD_IFACE),
    ]


def plain_steps(spec: LabSpec, names: LabNames, src: Node, dst: Node) -> list[Step]:
    """src's pod reaches dst's pods straight over the underlay (native routing's route) where the
    tunnel is promised: to dst's address on one subnet, else through src's gateway."""
    hop = dst.address if dst.address in src.subnet else spec.subnet_of(src).gateway
    return [ip(names.node(src.name), "route", "replace", dst.block, "via", hop, "dev", spec.underlay_iface,
               "table", table(spec, src))]


def _others(spec: LabSpec, node: Node) -> list[Node]:
    return [other for other in spec.topology.nodes if other.name != node.name]


# --- checks -----------------------------------------------------------------------------------


def _link(links: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((link for link in links if link.get("ifname") == name), None)


def _differences(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    return [f"{k}={got.get(k)!r} (want {v!r})" for k, v in want.items() if got.get(k) != v]


def node_checks(spec: LabSpec, names: LabNames, node: Node, dump: NodeDump) -> list[Check]:
    """cilium_vxlan (external, port, MTU, MAC), cilium_host's address, per peer its neighbour and
    the pod table's tunnel route (identity as id, the peer's underlay as dst), the pod's rule,
    lxc route and eth0."""
    ov, pod, tbl = spec.topology.overlay, spec.pod_on(node.name), str(table(spec, node))
    checks = []
    link = _link(dump.links, DEVICE)
    if link is None:
        checks.append(Check(DEVICE, False, "missing"))
    else:
        data = (link.get("linkinfo") or {}).get("info_data") or {}
        got = {"kind": (link.get("linkinfo") or {}).get("info_kind"), "external": data.get("external"),
               "port": data.get("port"), "up": "UP" in link.get("flags", []), "mtu": link.get("mtu"),
               "address": link.get("address")}
        want = {"kind": "vxlan", "external": True, "port": ov.port, "up": True, "mtu": ov.mtu,
                "address": node.vtep_mac}
        wrong = _differences(want, got)
        checks.append(Check(DEVICE, not wrong, "; ".join(wrong)))
    host = _link(dump.links, HOST)
    has_router = host is not None and any(a.get("local") == str(router_ip(node)) for a in host.get("addr_info", []))
    checks.append(Check(HOST, has_router, "" if has_router else f"no address {router_ip(node)}/32"))
    rule = next((r for r in dump.rules if r.get("src") == str(pod.ip)), None)
    wrong = ["missing"] if rule is None else _differences({"table": tbl}, rule)
    checks.append(Check(f"rule from {pod.ip}", not wrong, "; ".join(wrong)))
    # `ip -j route` prints the prefix and the tunnel's destination both as "dst" (the JSON keeps the
    # latter): a tunnel route is found by its gateway, the peer's router address.
    routes = [r for r in dump.all_routes if str(r.get("table")) == tbl]
    neighbours = {(n.get("dst"), n.get("dev")): n for n in dump.neighbours}
    for other in _others(spec, node):
        gw = str(router_ip(other))
        route = next((r for r in routes if r.get("gateway") == gw), None)
        if route is None:
            plain = next((r for r in routes if r.get("dst") == str(other.block)), None)
            detail = "missing" if plain is None else f"dev={plain.get('dev')!r} via {plain.get('gateway')} (want {DEVICE!r})"
            checks.append(Check(f"route {other.block} table {tbl}", False, detail))
        else:
            want = {"dev": DEVICE, "encap": "ip", "id": identity(spec, node), "dst": str(other.address)}
            wrong = _differences(want, route)
            checks.append(Check(f"route {other.block} table {tbl}", not wrong, "; ".join(wrong)))
        entry = neighbours.get((gw, DEVICE))
        wrong = (["missing"] if entry is None else _differences({"lladdr": other.vtep_mac}, entry)
                 + ([] if "PERMANENT" in entry.get("state", []) else [f"state {entry.get('state')} (want PERMANENT)"]))
        checks.append(Check(f"neigh {gw}", not wrong, "; ".join(wrong)))
    veth = _link(dump.links, lxc(node.name))
    wrong = ["missing"] if veth is None else _differences(
        {"up": True, "mtu": spec.pod_mtu}, {"up": "UP" in veth.get("flags", []), "mtu": veth.get("mtu")})
    checks.append(Check(lxc(node.name), not wrong, "; ".join(wrong)))
    pod_eth = _link(dump.pod_links, POD_IFACE)
    wrong = ["missing"] if pod_eth is None else _differences(
        {"up": True, "mtu": spec.pod_mtu}, {"up": "UP" in pod_eth.get("flags", []), "mtu": pod_eth.get("mtu")})
    if pod_eth is not None and not any(a.get("local") == str(pod.ip) for a in pod_eth.get("addr_info", [])):
        wrong.append(f"no address {pod.ip}/32")
    checks.append(Check(f"pod {POD_IFACE}", not wrong, "; ".join(wrong)))
    default = next((r for r in dump.pod_routes if r.get("dst") == "default"), None)
    wrong = ["missing"] if default is None else _differences({"gateway": str(router_ip(node)), "dev": POD_IFACE}, default)
    checks.append(Check("pod default", not wrong, "; ".join(wrong)))
    return checks
