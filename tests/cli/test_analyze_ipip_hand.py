"""`vxcap analyze` on IP-in-IP captures taken by hand in `vxcap lab up --overlay ipip` (tests/cli/data/ipip-hand).

What `tcpdump -i eth1 -s 200 'ip'` wrote on three nodes while each pod pinged the others 3 times,
`ip -d -j addr show` of each node and pod, and a manifest written by hand from the lab's addresses.
This kernel has no ipip module: tunl0 there is the userspace forwarder's TUN device
(adapters/ipip_tun.py), and what crosses eth1 is RFC 2003, IPv4 protocol 4, as from a kernel's tunl0.
worker and worker2 share a subnet, worker3 is behind the switch's router: with ipipMode CrossSubnet
the first pair is plain and the others IPIP. Against other promises the same frames must fail, naming the field.
"""

import shutil
import subprocess

import pytest

from tests.cli.hand_captures import DATA, analyze, hand_run
from vxcap.exit_status import ExitStatus

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"
UNDERLAY = {W: "10.10.10.11", W2: "10.10.10.12", W3: "10.10.20.13"}
IPIP_DIRECTIONS = ((W, W3), (W3, W), (W2, W3), (W3, W2))


def test_ipip_capture_passes_each_direction_ipip_across_subnets_plain_within(tmp_path):
    result, flows = analyze(hand_run(tmp_path, "ipip"))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert "PASS 6/6 directions" in result.output
    assert flows[(W, W2)]["observed"] == flows[(W2, W)]["observed"] == "plain"
    for src, dst in IPIP_DIRECTIONS:
        flow = flows[(src, dst)]
        assert (flow["expected"], flow["observed"], flow["reasons"]) == ("ipip", "ipip", [])
        assert (flow["outer_src"], flow["outer_dst"]) == (UNDERLAY[src], UNDERLAY[dst])
        assert (flow["vni"], flow["udp_dport"], flow["inner_dst_mac"]) == (None, None, None)
        assert flow["packets"] > 0 and flow["delivery"]["replies_back"] == 3
    # tunl0's MTU is read from the hand-taken `ip -d -j addr show`: 1500 - 20.
    src = flows[(W, W3)]["mtu"]["mtus"]["src"]
    assert (src["vxlan_ifname"], src["vxlan_mtu"], src["pod_mtu"]) == ("tunl0", 1480, 1480)
    assert flows[(W, W3)]["mtu"]["overhead"]["bytes"] == 20


def test_ipip_capture_judged_with_ipip_mode_always_names_the_plain_frames(tmp_path):
    result, flows = analyze(hand_run(tmp_path, "ipip", mode="Always"))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(W, W2)]["reasons"] == ["12 plain IPv4 packets, expected IP-in-IP (ipipMode Always)"]
    assert all(flows[d]["reasons"] == [] for d in IPIP_DIRECTIONS)


def test_ipip_capture_judged_as_plain_names_the_ip_in_ip_packets(tmp_path):
    result, flows = analyze(hand_run(tmp_path, "ipip", mode="Never"))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(W, W3)]["reasons"] == [
        "12 IP-in-IP packets (outer 10.10.10.11 -> 10.10.20.13), expected plain IPv4 (ipipMode Never)"]
    assert flows[(W, W2)]["reasons"] == []


def test_ipip_capture_judged_as_vxlan_names_the_ip_in_ip_packets(tmp_path):
    result, flows = analyze(hand_run(tmp_path, "ipip", encapsulation="vxlan", vni=4096, port=4789, mtu=1450))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(W3, W)]["reasons"][0] == (
        "12 IP-in-IP packets (outer 10.10.20.13 -> 10.10.10.11), expected VXLAN (other subnet: 10.10.10.11 is not in 10.10.20.0/24)")


def test_ipip_capture_judged_with_a_third_address_for_worker3_names_the_outer_address(tmp_path):
    result, flows = analyze(hand_run(tmp_path, "ipip", nodes={W3: {"underlay": "10.10.20.14/24"}}))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(W, W3)]["reasons"] == ["outer destination 10.10.20.13, expected 10.10.20.14"]
    assert flows[(W3, W)]["reasons"] == ["outer source 10.10.20.13, expected 10.10.20.14"]
    assert flows[(W, W2)]["reasons"] == []


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_sees_the_same_ip_in_ip_frames_as_vxcap(tmp_path):
    # Wireshark's dissectors, not vxcap's decoder: every IPIP frame on worker3's eth1 is one of the
    # four IPIP directions' (each direction's flow: its 3 requests and the 3 replies to the reverse ping).
    pcap = DATA / "ipip-hand" / f"{W3}-eth1.pcap"
    out = subprocess.run(["tshark", "-r", str(pcap), "-Y", "ip.proto==4", "-T", "fields", "-e", "ip.src", "-e", "ip.dst"],
                         capture_output=True, text=True, check=True).stdout
    pairs = [tuple(line.split("\t")) for line in out.splitlines()]
    _, flows = analyze(hand_run(tmp_path, "ipip"))
    assert len(pairs) == sum(flows[d]["seen_on"][f"{W3}/eth1"] for d in IPIP_DIRECTIONS) == 24
    assert {(s.split(",")[0], d.split(",")[0]) for s, d in pairs} == {
        (UNDERLAY[W], UNDERLAY[W3]), (UNDERLAY[W3], UNDERLAY[W]), (UNDERLAY[W2], UNDERLAY[W3]), (UNDERLAY[W3], UNDERLAY[W2])}


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_analyze_cross_check_agrees_with_tshark_on_the_ip_in_ip_capture(tmp_path):
    from click.testing import CliRunner

    from vxcap.cli.main import cli

    run = hand_run(tmp_path, "ipip")
    result = CliRunner().invoke(cli, ["analyze", str(run), "--cross-check"])
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert "tshark agrees with vxcap's decode on every flow" in result.output


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_cross_check_names_an_ip_in_ip_outer_address_vxcap_did_not_see(tmp_path):
    # A report altered after the decode: tshark's reading of the same frames must catch it.
    from vxcap.adapters.rundir import load_manifest
    from vxcap.adapters.tshark import cross_check
    from vxcap.pipeline import analyze as analyze_run

    run = hand_run(tmp_path, "ipip")
    report = analyze_run(run).report
    flow = next(f for f in report["flows"] if (f["src_node"], f["dst_node"]) == (W, W3))
    flow["outer_dst"] = "10.10.20.99"
    flow["observed"] = "plain"
    name = f"{W} -> {W3} (192.168.81.65 -> 192.168.209.65)"
    assert cross_check(run, load_manifest(run), report) == [
        f"{name}: tshark sees it as ipip, vxcap as plain",
        f"{name}: tshark outer 10.10.10.11 -> 10.10.20.13, vxcap 10.10.10.11 -> 10.10.20.99"]
