"""The embedded lab: the reference topology in network namespaces, with the kernel's VXLAN.

Builds what `vxcap.core.lab.plan` plans, reads it back, breaks it on request
(`vxcap.core.lab.faults`), and runs pings and tcpdump inside it. It touches
only namespaces named with its prefix, and in namespaces it adopted only what
it added there.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv4Address
from pathlib import Path

from vxcap.adapters import children, ipip_tun, netlink_links, netns, ovs, tcpdump, wireguard
from vxcap.adapters.netns import NetnsError
from vxcap.adapters.tcpdump import RunningCapture
from vxcap.core import rundir
from vxcap.core.errors import InputError
from vxcap.core.capture import DEFAULT_DURATION_S, DEFAULT_MAX_PACKETS, DEFAULT_SNAPLEN, lab_buffer_kib, tcpdump_argv
from vxcap.core.lab import antrea, dataplanes
from vxcap.core.lab.faults import Fault, fault_steps
from vxcap.core.lab.plan import (
    Check,
    LabNames,
    LabStatus,
    NamespaceStatus,
    NodeDump,
    NodeStatus,
    adopted_teardown_steps,
    lab_steps,
    namespace_roles,
    node_checks,
)
from vxcap.core.lab.spec import LabSpec
from vxcap.core.model import VXLAN_DEVICE, VXLAN_V6_DEVICE, Pod
from vxcap.core.lab.dataplanes import WIREGUARD_DEVICE
from vxcap.core.mtu.tcp import DEFAULT_TIMEOUT_S
from vxcap.core.ping import PingResult, parse_ping, ping_argv

__all__ = ["NetnsLab", "NetnsError", "LabDown", "RunningCapture"]

TCP_GREETING = b"vxcap mss probe\n"
CAPTURE_START_BATCH = 32


@dataclass(frozen=True, slots=True)
class LabDown:
    """What `down` removed."""

    namespaces: tuple[str, ...]  # deleted namespaces (their veths went with them)
    adopted_cleaned: tuple[str, ...]  # adopted namespaces we took our interfaces/routes out of
    detached: tuple[str, ...]  # adopted /run/netns names removed on request
    killed: tuple[int, ...]  # pids of leftover processes inside our own namespaces

    def to_dict(self) -> dict[str, list]:
        return {
            "namespaces": list(self.namespaces),
            "adopted_cleaned": list(self.adopted_cleaned),
            "detached": list(self.detached),
            "killed": list(self.killed),
        }


def _wait_gone(pids: list[int], timeout: float = 5.0) -> None:
    """Until each SIGKILLed pid has exited (gone, or a zombie: it has left its namespaces by then),
    so `down` returns with nothing of the lab still running."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                break
            if state in ("Z", "X"):
                break
            time.sleep(0.01)


