"""Each lab data plane, as the encapsulation model plans it: what every direction expects."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.lab_support import dataplane_spec, k01_spec
from vxcap.core.lab.encap_topology import lab_pods, lab_topology
from vxcap.core.model import Pair, Wire
from vxcap.core.plan import all_paths, plan


def expected(overlay: str) -> Counter:
    spec = dataplane_spec(overlay) if overlay != "vxlan" else k01_spec()
    topology = lab_topology(spec)
    pods = {pod.node: pod for pod in lab_pods(spec)}
    names = topology.node_names()
    pairs = tuple(Pair(a, b) for i, a in enumerate(names) for b in names[i + 1:])
    es = plan(topology, pairs, pods)
    assert {(p.src, p.dst, p.family) for p in all_paths(topology)} == {(e.src_node, e.dst_node, e.family) for e in es}
    return Counter((e.family, e.expected) for e in es)


def test_the_reference_lab_is_unchanged():
    assert lab_topology(k01_spec()) == k01_spec().topology
    assert set(expected("vxlan")) == {(4, Wire.VXLAN), (4, Wire.PLAIN)}


@pytest.mark.parametrize("overlay, families, wires", [
    ("vxlan6", {6}, {Wire.VXLAN, Wire.PLAIN}),
    ("dual", {4, 6}, {Wire.VXLAN, Wire.PLAIN}),
    ("wireguard", {4}, {Wire.WIREGUARD}),
    ("ipip", {4}, {Wire.IPIP, Wire.PLAIN}),
])
def test_each_data_plane_plans_its_families_and_formats(overlay, families, wires):
    found = expected(overlay)
    assert {family for family, _ in found} == families
    assert {wire for _, wire in found} == wires


def test_a_dual_stack_lab_judges_each_direction_in_both_families_alike():
    found = expected("dual")
    assert found[(4, Wire.VXLAN)] == found[(6, Wire.VXLAN)] and found[(4, Wire.PLAIN)] == found[(6, Wire.PLAIN)]
