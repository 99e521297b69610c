"""The embedded lab as Cilium's vxlan tunnel, judged by `vxcap run --lab --cni cilium`.

`vxcap lab up --cni cilium` makes cilium_vxlan a collect_md VXLAN device on 8472 and gives each test
pod a security identity; the pod's policy-routing table tunnels with that identity as VNI (what
Cilium's bpf_lxc sets as the tunnel key). The runs expect, per direction, the *sender's* identity,
bound from the pods' CiliumEndpoints as a cluster run binds it. Each fault is the twin of the healthy
lab: the same run passes before and fails after, the reason naming the field (the VNI against the
sender's identity, the UDP port, plain where the tunnel is promised). The kernel and scapy are the
witnesses, never vxcap's own decoder alone. One lab per module, this session's prefix, always down.
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.vxlan import VXLAN
from scapy.packet import bind_layers
from scapy.utils import rdpcap

from tests.lab_scaffold import CniLab, ip_json, lab_status, problems
from tests.lab_support import flows, lab_session_guard, lab_test, vxcap_run  # noqa: F401
from vxcap.core.lab.faults import CiliumForeignIdentity, CiliumPlain, PortMismatch
from vxcap.exit_status import ExitStatus

pytestmark = pytest.mark.usefixtures("lab_session_guard")

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"
CILIUM = CniLab("cilium")


def identities() -> dict[str, int]:
    """Node -> its test pod's identity, as the lab's own description states it."""
    _, report = lab_status()
    return {name.removeprefix("vxcap-"): value for name, value in report["lab"]["cilium"]["identities"].items()}


def tunnel_frames(run_dir, node: str) -> list:
    """scapy's own reading of a node's capture, VXLAN bound on Cilium's port."""
    bind_layers(UDP, VXLAN, dport=8472)
    return [p for p in rdpcap(str(run_dir / f"{node}-eth1.pcap")) if p.haslayer(VXLAN) and p[UDP].dport == 8472]


@pytest.fixture(scope="module", autouse=True)
def cilium_lab():
    with CILIUM.down_at_the_end():
        yield


@lab_test
def test_a_run_builds_the_cilium_lab_it_needs_and_removes_it(tmp_path):
    observed = CILIUM.builds_what_it_needs(tmp_path, "worker,worker3")
    assert observed == {(W, W3): "vxlan", (W3, W): "vxlan"}


@lab_test
def test_lab_up_builds_a_collect_md_cilium_vxlan_and_per_pod_tunnel_routes():
    CILIUM.up()
    link = ip_json(W, "link", "show", "cilium_vxlan")[0]  # read from the kernel, not from vxcap
    data = link["linkinfo"]["info_data"]
    assert (data["external"], data["port"], data["id"], link["mtu"]) == (True, 8472, 0, 1450)
    ids = identities()
    assert len(set(ids.values())) == 4 and all(256 <= i <= 65535 for i in ids.values())
    rules = [r for r in ip_json(W, "rule", "show") if r.get("src") == "10.0.1.2"]
    assert len(rules) == 1
    routes = ip_json(W, "route", "show", "table", rules[0]["table"])
    # `dst` is printed twice (prefix, then the tunnel's); JSON keeps the tunnel's destination.
    assert sorted((r["gateway"], r["encap"], r["id"], r["dst"]) for r in routes) == [
        ("10.0.0.1", "ip", ids[W], "10.10.10.10"), ("10.0.2.1", "ip", ids[W], "10.10.10.12"),
        ("10.0.3.1", "ip", ids[W], "10.10.20.13")]
    code, report = lab_status()
    assert code == ExitStatus.SUCCESS
    assert report["lab"]["cilium"]["port"] == 8472 and report["lab"]["dataplane"] == "cilium"


