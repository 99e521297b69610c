"""`vxcap run --lab --overlay X` judged end to end on Calico's other data planes: VXLAN over IPv6,
dual-stack, WireGuard and IPIP (tunl0 in userspace where the kernel has no ipip module). Every direction of the healthy lab passes, in each family it carries,
and the run's own pcaps (read with scapy's dissection, not vxcap's decoder) hold the format the
report names; each of 15b's lab faults makes the run fail with a reason naming the field or hop.

Labs use this session's prefix (tests/lab_support.py) and are always taken down.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

from tests.lab_scaffold import all_pass, by_direction, cli_lab, faulty_run, healthy_run
from tests.lab_support import dataplane_spec, lab_session_guard, lab_test, running_lab, vxcap_run  # noqa: F401
from vxcap.core.lab.faults import (
    Fdb6WrongNode,
    IpipAsVxlan,
    IpipPlain,
    IpipWrongNode,
    Vxlan6Ipv4Mtu,
    Vxlan6SameSubnet,
    Wireguard6Plaintext,
    WireguardPlaintext,
)
from vxcap.exit_status import ExitStatus

pytestmark = pytest.mark.usefixtures("lab_session_guard")

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"


def overlay(name: str, *more: str) -> list[str]:
    """`vxcap run`'s options for the lab built as that data plane."""
    return ["--overlay", name, *more]


def run(tmp_path, name: str, *pairs: str):
    return vxcap_run(tmp_path, *pairs, options=overlay(name, *([] if pairs else ["--all-pairs"])))


def pcap_of(run_dir: Path, node: str) -> list:
    return rdpcap(str(run_dir / f"{node}-eth1.pcap"))


def vxlan6_echoes(packets, spec, src: str, dst: str) -> list:
    inner = (str(spec.node6(src).pod_ip), str(spec.node6(dst).pod_ip))
    return [p for p in packets if p.haslayer(VXLAN) and p.getlayer(IPv6) is not None
            and (p[IPv6].src, p[IPv6].dst) == (str(spec.node6(src).address), str(spec.node6(dst).address))
            and (lambda i: i is not None and (i.src, i.dst) == inner)(p[VXLAN].payload.getlayer(IPv6))]


def wireguard_data(packets, spec, src: str, dst: str, port: int = 51820) -> list:
    a, b = (str(spec.topology.node(n).address) for n in (src, dst))
    return [p for p in packets if p.haslayer(UDP) and p.haslayer(IP) and (p[IP].src, p[IP].dst) == (a, b)
            and p[UDP].dport == port and bytes(p[UDP].payload)[:4] == struct.pack("<I", 4)]


def wireguard6_data(packets, spec, src: str, dst: str, port: int = 51821) -> list:
    a, b = (str(spec.node6(n).address) for n in (src, dst))
    return [p for p in packets if p.haslayer(UDP) and p.getlayer(IPv6) is not None and (p[IPv6].src, p[IPv6].dst) == (a, b)
            and p[UDP].dport == port and bytes(p[UDP].payload)[:4] == struct.pack("<I", 4)]


def leaked_run(tmp_path, name: str, fault, family: str) -> dict:
    """The run on the `name` lab whose worker leaks its pod's packets to worker2 in the clear (`fault`): that
    direction fails in `family`, naming the plaintext pod packets. Its report."""
    spec = dataplane_spec(name)
    report, reasons = faulty_run(tmp_path, spec, fault, overlay(name), (W, W2, family), "worker,worker2")
    if family == "IPv4":
        pods = f"{spec.pod_on(W).ip} -> {spec.pod_on(W2).ip}"
    else:
        pods = f"{spec.node6(W).pod_ip} -> {spec.node6(W2).pod_ip}"
    assert any(f"plaintext packets of {pods} on the underlay, expected only WireGuard" in r for r in reasons), reasons
    return report


# ------------------------------------------------------------------------------------------ healthy


