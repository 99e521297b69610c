"""The lab's Antrea data plane: Geneve between OVS bridges, as antrea-agent programs it, through
Open vSwitch's userspace datapath (this kernel has no geneve module; docs/geneve-lab.md).

Pure, like `lab.plan`: commands (ovs-vsctl, ovs-ofctl, ip) as `Step`s, and checks of what the
adapter (adapters/ovs.py) reads back. Facts from antrea-io/antrea (checked at fc70f2b):

- pkg/ovs/ovsconfig/ovs_client.go `CreateTunnelPortExt`: a flow-based tunnel port,
  `options:key=flow options:remote_ip=flow`, `csum=true` only when asked; pkg/agent/agent.go sets
  `dst_port` only for a tunnelPort other than the IANA one. build/charts/antrea/values.yaml:
  `tunnelCsum: false`, so OVS sends the outer UDP checksum as 0.
- pkg/agent/openflow/pipeline.go `l3FwdFlowsToRemoteViaTun`: to a peer's pod CIDR, src MAC the local
  gateway's, dst MAC `GlobalVirtualMAC` aa:bb:cc:dd:ee:ff, `tun_dst` the peer's node IP, TTL
  decremented. Only Multi-cluster's `podClassifierFlow` sets `tun_id`, so the VNI on the wire is 0.
  `l3FwdFlowToPod`: what arrives from the tunnel gets the gateway's MAC as source and the pod's as
  destination. The ARPResponder answers for each peer's gateway IP with the virtual MAC (host traffic).
- pkg/agent/config/node_config.go: `geneveOverhead = 50` is the MTU deduction (IPv4 underlay);
  DefaultTunOFPort 1, DefaultHostGatewayOFPort 2; `NeedsTunnelToPeer`: hybrid tunnels only to peers
  outside the local transport subnet, the others go plain through antrea-gw0 and the host's routes.

What the lab must do differently from a real node, and why: OVS's userspace tunnels route the outer
packet with OVS's own table, which only leads out of an OVS bridge, so the node's underlay address sits
on br-phy's internal port and eth1 is br-phy's port (eth1 is still the captured underlay). Each node
runs its own ovsdb-server and ovs-vswitchd, their files in `ovs_dir` (never the system's).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from vxcap.core.errors import InputError
from vxcap.core.lab import flannel
from vxcap.core.lab.plan import POD_IFACE, Check, LabNames, Step, ip, lab_mac, sysctl
from vxcap.core.lab.spec import LabSpec
from vxcap.core.model import DEFAULT_GENEVE_PORT, Node, Wire
from vxcap.core.plan import expected_wire

GLOBAL_VIRTUAL_MAC = "aa:bb:cc:dd:ee:ff"
GENEVE_OVERHEAD = 50
VNI = 0  # tun_id left unset
NETWORK = "10.244.0.0/16"
TUNNEL, GATEWAY = "antrea-tun0", "antrea-gw0"
TUN_OFPORT, GW_OFPORT, POD_OFPORT = 1, 2, 3
BR_INT, BR_PHY = "br-int", "br-phy"
PRIORITY = 200  # Antrea's priorityNormal
# Where each node's OVS keeps its database, sockets, pid files and logs: one directory per node
# namespace (the namespaces carry the lab's random prefix, so parallel labs never share one).
OVS_BASE = "/run/vxcap-ovs"
MAX_NODES = 16


def antrea_description(data: dict[str, Any], hybrid: bool, port: int = DEFAULT_GENEVE_PORT) -> dict[str, Any]:
    """A lab description over the same underlay as Antrea builds it: each node a /24 of 10.244.0.0/16,
    Geneve on 6081 (or tunnelPort `port`) with VNI 0, MTU underlay - 50, every node's VTEP MAC the global
    virtual MAC (the inner destination every receiver sees); encap is Always, hybrid CrossSubnet."""
    nodes = data.get("nodes") or []
    if len(nodes) > MAX_NODES:
        raise InputError(f"an Antrea lab runs two OVS daemons per node (about 20 MB each, userspace datapath): "
                         f"at most {MAX_NODES} nodes, not {len(nodes)}")
    mtu = int((data.get("underlay") or {}).get("mtu", 1500)) - GENEVE_OVERHEAD
    return {
        **{k: v for k, v in data.items() if k not in ("expected_wire", "dataplane")},
        "overlay": {"encapsulation": "geneve", "mode": "CrossSubnet" if hybrid else "Always",
                    "vni": VNI, "port": port, "mtu": mtu},
        "pool": {"cidr": NETWORK},
        "nodes": [{**n, "block": f"10.244.{i}.0/24", "vtep_mac": GLOBAL_VIRTUAL_MAC} for i, n in enumerate(nodes)],
        "dataplane": {"overlay": "antrea", "antrea": {"hybrid": hybrid}},
    }


def ovs_dir(names: LabNames, node: str) -> str:
    return f"{OVS_BASE}/{names.node(node)}"


def db(names: LabNames, node: str) -> str:
    return f"unix:{ovs_dir(names, node)}/db.sock"


def bridge_target(names: LabNames, node: str, br: str = BR_INT) -> str:
    """ovs-ofctl's way to br-int of this node's ovs-vswitchd (its management socket in the run dir)."""
    return f"unix:{ovs_dir(names, node)}/{br}.mgmt"


def vsctl(names: LabNames, node: str, *args: object) -> Step:
    return Step(names.node(node), ("ovs-vsctl", f"--db={db(names, node)}", "--timeout=20", *map(str, args)))


def ofctl(names: LabNames, node: str, command: str, *args: object, options: tuple[str, ...] = ()) -> Step:
    return Step(names.node(node), ("ovs-ofctl", *options, command, bridge_target(names, node), *map(str, args)))


def pod_port(node: str) -> str:
    return "antrea" + hashlib.sha1(node.encode()).hexdigest()[:8]


def underlay_mac(spec: LabSpec, node: Node) -> str:
    return lab_mac(node.name, spec.underlay_iface)


def gateway_mac(node: str) -> str:
    return lab_mac(node, GATEWAY)


def pod_mac(node: str) -> str:
    return lab_mac(node, "pod", POD_IFACE)


def tunnelled(spec: LabSpec, src: Node, dst: Node) -> bool:
    return expected_wire(spec.topology.overlay, src, dst)[0] is Wire.GENEVE


def _others(spec: LabSpec, node: Node) -> list[Node]:
    return [n for n in spec.topology.nodes if n.name != node.name]


def _config(spec: LabSpec) -> None:
    if spec.antrea is None:
        raise InputError(f"needs an Antrea lab (--cni antrea); this one is {spec.dataplane}")


# --- building ---------------------------------------------------------------------------------


def kernel_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    """Before OVS starts: lo and eth1 up (eth1 gets no address: br-phy will carry it), and the pod's veth,
    its pod end with a fixed MAC (the flows from the tunnel write it as the destination)."""
    ns, mtu, veth = names.node(node.name), spec.pod_mtu, pod_port(node.name)
    return [
        ip(ns, "link", "set", "lo", "up"),
        ip(ns, "link", "set", spec.underlay_iface, "address", underlay_mac(spec, node), "up"),
        ip(ns, "link", "add", veth, "mtu", mtu, "type", "veth", "peer", "name", POD_IFACE,
           "address", pod_mac(node.name), "mtu", mtu, "netns", names.pod(node.name)),
        ip(ns, "link", "set", veth, "up"),
        # The userspace datapath reads its ports with AF_PACKET, so the node's kernel still sees every frame
        # on eth1 and the pod's veth (the kernel datapath's rx_handler would take them): without this the
        # kernel answers the pod's ARP for its gateway on the veth and forwards the pod's packets a second
        # time, and takes in on eth1 what is addressed to br-phy (the same MAC). Neither interface has an
        # address; the node's kernel speaks only through br-phy and antrea-gw0, as on a real Antrea node
        # (strict rp_filter on eth1: no route leads out of it, so nothing arriving there is taken).
        *[sysctl(ns, f"net.ipv4.conf.{dev}.arp_ignore=8", f"net.ipv4.conf.{dev}.forwarding=0",
                 f"net.ipv4.conf.{dev}.rp_filter=1") for dev in (spec.underlay_iface, veth)],
    ]


def bridge_steps(spec: LabSpec, names: LabNames, node: Node, port: int | None = None) -> list[Step]:
    """br-phy (eth1, the underlay address), br-int (antrea-tun0, antrea-gw0, the pod), in one transaction."""
    port = spec.topology.overlay.port if port is None else port
    # Antrea writes dst_port only for a tunnelPort other than the IANA one (pkg/agent/agent.go).
    dst_port = () if port == DEFAULT_GENEVE_PORT else (f"options:dst_port={port}",)
    return [vsctl(
        names, node.name,
        # br-phy answers with eth1's MAC, as a bridge that took over its uplink does (what the peers and the
        # switch address, and what a capture on eth1 shows arriving for this node).
        "--", "add-br", BR_PHY, "--", "set", "bridge", BR_PHY, "datapath_type=netdev",
        f'other_config:hwaddr="{underlay_mac(spec, node)}"',
        "--", "add-port", BR_PHY, spec.underlay_iface,
        "--", "add-br", BR_INT, "--", "set", "bridge", BR_INT, "datapath_type=netdev", "fail_mode=secure",
        "--", "add-port", BR_INT, TUNNEL, "--", "set", "interface", TUNNEL, "type=geneve", f"ofport_request={TUN_OFPORT}",
        "options:key=flow", "options:remote_ip=flow", *dst_port,
        "--", "add-port", BR_INT, GATEWAY, "--", "set", "interface", GATEWAY, "type=internal",
        f"ofport_request={GW_OFPORT}", f'mac="{gateway_mac(node.name)}"',
        "--", "add-port", BR_INT, pod_port(node.name), "--", "set", "interface", pod_port(node.name),
        f"ofport_request={POD_OFPORT}",
    )]


def address_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    """The underlay address on br-phy, antrea-gw0's, and the host routes antrea-agent writes: a tunnel
    peer's pod CIDR via its gateway IP on antrea-gw0 (onlink), a hybrid plain peer's via its node IP."""
    ns, eth = names.node(node.name), BR_PHY
    subnet = spec.subnet_of(node)
    assert node.block is not None
    steps = [
        ip(ns, "link", "set", BR_PHY, "mtu", spec.underlay_mtu, "up"),
        ip(ns, "addr", "add", node.underlay, "dev", BR_PHY),
        ip(ns, "link", "set", GATEWAY, "mtu", spec.pod_mtu, "up"),
        ip(ns, "addr", "add", f"{node.block.network_address + 1}/{node.block.prefixlen}", "dev", GATEWAY),
    ]
    steps += [ip(ns, "route", "add", other.network, "via", subnet.gateway, "dev", eth)
              for other in spec.topology.subnets if other.network != subnet.network]
    for other in _others(spec, node):
        assert other.block is not None
        if tunnelled(spec, node, other):
            steps.append(ip(ns, "route", "add", other.block, "via", other.block.network_address + 1, "dev", GATEWAY,
                            "onlink"))
        else:
            steps.append(ip(ns, "route", "add", other.block, "via", other.address, "dev", eth))
    return steps


def tunnel_flow(peer: Node, gw_mac: str, vni: int | None = None) -> str:
    """l3FwdFlowsToRemoteViaTun, in one table. `vni`: a tun_id the real agent never sets (the fault)."""
    assert peer.block is not None
    tun_id = () if vni is None else (f"set_field:{vni:#x}->tun_id",)
    actions = (f"mod_dl_src:{gw_mac}", f"mod_dl_dst:{GLOBAL_VIRTUAL_MAC}", "dec_ttl", *tun_id,
               f"set_field:{peer.address}->tun_dst", f"output:{TUN_OFPORT}")
    return f"priority={PRIORITY},ip,nw_dst={peer.block},actions=" + ",".join(actions)


def flow_steps(spec: LabSpec, names: LabNames, node: Node, vni: int | None = None) -> list[Step]:
    """br-int's flows: to each tunnel peer's pods through antrea-tun0, from the tunnel to the local pod,
    the ARP answers for the peers' gateways, and NORMAL for the rest (pod <-> antrea-gw0, hybrid's plain
    peers through the host)."""
    assert node.block is not None
    gw_mac, pod = gateway_mac(node.name), spec.pod_on(node.name)
    flows = [tunnel_flow(other, gw_mac, vni) for other in _others(spec, node)
             if tunnelled(spec, node, other)]
    flows.append(f"priority={PRIORITY},ip,in_port={TUN_OFPORT},nw_dst={pod.ip},actions=mod_dl_src:{gw_mac},"
                 f"mod_dl_dst:{pod_mac(node.name)},dec_ttl,output:{POD_OFPORT}")
    for other in _others(spec, node):
        assert other.block is not None
        if tunnelled(spec, node, other):
            gw = other.block.network_address + 1
            flows.append(
                f"priority={PRIORITY},arp,arp_tpa={gw},arp_op=1,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],"
                f"set_field:{GLOBAL_VIRTUAL_MAC}->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],"
                f"set_field:{GLOBAL_VIRTUAL_MAC}->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],"
                f"set_field:{gw}->arp_spa,IN_PORT")
    flows.append("priority=0,actions=NORMAL")
    return [ofctl(names, node.name, "add-flow", flow) for flow in flows]


def ovs_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    """Everything after the node's OVS daemons started."""
    _config(spec)
    return bridge_steps(spec, names, node) + address_steps(spec, names, node) + flow_steps(spec, names, node)


