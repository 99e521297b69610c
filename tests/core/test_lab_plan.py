"""The lab plan as data: names, the commands per namespace, their order, and the health checks.

Expected routes, neighbours and FDB entries are the lab lesson's real outputs
from a Kind cluster running Calico, copied here as text.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace

import pytest

from vxcap.core.errors import InputError
from vxcap.core.lab.plan import (
    LabNames,
    LabStatus,
    NamespaceStatus,
    NodeDump,
    NodeStatus,
    Step,
    adopted_teardown_steps,
    lab_steps,
    node_checks,
)
from vxcap.core.model import Mode

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"

# `ip route | grep /26`, `ip neighbor show | grep vxlan`, `bridge fdb show` from the lesson.
LESSON_ROUTES = {
    W: ["192.168.23.64/26 via 10.10.10.10 dev eth1 proto 80 onlink",
        "blackhole 192.168.81.64/26 proto 80",
        "192.168.164.128/26 via 10.10.10.12 dev eth1 proto 80 onlink",
        "192.168.209.64/26 via 192.168.209.64 dev vxlan.calico onlink",
        "192.168.209.64 dev vxlan.calico scope link"],
    W2: ["192.168.23.64/26 via 10.10.10.10 dev eth1 proto 80 onlink",
         "192.168.81.64/26 via 10.10.10.11 dev eth1 proto 80 onlink",
         "blackhole 192.168.164.128/26 proto 80",
         "192.168.209.64/26 via 192.168.209.64 dev vxlan.calico onlink"],
    W3: ["192.168.23.64/26 via 192.168.23.64 dev vxlan.calico onlink",
         "192.168.81.64/26 via 192.168.81.64 dev vxlan.calico onlink",
         "192.168.164.128/26 via 192.168.164.128 dev vxlan.calico onlink",
         "blackhole 192.168.209.64/26 proto 80"],
}
LESSON_NEIGH_W3 = ["192.168.81.64 dev vxlan.calico lladdr 66:fb:ad:98:aa:13 PERMANENT",
                   "192.168.164.128 dev vxlan.calico lladdr 66:c7:4d:6e:6b:f3 PERMANENT",
                   "192.168.23.64 dev vxlan.calico lladdr 66:15:9d:fa:c6:aa PERMANENT"]
LESSON_FDB_W3 = "66:fb:ad:98:aa:13 dev vxlan.calico dst 10.10.10.11 self permanent"


@pytest.fixture(scope="module")
def steps(k01, names):
    return lab_steps(k01, names)


def in_ns(steps, ns, tool=None):
    return [s.argv for s in steps if s.netns == ns and (tool is None or s.argv[0] == tool)]


def has_route(steps, ns, line):
    """The lesson's `ip route` line was added: `ip route add` with the same words, any order of options."""
    words = line.replace(" PERMANENT", "").split()
    return any(argv[1:3] == ("route", "add") and sorted(argv[3:]) == sorted(words) for argv in in_ns(steps, ns, "ip"))


# --- names ----------------------------------------------------------------------


def test_names_follow_the_prefix_and_the_cluster(names):
    assert names.switch == "vxt-k01-switch"
    assert names.node(W) == "vxt-k01-worker"
    assert names.pod(W) == "vxt-k01-worker-pod"


def test_cali_names_are_calicos_shape_stable_and_distinct(k01):
    cali = {n.name: LabNames.cali(n.name) for n in k01.topology.nodes}
    assert all(re.fullmatch(r"cali[0-9a-f]{11}", name) for name in cali.values())
    assert len(set(cali.values())) == 4
    assert LabNames.cali(W) == LabNames.cali(W)


@pytest.mark.parametrize("prefix", ["", "VX", "1vx", "vx-a", "a" * 13, "vx t"])
def test_a_prefix_that_cannot_name_namespaces_is_refused(k01, prefix):
    with pytest.raises(InputError, match="prefix"):
        LabNames.for_spec(k01, prefix)


def test_adopted_node_uses_the_given_namespace_and_is_never_owned(k01):
    names = LabNames.for_spec(k01, "vxt", {W3: "kind-w3"})
    assert names.node(W3) == "kind-w3" and names.is_adopted(W3)
    assert "kind-w3" not in names.owned(k01)
    assert names.pod(W3) in names.owned(k01)
    with pytest.raises(InputError, match="unknown node 'k01-nope'"):
        LabNames.for_spec(k01, "vxt", {"k01-nope": "x"})


