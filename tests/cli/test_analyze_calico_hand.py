"""`vxcap analyze` on Calico captures taken by hand on a real kernel: VXLAN over IPv6, dual-stack, WireGuard.

tests/cli/data/<format>-hand holds what `tcpdump -i eth1 -s 200 -w` wrote on three nodes of
`vxcap lab up --overlay vxlan6 | dual | wireguard` while each pod pinged the others 3 times (in
both families on the dual lab), `ip -d -j link` of each node and pod, and a manifest written by
hand from the lab's addresses. worker and worker2 share a subnet, worker3 is behind the switch's
router: with vxlanMode CrossSubnet the first pair is plain and the second VXLAN; with WireGuard
both are WireGuard between the nodes. The same frames judged against other promises must fail,
naming the field.
"""

import json

from tests.cli import hand_captures
from tests.cli.hand_captures import hand_run
from vxcap.exit_status import ExitStatus

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"
DIRECTIONS = ((W, W2), (W2, W), (W, W3), (W3, W))


def analyze(run):
    return hand_captures.analyze(run, key=("src_node", "dst_node", "family"))


# VXLAN over IPv6 only


def test_vxlan6_capture_passes_each_direction_as_ipv6(tmp_path):
    result, flows = analyze(hand_run(tmp_path, "vxlan6"))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert "PASS 4/4 directions" in result.output
    assert set(flows) == {(s, d, "IPv6") for s, d in DIRECTIONS}  # ipv4 false: no IPv4 direction is planned
    assert all(f["verdict"] == "pass" and f["reasons"] == [] and f["packets"] > 0 for f in flows.values())
    assert flows[(W, W2, "IPv6")]["observed"] == "plain"
    for src, dst in ((W, W3), (W3, W)):
        flow = flows[(src, dst, "IPv6")]
        assert (flow["observed"], flow["vni"], flow["udp_dport"]) == ("vxlan", 4096, 4789)
    flow = flows[(W, W3, "IPv6")]
    assert (flow["outer_src"], flow["outer_dst"]) == ("fd00:10:10:10::11", "fd00:10:10:20::13")
    assert flow["inner_dst_mac"] == "66:89:31:76:7b:da"  # worker3's vxlan-v6.calico
    # The tunnel's MTU is read from vxlan-v6.calico in the hand-taken `ip -d -j link`: 1500 - 70.
    src = flow["mtu"]["mtus"]["src"]
    assert (src["vxlan_ifname"], src["vxlan_mtu"], src["pod_mtu"]) == ("vxlan-v6.calico", 1430, 1430)


def test_vxlan6_capture_judged_against_another_vni_names_the_vni(tmp_path):
    result, flows = analyze(hand_run(tmp_path, "vxlan6", vni=4097))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(W, W3, "IPv6")]["reasons"] == ["VNI 4096, expected 4097"]
    assert flows[(W3, W, "IPv6")]["reasons"] == ["VNI 4096, expected 4097"]
    assert flows[(W, W2, "IPv6")]["reasons"] == []  # plain has no VNI


def test_vxlan6_capture_judged_against_another_port_names_the_port(tmp_path):
    result, flows = analyze(hand_run(tmp_path, "vxlan6", port=4790))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(W3, W, "IPv6")]["reasons"] == ["UDP port 4789, expected 4790"]


def test_vxlan6_capture_judged_against_a_third_nodes_vtep_mac_names_the_mac(tmp_path):
    run = hand_run(tmp_path, "vxlan6", nodes={W3: {"vtep_mac6": "66:d2:0c:f0:ef:e5"}})  # worker3's IPv4 VTEP MAC
    result, flows = analyze(run)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(W, W3, "IPv6")]["reasons"] == ["inner destination MAC 66:89:31:76:7b:da, expected 66:d2:0c:f0:ef:e5"]
    assert flows[(W3, W, "IPv6")]["reasons"] == []  # worker's MAC is still right


def test_vxlan6_capture_judged_with_the_ipv6_pool_always_names_the_plain_frames(tmp_path):
    result, flows = analyze(hand_run(tmp_path, "vxlan6", mode6="Always"))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(W, W2, "IPv6")]["reasons"] == [
        "12 plain IPv6 packets, expected VXLAN (vxlanMode (IPv6 pool) Always)"]
    assert flows[(W, W3, "IPv6")]["reasons"] == []


# Dual-stack


def test_dual_capture_passes_each_direction_in_each_family(tmp_path):
    result, flows = analyze(hand_run(tmp_path, "dual"))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert "PASS 8/8 directions" in result.output
    assert set(flows) == {(s, d, fam) for s, d in DIRECTIONS for fam in ("IPv4", "IPv6")}
    assert all(f["verdict"] == "pass" and f["reasons"] == [] and f["packets"] > 0 for f in flows.values())
    v4, v6 = flows[(W, W3, "IPv4")], flows[(W, W3, "IPv6")]
    assert (v4["observed"], v4["outer_src"], v4["outer_dst"]) == ("vxlan", "10.10.10.11", "10.10.20.13")
    assert (v6["observed"], v6["outer_src"], v6["outer_dst"]) == ("vxlan", "fd00:10:10:10::11", "fd00:10:10:20::13")
    assert (v4["src_ip"], v6["src_ip"]) == ("192.168.81.65", "fd19:2168::c0a8:5141")
    assert v4["inner_dst_mac"] == "66:d2:0c:f0:ef:e5" and v6["inner_dst_mac"] == "66:89:31:76:7b:da"
    assert flows[(W2, W, "IPv4")]["observed"] == flows[(W2, W, "IPv6")]["observed"] == "plain"
    assert v4["mtu"]["mtus"]["src"]["vxlan_ifname"] == "vxlan.calico"
    assert v6["mtu"]["mtus"]["src"]["vxlan_ifname"] == "vxlan-v6.calico"


