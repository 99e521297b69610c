"""Calico's other data planes in the embedded lab, proved on the wire: VXLAN over IPv6,
dual-stack, WireGuard (wireguard-go), IPIP (the kernel's tunl0, or a userspace one without the module),
and each one's fault twins.

Every pcap here is taken on a node's eth1 during the test and read with scapy's own
dissection (not vxcap's decoder): outer headers, ports, VNI, WireGuard message types,
and the pod addresses inside. Labs use this session's prefix (tests/lab_support.py).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

from tests.lab_scaffold import assert_wireguard_go_gone, cli_lab, faulted_lab, ip_json, vxcap, wait_until
from tests.lab_support import (  # noqa: F401 (fixture)
    SESSION_PREFIX,
    captured,
    dataplane_spec,
    lab_session_guard,
    lab_test,
    running_lab,
)
from vxcap.adapters import children, netns, wireguard
from vxcap.adapters.lab import NetnsLab
from vxcap.core.lab.dataplanes import parse_wg_dump
from vxcap.core.lab.faults import Fdb6WrongNode, Vxlan6Ipv4Mtu, Vxlan6SameSubnet, Wireguard6Plaintext, WireguardPlaintext
from vxcap.exit_status import ExitStatus
from vxcap.targets.lab import LabMemory

pytestmark = pytest.mark.usefixtures("lab_session_guard")

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"


def vxlan6_packets(pcap: Path, inner_src: str, inner_dst: str) -> list:
    """Outer IPv6 / UDP / VXLAN packets whose inner IPv6 is inner_src -> inner_dst."""
    found = []
    for pkt in rdpcap(str(pcap)):
        if pkt.haslayer(VXLAN) and pkt.getlayer(IPv6) is not None:
            inner = pkt[VXLAN].payload.getlayer(IPv6)
            if inner is not None and (inner.src, inner.dst) == (inner_src, inner_dst):
                found.append(pkt)
    return found


def plain6_packets(pcap: Path, src: str, dst: str) -> list:
    """IPv6 packets on the underlay whose own (outer) addresses are src -> dst, not in a tunnel."""
    return [p for p in rdpcap(str(pcap)) if p.haslayer(IPv6) and not p.haslayer(VXLAN)
            and (p[IPv6].src, p[IPv6].dst) == (src, dst)]


def pod6(spec, node: str) -> str:
    return str(spec.node6(node).pod_ip)


def addr6(spec, node: str) -> str:
    return str(spec.node6(node).address)


def pod4(spec, node: str) -> str:
    return str(spec.pod_on(node).ip)


def addr4(spec, node: str) -> str:
    return str(spec.topology.node(node).address)


def ping_ok(lab, src: str, dst: str, count: int = 3) -> None:
    result = lab.ping(src, dst, count=count, timeout=2.0)
    assert result.received == count, (src, dst, result)


# --------------------------------------------------------------------- VXLAN over IPv6


@lab_test
def test_vxlan6_crosses_subnets_in_ipv6_vxlan_and_stays_plain_ipv6_inside_one(tmp_path):
    spec = dataplane_spec("vxlan6")
    with running_lab(spec=spec) as lab:
        with captured(lab, W, tmp_path / "w.pcap", "ip6") as w_pcap, captured(lab, W3, tmp_path / "w3.pcap", "ip6") as w3_pcap:
            ping_ok(lab, W, pod6(spec, W3))
            ping_ok(lab, W, pod6(spec, W2))
        for pcap in (w_pcap, w3_pcap):
            for src, dst in ((W, W3), (W3, W)):
                packets = vxlan6_packets(pcap, pod6(spec, src), pod6(spec, dst))
                assert len(packets) >= 3, (pcap.name, src, dst)
                for pkt in packets:
                    assert (pkt[IPv6].src, pkt[IPv6].dst) == (addr6(spec, src), addr6(spec, dst))
                    assert pkt[UDP].dport == 4789 and pkt[VXLAN].vni == 4096
        # Same IPv6 subnet: the pod packet itself on eth1, no VXLAN.
        assert len(plain6_packets(w_pcap, pod6(spec, W), pod6(spec, W2))) >= 3
        assert not vxlan6_packets(w_pcap, pod6(spec, W), pod6(spec, W2))
        # IPv6 only: no IPv4 packet at all on the underlay.
        assert not [p for p in rdpcap(str(w_pcap)) if p.haslayer(IP)]


@lab_test
def test_vxlan6_largest_df_packet_is_1430_and_fills_a_1500_byte_outer_packet(tmp_path):
    spec = dataplane_spec("vxlan6")
    biggest = 1430 - 40 - 8  # ICMPv6 payload of a 1430-byte IPv6 packet
    with running_lab(spec=spec) as lab:
        with captured(lab, W, tmp_path / "w.pcap", "ip6 and udp port 4789") as pcap:
            fits, _ = lab.ping_output(W, pod6(spec, W3), count=1, size=biggest, dont_fragment=True, timeout=2.0)
            too_big, said = lab.ping_output(W, pod6(spec, W3), count=1, size=biggest + 1, dont_fragment=True)
            connected, story = lab.tcp_exchange(W, W3, ipv6=True)
        assert connected, story
        syns = [p for p in vxlan6_packets(pcap, pod6(spec, W), pod6(spec, W3))
                if p[VXLAN].payload.haslayer(TCP) and p[VXLAN].payload[TCP].flags == "S"]
        assert len(syns) == 1
        # The pod's MSS: its 1430 MTU less the IPv6 (40) and TCP (20) headers.
        assert dict(syns[0][VXLAN].payload[TCP].options)["MSS"] == 1430 - 60
        assert fits.received == 1
        assert too_big.received == 0 and re.search(r"message too long, mtu[:=] ?1430", said), said
        requests = [p for p in vxlan6_packets(pcap, pod6(spec, W), pod6(spec, W3)) if not p[VXLAN].payload.haslayer(TCP)]
        # UDP 8 + VXLAN 8 + inner Ethernet 14 + inner IPv6 1430: a 1500-byte outer IPv6 packet, not fragmented.
        assert [p[IPv6].plen + 40 for p in requests] == [1500]
        assert not any(p.haslayer(IPv6ExtHdrFragment) for p in rdpcap(str(pcap)))


# --------------------------------------------------------------------- dual stack


@lab_test
def test_dual_stack_carries_ipv4_in_ipv4_vxlan_and_ipv6_in_ipv6_vxlan(tmp_path):
    spec = dataplane_spec("dual")
    with running_lab(spec=spec) as lab:
        with captured(lab, W3, tmp_path / "w3.pcap") as pcap:
            ping_ok(lab, W, pod4(spec, W3))
            ping_ok(lab, W, pod6(spec, W3))
        v6 = vxlan6_packets(pcap, pod6(spec, W), pod6(spec, W3))
        assert len(v6) >= 3 and all(p[IPv6].src == addr6(spec, W) and p[VXLAN].vni == 4096 for p in v6)
        v4 = [p for p in rdpcap(str(pcap)) if p.haslayer(VXLAN) and p.getlayer(IP) is not None
              and (p[VXLAN].payload.getlayer(IP).src, p[VXLAN].payload.getlayer(IP).dst) == (pod4(spec, W), pod4(spec, W3))]
        assert len(v4) >= 3
        assert all((p[IP].src, p[IP].dst, p[UDP].dport, p[VXLAN].vni) == (addr4(spec, W), addr4(spec, W3), 4789, 4096)
                   for p in v4)
        assert not any(p.haslayer(IPv6) for p in v4), "IPv4 pods must not ride the IPv6 underlay"
        # Every node's pod MTU is the smaller of the two (1430), and `lab status` checks both VTEPs.
        status = lab.status()
        names = {c.name for n in status.nodes for c in n.checks}
        assert {"vxlan.calico", "vxlan-v6.calico"} <= names and status.healthy


# --------------------------------------------------------------------- WireGuard


def wireguard_messages(pcap: Path, src: str, dst: str, port: int = 51820, ip=IP) -> list[int]:
    """The WireGuard message types (first byte; 1-3 handshake/cookie, 4 transport data) sent src -> dst
    in outer `ip` headers (IP, or IPv6 for wg-v6.cali)."""
    types = []
    for pkt in rdpcap(str(pcap)):
        if pkt.haslayer(UDP) and pkt.getlayer(ip) is not None and (pkt[ip].src, pkt[ip].dst) == (src, dst):
            assert pkt[UDP].dport == port and pkt[UDP].sport == port, pkt.summary()
            payload = bytes(pkt[UDP].payload)
            assert payload[1:4] == b"\0\0\0", "WireGuard's reserved bytes"
            types.append(payload[0])
    return types


def plaintext(pcap: Path, spec, a: str, b: str, ip=IP) -> list:
    """Packets on the underlay whose own addresses (in `ip` headers: IP or IPv6) are the two pods' (in the clear)."""
    pod = pod4 if ip is IP else pod6
    pods = {pod(spec, a), pod(spec, b)}
    return [p for p in rdpcap(str(pcap)) if p.getlayer(ip) is not None and {p[ip].src, p[ip].dst} == pods]


