"""A 1,000-node cluster through the HTTP fake API: discovery, the coverage plan and the pod
life cycle at that size (the fake marks pods Ready itself; no kubelet is needed)."""

from __future__ import annotations

import threading
import time
from collections import Counter

from tests.fakes.kube_api import start_fake_kube  # noqa: F401 (fixture)
from tests.fakes.large_cluster import large_cluster
from vxcap.adapters.kube import KubeCluster
from vxcap.adapters.kube.batching import Limits
from vxcap.core.coverage import coverage_plan, node_class
from vxcap.core.plan import expected_wire

NODES, SUBNETS = 1000, 20


def test_a_thousand_nodes_are_discovered_with_one_list_per_resource_and_planned_in_o_n(start_fake_kube):
    fake = start_fake_kube(**large_cluster(NODES, SUBNETS))
    topology = KubeCluster(kubeconfig=str(fake.kubeconfig)).discover()
    assert len(topology.nodes) == NODES and len({n.subnet for n in topology.nodes}) == SUBNETS
    # Lists, never a GET per node: the API server's load does not grow with the request count.
    assert not fake.kube.requested("GET", r"/api/v1/nodes/.+")
    assert len(fake.kube.requested("GET", r"/api/v1/nodes")) == 1

    plan = coverage_plan(topology, seed=1)
    assert len(plan.pairs) <= 2.1 * NODES
    peers = Counter()
    for planned in plan.pairs:
        for src, dst in planned.pair.directions():
            wire = expected_wire(topology.overlay, topology.node(src), topology.node(dst))[0]
            peers["send", src, wire] += 1
            peers["recv", dst, wire] += 1
    assert all(peers[role, n.name, wire] >= 2 for n in topology.nodes for role in ("send", "recv")
               for wire in ("plain", "vxlan"))
    classes = dict(plan.classes)
    assert classes == {"/24, VTEP MAC known": 950, "/24, VTEP MAC unknown": 50}


def test_a_thousand_test_pods_are_made_ready_and_removed_with_one_delete(start_fake_kube):
    fake = start_fake_kube(**large_cluster(NODES, SUBNETS))
    cluster = KubeCluster(kubeconfig=str(fake.kubeconfig))
    names = tuple(n.name for n in cluster.discover().nodes)
    pods = cluster.create_test_pods("scale1", names, timeout=300)
    assert sorted(pods) == sorted(names) and len({p.ip for p in pods.values()}) == NODES
    assert len(fake.kube.requested("POST", r"/api/v1/namespaces/[^/]+/pods")) == NODES
    removed = cluster.delete_run("scale1")
    assert len(removed) == NODES and not fake.kube.pods_in("vxcap")
    # Removed by label selector: one DELETE for the lot, not one per pod.
    assert len(fake.kube.requested("DELETE", r"/api/v1/namespaces/[^/]+/pods")) == 1


class InFlight:
    """An authorizer that only watches: how many pod creations the API server is handling at once."""

    def __init__(self) -> None:
        self.lock, self.now, self.most, self.creates = threading.Lock(), 0, 0, 0

    def __call__(self, access) -> bool:
        if access.verb != "create" or access.resource != "pods":
            return True
        with self.lock:
            self.now += 1
            self.creates += 1
            self.most = max(self.most, self.now)
        time.sleep(0.002)  # long enough for concurrent creations to overlap here
        with self.lock:
            self.now -= 1
        return True


def test_pods_go_out_in_batches_never_more_than_max_parallel_at_once(start_fake_kube):
    watcher = InFlight()
    fake = start_fake_kube(authorize=watcher, **large_cluster(NODES, SUBNETS))
    batches = []
    cluster = KubeCluster(kubeconfig=str(fake.kubeconfig), limits=Limits(max_parallel=4, qps=None),
                          progress=lambda done, total, n: batches.append((done, total, n)))
    names = tuple(n.name for n in cluster.discover().nodes)
    cluster.create_test_pods("scale2", names, timeout=300)
    assert watcher.creates == NODES and 1 < watcher.most <= 4
    assert batches == [(100 * i, NODES, i) for i in range(1, 11)]
    cluster.delete_run("scale2")


def test_max_parallel_and_api_qps_reach_the_cluster_target():
    from vxcap.targets.cluster import ClusterTarget

    lines = []
    target = ClusterTarget("r1", max_parallel=3, api_qps=7.5, on_wait=lines.append)
    assert target.cluster.limits == Limits(max_parallel=3, qps=7.5) and target.cluster.limiter.qps == 7.5
    target.cluster.progress(200, 1000, 2)
    target.cluster.progress(4, 4, 1)  # a handful of pods: no running count
    assert lines == ["pods created 200/1000 (batch 2)"]


def test_cluster_captures_start_a_few_at_a_time_each_failure_kept_for_its_node():
    from vxcap.targets.cluster import CaptureBackend, ClusterTarget
    from vxcap.core.errors import VxcapError

    target = ClusterTarget("r2", max_parallel=3)
    target.backend_for = lambda node: CaptureBackend.POD
    lock, state = threading.Lock(), {"now": 0, "most": 0}

    def start_capture(node, path, bpf):  # stands in for the exec that starts tcpdump in the node's capture pod
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.01)
        with lock:
            state["now"] -= 1
        if node == "n7":
            raise VxcapError("capture pod on n7 is not Ready")
        return f"capture of {node}"

    target.start_capture = start_capture
    started = target.start_captures([(f"n{i}", f"/tmp/n{i}.pcap", "") for i in range(20)])
    assert 1 < state["most"] <= 3
    assert started[:3] == ["capture of n0", "capture of n1", "capture of n2"]
    assert isinstance(started[7], VxcapError) and len(started) == 20
