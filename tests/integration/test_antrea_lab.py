"""The embedded lab as Antrea's Geneve data plane, judged by `vxcap run --lab --cni antrea`.

`vxcap lab up --cni antrea` runs one ovsdb-server and one ovs-vswitchd per node (userspace datapath:
this kernel has no geneve module) and programs them as antrea-agent does: a flow-based antrea-tun0
(key=flow, remote_ip=flow, no csum), flows that send a peer's pod CIDR into it with the global virtual
MAC and no tun_id (VNI 0). Each fault is the twin of the healthy lab: the same run passes before and
fails after, the reason naming the field (VNI, UDP port, plain where Geneve was promised). One lab per
module, this session's prefix (tests/lab_support.py), always taken down.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from tests.lab_scaffold import CniLab, lab_status, observed, problems, vxcap
from tests.lab_support import (  # noqa: F401
    SESSION_PREFIX,
    flows,
    lab_session_guard,
    lab_test,
    session_namespaces,
    vxcap_run,
)
from vxcap.core.lab.antrea import OVS_BASE, antrea_description
from vxcap.core.lab.faults import PortMismatch, TunnelBypass, TunnelTypeMismatch, VniMismatch
from vxcap.core.lab.spec import lab_from_dict
from vxcap.exit_status import ExitStatus
from vxcap.targets.lab import LabSource, lab_up as build_lab, reference_lab

pytestmark = [pytest.mark.usefixtures("lab_session_guard"),
              pytest.mark.skipif(shutil.which("ovs-vswitchd") is None,
                                 reason="Open vSwitch is not installed (apt openvswitch-switch)")]

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"
ANTREA = CniLab("antrea")
VIRTUAL_MAC = "aa:bb:cc:dd:ee:ff"


def ovs_dirs() -> list[Path]:
    base = Path(OVS_BASE)
    return sorted(base.glob(f"{SESSION_PREFIX}-*")) if base.exists() else []


def ovs_processes() -> list[str]:
    """Live (not zombie) processes whose command line names this session's OVS directories."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if f"{OVS_BASE}/{SESSION_PREFIX}-" in cmdline and state != "Z":
            found.append(cmdline)
    return found


def daemons(node: str) -> list[str]:
    """The programs running in the node's namespace, read from /proc (not from vxcap)."""
    pids = subprocess.run(["ip", "netns", "pids", f"{SESSION_PREFIX}-{node}"], capture_output=True, text=True,
                          check=True).stdout.split()
    return sorted(Path(f"/proc/{pid}/comm").read_text().strip() for pid in pids)


def vsctl(node: str, *args: str) -> str:
    db = f"unix:{OVS_BASE}/{SESSION_PREFIX}-{node}/db.sock"
    return subprocess.run(["ovs-vsctl", f"--db={db}", *args], capture_output=True, text=True, check=True).stdout.strip()


def geneve_icmp(pcap: Path) -> list[tuple[str, str, int, int, str, int]]:
    """(outer src, outer dst, UDP dport, outer UDP checksum, inner dst MAC, VNI) of each pod ICMP packet in
    Geneve, by scapy's own Geneve dissector on whatever UDP port it was sent to."""
    found = []
    for packet in rdpcap(str(pcap)):
        if UDP not in packet or packet[IP].proto != 17:
            continue
        # Importing the dissector binds it to 6081 only: any other port is read the same way by hand.
        header = packet[GENEVE] if GENEVE in packet else GENEVE(bytes(packet[UDP].payload))
        if header.proto != 0x6558:
            continue
        inner = Ether(bytes(header.payload))
        if ICMP in inner:
            found.append((packet[IP].src, packet[IP].dst, packet[UDP].dport, packet[UDP].chksum, inner.dst,
                          header.vni))
    return found


@pytest.fixture(scope="module", autouse=True)
def antrea_lab():
    with ANTREA.down_at_the_end():
        yield
    assert not ovs_dirs() and not ovs_processes()


@lab_test
def test_a_run_builds_the_antrea_lab_it_needs_and_leaves_nothing_behind(tmp_path):
    assert not ovs_dirs()
    observed = ANTREA.builds_what_it_needs(tmp_path, "worker,worker3")
    assert observed == {(W, W3): "geneve", (W3, W): "geneve"}
    assert not ovs_dirs() and not ovs_processes()


