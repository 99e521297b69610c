"""A large cluster for the HTTP fake (tests/fakes/kube_api.py): N Calico nodes over K /24 subnets.

    kube = FakeKube(**large_cluster(1000, 20)).start()

Nodes `node-0000` ... on 10.100.<subnet>.<10 + i>/24, one /26 block each from
192.168.0.0/16 (so at most 1,024 nodes), every 20th node without its VTEP MAC
annotation (a class vxcap judges differently), Calico's CRDs in one API group.
"""

from __future__ import annotations

from typing import Any

from tests.fakes import calico_objects as co

MAX_NODES = 1024


def large_nodes(count: int, subnets: int) -> tuple[co.LabNode, ...]:
    if not 1 <= count <= MAX_NODES or not 1 <= subnets <= min(count, 200):
        raise ValueError(f"{count} nodes over {subnets} subnets is not a cluster this fake builds")
    per_subnet = -(-count // subnets)
    if per_subnet > 240:
        raise ValueError(f"{per_subnet} nodes per /24 subnet is too many")
    nodes = []
    for i in range(count):
        s, j = divmod(i, per_subnet)
        nodes.append(co.LabNode(
            name=f"node-{i:04d}",
            underlay=f"10.100.{s}.{10 + j}/24",
            internal_ip=f"172.20.{i // 250}.{2 + i % 250}",
            block=f"192.168.{i // 4}.{64 * (i % 4)}/26",
            vtep_mac=f"66:00:00:00:{i // 256:02x}:{i % 256:02x}",
        ))
    return tuple(nodes)


def without_vtep_mac(node: dict[str, Any]) -> dict[str, Any]:
    node["metadata"]["annotations"].pop("projectcalico.org/VXLANTunnelMACAddr", None)
    return node


def large_cluster(count: int, subnets: int, group: str = co.V1) -> dict[str, Any]:
    """FakeKube options for the cluster: its nodes and its Calico resources."""
    lab = large_nodes(count, subnets)
    nodes = [co.node(n) for n in lab]
    for i, node in enumerate(nodes):
        if i % 20 == 19:
            without_vtep_mac(node)
    return {"calico_groups": (group,), "nodes": nodes, "calico": {group: co.lab_calico(group, lab)}}
