"""A coverage run reads every node's links but the routes, neighbours and FDB of the senders of
failing directions only (stages.node_tables.NodeTables, deferred): the failure is still explained
by its sender's tables, and the report says which nodes' tables were read in full.

Every lab here is named with this session's prefix (tests/lab_support.py).
"""

from __future__ import annotations

import json

import pytest

from tests.lab_support import flows, lab_session_guard, lab_test, running_lab, vxcap_run  # noqa: F401
from vxcap.core.lab.faults import FdbWrongNode
from vxcap.exit_status import ExitStatus

pytestmark = pytest.mark.usefixtures("lab_session_guard")

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"
NODES = ("k01-control-plane", W, W2, W3)


@lab_test
def test_a_coverage_run_explains_its_failure_from_the_senders_full_tables(tmp_path):
    with running_lab() as lab:
        lab.apply_fault(FdbWrongNode(W, W3, W2))
        result, run_dir, report = vxcap_run(tmp_path, options=("--coverage",))
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    failing = {f["src_node"] for f in report["flows"] if f["verdict"] == "fail"}
    assert W in failing and flows(report)[(W, W3)]["verdict"] == "fail"
    explanation = flows(report)[(W, W3)]["explanation"]
    assert explanation[1] == f"{W}: neighbour 192.168.209.64 is 66:d2:0c:f0:ef:e5; its FDB entry sends 66:d2:0c:f0:ef:e5 to 10.10.10.12"
    assert report["node_tables"]["links"] == 4 and sorted(report["node_tables"]["full"]) == sorted(failing)
    for node in NODES:  # links everywhere: the delivery and MTU verdicts read them
        assert json.loads((run_dir / f"{node}-eth1.link.json").read_text())
        assert json.loads((run_dir / f"{node}-eth1.pod-link.json").read_text())
        for table in ("route", "neigh", "fdb"):
            assert (run_dir / f"{node}-eth1.{table}.json").exists() == (node in failing), (node, table)


@lab_test
def test_a_passing_coverage_run_reads_links_only(tmp_path):
    with running_lab():
        result, run_dir, report = vxcap_run(tmp_path, options=("--coverage",))
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert report["node_tables"]["full"] == [] and not report["errors"]
    assert sorted(p.name for p in run_dir.glob("*.json") if p.name.count(".") == 2) == sorted(
        f"{node}-eth1.{table}.json" for node in NODES for table in ("link", "pod-link"))
    # the verdicts had the links to read: every end's pod, VXLAN and underlay MTU is known, not assumed
    for flow in report["flows"]:
        assert not flow["mtu"]["underlay_mtu_assumed"]
        for end in ("src", "dst"):
            mtus = flow["mtu"]["mtus"][end]
            assert (mtus["pod_mtu"], mtus["vxlan_mtu"], mtus["underlay_mtu"]) == (1450, 1450, 1500), mtus