@lab_test
def test_vxlan6_run_proves_every_direction_in_ipv6(tmp_path):
    spec = dataplane_spec("vxlan6")
    # 4 nodes, 6 pairs, both ways, IPv6 only
    run_dir, report, found = healthy_run(tmp_path, spec, overlay("vxlan6", "--all-pairs"), 12)
    assert {f["family"] for f in report["flows"]} == {"IPv6"}
    assert found[(W, W3, "IPv6")]["observed"] == "vxlan" and found[(W, W2, "IPv6")]["observed"] == "plain"
    assert found[(W, W3, "IPv6")]["outer_dst"] == str(spec.node6(W3).address)
    assert found[(W, W3, "IPv6")]["mtu"]["underlay_ip"] == 6 and found[(W, W3, "IPv6")]["mtu"]["overhead"]["bytes"] == 70
    mtu = found[(W, W3, "IPv6")]["mtu"]
    # ping -6's payload and the SYN's MSS at the pods' 1430: 48 and 60 bytes of IPv6 headers.
    assert (mtu["max_icmp_payload"], mtu["measured"]["largest_df_payload"], mtu["tcp_mss"]) == (1382, 1382, 1370)
    assert mtu["measured"]["tcp_mss_seen"] == [1370]
    # The run's own capture kept the IPv6 VXLAN frames (the BPF filter lets them through).
    assert len(vxlan6_echoes(pcap_of(run_dir, W), spec, W, W3)) >= 2
    assert_ipv6_only(run_dir)


def assert_ipv6_only(run_dir: Path) -> None:
    """An IPv6-only run: no IPv4 address in its manifest (no placeholder) and no IPv4 frame on its wire."""
    import json

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["overlay"]["ipv4"] is False
    assert not [n for n in manifest["nodes"] if "underlay" in n] and not [p for p in manifest["pods"] if "ip" in p]
    assert all("underlay6" in n for n in manifest["nodes"]) and all("ip6" in p for p in manifest["pods"])
    assert "ip " not in manifest["nodes"][0]["captures"][0]["filter"]["bpf"]  # no IPv4 term in the capture filter
    for node in (W, W3):
        assert not [p for p in pcap_of(run_dir, node) if p.getlayer(IP) is not None], "an IPv4 frame on an IPv6-only lab"


@lab_test
def test_dual_stack_run_judges_each_family_on_its_own_and_says_which(tmp_path):
    spec = dataplane_spec("dual")
    # every direction in IPv4 and in IPv6
    run_dir, report, found = healthy_run(tmp_path, spec, overlay("dual", "--all-pairs"), 24)
    assert {f["family"] for f in report["flows"]} == {"IPv4", "IPv6"}
    for family, outer in (("IPv4", str(spec.topology.node(W3).address)), ("IPv6", str(spec.node6(W3).address))):
        assert found[(W, W3, family)]["observed"] == "vxlan" and found[(W, W3, family)]["outer_dst"] == outer
        assert found[(W, W2, family)]["observed"] == "plain"
    assert found[(W, W3, "IPv4")]["mtu"]["overhead"]["bytes"] == 50
    # Each family's direction has its own evidence file, and its Wireshark command opens that one.
    assert f"{W}-{W3}-ipv6.pcapng" in found[(W, W3, "IPv6")]["wireshark"]
    assert f"{W}-{W3}.pcapng" in found[(W, W3, "IPv4")]["wireshark"]
    assert found[(W, W3, "IPv6")]["mtu"]["overhead"]["bytes"] == 70
    packets = pcap_of(run_dir, W3)
    assert len(vxlan6_echoes(packets, spec, W, W3)) >= 2
    assert [p for p in packets if p.haslayer(VXLAN) and p.getlayer(IP) is not None
            and p[VXLAN].payload.getlayer(ICMP) is not None]


@lab_test
def test_wireguard_run_proves_every_direction_is_encrypted(tmp_path):
    spec = dataplane_spec("wireguard")
    run_dir, report, found = healthy_run(tmp_path, spec, overlay("wireguard", "--all-pairs"), 12)
    assert {f["expected"] for f in report["flows"]} == {"wireguard"}
    assert found[(W, W2, "IPv4")]["observed"] == "wireguard"  # same subnet too: WireGuard peers every node
    assert found[(W, W3, "IPv4")]["mtu"]["overhead"]["bytes"] == 60
    # Measured by the prober alone (the capture cannot see encrypted echoes), and 1440 is all WireGuard allows:
    # nothing to warn of.
    assert [f for f in report["flows"] for f in f["mtu"]["findings"] if f["level"] != "info"] == []
    assert found[(W, W3, "IPv4")]["mtu"]["measured"]["largest_df_payload"] == 1412
    packets = pcap_of(run_dir, W)
    assert len(wireguard_data(packets, spec, W, W3)) >= 2
    pods = {str(spec.pod_on(n).ip) for n in (W, W2, W3, CP)}
    assert not [p for p in packets if p.haslayer(IP) and p[IP].src in pods], "no pod packet in the clear"


