"""`vxcap run --lab --coverage` on a 40-node, 4-subnet lab: one broken node is found and named,
and its healthy twin passes. (The 256-node run is in benchmarks/bench_coverage.py: it takes
longer to build than a test should.)

Every lab here is named with this session's prefix (tests/lab_support.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.lab_support import SESSION_PREFIX, flows, lab_session_guard, lab_test, running_lab  # noqa: F401
from vxcap.cli.main import cli
from vxcap.core.lab.faults import StaleFdbTowards, VniMismatch
from vxcap.core.lab.gen import generate_lab
from vxcap.core.lab.spec import lab_from_dict
from vxcap.exit_status import ExitStatus

pytestmark = pytest.mark.usefixtures("lab_session_guard")

# 40 nodes: above the size from which a generated lab pins its neighbours, so that is exercised too.
LAB = generate_lab(40, 4)
SPEC = lab_from_dict(LAB)
BROKEN = "k01-worker17"  # on 10.10.20.0/24
STALE = "k01-worker18"  # its neighbour there: the stale entries point at this one's address


def coverage_run(tmp_path: Path, seed: int = 5):
    lab_file = tmp_path / "lab.yaml"
    lab_file.write_text(yaml.safe_dump(LAB, sort_keys=False))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", "--lab", "--prefix", SESSION_PREFIX, "--lab-file", str(lab_file),
                                      "--coverage", "--seed", str(seed), "--out", str(out), "--count", "2"])
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return result, run_dir, json.loads((run_dir / "report.json").read_text())


@lab_test
def test_the_healthy_twin_passes_every_planned_direction(tmp_path):
    with running_lab(spec=SPEC):
        result, run_dir, report = coverage_run(tmp_path)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    plan = report["plan"]
    assert plan["kind"] == "coverage" and plan["seed"] == 5 and plan["nodes"] == 40
    assert len(report["flows"]) == plan["directions"] == 2 * len(plan["plan"]) < 40 * 39 // 4
    assert report["blame"] is None
    # Every node took part, was captured, and sent and received both wire formats.
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert len(manifest["nodes"]) == 40 and all(n["captures"] for n in manifest["nodes"])
    seen = {(role, f[f"{role}_node"], f["observed"]) for f in report["flows"] for role in ("src", "dst")}
    assert seen == {(role, n.name, wire) for n in SPEC.topology.nodes for role in ("src", "dst")
                    for wire in ("plain", "vxlan")}
    assert "coverage plan, seed 5" in result.output
    # Past 64 directions, no per-flow evidence file for a passing direction: all-nodes.pcapng holds every frame.
    evidence = report["evidence"]
    assert evidence["flows"] == [] and evidence["all_nodes"]["frames"] > 0
    assert [p.name for p in (run_dir / "evidence").iterdir()] == ["all-nodes.pcapng"]
    assert f"{len(report['flows'])} directions: per-flow files for the 0 failing one(s) only" in evidence["note"]


@lab_test
@pytest.mark.parametrize("fault,reason", [
    pytest.param(VniMismatch(BROKEN, 4097), "VNI 4097, expected 4096", id="wrong-vni"),
    pytest.param(StaleFdbTowards(BROKEN, STALE), "expected 10.10.20.27", id="stale-fdb-towards"),
])
def test_one_broken_node_is_found_and_named(tmp_path, fault, reason):
    assert str(SPEC.topology.node(BROKEN).address) == "10.10.20.27"
    with running_lab(spec=SPEC) as lab:
        lab.apply_fault(fault)
        result, run_dir, report = coverage_run(tmp_path)
    assert result.exit_code == ExitStatus.VERDICT_FAILED, result.output
    failing = [f for f in report["flows"] if f["verdict"] == "fail"]
    # The failing directions' own evidence files, and only theirs (past 64 directions), each holding frames.
    written = {(f["src_node"], f["dst_node"]): f for f in report["evidence"]["flows"]}
    assert set(written) == {(f["src_node"], f["dst_node"]) for f in failing}
    assert all((run_dir / f["file"]).is_file() and f["frames"] > 0 for f in written.values())
    assert len(list((run_dir / "evidence").iterdir())) == len(failing) + 1
    assert len(failing) >= 2 and all(BROKEN in (f["src_node"], f["dst_node"]) for f in failing)
    assert any(reason in r for f in failing for r in f["reasons"]), [f["reasons"] for f in failing]
    # The rest pass, among them the broken node's plain directions with its own subnet.
    assert any(f["verdict"] == "pass" and BROKEN in (f["src_node"], f["dst_node"]) for f in report["flows"])
    assert report["blame"]["nodes"] == [{"node": BROKEN, "failed": len(failing)}]
    assert f"go through {BROKEN}" in result.output and f"suspect: {BROKEN}" in result.output
