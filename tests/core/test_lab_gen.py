from collections import Counter
from ipaddress import IPv4Network

import pytest

from vxcap.core.errors import InputError
from vxcap.core.lab.gen import generate_lab, node_names
from vxcap.core.lab.spec import lab_from_dict
from vxcap.core.model import Wire
from vxcap.core.plan import all_paths


def test_sixteen_nodes_on_four_subnets():
    spec = lab_from_dict(generate_lab(16, 4))
    nodes = spec.topology.nodes
    assert len(nodes) == 16 and nodes[0].name == "k01-control-plane" and nodes[1].name == "k01-worker"
    assert nodes[15].name == "k01-worker15"
    per_subnet = Counter(str(n.subnet) for n in nodes)
    assert per_subnet == {"10.10.10.0/24": 4, "10.10.20.0/24": 4, "10.10.30.0/24": 4, "10.10.40.0/24": 4}
    blocks = [n.block for n in nodes]
    assert len(set(blocks)) == 16 and all(b.subnet_of(IPv4Network("192.168.0.0/16")) for b in blocks)
    assert len({n.vtep_mac for n in nodes}) == 16
    assert len({n.address for n in nodes}) == 16
    # 16*15 ordered paths; the ones inside a subnet (4 subnets * 4*3) are plain
    paths = all_paths(spec.topology)
    assert len(paths) == 240 and sum(p.expected is Wire.PLAIN for p in paths) == 48


def test_kind_names():
    assert node_names("k01", 3) == ["k01-control-plane", "k01-worker", "k01-worker2"]


@pytest.mark.parametrize("nodes,subnets", [(1, 1), (257, 2), (4, 0), (4, 5), (246, 1)])
def test_bounds(nodes, subnets):
    with pytest.raises(InputError):
        generate_lab(nodes, subnets)


def test_up_to_64_nodes_keep_their_addresses():
    spec = lab_from_dict(generate_lab(64, 8))
    last = spec.topology.nodes[-1]
    assert (str(last.underlay), str(last.block)) == ("10.10.80.73/24", "192.168.64.64/26")


@pytest.mark.parametrize("subnets", [2, 16])
def test_256_nodes_have_distinct_addresses_blocks_and_names(subnets):
    spec = lab_from_dict(generate_lab(256, subnets))
    nodes = spec.topology.nodes
    assert len({n.address for n in nodes}) == len({n.block for n in nodes}) == len({n.name for n in nodes}) == 256
    assert all(n.address in n.subnet and n.address != spec.subnet_of(n).gateway for n in nodes)
    assert all(n.block.subnet_of(IPv4Network("192.168.0.0/16")) for n in nodes)
    assert not any(a.overlaps(b) for i, a in enumerate(sorted(n.block for n in nodes)) for b in sorted(n.block for n in nodes)[i + 1:i + 2])
    assert Counter(str(n.subnet) for n in nodes) == {f"10.10.{10 * (s + 1)}.0/24": 256 // subnets for s in range(subnets)}