@lab_test
def test_wireguard6_run_proves_every_ipv6_direction_is_encrypted(tmp_path):
    spec = dataplane_spec("wireguard6")
    # IPv6 only
    run_dir, report, found = healthy_run(tmp_path, spec, overlay("wireguard6", "--all-pairs"), 12)
    assert {f["family"] for f in report["flows"]} == {"IPv6"}
    assert {f["expected"] for f in report["flows"]} == {"wireguard"}
    assert {f["observed"] for f in report["flows"]} == {"wireguard"}  # same subnet too
    assert found[(W, W3, "IPv6")]["outer_dst"] == str(spec.node6(W3).address)
    mtu = found[(W, W3, "IPv6")]["mtu"]
    assert mtu["underlay_ip"] == 6 and mtu["overhead"]["bytes"] == 80
    # 1420 less IPv6's 40 and ICMPv6's 8: what wg-v6.cali lets through, measured by the prober.
    assert mtu["measured"]["largest_df_payload"] == 1372
    for node in (W, W3):
        packets = pcap_of(run_dir, node)
        assert len(wireguard6_data(packets, spec, W, W3)) >= 2 and len(wireguard6_data(packets, spec, W3, W)) >= 2
        pods = {str(spec.node6(n).pod_ip) for n in (W, W2, W3, CP)}
        assert not [p for p in packets if p.getlayer(IPv6) is not None and p[IPv6].src in pods], "no pod packet in the clear"
    assert_ipv6_only(run_dir)


@lab_test
def test_wireguard_dual_run_proves_each_family_on_its_own_device_and_port(tmp_path):
    spec = dataplane_spec("wireguard-dual")
    # every direction in IPv4 and in IPv6
    run_dir, report, found = healthy_run(tmp_path, spec, overlay("wireguard-dual", "--all-pairs"), 24)
    assert {f["observed"] for f in report["flows"]} == {"wireguard"}
    assert found[(W, W3, "IPv4")]["mtu"]["overhead"]["bytes"] == 60
    assert found[(W, W3, "IPv6")]["mtu"]["overhead"]["bytes"] == 80
    assert found[(W, W3, "IPv6")]["outer_dst"] == str(spec.node6(W3).address)
    assert found[(W, W3, "IPv4")]["outer_dst"] == str(spec.topology.node(W3).address)
    packets = pcap_of(run_dir, W3)
    assert len(wireguard_data(packets, spec, W, W3)) >= 2  # IPv4 on 51820
    assert len(wireguard6_data(packets, spec, W, W3)) >= 2  # IPv6 on 51821
    pods = {str(spec.pod_on(n).ip) for n in (W, W2, W3, CP)} | {str(spec.node6(n).pod_ip) for n in (W, W2, W3, CP)}
    assert not [p for p in packets if (p.getlayer(IP) is not None and p[IP].src in pods)
                or (p.getlayer(IPv6) is not None and p[IPv6].src in pods)], "no pod packet in the clear"


def ipip_spec(mode: str = "CrossSubnet"):
    import yaml

    from tests.lab_support import LAB_FILE
    from vxcap.core.lab.gen import with_overlay
    from vxcap.core.lab.spec import lab_from_dict

    return lab_from_dict(with_overlay(yaml.safe_load(LAB_FILE.read_text()), "ipip", mode))


def ipip(mode: str, *more: str) -> list[str]:
    return overlay("ipip", "--ipip-mode", mode, *more)


def ipip_echoes(packets, spec, src: str, dst: str) -> list:
    """Protocol-4 packets between the two nodes' underlay addresses carrying the pods' ICMP, as scapy dissects them."""
    outer = (str(spec.topology.node(src).address), str(spec.topology.node(dst).address))
    inner = (str(spec.pod_on(src).ip), str(spec.pod_on(dst).ip))
    found = []
    for p in packets:
        if p.haslayer(IP) and p[IP].proto == 4 and (p[IP].src, p[IP].dst) == outer:
            i = IP(bytes(p[IP].payload))
            if (i.src, i.dst) == inner and i.haslayer(ICMP):
                found.append((p[IP], i))
    return found


