"""The Flannel lab as data: its description, the commands that build it as flanneld would,
the checks of what the kernel reports, and its faults.

(That the kernel takes these commands and the wire shows VXLAN on 8472 with VNI 1 is
tests/integration/test_flannel_lab.py.)
"""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.lab_support import LAB_FILE
from vxcap.core.errors import InputError
from vxcap.core.lab.faults import FlannelDirectRoute, PortMismatch, VniMismatch, fault_steps
from vxcap.core.lab.flannel import flannel_description, host_veth
from vxcap.core.lab.plan import LabNames, NodeDump, lab_steps, node_checks
from vxcap.core.lab.spec import lab_from_dict
from vxcap.core.model import Mode
from vxcap.core.plan import expected_wire

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"
MAC = {CP: "66:15:9d:fa:c6:aa", W: "66:fb:ad:98:aa:13", W2: "66:c7:4d:6e:6b:f3", W3: "66:d2:0c:f0:ef:e5"}


def flannel_spec(direct_routing: bool):
    return lab_from_dict(flannel_description(yaml.safe_load(LAB_FILE.read_text()), direct_routing))


@pytest.fixture(scope="module")
def off():
    return flannel_spec(False)


@pytest.fixture(scope="module")
def on():
    return flannel_spec(True)


def lines(spec, ns):
    names = LabNames.for_spec(spec, "vxt")
    return [" ".join(s.argv) for s in lab_steps(spec, names) if s.netns == ns]


def test_the_description_is_flannels_defaults_on_the_reference_underlay(off, on):
    ov = off.topology.overlay
    assert (ov.vni, ov.port, ov.mtu, ov.mode) == (1, 8472, 1450, Mode.ALWAYS)
    assert on.topology.overlay.mode is Mode.CROSS_SUBNET
    assert off.dataplane == "flannel" and off.flannel.device == "flannel.1"
    assert [str(n.block) for n in off.topology.nodes] == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24",
                                                        "10.244.3.0/24"]
    # The lease's first address is the VTEP's /32, cni0 takes the next, the first pod the one after.
    assert str(off.topology.node(W).vtep_ip) == "10.244.1.0" and str(off.pod_on(W).ip) == "10.244.1.2"
    assert off.pod_mtu == 1450 and off.describe()["flannel"]["direct_routing"] is False


def test_direct_routing_and_the_overlay_mode_must_agree():
    data = flannel_description(yaml.safe_load(LAB_FILE.read_text()), True)
    data["overlay"]["mode"] = "Always"
    with pytest.raises(InputError, match="DirectRouting on is overlay.mode CrossSubnet, not Always"):
        lab_from_dict(data)


def test_flannel_1_is_made_as_flanneld_makes_it(off):
    text = lines(off, "vxt-k01-worker")
    (add,) = [t for t in text if t.startswith("ip link add flannel.1")]
    # No dstport: flanneld passes Port 0 and the kernel sends to its own default, 8472.
    assert add == ("ip link add flannel.1 address 66:fb:ad:98:aa:13 mtu 1450 type vxlan id 1 "
                   "local 10.10.10.11 dev eth1 nolearning")
    assert "ip addr add 10.244.1.0/32 dev flannel.1" in text
    assert not any("vxlan.calico" in t or "blackhole" in t or "cali" in t for t in text)


def test_direct_routing_off_every_peer_gets_neighbour_fdb_then_the_onlink_route(off):
    text = lines(off, "vxt-k01-worker")
    for node, n in ((CP, 0), (W2, 2), (W3, 3)):
        neigh = f"ip neigh add 10.244.{n}.0 lladdr {MAC[node]} dev flannel.1 nud permanent"
        route = f"ip route add 10.244.{n}.0/24 via 10.244.{n}.0 dev flannel.1 onlink"
        fdb = [t for t in text if t.startswith(f"bridge fdb add {MAC[node]} dev flannel.1 dst ")]
        assert fdb and fdb[0].endswith("self permanent")
        assert text.index(neigh) < text.index(fdb[0]) < text.index(route)  # the route last, as flanneld does