# --- what gets built ------------------------------------------------------------------


def test_it_starts_by_creating_exactly_its_own_namespaces(k01, names, steps):
    created = [s.argv[3] for s in steps if s.argv[:3] == ("ip", "netns", "add")]
    assert sorted(created) == sorted(
        ["vxt-k01-switch"] + [f"vxt-{n}" for n in (CP, W, W2, W3)] + [f"vxt-{n}-pod" for n in (CP, W, W2, W3)]
    )
    assert all(s.netns is not None for s in steps if s.argv[:3] != ("ip", "netns", "add"))
    assert {s.netns for s in steps} - {None} <= set(created)


def test_every_namespace_exists_before_a_command_runs_in_it_or_moves_a_device_there(steps):
    made: set[str] = set()
    for step in steps:
        if step.argv[:3] == ("ip", "netns", "add"):
            made.add(step.argv[3])
            continue
        assert step.netns in made, step
        if "netns" in step.argv:
            assert step.argv[step.argv.index("netns") + 1] in made, step


def test_a_device_is_made_before_it_is_configured(steps):
    """eth1 comes from the switch, eth0 from the node; each is configured only after."""
    index = {i: s for i, s in enumerate(steps)}
    first_make = {}
    for i, s in index.items():
        if s.argv[1:3] == ("link", "add"):
            peer_ns = s.argv[s.argv.index("netns") + 1] if "netns" in s.argv else s.netns
            if "peer" in s.argv:
                first_make.setdefault((peer_ns, s.argv[s.argv.index("peer") + 2]), i)
            first_make.setdefault((s.netns, s.argv[3]), i)
    for i, s in index.items():
        if "dev" in s.argv and s.argv[0] in ("ip", "bridge"):
            dev = s.argv[s.argv.index("dev") + 1]
            if dev != "lo":
                assert first_make.get((s.netns, dev), 10**9) < i, s
        if s.argv[0] == "sysctl":
            for assignment in s.argv:
                match = re.match(r"net\.ipv4\.(?:conf|neigh)\.(cali\w+)\.", assignment)
                if match:
                    assert first_make[(s.netns, match.group(1))] < i, s


def test_the_switch_has_one_bridge_per_subnet_with_the_gateway_and_forwards(steps):
    sw = in_ns(steps, "vxt-k01-switch", "ip")
    assert ("ip", "addr", "add", "10.10.10.1/24", "dev", "vlan10") in sw
    assert ("ip", "addr", "add", "10.10.20.1/24", "dev", "vlan20") in sw
    ports = {argv[3]: argv[argv.index("master") + 1] for argv in sw if argv[1:3] == ("link", "add") and "veth" in argv}
    assert ports == {"et1": "vlan10", "et2": "vlan10", "et3": "vlan10", "et4": "vlan20"}
    assert any("net.ipv4.ip_forward=1" in argv for argv in in_ns(steps, "vxt-k01-switch", "sysctl"))


@pytest.mark.parametrize("node", [W, W2, W3])
def test_each_node_gets_the_routes_the_lesson_shows(steps, node):
    for line in LESSON_ROUTES[node]:
        assert has_route(steps, f"vxt-{node}", line), line


def test_worker3_gets_the_lessons_permanent_neighbours_and_fdb(steps):
    neigh = [" ".join(argv[3:]) for argv in in_ns(steps, "vxt-k01-worker3", "ip") if argv[1:3] == ("neigh", "add")]
    for line in LESSON_NEIGH_W3:
        ip_, _dev, dev, _ll, mac, _ = line.split()
        assert f"{ip_} lladdr {mac} dev {dev} nud permanent" in neigh
    fdb = [" ".join(argv[3:]) for argv in in_ns(steps, "vxt-k01-worker3", "bridge")]
    assert LESSON_FDB_W3 in fdb
    assert len(fdb) == 3


