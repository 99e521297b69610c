"""A per-node FelixConfiguration override, end to end: the fake Kubernetes API (tests/fakes) serves
`node.k01-worker3` in front of the real namespace lab, and vxcap runs the pair through capture pods.

worker3's Felix says VNI 4097 and the lab's worker3 really uses it (the VniMismatch fault): what
worker3 sends is what its Felix asks for, so no "VNI 4097, expected 4096" is reported for it;
the others' VNI 4096 is not what worker3 takes, and delivery shows that no echo is answered.
The twin serves the same override with the cluster's own VNI, on the healthy lab, and passes.
"""

from __future__ import annotations

import re

import pytest

from tests.fakes import calico_objects as co
from tests.fakes.kube_api import start_fake_kube  # noqa: F401 (fixture)
from tests.fakes.lab_pods import LabPods
from tests.integration.test_cluster_run import W, W3, assert_nothing_left, flows, lab_node_inodes, vxcap_run
from tests.lab_support import lab_session_guard, lab_test, running_lab  # noqa: F401
from vxcap.core.lab.faults import VniMismatch
from vxcap.exit_status import ExitStatus

pytestmark = pytest.mark.usefixtures("lab_session_guard")


def calico_with_override(vni: int) -> dict:
    calico = co.lab_calico(co.V1)
    calico["felixconfigurations"] = [co.felix_configuration(co.V1),
                                     co.felix_configuration(co.V1, f"node.{W3}", vxlanVNI=vni)]
    return {co.V1: calico}


def run_with_override(tmp_path, start_fake_kube, vni: int, fault=None):
    with running_lab() as lab:
        if fault is not None:
            lab.apply_fault(fault)
        fake = start_fake_kube(runtime=LabPods(lab), calico=calico_with_override(vni))
        result, _, report = vxcap_run(
            tmp_path, "--pair", "worker,worker3", "--kubeconfig", str(fake.kubeconfig), "--capture", "pod")
        assert_nothing_left(fake.kube, lab_node_inodes(lab))
    return result, report


@lab_test
def test_a_node_override_sets_what_that_node_sends_and_delivery_shows_the_rest(tmp_path, start_fake_kube):
    result, report = run_with_override(tmp_path, start_fake_kube, 4097, fault=VniMismatch(W3, 4097))
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    assert any(note.startswith(f"FelixConfiguration node.{W3} sets vxlanVNI 4097") for note in report["notes"])
    f = flows(report)
    backward, forward = f[(W3, W)], f[(W, W3)]
    # worker3 sends VNI 4097 as its Felix asks: no VNI reason for it ...
    assert backward["vni"] == 4097 and not any("VNI" in r for r in backward["reasons"]), backward["reasons"]
    # ... and nobody takes it: worker's VXLAN device is on 4096, so worker3's echoes go unanswered,
    # and worker's (VNI 4096, right for worker) die at worker3's device on 4097.
    assert any(re.fullmatch(rf"\d+ echo requests reached {W}/eth1, 0 answered", r) for r in backward["reasons"])
    assert forward["vni"] == 4096 and not any("VNI" in r for r in forward["reasons"])
    assert any(re.fullmatch(rf"\d+ echo requests reached {W3}/eth1, 0 answered", r) for r in forward["reasons"])


@lab_test
def test_the_twin_override_with_the_clusters_own_vni_passes(tmp_path, start_fake_kube):
    result, report = run_with_override(tmp_path, start_fake_kube, 4096)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert report["notes"] == []  # an override that changes nothing is not news
    for flow in report["flows"]:
        assert flow["verdict"] == "pass" and flow["vni"] == 4096
        assert flow["delivery"]["answered"] >= 2
