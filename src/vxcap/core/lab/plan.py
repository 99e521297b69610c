"""The embedded lab as commands: which `ip`/`bridge`/`sysctl` runs in which namespace.

Pure. `lab_steps` turns a `LabSpec` into the ordered commands that rebuild the
reference topology in network namespaces with the kernel's own VXLAN device,
in Calico's shape (the routes, neighbours and FDB entries felix programs, as
the lab lesson shows them). `node_checks` compares what the kernel reports
(`ip -j`/`bridge -j` output, already parsed) with that shape, so the adapter
only runs commands and reads JSON.

The lab is sealed: no namespace gets a default route except the pods, whose
default points at their own node, and no node or switch has one. Nothing is
attached to the host's interfaces.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from vxcap.core.errors import InputError
from vxcap.core.lab.spec import LabSpec
from vxcap.core.model import VXLAN_DEVICE, VXLAN_V6_DEVICE, Node, Wire
from vxcap.core.names import IFNAMSIZ
from vxcap.core.plan import expected_wire

POD_IFACE = "eth0"
# Calico gives every pod this link-local gateway and answers its ARP by proxy.
POD_GATEWAY = IPv4Address("169.254.1.1")
# Calico sets every cali veth to this MAC: the pod's gateway looks the same on every node.
CALI_MAC = "ee:ee:ee:ee:ee:ee"
# felix marks the routes it owns with protocol 80.
FELIX_PROTO = "80"
# See `_node_steps`: the device that makes proxy ARP answer without a default route.
NOWHERE_IFACE = "vxcap.nowhere"
# The longest interface name the kernel takes (its buffer, IFNAMSIZ, holds the NUL too).
LONGEST_IFNAME = IFNAMSIZ - 1

_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,11}$")


@dataclass(frozen=True, slots=True)
class Step:
    """One command; `netns` None runs it in the caller's namespace (only `ip netns ...`)."""

    netns: str | None
    argv: tuple[str, ...]


def ip(netns: str | None, *args: object) -> Step:
    return Step(netns, ("ip", *map(str, args)))


def bridge(netns: str, *args: object) -> Step:
    return Step(netns, ("bridge", *map(str, args)))


def sysctl(netns: str, *assignments: str) -> Step:
    # -e: a kernel built without IPv6 has no net.ipv6 keys, and that is fine for the lab.
    return Step(netns, ("sysctl", "-q", "-e", "-w", *assignments))


@dataclass(frozen=True, slots=True)
class LabNames:
    """How the lab names its namespaces and interfaces, from a prefix.

    `adopted` maps node name -> an existing namespace used as that node
    (e.g. a Docker container's, attached with `ip netns attach`).
    """

    prefix: str
    cluster: str
    adopted: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.prefix):
            raise InputError(f"lab prefix {self.prefix!r}: expected 1-12 lowercase letters/digits, starting with a letter")

    @classmethod
    def for_spec(cls, spec: LabSpec, prefix: str, adopt: dict[str, str] | None = None) -> LabNames:
        adopted = tuple(sorted((adopt or {}).items()))
        for node, _ns in adopted:
            spec.topology.node(node)  # unknown names are the user's mistake, said plainly
        return cls(prefix=prefix, cluster=spec.cluster, adopted=adopted)

    @property
    def switch(self) -> str:
        return f"{self.prefix}-{self.cluster}-switch"

    def node(self, node: str) -> str:
        return dict(self.adopted).get(node) or f"{self.prefix}-{node}"

    def is_adopted(self, node: str) -> bool:
        return node in dict(self.adopted)

    def pod(self, node: str) -> str:
        return f"{self.prefix}-{node}-pod"

    def owned(self, spec: LabSpec) -> tuple[str, ...]:
        """The namespaces the lab creates (and so may delete): never an adopted one."""
        names = [self.switch]
        names += [self.node(n.name) for n in spec.topology.nodes if not self.is_adopted(n.name)]
        names += [self.pod(n.name) for n in spec.topology.nodes]
        return tuple(names)

    @staticmethod
    def cali(node: str) -> str:
        """Calico names the host end of a pod's veth `cali` + 11 hex of a hash."""
        return "cali" + hashlib.sha1(node.encode()).hexdigest()[:11]

    @staticmethod
    def switch_port(index: int) -> str:
        return f"et{index + 1}"  # the Arista's Et1..Et4

    @staticmethod
    def switch_bridge(index: int, vlan: int | None) -> str:
        return f"vlan{vlan}" if vlan is not None else f"subnet{index}"


