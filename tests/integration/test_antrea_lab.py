"""The embedded lab as Antrea's Geneve data plane, judged by `vxcap run --lab --cni antrea`.

`vxcap lab up --cni antrea` runs one ovsdb-server and one ovs-vswitchd per node (userspace datapath:
this kernel has no geneve module) and programs them as antrea-agent does: a flow-based antrea-tun0
(key=flow, remote_ip=flow, no csum), flows that send a peer's pod CIDR into it with the global virtual
MAC and no tun_id (VNI 0). Each fault is the twin of the healthy lab: the same run passes before and
fails after, the reason naming the field (VNI, UDP port, plain where Geneve was promised). One lab per
module, this session's prefix (tests/lab_support.py), always taken down.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from tests.lab_support import (  # noqa: F401
    SESSION_PREFIX,
    flows,
    lab_session_guard,
    lab_test,
    session_namespaces,
    vxcap_run,
)
from vxcap.adapters.lab import NetnsLab
from vxcap.cli.main import cli
from vxcap.core.lab.antrea import OVS_BASE, antrea_description
from vxcap.core.lab.faults import PortMismatch, TunnelBypass, TunnelTypeMismatch, VniMismatch
from vxcap.core.lab.spec import lab_from_dict
from vxcap.exit_status import ExitStatus
from vxcap.targets.lab import LabSource, choose_lab, lab_up as build_lab, reference_lab

pytestmark = [pytest.mark.usefixtures("lab_session_guard"),
              pytest.mark.skipif(shutil.which("ovs-vswitchd") is None,
                                 reason="Open vSwitch is not installed (apt openvswitch-switch)")]

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"
ANTREA = ["--cni", "antrea"]
VIRTUAL_MAC = "aa:bb:cc:dd:ee:ff"


def vxcap(*args: str):
    return CliRunner().invoke(cli, list(args))


def lab_up(*options: str) -> None:
    result = vxcap("lab", "up", "--cni", "antrea", "--prefix", SESSION_PREFIX, *options)
    assert result.exit_code == 0, result.output
    assert "lab is healthy" in result.output


def status() -> tuple[int, dict]:
    result = vxcap("lab", "status", "--prefix", SESSION_PREFIX, "--json")
    return result.exit_code, json.loads(result.output)


def problems(report: dict) -> dict[str, list[str]]:
    return {n["node"]: [f"{c['name']}: {c['detail']}" for c in n["checks"] if not c["ok"]]
            for n in report["status"]["nodes"] if not n["ok"]}


def break_lab(fault) -> None:
    NetnsLab(choose_lab(SESSION_PREFIX, cni="antrea").spec, prefix=SESSION_PREFIX).apply_fault(fault)


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
    try:
        yield
    finally:
        vxcap("lab", "down", "--prefix", SESSION_PREFIX)
        assert not ovs_dirs() and not ovs_processes()


@lab_test
def test_a_run_builds_the_antrea_lab_it_needs_and_leaves_nothing_behind(tmp_path):
    assert not session_namespaces() and not ovs_dirs()
    result, _, report = vxcap_run(tmp_path, "worker,worker3", options=ANTREA)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert {d: f["observed"] for d, f in flows(report).items()} == {(W, W3): "geneve", (W3, W): "geneve"}
    assert not session_namespaces() and not ovs_dirs() and not ovs_processes()


@lab_test
def test_lab_up_runs_one_ovs_per_node_programmed_as_antrea_agent_does():
    lab_up()
    for node in (CP, W, W2, W3):
        assert daemons(node) == ["ovs-vswitchd", "ovsdb-server"], node  # nothing else, and no more
    # Read from OVS itself: a flow-based Geneve port without dst_port (6081) and without csum.
    assert vsctl(W, "get", "interface", "antrea-tun0", "type") == "geneve"
    assert vsctl(W, "get", "interface", "antrea-tun0", "options") == '{key=flow, remote_ip=flow}'
    assert vsctl(W, "get", "bridge", "br-int", "datapath_type") == "netdev"
    code, report = status()
    assert code == ExitStatus.SUCCESS
    assert report["lab"]["antrea"] == {"tunnel": "antrea-tun0", "tunnel_type": "geneve", "vni": 0, "port": 6081,
                                       "mtu": 1450, "traffic_encap_mode": "encap"}
    names = {c["name"] for n in report["status"]["nodes"] if n["node"] == W for c in n["checks"]}
    assert {"ovsdb-server", "ovs-vswitchd", "antrea-tun0", "flow 10.244.0.0/24", "flow 10.244.2.0/24",
            "flow 10.244.3.0/24", "br-phy", "antrea-gw0", "pod eth0"} <= names


@lab_test
def test_all_pairs_every_direction_is_geneve_on_6081_with_vni_0(tmp_path):
    lab_up()
    result, run_dir, report = vxcap_run(tmp_path, options=["--all-pairs", *ANTREA])
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    by_direction = flows(report)
    assert len(by_direction) == 12
    for (src, dst), flow in by_direction.items():
        assert flow["verdict"] == "pass", (src, dst, flow["reasons"])
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
    lab_up()
    result, _, report = vxcap_run(tmp_path / "healthy", "worker,worker2", options=ANTREA)
    assert result.exit_code == ExitStatus.SUCCESS, result.output  # the twin: the same run, before
    break_lab(VniMismatch(W2, 5))
    code, lab = status()
    assert code == ExitStatus.VERDICT_FAILED
    assert set(problems(lab)) == {W2} and "flow 10.244.1.0/24: sets VNI 5 (want 0)" in problems(lab)[W2]
    result, _, report = vxcap_run(tmp_path / "broken", "worker,worker2", options=ANTREA)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert "VNI 5, expected 0" in flows(report)[(W2, W)]["reasons"]
    assert flows(report)[(W, W2)]["verdict"] == "pass"  # W still sends VNI 0, and key=flow takes any


@lab_test
def test_plain_where_geneve_was_promised_is_named(tmp_path):
    lab_up()  # repairs what the previous fault left
    result, _, report = vxcap_run(tmp_path / "healthy", "worker,worker2", options=ANTREA)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    break_lab(TunnelBypass(W, W2))
    code, lab = status()
    assert code == ExitStatus.VERDICT_FAILED
    assert problems(lab)[W] == ["flow 10.244.2.0/24: missing (not into the tunnel)",
                                "route 10.244.2.0/24: gateway='10.10.10.12' (want '10.244.2.1'); "
                                "dev='br-phy' (want 'antrea-gw0')"]
    result, _, report = vxcap_run(tmp_path / "broken", "worker,worker2", options=ANTREA)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    flow = flows(report)[(W, W2)]
    assert flow["observed"] == "plain" and flow["delivery"]["answered"] > 0  # it works, and breaks the promise
    assert any(r.endswith("plain IPv4 packets, expected Geneve (Geneve tunnel Always)") for r in flow["reasons"]), \
        flow["reasons"]


@lab_test
def test_vxlan_where_geneve_was_promised_is_named(tmp_path):
    lab_up()
    result, _, report = vxcap_run(tmp_path / "healthy", "worker,worker3", options=ANTREA)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    break_lab(TunnelTypeMismatch(W, "vxlan"))  # tunnelType vxlan in that node's antrea-agent.conf alone
    code, lab = status()
    assert code == ExitStatus.VERDICT_FAILED and problems(lab)[W] == ["antrea-tun0: type='vxlan' (want 'geneve')"]
    result, _, report = vxcap_run(tmp_path / "broken", "worker,worker3", options=ANTREA)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    flow = flows(report)[(W, W3)]
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
    result, _, report = vxcap_run(tmp_path / "healthy", "worker,worker3", options=ANTREA)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert flows(report)[(W, W3)]["udp_dport"] == 7000
    break_lab(PortMismatch(W, 6081))
    code, lab = status()
    assert code == ExitStatus.VERDICT_FAILED and problems(lab)[W] == ["antrea-tun0: port=6081 (want 7000)"]
    result, _, report = vxcap_run(tmp_path / "broken", "worker,worker3", options=ANTREA)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert "UDP port 6081, expected 7000" in flows(report)[(W, W3)]["reasons"]
    assert flows(report)[(W, W3)]["udp_dport"] == 6081


@lab_test
def test_hybrid_is_plain_within_a_subnet_and_geneve_across(tmp_path):
    lab_up("--traffic-encap-mode", "hybrid")
    code, lab = status()
    assert code == ExitStatus.SUCCESS and lab["lab"]["antrea"]["traffic_encap_mode"] == "hybrid"
    result, _, report = vxcap_run(tmp_path, options=["--all-pairs", *ANTREA])
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    observed = {d: f["observed"] for d, f in flows(report).items()}
    assert observed == {d: ("geneve" if W3 in d else "plain") for d in observed}
    assert flows(report)[(W3, CP)]["vni"] == 0 and flows(report)[(W3, CP)]["udp_dport"] == 6081


@lab_test
def test_an_antrea_lab_is_not_judged_as_calicos(tmp_path):
    lab_up()
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