def leaked(tmp_path, name: str, fault, ip=IP):
    """The `name` lab with `fault` leaking worker's pod packets towards worker2's: worker's pod pings worker2's
    while worker's eth1 is captured. (spec, the pcap, its packets between the two pods in the clear (in `ip`
    headers), the names of the checks `lab status` fails.)"""
    spec = dataplane_spec(name)
    pod = pod4 if ip is IP else pod6
    with faulted_lab(spec, fault) as lab:
        with captured(lab, W, tmp_path / "w.pcap") as pcap:
            ping_ok(lab, W, pod(spec, W2))
        problems = {c.name for n in lab.status().nodes for c in n.problems()}
    return spec, pcap, plaintext(pcap, spec, W, W2, ip=ip), problems


def assert_encrypted_both_ways(pcap: Path, spec, node: str, others, ip=IP) -> None:
    """Each node <-> other flow on the wire as WireGuard transport data after a handshake, never in the clear
    (in `ip` headers: IP, or IPv6 for wg-v6.cali)."""
    addr, messages = (addr4, wireguard_messages) if ip is IP else (addr6, wireguard6_messages)
    for other in others:
        sent = messages(pcap, addr(spec, node), addr(spec, other))
        back = messages(pcap, addr(spec, other), addr(spec, node))
        assert sent.count(4) >= 3 and back.count(4) >= 3, (other, sent, back)
        assert 1 in sent + back and 2 in sent + back, "a handshake (initiation and response) came first"
        assert not plaintext(pcap, spec, node, other, ip=ip), f"pod packets W<->{other} in the clear"


