"""`vxcap run --lab` end to end on the real namespace lab: real VXLAN, real tcpdump.

The pcaps are checked here with scapy's own dissection (its 4789 binding), not
with vxcap's decoder, so the run's verdict is held against an independent read.
"""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from scapy.layers.inet import IP, UDP
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

from tests.lab_support import flows, lab_session_guard, lab_test, running_lab, session_namespaces, vxcap_run  # noqa: F401
from vxcap.cli.main import cli
from vxcap.core.lab.faults import CrossSubnetPlain, FdbWrongNode, SameSubnetViaVxlan, VniMismatch
from vxcap.exit_status import ExitStatus

pytestmark = pytest.mark.usefixtures("lab_session_guard")

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"
POD = {W: "192.168.81.65", W2: "192.168.164.129", W3: "192.168.209.65"}


def pod_packets(pcap: Path, src: str, dst: str):
    """(plain, vxlan) packets of one pod flow in a pcap, by scapy's own dissection."""
    plain, vxlan = [], []
    for pkt in rdpcap(str(pcap)):
        if pkt.haslayer(VXLAN):
            inner = pkt[VXLAN].payload.getlayer(IP)
            if inner is not None and (inner.src, inner.dst) == (src, dst):
                vxlan.append(pkt)
        elif pkt.haslayer(IP) and (pkt[IP].src, pkt[IP].dst) == (src, dst):
            plain.append(pkt)
    return plain, vxlan


@lab_test
def test_reference_run_passes_and_the_wire_agrees(tmp_path):
    with running_lab():
        result, run_dir, report = vxcap_run(tmp_path, "worker,worker3", "worker,worker2")
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert report["verdict"] == "pass" and len(report["flows"]) == 4
    f = flows(report)
    assert f[(W, W3)]["observed"] == "vxlan" and f[(W, W3)]["vni"] == 4096 and f[(W, W3)]["udp_dport"] == 4789
    assert (f[(W, W3)]["outer_src"], f[(W, W3)]["outer_dst"]) == ("10.10.10.11", "10.10.20.13")
    assert (f[(W3, W)]["outer_src"], f[(W3, W)]["outer_dst"]) == ("10.10.20.13", "10.10.10.11")
    assert f[(W, W2)]["observed"] == "plain" and f[(W2, W)]["observed"] == "plain"

    # Independent read: cross-subnet is VXLAN 4096 on 4789 between the nodes' underlay addresses...
    for node in (W, W3):
        plain, vxlan = pod_packets(run_dir / f"{node}-eth1.pcap", POD[W], POD[W3])
        assert not plain and len(vxlan) >= 2
        for pkt in vxlan:
            assert pkt[UDP].dport == 4789 and pkt[VXLAN].vni == 4096
            assert (pkt[IP].src, pkt[IP].dst) == ("10.10.10.11", "10.10.20.13")
    # ...and same-subnet has no UDP 4789 for its flow on either node, while the flow is there (the twin).
    for node in (W, W2):
        for src, dst in ((W, W2), (W2, W)):
            plain, vxlan = pod_packets(run_dir / f"{node}-eth1.pcap", POD[src], POD[dst])
            assert not vxlan and len(plain) >= 2
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert {n["name"] for n in manifest["nodes"]} == {W, W2, W3}
    for node in (W, W2, W3):
        routes = json.loads((run_dir / f"{node}-eth1.route.json").read_text())
        assert any(r.get("dst") == "192.168.209.64/26" for r in routes)


@lab_test
def test_analyze_rejudges_the_run_the_same_way(tmp_path):
    with running_lab():
        _, run_dir, report = vxcap_run(tmp_path, "worker,worker3")
    (run_dir / "report.json").unlink()
    result = CliRunner().invoke(cli, ["analyze", str(run_dir), "--json"])
    assert result.exit_code == ExitStatus.SUCCESS
    again = json.loads(result.stdout)
    assert again["flows"] == report["flows"]