def pod_steps(spec: LabSpec, names: LabNames, node: Node) -> list[Step]:
    # The pod's side is Flannel's bridge plugin's: the .2 of the node's /24, default via the .1 (antrea-gw0 here).
    return flannel.pod_steps(spec, names, node)


def next_hops(spec: LabSpec, node: Node) -> list[object]:
    """Where node's underlay packets go first: its subnet's gateway and the nodes on its subnet. OVS's
    userspace tunnels drop the packet that makes them ARP (the kernel would queue it) and learn a MAC by
    snooping the ARP replies that cross br-phy, so the node's kernel talks to each once before a run, its
    neighbours flushed first (`forget_neighbours`): a kernel that learnt a peer from the peer's own ARP
    request asks nothing, and its OVS would see no reply."""
    return [spec.subnet_of(node).gateway, *(o.address for o in _others(spec, node) if o.address in node.subnet)]


def forget_neighbours(names: LabNames, node: Node) -> Step:
    return ip(names.node(node.name), "neigh", "flush", "dev", BR_PHY)


# --- faults (lab.faults dispatches here) --------------------------------------------------------


def vni_fault_steps(spec: LabSpec, names: LabNames, node: Node, vni: int) -> list[Step]:
    """The node's tunnel flows set tun_id: its Geneve goes out with that VNI (the receivers' key=flow
    takes any, so the pods still talk: only the wire shows it)."""
    _config(spec)
    return [ofctl(names, node.name, "add-flow", tunnel_flow(other, gateway_mac(node.name), vni))
            for other in _others(spec, node) if tunnelled(spec, node, other)]