@lab_test
def test_lab_up_runs_one_ovs_per_node_programmed_as_antrea_agent_does():
    ANTREA.up()
    for node in (CP, W, W2, W3):
        assert daemons(node) == ["ovs-vswitchd", "ovsdb-server"], node  # nothing else, and no more
    # Read from OVS itself: a flow-based Geneve port without dst_port (6081) and without csum.
    assert vsctl(W, "get", "interface", "antrea-tun0", "type") == "geneve"
    assert vsctl(W, "get", "interface", "antrea-tun0", "options") == '{key=flow, remote_ip=flow}'
    assert vsctl(W, "get", "bridge", "br-int", "datapath_type") == "netdev"
    code, report = lab_status()
    assert code == ExitStatus.SUCCESS
    assert report["lab"]["antrea"] == {"tunnel": "antrea-tun0", "tunnel_type": "geneve", "vni": 0, "port": 6081,
                                       "mtu": 1450, "traffic_encap_mode": "encap"}
    names = {c["name"] for n in report["status"]["nodes"] if n["node"] == W for c in n["checks"]}
    assert {"ovsdb-server", "ovs-vswitchd", "antrea-tun0", "flow 10.244.0.0/24", "flow 10.244.2.0/24",
            "flow 10.244.3.0/24", "br-phy", "antrea-gw0", "pod eth0"} <= names


@lab_test
def test_all_pairs_every_direction_is_geneve_on_6081_with_vni_0(tmp_path):
    ANTREA.up()
    run_dir, by_direction = ANTREA.all_pairs_pass(tmp_path)
    for (src, dst), flow in by_direction.items():
        assert (flow["observed"], flow["vni"], flow["udp_dport"]) == ("geneve", 0, 6081), (src, dst)
        # every request answered: OVS's own ARP (which drops the packet that starts it) was done before the run
        assert flow["delivery"]["answered"] == flow["delivery"]["arrived_receiver"] > 0, (src, dst, flow["delivery"])
    # What Antrea sends, read by scapy: UDP 6081, outer checksum 0 (tunnelCsum false), VNI 0, the inner
    # destination the global virtual MAC, between the nodes' underlay addresses.
    seen = set(geneve_icmp(run_dir / f"{W}-eth1.pcap"))
    assert ("10.10.10.11", "10.10.20.13", 6081, 0, VIRTUAL_MAC, 0) in seen
    assert ("10.10.20.13", "10.10.10.11", 6081, 0, VIRTUAL_MAC, 0) in seen
    assert {s[2:] for s in seen} == {(6081, 0, VIRTUAL_MAC, 0)}


@lab_test
def test_wrong_vni_on_one_node_is_named(tmp_path):
    ANTREA.up()
    _, lab = ANTREA.break_after_healthy_run(tmp_path, "worker,worker2", VniMismatch(W2, 5))
    assert set(problems(lab)) == {W2} and "flow 10.244.1.0/24: sets VNI 5 (want 0)" in problems(lab)[W2]
    broken = ANTREA.broken_run(tmp_path, "worker,worker2")
    assert "VNI 5, expected 0" in broken[(W2, W)]["reasons"]
    assert broken[(W, W2)]["verdict"] == "pass"  # W still sends VNI 0, and key=flow takes any


@lab_test
def test_plain_where_geneve_was_promised_is_named(tmp_path):
    ANTREA.up()  # repairs what the previous fault left
    _, lab = ANTREA.break_after_healthy_run(tmp_path, "worker,worker2", TunnelBypass(W, W2))
    assert problems(lab)[W] == ["flow 10.244.2.0/24: missing (not into the tunnel)",
                                "route 10.244.2.0/24: gateway='10.10.10.12' (want '10.244.2.1'); "
                                "dev='br-phy' (want 'antrea-gw0')"]
    flow = ANTREA.broken_run(tmp_path, "worker,worker2")[(W, W2)]
    assert flow["observed"] == "plain" and flow["delivery"]["answered"] > 0  # it works, and breaks the promise
    assert any(r.endswith("plain IPv4 packets, expected Geneve (Geneve tunnel Always)") for r in flow["reasons"]), \
        flow["reasons"]


