"""The embedded lab as Flannel's vxlan backend, judged by `vxcap run --lab --cni flannel`.

`vxcap lab up --cni flannel` programs flannel.1 (VNI 1, no dstport: the kernel's 8472,
nolearning, MTU 1450), flanneld's permanent neighbour and FDB entries and its onlink routes,
or with --direct-routing the plain route where the peer needs no gateway. Each fault is the
twin of the healthy lab: the same run must pass before and fail after, the reason naming the
field (VNI, UDP port, plain where VXLAN was promised). One lab per module, this session's
prefix (tests/lab_support.py), always taken down.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from click.testing import CliRunner

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
from vxcap.core.lab.faults import FlannelDirectRoute, PortMismatch, VniMismatch
from vxcap.exit_status import ExitStatus
from vxcap.targets.lab import choose_lab

pytestmark = pytest.mark.usefixtures("lab_session_guard")

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"
FLANNEL = ["--cni", "flannel"]


def vxcap(*args: str):
    return CliRunner().invoke(cli, list(args))


def lab_up(*options: str) -> None:
    result = vxcap("lab", "up", "--cni", "flannel", "--prefix", SESSION_PREFIX, *options)
    assert result.exit_code == 0, result.output
    assert "lab is healthy" in result.output


def status() -> tuple[int, dict]:
    result = vxcap("lab", "status", "--prefix", SESSION_PREFIX, "--json")
    return result.exit_code, json.loads(result.output)


def problems(report: dict) -> dict[str, list[str]]:
    return {n["node"]: [f"{c['name']}: {c['detail']}" for c in n["checks"] if not c["ok"]]
            for n in report["status"]["nodes"] if not n["ok"]}


def break_lab(fault) -> None:
    NetnsLab(choose_lab(SESSION_PREFIX, cni="flannel").spec, prefix=SESSION_PREFIX).apply_fault(fault)


def kernel_link(node: str, dev: str = "flannel.1") -> dict:
    out = subprocess.run(["ip", "-n", f"{SESSION_PREFIX}-{node}", "-d", "-j", "link", "show", dev],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


@pytest.fixture(scope="module", autouse=True)
def flannel_lab():
    try:
        yield
    finally:
        vxcap("lab", "down", "--prefix", SESSION_PREFIX)


@lab_test
def test_a_run_builds_the_flannel_lab_it_needs_and_removes_it(tmp_path):
    assert not session_namespaces()
    result, _, report = vxcap_run(tmp_path, "worker,worker2", "worker,worker3",
                                  options=[*FLANNEL, "--direct-routing"])
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    observed = {d: f["observed"] for d, f in flows(report).items()}
    assert observed == {(W, W2): "plain", (W2, W): "plain", (W, W3): "vxlan", (W3, W): "vxlan"}
    assert not session_namespaces()


@lab_test
def test_lab_up_builds_flannel_1_as_flanneld_does_and_status_checks_it():
    lab_up("--no-direct-routing")
    link = kernel_link(W)  # read from the kernel, not from vxcap
    data = link["linkinfo"]["info_data"]
    assert (data["id"], data["port"], data["learning"], link["mtu"]) == (1, 8472, False, 1450)
    assert data["local"] == "10.10.10.11" and link["address"] == "66:fb:ad:98:aa:13"
    code, report = status()
    assert code == ExitStatus.SUCCESS
    assert report["lab"]["flannel"] == {"device": "flannel.1", "vni": 1, "port": 8472, "mtu": 1450,
                                        "direct_routing": False, "mode": "Always"}
    names = {c["name"] for n in report["status"]["nodes"] if n["node"] == W for c in n["checks"]}
    # DirectRouting off: every peer through flannel.1, each with its route, neighbour and FDB entry.
    assert {"flannel.1", "route 10.244.2.0/24", "neigh 10.244.2.0", "fdb 66:c7:4d:6e:6b:f3",
            "route 10.244.3.0/24", "neigh 10.244.3.0", "fdb 66:d2:0c:f0:ef:e5", "cni0", "pod eth0"} <= names


@lab_test
def test_all_pairs_every_direction_is_vxlan_on_8472_with_vni_1(tmp_path):
    lab_up("--no-direct-routing")
    result, _run_dir, report = vxcap_run(tmp_path, options=["--all-pairs", *FLANNEL])
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    by_direction = flows(report)
    assert len(by_direction) == 12
    for (src, dst), flow in by_direction.items():
        assert flow["verdict"] == "pass", (src, dst, flow["reasons"])
        assert (flow["observed"], flow["vni"], flow["udp_dport"]) == ("vxlan", 1, 8472), (src, dst)
        assert flow["delivery"]["arrived_receiver"] > 0
        assert "-d udp.port==8472,vxlan" in flow["tshark"]


@lab_test
def test_wrong_vni_on_one_node_is_named(tmp_path):
    lab_up("--no-direct-routing")
    result, _, report = vxcap_run(tmp_path / "healthy", "worker,worker2", options=FLANNEL)
    assert result.exit_code == ExitStatus.SUCCESS, result.output  # the twin: the same run, before
    break_lab(VniMismatch(W2, 2))
    code, lab = status()
    assert code == ExitStatus.VERDICT_FAILED
    assert problems(lab)[W2][0] == "flannel.1: missing (flannel.2 instead)"
    assert "route 10.244.1.0/24: dev='flannel.2' (want 'flannel.1')" in problems(lab)[W2]
    assert set(problems(lab)) == {W2}
    result, _, report = vxcap_run(tmp_path / "broken", "worker,worker2", options=FLANNEL)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert "VNI 2, expected 1" in flows(report)[(W2, W)]["reasons"]
    assert not any("VNI" in r for r in flows(report)[(W, W2)]["reasons"])  # W sends VNI 1 still


@lab_test
def test_wrong_port_on_one_node_is_named(tmp_path):
    lab_up("--no-direct-routing")  # repairs what the previous fault left
    result, _, report = vxcap_run(tmp_path / "healthy", "worker,worker3", options=FLANNEL)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    break_lab(PortMismatch(W, 4789))
    code, lab = status()
    assert code == ExitStatus.VERDICT_FAILED and problems(lab)[W] == ["flannel.1: port=4789 (want 8472)"]
    result, _, report = vxcap_run(tmp_path / "broken", "worker,worker3", options=FLANNEL)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    assert "UDP port 4789, expected 8472" in flows(report)[(W, W3)]["reasons"]
    assert flows(report)[(W, W3)]["udp_dport"] == 4789


@lab_test
def test_plain_where_vxlan_was_promised_is_named(tmp_path):
    lab_up("--no-direct-routing")
    result, _, report = vxcap_run(tmp_path / "healthy", "worker,worker2", options=FLANNEL)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    break_lab(FlannelDirectRoute(W, W2))  # a route DirectRouting would write, with DirectRouting off
    code, lab = status()
    assert code == ExitStatus.VERDICT_FAILED
    assert problems(lab)[W] == ["route 10.244.2.0/24: gateway='10.10.10.12' (want '10.244.2.0'); "
                                "dev='eth1' (want 'flannel.1'); not onlink"]
    result, _, report = vxcap_run(tmp_path / "broken", "worker,worker2", options=FLANNEL)
    assert result.exit_code == ExitStatus.VERDICT_FAILED
    flow = flows(report)[(W, W2)]
    assert flow["observed"] == "plain" and flow["delivery"]["answered"] > 0  # it works, and breaks the promise
    assert any(r.endswith("plain IPv4 packets, expected VXLAN (Flannel vxlan, DirectRouting off)")
               for r in flow["reasons"]), flow["reasons"]


@lab_test
def test_direct_routing_is_plain_within_a_subnet_and_vxlan_across(tmp_path):
    lab_up("--direct-routing")
    code, lab = status()
    assert code == ExitStatus.SUCCESS and lab["lab"]["flannel"]["mode"] == "CrossSubnet"
    routes = json.loads(subprocess.run(["ip", "-n", f"{SESSION_PREFIX}-{W}", "-j", "route"], capture_output=True,
                                       text=True, check=True).stdout)
    by_dst = {r["dst"]: r for r in routes}
    assert (by_dst["10.244.2.0/24"]["gateway"], by_dst["10.244.2.0/24"]["dev"]) == ("10.10.10.12", "eth1")
    assert (by_dst["10.244.3.0/24"]["gateway"], by_dst["10.244.3.0/24"]["dev"]) == ("10.244.3.0", "flannel.1")
    result, _, report = vxcap_run(tmp_path, options=["--all-pairs", *FLANNEL])
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    observed = {d: f["observed"] for d, f in flows(report).items()}
    assert observed == {d: ("vxlan" if W3 in d else "plain") for d in observed}
    assert flows(report)[(W3, CP)]["vni"] == 1 and flows(report)[(W3, CP)]["udp_dport"] == 8472


@lab_test
def test_a_flannel_lab_is_not_judged_as_calicos(tmp_path):
    lab_up("--direct-routing")
    for name in ("calico", "other"):  # nothing is made in them: the refusals come first
        (tmp_path / name).mkdir()
    result, _, _ = vxcap_run(tmp_path / "calico", "worker,worker3")  # --cni calico, the default
    assert result.exit_code == ExitStatus.USAGE
    assert "built as Flannel's vxlan: add --cni flannel" in result.output
    result, _, report = vxcap_run(tmp_path / "auto", "worker,worker3", options=["--cni", "auto"])
    assert result.exit_code == ExitStatus.SUCCESS, result.output  # auto: the lab as built
    assert flows(report)[(W, W3)]["udp_dport"] == 8472
    result, _, _ = vxcap_run(tmp_path / "other", "worker,worker3", options=[*FLANNEL, "--no-direct-routing"])
    assert result.exit_code == ExitStatus.USAGE
    assert "built with DirectRouting on: `vxcap lab up --cni flannel --no-direct-routing` rebuilds it" in result.output
    assert not any((tmp_path / "calico").iterdir()) and not any((tmp_path / "other").iterdir())