def port_fault_steps(spec: LabSpec, names: LabNames, node: Node, port: int) -> list[Step]:
    """The node's antrea-tun0 sends to (and listens on) another UDP port, as a tunnelPort set on it alone."""
    _config(spec)
    return [vsctl(names, node.name, "set", "interface", TUNNEL, f"options:dst_port={port}")]


def tunnel_type_fault_steps(spec: LabSpec, names: LabNames, node: Node, tunnel_type: str) -> list[Step]:
    """The node's antrea-tun0 re-typed (tunnelType vxlan on this node alone): it sends VXLAN on 4789 where
    Geneve is promised, and the others' Geneve finds no port there."""
    _config(spec)
    if tunnel_type not in ("vxlan", "gre", "geneve") or tunnel_type == spec.topology.overlay.encapsulation:
        raise InputError(f"fault: tunnel type {tunnel_type!r}: one of vxlan, gre, other than the lab's")
    return [vsctl(names, node.name, "set", "interface", TUNNEL, f"type={tunnel_type}")]


def plain_fault_steps(spec: LabSpec, names: LabNames, src: Node, dst: Node) -> list[Step]:
    """src sends dst's pods' traffic plain: its tunnel flow gone (NORMAL hands it to antrea-gw0) and the
    host route straight out of br-phy, to dst (same subnet) or the gateway, as noEncap would."""
    _config(spec)
    assert dst.block is not None
    if not tunnelled(spec, src, dst):
        raise InputError(f"fault: {src.name} already sends {dst.name}'s pods plain (hybrid); pick a tunnelled pair")
    hop = dst.address if dst.address in src.subnet else spec.subnet_of(src).gateway
    return [ofctl(names, src.name, "del-flows", f"priority={PRIORITY},ip,nw_dst={dst.block}", options=("--strict",)),
            ip(names.node(src.name), "route", "replace", dst.block, "via", hop, "dev", BR_PHY)]