@lab_test
def test_all_pairs_every_direction_carries_its_senders_identity_on_8472(tmp_path):
    CILIUM.up()
    ids = identities()
    run_dir, by_direction = CILIUM.all_pairs_pass(tmp_path)
    for (src, dst), flow in by_direction.items():
        assert (flow["observed"], flow["vni"], flow["udp_dport"]) == ("vxlan", ids[src], 8472), (src, dst)
        assert flow["delivery"]["arrived_receiver"] > 0
        assert "-d udp.port==8472,vxlan" in flow["tshark"]
    # scapy's witness on worker3's capture: per inner source, the VNI is that pod's identity, the
    # outer UDP checksum 0 (Cilium's BPF_F_ZERO_CSUM_TX; the kernel's lwt key without `csum`).
    frames = tunnel_frames(run_dir, W3)
    by_pod = {"10.0.0.2": CP, "10.0.1.2": W, "10.0.2.2": W2, "10.0.3.2": W3}
    seen = {(by_pod[p[VXLAN].payload[IP].src], p[VXLAN].vni) for p in frames if p[VXLAN].payload.haslayer(IP)}
    assert seen == {(node, ids[node]) for node in by_pod.values()}
    assert {p[UDP].chksum for p in frames} == {0}


@lab_test
def test_a_pod_sending_another_identity_is_named(tmp_path):
    CILIUM.up()
    ids = identities()
    # worker2's pod tunnels with worker's pod's identity
    _, lab = CILIUM.break_after_healthy_run(tmp_path, "worker,worker2", CiliumForeignIdentity(W2, ids[W]))
    assert set(problems(lab)) == {W2}
    assert f"route 10.0.1.0/24 table 2002: id={ids[W]} (want {ids[W2]})" in problems(lab)[W2]
    broken = CILIUM.broken_run(tmp_path, "worker,worker2")
    assert broken[(W2, W)]["reasons"] == [f"VNI {ids[W]} is not the sender's security identity {ids[W2]}"]
    assert broken[(W2, W)]["delivery"]["answered"] > 0  # it still works: only the identity is wrong
    assert broken[(W, W2)]["verdict"] == "pass"  # worker's pod still sends its own


@lab_test
def test_a_wrong_tunnel_port_on_one_node_is_named(tmp_path):
    CILIUM.up()  # repairs what the previous fault left
    _, lab = CILIUM.break_after_healthy_run(tmp_path, "worker,worker3", PortMismatch(W, 4789))
    assert problems(lab)[W] == ["cilium_vxlan: port=4789 (want 8472)"]
    broken = CILIUM.broken_run(tmp_path, "worker,worker3")
    assert "UDP port 4789, expected 8472" in broken[(W, W3)]["reasons"]
    assert broken[(W, W3)]["udp_dport"] == 4789


@lab_test
def test_plain_where_the_tunnel_was_promised_is_named(tmp_path):
    CILIUM.up()
    # native routing's route, in a lab promising routing-mode tunnel
    _, lab = CILIUM.break_after_healthy_run(tmp_path, "worker,worker2", CiliumPlain(W, W2))
    assert problems(lab)[W] == ["route 10.0.2.0/24 table 2001: dev='eth1' via 10.10.10.12 (want 'cilium_vxlan')"]
    flow = CILIUM.broken_run(tmp_path, "worker,worker2")[(W, W2)]
    assert flow["observed"] == "plain" and flow["delivery"]["answered"] > 0  # it works, and breaks the promise
    assert any(r.endswith("plain IPv4 packets, expected VXLAN (Cilium routing-mode tunnel (vxlan))")
               for r in flow["reasons"]), flow["reasons"]


@lab_test
def test_a_cilium_lab_is_not_judged_as_another_cnis(tmp_path):
    CILIUM.up()
    for name in ("calico", "flannel"):  # nothing is made in them: the refusals come first
        (tmp_path / name).mkdir()
        result, _, _ = vxcap_run(tmp_path / name, "worker,worker3", options=["--cni", name])
        assert result.exit_code == ExitStatus.USAGE
        assert "built as Cilium's vxlan tunnel: add --cni cilium" in result.output
        assert not any((tmp_path / name).iterdir())
    result, _, report = vxcap_run(tmp_path / "auto", "worker,worker3", options=["--cni", "auto"])
    assert result.exit_code == ExitStatus.SUCCESS, result.output  # auto: the lab as built
    assert flows(report)[(W, W3)]["vni"] == identities()[W]
