"""Each capture's filter: the run's one up to 16 nodes; beyond, the node's own pod and address and its partners'."""

from vxcap.core.coverage import coverage_plan
from vxcap.core.lab.gen import generate_lab
from vxcap.core.lab.spec import lab_from_dict
from vxcap.core.plan import pair_nodes
from vxcap.stages.capture_filters import ONE_FILTER_UP_TO, capture_filters


def filters_for(count: int, subnets: int):
    spec = lab_from_dict(generate_lab(count, subnets))
    pairs = coverage_plan(spec.topology).as_pairs()
    nodes = pair_nodes(pairs)
    pods = {node: spec.pod_on(node) for node in nodes}
    return spec, pairs, capture_filters(spec.topology, nodes, pairs, pods, "precise")


def test_a_small_run_uses_one_filter_for_every_capture():
    _, _, filters = filters_for(ONE_FILTER_UP_TO, 4)
    assert len({f["bpf"] for f in filters.values()}) == 1


def test_beyond_that_each_capture_names_its_node_and_partners_only():
    spec, pairs, filters = filters_for(40, 4)
    for node, used in filters.items():
        partners = {p.a for p in pairs if p.b == node} | {p.b for p in pairs if p.a == node}
        others = set(spec.topology.node_names()) - partners - {node}
        assert used["mode"] == "precise"
        words = set(used["bpf"].replace("(", " ").replace(")", " ").split())
        for name in partners | {node}:
            assert {str(spec.topology.node(name).address), str(spec.pod_on(name).ip)} <= words
        assert not any({str(spec.topology.node(name).address), str(spec.pod_on(name).ip)} & words for name in others)
