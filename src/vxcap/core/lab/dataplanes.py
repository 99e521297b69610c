"""The lab's other data planes as commands and checks: VXLAN over IPv6, WireGuard, IPIP.

Pure, like `lab.plan` (whose reference VXLAN lab is untouched by this module): per node,
the `ip`/`bridge` steps that give it Calico's shape for the data plane the `LabSpec`
names, and the checks that compare what the kernel reports with that shape.

Facts from Felix (felix/config/config_params.go, felix/dataplane/linux/int_dataplane.go,
dataplanedefs): devices `vxlan-v6.calico`, `wireguard.cali`, `wg-v6.cali`, `tunl0`; vxlanVNI 4096
and vxlanPort 4789 for both families; WireGuard ports 51820 / 51821 (wireguardListeningPort[V6]);
overheads 70 (VXLAN/IPv6), 60 (WireGuard/IPv4), 80 (WireGuard/IPv6), 20 (IPIP).

WireGuard here is wireguard-go (userspace, over TUN) instead of the kernel module Calico
uses: the same wire format (UDP to port 51820 or 51821, Noise handshakes, type-4 transport data),
only the process that makes it differs. Its routes sit in the main table, where Calico
puts them in a routing table of their own behind a policy rule; what leaves eth1 is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any

from vxcap.core.lab.plan import FELIX_PROTO, POD_IFACE, Check, LabNames, Step, bridge, ip, sysctl
from vxcap.core.lab.spec import LabSpec, Node6
from vxcap.core.model import VXLAN_V6_DEVICE, Node

WIREGUARD_DEVICE = "wireguard.cali"
# Felix's wireguardInterfaceNameV6 (felix/config/config_params.go); wireguardListeningPortV6 51821.
WIREGUARD_V6_DEVICE = "wg-v6.cali"
IPIP_DEVICE = "tunl0"
# The link-local address the kernel derives (EUI-64) from the cali veths' MAC ee:ee:ee:ee:ee:ee: what
# Calico's IPv6 pods route their default through, the same on every node.
POD_GATEWAY6 = IPv6Address("fe80::ecee:eeff:feee:eeee")


# --- sysctls --------------------------------------------------------------------


def ipv6_sysctls(netns: str, forwarding: bool) -> Step:
    """IPv6 on, forwarding as a router, and no duplicate address detection: an address that
    waits a second as `tentative` would make the first probes of a fresh lab fail."""
    return sysctl(
        netns,
        "net.ipv6.conf.all.disable_ipv6=0",
        "net.ipv6.conf.default.disable_ipv6=0",
        f"net.ipv6.conf.all.forwarding={int(forwarding)}",
        "net.ipv6.conf.all.accept_dad=0",
        "net.ipv6.conf.default.accept_dad=0",
        "net.ipv6.conf.all.accept_ra=0",
        "net.ipv6.conf.default.accept_ra=0",
    )


# --- VXLAN over IPv6 -----------------------------------------------------------------


def vxlan6_peer(spec: LabSpec, node: Node6, other: Node6) -> bool:
    """CrossSubnet as for IPv4: encapsulate only towards a node outside the sender's IPv6 subnet."""
    assert spec.vxlan6 is not None
    if spec.vxlan6.mode == "Always":
        return True
    return other.address not in node.underlay.network


def _others6(spec: LabSpec, node: Node6) -> list[Node6]:
    return [n for n in spec.nodes6 if n.name != node.name]


def switch6_steps(spec: LabSpec, names: LabNames) -> list[Step]:
    ns = names.switch
    steps = []
    for i, (subnet, subnet6) in enumerate(zip(spec.topology.subnets, spec.subnets6, strict=True)):
        br = names.switch_bridge(i, subnet.vlan)
        steps.append(ip(ns, "addr", "add", f"{subnet6.gateway}/{subnet6.network.prefixlen}", "dev", br, "nodad"))
    return steps