def test_vxlan_calico_is_calicos_device(steps):
    (vx,) = [a for a in in_ns(steps, "vxt-k01-worker", "ip") if a[1:4] == ("link", "add", "vxlan.calico")]
    opts = dict(zip(vx[4::2], vx[5::2], strict=False))
    assert opts["address"] == "66:fb:ad:98:aa:13" and opts["mtu"] == "1450"
    text = " ".join(vx)
    assert "type vxlan id 4096 dstport 4789 local 10.10.10.11 dev eth1 nolearning" in text
    assert ("ip", "addr", "add", "192.168.81.64/32", "dev", "vxlan.calico") in in_ns(steps, "vxt-k01-worker")


def test_same_subnet_nodes_get_no_vxlan_state_for_each_other(steps):
    worker = in_ns(steps, "vxt-k01-worker")
    assert not any("66:c7:4d:6e:6b:f3" in argv for argv in worker)  # worker2's VTEP MAC
    assert not any("192.168.164.128" in argv and "vxlan.calico" in argv for argv in worker)


def test_the_pod_is_wired_like_a_calico_pod(steps, names):
    pod = in_ns(steps, "vxt-k01-worker-pod", "ip")
    assert ("ip", "addr", "add", "192.168.81.65/32", "dev", "eth0") in pod
    assert ("ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link") in pod
    assert ("ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0") in pod
    cali = names.cali(W)
    node = in_ns(steps, "vxt-k01-worker")
    assert ("ip", "route", "add", "192.168.81.65", "dev", cali, "scope", "link") in node
    (veth,) = [a for a in node if a[1:4] == ("link", "add", cali)]
    assert veth[veth.index("peer"):] == ("peer", "name", "eth0", "mtu", "1450", "netns", "vxt-k01-worker-pod")
    sysctls = [a for argv in in_ns(steps, "vxt-k01-worker", "sysctl") for a in argv]
    assert f"net.ipv4.conf.{cali}.proxy_arp=1" in sysctls


def test_the_lab_is_sealed_only_pods_have_a_default_route(steps):
    for step in steps:
        if step.argv[1:3] == ("route", "add") and "default" in step.argv:
            assert step.netns.endswith("-pod"), step
            assert step.argv[step.argv.index("via") + 1] == "169.254.1.1"


def test_proxy_arp_has_a_route_for_the_pod_gateway_out_of_another_device(steps, names):
    """Without a unicast route to 169.254.1.1 via another device the node never answers the pod's ARP."""
    node = in_ns(steps, "vxt-k01-worker", "ip")
    (route,) = [a for a in node if a[1:4] == ("route", "add", "169.254.1.1/32")]
    dev = route[route.index("dev") + 1]
    assert dev != names.cali(W)
    assert ("ip", "link", "add", dev, "type", "bridge") in node  # a bridge with no port: it goes nowhere


def test_mode_always_encapsulates_towards_every_node(k01):
    spec = replace(k01, topology=replace(k01.topology, overlay=replace(k01.topology.overlay, mode=Mode.ALWAYS)))
    steps = lab_steps(spec, LabNames.for_spec(spec, "vxt"))
    assert has_route(steps, "vxt-k01-worker", "192.168.164.128/26 via 192.168.164.128 dev vxlan.calico onlink")
    assert len(in_ns(steps, "vxt-k01-worker", "bridge")) == 3


def test_an_overlay_mtu_of_auto_cannot_be_built(k01):
    spec = replace(k01, topology=replace(k01.topology, overlay=replace(k01.topology.overlay, mtu=None)))
    with pytest.raises(InputError, match="overlay.mtu"):
        lab_steps(spec, LabNames.for_spec(spec, "vxt"))


def test_an_adopted_node_is_neither_created_nor_reconfigured_beyond_forwarding(k01):
    names = LabNames.for_spec(k01, "vxt", {W3: "kind-w3"})
    steps = lab_steps(k01, names)
    assert ("ip", "netns", "add", "kind-w3") not in [s.argv for s in steps]
    cali = names.cali(W3)
    assignments = {a for argv in in_ns(steps, "kind-w3", "sysctl") for a in argv if "=" in a}
    assert assignments == {"net.ipv4.ip_forward=1", f"net.ipv4.conf.{cali}.proxy_arp=1", f"net.ipv4.neigh.{cali}.proxy_delay=0"}
    assert has_route(steps, "kind-w3", "blackhole 192.168.209.64/26 proto 80")


