"""Faults as data: the exact commands each one runs, and the misuses refused with one line.

(That each fault really changes the wire is shown on captured frames in
tests/adapters/test_lab.py.)
"""

from __future__ import annotations

import pytest

from vxcap.core.errors import InputError
from vxcap.core.lab.faults import (
    CrossSubnetPlain,
    FdbWrongNode,
    PodMtu,
    SameSubnetViaVxlan,
    StaleFdbTowards,
    VniMismatch,
    fault_steps,
)
from vxcap.core.lab.plan import LabNames, Step, lab_steps

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"


def argvs(steps):
    return [(s.netns, " ".join(s.argv)) for s in steps]


def test_vni_mismatch_recreates_the_vtep_with_the_other_vni_and_everything_on_it(k01, names):
    steps = fault_steps(k01, names, VniMismatch(W3, 4097))
    assert steps[0] == Step("vxt-k01-worker3", ("ip", "link", "del", "vxlan.calico"))
    assert {s.netns for s in steps} == {"vxt-k01-worker3"}
    text = [t for _ns, t in argvs(steps)]
    (add,) = [t for t in text if t.startswith("ip link add vxlan.calico")]
    assert " id 4097 dstport 4789 local 10.10.20.13 dev eth1 nolearning" in add
    assert "address 66:d2:0c:f0:ef:e5" in add
    # Deleting the device dropped its routes, neighbours and FDB: all three peers come back.
    for block, vtep, mac, underlay in [("192.168.23.64/26", "192.168.23.64", "66:15:9d:fa:c6:aa", "10.10.10.10"),
                                       ("192.168.81.64/26", "192.168.81.64", "66:fb:ad:98:aa:13", "10.10.10.11"),
                                       ("192.168.164.128/26", "192.168.164.128", "66:c7:4d:6e:6b:f3", "10.10.10.12")]:
        assert f"ip route add {block} via {vtep} dev vxlan.calico onlink" in text
        assert f"ip neigh add {vtep} lladdr {mac} dev vxlan.calico nud permanent" in text
        assert f"bridge fdb add {mac} dev vxlan.calico dst {underlay} self permanent" in text


def test_vni_mismatch_rebuilds_what_the_lab_built_apart_from_the_vni(k01, names):
    fault = [s for s in fault_steps(k01, names, VniMismatch(W, 4097)) if s.argv[1:3] != ("link", "del")]
    built = set(lab_steps(k01, names))
    changed = [s for s in fault if s not in built]
    assert len(changed) == 1 and "4097" in changed[0].argv


def test_same_subnet_via_vxlan_tunnels_worker_to_worker2(k01, names):
    assert argvs(fault_steps(k01, names, SameSubnetViaVxlan(W, W2))) == [
        ("vxt-k01-worker", "ip route replace 192.168.164.128/26 via 192.168.164.128 dev vxlan.calico onlink"),
        ("vxt-k01-worker", "ip neigh replace 192.168.164.128 lladdr 66:c7:4d:6e:6b:f3 dev vxlan.calico nud permanent"),
        ("vxt-k01-worker", "bridge fdb replace 66:c7:4d:6e:6b:f3 dev vxlan.calico dst 10.10.10.12 self permanent"),
    ]


def test_fdb_wrong_node_points_the_vtep_mac_at_the_third_node(k01, names):
    assert argvs(fault_steps(k01, names, FdbWrongNode(W, W3, CP))) == [
        ("vxt-k01-worker", "bridge fdb replace 66:d2:0c:f0:ef:e5 dev vxlan.calico dst 10.10.10.10 self permanent"),
    ]


def test_stale_fdb_towards_a_node_points_every_vxlan_senders_entry_at_the_stale_address(k01, names):
    # worker3 is the only node on 10.10.20/24: all three others send it VXLAN; worker2's address is the stale one.
    assert argvs(fault_steps(k01, names, StaleFdbTowards(W3, W2))) == [
        ("vxt-k01-control-plane", "bridge fdb replace 66:d2:0c:f0:ef:e5 dev vxlan.calico dst 10.10.10.12 self permanent"),
        ("vxt-k01-worker", "bridge fdb replace 66:d2:0c:f0:ef:e5 dev vxlan.calico dst 10.10.10.12 self permanent"),
    ]


def test_stale_fdb_towards_a_node_needs_a_vxlan_sender(k01, names):
    with pytest.raises(InputError, match="must all be different"):
        fault_steps(k01, names, StaleFdbTowards(W3, W3))


def test_cross_subnet_plain_routes_the_block_to_the_gateway(k01, names):
    assert argvs(fault_steps(k01, names, CrossSubnetPlain(W3, W))) == [
        ("vxt-k01-worker3", "ip route replace 192.168.81.64/26 via 10.10.20.1 dev eth1"),
    ]


def test_pod_mtu_changes_the_pods_eth0(k01, names):
    assert argvs(fault_steps(k01, names, PodMtu(W2, 1000))) == [("vxt-k01-worker2-pod", "ip link set eth0 mtu 1000")]


def test_faults_follow_adopted_namespaces(k01):
    names = LabNames.for_spec(k01, "vxt", {W: "kind-w"})
    assert {s.netns for s in fault_steps(k01, names, FdbWrongNode(W, W3, CP))} == {"kind-w"}


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (VniMismatch(W, 4096), "lab's own"),
        (VniMismatch(W, 2**24), "out of range"),
        (VniMismatch("k01-nope", 5), "unknown node 'k01-nope'"),
        (SameSubnetViaVxlan(W, W3), "already sends VXLAN"),
        (SameSubnetViaVxlan(W, W), "must all be different"),
        (FdbWrongNode(W, W2, CP), "sends plain"),
        (FdbWrongNode(W, W3, W3), "must all be different"),
        (CrossSubnetPlain(W, W2), "share a subnet"),
        (PodMtu(W, 67), "out of range"),
    ],
)
def test_a_fault_that_cannot_mean_anything_is_refused_in_one_line(k01, names, fault, message):
    with pytest.raises(InputError, match=message) as err:
        fault_steps(k01, names, fault)
    assert "\n" not in str(err.value)


def test_delivery_faults_are_one_command_each_where_they_belong(k01, names):
    from vxcap.core.lab.faults import NeighbourWrongMac, RepliesBlackholed, UnderlayDropsVxlan

    assert argvs(fault_steps(k01, names, RepliesBlackholed(W3, W))) == [
        ("vxt-k01-worker3", "ip route replace blackhole 192.168.81.64/26")]
    assert argvs(fault_steps(k01, names, UnderlayDropsVxlan(W, W3))) == [
        ("vxt-k01-switch", "ip rule add from 10.10.10.11 to 10.10.20.13 ipproto udp dport 4789 priority 100 blackhole")]
    assert argvs(fault_steps(k01, names, NeighbourWrongMac(W, W2))) == [
        ("vxt-k01-worker", "ip neigh replace 10.10.10.12 lladdr 02:00:5e:00:99:99 dev eth1 nud permanent")]
    with pytest.raises(InputError, match="different subnets"):
        fault_steps(k01, names, UnderlayDropsVxlan(W, W2))
    with pytest.raises(InputError, match="one subnet"):
        fault_steps(k01, names, NeighbourWrongMac(W, W3))
