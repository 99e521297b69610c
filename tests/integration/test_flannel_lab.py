"""The embedded lab as Flannel's vxlan backend, judged by `vxcap run --lab --cni flannel`.

`vxcap lab up --cni flannel` programs flannel.1 (VNI 1, no dstport: the kernel's 8472,
nolearning, MTU 1450), flanneld's permanent neighbour and FDB entries and its onlink routes,
or with --direct-routing the plain route where the peer needs no gateway. Each fault is the
twin of the healthy lab: the same run must pass before and fail after, the reason naming the
field (VNI, UDP port, plain where VXLAN was promised). One lab per module, this session's
prefix (tests/lab_support.py), always taken down.
"""

from __future__ import annotations

import pytest

from tests.lab_scaffold import CniLab, ip_json, lab_status, observed, problems
from tests.lab_support import flows, lab_session_guard, lab_test, vxcap_run  # noqa: F401
from vxcap.core.lab.faults import FlannelDirectRoute, PortMismatch, VniMismatch
from vxcap.exit_status import ExitStatus

pytestmark = pytest.mark.usefixtures("lab_session_guard")

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"
FLANNEL = CniLab("flannel")


@pytest.fixture(scope="module", autouse=True)
def flannel_lab():
    with FLANNEL.down_at_the_end():
        yield


@lab_test
def test_a_run_builds_the_flannel_lab_it_needs_and_removes_it(tmp_path):
    seen = FLANNEL.builds_what_it_needs(tmp_path, "worker,worker2", "worker,worker3", more=("--direct-routing",))
    assert seen == {(W, W2): "plain", (W2, W): "plain", (W, W3): "vxlan", (W3, W): "vxlan"}


@lab_test
def test_lab_up_builds_flannel_1_as_flanneld_does_and_status_checks_it():
    FLANNEL.up("--no-direct-routing")
    link = ip_json(W, "link", "show", "flannel.1")[0]  # read from the kernel, not from vxcap
    data = link["linkinfo"]["info_data"]
    assert (data["id"], data["port"], data["learning"], link["mtu"]) == (1, 8472, False, 1450)
    assert data["local"] == "10.10.10.11" and link["address"] == "66:fb:ad:98:aa:13"
    code, report = lab_status()
    assert code == ExitStatus.SUCCESS
    assert report["lab"]["flannel"] == {"device": "flannel.1", "vni": 1, "port": 8472, "mtu": 1450,
                                        "direct_routing": False, "mode": "Always"}
    names = {c["name"] for n in report["status"]["nodes"] if n["node"] == W for c in n["checks"]}
    # DirectRouting off: every peer through flannel.1, each with its route, neighbour and FDB entry.
    assert {"flannel.1", "route 10.244.2.0/24", "neigh 10.244.2.0", "fdb 66:c7:4d:6e:6b:f3",
            "route 10.244.3.0/24", "neigh 10.244.3.0", "fdb 66:d2:0c:f0:ef:e5", "cni0", "pod eth0"} <= names


@lab_test
def test_all_pairs_every_direction_is_vxlan_on_8472_with_vni_1(tmp_path):
    FLANNEL.up("--no-direct-routing")
    _run_dir, by_direction = FLANNEL.all_pairs_pass(tmp_path)
    for (src, dst), flow in by_direction.items():
        assert (flow["observed"], flow["vni"], flow["udp_dport"]) == ("vxlan", 1, 8472), (src, dst)
        assert flow["delivery"]["arrived_receiver"] > 0
        assert "-d udp.port==8472,vxlan" in flow["tshark"]


@lab_test
def test_wrong_vni_on_one_node_is_named(tmp_path):
    FLANNEL.up("--no-direct-routing")
    _, lab = FLANNEL.break_after_healthy_run(tmp_path, "worker,worker2", VniMismatch(W2, 2))
    assert problems(lab)[W2][0] == "flannel.1: missing (flannel.2 instead)"
    assert "route 10.244.1.0/24: dev='flannel.2' (want 'flannel.1')" in problems(lab)[W2]
    assert set(problems(lab)) == {W2}
    broken = FLANNEL.broken_run(tmp_path, "worker,worker2")
    assert "VNI 2, expected 1" in broken[(W2, W)]["reasons"]
    assert not any("VNI" in r for r in broken[(W, W2)]["reasons"])  # W sends VNI 1 still


