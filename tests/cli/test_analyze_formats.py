"""`vxcap analyze` of hand-made captures of Calico's other data planes: IP-in-IP, dual-stack VXLAN
(IPv4 and IPv6 underlays, each family judged on its own) and WireGuard. Each healthy run passes,
each fault twin fails (exit 1) naming the field."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from click.testing import CliRunner
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6, ICMPv6EchoReply, ICMPv6EchoRequest
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from scapy.utils import wrpcap

from tests.run_support import MAC, POD, UNDERLAY, W, W2, W3
from vxcap.cli.main import cli
from vxcap.exit_status import ExitStatus

ETH = {"src": "02:42:0a:0a:0a:0b", "dst": "02:42:0a:0a:14:0c"}  # given: scapy would look one up otherwise
UNDERLAY6 = {W: "fd00:10::11", W2: "fd00:10::12", W3: "fd00:20::13"}
POD6 = {W: "fd00:192:168:51::41", W2: "fd00:192:168:a4::81", W3: "fd00:192:168:d1::41"}
MAC6 = {W: "66:fb:ad:98:aa:66", W2: "66:c7:4d:6e:6b:66", W3: "66:d2:0c:f0:ef:66"}


def write(tmp_path: Path, frames: dict[str, list], overlay: dict, pairs=((W, W3), (W, W2)), probes=None) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    nodes = []
    for node in (W, W2, W3):
        entry = {"name": node, "underlay": f"{UNDERLAY[node]}/24", "vtep_mac": MAC[node],
                 "underlay6": f"{UNDERLAY6[node]}/64", "vtep_mac6": MAC6[node]}
        if node in frames:
            wrpcap(str(run / f"{node}-eth1.pcap"), frames[node])
            entry["captures"] = [{"iface": "eth1", "file": f"{node}-eth1.pcap"}]
        nodes.append(entry)
    manifest = {
        "version": 1,
        "overlay": {"encapsulation": "vxlan", "mode": "CrossSubnet", "vni": 4096, "port": 4789, "mtu": None, **overlay},
        "nodes": nodes,
        "pods": [{"name": f"p-{n}", "node": n, "ip": POD[n], "ip6": POD6[n]} for n in (W, W2, W3)],
        "pairs": [{"src": a, "dst": b} for a, b in pairs],
    }
    if probes:
        manifest["probes"] = probes
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def analyze(run):
    result = CliRunner().invoke(cli, ["analyze", str(run), "--json"])
    return result, json.loads((run / "report.json").read_text())


def flows(report):
    return {(f["src_node"], f["dst_node"], f["family"]): f for f in report["flows"]}


def echo(family, src, dst, i, reply):
    if family == 6:
        return IPv6(src=POD6[src], dst=POD6[dst]) / (ICMPv6EchoReply if reply else ICMPv6EchoRequest)(id=1, seq=i)
    return IP(src=POD[src], dst=POD[dst]) / ICMP(type=0 if reply else 8, id=1, seq=i)


def pings(wrap, family, a, b, n=3):
    """a pings b and is answered: the requests a -> b and the replies b -> a, each wrapped."""
    return [wrap(family, a, b, echo(family, a, b, i, False)) for i in range(n)] + \
           [wrap(family, b, a, echo(family, b, a, i, True)) for i in range(n)]


def plain(family, src, dst, inner):
    return Ether(**ETH) / inner


def ipip(family, src, dst, inner, outer_dst=None):
    return Ether(**ETH) / IP(src=UNDERLAY[src], dst=outer_dst or UNDERLAY[dst]) / inner


def vxlan(family, src, dst, inner, outer_dst=None):
    ip = IPv6 if family == 6 else IP
    under = UNDERLAY6 if family == 6 else UNDERLAY
    return (Ether(**ETH) / ip(src=under[src], dst=outer_dst or under[dst]) / UDP(sport=40000, dport=4789)
            / VXLAN(vni=4096) / Ether(dst=(MAC6 if family == 6 else MAC)[dst]) / inner)


def wireguard(family, src, dst, inner):
    ip = IPv6 if family == 6 else IP
    under = UNDERLAY6 if family == 6 else UNDERLAY
    port = 51821 if family == 6 else 51820
    message = struct.pack("<BxxxIQ", 4, 9, 0) + b"\xee" * (16 * ((len(bytes(inner)) + 15) // 16) + 16)
    return Ether(**ETH) / ip(src=under[src], dst=under[dst]) / UDP(sport=port, dport=port) / Raw(message)


def both_ways(wrap_cross, wrap_same, family=4):
    cross = pings(wrap_cross, family, W, W3) + pings(wrap_cross, family, W3, W)
    same = pings(wrap_same, family, W, W2) + pings(wrap_same, family, W2, W)
    return {W: cross + same, W3: cross, W2: same}


# -- IP-in-IP ------------------------------------------------------------------------------------------

IPIP = {"encapsulation": "ipip", "mode": "CrossSubnet"}


def test_ipip_cross_subnet_passes(tmp_path):
    result, report = analyze(write(tmp_path, both_ways(ipip, plain), IPIP))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    found = flows(report)
    assert found[(W, W3, "IPv4")]["observed"] == "ipip" and found[(W, W3, "IPv4")]["outer_dst"] == UNDERLAY[W3]
    assert found[(W, W2, "IPv4")]["observed"] == "plain"


def test_ipip_fault_twins_fail_naming_the_mode_and_the_outer_address(tmp_path):
    frames = both_ways(plain, plain)  # plain where IP-in-IP is promised
    frames[W3] += pings(lambda f, s, d, inner: ipip(f, s, d, inner, outer_dst=UNDERLAY[W2]), 4, W, W3)  # a third node
    result, report = analyze(write(tmp_path, frames, IPIP))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    reasons = flows(report)[(W, W3, "IPv4")]["reasons"]
    assert "12 plain IPv4 packets, expected IP-in-IP (other subnet: 10.10.20.13 is not in 10.10.10.0/24)" in reasons
    assert "outer destination 10.10.10.12, expected 10.10.20.13" in reasons


# -- dual-stack VXLAN ----------------------------------------------------------------------------------

DUAL = {"mode": "CrossSubnet", "mode6": "Always"}


def dual_frames():
    four, six = both_ways(vxlan, plain, 4), both_ways(vxlan, vxlan, 6)
    return {node: four[node] + six[node] for node in four}


def test_dual_stack_judges_each_family_and_says_which(tmp_path):
    result, report = analyze(write(tmp_path, dual_frames(), DUAL))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    found = flows(report)
    assert len(found) == 8
    assert (found[(W, W2, "IPv4")]["observed"], found[(W, W2, "IPv6")]["observed"]) == ("plain", "vxlan")
    assert found[(W, W3, "IPv6")]["outer_dst"] == UNDERLAY6[W3]
    assert found[(W, W3, "IPv6")]["wireshark_filter"] == f"ipv6.src=={POD6[W]} && ipv6.dst=={POD6[W3]}"
    from junitparser import JUnitXml

    names = [c.name for c in list(JUnitXml.fromfile(str(tmp_path / "run" / "junit.xml")))[0]]
    assert f"{W} -> {W3} (vxlan, IPv6)" in names and f"{W} -> {W3} (vxlan)" in names and len(set(names)) == 8
    evidence = {f["file"]: f["frames"] for f in report["evidence"]["flows"]}
    assert evidence[f"evidence/{W}-{W3}-ipv6.pcapng"] == 12 and evidence[f"evidence/{W}-{W3}.pcapng"] == 12


def test_ipv6_vxlan_to_a_third_nodes_address_fails_that_family_alone(tmp_path):
    frames = dual_frames()
    stray = pings(lambda f, s, d, inner: vxlan(f, s, d, inner, outer_dst=UNDERLAY6[W2]), 6, W, W3)
    frames[W] = [f for f in frames[W] if not (f.haslayer(IPv6) and f[IPv6].dst == UNDERLAY6[W3])] + stray[:3]
    result, report = analyze(write(tmp_path, frames, DUAL))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    found = flows(report)
    assert "outer destination fd00:10::12, expected fd00:20::13 (3 of 9 packets)" in found[(W, W3, "IPv6")]["reasons"]
    assert found[(W, W3, "IPv4")]["verdict"] == "pass"


# -- WireGuard -----------------------------------------------------------------------------------------

WG = {"mode": "Always", "wireguard": True}
SENT = [{"src": a, "dst": b, "sent": 3, "received": 3} for a, b in ((W, W3), (W3, W), (W, W2), (W2, W))]


def test_wireguard_passes_with_only_transport_data_between_the_nodes(tmp_path):
    result, report = analyze(write(tmp_path, both_ways(wireguard, wireguard), WG, probes=SENT))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    flow = flows(report)[(W, W3, "IPv4")]
    assert (flow["observed"], flow["udp_dport"], flow["wireguard_data"]) == ("wireguard", 51820, 12)  # both nodes: 3 requests and 3 replies each way
    assert any(line.startswith("delivery: WireGuard encrypts the echoes") for line in flow["not_checked"])
    evidence = {f["file"]: f["frames"] for f in report["evidence"]["flows"]}
    assert evidence[f"evidence/{W}-{W3}.pcapng"] == 12  # the nodes' tunnel: the pods are encrypted


def test_plaintext_leaking_between_two_wireguard_nodes_fails(tmp_path):
    frames = both_ways(wireguard, wireguard)
    frames[W] += pings(plain, 4, W, W3)[:1]
    result, report = analyze(write(tmp_path, frames, WG, probes=SENT))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows(report)[(W, W3, "IPv4")]["reasons"] == [
        f"1 plaintext packets of {POD[W]} -> {POD[W3]} on the underlay, expected only WireGuard between the nodes "
        "(wireguardEnabled: both nodes are WireGuard peers)"]


def test_vxlan_between_two_wireguard_nodes_fails(tmp_path):
    result, report = analyze(write(tmp_path, both_ways(vxlan, plain), WG, probes=SENT))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    reasons = flows(report)[(W, W3, "IPv4")]["reasons"]
    assert any(r.startswith(f"12 VXLAN packets of {POD[W]} -> {POD[W3]} on the underlay") for r in reasons)
    assert any(r.startswith(f"no WireGuard transport data (type 4) from {UNDERLAY[W]} -> {UNDERLAY[W3]}") for r in reasons)


def _links(run, vxlan_v6_mtu):
    for node in (W, W2, W3):
        # every frame here is addressed to ETH's destination: each node's eth1 has it, so each is delivered
        links = [{"ifname": "eth1", "mtu": 1500, "address": ETH["dst"], "link_type": "ether"},
                 {"ifname": "vxlan.calico", "mtu": 1450, "link_type": "ether", "link": "eth1"},
                 {"ifname": "vxlan-v6.calico", "mtu": vxlan_v6_mtu, "link_type": "ether", "link": "eth1"}]
        (run / f"{node}-eth1.link.json").write_text(json.dumps(links))


def test_an_ipv6_vxlan_device_set_for_ipv4_overhead_fails_the_ipv6_directions_only(tmp_path):
    # vxlanMTUV6 1450 is IPv4's 1500 - 50; over IPv6 VXLAN costs 70: at most 1430 fits.
    run = write(tmp_path, dual_frames(), DUAL)
    _links(run, 1450)
    result, report = analyze(run)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    found = flows(report)
    reasons = " ".join(found[(W, W3, "IPv6")]["reasons"])
    assert "vxlan-v6.calico MTU 1450 on k01-worker, expected <= 1430 (underlay MTU 1500 - 70 VXLAN overhead)" in reasons
    assert found[(W, W3, "IPv4")]["verdict"] == "pass", found[(W, W3, "IPv4")]["reasons"]
    (tmp_path / "twin").mkdir()
    run = write(tmp_path / "twin", dual_frames(), DUAL)
    _links(run, 1430)
    result, report = analyze(run)
    assert result.exit_code == ExitStatus.SUCCESS, [f["reasons"] for f in report["flows"] if f["reasons"]]
