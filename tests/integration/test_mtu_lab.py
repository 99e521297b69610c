"""MTU on the real namespace lab: what `vxcap run --lab` measures and explains.

Expectations are header sums and the kernel's own settings (what the lab sets
and what `ip link` says), and the wire is read back with scapy's own
dissection, never with vxcap's decoders.
"""

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

from tests.lab_support import LAB_FILE, flows, lab_session_guard, lab_test, running_lab, vxcap_run  # noqa: F401
from vxcap.cli.main import cli
from vxcap.core.lab.faults import PodMtu
from vxcap.core.lab.spec import lab_from_dict
from vxcap.exit_status import ExitStatus

pytestmark = pytest.mark.usefixtures("lab_session_guard")

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"
POD = {W: "192.168.81.65", W2: "192.168.164.129", W3: "192.168.209.65"}
IPV4, ICMP_H, TCP_H, ETH, VXLAN_OVERHEAD = 20, 8, 20, 14, 14 + 8 + 8 + 20
POD_MTU, UNDERLAY_MTU = 1450, 1500  # the reference lab file's overlay.mtu and underlay.mtu


def inner_ip(pkt):
    """The pod's IPv4 header of a captured frame: inside VXLAN, or the frame's own."""
    if pkt.haslayer(VXLAN):
        return pkt[VXLAN].payload.getlayer(IP)
    return pkt.getlayer(IP)


def scapy_view(pcap: Path, src: str, dst: str):
    """(sizes of echo requests src -> dst, largest frame of the flow, MSS options of its SYNs), by scapy."""
    requests, largest, mss = set(), 0, set()
    for pkt in rdpcap(str(pcap)):
        ip = inner_ip(pkt)
        if ip is None or (ip.src, ip.dst) != (src, dst):
            continue
        largest = max(largest, getattr(pkt, "wirelen", None) or len(pkt))
        if ip.haslayer(ICMP) and ip[ICMP].type == 8:
            requests.add(ip.len)
        if ip.haslayer(TCP) and ip[TCP].flags.S:
            mss |= {value for name, value in ip[TCP].options if name == "MSS"}
    return requests, largest, mss


@lab_test
def test_healthy_lab_measures_1422_on_vxlan_paths_and_mss_1410(tmp_path):
    with running_lab():
        result, run_dir, report = vxcap_run(tmp_path, "worker,worker3", "worker,worker2")
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    largest_payload = POD_MTU - IPV4 - ICMP_H
    mss = POD_MTU - IPV4 - TCP_H
    assert (largest_payload, mss) == (1422, 1410)
    for (src, dst), flow in flows(report).items():
        mtu = flow["mtu"]
        assert mtu["mtus"]["src"]["pod_mtu"] == POD_MTU and mtu["mtus"]["src"]["underlay_mtu"] == UNDERLAY_MTU
        measured = mtu["measured"]
        assert measured["largest_df_payload"] == largest_payload and measured["largest_df_payload_exact"]
        assert measured["smallest_failed_payload"] == largest_payload + 1
        assert measured["tcp_mss_seen"] == [mss] and measured["tcp_connected"] is True
        assert [f for f in mtu["findings"] if f["level"] == "fail"] == []
        by_size = {p["size"]: p for p in measured["probes"]}
        assert {1372, 1422, 1423, 1472} <= set(by_size)
        assert by_size[1422]["fate"] == "crossed" and by_size[1422]["sent_on_wire"] and by_size[1422]["reply_on_wire"]
        assert by_size[1423]["fate"] == "refused-locally" and by_size[1423]["sent_on_wire"] is False

        # The sender's pcap, read by scapy: 1422 + 28 left, 1423 + 28 never did; the SYN said 1410.
        requests, largest, syn_mss = scapy_view(run_dir / f"{src}-eth1.pcap", POD[src], POD[dst])
        assert largest_payload + 28 in requests and largest_payload + 29 not in requests
        assert syn_mss == {mss}
        overhead = VXLAN_OVERHEAD if flow["expected"] == "vxlan" else 0
        assert measured["max_outer_frame"] == largest == POD_MTU + overhead + ETH
        assert mtu["overhead"]["bytes"] == overhead
        if flow["expected"] == "vxlan":
            assert mtu["mtus"]["src"]["vxlan_mtu"] == POD_MTU
    # The terminal's MTU section, one line per direction.
    line = (f"{W} → {W3} vxlan: pod 1450 / vxlan.calico 1450 / eth1 1500 · overhead 50 · "
            "largest DF payload 1422 (measured 1422) · MSS 1410 (seen 1410)")
    assert line in result.output
    assert report["timings"]["mtu-probe"] < 5.0  # the ladder is quick on a healthy path
    # `vxcap analyze` of the directory judges the MTUs as the run did.
    again = CliRunner().invoke(cli, ["analyze", str(run_dir), "--json"])
    assert [f["mtu"] for f in json.loads(again.stdout)["flows"]] == [f["mtu"] for f in report["flows"]]


