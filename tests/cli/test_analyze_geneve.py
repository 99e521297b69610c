"""`vxcap analyze` on Geneve captures taken from a real data plane.

tests/cli/data/geneve-hand holds what tcpdump wrote on both ends of the underlay veth of
scripts/geneve-ovs-lab (Open vSwitch's userspace datapath, VNI 5001, UDP 6081; node a adds one
8-byte option) while pod a pinged pod b and then pod b pod a, and a manifest written by hand. The
same frames judged against another VNI, another port or another format must fail, naming it.
"""

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from vxcap.cli.main import cli
from vxcap.exit_status import ExitStatus

DATA = Path(__file__).parent / "data" / "geneve-hand"
A, B = "node-a", "node-b"


def hand_run(tmp_path: Path, **overlay) -> Path:
    run = tmp_path / "run"
    shutil.copytree(DATA, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["overlay"].update(overlay)
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def analyze(run: Path):
    result = CliRunner().invoke(cli, ["analyze", str(run)])
    report = json.loads((run / "report.json").read_text())
    return result, {(f["src_node"], f["dst_node"]): f for f in report["flows"]}


def test_the_ovs_geneve_capture_passes_as_geneve_with_vni_5001_on_6081(tmp_path):
    result, flows = analyze(hand_run(tmp_path))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert "PASS 2/2 directions" in result.output
    for src, dst in ((A, B), (B, A)):
        flow = flows[(src, dst)]
        assert (flow["expected"], flow["observed"], flow["vni"], flow["udp_dport"]) == ("geneve", "geneve", 5001, 6081)
        assert flow["reasons"] == [] and flow["delivery"]["replies_back"] == 3
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
    assert any("6081" in reason and "7000" in reason for reason in flows[(A, B)]["reasons"]), flows[(A, B)]["reasons"]


def test_the_same_capture_judged_as_vxlan_names_the_format(tmp_path):
    result, flows = analyze(hand_run(tmp_path, encapsulation="vxlan", port=6081))
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    reasons = " ".join(flows[(A, B)]["reasons"])
    assert "VXLAN" in reasons, reasons