@lab_test
def test_wrong_port_on_one_node_is_named(tmp_path):
    FLANNEL.up("--no-direct-routing")  # repairs what the previous fault left
    _, lab = FLANNEL.break_after_healthy_run(tmp_path, "worker,worker3", PortMismatch(W, 4789))
    assert problems(lab)[W] == ["flannel.1: port=4789 (want 8472)"]
    broken = FLANNEL.broken_run(tmp_path, "worker,worker3")
    assert "UDP port 4789, expected 8472" in broken[(W, W3)]["reasons"]
    assert broken[(W, W3)]["udp_dport"] == 4789


@lab_test
def test_plain_where_vxlan_was_promised_is_named(tmp_path):
    FLANNEL.up("--no-direct-routing")
    # a route DirectRouting would write, with DirectRouting off
    _, lab = FLANNEL.break_after_healthy_run(tmp_path, "worker,worker2", FlannelDirectRoute(W, W2))
    assert problems(lab)[W] == ["route 10.244.2.0/24: gateway='10.10.10.12' (want '10.244.2.0'); "
                                "dev='eth1' (want 'flannel.1'); not onlink"]
    flow = FLANNEL.broken_run(tmp_path, "worker,worker2")[(W, W2)]
    assert flow["observed"] == "plain" and flow["delivery"]["answered"] > 0  # it works, and breaks the promise
    assert any(r.endswith("plain IPv4 packets, expected VXLAN (Flannel vxlan, DirectRouting off)")
               for r in flow["reasons"]), flow["reasons"]


@lab_test
def test_direct_routing_is_plain_within_a_subnet_and_vxlan_across(tmp_path):
    FLANNEL.up("--direct-routing")
    code, lab = lab_status()
    assert code == ExitStatus.SUCCESS and lab["lab"]["flannel"]["mode"] == "CrossSubnet"
    by_dst = {r["dst"]: r for r in ip_json(W, "route")}
    assert (by_dst["10.244.2.0/24"]["gateway"], by_dst["10.244.2.0/24"]["dev"]) == ("10.10.10.12", "eth1")
    assert (by_dst["10.244.3.0/24"]["gateway"], by_dst["10.244.3.0/24"]["dev"]) == ("10.244.3.0", "flannel.1")
    result, _, report = FLANNEL.run(tmp_path, more=("--all-pairs",))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    seen = observed(report)
    assert seen == {d: ("vxlan" if W3 in d else "plain") for d in seen}
    assert flows(report)[(W3, CP)]["vni"] == 1 and flows(report)[(W3, CP)]["udp_dport"] == 8472


@lab_test
def test_a_flannel_lab_is_not_judged_as_calicos(tmp_path):
    FLANNEL.up("--direct-routing")
    for name in ("calico", "other"):  # nothing is made in them: the refusals come first
        (tmp_path / name).mkdir()
    result, _, _ = vxcap_run(tmp_path / "calico", "worker,worker3")  # --cni calico, the default
    assert result.exit_code == ExitStatus.USAGE
    assert "built as Flannel's vxlan: add --cni flannel" in result.output
    result, _, report = vxcap_run(tmp_path / "auto", "worker,worker3", options=["--cni", "auto"])
    assert result.exit_code == ExitStatus.SUCCESS, result.output  # auto: the lab as built
    assert flows(report)[(W, W3)]["udp_dport"] == 8472
    result, _, _ = vxcap_run(tmp_path / "other", "worker,worker3", options=[*FLANNEL.options, "--no-direct-routing"])
    assert result.exit_code == ExitStatus.USAGE
    assert "built with DirectRouting on: `vxcap lab up --cni flannel --no-direct-routing` rebuilds it" in result.output
    assert not any((tmp_path / "calico").iterdir()) and not any((tmp_path / "other").iterdir())
