"""A busy node's capture: other pods flood traffic between the same nodes while a run goes on.

The precise filter (the default) must keep the test pods' frames and none of the flood's, with the
same verdicts as a wide capture of the same flood; the wide capture holds the flood (the control that
the flood was on the wire). Under a fault, the precise capture still shows what the verdict must see.
The pcaps are read with scapy's own dissection, not vxcap's decoder.
"""

from __future__ import annotations

import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from scapy.layers.inet import IP
from scapy.layers.vxlan import VXLAN
from scapy.utils import PcapReader

from tests.lab_support import flows, lab_session_guard, lab_test, running_lab, vxcap_run  # noqa: F401
from vxcap.core.lab.faults import CrossSubnetPlain
from vxcap.exit_status import ExitStatus

pytestmark = pytest.mark.usefixtures("lab_session_guard")

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"
POD = {W: "192.168.81.65", W2: "192.168.164.129", W3: "192.168.209.65"}
# Other pods of the same nodes: second addresses in the nodes' blocks, routed like any pod.
OTHER = {W: "192.168.81.100", W2: "192.168.164.150", W3: "192.168.209.100"}
FLOODS = ((W, W3), (W3, W), (W, W2), (W2, W))


@contextmanager
def other_pods_flooding(lab):
    for node, address in OTHER.items():
        subprocess.run(["ip", "-n", lab.pod_netns(node), "addr", "add", f"{address}/32", "dev", "eth0"], check=True)
        subprocess.run(["ip", "-n", lab.node_netns(node), "route", "add", address, "dev", lab.names.cali(node),
                        "scope", "link"], check=True)
    floods = []
    try:
        for src, dst in FLOODS:
            floods.append(subprocess.Popen(
                # Paced at 1,000 echoes/s each: an unpaced flood on a quiet machine filled the wide
                # capture's packet cap (-c 100000) in 2 s, failing the run it was only meant to crowd.
                ["ip", "netns", "exec", lab.pod_netns(src), "ping", "-f", "-i", "0.001", "-q", "-s", "300",
                 "-I", OTHER[src],
                 OTHER[dst]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        assert all(f.poll() is None for f in floods), "a flood did not start"
        yield
    finally:
        for flood in floods:
            flood.terminate()
        for flood in floods:
            flood.wait(10)


def addresses(pcap: Path) -> list[set[str]]:
    """Per frame, every IPv4 address in it: outer and, for VXLAN, inner."""
    out = []
    with PcapReader(str(pcap)) as reader:
        for pkt in reader:
            found = set()
            if pkt.haslayer(IP):
                found |= {pkt[IP].src, pkt[IP].dst}
            if pkt.haslayer(VXLAN) and pkt[VXLAN].payload.haslayer(IP):
                inner = pkt[VXLAN].payload[IP]
                found |= {inner.src, inner.dst}
            out.append(found)
    return out


def verdicts(report) -> dict:
    return {d: (f["verdict"], f["observed"], f["reasons"]) for d, f in flows(report).items()}


@lab_test
def test_a_precise_capture_of_a_flooded_node_holds_the_test_flows_only_with_the_same_verdicts(tmp_path):
    flood = set(OTHER.values())
    with running_lab() as lab, other_pods_flooding(lab):
        precise = vxcap_run(tmp_path / "precise", "worker,worker3", "worker,worker2")
        wide = vxcap_run(tmp_path / "wide", "worker,worker3", "worker,worker2", options=("--capture-filter", "wide"))
    (result, run_dir, report), (wide_result, wide_dir, wide_report) = precise, wide
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert wide_result.exit_code == ExitStatus.SUCCESS, wide_result.output
    assert verdicts(report) == verdicts(wide_report)
    assert {c["filter"]["mode"] for c in report["captures"]} == {"precise"}
    assert {c["filter"]["mode"] for c in wide_report["captures"]} == {"wide"}
    for node in (W, W2, W3):
        kept = addresses(run_dir / f"{node}-eth1.pcap")
        flooded = addresses(wide_dir / f"{node}-eth1.pcap")
        # the control: the flood was on this node's wire, in the thousands, while the run went on ...
        assert sum(1 for a in flooded if a & flood) > 1000, node
        # ... and the precise capture kept none of it, and every frame it kept names a test pod
        assert not [a for a in kept if a & flood], node
        assert kept and all(a & set(POD.values()) for a in kept), node


@lab_test
def test_under_a_flood_a_fault_is_still_seen_by_the_precise_capture(tmp_path):
    # The "must see" twin: VXLAN expected, plain seen; the flood (plain too now) must not hide or fake it.
    with running_lab() as lab, other_pods_flooding(lab):
        lab.apply_fault(CrossSubnetPlain(W, W3))
        result, _, report = vxcap_run(tmp_path, "worker,worker3")
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    broken = flows(report)[(W, W3)]
    assert broken["verdict"] == "fail" and broken["observed"] == "plain"
    assert any("plain IPv4 packets, expected VXLAN (other subnet" in r for r in broken["reasons"]), broken["reasons"]