class NetnsLab:
    def __init__(self, spec: LabSpec, prefix: str = "vxcap", adopt: dict[str, str] | None = None) -> None:
        self.spec = spec
        self.names = LabNames.for_spec(spec, prefix, adopt)
        if adopt and spec.dataplane != "vxlan":
            # `down` cleans adopted namespaces only of what the VXLAN lab adds (and kills no process there).
            raise InputError(f"adopting namespaces works with the vxlan lab only, not {spec.dataplane}")

    # --- naming -----------------------------------------------------------

    def node_netns(self, node: str) -> str:
        return self.names.node(self.spec.topology.node(node).name)

    def pod_netns(self, node: str) -> str:
        return self.names.pod(self.spec.topology.node(node).name)

    def pod(self, node: str) -> Pod:
        return self.spec.pod_on(self.spec.topology.node(node).name)

    # --- life cycle -------------------------------------------------------

    def up(self) -> LabStatus:
        """Build the lab; a healthy one is left alone, a partial or broken one rebuilt."""
        status = self.status()
        if status.healthy:
            return status
        missing = [ns.name for ns in status.namespaces if ns.adopted and not ns.exists]
        if missing:
            raise NetnsError(f"adopted namespace {missing[0]} does not exist (attach it with ip netns attach NAME PID)")
        if status.exists:
            self.down()
        kernel_ipip = self.spec.ipv4_encap == "ipip" and self._kernel_has_ipip()
        if self.spec.antrea is not None:
            ovs.require()
        try:
            netns.run_steps(lab_steps(self.spec, self.names))
            if self.spec.ipv4_encap == "ipip":
                self._start_ipip(kernel_ipip)
            if self.spec.antrea is not None:
                self._start_ovs()
            if self.spec.ipv4_encap == "wireguard":
                self._start_wireguard()
            if self.spec.ipv6_encap == "wireguard":
                self._start_wireguard6()
        except NetnsError:  # the wireguard-go, IPIP forwarder and OVS processes started so far go too (`down` ends them)
            self.down()
            raise
        return self.status()

    def _kernel_has_ipip(self) -> bool:
        """Whether the kernel can make IPIP devices (then every namespace has its tunl0), tried in a namespace of our own."""
        probe = f"{self.names.prefix}-ipip-probe"
        netns.add_netns([probe])
        try:
            proc = netns.run(["ip", "-n", probe, "link", "add", "vxcapprobe", "type", "ipip"], check=False)
        finally:
            netns.delete_netns([probe])
        return proc.returncode == 0

    def _start_ipip(self, kernel: bool) -> None:
        """tunl0 in every node: the kernel's where it has the ipip module, else the userspace forwarder's
        (adapters.ipip_tun: the same RFC 2003 packets on the wire); then Felix's MTU, address and routes on it."""
        for node in self.spec.topology.nodes:
            if not kernel:
                ipip_tun.start(self.names.node(node.name), dataplanes.ipip_forwarder_args(node))
            netns.run_steps(dataplanes.ipip_steps(self.spec, self.names, node))

    def _ovs_dirs(self) -> dict[str, Path]:
        return {node.name: Path(antrea.ovs_dir(self.names, node.name)) for node in self.spec.topology.nodes}

    def _start_ovs(self) -> None:
        """Each node's ovsdb-server and ovs-vswitchd, then its bridges, addresses, routes and flows."""
        for node in self.spec.topology.nodes:
            ovs.start(self.names.node(node.name), self._ovs_dirs()[node.name])
            netns.run_steps(antrea.ovs_steps(self.spec, self.names, node))

    def warm_ovs_neighbours(self) -> None:
        """One echo from each node's kernel to its next hops, so no first packet of a run is lost to OVS's ARP.
        A node at a time: each must ask for its neighbours itself (core.lab.antrea.next_hops)."""
        from vxcap.adapters.echo import EchoPlan, echo_all

        for node in self.spec.topology.nodes:
            netns.run_steps([antrea.forget_neighbours(self.names, node)])
            echo_all([EchoPlan(self.names.node(node.name), hop, timeout=2.0)
                      for hop in antrea.next_hops(self.spec, node)])

    def _start_wireguard(self) -> None:
        """wireguard-go in every node, then each node's keys, peers and port (`wg set`), then its device's
        MTU, address and routes (core's steps)."""
        nodes = self.spec.topology.nodes
        keys = {node.name: wireguard.genkey() for node in nodes}
        public = {name: pair[1] for name, pair in keys.items()}
        for node in nodes:
            pid = wireguard.start(self.names.node(node.name))
            wireguard.configure(pid, dataplanes.wg_set_argv(self.spec, node, "/dev/stdin", public), keys[node.name][0])
            netns.run_steps(dataplanes.wireguard_link_steps(self.spec, self.names, node))

    def _start_wireguard6(self) -> None:
        """As `_start_wireguard`, for wg-v6.cali: its own wireguard-go, keys and IPv6 peers on port 51821."""
        nodes = self.spec.topology.nodes
        keys = {node.name: wireguard.genkey() for node in nodes}
        public = {name: pair[1] for name, pair in keys.items()}
        for node in nodes:
            pid = wireguard.start(self.names.node(node.name), dataplanes.WIREGUARD_V6_DEVICE)
            wireguard.configure(pid, dataplanes.wg6_set_argv(self.spec, node, "/dev/stdin", public), keys[node.name][0])
            netns.run_steps(dataplanes.wireguard6_link_steps(self.spec, self.names, node))

    def down(self, detach_adopted: bool = False) -> LabDown:
        """Remove everything the lab made and nothing else."""
        owned = self.names.owned(self.spec)
        present = netns.list_netns()
        # OVS first, by its pid files (a daemon told to exit takes its taps along), then whatever is left.
        # Looked for whatever the spec says: a lab remembered as another one still loses its OVS files.
        stopped = [pid for d in self._ovs_dirs().values() if d.exists() for pid in ovs.stop(d)]
        killed = stopped + self._kill_leftovers([ns for ns in owned if ns in present])
        children.reap(killed)  # the wireguard-go and IPIP forwarders this process started
        adopted = [self.names.node(n.name) for n in self.spec.topology.nodes if self.names.is_adopted(n.name)]
        adopted_present = [ns for ns in adopted if ns in present]
        # Without our switch there is no sign we built anything in an adopted namespace.
        if adopted_present and self.names.switch in present:
            steps = [s for s in adopted_teardown_steps(self.spec, self.names) if s.netns in present]
            netns.run_steps(steps, force=True)  # some of it may already be gone
        deleted = netns.delete_netns(owned)
        detached = netns.delete_netns(adopted_present) if detach_adopted else []
        return LabDown(tuple(deleted), tuple(adopted_present), tuple(detached), tuple(killed))

    def _kill_leftovers(self, namespaces: list[str]) -> list[int]:
        # A process left in a namespace keeps it (and its interfaces) alive after
        # its name is gone. Only the lab's own namespaces: never an adopted one.
        killed = []
        for ns in namespaces:
            for pid in netns.netns_pids(ns):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
        _wait_gone(killed)
        return killed

    def status(self) -> LabStatus:
        present = netns.list_netns()
        namespaces = tuple(
            NamespaceStatus(name, role, name in present, adopted)
            for name, role, adopted in namespace_roles(self.spec, self.names)
        )
        nodes = []
        wg_views = self._wg_views(present, WIREGUARD_DEVICE) if self.spec.ipv4_encap == "wireguard" else None
        wg6_views = (self._wg_views(present, dataplanes.WIREGUARD_V6_DEVICE) if self.spec.ipv6_encap == "wireguard"
                     else None)
        for node in self.spec.topology.nodes:
            node_ns, pod_ns = self.names.node(node.name), self.names.pod(node.name)
            missing = [ns for ns in (node_ns, pod_ns) if ns not in present]
            if missing:
                nodes.append(NodeStatus(node.name, (Check("namespaces", False, f"missing: {', '.join(missing)}"),)))
                continue
            try:
                dump = self._dump(node_ns, pod_ns, wg_views, wg6_views)
            except NetnsError as err:  # vanished or broken while we looked
                nodes.append(NodeStatus(node.name, (Check("namespaces", False, str(err)),)))
                continue
            nodes.append(NodeStatus(node.name, node_checks(self.spec, self.names, node.name, dump)))
        return LabStatus(self.names.prefix, namespaces, tuple(nodes), self.spec.dataplane)

    def _dump(self, node_ns: str, pod_ns: str, wg_views: tuple[dict, dict] | None = None,
              wg6_views: tuple[dict, dict] | None = None) -> NodeDump:
        links, routes = netns.query("ip", node_ns, ["addr show", "route show"], details=True)
        (fdb,) = netns.query("bridge", node_ns, ["fdb show"])
        pod_links, pod_routes = netns.query("ip", pod_ns, ["addr show", "route show"], details=True)
        extra = {}
        if self.spec.has_ipv6:
            (extra["routes6"],) = netns.query("ip", node_ns, ["route show"], family="-6")
            (extra["pod_routes6"],) = netns.query("ip", pod_ns, ["route show"], family="-6")
            extra["fdb6"] = [e for e in fdb if e.get("ifname") == VXLAN_V6_DEVICE]
        if wg_views is not None:
            extra["wg"], extra["wg_keys"] = wg_views[0].get(node_ns), wg_views[1]
        if wg6_views is not None:
            extra["wg6"], extra["wg6_keys"] = wg6_views[0].get(node_ns), wg6_views[1]
        vtep = VXLAN_DEVICE
        if self.spec.flannel is not None:
            vtep = self.spec.flannel.device
            (extra["neighbours"],) = netns.query("ip", node_ns, ["neigh show"])
        if self.spec.cilium is not None:
            extra["neighbours"], extra["all_routes"], extra["rules"] = netns.query(
                "ip", node_ns, ["neigh show", "route show table all", "rule show"], details=True)
        if self.spec.antrea is not None:
            node = next(n.name for n in self.spec.topology.nodes if self.names.node(n.name) == node_ns)
            extra["ovs"] = ovs.read(self._ovs_dirs()[node])
        return NodeDump(
            links=links,
            routes=routes,
            fdb=[e for e in fdb if e.get("ifname") == vtep],
            pod_links=pod_links,
            pod_routes=pod_routes,
            **extra,
        )

    def _wg_views(self, present: set[str], device: str) -> tuple[dict[str, dict | None], dict[str, str]]:
        """Every node's `wg show dump` (by namespace), and every node's public key (to check peers'
        keys against): read once per status, not once per node."""
        views: dict[str, dict | None] = {}
        for node in self.spec.topology.nodes:
            ns = self.names.node(node.name)
            pid = wireguard.find(ns, device) if ns in present else None
            try:
                views[ns] = dataplanes.parse_wg_dump(wireguard.dump(pid, device)) if pid else None
            except NetnsError:
                views[ns] = None
        keys = {node.name: view["public_key"] for node in self.spec.topology.nodes
                if (view := views.get(self.names.node(node.name)))}
        return views, keys

    def wireguard_pids(self, device: str | None = None) -> dict[str, int]:
        """node -> the pid of its wireguard-go (for `device`, else the first found): the WireGuard labs' processes."""
        found = {node.name: wireguard.find(self.names.node(node.name), device) for node in self.spec.topology.nodes}
        return {name: pid for name, pid in found.items() if pid}

    # --- faults and probes --------------------------------------------------

    def apply_fault(self, fault: Fault) -> None:
        netns.run_steps(fault_steps(self.spec, self.names, fault))

    def ping(
        self,
        src_node: str,
        dst_ip: IPv4Address | str,
        count: int = 3,
        size: int | None = None,
        dont_fragment: bool = False,
        timeout: float = 1.0,
        interval: float = 0.2,
    ) -> PingResult:
        """Ping from the source node's pod; never raises for loss, only for a lab that is not there."""
        return self.ping_output(src_node, dst_ip, count, size, dont_fragment, timeout, interval)[0]

    def ping_output(
        self,
        src_node: str,
        dst_ip: IPv4Address | str,
        count: int = 1,
        size: int | None = None,
        dont_fragment: bool = False,
        timeout: float = 1.0,
        interval: float = 0.2,
    ) -> tuple[PingResult, str]:
        """`ping`, and everything ping said (stdout, then stderr): MTU messages are not in the statistics."""
        argv = ping_argv(dst_ip, count, interval, timeout, size, dont_fragment)
        budget = count * interval + timeout + 5.0
        # ping forked from a thread inside the pod's namespace starts there: no `ip netns exec`.
        try:
            with netns.entered(self.pod_netns(src_node)):
                proc = netns.run(argv, check=False, timeout=budget)
        except NetnsError as err:
            raise NetnsError(f"ping from {src_node}: {err}") from None
        if proc.returncode not in (0, 1, 2):
            raise NetnsError(f"ping from {src_node}: {proc.stderr.strip() or proc.returncode}")
        return parse_ping(proc.stdout, proc.stderr, proc.returncode), proc.stdout + proc.stderr

    def tcp_exchange(self, src_node: str, dst_node: str, timeout: float = DEFAULT_TIMEOUT_S,
                     ipv6: bool = False) -> tuple[bool, str]:
        """One short TCP connection from src_node's pod to dst_node's: (connected, what happened).

        Both sockets are made in this process, each inside its pod's namespace (a
        socket stays where it was made), so the kernel gives each SYN the MSS of
        its own pod's route: no interpreter to start, no port to agree on.
        `ipv6`: to dst_node's pod's IPv6 address (the vxlan6 and dual labs).
        """
        dst_ip = str(self.spec.node6(dst_node).pod_ip if ipv6 else self.pod(dst_node).ip)
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        listener = self._socket_in(self.pod_netns(dst_node), family)
        try:
            connector = self._socket_in(self.pod_netns(src_node), family)
        except BaseException:
            listener.close()
            raise
        with listener, connector:
            try:
                listener.bind((dst_ip, 0))  # port 0: the kernel's choice, so directions never collide
                listener.listen(1)
            except OSError as err:
                return False, f"listener on {dst_ip} in {self.pod_netns(dst_node)} did not start: {err.strerror or err}"
            port = listener.getsockname()[1]
            try:
                connector.settimeout(timeout)
                connector.connect((dst_ip, port))
                connector.sendall(TCP_GREETING)
            except OSError as err:  # timeouts included: what a broken path looks like
                return False, f"{dst_ip}:{port}: no connection: {err.strerror or err}"
            # The handshake completed in the kernel's backlog; accepting is only the listener's side of the story.
            listener.settimeout(timeout)
            try:
                accepted, peer = listener.accept()
                with accepted:
                    accepted.settimeout(timeout)
                    heard = accepted.recv(len(TCP_GREETING))
            except OSError as err:
                return True, f"{dst_ip}:{port}: connected; listener did not accept: {err.strerror or err}"
            return True, f"{dst_ip}:{port}: connected; accepted {peer[0]}, {len(heard)} bytes"

    @staticmethod
    def _socket_in(ns: str, family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
        with netns.entered(ns):
            try:
                return socket.socket(family, socket.SOCK_STREAM)
            except OSError as err:
                raise NetnsError(f"no TCP socket in {ns}: {err.strerror or err}") from None

    def start_capture(
        self,
        node: str,
        path: Path,
        bpf: str,
        snaplen: int = DEFAULT_SNAPLEN,
        max_packets: int = DEFAULT_MAX_PACKETS,
    ) -> RunningCapture:
        """tcpdump on the node's underlay interface, listening when this returns, ended with SIGINT after
        DEFAULT_DURATION_S by a watchdog (tcpdump.start_many) if nothing stops it before."""
        argv = tcpdump_argv(self.spec.underlay_iface, path, bpf, snaplen, max_packets, duration=None,
                            ring_kib=lab_buffer_kib(snaplen))
        return tcpdump.start(netns.exec_prefix(self.node_netns(node)), argv, Path(path), duration=DEFAULT_DURATION_S)

    def start_captures(
        self, requests: list[tuple[str, Path, str]], snaplen: int = DEFAULT_SNAPLEN, max_packets: int = DEFAULT_MAX_PACKETS,
        duration: float = DEFAULT_DURATION_S,
    ) -> list[RunningCapture | tcpdump.TcpdumpError]:
        """`start_capture` for (node, path, bpf) each, their start-ups overlapping.

        Each tcpdump is started from this thread inside the node's namespace, not behind `ip netns
        exec`: that costs an exec, a mount namespace and a /sys remount per node (about 3 ms, 256
        times), and tcpdump on a named interface needs none of /sys. Their time bound, `duration`, is
        kept by one watchdog process for them all, not by a `timeout` exec in front of each."""
        specs = [([], tcpdump_argv(self.spec.underlay_iface, path, bpf, snaplen, max_packets, duration=None,
                                   ring_kib=lab_buffer_kib(snaplen)), Path(path), partial(netns.entered, self.node_netns(node)))
                 for node, path, bpf in requests]
        # A few dozen at a time: hundreds of tcpdumps starting together would only queue for two cores
        # and could miss the ready timeout.
        return tcpdump.start_many(specs, duration=duration, batch=CAPTURE_START_BATCH)

    def namespaces_present(self) -> tuple[NamespaceStatus, ...]:
        """Which of the lab's namespaces exist, without reading their tables (cheap at any size)."""
        present = netns.list_netns()
        return tuple(NamespaceStatus(name, role, name in present, adopted)
                     for name, role, adopted in namespace_roles(self.spec, self.names))

    def node_tables(self, node: str) -> dict[str, str]:
        """The node's data plane as the kernel reports it, one JSON text per file name."""
        ns = self.node_netns(node)
        # One `ip` for the three: -d adds nothing to routes and neighbours but costs a process less per node.
        # Saved as the tools printed them: re-encoding a 256-node lab's tables cost more than reading them.
        link, route, neigh = netns.query_texts("ip", ns, ["link show", "route show", "neigh show"], details=True)
        (fdb,) = netns.query_texts("bridge", ns, ["fdb show"])
        docs = {rundir.NODE_LINKS: link, rundir.ROUTES: route, rundir.NEIGHBOURS: neigh, rundir.FDB: fdb}
        return {name: text + "\n" for name, (_doc, text) in docs.items()}

    def node_links(self, node: str) -> str:
        """The node's links with `ip -d -j link`'s names and values, as JSON text: without the routes, neighbours
        and FDB of `node_tables` (a neighbour dump walks every namespace's entries: at 256 nodes most of a
        table read). Read over netlink in this process (adapters.netlink_links): no `ip` process per node."""
        return netlink_links.links_json(self.node_netns(node)) + "\n"

    def pod_links(self, node: str) -> str:
        """The node's test pod's links, as `node_links`: its eth0 MTU is part of every path's limit."""
        return netlink_links.links_json(self.pod_netns(node)) + "\n"