def test_direct_routing_on_routes_same_subnet_peers_plain_and_the_rest_through_flannel_1(on):
    text = lines(on, "vxt-k01-worker")
    assert "ip route add 10.244.2.0/24 via 10.10.10.12" in text
    assert "ip route add 10.244.0.0/24 via 10.10.10.10" in text
    assert "ip route add 10.244.3.0/24 via 10.244.3.0 dev flannel.1 onlink" in text
    assert not any(t.startswith(f"bridge fdb add {MAC[W2]}") for t in text)
    # What the lab builds is what runs expect: the same rule decides both.
    for src, dst, wire in ((W, W2, "plain"), (W, W3, "vxlan"), (W3, W, "vxlan")):
        topo = on.topology
        assert expected_wire(topo.overlay, topo.node(src), topo.node(dst))[0].value == wire


def test_a_port_other_than_the_kernels_is_given_to_the_device():
    data = flannel_description(yaml.safe_load(LAB_FILE.read_text()), False)
    data["overlay"]["port"] = 4789
    (add,) = [t for t in lines(lab_from_dict(data), "vxt-k01-worker") if t.startswith("ip link add flannel.1")]
    assert " id 1 dstport 4789 local " in add


def test_pods_hang_off_cni0_with_the_subnets_first_address_as_gateway(off):
    node = lines(off, "vxt-k01-worker")
    assert "ip addr add 10.244.1.1/24 dev cni0" in node
    assert f"ip link set {host_veth(W)} master cni0 up" in node
    pod = lines(off, "vxt-k01-worker-pod")
    assert "ip addr add 10.244.1.2/24 dev eth0" in pod and "ip route add default via 10.244.1.1 dev eth0" in pod


# --- checks ----------------------------------------------------------------------------------


def link(name, mtu, address="02:00:00:00:00:01", addrs=(), kind=None, data=None, master=None):
    entry = {"ifname": name, "mtu": mtu, "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "address": address,
             "addr_info": [{"family": "inet", "local": a, "prefixlen": p} for a, p in addrs]}
    if kind:
        entry["linkinfo"] = {"info_kind": kind, "info_data": data or {}}
    if master:
        entry["master"] = master
    return entry


def worker_dump():
    """A healthy k01-worker with DirectRouting off, as `ip -j` / `bridge -j` print it."""
    peers = ((CP, 0, "10.10.10.10"), (W2, 2, "10.10.10.12"), (W3, 3, "10.10.20.13"))
    return NodeDump(
        links=[link("eth1", 1500, addrs=[("10.10.10.11", 24)], kind="veth"),
               link("flannel.1", 1450, MAC[W], [("10.244.1.0", 32)], "vxlan",
                    {"id": 1, "local": "10.10.10.11", "port": 8472, "learning": False}),
               link("cni0", 1450, addrs=[("10.244.1.1", 24)], kind="bridge"),
               link(host_veth(W), 1450, kind="veth", master="cni0")],
        routes=[{"dst": "10.10.20.0/24", "gateway": "10.10.10.1", "dev": "eth1", "flags": []}]
        + [{"dst": f"10.244.{n}.0/24", "gateway": f"10.244.{n}.0", "dev": "flannel.1", "flags": ["onlink"]}
           for _, n, _ in peers],
        neighbours=[{"dst": f"10.244.{n}.0", "dev": "flannel.1", "lladdr": MAC[node], "state": ["PERMANENT"]}
                    for node, n, _ in peers],
        fdb=[{"mac": MAC[node], "ifname": "flannel.1", "dst": ip, "flags": ["self"], "state": "permanent"}
             for node, _, ip in peers],
        pod_links=[link("eth0", 1450, addrs=[("10.244.1.2", 24)])],
        pod_routes=[{"dst": "default", "gateway": "10.244.1.1", "dev": "eth0", "flags": []}],
    )


def failing(spec, dump):
    names = LabNames.for_spec(spec, "vxt")
    return {c.name: c.detail for c in node_checks(spec, names, W, dump) if not c.ok}