@lab_test
def test_ipip_cross_subnet_run_proves_every_direction_ipip_across_and_plain_within(tmp_path):
    spec = ipip_spec()
    run_dir, report, found = healthy_run(tmp_path, spec, ipip("cross-subnet", "--all-pairs"), 12)
    for (src, dst, _), flow in found.items():
        across = spec.topology.node(dst).address not in spec.topology.node(src).subnet
        assert (flow["expected"], flow["observed"]) == (("ipip",) * 2 if across else ("plain",) * 2), (src, dst)
    flow = found[(W, W3, "IPv4")]
    assert (flow["outer_src"], flow["outer_dst"]) == (str(spec.topology.node(W).address), str(spec.topology.node(W3).address))
    mtu = flow["mtu"]
    assert mtu["overhead"]["bytes"] == 20 and mtu["mtus"]["src"]["vxlan_ifname"] == "tunl0"
    assert mtu["mtus"]["src"]["vxlan_mtu"] == 1480
    # The DF ladder through tunl0: 1480-byte inner packets (ICMP payload 1452) pass, and the SYN's MSS is 1440.
    assert (mtu["max_icmp_payload"], mtu["measured"]["largest_df_payload"], mtu["tcp_mss"]) == (1452, 1452, 1440)
    assert mtu["measured"]["tcp_mss_seen"] == [1440]
    echoes = ipip_echoes(pcap_of(run_dir, W), spec, W, W3)
    assert len(echoes) >= 2
    # The outer header is the kernel tunl0's: TTL inherited from the inner packet, DF copied from it.
    assert all(o.ttl == i.ttl and (o.flags.DF == i.flags.DF) for o, i in echoes)
    assert max(o.len for o, _ in echoes) == 1500  # the ladder's largest: 1480 inside, 20 outside
    for node in (CP, W, W2, W3):
        assert not [p for p in pcap_of(run_dir, node) if p.haslayer(ICMP) and (p[ICMP].type, p[ICMP].code) == (3, 2)]


@lab_test
def test_ipip_always_run_proves_every_direction_ipip_within_the_subnet_too(tmp_path):
    spec = ipip_spec("Always")
    run_dir, report, _ = healthy_run(tmp_path, spec, ipip("always", "--cross-check", "--all-pairs"), 12)
    assert {(f["expected"], f["observed"]) for f in report["flows"]} == {("ipip", "ipip")}
    assert report["cross_check"] == {"tool": "tshark", "agreed": True, "disagreements": []}
    assert len(ipip_echoes(pcap_of(run_dir, W2), spec, W, W2)) >= 2


# ------------------------------------------------------------------------------------------ fault twins


@lab_test
def test_wireguard_plaintext_fault_fails_the_run_naming_the_plaintext(tmp_path):
    report = leaked_run(tmp_path, "wireguard", WireguardPlaintext(W, W2), "IPv4")
    assert by_direction(report)[(W2, W, "IPv4")]["verdict"] == "pass"  # only the faulty direction leaks


@lab_test
def test_wireguard6_plaintext_fault_fails_the_run_naming_the_ipv6_plaintext(tmp_path):
    report = leaked_run(tmp_path, "wireguard6", Wireguard6Plaintext(W, W2), "IPv6")
    assert by_direction(report)[(W2, W, "IPv6")]["verdict"] == "pass"  # only the faulty direction leaks


@lab_test
def test_ipv6_plaintext_in_the_wireguard_dual_lab_fails_only_the_ipv6_direction(tmp_path):
    report = leaked_run(tmp_path, "wireguard-dual", Wireguard6Plaintext(W, W2), "IPv6")
    # IPv4 from the same node still goes through wireguard.cali.
    assert by_direction(report)[(W, W2, "IPv4")]["verdict"] == "pass"


