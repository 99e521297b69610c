"""The Cilium lab as data: its description and identities, the commands that build its tunnel,
the topology a run judges it against, and its faults.

(That the kernel takes these commands and the wire shows each sender's identity as VNI on 8472 is
tests/integration/test_cilium_lab.py.)
"""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.lab_support import LAB_FILE
from vxcap.core.errors import InputError
from vxcap.core.lab.cilium import cilium_description, identities, lxc
from vxcap.core.lab.encap_topology import lab_topology
from vxcap.core.lab.faults import CiliumForeignIdentity, CiliumPlain, PortMismatch, fault_steps
from vxcap.core.lab.plan import LabNames, lab_steps
from vxcap.core.lab.spec import lab_from_dict
from vxcap.core.model import Mode, Pair, Wire
from vxcap.core.plan import expected_wire, plan

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"


def description() -> dict:
    return cilium_description(yaml.safe_load(LAB_FILE.read_text()))


@pytest.fixture(scope="module")
def spec():
    return lab_from_dict(description())


def lines(spec, ns, steps=None):
    names = LabNames.for_spec(spec, "vxt")
    return [" ".join(s.argv) for s in (steps if steps is not None else lab_steps(spec, names)) if s.netns == ns]


def identity(spec, node):
    return spec.cilium.identity_of(f"vxcap-{node}")


def test_each_pod_gets_its_own_cluster_local_identity_the_same_on_every_build(spec):
    ids = dict(spec.cilium.identities)
    assert len(set(ids.values())) == 4 and all(256 <= i <= 65535 for i in ids.values())
    assert identities(list(ids)) == ids  # fixed per pod name
    assert spec.dataplane == "cilium" and spec.pod_mtu == 1450
    ov = spec.topology.overlay
    assert (ov.cni, ov.port, ov.mtu, ov.mode) == ("cilium", 8472, 1450, Mode.ALWAYS)
    assert [str(n.block) for n in spec.topology.nodes] == ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]
    assert str(spec.pod_on(W).ip) == "10.0.1.2"


def test_a_reserved_or_missing_identity_is_refused():
    data = description()
    data["dataplane"]["cilium"]["identities"]["vxcap-k01-worker"] = 2  # reserved: world
    with pytest.raises(InputError, match="identities.vxcap-k01-worker 2 must be an identity from 256"):
        lab_from_dict(data)
    data = copy.deepcopy(description())
    del data["dataplane"]["cilium"]["identities"]["vxcap-k01-worker3"]
    with pytest.raises(InputError, match="vxcap-k01-worker3 None"):
        lab_from_dict(data)


def test_the_node_tunnels_each_peer_with_its_pods_identity_from_its_own_table(spec):
    got = lines(spec, f"vxt-{W}")
    me = identity(spec, W)
    assert "ip link add cilium_vxlan address 66:fb:ad:98:aa:13 mtu 1450 type vxlan external dstport 8472" in got
    assert "ip rule add from 10.0.1.2 lookup 2001 priority 100" in got
    assert (f"ip route add 10.0.3.0/24 via 10.0.3.1 dev cilium_vxlan onlink encap ip id {me} dst 10.10.20.13 "
            "ttl 64 table 2001") in got
    assert "ip neigh add 10.0.3.1 lladdr 66:d2:0c:f0:ef:e5 dev cilium_vxlan nud permanent" in got
    assert f"ip route add 10.0.1.2 dev {lxc(W)} scope link" in got
    assert lines(spec, f"vxt-{W}-pod")[-1] == "ip route add default via 10.0.1.1 dev eth0"
    assert not any("proxy_arp" in line for line in got)  # cilium_host's address answers the pod's ARP


def test_a_run_expects_every_direction_tunnelled_with_the_senders_identity(spec):
    topology = lab_topology(spec)
    assert topology.overlay.vni_identity is True
    pods = {p.node: p for p in spec.pods}
    expectations = plan(topology, (Pair(W, W3), Pair(W, W2)), pods)
    assert {(e.src_node, e.dst_node): (e.expected, e.vni, e.port) for e in expectations} == {
        (s, d): (Wire.VXLAN, identity(spec, s), 8472) for s, d in ((W, W3), (W3, W), (W, W2), (W2, W))}
    assert all(e.vni_is == "the sender's security identity" and e.inner_dst_mac is None for e in expectations)
    assert expected_wire(topology.overlay, topology.node(W), topology.node(W2))[1] == "Cilium routing-mode tunnel (vxlan)"


def test_the_faults_change_one_thing_each(spec):
    names = LabNames.for_spec(spec, "vxt")
    other = identity(spec, W)
    got = lines(spec, f"vxt-{W2}", fault_steps(spec, names, CiliumForeignIdentity(W2, other)))
    assert len(got) == 3 and all("route replace" in g and f"id {other} " in g and "table 2002" in g for g in got)
    with pytest.raises(InputError, match="own identity"):
        fault_steps(spec, names, CiliumForeignIdentity(W2, identity(spec, W2)))
    assert lines(spec, f"vxt-{W}", fault_steps(spec, names, CiliumPlain(W, W3))) == [
        "ip route replace 10.0.3.0/24 via 10.10.10.1 dev eth1 table 2001"]  # across subnets: via the gateway
    assert lines(spec, f"vxt-{W}", fault_steps(spec, names, CiliumPlain(W, W2))) == [
        "ip route replace 10.0.2.0/24 via 10.10.10.12 dev eth1 table 2001"]
    port = lines(spec, f"vxt-{W}", fault_steps(spec, names, PortMismatch(W, 4789)))
    assert port[0] == "ip link del cilium_vxlan" and "external dstport 4789" in port[1]
    assert sum("encap ip" in line for line in port) == 3  # the table's routes went with the device: re-made