@lab_test
def test_wireguard_encrypts_every_pod_flow_and_down_leaves_no_wireguard_go(tmp_path):
    spec = dataplane_spec("wireguard")
    lab_ref = None
    with running_lab(spec=spec) as lab:
        lab_ref = lab
        pids = lab.wireguard_pids()
        assert set(pids) == {CP, W, W2, W3}
        for node, pid in pids.items():
            assert netns.netns_pids(lab.node_netns(node)).count(pid) == 1
        with captured(lab, W, tmp_path / "w.pcap") as pcap:
            ping_ok(lab, W, pod4(spec, W3))  # other subnet
            ping_ok(lab, W, pod4(spec, W2))  # same subnet: Calico encrypts it too
        assert_encrypted_both_ways(pcap, spec, W, (W3, W2))
        assert not [p for p in rdpcap(str(pcap)) if p.haslayer(VXLAN)]
        # What `lab status` reads from wireguard-go: the port and every peer with its block and key.
        checks = {c.name: c for c in next(n for n in lab.status().nodes if n.node == W).checks}
        assert checks["wg listen-port"].ok and checks["wireguard.cali"].ok
        assert all(checks[f"wg peer {o}"].ok for o in (CP, W2, W3))
    assert lab_ref is not None
    assert_wireguard_go_gone(set(pids.values()))


@lab_test
def test_wireguard_largest_df_packet_is_1440_and_fills_a_1500_byte_outer_packet(tmp_path):
    spec = dataplane_spec("wireguard")
    biggest = 1440 - 20 - 8  # ICMP payload of a 1440-byte IPv4 packet
    with running_lab(spec=spec) as lab:
        ping_ok(lab, W, pod4(spec, W3), count=1)  # the handshake, out of the way
        with captured(lab, W, tmp_path / "w.pcap", f"udp and src host {addr4(spec, W)}") as pcap:
            fits, _ = lab.ping_output(W, pod4(spec, W3), count=1, size=biggest, dont_fragment=True, timeout=2.0)
            too_big, said = lab.ping_output(W, pod4(spec, W3), count=1, size=biggest + 1, dont_fragment=True)
        assert fits.received == 1
        assert too_big.received == 0 and re.search(r"message too long, mtu[:=] ?1440", said), said
        # IPv4 20 + UDP 8 + WireGuard's header 16 + the 1440-byte packet + its 16-byte tag: 1500, one packet.
        data = [p for p in rdpcap(str(pcap)) if bytes(p[UDP].payload)[:1] == b"\x04"]
        assert [p[IP].len for p in data] == [1500]
        assert not any(p[IP].flags.MF or p[IP].frag for p in rdpcap(str(pcap)))


