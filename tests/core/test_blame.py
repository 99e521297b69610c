"""Blame: naming the node the failing directions have in common, and nothing the verdicts do not say."""

import pytest

from vxcap.core.blame import Direction, blame, blame_flows
from vxcap.core.coverage import coverage_plan
from vxcap.core.lab.gen import generate_lab
from vxcap.core.lab.spec import lab_from_dict
from vxcap.core.model import Wire
from vxcap.core.plan import expected_wire


def d(src, dst, passed, wire="vxlan"):
    return Direction(src, dst, wire, passed)


def test_the_node_every_failure_goes_through_is_named():
    found = blame([d("y", "a", False), d("b", "y", False), d("y", "c", False), d("a", "b", True), d("y", "z", True, "plain")])
    assert found.nodes == (("y", 3),) and found.explained == 3 and found.passed_through == 1
    assert found.message == "all 3 failing directions go through y; its other direction passes: look there first"


def test_one_failure_names_no_one():
    assert blame([d("a", "b", False), d("b", "a", True), d("a", "c", True)]) is None


def test_everything_failing_names_no_one():
    assert blame([d("a", "b", False), d("b", "a", False), d("c", "a", False)]) is None


def test_both_ways_of_one_pair_are_told_apart_by_the_other_peers():
    # a also sends and receives VXLAN with c, and that passes: b is the one.
    found = blame([d("a", "b", False), d("b", "a", False), d("a", "c", True), d("c", "a", True), d("b", "e", True, "plain")])
    assert found.nodes == (("b", 2),) and not found.between


def test_both_ways_of_one_pair_with_nothing_else_to_go_by_say_so():
    found = blame([d("a", "b", False), d("b", "a", False), d("a", "c", True, "plain"), d("b", "e", True, "plain")])
    assert found.nodes == () and found.between == ("a", "b")
    assert "no other direction tells which" in found.message


def test_two_broken_nodes_are_both_named():
    found = blame([d("x", "a", False), d("b", "x", False), d("x", "c", False),
                   d("y", "e", False), d("f", "y", False), d("a", "e", True), d("c", "f", True)])
    assert found.nodes == (("x", 3), ("y", 2)) and found.explained == found.failed == 5


def test_report_flows_are_read_as_directions():
    flows = [{"src_node": "y", "dst_node": n, "expected": "vxlan", "verdict": "fail"} for n in "ab"]
    flows.append({"src_node": "a", "dst_node": "b", "expected": "plain", "verdict": "pass"})
    assert blame_flows(flows).to_dict()["nodes"] == [{"node": "y", "failed": 2}]


@pytest.mark.parametrize("fault", ["sends", "receives", "both"])
def test_with_a_coverage_plan_any_one_broken_node_is_named(fault):
    """Break each node of a 64-node lab in turn, as a wrong VNI (its VXLAN out) or stale FDB entries
    towards it (VXLAN to it) would: the plan's verdicts name exactly that node."""
    topology = lab_from_dict(generate_lab(64, 8)).topology
    directions = [dir_ for p in coverage_plan(topology, 3).pairs for dir_ in p.pair.directions()]
    wire = {(s, t): expected_wire(topology.overlay, topology.node(s), topology.node(t))[0] for s, t in directions}
    for broken in topology.node_names():
        def fails(s, t):
            if wire[s, t] is not Wire.VXLAN:
                return False
            return {"sends": s == broken, "receives": t == broken, "both": broken in (s, t)}[fault]

        found = blame(Direction(s, t, wire[s, t].value, not fails(s, t)) for s, t in directions)
        assert found is not None and found.nodes[0][0] == broken and found.explained == found.failed, broken
