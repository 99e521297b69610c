"""`vxcap analyze` on a Flannel capture taken by hand on a real kernel.

tests/cli/data/flannel-hand holds what `tcpdump -i eth1 -w` wrote on three nodes of
`vxcap lab up --cni flannel --direct-routing` (flannel.1, VNI 1, the kernel's port 8472)
while each pod pinged the others, `ip -d -j link` of each node and pod, and a manifest
written by hand: worker and worker2 share a subnet (plain), worker3 is behind the switch's
router (VXLAN). The same frames judged against other promises must fail, naming the field.
"""

from pathlib import Path

from tests.cli import hand_captures
from tests.cli.hand_captures import analyze
from vxcap.exit_status import ExitStatus

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"


def hand_run(tmp_path: Path, **overlay) -> Path:
    return hand_captures.hand_run(tmp_path, "flannel", **overlay)


def test_flannel_direct_routing_capture_passes_with_port_8472_and_vni_1(tmp_path):
    result, flows = analyze(hand_run(tmp_path))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert "PASS 4/4 directions" in result.output
    for src, dst in ((W, W3), (W3, W)):
        flow = flows[(src, dst)]
        assert (flow["observed"], flow["vni"], flow["udp_dport"]) == ("vxlan", 1, 8472)
        assert flow["packets"] > 0 and flow["reasons"] == []
        assert "-d udp.port==8472,vxlan" in flow["wireshark"]  # Wireshark dissects VXLAN on 4789 only
    assert flows[(W, W2)]["observed"] == "plain" and flows[(W2, W)]["observed"] == "plain"
    assert flows[(W, W2)]["expected_because"] == "DirectRouting on, same subnet: 10.10.10.12 is in 10.10.10.0/24"
    # The tunnel's MTU is read from flannel.1 in the hand-taken `ip -d -j link`.
    src = flows[(W, W3)]["mtu"]["mtus"]["src"]
    assert (src["vxlan_ifname"], src["vxlan_mtu"], src["pod_mtu"]) == ("flannel.1", 1450, 1450)
    html = (tmp_path / "run" / "report.html").read_text()
    assert "flannel.1</b><span>encapsulates" in html and "vxlan.calico" not in html


def test_the_same_capture_judged_as_calicos_port_names_the_port(tmp_path):
    result, flows = analyze(hand_run(tmp_path, port=4789))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(W, W3)]["reasons"] == ["UDP port 8472, expected 4789"]
    assert flows[(W, W2)]["reasons"] == []  # plain is plain on any port


def test_the_same_capture_judged_against_another_vni_names_the_vni(tmp_path):
    result, flows = analyze(hand_run(tmp_path, vni=2))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(W3, W)]["reasons"] == ["VNI 1, expected 2"]


def test_direct_routing_off_makes_the_same_subnet_plain_frames_the_fault(tmp_path):
    result, flows = analyze(hand_run(tmp_path, mode="Always"))  # DirectRouting off: always VXLAN
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(W, W2)]["reasons"][0].endswith("plain IPv4 packets, expected VXLAN (Flannel vxlan, DirectRouting off)")
    assert flows[(W, W3)]["reasons"] == []