@lab_test
def test_lab_status_sees_a_missing_wireguard_go(tmp_path):
    spec = dataplane_spec("wireguard")
    with running_lab(spec=spec) as lab:
        pid = lab.wireguard_pids()[W3]
        subprocess.run(["kill", "-KILL", str(pid)], check=True)
        wait_until(lambda: W3 not in lab.wireguard_pids())
        status = lab.status()
        bad = {n.node: [c.name for c in n.problems()] for n in status.nodes if not n.ok}
        assert not status.healthy
        assert "wireguard.cali" in bad[W3]  # the TUN device went with its process


@lab_test
def test_wireguard_plaintext_fault_puts_the_pod_flow_on_the_wire_in_the_clear(tmp_path):
    # Two nodes of one subnet: the leaked packets reach W2 straight over the switch, so the flow works
    # and only the wire shows what is wrong (across subnets the router, which knows no pod block, drops them).
    spec, pcap, clear, problems = leaked(tmp_path, "wireguard", WireguardPlaintext(W, W2))
    requests = [p for p in clear if p.haslayer(ICMP) and p[ICMP].type == 8 and p[IP].src == pod4(spec, W)]
    assert len(requests) >= 3, "W's echo requests leave eth1 unencrypted"
    # The replies still come back through W2's WireGuard: only the faulty direction leaks.
    assert wireguard_messages(pcap, addr4(spec, W2), addr4(spec, W)).count(4) >= 3
    assert not [p for p in clear if p[IP].src == pod4(spec, W2)]
    assert problems == {f"route {spec.topology.node(W2).block}"}


# --------------------------------------------------------------------- WireGuard over IPv6


def wireguard6_messages(pcap: Path, src: str, dst: str, port: int = 51821) -> list[int]:
    """wireguard_messages for IPv6 outer headers (wg-v6.cali's port, 51821)."""
    return wireguard_messages(pcap, src, dst, port, ip=IPv6)




@lab_test
def test_wireguard6_encrypts_every_ipv6_pod_flow_and_down_leaves_nothing(tmp_path):
    spec = dataplane_spec("wireguard6")
    with running_lab(spec=spec) as lab:
        pids = lab.wireguard_pids()
        assert set(pids) == {CP, W, W2, W3}
        links = {link["ifname"]: link for link in netns.query("ip", lab.node_netns(W), ["link show"])[0]}
        assert "wg-v6.cali" in links and "wireguard.cali" not in links and "vxlan-v6.calico" not in links
        assert links["wg-v6.cali"]["mtu"] == 1420
        with captured(lab, W, tmp_path / "w.pcap") as pcap:
            ping_ok(lab, W, pod6(spec, W3))  # other subnet
            ping_ok(lab, W, pod6(spec, W2))  # same subnet: encrypted too
        assert_encrypted_both_ways(pcap, spec, W, (W3, W2), ip=IPv6)
        # No VXLAN and no IPv4 pod traffic (the kernel's own IGMP joins aside): IPv6 pods, IPv6 underlay.
        assert not [p for p in rdpcap(str(pcap)) if p.haslayer(VXLAN) or p.haslayer(UDP) and p.getlayer(IP) is not None]
        checks = {c.name: c for c in next(n for n in lab.status().nodes if n.node == W).checks}
        assert checks["wg6 listen-port"].ok and checks["wg-v6.cali"].ok
        assert all(checks[f"wg6 peer {o}"].ok for o in (CP, W2, W3))
    assert_wireguard_go_gone(set(pids.values()))