@lab_test
def test_vxlan_where_geneve_was_promised_is_named(tmp_path):
    ANTREA.up()
    # tunnelType vxlan in that node's antrea-agent.conf alone
    _, lab = ANTREA.break_after_healthy_run(tmp_path, "worker,worker3", TunnelTypeMismatch(W, "vxlan"))
    assert problems(lab)[W] == ["antrea-tun0: type='vxlan' (want 'geneve')"]
    flow = ANTREA.broken_run(tmp_path, "worker,worker3")[(W, W3)]
    assert (flow["observed"], flow["udp_dport"]) == ("vxlan", 4789)
    assert any(r.endswith("VXLAN packets (VNI 0, UDP port 4789), expected Geneve (Geneve tunnel Always)")
               for r in flow["reasons"]), flow["reasons"]


@lab_test
def test_wrong_port_on_one_node_is_named(tmp_path):
    # A cluster whose antrea-agent.conf sets tunnelPort 7000, one node's agent left at the IANA 6081.
    text = yaml.safe_dump(antrea_description(yaml.safe_load(reference_lab().text), hybrid=False, port=7000),
                          sort_keys=False)
    build_lab(LabSource(lab_from_dict(yaml.safe_load(text)), text, "Antrea, tunnelPort 7000"), SESSION_PREFIX)
    assert vsctl(W, "get", "interface", "antrea-tun0", "options:dst_port") == '"7000"'
    healthy, lab = ANTREA.break_after_healthy_run(tmp_path, "worker,worker3", PortMismatch(W, 6081))
    assert healthy[(W, W3)]["udp_dport"] == 7000
    assert problems(lab)[W] == ["antrea-tun0: port=6081 (want 7000)"]
    broken = ANTREA.broken_run(tmp_path, "worker,worker3")
    assert "UDP port 6081, expected 7000" in broken[(W, W3)]["reasons"]
    assert broken[(W, W3)]["udp_dport"] == 6081


@lab_test
def test_hybrid_is_plain_within_a_subnet_and_geneve_across(tmp_path):
    ANTREA.up("--traffic-encap-mode", "hybrid")
    code, lab = lab_status()
    assert code == ExitStatus.SUCCESS and lab["lab"]["antrea"]["traffic_encap_mode"] == "hybrid"
    result, _, report = ANTREA.run(tmp_path, more=("--all-pairs",))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    seen = observed(report)
    assert seen == {d: ("geneve" if W3 in d else "plain") for d in seen}
    assert flows(report)[(W3, CP)]["vni"] == 0 and flows(report)[(W3, CP)]["udp_dport"] == 6081


@lab_test
def test_an_antrea_lab_is_not_judged_as_calicos(tmp_path):
    ANTREA.up()
    (tmp_path / "calico").mkdir()
    result, _, _ = vxcap_run(tmp_path / "calico", "worker,worker3")  # --cni calico, the default
    assert result.exit_code == ExitStatus.USAGE
    assert "built as antrea: `vxcap lab up --cni calico` rebuilds it" in result.output
    assert not any((tmp_path / "calico").iterdir())


@lab_test
def test_traffic_encap_mode_is_antreas_alone():
    result = vxcap("lab", "up", "--traffic-encap-mode", "hybrid", "--prefix", f"{SESSION_PREFIX}n")
    assert result.exit_code == ExitStatus.USAGE
    assert "--traffic-encap-mode is Antrea's: add --cni antrea" in result.output


@lab_test
def test_without_open_vswitch_lab_up_says_so_in_one_line(monkeypatch):
    prefix = f"{SESSION_PREFIX}n"
    bare = Path("/tmp") / f"{prefix}-bin"  # ip and the rest of the system, without the OVS programs
    bare.mkdir(exist_ok=True)
    try:
        for tool in ("ip", "bridge", "sysctl", "tcpdump"):
            found = shutil.which(tool)
            if found:
                (bare / tool).unlink(missing_ok=True)
                os.symlink(found, bare / tool)
        monkeypatch.setenv("PATH", str(bare))
        result = vxcap("lab", "up", "--cni", "antrea", "--prefix", prefix)
    finally:
        monkeypatch.undo()
        shutil.rmtree(bare)
    assert result.exit_code == ExitStatus.USAGE, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Open vSwitch is not installed" in lines[0], result.output
    assert not session_namespaces(prefix)
