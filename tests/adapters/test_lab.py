"""The embedded lab on the real kernel: built, sealed, probed, captured, broken, removed.

Every wire claim is checked on frames tcpdump really captured on a node's
eth1, decoded with the reference decoder. Needs root; skips cleanly without.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

from tests.lab_support import (
    SESSION_PREFIX,
    k01_spec,
    lab_session_guard,  # noqa: F401 - the session fixture this module uses
    lab_test,
    read_frames,
    running_lab,
    session_namespaces,
)
from vxcap.adapters import netns
from vxcap.adapters.lab import NetnsLab
from vxcap.adapters.netns import NetnsError
from vxcap.core.capture import bpf_filter
from vxcap.core.model import Wire
from vxcap.core.lab.faults import CrossSubnetPlain, FdbWrongNode, PodMtu, SameSubnetViaVxlan, VniMismatch
from vxcap.core.lab.plan import Step

pytestmark = pytest.mark.usefixtures("lab_session_guard")

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"
# From the lab file and the lesson: underlay addresses, pod IPs (block + 1), VTEP MACs.
UNDERLAY = {CP: IPv4Address("10.10.10.10"), W: IPv4Address("10.10.10.11"),
            W2: IPv4Address("10.10.10.12"), W3: IPv4Address("10.10.20.13")}
POD = {CP: IPv4Address("192.168.23.65"), W: IPv4Address("192.168.81.65"),
       W2: IPv4Address("192.168.164.129"), W3: IPv4Address("192.168.209.65")}
VTEP_MAC = {W: "66:fb:ad:98:aa:13", W2: "66:c7:4d:6e:6b:f3", W3: "66:d2:0c:f0:ef:e5"}
POOL = k01_spec().topology.pool


def capture(lab, node, tmp_path, ping_from, ping_to, **ping):
    """Capture `node`'s eth1 while `ping_from`'s pod pings `ping_to`'s pod; (ping result, frames)."""
    path = tmp_path / f"{node}.pcap"
    bpf = bpf_filter(POOL, list(UNDERLAY.values()))
    with lab.start_capture(node, path, bpf, snaplen=256, max_packets=1000) as cap:
        result = lab.ping(ping_from, POD[ping_to], **ping)
        stats = cap.stop()
    assert stats.dropped == 0
    frames = read_frames(path)
    assert stats.captured >= len(frames)
    return result, frames


def flow(frames, src, dst):
    return [f for f in frames if (f.src, f.dst) == (POD[src], POD[dst])]


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


# --- building --------------------------------------------------------------------


@lab_test
def test_up_builds_a_healthy_lab_quickly_and_a_second_up_changes_nothing():
    lab = NetnsLab(k01_spec(), prefix=SESSION_PREFIX)
    try:
        started = time.monotonic()
        status = lab.up()
        took = time.monotonic() - started
        assert status.healthy, status.to_dict()
        assert took < 2.0, f"up took {took:.2f} s"
        assert session_namespaces() == {
            f"{SESSION_PREFIX}-k01-switch",
            *(f"{SESSION_PREFIX}-{n}" for n in (CP, W, W2, W3)),
            *(f"{SESSION_PREFIX}-{n}-pod" for n in (CP, W, W2, W3)),
        }
        before = json.loads(run(["ip", "-j", "-n", lab.node_netns(W3), "link", "show", "vxlan.calico"]))
        again = lab.up()
        after = json.loads(run(["ip", "-j", "-n", lab.node_netns(W3), "link", "show", "vxlan.calico"]))
        assert again.healthy
        assert before[0]["ifindex"] == after[0]["ifindex"]  # the same device: nothing was rebuilt
        rendered = json.dumps(again.to_dict())
        assert '"healthy": true' in rendered
    finally:
        removed = lab.down()
    assert len(removed.namespaces) == 9
    assert session_namespaces() == set()


