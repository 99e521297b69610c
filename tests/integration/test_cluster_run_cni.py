"""`vxcap run` against a cluster whose CNI is not Calico, through the one pipeline.

As in test_cluster_run.py, the cluster is the HTTP fake API (real HTTP, real exec WebSockets) in front
of a real namespace lab: test pods ping from the lab's pod namespaces, capture pods run tcpdump in the
nodes' namespaces. What the fake serves (DaemonSet, ConfigMap, node annotations, CiliumEndpoints) is
what vxcap discovers and judges by; the lab is what the wire carries. A case is one lab source (the
data plane, built for real) and one set of CNI objects; the healthy cases pass every direction, the
broken twins (the fake promising what the wire does not carry, or a fault on one lab node) fail naming
the field. Adding a lab source (a Cilium-style or Antrea-style lab) is one more `Case`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.fakes import cni_objects
from tests.fakes.cni_objects import CniObjects
from tests.fakes.kube_api import start_fake_kube  # noqa: F401 (fixture)
from tests.fakes.lab_pods import LabPods
from tests.lab_support import SESSION_PREFIX, lab_session_guard, lab_test, running_lab, session_namespaces  # noqa: F401
from vxcap.cli.main import cli
from vxcap.core.lab.faults import VniMismatch
from vxcap.core.lab.spec import LabSpec
from vxcap.exit_status import ExitStatus
from vxcap.targets.lab import choose_lab

pytestmark = pytest.mark.usefixtures("lab_session_guard")

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"
PAIRS = ("--pair", "worker,worker2", "--pair", "worker,worker3")  # same subnet, and across the switch
DIRECTIONS = {(W, W2), (W2, W), (W, W3), (W3, W)}
UNDERLAY = {W: "10.10.10.11", W2: "10.10.10.12", W3: "10.10.20.13"}


# ---------------------------------------------------------------- lab sources and the CNI the fake serves


def flannel_lab(direct_routing: bool) -> Callable[[], LabSpec]:
    return lambda: choose_lab(SESSION_PREFIX, cni="flannel", direct_routing=direct_routing).spec


def vtep_macs(spec: LabSpec) -> dict[str, str]:
    return {node.name: node.vtep_mac for node in spec.topology.nodes}


def flannel_cluster(backend: dict, announced_vni: int = 1):
    """Flannel's DaemonSet, ConfigMap (net-conf.json's Backend) and node annotations, the VtepMACs the lab's."""
    def serve(spec: LabSpec) -> tuple[list[dict], CniObjects]:
        return cni_objects.flannel_nodes(vni=announced_vni, macs=vtep_macs(spec)), cni_objects.flannel(backend)
    return serve


def cilium_cluster(data: dict[str, str] | None = None):
    """Cilium's DaemonSet and cilium-config, and an agent that writes each started pod's CiliumEndpoint."""
    def serve(spec: LabSpec) -> tuple[list[dict], CniObjects]:
        return cni_objects.underlay_nodes(), cni_objects.cilium(data, endpoints=[], agent=True)
    return serve


def antrea_cluster(mode: str = "encap", tunnel: str = "geneve", port: int = 0):
    """Antrea's agent DaemonSet and antrea-config (antrea-agent.conf), the nodes' InternalIPs the lab's underlay."""
    def serve(spec: LabSpec) -> tuple[list[dict], CniObjects]:
        return cni_objects.underlay_nodes(), cni_objects.antrea(mode, tunnel, port)
    return serve


@dataclass(frozen=True)
class Case:
    id: str
    lab: Callable[[], LabSpec]  # the data plane the wire carries
    cluster: Callable[[LabSpec], tuple[list[dict], CniObjects]]  # what the fake API serves
    # Per direction (observed, VNI, UDP port); a VNI of "identity" is the sending test pod's, from the fake.
    wire: dict[tuple[str, str], tuple[str, object, object]]
    # Per direction, what one of its reasons must say (a VNI's reason whole; a delivery count's by its hop)
    reasons: Callable[[dict[str, int]], dict[tuple[str, str], list[str]]] = lambda ids: {}
    fault: object | None = None  # applied to the lab after it is built
    cli: tuple[str, ...] = ("--cni", "auto")
    tshark: str | None = None  # the decode-as every direction's Wireshark line carries
    notes: tuple[str, ...] = field(default=())  # lines the run's notes must hold
    exact: bool = True  # the reasons are exactly those named (False: delivery adds its own)