def test_teardown_of_an_adopted_node_removes_only_what_the_lab_added(k01):
    names = LabNames.for_spec(k01, "vxt", {W3: "kind-w3"})
    teardown = adopted_teardown_steps(k01, names)
    assert {s.netns for s in teardown} == {"kind-w3", "vxt-k01-switch"}
    assert Step("vxt-k01-switch", ("ip", "link", "del", "et4")) in teardown  # worker3's port takes eth1 along
    deleted = {s.argv[3] for s in teardown if s.netns == "kind-w3" and s.argv[1:3] == ("link", "del")}
    assert deleted == {"vxlan.calico", "vxcap.nowhere", names.cali(W3)}
    assert adopted_teardown_steps(k01, LabNames.for_spec(k01, "vxt")) == []


# --- health checks ------------------------------------------------------------------


def link(name, mtu, flags=("BROADCAST", "MULTICAST", "UP", "LOWER_UP"), address=None, addrs=(), kind=None, data=None):
    entry = {"ifname": name, "mtu": mtu, "flags": list(flags), "address": address or "02:00:00:00:00:01",
             "addr_info": [{"family": "inet", "local": a, "prefixlen": p} for a, p in addrs]}
    if kind:
        entry["linkinfo"] = {"info_kind": kind, "info_data": data or {}}
    return entry


def worker_dump(names):
    """What `ip -j` says on a healthy k01-worker, written out by hand."""
    cali = names.cali(W)
    return NodeDump(
        links=[
            link("lo", 65536, ("LOOPBACK", "UP", "LOWER_UP")),
            link("eth1", 1500, addrs=[("10.10.10.11", 24)], kind="veth"),
            link("vxlan.calico", 1450, address="66:fb:ad:98:aa:13", addrs=[("192.168.81.64", 32)], kind="vxlan",
                 data={"id": 4096, "local": "10.10.10.11", "port": 4789}),
            link(cali, 1450, address="ee:ee:ee:ee:ee:ee", kind="veth"),
        ],
        routes=[
            {"dst": "10.10.10.0/24", "dev": "eth1", "protocol": "kernel", "scope": "link", "prefsrc": "10.10.10.11"},
            {"dst": "10.10.20.0/24", "gateway": "10.10.10.1", "dev": "eth1"},
            {"dst": "192.168.23.64/26", "gateway": "10.10.10.10", "dev": "eth1", "protocol": "80", "flags": ["onlink"]},
            {"type": "blackhole", "dst": "192.168.81.64/26", "protocol": "80", "flags": []},
            {"dst": "192.168.81.65", "dev": cali, "scope": "link", "flags": []},
            {"dst": "192.168.164.128/26", "gateway": "10.10.10.12", "dev": "eth1", "protocol": "80", "flags": ["onlink"]},
            {"dst": "192.168.209.64/26", "gateway": "192.168.209.64", "dev": "vxlan.calico", "flags": ["onlink"]},
        ],
        fdb=[{"mac": "66:d2:0c:f0:ef:e5", "ifname": "vxlan.calico", "dst": "10.10.20.13",
              "flags": ["self"], "state": "permanent"}],
        pod_links=[link("lo", 65536, ("LOOPBACK", "UP", "LOWER_UP")), link("eth0", 1450, addrs=[("192.168.81.65", 32)])],
        pod_routes=[{"dst": "default", "gateway": "169.254.1.1", "dev": "eth0", "flags": []},
                    {"dst": "169.254.1.1", "dev": "eth0", "scope": "link", "flags": []}],
    )


def failing(checks):
    return {c.name: c.detail for c in checks if not c.ok}


def test_a_healthy_node_passes_every_check(k01, names):
    checks = node_checks(k01, names, W, worker_dump(names))
    assert failing(checks) == {}
    assert {"eth1", "vxlan.calico", "route 192.168.209.64/26", "fdb 66:d2:0c:f0:ef:e5", "pod eth0", "pod default"} <= {
        c.name for c in checks}


def test_a_wrong_vni_fails_the_vxlan_check_and_says_both_values(k01, names):
    dump = copy.deepcopy(worker_dump(names))
    dump.links[2]["linkinfo"]["info_data"]["id"] = 4097
    assert failing(node_checks(k01, names, W, dump)) == {"vxlan.calico": "id=4097 (want 4096)"}