@lab_test
def test_the_lab_is_sealed_no_default_route_but_the_pods_and_nothing_on_the_host():
    host_links = {link["ifname"] for link in json.loads(run(["ip", "-j", "link", "show"]))}
    with running_lab() as lab:
        spec = lab.spec
        for ns in [lab.names.switch, *(lab.node_netns(n.name) for n in spec.topology.nodes)]:
            routes = json.loads(run(["ip", "-j", "-n", ns, "route", "show"]))
            assert not [r for r in routes if r.get("dst") == "default"], (ns, routes)
        for node in spec.topology.nodes:
            routes = json.loads(run(["ip", "-j", "-n", lab.pod_netns(node.name), "route", "show"]))
            defaults = [r for r in routes if r.get("dst") == "default"]
            assert [(r["gateway"], r["dev"]) for r in defaults] == [("169.254.1.1", "eth0")]
        assert {link["ifname"] for link in json.loads(run(["ip", "-j", "link", "show"]))} == host_links
        # No namespace of the lab has a way out: an address outside it has no route anywhere.
        for ns in [lab.names.switch, *(lab.node_netns(n.name) for n in spec.topology.nodes)]:
            lookup = subprocess.run(["ip", "-n", ns, "route", "get", "192.0.2.1"], capture_output=True, text=True)
            assert lookup.returncode != 0 and "unreachable" in lookup.stderr, (ns, lookup.stdout)


@lab_test
def test_pods_reach_each_other_through_proxy_arp_on_every_path():
    with running_lab() as lab:
        for src in (CP, W, W2, W3):
            for dst in (CP, W, W2, W3):
                if src != dst:
                    result = lab.ping(src, POD[dst], count=1, interval=0.2, timeout=1.0)
                    assert result.all_replied, (src, dst, result)
        neigh = json.loads(run(["ip", "-j", "-n", lab.pod_netns(W), "neigh", "show"]))
        gateway = [n for n in neigh if n["dst"] == "169.254.1.1"]
        assert gateway and gateway[0]["lladdr"] == "ee:ee:ee:ee:ee:ee"  # answered by the cali veth


@lab_test
def test_a_partial_lab_is_rebuilt():
    with running_lab() as lab:
        run(["ip", "netns", "delete", lab.node_netns(W3)])
        status = lab.status()
        assert not status.healthy
        assert [ns.name for ns in status.namespaces if not ns.exists] == [lab.node_netns(W3)]
        assert lab.up().healthy
        assert lab.ping(W, POD[W3], count=1).all_replied


@lab_test
def test_a_broken_lab_shows_what_is_wrong_and_up_repairs_it():
    with running_lab() as lab:
        lab.apply_fault(VniMismatch(W3, 4097))
        status = lab.status()
        assert not status.healthy
        bad = {n.node: [c.name for c in n.problems()] for n in status.nodes if not n.ok}
        assert bad == {W3: ["vxlan.calico"]}
        assert "4097" in status.nodes[3].problems()[0].detail
        assert lab.up().healthy
        assert lab.ping(W, POD[W3], count=1).all_replied


@lab_test
def test_down_removes_only_what_the_lab_made(tmp_path):
    decoy = f"{SESSION_PREFIX}-decoy"  # our prefix, but no part of the lab
    run(["ip", "netns", "add", decoy])
    try:
        lab = NetnsLab(k01_spec(), prefix=SESSION_PREFIX)
        lab.up()
        sleeper = subprocess.Popen(["ip", "netns", "exec", lab.pod_netns(W), "sleep", "60"])
        time.sleep(0.2)
        removed = lab.down()
        assert sleeper.wait(5) != 0  # killed: it would have kept the namespace alive
        assert sleeper.pid in removed.killed
        assert set(removed.namespaces) == set(lab.names.owned(lab.spec))
        assert session_namespaces() == {decoy}
        assert lab.down().namespaces == ()  # nothing left to remove
        assert not lab.status().exists
    finally:
        run(["ip", "netns", "delete", decoy])