def test_a_healthy_flannel_node_passes_every_check(off):
    assert failing(off, worker_dump()) == {}


@pytest.mark.parametrize(("breakage", "check", "detail"), [
    (lambda d: d.links[1]["linkinfo"]["info_data"].update(id=2), "flannel.1", "id=2 (want 1)"),
    (lambda d: d.links[1]["linkinfo"]["info_data"].update(port=4789), "flannel.1", "port=4789 (want 8472)"),
    (lambda d: d.links[1].update(mtu=1500), "flannel.1", "mtu=1500 (want 1450)"),
    (lambda d: d.links[1]["linkinfo"]["info_data"].update(learning=True), "flannel.1", "learning=True (want False)"),
    (lambda d: d.fdb.pop(), "fdb 66:d2:0c:f0:ef:e5", "missing"),
    (lambda d: d.fdb[2].update(dst="10.10.10.12"), "fdb 66:d2:0c:f0:ef:e5", "dst='10.10.10.12' (want '10.10.20.13')"),
    (lambda d: d.neighbours[1].update(state=["REACHABLE"]), "neigh 10.244.2.0",
     "state ['REACHABLE'] (want PERMANENT)"),
    (lambda d: d.routes[3].update(gateway="10.10.20.13", dev="eth1", flags=[]), "route 10.244.3.0/24",
     "gateway='10.10.20.13' (want '10.244.3.0'); dev='eth1' (want 'flannel.1'); not onlink"),
    (lambda d: d.pod_links[0].update(mtu=1500), "pod eth0", "mtu=1500 (want 1450)"),
])
def test_each_broken_part_is_named(off, breakage, check, detail):
    dump = copy.deepcopy(worker_dump())
    breakage(dump)
    assert failing(off, dump) == {check: detail}


def test_another_vni_is_another_device_and_status_says_so(off):
    dump = copy.deepcopy(worker_dump())
    dump.links[1]["ifname"] = "flannel.2"
    assert failing(off, dump)["flannel.1"] == "missing (flannel.2 instead)"


# --- faults ------------------------------------------------------------------------------------


def fault_lines(spec, fault):
    return [(s.netns, " ".join(s.argv)) for s in fault_steps(spec, LabNames.for_spec(spec, "vxt"), fault)]


def test_vni_mismatch_remakes_the_vtep_as_flannel_2_with_every_peer_on_it(off):
    steps = fault_lines(off, VniMismatch(W2, 2))
    assert steps[0] == ("vxt-k01-worker2", "ip link del flannel.1")
    text = [t for _, t in steps]
    assert any(t.startswith("ip link add flannel.2 ") and " id 2 local 10.10.10.12 " in t for t in text)
    assert "ip route add 10.244.1.0/24 via 10.244.1.0 dev flannel.2 onlink" in text
    assert sum(t.startswith("bridge fdb add") for t in text) == 3


def test_port_mismatch_remakes_one_nodes_vtep_on_that_port(off):
    text = [t for _, t in fault_lines(off, PortMismatch(W, 4789))]
    assert text[0] == "ip link del flannel.1"
    assert any(t.startswith("ip link add flannel.1 ") and " id 1 dstport 4789 " in t for t in text)
    with pytest.raises(InputError, match="UDP port 8472 is the lab's own"):
        fault_steps(off, LabNames.for_spec(off, "vxt"), PortMismatch(W, 8472))


def test_direct_route_fault_is_one_plain_route_where_vxlan_is_promised(off, on):
    assert fault_lines(off, FlannelDirectRoute(W, W2)) == [("vxt-k01-worker", "ip route replace 10.244.2.0/24 via 10.10.10.12")]
    with pytest.raises(InputError, match="already routes k01-worker2's pods plain"):
        fault_steps(on, LabNames.for_spec(on, "vxt"), FlannelDirectRoute(W, W2))
    with pytest.raises(InputError, match="through a gateway"):
        fault_steps(off, LabNames.for_spec(off, "vxt"), FlannelDirectRoute(W, W3))