def vxlan6_device_steps(spec: LabSpec, names: LabNames, node: Node6, mtu: int | None = None) -> list[Step]:
    """vxlan-v6.calico, its /128 tunnel address, and per VXLAN peer the VTEP route, the block route
    and the PERMANENT neighbour, as Felix's vxlan manager programs them.

    `mtu` other than the spec's makes the device without its parent (`dev eth1`): bound to eth1
    the kernel refuses any MTU above eth1's minus 70, so only an unbound device can be wrong."""
    assert spec.vxlan6 is not None
    v6, ns, dev = spec.vxlan6, names.node(node.name), VXLAN_V6_DEVICE
    parent = ("dev", spec.underlay_iface) if mtu is None else ()
    steps = [
        ip(ns, "link", "add", dev, "address", node.vtep_mac, "mtu", v6.mtu if mtu is None else mtu, "type", "vxlan",
           "id", v6.vni, "dstport", v6.port, "local", node.address, *parent, "nolearning"),
        ip(ns, "addr", "add", f"{node.vtep_ip}/128", "dev", dev, "nodad"),
        ip(ns, "link", "set", dev, "up"),
    ]
    for other in _others6(spec, node):
        if vxlan6_peer(spec, node, other):
            steps += [
                ip(ns, "route", "add", f"{other.vtep_ip}/128", "dev", dev),
                ip(ns, "route", "add", other.block, "via", other.vtep_ip, "dev", dev, "onlink"),
                ip(ns, "neigh", "add", other.vtep_ip, "lladdr", other.vtep_mac, "dev", dev, "nud", "permanent"),
            ]
    return steps


def fdb6_steps(spec: LabSpec, names: LabNames, node: Node6) -> list[Step]:
    ns = names.node(node.name)
    return [bridge(ns, "fdb", "add", other.vtep_mac, "dev", VXLAN_V6_DEVICE, "dst", other.address, "self", "permanent")
            for other in _others6(spec, node) if vxlan6_peer(spec, node, other)]


def node6_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    """A node's IPv6 side, after its eth1 and cali veth exist."""
    n6 = spec.node6(node.name)
    ns, eth, cali = names.node(node.name), spec.underlay_iface, names.cali(node.name)
    subnet6 = spec.subnet6_of(n6)
    steps = [ip(ns, "addr", "add", n6.underlay, "dev", eth, "nodad")]
    steps += [ip(ns, "route", "add", other.network, "via", subnet6.gateway, "dev", eth)
              for other in spec.subnets6 if other.network != subnet6.network]
    vxlan = spec.ipv6_encap == "vxlan"
    if vxlan:  # WireGuard's device and routes come after wireguard-go has made wg-v6.cali
        steps += vxlan6_device_steps(spec, names, n6)
        steps += [ip(ns, "route", "add", other.block, "via", other.address, "dev", eth, "onlink", "proto", FELIX_PROTO)
                  for other in _others6(spec, n6) if not vxlan6_peer(spec, n6, other)]
    steps += [
        ip(ns, "route", "add", "blackhole", n6.block, "proto", FELIX_PROTO),
        ip(ns, "route", "add", f"{n6.pod_ip}/128", "dev", cali),
    ]
    return steps + (fdb6_steps(spec, names, n6) if vxlan else [])


def pod6_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    n6, ns = spec.node6(node.name), names.pod(node.name)
    return [
        ip(ns, "addr", "add", f"{n6.pod_ip}/128", "dev", POD_IFACE, "nodad"),
        # `::/0`, not `default`: the prefix tells `ip` the family, and `-6` cannot go into a batch line.
        ip(ns, "route", "add", "::/0", "via", POD_GATEWAY6, "dev", POD_IFACE),
    ]


# --- WireGuard (after wireguard-go has made the device) --------------------------------


def wireguard_ip(node: Node) -> str:
    """Calico's IPv4WireguardInterfaceAddr comes from the node's block, like the VTEP address."""
    assert node.block is not None
    return str(node.block.network_address)


def wireguard_link_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    """Once wireguard-go has created wireguard.cali in the node: its MTU, address, and the routes
    that send every other node's pods through it (Calico encrypts same-subnet traffic too)."""
    assert spec.wireguard is not None
    ns, dev = names.node(node.name), WIREGUARD_DEVICE
    steps = [
        ip(ns, "link", "set", dev, "mtu", spec.wireguard.mtu),
        ip(ns, "addr", "add", f"{wireguard_ip(node)}/32", "dev", dev),
        ip(ns, "link", "set", dev, "up"),
    ]
    steps += [ip(ns, "route", "add", other.block, "dev", dev, "scope", "link", "proto", FELIX_PROTO)
              for other in spec.topology.nodes if other.name != node.name]
    return steps


