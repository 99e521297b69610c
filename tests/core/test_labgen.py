from collections import Counter
from ipaddress import IPv4Network

import pytest

from vxcap.core.errors import InputError
from vxcap.core.labgen import generate_lab, node_names
from vxcap.core.labspec import lab_from_dict
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


@pytest.mark.parametrize("nodes,subnets", [(1, 1), (65, 2), (4, 0), (4, 5)])
def test_bounds(nodes, subnets):
    with pytest.raises(InputError):
        generate_lab(nodes, subnets)