@lab_test
def test_lab_status_sees_a_missing_wireguard6_go_and_a_wrong_peer(tmp_path):
    spec = dataplane_spec("wireguard6")
    with running_lab(spec=spec) as lab:
        # W's peer W2 allowed only W2's block, not its wg-v6.cali address: as a Felix that missed an update.
        pid = lab.wireguard_pids()[W]
        view = parse_wg_dump(wireguard.dump(pid, "wg-v6.cali"))
        key = next(p["public_key"] for p in view["peers"] if p["endpoint"] == f"[{addr6(spec, W2)}]:51821")
        netns.run(["nsenter", "-t", str(pid), "-m", "-n", "wg", "set", "wg-v6.cali", "peer", key,
                   "allowed-ips", str(spec.node6(W2).block)])
        subprocess.run(["kill", "-KILL", str(lab.wireguard_pids()[W3])], check=True)
        wait_until(lambda: W3 not in lab.wireguard_pids())
        status = lab.status()
        bad = {n.node: {c.name: c.detail for c in n.problems()} for n in status.nodes if not n.ok}
        assert not status.healthy
        assert "wg-v6.cali" in bad[W3]  # the TUN device went with its process
        assert "allowed-ips" in bad[W][f"wg6 peer {W2}"], bad[W]


@lab_test
def test_wireguard6_plaintext_fault_puts_the_ipv6_pod_flow_on_the_wire_in_the_clear(tmp_path):
    spec, pcap, clear, problems = leaked(tmp_path, "wireguard6", Wireguard6Plaintext(W, W2), ip=IPv6)
    assert len([p for p in clear if p[IPv6].src == pod6(spec, W)]) >= 3, "W's echo requests leave eth1 unencrypted"
    assert wireguard6_messages(pcap, addr6(spec, W2), addr6(spec, W)).count(4) >= 3
    assert not [p for p in clear if p[IPv6].src == pod6(spec, W2)]
    assert problems == {f"route {spec.node6(W2).block}"}


# --------------------------------------------------------------------- IPv6 fault twins


@lab_test
def test_ipv6_fdb_entry_to_a_third_node_sends_the_vxlan_to_its_address(tmp_path):
    spec = dataplane_spec("vxlan6")
    with faulted_lab(spec, Fdb6WrongNode(W3, W, CP)) as lab:
        with captured(lab, W3, tmp_path / "w3.pcap", "ip6") as pcap:
            result = lab.ping(W3, pod6(spec, W), count=3, timeout=1.0)
        assert result.received == 0
        packets = vxlan6_packets(pcap, pod6(spec, W3), pod6(spec, W))
        assert len(packets) >= 3
        assert {p[IPv6].dst for p in packets} == {addr6(spec, CP)}, "outer IPv6 destination is the third node's"
        status = next(n for n in lab.status().nodes if n.node == W3)
        assert [c.name for c in status.problems()] == [f"fdb6 {spec.node6(W).vtep_mac}"]


@lab_test
def test_ipv4_overhead_mtu_on_the_ipv6_path_lets_pods_send_what_the_tunnel_cannot_carry(tmp_path):
    spec = dataplane_spec("vxlan6")
    size = 1450 - 40 - 8  # a full packet at the IPv4 VXLAN MTU
    with running_lab(spec=spec) as lab:
        healthy, said = lab.ping_output(W, pod6(spec, W3), count=1, size=size, dont_fragment=True)
        # Refused in the pod, as it must be: its eth0 is 1430.
        assert healthy.received == 0 and re.search(r"message too long, mtu[:=] ?1430", said), said
        lab.apply_fault(Vxlan6Ipv4Mtu(W))
        with captured(lab, W, tmp_path / "w.pcap", "ip6") as pcap:
            broken, said = lab.ping_output(W, pod6(spec, W3), count=3, size=size, dont_fragment=True, timeout=1.0)
        assert broken.received == 0
        # The pod now sends 1450-byte packets; the node cannot fit them into one outer IPv6 packet on a
        # 1500-byte eth1 and answers Packet Too Big instead: none of them reaches the wire.
        assert re.search(r"Packet too big: mtu=1430", said), said
        assert not vxlan6_packets(pcap, pod6(spec, W), pod6(spec, W3))
        status = next(n for n in lab.status().nodes if n.node == W)
        assert {"vxlan-v6.calico", "pod eth0"} <= {c.name for c in status.problems()}