# --- checks -----------------------------------------------------------------------------------


def _link(links: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((link for link in links if link.get("ifname") == name), None)


def _addr(link: dict[str, Any], address: object, prefixlen: int) -> bool:
    return any(a.get("family") == "inet" and a.get("local") == str(address) and a.get("prefixlen") == prefixlen
               for a in link.get("addr_info", []))


def _differences(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    return [f"{k}={got.get(k)!r} (want {v!r})" for k, v in want.items() if got.get(k) != v]


def _link_check(name: str, link: dict[str, Any] | None, mtu: int, address: tuple[object, int] | None) -> Check:
    if link is None:
        return Check(name, False, "missing")
    wrong = _differences({"up": True, "mtu": mtu}, {"up": "UP" in link.get("flags", []), "mtu": link.get("mtu")})
    if address is not None and not _addr(link, *address):
        wrong.append(f"no address {address[0]}/{address[1]}")
    return Check(name, not wrong, "; ".join(wrong))


_TUN_ID = re.compile(r"set_field:(0x[0-9a-f]+|\d+)->tun_id")


def parse_flows(text: str) -> list[str]:
    """`ovs-ofctl dump-flows` lines, without the counters (duration, packets, ...) that change every read."""
    flows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("NXST_FLOW", "OFPST_FLOW")):
            continue
        fields = [f for f in re.split(r",\s*|\s+", line.split(" actions=")[0])
                  if f and not re.match(r"(cookie|duration|table|n_packets|n_bytes|idle_age|hard_age)=", f)]
        flows.append(",".join(fields) + (" actions=" + line.split(" actions=", 1)[1] if " actions=" in line else ""))
    return flows


def ovs_checks(spec: LabSpec, node: Node, ovs: dict[str, Any] | None) -> list[Check]:
    """The node's OVS as antrea-agent leaves it: both daemons running, antrea-tun0 a flow-based Geneve port
    on the lab's UDP port, and per tunnel peer the flow that sends its pods' traffic into the tunnel
    (setting no VNI)."""
    if ovs is None:
        return [Check("ovs", False, "no answer from the node's ovsdb-server / ovs-vswitchd")]
    checks = [Check(daemon, bool(pid), "" if pid else "not running") for daemon, pid in ovs.get("daemons", {}).items()]
    tun = (ovs.get("interfaces") or {}).get(TUNNEL)
    if tun is None:
        checks.append(Check(TUNNEL, False, "missing"))
    else:
        options = dict(tun.get("options") or {})
        port = int(options.pop("dst_port", DEFAULT_GENEVE_PORT))
        got = {"type": tun.get("type"), "key": options.get("key"), "remote_ip": options.get("remote_ip"),
               "port": port, "csum": options.get("csum", "false")}
        want = {"type": "geneve", "key": "flow", "remote_ip": "flow", "port": spec.topology.overlay.port,
                "csum": "false"}
        wrong = _differences(want, got)
        checks.append(Check(TUNNEL, not wrong, "; ".join(wrong)))
    flows = ovs.get("flows") or []
    for other in _others(spec, node):
        if not tunnelled(spec, node, other):
            continue
        match = f"nw_dst={other.block}"
        flow = next((f for f in flows if match in f.split(" actions=")[0].split(",")), None)
        name = f"flow {other.block}"
        if flow is None:
            checks.append(Check(name, False, "missing (not into the tunnel)"))
            continue
        wrong = []
        if f"set_field:{other.address}->tun_dst" not in flow and f"load:{int(other.address):#x}->NXM_NX_TUN_IPV4_DST" not in flow:
            wrong.append(f"no tun_dst {other.address}")
        tun_id = _TUN_ID.search(flow) or re.search(r"load:(0x[0-9a-f]+|\d+)->NXM_NX_TUN_ID", flow)
        if tun_id is not None and int(tun_id.group(1), 0) != spec.topology.overlay.vni:
            wrong.append(f"sets VNI {int(tun_id.group(1), 0)} (want {spec.topology.overlay.vni})")
        if f"output:{TUN_OFPORT}" not in flow and f"output:{TUNNEL}" not in flow:
            wrong.append(f"not to {TUNNEL}")
        checks.append(Check(name, not wrong, "; ".join(wrong)))
    return checks


def node_checks(spec: LabSpec, node: Node, links: list[dict[str, Any]], routes: list[dict[str, Any]],
                pod_links: list[dict[str, Any]], pod_routes: list[dict[str, Any]],
                ovs: dict[str, Any] | None) -> list[Check]:
    assert node.block is not None
    gw, pod = node.block.network_address + 1, spec.pod_on(node.name)
    checks = [
        _link_check(spec.underlay_iface, _link(links, spec.underlay_iface), spec.underlay_mtu, None),
        _link_check(BR_PHY, _link(links, BR_PHY), spec.underlay_mtu, (node.address, node.underlay.network.prefixlen)),
        _link_check(GATEWAY, _link(links, GATEWAY), spec.pod_mtu, (gw, node.block.prefixlen)),
    ]
    checks += ovs_checks(spec, node, ovs)
    by_dst: dict[str, dict[str, Any]] = {}
    for route in routes:
        by_dst.setdefault(str(route.get("dst")), route)
    subnet = spec.subnet_of(node)
    for other_subnet in spec.topology.subnets:
        if other_subnet.network != subnet.network:
            route = by_dst.get(str(other_subnet.network))
            wrong = ["missing"] if route is None else _differences(
                {"gateway": str(subnet.gateway), "dev": BR_PHY}, route)
            checks.append(Check(f"route {other_subnet.network}", not wrong, "; ".join(wrong)))
    for other in _others(spec, node):
        assert other.block is not None
        route = by_dst.get(str(other.block))
        want = ({"gateway": str(other.block.network_address + 1), "dev": GATEWAY} if tunnelled(spec, node, other)
                else {"gateway": str(other.address), "dev": BR_PHY})
        wrong = ["missing"] if route is None else _differences(want, route)
        checks.append(Check(f"route {other.block}", not wrong, "; ".join(wrong)))
    checks.append(_link_check(f"pod {POD_IFACE}", _link(pod_links, POD_IFACE), spec.pod_mtu,
                              (pod.ip, node.block.prefixlen)))
    default = next((r for r in pod_routes if r.get("dst") == "default"), None)
    wrong = ["missing"] if default is None else _differences({"gateway": str(gw), "dev": POD_IFACE}, default)
    checks.append(Check("pod default", not wrong, "; ".join(wrong)))
    return checks