@lab_test
def test_run_builds_a_missing_lab_and_removes_it_after(tmp_path):
    assert not session_namespaces()
    result, _, report = vxcap_run(tmp_path, "worker,worker3")
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert not session_namespaces()


FAULTS = [
    pytest.param(VniMismatch(W3, 4097), "worker,worker3", (W3, W), "VNI 4097, expected 4096", id="vni"),
    pytest.param(SameSubnetViaVxlan(W, W2), "worker,worker2", (W, W2),
                 "VXLAN packets (VNI 4096, UDP port 4789), expected plain IPv4 (same subnet", id="same-subnet-via-vxlan"),
    pytest.param(FdbWrongNode(W, W3, W2), "worker,worker3", (W, W3),
                 "outer destination 10.10.10.12, expected 10.10.20.13", id="fdb-wrong-node"),
    pytest.param(CrossSubnetPlain(W, W3), "worker,worker3", (W, W3),
                 "plain IPv4 packets, expected VXLAN (other subnet", id="cross-subnet-plain"),
]


@lab_test
@pytest.mark.parametrize("fault,pair,direction,reason", FAULTS)
def test_each_fault_fails_with_its_reason(tmp_path, fault, pair, direction, reason):
    with running_lab() as lab:
        lab.apply_fault(fault)
        result, _, report = vxcap_run(tmp_path, pair)
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    broken = flows(report)[direction]
    assert broken["verdict"] == "fail"
    assert any(reason in r for r in broken["reasons"]), broken["reasons"]
    assert reason in result.output
    # the sender's own tables say why: its route to the pod is the first line
    assert broken["explanation"][0].startswith(f"{direction[0]} routes {POD[direction[1]]} by `")


@lab_test
def test_the_fdb_fault_is_explained_by_the_senders_fdb_entry(tmp_path):
    with running_lab() as lab:
        lab.apply_fault(FdbWrongNode(W, W3, W2))
        result, _, report = vxcap_run(tmp_path, "worker,worker3")
    explanation = flows(report)[(W, W3)]["explanation"]
    assert explanation[1] == f"{W}: neighbour 192.168.209.64 is 66:d2:0c:f0:ef:e5; its FDB entry sends 66:d2:0c:f0:ef:e5 to 10.10.10.12"
    assert "because" in result.output and "its FDB entry sends 66:d2:0c:f0:ef:e5 to 10.10.10.12" in result.output


@lab_test
def test_the_plain_fault_is_explained_by_the_senders_route(tmp_path):
    with running_lab() as lab:
        lab.apply_fault(CrossSubnetPlain(W, W3))
        _, _, report = vxcap_run(tmp_path, "worker,worker3")
    assert flows(report)[(W, W3)]["explanation"] == [
        f"{W} routes {POD[W3]} by `192.168.209.64/26 via 10.10.10.1 dev eth1`"]


@lab_test
def test_the_run_says_what_it_waits_for_captures_listening_and_packets_per_node(tmp_path):
    from tests.lab_support import SESSION_PREFIX, k01_spec
    from vxcap.pipeline import RunOptions, run
    from vxcap.targets.lab import LabSource, LabTarget

    heard = []
    with running_lab():
        target = LabTarget(LabSource(k01_spec(), "", "the test's lab"), prefix=SESSION_PREFIX)
        outcome = run(target, RunOptions(pair_specs=("worker,worker3",), out_parent=tmp_path, ping_count=5),
                      waiting=heard.append)
    assert outcome.passed
    assert heard[:3] == ["captures listening 0/2", "captures listening 1/2", "captures listening 2/2"]
    counts = [line for line in heard if line.startswith("packets captured: ")]
    assert counts, heard
    # The last count is close to what each pcap holds: the echoes arrived while the display watched.
    last = dict(part.rsplit(" ", 1) for part in counts[-1].removeprefix("packets captured: ").split(" · "))
    assert set(last) == {W, W3} and all(int(n) >= 10 for n in last.values()), counts