@lab_test
def test_adopted_namespace_is_used_as_the_node_and_kept_on_down():
    kept = f"{SESSION_PREFIX}-adopted"  # stands for a Docker container's namespace
    run(["ip", "netns", "add", kept])
    run(["ip", "-n", kept, "link", "add", "keepme", "type", "bridge"])
    try:
        with running_lab(adopt={W3: kept}) as lab:
            assert lab.node_netns(W3) == kept
            assert lab.ping(W, POD[W3], count=1).all_replied
            removed = lab.down()
            assert kept not in removed.namespaces and removed.adopted_cleaned == (kept,)
            links = {link["ifname"] for link in json.loads(run(["ip", "-j", "-n", kept, "link", "show"]))}
            assert links == {"lo", "keepme"}  # eth1, vxlan.calico, cali and the rest are gone
            routes = json.loads(run(["ip", "-j", "-n", kept, "route", "show"]))
            assert routes == []
            assert lab.down(detach_adopted=True).detached == (kept,)
        assert kept not in netns.list_netns()
    finally:
        if kept in netns.list_netns():
            run(["ip", "netns", "delete", kept])


@lab_test
def test_adopting_a_namespace_that_does_not_exist_is_a_clear_error():
    lab = NetnsLab(k01_spec(), prefix=SESSION_PREFIX, adopt={W3: f"{SESSION_PREFIX}-nosuch"})
    with pytest.raises(NetnsError, match="does not exist"):
        lab.up()
    assert session_namespaces() == set()


@lab_test
def test_a_failing_step_names_the_command_and_the_kernel_answer():
    with pytest.raises(NetnsError, match=r"nosuchdev.*(Cannot find device|does not exist)"):
        netns.run_steps([Step(None, ("ip", "link", "set", "nosuchdev", "up"))])
    with pytest.raises(NetnsError, match="Cannot open network namespace"):
        netns.run_steps([Step(f"{SESSION_PREFIX}-nosuch", ("ip", "link", "show")),
                         Step(f"{SESSION_PREFIX}-nosuch", ("ip", "addr", "show"))])


# --- the wire ------------------------------------------------------------------


@lab_test
def test_healthy_wire_cross_subnet_is_vxlan_same_subnet_is_plain(tmp_path):
    with running_lab() as lab:
        result, frames = capture(lab, W, tmp_path, W, W3, count=3)
        assert result.all_replied
        out, back = flow(frames, W, W3), flow(frames, W3, W)
        assert len(out) == 3 and len(back) == 3
        for f in out:
            assert f.encap is Wire.VXLAN and f.udp_dport == 4789 and f.vni == 4096
            assert (f.outer_src, f.outer_dst) == (UNDERLAY[W], UNDERLAY[W3])
            assert f.inner_dst_mac == VTEP_MAC[W3]
        assert all((f.outer_src, f.outer_dst, f.vni) == (UNDERLAY[W3], UNDERLAY[W], 4096) for f in back)

        result, frames = capture(lab, W, tmp_path, W, W2, count=3)
        assert result.all_replied
        assert len(flow(frames, W, W2)) == 3 and len(flow(frames, W2, W)) == 3
        assert all(f.encap is Wire.PLAIN for f in flow(frames, W, W2) + flow(frames, W2, W))


@lab_test
def test_fault_vni_mismatch_puts_the_other_vni_on_the_wire(tmp_path):
    with running_lab() as lab:
        lab.apply_fault(VniMismatch(W3, 4097))
        result, frames = capture(lab, W, tmp_path, W3, W, count=2)
        assert result.received == 0  # worker's VTEP drops VNI 4097
        sent = flow(frames, W3, W)
        assert len(sent) == 2 and {f.vni for f in sent} == {4097}
        assert {(f.outer_src, f.outer_dst) for f in sent} == {(UNDERLAY[W3], UNDERLAY[W])}
        assert flow(frames, W, W3) == []
        # The node's other VXLAN peers were put back after the rebuild: its FDB still finds them.
        fdb = json.loads(lab.node_tables(W3)["fdb.json"])
        assert {(e["mac"], e.get("dst")) for e in fdb if e.get("ifname") == "vxlan.calico"} >= {
            ("66:fb:ad:98:aa:13", "10.10.10.11"), ("66:c7:4d:6e:6b:f3", "10.10.10.12"), ("66:15:9d:fa:c6:aa", "10.10.10.10")}