@lab_test
def test_same_subnet_ipv6_via_vxlan_is_encapsulated_where_crosssubnet_says_plain(tmp_path):
    spec = dataplane_spec("vxlan6")
    with faulted_lab(spec, Vxlan6SameSubnet(W, W2)) as lab:
        with captured(lab, W, tmp_path / "w.pcap", "ip6") as pcap:
            ping_ok(lab, W, pod6(spec, W2))
        wrapped = vxlan6_packets(pcap, pod6(spec, W), pod6(spec, W2))
        assert len(wrapped) >= 3
        assert all((p[IPv6].src, p[IPv6].dst) == (addr6(spec, W), addr6(spec, W2)) for p in wrapped)
        assert not plain6_packets(pcap, pod6(spec, W), pod6(spec, W2))
        # W2 still answers plain (the fault is one direction).
        assert len(plain6_packets(pcap, pod6(spec, W2), pod6(spec, W))) >= 3


# --------------------------------------------------------------------- IPIP


def kernel_has_ipip() -> bool:
    probe = f"{SESSION_PREFIX}-ipiptest"
    subprocess.run(["ip", "netns", "add", probe], check=True)
    try:
        return subprocess.run(["ip", "-n", probe, "link", "add", "t", "type", "ipip"], capture_output=True).returncode == 0
    finally:
        subprocess.run(["ip", "netns", "delete", probe], check=True)


def ipip_forwarders(spec) -> dict[str, list[int]]:
    """node -> pids of the userspace IPIP forwarders running in its namespace."""
    found = {}
    for node in spec.topology.nodes:
        ns = f"{SESSION_PREFIX}-{node.name}"
        pids = netns.netns_pids(ns) if ns in netns.list_netns() else []
        found[node.name] = [pid for pid in pids if b"vxcap.adapters.ipip_tun" in _cmdline(pid)]
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@lab_test
def test_lab_up_ipip_builds_tunl0_with_or_without_the_module_and_down_stops_every_forwarder(tmp_path):
    spec = dataplane_spec("ipip")
    with cli_lab("--overlay", "ipip", down_clean=True) as result:
        assert "lab is up (ipip)" in result.output
        forwarders = ipip_forwarders(spec)
        if kernel_has_ipip():
            assert not any(forwarders.values()), "the kernel's tunl0 needs no forwarder"
        else:  # one userspace tunl0 per node, and nowhere else
            assert all(len(pids) == 1 for pids in forwarders.values()), forwarders
        lab = NetnsLab(spec, prefix=SESSION_PREFIX)
        assert lab.status().healthy
        tunl0 = ip_json(W, "link", "show", "tunl0")[0]
        assert tunl0["mtu"] == 1480
        with captured(lab, W3, tmp_path / "w3.pcap") as pcap:
            ping_ok(lab, W, pod4(spec, W3))
        ipip = [p for p in rdpcap(str(pcap)) if p.haslayer(IP) and p[IP].proto == 4
                and (p[IP].src, p[IP].dst) == (addr4(spec, W), addr4(spec, W3))]
        assert len(ipip) == 3 and all(IP(bytes(p[IP].payload)).haslayer(ICMP) for p in ipip)
        unreachable = [p for p in rdpcap(str(pcap)) if p.haslayer(ICMP) and (p[ICMP].type, p[ICMP].code) == (3, 2)]
        assert unreachable == [], "no ICMP protocol-unreachable for protocol 4 (the forwarder's raw socket takes it)"
        all_pids = [pid for pids in forwarders.values() for pid in pids]
    assert [pid for pid in all_pids if Path(f"/proc/{pid}").exists() and b"ipip_tun" in _cmdline(pid)] == []