@dataclass(frozen=True, slots=True)
class WireguardPeer:
    public_key: str
    endpoint: str  # address:port
    allowed_ips: tuple[str, ...]


def wg_set_argv(spec: LabSpec, node: Node, private_key_path: str, public_keys: dict[str, str]) -> tuple[str, ...]:
    """`wg set wireguard.cali ...` for one node: its key and port, every other node a peer at its
    underlay address whose allowed IPs are its pod block and its interface address."""
    assert spec.wireguard is not None
    argv = ["wg", "set", WIREGUARD_DEVICE, "listen-port", str(spec.wireguard.port), "private-key", private_key_path]
    for other in spec.topology.nodes:
        if other.name == node.name:
            continue
        argv += ["peer", public_keys[other.name], "endpoint", f"{other.address}:{spec.wireguard.port}",
                 "allowed-ips", f"{other.block},{wireguard_ip(other)}/32"]
    return tuple(argv)


def wireguard6_ip(node: Node6) -> str:
    """The IPv6 twin of IPv4WireguardInterfaceAddr: the first address of the node's IPv6 block."""
    return str(node.block.network_address)


def wireguard6_link_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    """wg-v6.cali once wireguard-go has made it: MTU 1420, its /128, every other node's IPv6 block through it."""
    assert spec.wireguard6 is not None
    n6, ns, dev = spec.node6(node.name), names.node(node.name), WIREGUARD_V6_DEVICE
    steps = [
        ip(ns, "link", "set", dev, "mtu", spec.wireguard6.mtu),
        ip(ns, "addr", "add", f"{wireguard6_ip(n6)}/128", "dev", dev, "nodad"),
        ip(ns, "link", "set", dev, "up"),
    ]
    steps += [ip(ns, "route", "add", other.block, "dev", dev, "proto", FELIX_PROTO) for other in _others6(spec, n6)]
    return steps


def wg6_set_argv(spec: LabSpec, node: Node, private_key_path: str, public_keys: dict[str, str]) -> tuple[str, ...]:
    """`wg set wg-v6.cali ...`: port 51821, each other node a peer at [its IPv6 underlay address]:51821
    allowed its IPv6 block and its wg-v6.cali address."""
    assert spec.wireguard6 is not None
    port = spec.wireguard6.port
    argv = ["wg", "set", WIREGUARD_V6_DEVICE, "listen-port", str(port), "private-key", private_key_path]
    for other in _others6(spec, spec.node6(node.name)):
        argv += ["peer", public_keys[other.name], "endpoint", f"[{other.address}]:{port}",
                 "allowed-ips", f"{other.block},{wireguard6_ip(other)}/128"]
    return tuple(argv)


def parse_wg_dump(text: str) -> dict[str, Any]:
    """`wg show wireguard.cali dump`: the interface line (private key, public key, port, fwmark),
    then one line per peer (key, preshared, endpoint, allowed ips, handshake, rx, tx, keepalive)."""
    lines = [line.split("\t") for line in text.strip().splitlines() if line.strip()]
    if not lines or len(lines[0]) < 3:
        return {}
    head = lines[0]
    peers = [{"public_key": p[0], "endpoint": p[2], "allowed_ips": sorted(p[3].split(",")) if p[3] != "(none)" else []}
             for p in lines[1:] if len(p) >= 4]
    return {"public_key": head[1], "listen_port": int(head[2]) if head[2].isdigit() else None, "peers": peers}


# --- IPIP ------------------------------------------------------------------------------------


def ipip_peer(spec: LabSpec, node: Node, other: Node) -> bool:
    assert spec.ipip is not None
    return spec.ipip.mode == "Always" or other.address not in node.subnet


def ipip_forwarder_args(node: Node) -> tuple[str, ...]:
    """The userspace tunl0's arguments (adapters.ipip_tun) in `node`: its underlay address is the outer source."""
    return ("--local", str(node.address))