@lab_test
def test_ipv6_fdb_to_a_third_node_fails_naming_its_outer_address(tmp_path):
    spec = dataplane_spec("vxlan6")
    report, reasons = faulty_run(tmp_path, spec, Fdb6WrongNode(W3, W, CP), overlay("vxlan6"), (W3, W, "IPv6"),
                                 "worker3,worker")
    wrong, right = spec.node6(CP).address, spec.node6(W).address
    assert f"outer destination {wrong}, expected {right}" in reasons, reasons


@lab_test
def test_ipv4_overhead_mtu_on_the_ipv6_path_fails_naming_the_mtu(tmp_path):
    spec = dataplane_spec("vxlan6")
    report, reasons = faulty_run(tmp_path, spec, Vxlan6Ipv4Mtu(W), overlay("vxlan6"), (W, W3, "IPv6"), "worker,worker3")
    assert any("MTU" in r and "1450" in r for r in reasons), reasons


@lab_test
def test_same_subnet_ipv6_via_vxlan_fails_naming_the_mode(tmp_path):
    spec = dataplane_spec("vxlan6")
    report, reasons = faulty_run(tmp_path, spec, Vxlan6SameSubnet(W, W2), overlay("vxlan6"), (W, W2, "IPv6"),
                                 "worker,worker2")
    assert any("VXLAN" in r and "expected plain" in r and "same subnet" in r for r in reasons), reasons
    assert by_direction(report)[(W2, W, "IPv6")]["verdict"] == "pass"


@lab_test
def test_a_run_asking_for_another_data_plane_than_the_lab_built_is_refused_in_one_line(tmp_path):
    from tests.lab_support import SESSION_PREFIX

    with cli_lab("--overlay", "dual"):
        result, _, _ = run(tmp_path, "wireguard")
        assert result.exit_code == ExitStatus.USAGE, result.output
        assert f"the lab {SESSION_PREFIX}-* is built as dual, not wireguard" in result.output
        assert list(tmp_path.iterdir()) == []  # refused before a run directory was made
        result, _, report = run(tmp_path, "dual", "worker,worker3")
        all_pass(result, report, 4)


class _PromisedVxlan:
    """The wireguard lab judged as a cluster whose Felix has WireGuard off would be: a VXLAN CrossSubnet
    promise (what discovery reads when WireGuard is turned on by calico-node's environment instead of the
    FelixConfiguration). Everything else is the lab's own target: build, pods, handshakes, captures."""

    def __init__(self, target) -> None:
        self._target = target

    def __getattr__(self, name):
        return getattr(self._target, name)

    def discover(self):
        from dataclasses import replace

        topology = self._target.discover()
        return replace(topology, overlay=replace(topology.overlay, wireguard=False))


@lab_test
def test_a_wireguard_lab_judged_as_vxlan_fails_naming_wireguard_and_passes_as_built(tmp_path):
    from tests.lab_support import SESSION_PREFIX
    from vxcap.pipeline import RunOptions, run as run_pipeline
    from vxcap.targets.lab import LabSource, LabTarget

    spec = dataplane_spec("wireguard")
    pairs = ("worker,worker2", "worker,worker3")
    with running_lab(spec=spec):
        wrong = run_pipeline(_PromisedVxlan(LabTarget(LabSource(spec, "", "the test's lab"), prefix=SESSION_PREFIX)),
                             RunOptions(pair_specs=pairs, out_parent=tmp_path / "vxlan"))
        right = run_pipeline(LabTarget(LabSource(spec, "", "the test's lab"), prefix=SESSION_PREFIX),
                             RunOptions(pair_specs=pairs, out_parent=tmp_path / "wireguard"))
    assert right.passed, right.report["flows"]
    assert not wrong.passed
    found = by_direction(wrong.report)
    assert len(found) == 4
    for (src, dst, _), flow in found.items():
        outer = f"between {spec.topology.node(src).address} and {spec.topology.node(dst).address} on UDP 51820"
        assert flow["verdict"] == "fail" and flow["observed"] == "wireguard"
        assert any(" WireGuard transport-data packets " + outer + ", expected " in r for r in flow["reasons"]), flow["reasons"]
        assert not any(r.startswith("no packets of") for r in flow["reasons"]), flow["reasons"]
    assert found[(W, W3, "IPv4")]["expected"] == "vxlan" and found[(W, W2, "IPv4")]["expected"] == "plain"
    # Wireshark is pointed at the nodes' data messages, not at pods the wire does not show
    assert found[(W, W3, "IPv4")]["wireshark_filter"] == (
        f"ip.src=={spec.topology.node(W).address} && ip.dst=={spec.topology.node(W3).address} && wg.type == 4")