@lab_test
def test_a_pod_at_1500_fails_the_cross_subnet_directions_from_it(tmp_path):
    with running_lab() as lab:
        lab.apply_fault(PodMtu(W, 1500))
        result, run_dir, report = vxcap_run(tmp_path, "worker,worker3", "worker,worker2", "worker2,worker3")
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    f = flows(report)
    failed = {key for key, flow in f.items() if flow["verdict"] == "fail"}
    assert failed == {(W, W3)}  # cross-subnet from the pod; same-subnet and the other nodes pass
    (reason,) = f[(W, W3)]["reasons"]
    for words in ("pod vxcap-k01-worker eth0 MTU 1500 on k01-worker", "expected <= 1450",
                  "underlay MTU 1500 - 50 VXLAN overhead", "spec.calicoNetwork.mtu"):
        assert words in reason
    assert reason.removeprefix("MTU: ") in result.output
    # The pod's SYN advertises what its own MTU allows, more than the path carries: a warning.
    assert f[(W, W3)]["mtu"]["measured"]["tcp_mss_seen"] == [1500 - IPV4 - TCP_H]
    assert "tcp-mss-above-path" in {x["code"] for x in f[(W, W3)]["mtu"]["findings"]}
    # Probes bigger than the tunnel met its MTU: refused (ICMP or locally), never lost.
    fates = {p["size"]: p["fate"] for p in f[(W, W3)]["mtu"]["measured"]["probes"]}
    assert fates[1422] == "crossed" and fates[1423] in ("frag-needed", "refused-locally")
    assert f[(W, W3)]["mtu"]["measured"]["largest_df_payload"] == 1422
    # Same subnet: 1451 bytes left the pod and the receiving node said fragmentation-needed, on the wire.
    requests, _, _ = scapy_view(run_dir / f"{W}-eth1.pcap", POD[W], POD[W2])
    assert 1423 + 28 in requests
    plain = f[(W, W2)]["mtu"]
    assert plain["measured"]["icmp_frag_needed"] >= 1
    assert {x["level"] for x in plain["findings"]} <= {"warn", "info"}


@lab_test
def test_a_jumbo_underlay_reports_the_headroom_and_the_pod_mtu_it_allows(tmp_path):
    data = yaml.safe_load(LAB_FILE.read_text())
    data["underlay"]["mtu"] = 9000
    lab_file = tmp_path / "jumbo-lab.yaml"
    lab_file.write_text(yaml.safe_dump(data))
    spec = lab_from_dict(data)
    with running_lab(spec=spec) as lab:
        switch = json.loads(subprocess.run(["ip", "-j", "-n", lab.names.switch, "link", "show"],
                                           capture_output=True, text=True, check=True).stdout)
        result, run_dir, report = vxcap_run(tmp_path / "runs", "worker,worker3", "worker,worker2", lab_file=lab_file)
    # The lab honours the underlay MTU on the switch's bridges and ports too, not only on eth1.
    assert {link["ifname"]: link["mtu"] for link in switch if link["ifname"] != "lo"} and all(
        link["mtu"] == 9000 for link in switch if link["ifname"] != "lo")
    assert result.exit_code == ExitStatus.SUCCESS, result.output  # headroom is a warning, not a failure
    allowed = 9000 - VXLAN_OVERHEAD
    for (src, dst), flow in flows(report).items():
        mtu = flow["mtu"]
        assert mtu["mtus"]["src"]["underlay_mtu"] == 9000 and mtu["underlay_mtu_assumed"] is False
        assert mtu["headroom"]["allowed_pod_mtu"] == allowed
        (warn,) = [x for x in mtu["findings"] if x["code"] == "unused-headroom"]
        assert warn["level"] == "warn"
        for words in (f"pod vxcap-{src} eth0 MTU 1450 on {src}", f"allows pod MTU {allowed}", f"vxlanMTU: {allowed}"):
            assert words in warn["message"]
        assert mtu["measured"]["largest_df_payload"] == POD_MTU - IPV4 - ICMP_H  # the pods still stop at 1450
    # The switch and the nodes' eth1 really are at 9000: the evidence says so, not the lab file.
    links = json.loads((run_dir / f"{W}-eth1.link.json").read_text())
    assert next(link for link in links if link["ifname"] == "eth1")["mtu"] == 9000
    assert f"allows pod MTU {allowed}" in result.output