def test_dual_capture_with_the_ipv6_pool_never_names_vxlan_where_plain_was_promised(tmp_path):
    result, flows = analyze(hand_run(tmp_path, "dual", mode6="Never"))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    for src, dst in ((W, W3), (W3, W)):
        assert flows[(src, dst, "IPv6")]["reasons"] == [
            "12 VXLAN packets (VNI 4096, UDP port 4789), expected plain IPv6 (vxlanMode (IPv6 pool) Never)"]
        assert flows[(src, dst, "IPv4")]["reasons"] == []  # the IPv4 pool is judged on its own
    assert "FAIL 6/8 directions" in result.output


# WireGuard


def test_wireguard_capture_passes_on_transport_data_between_the_nodes(tmp_path):
    result, flows = analyze(hand_run(tmp_path, "wireguard"))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert "PASS 4/4 directions" in result.output
    assert set(flows) == {(s, d, "IPv4") for s, d in DIRECTIONS}
    for src, dst in DIRECTIONS:
        flow = flows[(src, dst, "IPv4")]
        assert (flow["expected"], flow["observed"], flow["udp_dport"]) == ("wireguard", "wireguard", 51820)
        assert flow["reasons"] == [] and flow["wireguard_data"] > 0
        # both ends saw the nodes' data messages, and the bystander none
        assert flow["seen_on"][f"{src}/eth1"] > 0 and flow["seen_on"][f"{dst}/eth1"] > 0
        assert sum(n for point, n in flow["seen_on"].items() if not point.startswith((f"{src}/", f"{dst}/"))) == 0
    assert flows[(W, W3, "IPv4")]["mtu"]["mtus"]["src"]["vxlan_ifname"] == "wireguard.cali"


def test_wireguard_capture_judged_on_another_listening_port_finds_no_transport_data(tmp_path):
    result, flows = analyze(hand_run(tmp_path, "wireguard", wireguard_port=51830))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(W, W3, "IPv4")]["reasons"] == [
        "no WireGuard transport data (type 4) from 10.10.10.11 -> 10.10.20.13 seen "
        "(k01-worker/eth1, k01-worker2/eth1, k01-worker3/eth1)"]


def test_wireguard_capture_judged_as_if_wireguard_were_off_fails_every_direction_naming_wireguard(tmp_path):
    # The decoders read WireGuard on Felix's default ports whatever the overlay says, so the reason
    # names what the wire shows (the healthy twin, judged as built, is the passing test above).
    result, flows = analyze(hand_run(tmp_path, "wireguard", wireguard=False))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert "FAIL 0/4 directions" in result.output
    flow = flows[(W, W2, "IPv4")]
    assert (flow["expected"], flow["observed"]) == ("plain", "wireguard")
    assert flow["reasons"] == ["12 WireGuard transport-data packets between 10.10.10.11 and 10.10.10.12 on UDP 51820, "
                               "expected plain IPv4 (same subnet: 10.10.10.12 is in 10.10.10.0/24)"]
    flow = flows[(W, W3, "IPv4")]
    assert (flow["expected"], flow["observed"]) == ("vxlan", "wireguard")
    assert flow["reasons"] == ["12 WireGuard transport-data packets between 10.10.10.11 and 10.10.20.13 on UDP 51820, "
                               "expected VXLAN (other subnet: 10.10.20.13 is not in 10.10.10.0/24)"]
    assert "WireGuard transport-data packets between 10.10.20.13 and 10.10.10.11" in result.output
    assert not any(r.startswith("no packets of") for f in flows.values() for r in f["reasons"])
    # Wireshark is pointed at what the wire shows: the nodes' data messages, which the evidence file holds
    assert flow["wireshark"].endswith("-Y 'ip.src==10.10.10.11 && ip.dst==10.10.20.13 && wg.type == 4'")
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    evidence = rdpcap(str(tmp_path / "run" / "evidence" / f"{W}-{W3}.pcapng"))
    assert len([p for p in evidence if p.haslayer(UDP) and bytes(p[UDP].payload)[:1] == b"\x04"]) == 12  # type 4


def test_wireguard_capture_gets_wireshark_lines_without_vxlans_port_decoded_as_wireguard(tmp_path):
    _, flows = analyze(hand_run(tmp_path, "wireguard"))
    line = flows[(W, W3, "IPv4")]["wireshark"]
    assert "4789" not in line and "-d " not in line  # Wireshark dissects WireGuard on 51820 by itself
    assert line.endswith("-Y 'ip.src==10.10.10.11 && ip.dst==10.10.20.13 && wg.type == 4'")


def test_vxlan6_manifests_ipv4_placeholders_judge_nothing(tmp_path):
    # An IPv6-only cluster has no IPv4 address, yet the manifest requires nodes[].underlay and pods[].ip:
    # any values must do. All three nodes in one IPv4 subnet would make worker3 plain if they counted.
    run = hand_run(tmp_path, "vxlan6", nodes={W: {"underlay": "10.99.0.1/16"}, W2: {"underlay": "10.99.0.2/16"},
                                               W3: {"underlay": "10.99.0.3/16"}})
    manifest = json.loads((run / "manifest.json").read_text())
    for i, pod in enumerate(manifest["pods"]):
        pod["ip"] = f"10.77.0.{i + 1}"
    (run / "manifest.json").write_text(json.dumps(manifest))
    result, flows = analyze(run)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert flows[(W, W3, "IPv6")]["observed"] == flows[(W, W3, "IPv6")]["expected"] == "vxlan"
