"""The sending node's route table decides Flannel's DirectRouting and Antrea's hybrid pairs (pure)."""

from __future__ import annotations

from ipaddress import ip_address

from tests.fakes import cni_objects as cn
from vxcap.core.cni import Encap, antrea, flannel
from vxcap.core.cni.routes import decisions, in_transport_subnet, without_gateway


def routes(own: str, subnet: str, gateway: str) -> list[dict]:
    """`ip -j route` of a lab node: its underlay subnet on eth1, the other subnet via the switch, Kind's default."""
    return [
        {"dst": "default", "gateway": "172.18.0.1", "dev": "eth0", "flags": []},
        {"dst": subnet, "dev": "eth1", "protocol": "kernel", "scope": "link", "prefsrc": own, "flags": []},
        {"dst": "10.10.0.0/16", "gateway": gateway, "dev": "eth1", "flags": []},
        {"dst": "172.18.0.0/16", "dev": "eth0", "protocol": "kernel", "scope": "link", "prefsrc": "172.18.0.5", "flags": []},
    ]


WORKER = routes("10.10.10.11", "10.10.10.0/24", "10.10.10.1")
WORKER3 = routes("10.10.20.13", "10.10.20.0/24", "10.10.20.1")


def test_flannels_question_is_the_route_not_the_prefix():
    assert without_gateway(WORKER, ip_address("10.10.10.12")) is True
    assert without_gateway(WORKER, ip_address("10.10.20.13")) is False  # via 10.10.10.1
    assert without_gateway([{"dst": "10.10.20.0/24", "type": "blackhole", "flags": []}], ip_address("10.10.20.13")) is False
    multipath = [{"dst": "10.10.20.0/24", "flags": [], "nexthops": [{"gateway": "10.10.10.1"}, {"gateway": "10.10.10.2"}]}]
    assert without_gateway(multipath, ip_address("10.10.20.13")) is False
    assert without_gateway([], ip_address("10.10.20.13")) is None


def test_a_route_without_gateway_across_prefixes_is_plain_for_flannel():
    # An on-link route to a wider prefix than the address's own: a prefix test would say "other subnet".
    onlink = [{"dst": "10.10.0.0/16", "dev": "eth1", "scope": "link", "flags": []}]
    assert without_gateway(onlink, ip_address("10.10.20.13")) is True


def test_antreas_question_is_the_transport_subnet():
    assert in_transport_subnet(WORKER, ip_address("10.10.10.11"), ip_address("10.10.10.12")) is True
    assert in_transport_subnet(WORKER, ip_address("10.10.10.11"), ip_address("10.10.20.13")) is False
    assert in_transport_subnet(WORKER, ip_address("10.9.9.9"), ip_address("10.10.10.12")) is None


def test_tables_decide_flannel_direct_routing_per_direction():
    nodes = flannel.discover(cn.flannel({"Type": "vxlan", "DirectRouting": True}).configmaps[0], cn.flannel_nodes()).nodes
    answers = decisions(nodes, {"k01-worker": WORKER, "k01-worker3": WORKER3}, "gateway")
    assert answers[("k01-worker", "k01-worker2")] is True and answers[("k01-worker", "k01-worker3")] is False
    assert answers[("k01-worker3", "k01-worker")] is False
    assert ("k01-worker2", "k01-worker") not in answers  # no table for worker2: left undecided
    found = flannel.discover(cn.flannel({"Type": "vxlan", "DirectRouting": True}).configmaps[0], cn.flannel_nodes(), answers)
    by_pair = {(p.src, p.dst): [w.encap for w in p.expected] for p in found.paths}
    assert by_pair[("k01-worker", "k01-worker2")] == [Encap.PLAIN]
    assert by_pair[("k01-worker", "k01-worker3")] == [Encap.VXLAN]
    assert by_pair[("k01-worker2", "k01-worker")] == [Encap.PLAIN, Encap.VXLAN]


def test_tables_decide_antrea_hybrid_per_direction():
    nodes = cn.plain_nodes()
    for node, lab in zip(nodes, cn.co.K01):  # Antrea tunnels to the InternalIP: make it the lab's underlay here
        node["status"]["addresses"][0]["address"] = lab.underlay.split("/")[0]
    configmap = cn.antrea("hybrid").configmaps[0]
    cni_nodes = antrea.discover(configmap, nodes).nodes
    answers = decisions(cni_nodes, {"k01-worker": WORKER}, "subnet")
    found = antrea.discover(configmap, nodes, answers)
    by_pair = {(p.src, p.dst): [w.encap for w in p.expected] for p in found.paths}
    assert by_pair[("k01-worker", "k01-worker2")] == [Encap.PLAIN]
    assert by_pair[("k01-worker", "k01-worker3")] == [Encap.GENEVE]
