"""Explanations from tables shaped as `ip -j` and `bridge -j` print them on a lab node
(the entries below were copied from a real run's k01-worker-eth1.*.json)."""

import json

from vxcap.core.explain import describe_route, explain, node_tables, route_to
from ipaddress import IPv4Address

ROUTES = [
    {"dst": "10.10.10.0/24", "dev": "eth1", "protocol": "kernel", "scope": "link", "prefsrc": "10.10.10.11", "flags": []},
    {"dst": "10.10.20.0/24", "gateway": "10.10.10.1", "dev": "eth1", "flags": []},
    {"dst": "192.168.23.64/26", "gateway": "10.10.10.10", "dev": "eth1", "protocol": "80", "flags": ["onlink"]},
    {"type": "blackhole", "dst": "192.168.81.64/26", "protocol": "80", "flags": []},
    {"dst": "192.168.81.65", "dev": "califbad98aa135", "scope": "link", "flags": []},
    {"dst": "192.168.164.128/26", "gateway": "10.10.10.12", "dev": "eth1", "protocol": "80", "flags": ["onlink"]},
    {"dst": "192.168.209.64", "dev": "vxlan.calico", "scope": "link", "flags": []},
    {"dst": "192.168.209.64/26", "gateway": "192.168.209.64", "dev": "vxlan.calico", "flags": ["onlink"]},
]
NEIGH = [{"dst": "192.168.209.64", "dev": "vxlan.calico", "lladdr": "66:d2:0c:f0:ef:e5", "state": ["PERMANENT"]}]
FDB = [
    {"mac": "33:33:00:00:00:01", "ifname": "eth1", "flags": ["self"], "state": "permanent"},
    {"mac": "66:d2:0c:f0:ef:e5", "ifname": "vxlan.calico", "dst": "10.10.10.12", "flags": ["self"], "state": "permanent"},
]
LINKS = [{"ifname": "vxlan.calico", "mtu": 1450, "linkinfo": {"info_kind": "vxlan", "info_data": {"id": 4097, "port": 4789}}}]


def tables(**overrides):
    texts = {"route.json": ROUTES, "neigh.json": NEIGH, "fdb.json": FDB, "link.json": LINKS}
    texts.update(overrides)
    return node_tables({name: json.dumps(value) for name, value in texts.items()})


def test_longest_prefix_wins():
    assert route_to(ROUTES, IPv4Address("192.168.209.65"))["gateway"] == "192.168.209.64"
    assert route_to(ROUTES, IPv4Address("192.168.209.64"))["dst"] == "192.168.209.64"
    assert route_to(ROUTES, IPv4Address("8.8.8.8")) is None


def test_route_sentences():
    assert describe_route(ROUTES[2]) == "192.168.23.64/26 via 10.10.10.10 dev eth1 onlink"
    assert describe_route(ROUTES[3]) == "blackhole 192.168.81.64/26"


def test_the_vxlan_chain_names_the_fdb_entry_and_the_device():
    lines = explain("k01-worker", tables(), "192.168.209.65")
    assert lines == [
        "k01-worker routes 192.168.209.65 by `192.168.209.64/26 via 192.168.209.64 dev vxlan.calico onlink`",
        "k01-worker: neighbour 192.168.209.64 is 66:d2:0c:f0:ef:e5; its FDB entry sends 66:d2:0c:f0:ef:e5 to 10.10.10.12",
        "k01-worker: vxlan.calico encapsulates with VNI 4097, UDP port 4789, MTU 1450",
    ]


def test_a_plain_route_stops_at_the_route():
    assert explain("k01-worker", tables(), "192.168.164.129") == [
        "k01-worker routes 192.168.164.129 by `192.168.164.128/26 via 10.10.10.12 dev eth1 onlink`"]


def test_missing_links_in_the_chain_are_said():
    assert explain("k01-worker", tables(**{"neigh.json": []}), "192.168.209.65")[1] == (
        "k01-worker has no neighbour entry for 192.168.209.64 on vxlan.calico")
    assert explain("k01-worker", tables(**{"fdb.json": []}), "192.168.209.65")[1].endswith(
        "no FDB entry for 66:d2:0c:f0:ef:e5")


def test_no_tables_no_words():
    assert explain("n", node_tables({}), "192.168.209.65") == []
    assert explain("n", node_tables({"route.json": "not json"}), "192.168.209.65") == []


def test_flannels_vtep_is_followed_like_calicos():
    """A Flannel node's tables (flannel.2 after a wrong-VNI fault, as `vxcap run --lab --cni flannel` saved them)."""
    flannel = tables(**{
        "route.json": [{"dst": "10.244.1.0/24", "gateway": "10.244.1.0", "dev": "flannel.2", "flags": ["onlink"]},
                       {"dst": "10.244.2.0/24", "gateway": "10.10.10.12", "dev": "eth1", "flags": []}],
        "neigh.json": [{"dst": "10.244.1.0", "dev": "flannel.2", "lladdr": "66:fb:ad:98:aa:13", "state": ["PERMANENT"]}],
        "fdb.json": [{"mac": "66:fb:ad:98:aa:13", "ifname": "flannel.2", "dst": "10.10.10.11", "flags": ["self"],
                      "state": "permanent"}],
        "link.json": [{"ifname": "eth1", "mtu": 1500, "linkinfo": {"info_kind": "veth"}},
                      {"ifname": "flannel.2", "mtu": 1450, "linkinfo": {"info_kind": "vxlan",
                                                                        "info_data": {"id": 2, "port": 8472}}}],
    })
    assert explain("k01-worker3", flannel, "10.244.1.2") == [
        "k01-worker3 routes 10.244.1.2 by `10.244.1.0/24 via 10.244.1.0 dev flannel.2 onlink`",
        "k01-worker3: neighbour 10.244.1.0 is 66:fb:ad:98:aa:13; its FDB entry sends 66:fb:ad:98:aa:13 to 10.10.10.11",
        "k01-worker3: flannel.2 encapsulates with VNI 2, UDP port 8472, MTU 1450",
    ]
    # A plain route out of a device that is no VXLAN stops at the route.
    assert len(explain("k01-worker3", flannel, "10.244.2.2")) == 1