@lab_test
def test_fault_same_subnet_via_vxlan_encapsulates_to_a_neighbour(tmp_path):
    with running_lab() as lab:
        lab.apply_fault(SameSubnetViaVxlan(W, W2))
        result, frames = capture(lab, W, tmp_path, W, W2, count=2)
        assert result.all_replied  # worker2's VTEP takes it; the replies come back plain
        out = flow(frames, W, W2)
        assert len(out) == 2
        assert all(f.encap is Wire.VXLAN and f.vni == 4096 and (f.outer_src, f.outer_dst) == (UNDERLAY[W], UNDERLAY[W2])
                   for f in out)
        assert all(f.encap is Wire.PLAIN for f in flow(frames, W2, W))


@lab_test
def test_fault_fdb_wrong_node_sends_the_tunnel_to_the_third_node(tmp_path):
    with running_lab() as lab:
        lab.apply_fault(FdbWrongNode(W, W3, CP))
        result, frames = capture(lab, W, tmp_path, W, W3, count=2)
        assert result.received == 0
        out = flow(frames, W, W3)
        assert len(out) == 2
        assert {(f.encap, f.outer_dst, f.inner_dst_mac) for f in out} == {(Wire.VXLAN, UNDERLAY[CP], VTEP_MAC[W3])}


@lab_test
def test_fault_cross_subnet_plain_puts_pod_addresses_on_the_underlay(tmp_path):
    with running_lab() as lab:
        lab.apply_fault(CrossSubnetPlain(W, W3))
        result, frames = capture(lab, W, tmp_path, W, W3, count=2)
        assert result.received == 0  # the switch knows no pod block
        out = flow(frames, W, W3)
        assert len(out) == 2 and all(f.encap is Wire.PLAIN for f in out)


@lab_test
def test_fault_pod_mtu_refuses_df_locally_and_fragments_the_rest(tmp_path):
    with running_lab() as lab:
        healthy_result, healthy = capture(lab, W, tmp_path, W, W3, count=1, size=1200)
        assert healthy_result.all_replied
        assert [f.inner_len for f in flow(healthy, W, W3)] == [1228]  # one packet: 1200 + ICMP 8 + IPv4 20

        lab.apply_fault(PodMtu(W, 1000))
        refused = lab.ping(W, POD[W3], count=2, size=1200, dont_fragment=True)
        assert refused.received == 0 and refused.local_errors == 2
        result, frames = capture(lab, W, tmp_path, W, W3, count=1, size=1200)
        out, back = flow(frames, W, W3), flow(frames, W3, W)
        assert len(out) == 2 and max(f.inner_len for f in out) <= 1000  # the pod fragments it
        assert all(f.encap is Wire.VXLAN for f in out)
        # worker3's whole 1228-byte reply crosses the wire, then is too big for the pod's eth0.
        assert [f.inner_len for f in back] == [1228]
        assert result.received == 0


# --- probes without `ip netns exec` ---------------------------------------------


def thread_ns() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def syn_mss(pcap, src, dst):
    """MSS options of the SYNs (and SYN-ACKs) src -> dst in a pcap, read by scapy: {(flags, mss)}."""
    seen = set()
    for pkt in rdpcap(str(pcap)):
        ip = pkt[VXLAN].payload.getlayer(IP) if pkt.haslayer(VXLAN) else pkt.getlayer(IP)
        if ip is not None and (ip.src, ip.dst) == (str(POD[src]), str(POD[dst])) and ip.haslayer(TCP) and ip[TCP].flags.S:
            seen |= {(str(ip[TCP].flags), v) for name, v in ip[TCP].options if name == "MSS"}
    return seen