@pytest.mark.parametrize(
    ("breakage", "check"),
    [
        (lambda d: d.fdb.clear(), "fdb 66:d2:0c:f0:ef:e5"),
        (lambda d: d.routes[6].update(gateway="10.10.10.1", dev="eth1"), "route 192.168.209.64/26"),
        (lambda d: d.routes.pop(3), "blackhole 192.168.81.64/26"),
        (lambda d: d.links[1]["flags"].remove("LOWER_UP"), "eth1"),
        (lambda d: d.links[1]["addr_info"].clear(), "eth1"),
        (lambda d: d.links.pop(2), "vxlan.calico"),
        (lambda d: d.pod_links[1].update(mtu=1000), "pod eth0"),
        (lambda d: d.pod_routes.pop(0), "pod default"),
    ],
)
def test_each_broken_part_is_named(k01, names, breakage, check):
    dump = copy.deepcopy(worker_dump(names))
    breakage(dump)
    assert list(failing(node_checks(k01, names, W, dump))) == [check]


def test_lab_status_is_healthy_only_when_everything_is_there():
    good = NodeStatus(W, ())
    there = (NamespaceStatus("vxt-k01-switch", "switch", True),)
    assert LabStatus("vxt", there, (good,)).healthy
    assert not LabStatus("vxt", (NamespaceStatus("vxt-k01-switch", "switch", False),), (good,)).healthy
    assert not LabStatus("vxt", there, ()).healthy
    status = LabStatus("vxt", there, (good,))
    assert status.to_dict()["namespaces"] == [{"name": "vxt-k01-switch", "role": "switch", "exists": True, "adopted": False}]
    assert status.exists
    assert not LabStatus("vxt", (NamespaceStatus("kind-w3", "node", True, adopted=True),), ()).exists


def test_a_large_generated_lab_pins_every_neighbour_arp_would_learn():
    """The kernel's neighbour table is shared by all namespaces and holds 1024 learnt entries:
    a 256-node lab writes its neighbours PERMANENT (not counted), with the MACs it gave the links."""
    from vxcap.core.lab.gen import generate_lab
    from vxcap.core.lab.plan import lab_mac
    from vxcap.core.lab.spec import lab_from_dict

    small, large = lab_from_dict(generate_lab(16, 4)), lab_from_dict(generate_lab(64, 8))
    assert not small.static_neighbours and large.static_neighbours
    assert not [s for s in lab_steps(small, LabNames.for_spec(small, "vxt")) if s.argv[1:2] == ("neigh",)
                and "permanent" in s.argv and "vxlan.calico" not in s.argv]
    names = LabNames.for_spec(large, "vxt")
    steps = lab_steps(large, names)
    node = large.topology.node("k01-worker9")  # 10.10.20.x, with k01-worker8 .. k01-worker15
    pinned = {(s.argv[3], s.argv[5], s.argv[7]) for s in steps
              if s.netns == names.node(node.name) and s.argv[1:3] == ("neigh", "replace")}
    same_subnet = {n for n in large.topology.nodes if n.address in node.subnet and n.name != node.name}
    assert {(str(n.address), lab_mac(n.name, "eth1"), "eth1") for n in same_subnet} | {
        ("10.10.20.1", lab_mac(names.switch, "vlan20"), "eth1"),
        (str(large.pod_on(node.name).ip), lab_mac(names.pod(node.name), "eth0"), names.cali(node.name)),
    } == pinned
    links = [s for s in steps if s.argv[1:3] == ("link", "add")]
    assert any(lab_mac(node.name, "eth1") in s.argv and s.netns == names.switch for s in links)
    assert any(lab_mac(names.pod(node.name), "eth0") in s.argv for s in links)
    assert any(lab_mac(names.switch, "vlan20") in s.argv for s in links)
    pod = [s.argv for s in steps if s.netns == names.pod(node.name) and s.argv[1:2] == ("neigh",)]
    assert pod == [("ip", "neigh", "replace", "169.254.1.1", "lladdr", "ee:ee:ee:ee:ee:ee", "dev", "eth0", "nud", "permanent")]
