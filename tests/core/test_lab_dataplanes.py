"""The lab's other data planes as data: the IPv6 description, the steps per data plane,
the status checks, `wg show dump` and the fault twins. Pure (no namespaces)."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

import pytest
import yaml

from tests.lab_support import LAB_FILE, dataplane_spec, k01_spec
from vxcap.core.errors import InputError
from vxcap.core.lab import dataplanes
from vxcap.core.lab.faults import (
    Fdb6WrongNode,
    IpipAsVxlan,
    IpipPlain,
    IpipWrongNode,
    Vxlan6Ipv4Mtu,
    Vxlan6SameSubnet,
    Wireguard6Plaintext,
    WireguardPlaintext,
    fault_steps,
)
from vxcap.core.lab.gen import generate_lab, with_overlay
from vxcap.core.lab.plan import LabNames, NodeDump, lab_steps, node_checks
from vxcap.core.lab.spec import lab_from_dict

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"


def names_for(spec):
    return LabNames.for_spec(spec, "vxt")


def argvs(steps, ns=None):
    return [" ".join(s.argv) for s in steps if ns is None or s.netns == ns]


# --- the description ------------------------------------------------------------------------


def test_the_reference_lab_is_unchanged_by_the_vxlan_overlay():
    data = yaml.safe_load(LAB_FILE.read_text())
    assert with_overlay(data, "vxlan") is data
    assert lab_steps(lab_from_dict(data), names_for(k01_spec())) == lab_steps(k01_spec(), names_for(k01_spec()))
    assert k01_spec().dataplane == "vxlan" and k01_spec().pod_mtu == 1450


def test_ipv6_addresses_are_written_out_and_keep_the_ipv4_they_stand_for():
    data = with_overlay(yaml.safe_load(LAB_FILE.read_text()), "vxlan6")
    w3 = next(n for n in data["nodes"] if n["name"] == W3)
    assert (w3["address6"], w3["block6"]) == ("fd00:10:10:20::13/64", "fd19:2168::c0a8:d140/122")
    assert data["subnets"][1]["cidr6"] == "fd00:10:10:20::/64" and data["subnets"][1]["gateway6"] == "fd00:10:10:20::1"
    spec = lab_from_dict(data)
    assert spec.node6(W3).pod_ip == IPv6Address("fd19:2168::c0a8:d141")
    assert all(IPv6Network("fd00::/8").supernet_of(n.block) and n.block.prefixlen == 122 for n in spec.nodes6)
    assert len({n.vtep_mac for n in spec.nodes6} | {n.vtep_mac for n in spec.topology.nodes}) == 8


@pytest.mark.parametrize("overlay, v4, v6, mtu", [
    ("vxlan6", None, True, 1430), ("dual", "vxlan", True, 1430),
    ("wireguard", "wireguard", False, 1440), ("ipip", "ipip", False, 1480), ("wireguard6", None, True, 1420),
    ("wireguard-dual", "wireguard", True, 1420),
])
def test_each_overlay_says_what_carries_each_family_and_the_pods_mtu(overlay, v4, v6, mtu):
    spec = dataplane_spec(overlay)
    assert (spec.ipv4_encap, spec.has_ipv6, spec.pod_mtu) == (v4, v6, mtu)
    described = spec.describe()
    assert described["dataplane"] == overlay and described["pod_mtu"] == mtu
    node = next(n for n in described["nodes"] if n["name"] == W3)
    assert ("ipv4" in node) == (v4 is not None) and ("ipv6" in node) == v6
    yaml.safe_dump(described)  # plain data all the way down


def test_generated_labs_take_an_overlay_too():
    spec = lab_from_dict(with_overlay(generate_lab(6, 2), "dual"))
    assert len(spec.nodes6) == 6 and len(spec.subnets6) == 2
    assert len(lab_steps(spec, names_for(spec))) > len(lab_steps(lab_from_dict(generate_lab(6, 2)), names_for(spec)))


def test_unknown_overlay_and_missing_ipv6_fields_are_refused_plainly():
    data = yaml.safe_load(LAB_FILE.read_text())
    with pytest.raises(InputError, match="--overlay 'geneve'"):
        with_overlay(data, "geneve")
    broken = with_overlay(data, "vxlan6")
    del broken["nodes"][2]["block6"]
    with pytest.raises(InputError, match=r"nodes\[2\]\.block6 is missing"):
        lab_from_dict(broken)
    with pytest.raises(InputError, match="dataplane.overlay 'gre'"):
        lab_from_dict({**data, "dataplane": {"overlay": "gre"}})


# --- steps ----------------------------------------------------------------------------------


def test_vxlan6_steps_are_calicos_device_and_crosssubnet_routes():
    spec = dataplane_spec("vxlan6")
    steps = argvs(lab_steps(spec, names_for(spec)), "vxt-k01-worker")
    w3 = spec.node6(W3)
    assert (f"ip link add vxlan-v6.calico address {spec.node6(W).vtep_mac} mtu 1430 type vxlan id 4096 dstport 4789 "
            f"local fd00:10:10:10::11 dev eth1 nolearning") in steps
    assert f"ip route add {w3.block} via {w3.vtep_ip} dev vxlan-v6.calico onlink" in steps
    assert f"ip neigh add {w3.vtep_ip} lladdr {w3.vtep_mac} dev vxlan-v6.calico nud permanent" in steps
    assert f"bridge fdb add {w3.vtep_mac} dev vxlan-v6.calico dst fd00:10:10:20::13 self permanent" in steps
    w2 = spec.node6(W2)
    assert f"ip route add {w2.block} via fd00:10:10:10::12 dev eth1 onlink proto 80" in steps
    assert not any(str(w2.vtep_mac) in s for s in steps)
    # IPv6 only: no IPv4 on eth1, no vxlan.calico.
    assert not any("10.10.10.11/24" in s or "vxlan.calico" in s for s in steps)


def test_ipv6_is_switched_on_before_any_interface_is_made():
    spec = dataplane_spec("dual")
    steps = lab_steps(spec, names_for(spec))
    first_link = next(i for i, s in enumerate(steps) if s.argv[:3] == ("ip", "link", "add"))
    sysctls = [i for i, s in enumerate(steps) if s.argv[0] == "sysctl" and "net.ipv6.conf.default.accept_dad=0" in s.argv]
    assert len(sysctls) == 1 + 4 + 4 and max(sysctls) < first_link


def test_wireguard_peers_are_the_other_nodes_at_their_underlay_with_their_blocks():
    spec = dataplane_spec("wireguard")
    w = spec.topology.node(W)
    keys = {n.name: f"key-{n.name}" for n in spec.topology.nodes}
    argv = dataplanes.wg_set_argv(spec, w, "/dev/stdin", keys)
    assert argv[:7] == ("wg", "set", "wireguard.cali", "listen-port", "51820", "private-key", "/dev/stdin")
    assert "key-k01-worker" not in argv
    i = argv.index("key-k01-worker3")
    assert argv[i:i + 5] == ("key-k01-worker3", "endpoint", "10.10.20.13:51820", "allowed-ips",
                             "192.168.209.64/26,192.168.209.64/32")
    links = argvs(dataplanes.wireguard_link_steps(spec, names_for(spec), w))
    assert "ip link set wireguard.cali mtu 1440" in links
    assert "ip route add 192.168.164.128/26 dev wireguard.cali scope link proto 80" in links  # same subnet too
    assert not any("vxlan" in s for s in argvs(lab_steps(spec, names_for(spec))))


def test_wireguard6_peers_are_the_other_nodes_at_their_ipv6_underlay_with_their_ipv6_blocks():
    from vxcap.core.lab.encap_topology import lab_topology

    spec = dataplane_spec("wireguard6")
    w = spec.topology.node(W)
    keys = {n.name: f"key-{n.name}" for n in spec.topology.nodes}
    argv = dataplanes.wg6_set_argv(spec, w, "/dev/stdin", keys)
    assert argv[:7] == ("wg", "set", "wg-v6.cali", "listen-port", "51821", "private-key", "/dev/stdin")
    assert "key-k01-worker" not in argv
    i = argv.index("key-k01-worker3")
    assert argv[i:i + 5] == ("key-k01-worker3", "endpoint", "[fd00:10:10:20::13]:51821", "allowed-ips",
                             "fd19:2168::c0a8:d140/122,fd19:2168::c0a8:d140/128")
    links = argvs(dataplanes.wireguard6_link_steps(spec, names_for(spec), w))
    assert "ip link set wg-v6.cali mtu 1420" in links
    assert "ip route add fd19:2168::c0a8:a480/122 dev wg-v6.cali proto 80" in links  # same subnet too
    built = argvs(lab_steps(spec, names_for(spec)))
    assert not any("vxlan" in s or "wireguard.cali" in s for s in built)
    overlay = lab_topology(spec).overlay
    assert (overlay.ipv4, overlay.wireguard, overlay.wireguard6, overlay.wireguard_port6) == (False, False, True, 51821)
    assert spec.describe()["wireguard6"] == {"device": "wg-v6.cali", "port": 51821, "mtu": 1420}


def test_wireguard_dual_is_both_devices_and_both_families_in_the_model():
    from vxcap.core.lab.encap_topology import lab_topology

    spec = dataplane_spec("wireguard-dual")
    assert (spec.ipv4_encap, spec.ipv6_encap) == ("wireguard", "wireguard")
    overlay = lab_topology(spec).overlay
    assert (overlay.ipv4, overlay.wireguard, overlay.wireguard6) == (True, True, True)
    assert (overlay.wireguard_port, overlay.wireguard_port6) == (51820, 51821)
    described = spec.describe()
    assert described["wireguard"]["port"] == 51820 and described["wireguard6"]["port"] == 51821
    assert not any("vxlan" in s for s in argvs(lab_steps(spec, names_for(spec))))


def test_wireguard6_plaintext_routes_the_ipv6_block_around_wg_v6_cali():
    spec = dataplane_spec("wireguard6")
    steps = argvs(fault_steps(spec, names_for(spec), Wireguard6Plaintext(W, W3)))
    assert steps == ["ip route replace fd19:2168::c0a8:d140/122 via fd00:10:10:10::1 dev eth1 onlink proto 80"]
    with pytest.raises(InputError, match="IPv6 WireGuard"):
        fault_steps(dataplane_spec("wireguard"), names_for(spec), Wireguard6Plaintext(W, W3))


def test_ipip_steps_use_tunl0_across_subnets_and_eth1_within():
    spec = dataplane_spec("ipip")
    names = names_for(spec)
    steps = argvs(lab_steps(spec, names), "vxt-k01-worker")
    assert "ip route add 192.168.164.128/26 via 10.10.10.12 dev eth1 onlink proto 80" in steps
    # tunl0's own steps come once the ipip module or the userspace forwarder has made the device.
    assert not [s for s in steps if "tunl0" in s]
    tunl0 = argvs(dataplanes.ipip_steps(spec, names, spec.topology.node(W)), "vxt-k01-worker")
    assert tunl0[:2] == ["ip link set tunl0 mtu 1480 up", "ip addr add 192.168.81.64/32 dev tunl0"]
    assert "ip route add 192.168.209.64/26 via 10.10.20.13 dev tunl0 onlink proto 80" in tunl0
    assert not [s for s in tunl0 if "192.168.164.128/26" in s]  # worker2 shares the subnet: plain
    assert dataplanes.ipip_forwarder_args(spec.topology.node(W)) == ("--local", "10.10.10.11")


def test_ipip_mode_always_puts_every_peer_behind_tunl0():
    spec = lab_from_dict(with_overlay(yaml.safe_load(LAB_FILE.read_text()), "ipip", "Always"))
    names = names_for(spec)
    tunl0 = argvs(dataplanes.ipip_steps(spec, names, spec.topology.node(W)), "vxt-k01-worker")
    assert "ip route add 192.168.164.128/26 via 10.10.10.12 dev tunl0 onlink proto 80" in tunl0
    assert not [s for s in argvs(lab_steps(spec, names), "vxt-k01-worker") if "192.168.164.128/26" in s]


def test_ipip_faults_change_one_route_or_add_one_vxlan_path():
    spec = dataplane_spec("ipip")
    names = names_for(spec)
    (plain,) = argvs(fault_steps(spec, names, IpipPlain(W, W3)))
    assert plain == "ip route replace 192.168.209.64/26 via 10.10.10.1 dev eth1 onlink proto 80"
    (wrong,) = argvs(fault_steps(spec, names, IpipWrongNode(W, W3, CP)))
    assert wrong == "ip route replace 192.168.209.64/26 via 10.10.10.10 dev tunl0 onlink proto 80"
    vxlan = argvs(fault_steps(spec, names, IpipAsVxlan(W, W3)))
    assert any(" type vxlan id 4096 dstport 4789 local 10.10.10.11 " in s for s in vxlan)
    assert any(" type vxlan id 4096 dstport 4789 local 10.10.20.13 " in s for s in vxlan)
    assert vxlan[-1] == (f"ip route replace 192.168.209.64/26 via {spec.topology.node(W3).vtep_ip} dev vxlan.calico "
                         "onlink proto 80")
    with pytest.raises(InputError, match="sends plain to k01-worker2"):
        fault_steps(spec, names, IpipPlain(W, W2))  # CrossSubnet: one subnet is plain already
    with pytest.raises(InputError, match="needs a lab with IPIP"):
        fault_steps(dataplane_spec("vxlan6"), names, IpipWrongNode(W, W3, CP))


# --- checks ---------------------------------------------------------------------------------


WG_DUMP = ("PRIV\tPUBW\t51820\toff\n"
           "PUBCP\t(none)\t10.10.10.10:51820\t192.168.23.64/26,192.168.23.64/32\t0\t0\t0\toff\n"
           "PUBW2\t(none)\t10.10.10.12:51820\t192.168.164.128/26,192.168.164.128/32\t0\t0\t0\toff\n"
           "PUBW3\t(none)\t10.10.20.13:51820\t192.168.209.64/32\t0\t0\t0\toff\n")


def test_wg_dump_is_read_and_a_peer_missing_its_block_is_named():
    wg = dataplanes.parse_wg_dump(WG_DUMP)
    assert wg["listen_port"] == 51820 and wg["public_key"] == "PUBW" and len(wg["peers"]) == 3
    spec = dataplane_spec("wireguard")
    links = [{"ifname": "wireguard.cali", "flags": ["UP"], "mtu": 1440,
              "addr_info": [{"family": "inet", "local": "192.168.81.64", "prefixlen": 32}]}]
    routes = [{"dst": str(n.block), "dev": "wireguard.cali"} for n in spec.topology.nodes if n.name != W]
    checks = {c.name: c for c in dataplanes.wireguard_checks(spec, W, links, routes, wg,
                                                             {CP: "PUBCP", W2: "OTHER", W3: "PUBW3"})}
    assert checks["wireguard.cali"].ok and checks["wg listen-port"].ok and checks["wg peer k01-control-plane"].ok
    assert "allowed-ips 192.168.209.64/32" in checks["wg peer k01-worker3"].detail
    assert "is not k01-worker2's" in checks["wg peer k01-worker2"].detail
    assert not dataplanes.wireguard_checks(spec, W, [], routes, wg)[0].ok


def test_an_ipv6_lab_with_nothing_built_fails_every_ipv6_check():
    spec = dataplane_spec("vxlan6")
    dump = NodeDump(links=[], routes=[], fdb=[], pod_links=[], pod_routes=[])
    checks = node_checks(spec, names_for(spec), W, dump)
    failed = {c.name for c in checks if not c.ok}
    assert {"vxlan-v6.calico", "eth1 IPv6", "pod eth0 IPv6", "pod default IPv6", f"fdb6 {spec.node6(W3).vtep_mac}"} <= failed
    assert "vxlan.calico" not in {c.name for c in checks}


# --- faults ---------------------------------------------------------------------------------


def test_ipv6_faults_change_one_thing_each():
    spec = dataplane_spec("vxlan6")
    names = names_for(spec)
    (fdb,) = argvs(fault_steps(spec, names, Fdb6WrongNode(W3, W, CP)))
    assert fdb == f"bridge fdb replace {spec.node6(W).vtep_mac} dev vxlan-v6.calico dst fd00:10:10:10::10 self permanent"
    same = argvs(fault_steps(spec, names, Vxlan6SameSubnet(W, W2)))
    assert same[1] == f"ip route replace {spec.node6(W2).block} via {spec.node6(W2).vtep_ip} dev vxlan-v6.calico onlink"
    mtu = argvs(fault_steps(spec, names, Vxlan6Ipv4Mtu(W)))
    assert "ip link set eth0 mtu 1450" in mtu and any(" mtu 1450 type vxlan " in s for s in mtu)


def test_faults_refuse_the_wrong_lab_or_pair():
    v6, wg = dataplane_spec("vxlan6"), dataplane_spec("wireguard")
    with pytest.raises(InputError, match="already sends IPv6 VXLAN"):
        fault_steps(v6, names_for(v6), Vxlan6SameSubnet(W, W3))
    with pytest.raises(InputError, match="sends plain IPv6"):
        fault_steps(v6, names_for(v6), Fdb6WrongNode(W, W2, CP))
    with pytest.raises(InputError, match="needs a lab with WireGuard"):
        fault_steps(v6, names_for(v6), WireguardPlaintext(W, W2))
    with pytest.raises(InputError, match="needs a lab with IPv6 VXLAN"):
        fault_steps(wg, names_for(wg), Vxlan6Ipv4Mtu(W))
    (leak,) = argvs(fault_steps(wg, names_for(wg), WireguardPlaintext(W, W3)))
    assert leak == "ip route replace 192.168.209.64/26 via 10.10.10.1 dev eth1 onlink proto 80"