@lab_test
def test_ipip_plain_where_ipip_is_promised_fails_naming_the_plain_packets(tmp_path):
    # ipipMode Always and one subnet: the plain packets still arrive (no router between), so the one
    # reason is the wire format, and the other way, still IP-in-IP, passes.
    spec = ipip_spec("Always")
    report, reasons = faulty_run(tmp_path, spec, IpipPlain(W, W2), ipip("always"), (W, W2, "IPv4"), "worker,worker2")
    assert [r for r in reasons if "expected IP-in-IP" in r] == [
        f"{by_direction(report)[(W, W2, 'IPv4')]['packets']} plain IPv4 packets, expected IP-in-IP (ipipMode Always)"]
    assert by_direction(report)[(W2, W, "IPv4")]["verdict"] == "pass"


@lab_test
def test_ipip_plain_across_subnets_fails_naming_the_plain_packets(tmp_path):
    # Across the router plain pod packets die there (it has no pod routes), replies included: both
    # directions of the pair fail; a pair without the fault, through the same router, passes.
    spec = ipip_spec()
    report, reasons = faulty_run(tmp_path, spec, IpipPlain(W, W3), ipip("cross-subnet"), (W, W3, "IPv4"),
                                 "worker,worker3", "worker2,worker3")
    assert any("plain IPv4 packets, expected IP-in-IP (other subnet: 10.10.20.13 is not in 10.10.10.0/24)" in r
               for r in reasons), reasons
    found = by_direction(report)
    assert found[(W2, W3, "IPv4")]["verdict"] == found[(W3, W2, "IPv4")]["verdict"] == "pass"


@lab_test
def test_ipip_to_a_third_nodes_address_fails_naming_the_outer_destination(tmp_path):
    spec = ipip_spec()
    report, reasons = faulty_run(tmp_path, spec, IpipWrongNode(W, W3, CP), ipip("cross-subnet"), (W, W3, "IPv4"),
                                 "worker,worker3")
    wrong, right, sender = (spec.topology.node(n).address for n in (CP, W3, W))
    assert any(r.startswith(f"outer destination {wrong}, expected {right} (") for r in reasons), reasons
    # The third node takes the packets in on its tunl0 and sends them on to worker3 (its own route):
    # that second leg arrives with the third node's address as outer source.
    assert any(r.startswith(f"outer source {wrong}, expected {sender} (") for r in reasons), reasons
    assert len(reasons) == 2
    assert by_direction(report)[(W3, W, "IPv4")]["verdict"] == "pass"


@lab_test
def test_vxlan_where_ipip_is_promised_fails_naming_the_vxlan_packets(tmp_path):
    spec = ipip_spec()
    report, reasons = faulty_run(tmp_path, spec, IpipAsVxlan(W, W3), ipip("cross-subnet"), (W, W3, "IPv4"),
                                 "worker,worker3")
    assert any("VXLAN packets (VNI 4096, UDP port 4789), expected IP-in-IP" in r for r in reasons), reasons
    assert by_direction(report)[(W3, W, "IPv4")]["verdict"] == "pass"


@lab_test
def test_a_run_without_ipip_mode_takes_the_ipip_lab_as_built_and_another_mode_is_refused(tmp_path):
    from tests.lab_support import SESSION_PREFIX

    with cli_lab("--overlay", "ipip", "--ipip-mode", "always"):
        result, _, _ = vxcap_run(tmp_path, "worker,worker2", options=ipip("cross-subnet"))
        assert result.exit_code == ExitStatus.USAGE, result.output
        assert f"the lab {SESSION_PREFIX}-* is built with ipipMode Always, not CrossSubnet" in result.output
        assert list(tmp_path.iterdir()) == []  # refused before a run directory was made
        result, _, report = vxcap_run(tmp_path, "worker,worker2", options=["--overlay", "ipip"])
        all_pass(result, report, 2)
        assert {f["observed"] for f in report["flows"]} == {"ipip"}  # Always: the same subnet through tunl0
