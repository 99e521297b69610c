"""`vxcap analyze` on a Cilium-style capture taken by hand on a real kernel.

tests/cli/data/cilium-hand holds what `tcpdump -i eth1 -w` wrote on three nodes of `vxcap lab up
--cni cilium` (cilium_vxlan in collect_md mode on 8472, each pod's packets keyed with its own
security identity) while each pod pinged the others, `ip -d -j addr` of each node and pod, and a
manifest written by hand: routing-mode tunnel, each node's vni its test pod's identity
(worker 4355, worker2 12403, worker3 1242). The same frames judged against another identity must
fail, naming the VNI and whose identity it should have been.
"""

from pathlib import Path

from tests.cli import hand_captures
from tests.cli.hand_captures import analyze
from vxcap.exit_status import ExitStatus

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"
IDENTITY = {W: 4355, W2: 12403, W3: 1242}


def hand_run(tmp_path: Path, nodes: dict[str, dict] | None = None, **overlay) -> Path:
    return hand_captures.hand_run(tmp_path, "cilium", nodes, **overlay)


def test_the_cilium_capture_passes_each_direction_with_its_senders_identity(tmp_path):
    result, flows = analyze(hand_run(tmp_path))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert "PASS 6/6 directions" in result.output
    assert len(flows) == 6
    for (src, dst), flow in flows.items():
        assert (flow["observed"], flow["vni"], flow["udp_dport"]) == ("vxlan", IDENTITY[src], 8472), (src, dst)
        assert flow["packets"] > 0 and flow["reasons"] == []
        assert flow["expected_because"] == "Cilium routing-mode tunnel (vxlan)"
        assert "-d udp.port==8472,vxlan" in flow["wireshark"]  # Wireshark dissects VXLAN on 4789 only
    src = flows[(W, W3)]["mtu"]["mtus"]["src"]  # read from cilium_vxlan in the hand-taken `ip -d -j addr`
    assert (src["vxlan_ifname"], src["vxlan_mtu"], src["pod_mtu"]) == ("cilium_vxlan", 1450, 1450)


def test_the_same_capture_judged_with_another_identity_names_the_vni_and_the_identity(tmp_path):
    # worker2's pod said to have worker's identity: what worker2 sends no longer matches it
    result, flows = analyze(hand_run(tmp_path, {W2: {"vni": IDENTITY[W]}}))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    for dst in (W, W3):
        assert flows[(W2, dst)]["reasons"] == [f"VNI {IDENTITY[W2]} is not the sender's security identity {IDENTITY[W]}"]
    assert all(flows[(src, dst)]["verdict"] == "pass" for src, dst in flows if src != W2)


def test_the_same_capture_judged_as_calicos_port_names_the_port(tmp_path):
    result, flows = analyze(hand_run(tmp_path, port=4789))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(W, W3)]["reasons"] == ["UDP port 8472, expected 4789"]