def _vxlan_peer(spec: LabSpec, node: Node, other: Node) -> bool:
    return expected_wire(spec.topology.overlay, node, other)[0] is Wire.VXLAN


def _others(spec: LabSpec, node: Node) -> list[Node]:
    return [n for n in spec.topology.nodes if n.name != node.name]


def _sysctl_defaults(netns: str, forwarding: bool) -> Step:
    # A new namespace inherits the host's IPv4 defaults (rp_filter, ...): pin the
    # ones that decide whether the lab forwards, so the host cannot change the
    # outcome. IPv6 off keeps router solicitations and MLD off the underlay.
    return sysctl(
        netns,
        f"net.ipv4.ip_forward={int(forwarding)}",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
        "net.ipv4.conf.all.ignore_routes_with_linkdown=0",
        "net.ipv4.conf.default.ignore_routes_with_linkdown=0",
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
    )


def lab_mac(*parts: str) -> str:
    """A fixed, locally administered unicast MAC for a lab interface (static neighbours need to know it)."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x0a, *digest[:5]))


def _mac_option(spec: LabSpec, *parts: str) -> tuple[str, ...]:
    return ("address", lab_mac(*parts)) if spec.static_neighbours else ()


def _permanent(netns: str, address: object, mac: str, dev: str) -> Step:
    return ip(netns, "neigh", "replace", address, "lladdr", mac, "dev", dev, "nud", "permanent")


def _switch_steps(spec: LabSpec, names: LabNames) -> list[Step]:
    ns, mtu = names.switch, spec.underlay_mtu
    steps = [ip(ns, "link", "set", "lo", "up")]
    bridges = {}
    for i, subnet in enumerate(spec.topology.subnets):
        br = bridges[subnet.network] = names.switch_bridge(i, subnet.vlan)
        steps += [
            ip(ns, "link", "add", br, *_mac_option(spec, names.switch, br), "mtu", mtu, "type", "bridge"),
            ip(ns, "link", "set", br, "up"),
            # an IPv6-only lab's switch has its IPv6 gateways alone (dataplanes.switch6_steps)
            *([ip(ns, "addr", "add", f"{subnet.gateway}/{subnet.network.prefixlen}", "dev", br)] if spec.has_ipv4 else []),
        ]
    for i, node in enumerate(spec.topology.nodes):
        port = names.switch_port(i)
        steps += [
            ip(ns, "link", "add", port, "mtu", mtu, "master", bridges[spec.subnet_of(node).network],
               "type", "veth", "peer", "name", spec.underlay_iface, *_mac_option(spec, node.name, spec.underlay_iface),
               "mtu", mtu, "netns", names.node(node.name)),
            ip(ns, "link", "set", port, "up"),
        ]
    if spec.static_neighbours:
        steps += [_permanent(ns, node.address, lab_mac(node.name, spec.underlay_iface),
                             bridges[spec.subnet_of(node).network]) for node in spec.topology.nodes]
    return steps


def _underlay_neighbours(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    """What ARP would learn on eth1: the gateway (the switch's SVI) and the nodes of its own subnet."""
    if not spec.static_neighbours:
        return []
    ns, eth = names.node(node.name), spec.underlay_iface
    subnet = spec.subnet_of(node)
    index = next(i for i, s in enumerate(spec.topology.subnets) if s.network == subnet.network)
    steps = [_permanent(ns, subnet.gateway, lab_mac(names.switch, names.switch_bridge(index, subnet.vlan)), eth)]
    steps += [_permanent(ns, other.address, lab_mac(other.name, eth), eth)
              for other in _others(spec, node) if other.address in subnet.network]
    return steps


def vxlan_steps(spec: LabSpec, names: LabNames, node: Node, vni: int | None = None,
                port: int | None = None) -> list[Step]:
    """vxlan.calico and everything that hangs off it: its address, and per VXLAN peer
    the route, the VTEP's host route and PERMANENT neighbour (ip) — the FDB is `fdb_steps`."""
    ov, ns, dev = spec.topology.overlay, names.node(node.name), VXLAN_DEVICE
    steps = [
        ip(ns, "link", "add", dev, "address", node.vtep_mac, "mtu", ov.mtu, "type", "vxlan",
           "id", ov.vni if vni is None else vni, "dstport", ov.port if port is None else port, "local", node.address,
           "dev", spec.underlay_iface, "nolearning"),
        ip(ns, "addr", "add", f"{node.vtep_ip}/32", "dev", dev),
        ip(ns, "link", "set", dev, "up"),
    ]
    for other in _others(spec, node):
        if _vxlan_peer(spec, node, other):
            steps += [
                # The VTEP host route is what the lesson's `ip route` shows next to the block route.
                ip(ns, "route", "add", other.vtep_ip, "dev", dev, "scope", "link"),
                ip(ns, "route", "add", other.block, "via", other.vtep_ip, "dev", dev, "onlink"),
                ip(ns, "neigh", "add", other.vtep_ip, "lladdr", other.vtep_mac, "dev", dev, "nud", "permanent"),
            ]
    return steps


def fdb_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    ns = names.node(node.name)
    return [
        bridge(ns, "fdb", "add", other.vtep_mac, "dev", VXLAN_DEVICE, "dst", other.address, "self", "permanent")
        for other in _others(spec, node)
        if _vxlan_peer(spec, node, other)
    ]


def underlay_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    """A node's IPv4 underlay as for Calico: eth1 with its address, its neighbours, the other subnets via the SVI."""
    ns, eth = names.node(node.name), spec.underlay_iface
    subnet = spec.subnet_of(node)
    steps = [ip(ns, "link", "set", "lo", "up"), ip(ns, "addr", "add", node.underlay, "dev", eth),
             ip(ns, "link", "set", eth, "up")]
    steps += _underlay_neighbours(spec, names, node)
    return steps + [ip(ns, "route", "add", other.network, "via", subnet.gateway, "dev", eth)
                    for other in spec.topology.subnets if other.network != subnet.network]


def _flannel_node_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    """A Flannel node: the underlay as for Calico, then flannel.1 and its peers, then cni0 and the pod's veth."""
    from vxcap.core.lab import flannel

    return underlay_steps(spec, names, node) + flannel.encap_steps(spec, names, node) + flannel.pod_attach_steps(
        spec, names, node)


def _node_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    if spec.ipv4_encap == "flannel":
        return _flannel_node_steps(spec, names, node)
    if spec.ipv4_encap == "cilium":
        from vxcap.core.lab import cilium

        return underlay_steps(spec, names, node) + cilium.node_steps(spec, names, node)
    if spec.ipv4_encap == "antrea":  # the rest once its OVS runs (adapters.lab, lab.antrea.ovs_steps)
        from vxcap.core.lab import antrea

        return antrea.kernel_steps(spec, names, node)
    ns, eth = names.node(node.name), spec.underlay_iface
    subnet = spec.subnet_of(node)
    cali, pod = names.cali(node.name), spec.pod_on(node.name)
    mtu = spec.pod_mtu
    v4 = spec.has_ipv4
    steps = [
        ip(ns, "link", "set", "lo", "up"),
        *([ip(ns, "addr", "add", node.underlay, "dev", eth)] if v4 else []),
        ip(ns, "link", "set", eth, "up"),
    ]
    if v4:
        steps += _underlay_neighbours(spec, names, node)
        # What the containerlab exec lines do: other lab subnets via this subnet's SVI.
        for other in spec.topology.subnets:
            if other.network != subnet.network:
                steps.append(ip(ns, "route", "add", other.network, "via", subnet.gateway, "dev", eth))
        steps += _ipv4_encap_steps(spec, names, node)
        steps.append(ip(ns, "route", "add", "blackhole", node.block, "proto", FELIX_PROTO))
        # Proxy ARP answers for 169.254.1.1 only when the node has a unicast route to it
        # out of another interface; on a real node the default route is that route. The
        # lab has no default route (it must stay sealed), so a port-less bridge carries a
        # /32 for 169.254.1.1: it has no ports, so whatever is sent there goes nowhere.
        # (A dummy device would do, but not every kernel has one; every lab needs bridges.)
        steps += [
            ip(ns, "link", "add", NOWHERE_IFACE, "type", "bridge"),
            ip(ns, "link", "set", NOWHERE_IFACE, "up"),
            ip(ns, "route", "add", f"{POD_GATEWAY}/32", "dev", NOWHERE_IFACE),
        ]
    steps += [
        ip(ns, "link", "add", cali, "address", CALI_MAC, "mtu", mtu, "type", "veth",
           "peer", "name", POD_IFACE, *_mac_option(spec, names.pod(node.name), POD_IFACE), "mtu", mtu,
           "netns", names.pod(node.name)),
        ip(ns, "link", "set", cali, "up"),
    ]
    if v4:
        steps.append(ip(ns, "route", "add", pod.ip, "dev", cali, "scope", "link"))
        if spec.static_neighbours:
            steps.append(_permanent(ns, pod.ip, lab_mac(names.pod(node.name), POD_IFACE), cali))
    return steps


def _ipv4_encap_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    """Between the subnet routes and the blackhole: what carries IPv4 pod traffic to other nodes.
    WireGuard's and tunl0's come later (`dataplanes.wireguard_link_steps`, `dataplanes.ipip_steps`):
    wireguard-go, or the kernel's ipip module or the userspace forwarder, must make the device first."""
    ns, eth = names.node(node.name), spec.underlay_iface
    if spec.ipv4_encap == "vxlan":
        steps = vxlan_steps(spec, names, node)
        for other in _others(spec, node):
            if not _vxlan_peer(spec, node, other):
                steps.append(ip(ns, "route", "add", other.block, "via", other.address, "dev", eth, "onlink", "proto", FELIX_PROTO))
        return steps
    if spec.ipv4_encap == "ipip":
        from vxcap.core.lab import dataplanes  # it builds on this module's helpers

        steps = []
        for other in _others(spec, node):
            if not dataplanes.ipip_peer(spec, node, other):
                steps.append(ip(ns, "route", "add", other.block, "via", other.address, "dev", eth, "onlink", "proto", FELIX_PROTO))
        return steps
    return []


def _cali_sysctls(names: LabNames, node: Node) -> Step:
    cali = names.cali(node.name)
    # proxy_delay 0 as Calico sets it: the kernel would otherwise hold each proxied reply up to 0.8 s.
    return Step(names.node(node.name), ("sysctl", "-q", "-w",
                                        f"net.ipv4.conf.{cali}.proxy_arp=1",
                                        f"net.ipv4.neigh.{cali}.proxy_delay=0"))


def _pod_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    if spec.ipv4_encap == "flannel":
        from vxcap.core.lab import flannel

        return flannel.pod_steps(spec, names, node)
    if spec.ipv4_encap == "cilium":
        from vxcap.core.lab import cilium

        return cilium.pod_steps(spec, names, node)
    if spec.ipv4_encap == "antrea":
        from vxcap.core.lab import antrea

        return antrea.pod_steps(spec, names, node)
    ns, pod = names.pod(node.name), spec.pod_on(node.name)
    steps = [
        ip(ns, "link", "set", "lo", "up"),
        ip(ns, "link", "set", POD_IFACE, "up"),
    ]
    if spec.has_ipv4:
        steps += [
            ip(ns, "addr", "add", f"{pod.ip}/32", "dev", POD_IFACE),
            ip(ns, "route", "add", POD_GATEWAY, "dev", POD_IFACE, "scope", "link"),
            # The pod's default leads to its node, which has none: nothing leaves the lab.
            ip(ns, "route", "add", "default", "via", POD_GATEWAY, "dev", POD_IFACE),
            *([_permanent(ns, POD_GATEWAY, CALI_MAC, POD_IFACE)] if spec.static_neighbours else []),
        ]
    return steps


def lab_steps(spec: LabSpec, names: LabNames) -> list[Step]:
    """Every command that builds the lab from nothing, in an order that works.

    Commands for one namespace and one tool are kept together so the adapter
    can run each such group as one batch. A WireGuard lab's device comes from
    a process (wireguard-go), so its steps are the adapter's to run after this.
    """
    from vxcap.core.lab import dataplanes  # it builds on this module's helpers

    _check_spec(spec)
    nodes = spec.topology.nodes
    steps = [ip(None, "netns", "add", ns) for ns in names.owned(spec)]
    steps.append(_sysctl_defaults(names.switch, forwarding=True))
    for node in nodes:
        if names.is_adopted(node.name):
            # Not ours: change only what a node must have, nothing the container relies on.
            steps.append(sysctl(names.node(node.name), "net.ipv4.ip_forward=1"))
        else:
            steps.append(_sysctl_defaults(names.node(node.name), forwarding=True))
    if spec.has_ipv6:
        # Before any interface exists: new interfaces take the `default` values.
        steps.append(dataplanes.ipv6_sysctls(names.switch, forwarding=True))
        steps += [dataplanes.ipv6_sysctls(names.node(n.name), forwarding=True) for n in nodes]
        steps += [dataplanes.ipv6_sysctls(names.pod(n.name), forwarding=False) for n in nodes]
    steps += _switch_steps(spec, names)
    if spec.has_ipv6:
        steps += dataplanes.switch6_steps(spec, names)
    for node in nodes:
        steps += _node_steps(spec, names, node)
        if spec.ipv4_encap not in ("flannel", "cilium", "antrea"):  # their pods reach a gateway of their own, no proxy ARP
            steps.append(_cali_sysctls(names, node))
        if spec.ipv4_encap == "vxlan":
            steps += fdb_steps(spec, names, node)
        if spec.has_ipv6:
            steps += dataplanes.node6_steps(spec, names, node)
    for node in nodes:
        steps += _pod_steps(spec, names, node)
        if spec.has_ipv6:
            steps += dataplanes.pod6_steps(spec, names, node)
    return steps


def adopted_teardown_steps(spec: LabSpec, names: LabNames) -> list[Step]:
    """What `down` undoes in an adopted namespace: only what the lab added there.

    The veths are deleted from our side (the switch port takes eth1 with it):
    deleting a namespace frees its devices only later, in the background, and
    an adopted namespace must be clean when `down` returns. Routes over those
    devices go with them; the blackhole route is on no device. ip_forward stays
    1: a Kubernetes node has it so anyway.
    """
    steps = []
    for index, node in enumerate(spec.topology.nodes):
        if names.is_adopted(node.name):
            ns = names.node(node.name)
            steps += [
                ip(names.switch, "link", "del", names.switch_port(index)),
                ip(ns, "link", "del", names.cali(node.name)),
                ip(ns, "link", "del", VXLAN_DEVICE),
                *([ip(ns, "link", "del", VXLAN_V6_DEVICE)] if spec.has_ipv6 else []),
                ip(ns, "link", "del", NOWHERE_IFACE),
                ip(ns, "route", "del", "blackhole", node.block),
            ]
    return steps


def _check_spec(spec: LabSpec) -> None:
    if spec.topology.overlay.mtu is None:
        raise InputError("lab file: overlay.mtu must be a number for the lab (Calico's 'auto' needs a real node)")
    for node in spec.topology.nodes:
        if node.block is None or node.vtep_mac is None or node.vtep_ip is None:
            raise InputError(f"lab file: node {node.name} needs a block and a vtep_mac to be built")
    if spec.has_ipv6 and (len(spec.nodes6) != len(spec.topology.nodes) or len(spec.subnets6) != len(spec.topology.subnets)):
        raise InputError("lab file: an IPv6 lab needs address6/block6/vtep_mac6 on every node and cidr6/gateway6 on every subnet")
    if spec.has_ipv6 and spec.static_neighbours:
        raise InputError("lab file: static_neighbours is for IPv4 labs; an IPv6 lab of this size is not built")
    if len(spec.underlay_iface) > LONGEST_IFNAME or len(VXLAN_DEVICE) > LONGEST_IFNAME:
        raise InputError(f"lab file: underlay.iface {spec.underlay_iface!r} is longer than {LONGEST_IFNAME} characters")


# --- What a healthy lab reports -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class NodeDump:
    """What the kernel says about one node and its pod (parsed `-j` output)."""

    links: list[dict[str, Any]]  # ip -d -j addr show (node netns)
    routes: list[dict[str, Any]]  # ip -j route show
    fdb: list[dict[str, Any]]  # bridge -j fdb show dev vxlan.calico
    pod_links: list[dict[str, Any]]  # ip -d -j addr show (pod netns)
    pod_routes: list[dict[str, Any]]
    # Only for the other data planes (lab.dataplanes): IPv6 routes (ip -6 -j route show, node and pod),
    # vxlan-v6.calico's FDB, and `wg show wireguard.cali dump` parsed (None: no answer).
    routes6: list[dict[str, Any]] = field(default_factory=list)
    pod_routes6: list[dict[str, Any]] = field(default_factory=list)
    fdb6: list[dict[str, Any]] = field(default_factory=list)
    wg: dict[str, Any] | None = None
    wg_keys: dict[str, str] = field(default_factory=dict)  # node -> its device's public key, for peer checks
    wg6: dict[str, Any] | None = None  # the same for wg-v6.cali
    wg6_keys: dict[str, str] = field(default_factory=dict)
    neighbours: list[dict[str, Any]] = field(default_factory=list)  # ip -j neigh show (the Flannel lab's checks)
    # The Cilium lab's: `ip -j -d route show table all` and `ip -j rule show` (its per-pod tables).
    all_routes: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    ovs: dict[str, Any] | None = None  # the Antrea lab's OVS as adapters.ovs reads it (daemons, interfaces, flows)


def _link(links: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((link for link in links if link.get("ifname") == name), None)


def _has_addr(link: dict[str, Any], address: IPv4Address, prefixlen: int) -> bool:
    return any(
        a.get("family") == "inet" and a.get("local") == str(address) and a.get("prefixlen") == prefixlen
        for a in link.get("addr_info", [])
    )


def _is_up(link: dict[str, Any]) -> bool:
    return "UP" in link.get("flags", []) and "LOWER_UP" in link.get("flags", [])


def _route(routes: list[dict[str, Any]] | dict[str, dict[str, Any]], dst: IPv4Network | IPv4Address | str) -> dict[str, Any] | None:
    """The first route to `dst`; `routes` as the kernel lists them, or indexed by `_by_dst`."""
    by_dst = routes if isinstance(routes, dict) else _by_dst(routes)
    if isinstance(dst, IPv4Network) and dst.prefixlen == 32:
        return by_dst.get(str(dst)) or by_dst.get(str(dst.network_address))
    return by_dst.get(str(dst))


def _by_dst(routes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    # One pass: a 256-node lab has 500 routes per node, each looked up once per peer.
    indexed: dict[str, dict[str, Any]] = {}
    for route in routes:
        indexed.setdefault(route.get("dst"), route)
    return indexed


def _link_check(name: str, link: dict[str, Any] | None, want: dict[str, Any]) -> Check:
    if link is None:
        return Check(name, False, "missing")
    wrong = [f"{k}={got!r} (want {v!r})" for k, v in want.items() if (got := _link_value(link, k)) != v]
    return Check(name, not wrong, "; ".join(wrong))


def _link_value(link: dict[str, Any], key: str) -> Any:
    if key == "up":
        return _is_up(link)
    if key in ("id", "port", "local"):
        data = (link.get("linkinfo") or {}).get("info_data") or {}
        return data.get(key)
    if key == "kind":
        return (link.get("linkinfo") or {}).get("info_kind")
    return link.get(key)


def _route_check(name: str, route: dict[str, Any] | None, want: dict[str, Any]) -> Check:
    if route is None:
        return Check(name, False, "missing")
    wrong = [f"{k}={route.get(k)!r} (want {v!r})" for k, v in want.items() if route.get(k) != v]
    return Check(name, not wrong, "; ".join(wrong))


def node_checks(spec: LabSpec, names: LabNames, node_name: str, dump: NodeDump) -> tuple[Check, ...]:
    """Each part of a node's Calico data plane, present and as the spec says, or why not."""
    from vxcap.core.lab import dataplanes  # it builds on this module's helpers

    node = spec.topology.node(node_name)
    if spec.ipv4_encap == "antrea":
        from vxcap.core.lab import antrea

        return tuple(antrea.node_checks(spec, node, dump.links, dump.routes, dump.pod_links, dump.pod_routes, dump.ovs))
    ov, eth = spec.topology.overlay, spec.underlay_iface
    links, routes = dump.links, _by_dst(dump.routes)
    checks = []

    eth_link = _link(links, eth)
    check = _link_check(eth, eth_link, {"up": True, "mtu": spec.underlay_mtu})
    if check.ok and spec.has_ipv4 and not _has_addr(eth_link, node.address, node.underlay.network.prefixlen):
        check = Check(eth, False, f"no address {node.underlay}")
    checks.append(check)

    if spec.ipv4_encap == "vxlan":
        vx = _link(links, VXLAN_DEVICE)
        check = _link_check(VXLAN_DEVICE, vx, {"kind": "vxlan", "up": True, "id": ov.vni, "port": ov.port,
                                              "local": str(node.address), "mtu": ov.mtu, "address": node.vtep_mac})
        if check.ok and not _has_addr(vx, node.vtep_ip, 32):
            check = Check(VXLAN_DEVICE, False, f"no address {node.vtep_ip}/32")
        checks.append(check)

    subnet = spec.subnet_of(node)
    if spec.has_ipv4:
        for other_subnet in spec.topology.subnets:
            if other_subnet.network != subnet.network:
                checks.append(_route_check(f"route {other_subnet.network}", _route(routes, other_subnet.network),
                                           {"gateway": str(subnet.gateway), "dev": eth}))
    if spec.ipv4_encap == "vxlan":
        fdb = {(e.get("mac"), e.get("dst")) for e in dump.fdb}
        for other in _others(spec, node):
            if _vxlan_peer(spec, node, other):
                checks.append(_route_check(f"route {other.block}", _route(routes, other.block),
                                           {"gateway": str(other.vtep_ip), "dev": VXLAN_DEVICE}))
                found = (other.vtep_mac, str(other.address)) in fdb
                checks.append(Check(f"fdb {other.vtep_mac}", found, "" if found else f"no entry to {other.address}"))
            else:
                checks.append(_route_check(f"route {other.block}", _route(routes, other.block),
                                           {"gateway": str(other.address), "dev": eth}))
    elif spec.ipv4_encap == "wireguard":
        checks += dataplanes.wireguard_checks(spec, node.name, links, dump.routes, dump.wg, dump.wg_keys)
    elif spec.ipv4_encap == "ipip":
        checks += dataplanes.ipip_checks(spec, node.name, links, dump.routes)
    elif spec.ipv4_encap == "flannel":
        from vxcap.core.lab import flannel

        checks.append(flannel.device_check(spec, node, links))
        checks += flannel.peer_checks(spec, node, dump.routes, dump.neighbours, dump.fdb)
        checks += flannel.pod_checks(spec, node, links, dump.pod_links, dump.pod_routes)
        return tuple(checks)
    elif spec.ipv4_encap == "cilium":
        from vxcap.core.lab import cilium

        return tuple(checks + cilium.node_checks(spec, names, node, dump))
    if spec.has_ipv4:
        checks.append(_route_check(f"blackhole {node.block}", _route(routes, node.block), {"type": "blackhole"}))

    pod = spec.pod_on(node.name)
    cali = names.cali(node.name)
    checks.append(_link_check(cali, _link(links, cali), {"up": True, "mtu": spec.pod_mtu}))
    if spec.has_ipv4:
        checks.append(_route_check(f"route {pod.ip}", _route(routes, pod.ip), {"dev": cali}))
    pod_eth = _link(dump.pod_links, POD_IFACE)
    check = _link_check(f"pod {POD_IFACE}", pod_eth, {"up": True, "mtu": spec.pod_mtu})
    if check.ok and spec.has_ipv4 and not _has_addr(pod_eth, pod.ip, 32):
        check = Check(f"pod {POD_IFACE}", False, f"no address {pod.ip}/32")
    checks.append(check)
    if spec.has_ipv4:
        checks.append(_route_check("pod default", _route(dump.pod_routes, "default"),
                                   {"gateway": str(POD_GATEWAY), "dev": POD_IFACE}))
    if spec.has_ipv6:
        checks += dataplanes.ipv6_checks(spec, names, node.name, links, dump.routes6, dump.fdb6, dump.pod_links,
                                         dump.pod_routes6)
    if spec.ipv6_encap == "wireguard":
        checks += dataplanes.wireguard6_checks(spec, node.name, links, dump.routes6, dump.wg6, dump.wg6_keys)
    return tuple(checks)


@dataclass(frozen=True, slots=True)
class NamespaceStatus:
    name: str
    role: str  # switch | node | pod
    exists: bool
    adopted: bool = False


@dataclass(frozen=True, slots=True)
class NodeStatus:
    node: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def problems(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)


@dataclass(frozen=True, slots=True)
class LabStatus:
    prefix: str
    namespaces: tuple[NamespaceStatus, ...]
    nodes: tuple[NodeStatus, ...]
    dataplane: str = "vxlan"  # lab.spec.DATAPLANES

    @property
    def exists(self) -> bool:
        """Something the lab creates is there (adopted namespaces do not count: they were there before)."""
        return any(ns.exists and not ns.adopted for ns in self.namespaces)

    @property
    def healthy(self) -> bool:
        return (
            bool(self.namespaces)
            and all(ns.exists for ns in self.namespaces)
            and bool(self.nodes)
            and all(n.ok for n in self.nodes)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "dataplane": self.dataplane,
            "healthy": self.healthy,
            "namespaces": [
                {"name": ns.name, "role": ns.role, "exists": ns.exists, "adopted": ns.adopted} for ns in self.namespaces
            ],
            "nodes": [
                {"node": n.node, "ok": n.ok, "checks": [c.to_dict() for c in n.checks]} for n in self.nodes
            ],
        }


def namespace_roles(spec: LabSpec, names: LabNames) -> tuple[tuple[str, str, bool], ...]:
    """(namespace, role, adopted) for every namespace the lab lives in."""
    rows = [(names.switch, "switch", False)]
    rows += [(names.node(n.name), "node", names.is_adopted(n.name)) for n in spec.topology.nodes]
    rows += [(names.pod(n.name), "pod", False) for n in spec.topology.nodes]
    return tuple(rows)