VXLAN_8472_VNI_1 = ("vxlan", 1, 8472)
PLAIN = ("plain", None, None)

HEALTHY = [
    Case("flannel-vxlan", flannel_lab(False), flannel_cluster({"Type": "vxlan"}),
         {d: VXLAN_8472_VNI_1 for d in DIRECTIONS}, tshark="-d udp.port==8472,vxlan"),
    Case("flannel-vxlan-directrouting", flannel_lab(True), flannel_cluster({"Type": "vxlan", "DirectRouting": True}),
         {(W, W2): PLAIN, (W2, W): PLAIN, (W, W3): VXLAN_8472_VNI_1, (W3, W): VXLAN_8472_VNI_1}),
]

BROKEN = [
    # The cluster's net-conf.json says VNI 2; the nodes' flannel.1 (and their annotations) carry VNI 1.
    Case("flannel-configmap-vni-2", flannel_lab(False), flannel_cluster({"Type": "vxlan", "VNI": 2}),
         {d: VXLAN_8472_VNI_1 for d in DIRECTIONS},
         reasons=lambda ids: {d: ["VNI 1, expected 2"] for d in DIRECTIONS},
         notes=(f"node {W} announces VNI 1 in flannel.alpha.coreos.com/backend-data, the ConfigMap says 2",)),
    # One node's VTEP made with VNI 2 (flannel.2): only what it sends is wrong.
    Case("flannel-node-vni-2", flannel_lab(True), flannel_cluster({"Type": "vxlan", "DirectRouting": True}),
         {(W, W2): PLAIN, (W2, W): PLAIN, (W, W3): VXLAN_8472_VNI_1, (W3, W): ("vxlan", 2, 8472)},
         # and flannel.2 on k01-worker3 takes in none of the VNI 1 k01-worker sends it: delivery names the hop
         reasons=lambda ids: {(W3, W): ["VNI 2, expected 1"], (W, W3): [f"reached {W3}/eth1, 0 answered"]},
         fault=VniMismatch(W3, 2), exact=False),
    # Cilium's tunnel promised, Flannel's wire carried: VNI 1 where each sender's identity was due.
    Case("cilium-config-on-flannel-wire", flannel_lab(False), cilium_cluster(),
         {d: ("vxlan", 1, 8472) for d in DIRECTIONS},
         reasons=lambda ids: {(s, d): [f"VNI 1 is not the sender's security identity {ids[s]}"] for s, d in DIRECTIONS},
         tshark="-d udp.port==8472,vxlan"),
    # Antrea's VXLAN on Flannel's port promised (its VNI is always 0), Flannel's VNI 1 carried.
    Case("antrea-vxlan-config-on-flannel-wire", flannel_lab(False), antrea_cluster("encap", "vxlan", 8472),
         {d: ("vxlan", 1, 8472) for d in DIRECTIONS},
         reasons=lambda ids: {d: ["VNI 1, expected 0"] for d in DIRECTIONS}, tshark="-d udp.port==8472,vxlan"),
]


# ---------------------------------------------------------------- running it


def vxcap_run(out: Path, *args: str):
    result = CliRunner().invoke(cli, ["run", "--out", str(out), "--count", "2", *args])
    run_dirs = sorted(p for p in out.iterdir() if p.is_dir()) if out.is_dir() else []
    report_file = run_dirs[-1] / "report.json" if run_dirs else None
    report = json.loads(report_file.read_text()) if report_file and report_file.exists() else None
    return result, (run_dirs[-1] if run_dirs else None), report


