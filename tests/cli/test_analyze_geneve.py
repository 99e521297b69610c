"""`vxcap analyze` on Geneve captures taken from a real data plane.

tests/cli/data/geneve-hand holds what tcpdump wrote on both ends of the underlay veth of
scripts/geneve-ovs-lab (Open vSwitch's userspace datapath, VNI 5001, UDP 6081; node a adds one
8-byte option) while pod a pinged pod b and then pod b pod a, and a manifest written by hand. The
same frames judged against another VNI, another port or another format must fail, naming it.
"""

import json
from pathlib import Path

from tests.cli import hand_captures
from tests.cli.hand_captures import analyze
from vxcap.exit_status import ExitStatus

DATA = hand_captures.DATA / "geneve-hand"
A, B = "node-a", "node-b"


def hand_run(tmp_path: Path, **overlay) -> Path:
    return hand_captures.hand_run(tmp_path, "geneve", **overlay)


def test_the_ovs_geneve_capture_passes_as_geneve_with_vni_5001_on_6081(tmp_path):
    result, flows = analyze(hand_run(tmp_path))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert "PASS 2/2 directions" in result.output
    for src, dst in ((A, B), (B, A)):
        flow = flows[(src, dst)]
        assert (flow["expected"], flow["observed"], flow["vni"], flow["udp_dport"]) == ("geneve", "geneve", 5001, 6081)
        assert flow["reasons"] == [] and flow["delivery"]["replies_back"] == 3
        assert "-d udp.port" not in flow["wireshark"]  # 6081 is where Wireshark dissects Geneve unasked
    # a's frames carry the 8-byte option, b's none: the same ping is 8 bytes longer one way
    assert flows[(A, B)]["max_frame_len"] == flows[(B, A)]["max_frame_len"] + 8


def test_the_port_defaults_to_genevess_own_when_the_manifest_leaves_it_out(tmp_path):
    run = hand_run(tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["overlay"]["port"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    result, _ = analyze(run)
    assert result.exit_code == ExitStatus.SUCCESS, result.output


def test_the_same_capture_judged_against_another_vni_names_the_vni(tmp_path):
    result, flows = analyze(hand_run(tmp_path, vni=5002))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(A, B)]["reasons"] == ["VNI 5001, expected 5002"]
    assert flows[(B, A)]["reasons"] == ["VNI 5001, expected 5002"]


def test_the_same_capture_judged_on_another_port_names_the_port(tmp_path):
    result, flows = analyze(hand_run(tmp_path, port=7000))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(A, B)]["reasons"] == ["UDP port 6081, expected 7000"]
    assert "-d udp.port==7000,geneve" in flows[(A, B)]["wireshark"]  # Wireshark dissects Geneve on 6081 only


def test_the_same_capture_judged_as_vxlan_names_the_format(tmp_path):
    result, flows = analyze(hand_run(tmp_path, encapsulation="vxlan", port=6081))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert flows[(A, B)]["reasons"] == ["12 Geneve packets (VNI 5001, UDP port 6081), expected VXLAN (vxlanMode Always)"]


def test_the_precise_capture_filter_takes_the_pods_geneve_frames_with_and_without_options():
    """The Geneve term, compiled by tcpdump and run over the real captures: node a's frames carry an
    option, b's none, so the inner offsets must follow Opt Len to take both (and only the pods')."""
    import shutil as which
    import subprocess
    from ipaddress import IPv4Address

    import pytest

    from vxcap.core.capture import encap_terms, precise_filter
    from vxcap.core.model import Wire

    if which.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed")
    pods = [IPv4Address("10.244.0.1")]
    (term,) = encap_terms(Wire.GENEVE, pods, [])  # alone: VXLAN's term also takes Geneve without options
    assert term in precise_filter(pods, [], 6081, wires=[Wire.GENEVE])
    for name in ("node-a-underlay.pcap", "node-b-underlay.pcap"):
        lines = subprocess.run(["tcpdump", "-nn", "-r", str(DATA / name), term], capture_output=True, text=True,
                               check=True).stdout.splitlines()
        # 3 echo requests and 3 replies each way, every one seen on both ends of the veth
        assert len(lines) == 12, lines
        assert all("10.244.0.1" in line and "ICMP echo" in line for line in lines)