@lab_test
def test_cli_lab_up_overlay_dual_status_and_down(tmp_path):
    with cli_lab("--overlay", "dual", down_clean=True) as up:
        assert "(dual)" in up.output
        status = vxcap("lab", "status", "--prefix", SESSION_PREFIX)
        assert status.exit_code == 0 and "healthy" in status.output, status.output
        assert "lab " + SESSION_PREFIX + "-* (dual)" in status.output
        as_json = vxcap("lab", "status", "--prefix", SESSION_PREFIX, "--json")
        described = json.loads(as_json.output)
        assert as_json.exit_code == 0 and described["status"]["healthy"] and described["status"]["dataplane"] == "dual"
        w3 = next(n for n in described["lab"]["nodes"] if n["name"] == "k01-worker3")
        assert w3["ipv6"]["underlay"] == "fd00:10:10:20::13/64" and w3["ipv4"]["encapsulation"] == "vxlan"
        assert described["lab"]["vxlan6"] == {"device": "vxlan-v6.calico", "mode": "CrossSubnet", "vni": 4096,
                                              "port": 4789, "mtu": 1430}
        # A run without --overlay judges the lab that exists (remembered as dual): each direction in both families.
        run = vxcap("run", "--lab", "--prefix", SESSION_PREFIX, "--out", str(tmp_path), "--pair", "worker,worker3")
        assert run.exit_code == ExitStatus.SUCCESS, run.output
        (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
        report = json.loads((run_dir / "report.json").read_text())
        assert sorted((f["src_node"], f["family"]) for f in report["flows"]) == [
            ("k01-worker", "IPv4"), ("k01-worker", "IPv6"), ("k01-worker3", "IPv4"), ("k01-worker3", "IPv6")]


@lab_test
def test_a_generated_lab_builds_the_dual_data_plane_too():
    from vxcap.core.lab.gen import generate_lab, with_overlay
    from vxcap.core.lab.spec import lab_from_dict

    spec = lab_from_dict(with_overlay(generate_lab(6, 2), "dual"))
    first, last = spec.topology.nodes[0].name, spec.topology.nodes[-1].name
    with running_lab(spec=spec) as lab:  # healthy: every node's IPv4 and IPv6 checks pass
        ping_ok(lab, first, pod6(spec, last))
        ping_ok(lab, first, pod4(spec, last))


@lab_test
def test_cli_lab_up_overlay_wireguard6_status_and_down_leaves_nothing(tmp_path):
    with cli_lab("--overlay", "wireguard6", down_clean=True) as up:
        assert "(wireguard6)" in up.output, up.output
        pids = set(NetnsLab(dataplane_spec("wireguard6"), prefix=SESSION_PREFIX).wireguard_pids().values())
        assert len(pids) == 4
        as_json = vxcap("lab", "status", "--prefix", SESSION_PREFIX, "--json")
        described = json.loads(as_json.output)
        assert as_json.exit_code == 0 and described["status"]["healthy"], as_json.output
        assert described["lab"]["wireguard6"] == {"device": "wg-v6.cali", "port": 51821, "mtu": 1420}
        w3 = next(n for n in described["lab"]["nodes"] if n["name"] == W3)
        assert "ipv4" not in w3 and w3["ipv6"]["encapsulation"] == "wireguard"
    assert LabMemory(SESSION_PREFIX).recall() is None, "the remembered description outlived `lab down`"
    assert_wireguard_go_gone(pids)


@lab_test
def test_wireguard_dual_runs_one_wireguard_go_per_device_and_status_checks_both(tmp_path):
    spec = dataplane_spec("wireguard-dual")
    with running_lab(spec=spec) as lab:
        v4, v6 = lab.wireguard_pids("wireguard.cali"), lab.wireguard_pids("wg-v6.cali")
        assert set(v4) == set(v6) == {CP, W, W2, W3} and not set(v4.values()) & set(v6.values())
        checks = {c.name: c for c in next(n for n in lab.status().nodes if n.node == W).checks}
        assert checks["wireguard.cali"].ok and checks["wg-v6.cali"].ok
        assert all(checks[f"wg peer {o}"].ok and checks[f"wg6 peer {o}"].ok for o in (CP, W2, W3))
        with captured(lab, W, tmp_path / "w.pcap") as pcap:
            ping_ok(lab, W, pod4(spec, W3))
            ping_ok(lab, W, pod6(spec, W3))
        assert wireguard_messages(pcap, addr4(spec, W), addr4(spec, W3)).count(4) >= 3
        assert wireguard6_messages(pcap, addr6(spec, W), addr6(spec, W3)).count(4) >= 3
        # Only the IPv6 one killed: status names wg-v6.cali, and wireguard.cali stays healthy.
        subprocess.run(["kill", "-KILL", str(v6[W3])], check=True)
        children.reap([v6[W3]])  # this process started it: collected here, not left a zombie
        wait_until(lambda: W3 not in lab.wireguard_pids("wg-v6.cali"))
        bad = {c.name for n in lab.status().nodes if n.node == W3 for c in n.problems()}
        assert "wg-v6.cali" in bad and "wireguard.cali" not in bad, bad
    assert_wireguard_go_gone(set(v4.values()) | set(v6.values()))