def identities(kube) -> dict[str, int]:
    """Each test pod's identity, by node, as the fake's agent gave it (read back from the pods it started)."""
    return {node: identity for (namespace, labels), identity in kube.cni.identities.items()
            for key, node in labels if key == "vxcap.io/node" and namespace == "vxcap"}


def run_case(case: Case, tmp_path: Path, start_fake_kube):
    spec = case.lab()
    with running_lab(spec=spec) as lab:
        if case.fault is not None:
            lab.apply_fault(case.fault)
        nodes, objects = case.cluster(spec)
        fake = start_fake_kube(runtime=LabPods(lab), calico_groups=(), nodes=nodes, cni=objects)
        result, run_dir, report = vxcap_run(tmp_path / case.id, *PAIRS, "--kubeconfig", str(fake.kubeconfig),
                                            "--capture", "pod", *case.cli)
        assert fake.kube.pods_in("vxcap") == []
        assert objects.ciliumendpoints in (None, [])  # each test pod's endpoint went with it
        ids = identities(fake.kube)
    assert not session_namespaces()
    return result, run_dir, report, ids


def flows(report: dict) -> dict[tuple[str, str], dict]:
    return {(f["src_node"], f["dst_node"]): f for f in report["flows"]}


def assert_wire(case: Case, report: dict) -> None:
    by_direction = flows(report)
    assert set(by_direction) == DIRECTIONS
    for (src, dst), (observed, vni, port) in case.wire.items():
        flow = by_direction[(src, dst)]
        assert (flow["observed"], flow["vni"], flow["udp_dport"]) == (observed, vni, port), (src, dst, flow)
        if observed == "plain":
            continue
        assert (flow["outer_src"], flow["outer_dst"]) == (UNDERLAY[src], UNDERLAY[dst]), (src, dst)
        assert flow["delivery"]["arrived_receiver"] > 0, (src, dst)


@lab_test
@pytest.mark.parametrize("case", HEALTHY, ids=lambda c: c.id)
def test_a_healthy_cluster_passes_every_direction_as_its_cni_promises(case, tmp_path, start_fake_kube):
    result, run_dir, report, ids = run_case(case, tmp_path, start_fake_kube)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert_wire(case, report)
    for flow in report["flows"]:
        assert flow["verdict"] == "pass" and flow["reasons"] == [], flow
        if case.tshark:
            assert case.tshark in flow["tshark"], flow["tshark"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["overlay"]["cni"] == case.id.split("-")[0]


@lab_test
@pytest.mark.parametrize("case", BROKEN, ids=lambda c: c.id)
def test_a_broken_twin_fails_naming_the_field(case, tmp_path, start_fake_kube):
    result, run_dir, report, ids = run_case(case, tmp_path, start_fake_kube)
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    assert_wire(case, report)
    wanted = case.reasons(ids)
    by_direction = flows(report)
    for direction, flow in by_direction.items():
        if direction in wanted:
            assert flow["verdict"] == "fail"
            for reason in wanted[direction]:
                assert any(reason == r or (reason.startswith("reached") and reason in r) for r in flow["reasons"]), \
                    (direction, reason, flow["reasons"])
            if case.exact:  # nothing else is wrong with the twin: only the named field differs
                assert flow["reasons"] == wanted[direction], (direction, flow["reasons"])
        else:
            assert flow["verdict"] == "pass", (direction, flow["reasons"])
        if case.tshark:
            assert case.tshark in flow["tshark"], flow["tshark"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    vnis = {n["name"]: n["vni"] for n in manifest["nodes"] if n.get("vni") is not None}
    # Cilium's: each sender's VNI bound to the identity the fake's agent gave its test pod, three different ones
    assert vnis == ids and (not ids or len(set(ids.values())) == len(ids) == 3), (vnis, ids)
    for note in case.notes:
        assert any(note in line for line in report.get("notes", []) + [result.output]), (note, report.get("notes"))