def ipip_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    """tunl0 as Felix sets it, once it exists (the fallback device of the ipip module, or the userspace
    forwarder's TUN device where the kernel has no module): its MTU, the tunnel address from the block,
    and each IPIP peer's block via its underlay address, the next hop tunl0 takes as outer destination."""
    assert spec.ipip is not None and node.block is not None
    ns = names.node(node.name)
    steps = [
        ip(ns, "link", "set", IPIP_DEVICE, "mtu", spec.ipip.mtu, "up"),
        ip(ns, "addr", "add", f"{node.block.network_address}/32", "dev", IPIP_DEVICE),
    ]
    for other in spec.topology.nodes:
        if other.name != node.name and ipip_peer(spec, node, other):
            steps.append(ip(ns, "route", "add", other.block, "via", other.address, "dev", IPIP_DEVICE, "onlink",
                            "proto", FELIX_PROTO))
    return steps


# --- checks -----------------------------------------------------------------------------------


def _link(links: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((link for link in links if link.get("ifname") == name), None)


def _addr(link: dict[str, Any], family: str, address: object, prefixlen: int) -> bool:
    return any(a.get("family") == family and a.get("local") == str(address) and a.get("prefixlen") == prefixlen
               for a in link.get("addr_info", []))


def _up(link: dict[str, Any]) -> bool:
    return "UP" in link.get("flags", [])


def _info(link: dict[str, Any], key: str) -> Any:
    return ((link.get("linkinfo") or {}).get("info_data") or {}).get(key)


def _route6(routes: list[dict[str, Any]], dst: object) -> dict[str, Any] | None:
    text = str(dst)
    bare = text.removesuffix("/128")
    return next((r for r in routes if r.get("dst") in (text, bare)), None)


def _route_check(name: str, route: dict[str, Any] | None, want: dict[str, Any]) -> Check:
    if route is None:
        return Check(name, False, "missing")
    wrong = [f"{k}={route.get(k)!r} (want {v!r})" for k, v in want.items() if route.get(k) != v]
    return Check(name, not wrong, "; ".join(wrong))


def ipv6_checks(spec: LabSpec, names: LabNames, node_name: str, links: list[dict[str, Any]],
                routes6: list[dict[str, Any]], fdb6: list[dict[str, Any]], pod_links: list[dict[str, Any]],
                pod_routes6: list[dict[str, Any]]) -> list[Check]:
    """A node's IPv6 data plane (vxlan6 / dual / wireguard6), part by part; wireguard6's device and
    peers are `wireguard6_checks`'."""
    n6 = spec.node6(node_name)
    eth = _link(links, spec.underlay_iface)
    checks = [Check(f"{spec.underlay_iface} IPv6", eth is not None and _addr(eth, "inet6", n6.address, n6.underlay.network.prefixlen),
                    "" if eth is not None and _addr(eth, "inet6", n6.address, n6.underlay.network.prefixlen)
                    else f"no address {n6.underlay}")]
    vx = _link(links, VXLAN_V6_DEVICE)
    if spec.ipv6_encap != "vxlan":
        pass
    elif vx is None:
        checks.append(Check(VXLAN_V6_DEVICE, False, "missing"))
    else:
        assert spec.vxlan6 is not None
        want = {"up": True, "id": spec.vxlan6.vni, "port": spec.vxlan6.port, "local": str(n6.address),
                "mtu": spec.vxlan6.mtu, "address": n6.vtep_mac}
        got = {"up": _up(vx), "id": _info(vx, "id"), "port": _info(vx, "port"), "local": _info(vx, "local6"),
               "mtu": vx.get("mtu"), "address": vx.get("address")}
        wrong = [f"{k}={got[k]!r} (want {v!r})" for k, v in want.items() if got[k] != v]
        if not wrong and not _addr(vx, "inet6", n6.vtep_ip, 128):
            wrong.append(f"no address {n6.vtep_ip}/128")
        checks.append(Check(VXLAN_V6_DEVICE, not wrong, "; ".join(wrong)))
    subnet6 = spec.subnet6_of(n6)
    for other in spec.subnets6:
        if other.network != subnet6.network:
            checks.append(_route_check(f"route {other.network}", _route6(routes6, other.network),
                                       {"gateway": str(subnet6.gateway), "dev": spec.underlay_iface}))
    fdb = {(e.get("mac"), e.get("dst")) for e in fdb6}
    for other in _others6(spec, n6) if spec.ipv6_encap == "vxlan" else ():
        if vxlan6_peer(spec, n6, other):
            checks.append(_route_check(f"route {other.block}", _route6(routes6, other.block),
                                       {"gateway": str(other.vtep_ip), "dev": VXLAN_V6_DEVICE}))
            found = (other.vtep_mac, str(other.address)) in fdb
            checks.append(Check(f"fdb6 {other.vtep_mac}", found, "" if found else f"no entry to {other.address}"))
        else:
            checks.append(_route_check(f"route {other.block}", _route6(routes6, other.block),
                                       {"gateway": str(other.address), "dev": spec.underlay_iface}))
    checks.append(_route_check(f"blackhole {n6.block}", _route6(routes6, n6.block), {"type": "blackhole"}))
    checks.append(_route_check(f"route {n6.pod_ip}", _route6(routes6, f"{n6.pod_ip}/128"), {"dev": names.cali(node_name)}))
    pod_eth = _link(pod_links, POD_IFACE)
    ok = pod_eth is not None and _addr(pod_eth, "inet6", n6.pod_ip, 128)
    checks.append(Check(f"pod {POD_IFACE} IPv6", ok, "" if ok else f"no address {n6.pod_ip}/128"))
    checks.append(_route_check("pod default IPv6", _route6(pod_routes6, "default"),
                               {"gateway": str(POD_GATEWAY6), "dev": POD_IFACE}))
    return checks


def wireguard_checks(spec: LabSpec, node_name: str, links: list[dict[str, Any]], routes: list[dict[str, Any]],
                     wg: dict[str, Any] | None, public_keys: dict[str, str] | None = None) -> list[Check]:
    """wireguard.cali up with its MTU and address, a route per other node's block through it, and
    wireguard-go's own view (`wg show dump`): the port, and each other node a peer at its underlay
    address allowed its block. `public_keys` (node -> key, read from the other nodes' devices) also
    checks each peer's key."""
    assert spec.wireguard is not None
    node = spec.topology.node(node_name)
    dev = _link(links, WIREGUARD_DEVICE)
    if dev is None:
        return [Check(WIREGUARD_DEVICE, False, "missing (is wireguard-go running in the node?)")]
    wrong = []
    if not _up(dev):
        wrong.append("down")
    if dev.get("mtu") != spec.wireguard.mtu:
        wrong.append(f"mtu={dev.get('mtu')!r} (want {spec.wireguard.mtu})")
    if not _addr(dev, "inet", wireguard_ip(node), 32):
        wrong.append(f"no address {wireguard_ip(node)}/32")
    checks = [Check(WIREGUARD_DEVICE, not wrong, "; ".join(wrong))]
    by_dst = {r.get("dst"): r for r in routes}
    others = [o for o in spec.topology.nodes if o.name != node.name]
    for other in others:
        checks.append(_route_check(f"route {other.block}", by_dst.get(str(other.block)), {"dev": WIREGUARD_DEVICE}))
    if not wg:
        return checks + [Check("wg", False, "wireguard-go does not answer (no `wg show` output)")]
    checks.append(Check("wg listen-port", wg.get("listen_port") == spec.wireguard.port,
                        f"{wg.get('listen_port')!r} (want {spec.wireguard.port})"
                        if wg.get("listen_port") != spec.wireguard.port else ""))
    peers = {p["endpoint"]: p for p in wg.get("peers", [])}
    for other in others:
        endpoint = f"{other.address}:{spec.wireguard.port}"
        peer = peers.get(endpoint)
        want_ips = sorted([str(other.block), f"{wireguard_ip(other)}/32"])
        if peer is None:
            checks.append(Check(f"wg peer {other.name}", False, f"no peer at {endpoint}"))
            continue
        problems = []
        if peer["allowed_ips"] != want_ips:
            problems.append(f"allowed-ips {','.join(peer['allowed_ips'])} (want {','.join(want_ips)})")
        if public_keys and public_keys.get(other.name) and peer["public_key"] != public_keys[other.name]:
            problems.append(f"key {peer['public_key']} is not {other.name}'s")
        checks.append(Check(f"wg peer {other.name}", not problems, "; ".join(problems)))
    return checks


def ipip_checks(spec: LabSpec, node_name: str, links: list[dict[str, Any]], routes: list[dict[str, Any]]) -> list[Check]:
    assert spec.ipip is not None
    node = spec.topology.node(node_name)
    assert node.block is not None
    dev = _link(links, IPIP_DEVICE)
    if dev is None:
        return [Check(IPIP_DEVICE, False, "missing (is the ipip module loaded, or the userspace forwarder running?)")]
    wrong = [] if _up(dev) else ["down"]
    if dev.get("mtu") != spec.ipip.mtu:
        wrong.append(f"mtu={dev.get('mtu')!r} (want {spec.ipip.mtu})")
    if not _addr(dev, "inet", node.block.network_address, 32):
        wrong.append(f"no address {node.block.network_address}/32")
    checks = [Check(IPIP_DEVICE, not wrong, "; ".join(wrong))]
    by_dst = {r.get("dst"): r for r in routes}
    for other in spec.topology.nodes:
        if other.name == node.name:
            continue
        dev_name = IPIP_DEVICE if ipip_peer(spec, node, other) else spec.underlay_iface
        checks.append(_route_check(f"route {other.block}", by_dst.get(str(other.block)),
                                   {"gateway": str(other.address), "dev": dev_name}))
    return checks


def wireguard6_checks(spec: LabSpec, node_name: str, links: list[dict[str, Any]], routes6: list[dict[str, Any]],
                      wg: dict[str, Any] | None, public_keys: dict[str, str] | None = None) -> list[Check]:
    """wg-v6.cali as `wireguard_checks` checks wireguard.cali: up, MTU, its /128, a route per other
    node's IPv6 block through it, and wireguard-go's port and peers (endpoint, allowed IPs, key)."""
    assert spec.wireguard6 is not None
    n6 = spec.node6(node_name)
    dev = _link(links, WIREGUARD_V6_DEVICE)
    if dev is None:
        return [Check(WIREGUARD_V6_DEVICE, False, "missing (is wireguard-go running in the node?)")]
    wrong = [] if _up(dev) else ["down"]
    if dev.get("mtu") != spec.wireguard6.mtu:
        wrong.append(f"mtu={dev.get('mtu')!r} (want {spec.wireguard6.mtu})")
    if not _addr(dev, "inet6", wireguard6_ip(n6), 128):
        wrong.append(f"no address {wireguard6_ip(n6)}/128")
    checks = [Check(WIREGUARD_V6_DEVICE, not wrong, "; ".join(wrong))]
    others = _others6(spec, n6)
    for other in others:
        checks.append(_route_check(f"route {other.block}", _route6(routes6, other.block), {"dev": WIREGUARD_V6_DEVICE}))
    if not wg:
        return checks + [Check("wg6", False, "wireguard-go does not answer (no `wg show` output)")]
    port = spec.wireguard6.port
    checks.append(Check("wg6 listen-port", wg.get("listen_port") == port,
                        "" if wg.get("listen_port") == port else f"{wg.get('listen_port')!r} (want {port})"))
    peers = {p["endpoint"]: p for p in wg.get("peers", [])}
    for other in others:
        endpoint = f"[{other.address}]:{port}"
        peer = peers.get(endpoint)
        if peer is None:
            checks.append(Check(f"wg6 peer {other.name}", False, f"no peer at {endpoint}"))
            continue
        want_ips = sorted([str(other.block), f"{wireguard6_ip(other)}/128"])
        problems = []
        if peer["allowed_ips"] != want_ips:
            problems.append(f"allowed-ips {','.join(peer['allowed_ips'])} (want {','.join(want_ips)})")
        if public_keys and public_keys.get(other.name) and peer["public_key"] != public_keys[other.name]:
            problems.append(f"key {peer['public_key']} is not {other.name}'s")
        checks.append(Check(f"wg6 peer {other.name}", not problems, "; ".join(problems)))
    return checks