@lab_test
def test_pings_from_many_threads_each_leave_from_their_own_pod(tmp_path):
    with running_lab() as lab:
        home = thread_ns()
        bpf = bpf_filter(POOL, list(UNDERLAY.values()))
        pairs = [(src, dst) for src in (CP, W, W2, W3) for dst in (CP, W, W2, W3) if src != dst]
        homes_after = []

        def one(pair):
            result = lab.ping(pair[0], POD[pair[1]], count=1, timeout=1.0)
            homes_after.append(thread_ns())
            return result

        with lab.start_capture(W, tmp_path / "w.pcap", bpf, snaplen=256, max_packets=1000) as cap:
            with ThreadPoolExecutor(max_workers=8) as pool:
                results = list(pool.map(one, pairs))
            cap.stop()
        assert all(r.all_replied for r in results), results
        assert thread_ns() == home and len(set(homes_after)) == 1 and home in homes_after
        frames = read_frames(tmp_path / "w.pcap")
        # Only worker's own pod's echoes leave worker's eth1 from worker's pod address, each encapsulated as its path wants.
        assert {(f.src, f.dst, f.encap) for f in frames if f.src == POD[W]} == {
            (POD[W], POD[CP], Wire.PLAIN), (POD[W], POD[W2], Wire.PLAIN), (POD[W], POD[W3], Wire.VXLAN)}
        assert all(f.outer_src == UNDERLAY[W] for f in frames if f.src == POD[W] and f.encap is Wire.VXLAN)


@lab_test
def test_a_ping_from_a_missing_pod_is_the_namespace_error():
    with running_lab() as lab:
        run(["ip", "netns", "delete", lab.pod_netns(W)])
        home = thread_ns()
        with pytest.raises(NetnsError, match=rf'^ping from {W}: Cannot open network namespace "{lab.pod_netns(W)}"'):
            lab.ping(W, POD[W3], count=1)
        assert thread_ns() == home


@lab_test
def test_tcp_exchange_syns_carry_each_pods_own_mss(tmp_path):
    with running_lab() as lab:
        bpf = bpf_filter(POOL, list(UNDERLAY.values()))
        home = thread_ns()
        for pod_mtu in (None, 1000):
            if pod_mtu is not None:
                lab.apply_fault(PodMtu(W, pod_mtu))
            path = tmp_path / f"tcp-{pod_mtu}.pcap"
            with lab.start_capture(W, path, bpf, snaplen=256, max_packets=1000) as cap:
                ok, detail = lab.tcp_exchange(W, W3)
                time.sleep(0.2)  # the FINs
                cap.stop()
            assert ok, detail
            assert detail.startswith(f"{POD[W3]}:") and "connected" in detail and f"accepted {POD[W]}" in detail
            # The SYN's MSS is the connector's pod route (eth0 MTU - 40); the SYN-ACK's is worker3's pod's.
            assert syn_mss(path, W, W3) == {("S", (pod_mtu or 1450) - 40)}
            assert syn_mss(path, W3, W) == {("SA", 1410)}
        assert thread_ns() == home


@lab_test
def test_tcp_exchange_on_a_broken_path_says_no_connection_within_its_timeout():
    with running_lab() as lab:
        lab.apply_fault(CrossSubnetPlain(W, W3))
        started = time.monotonic()
        ok, detail = lab.tcp_exchange(W, W3, timeout=1.0)
        assert not ok and detail.startswith(f"{POD[W3]}:") and "no connection" in detail
        assert time.monotonic() - started < 3.0


# --- evidence and captures -----------------------------------------------------


@lab_test
def test_evidence_is_the_kernels_json_for_the_node():
    with running_lab() as lab:
        files = lab.node_tables(W)
        assert set(files) == {"link.json", "route.json", "neigh.json", "fdb.json"}
        links = json.loads(files["link.json"])
        vx = next(link for link in links if link["ifname"] == "vxlan.calico")
        assert vx["linkinfo"]["info_data"]["id"] == 4096 and vx["address"] == VTEP_MAC[W]
        routes = json.loads(files["route.json"])
        assert {"dst": "192.168.209.64/26", "gateway": "192.168.209.64", "dev": "vxlan.calico"}.items() <= next(
            r for r in routes if r["dst"] == "192.168.209.64/26").items()
        neigh = json.loads(files["neigh.json"])
        assert any(n["dst"] == "192.168.209.64" and n["lladdr"] == VTEP_MAC[W3] for n in neigh)


@lab_test
def test_a_capture_never_outlives_its_block(tmp_path):
    with running_lab() as lab:
        with pytest.raises(RuntimeError, match="boom"):
            with lab.start_capture(W, tmp_path / "x.pcap", "", max_packets=10) as cap:
                pid = cap.pid
                raise RuntimeError("boom")
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert netns.netns_pids(lab.node_netns(W)) == []
