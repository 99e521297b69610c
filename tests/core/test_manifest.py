import copy
import re
from ipaddress import IPv4Address, IPv4Interface

import pytest

from vxcap.core.errors import InputError
from vxcap.core.manifest import manifest_dict, parse_manifest
from vxcap.core.model import Mode, Pair

# The example of docs/manifest.md, written out by hand.
EXAMPLE = {
    "version": 1,
    "overlay": {"encapsulation": "vxlan", "mode": "CrossSubnet", "vni": 4096, "port": 4789, "mtu": 1450},
    "nodes": [
        {"name": "k01-worker", "underlay": "10.10.10.11/24", "vtep_mac": "66:fb:ad:98:aa:13",
         "captures": [{"iface": "eth1", "file": "k01-worker-eth1.pcap"}]},
        {"name": "k01-worker3", "underlay": "10.10.20.13/24",
         "captures": [{"iface": "eth1", "file": "k01-worker3-eth1.pcap"}]},
        {"name": "k01-worker2", "underlay": "10.10.10.12/24"},
    ],
    "pods": [
        {"name": "vxcap-a", "node": "k01-worker", "ip": "192.168.81.65"},
        {"name": "vxcap-b", "node": "k01-worker3", "ip": "192.168.209.65"},
    ],
    "pairs": [{"src": "k01-worker", "dst": "k01-worker3"}],
}


def test_example_parses():
    m = parse_manifest(EXAMPLE)
    assert m.topology.overlay.mode is Mode.CROSS_SUBNET and m.topology.overlay.vni == 4096
    worker = m.topology.node("k01-worker")
    assert worker.underlay == IPv4Interface("10.10.10.11/24") and worker.vtep_mac == "66:fb:ad:98:aa:13"
    assert m.topology.node("k01-worker3").vtep_mac is None
    assert m.pairs == (Pair("k01-worker", "k01-worker3"),)
    assert m.pods_by_node()["k01-worker3"].ip == IPv4Address("192.168.209.65")
    assert [(c.node, c.file) for c in m.captures] == [
        ("k01-worker", "k01-worker-eth1.pcap"), ("k01-worker3", "k01-worker3-eth1.pcap")]


def test_written_manifest_reads_back_the_same():
    m = parse_manifest(EXAMPLE)
    captures = {c.node: [(c.iface, c.file)] for c in m.captures}
    again = parse_manifest(manifest_dict(m.topology, m.pods_by_node(), m.pairs, captures, run_id="r1"))
    assert again.pods == m.pods and again.pairs == m.pairs and again.captures == m.captures
    assert {n.name for n in again.topology.nodes} == {"k01-worker", "k01-worker3"}
    assert again.run_id == "r1"


def broken(path, value=None, delete=False):
    data = copy.deepcopy(EXAMPLE)
    *parents, last = path
    target = data
    for key in parents:
        target = target[key]
    if delete:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize("data,message", [
    (broken(["version"], 2), "version 2 is not supported"),
    (broken(["overlay"], delete=True), "manifest.overlay is missing"),
    (broken(["overlay", "mode"], "Sometimes"), "vxlanMode 'Sometimes'"),
    (broken(["overlay", "vni"], "4096"), "overlay.vni must be an integer"),
    (broken(["overlay", "vni"], 2**24), "VNI 16777216 is out of range"),
    (broken(["nodes", 0, "underlay"], "10.10.10.11"), "nodes[0].underlay '10.10.10.11' needs a prefix length"),
    (broken(["nodes", 1, "underlay"], "ten/24"), "nodes[1].underlay 'ten/24' is not an IPv4 address"),
    (broken(["nodes", 0, "vtep_mac"], "66:fb"), "nodes[0].vtep_mac"),
    (broken(["nodes", 0, "captures", 0, "file"], delete=True), "nodes[0].captures[0].file is missing"),
    (broken(["pods", 1, "ip"], "192.168.209"), "pods[1].ip '192.168.209' is not an IPv4 address"),
    (broken(["pods", 1, "node"], "k01-worker9"), "pods[1].node 'k01-worker9' is not one of the nodes"),
    (broken(["pairs", 0, "dst"], "k01-worker2"), "pairs[0].dst 'k01-worker2' has no pod"),
    (broken(["pairs"], []), "pairs is empty"),
    ([], "top level must be a JSON object"),
])
def test_errors_name_the_field(data, message):
    with pytest.raises(InputError, match=re.escape(message)):
        parse_manifest(data)


# Names become file names and tcpdump arguments: a manifest cannot steer them out of the run directory.
@pytest.mark.parametrize("data,message", [
    (broken(["nodes", 0, "name"], "../../etc"), "manifest: nodes[0].name '../../etc' is not valid: a node name is a DNS-1123 subdomain"),
    (broken(["nodes", 1, "name"], "K01 Worker3"), "manifest: nodes[1].name 'K01 Worker3' is not valid"),
    (broken(["nodes", 0, "captures", 0, "iface"], "eth 1"), "manifest: nodes[0].captures[0].iface 'eth 1' is not valid: an interface name"),
    (broken(["nodes", 0, "captures", 0, "iface"], "a-very-long-name0"), "manifest: nodes[0].captures[0].iface 'a-very-long-name0' is not valid"),
    (broken(["nodes", 0, "captures", 0, "file"], "/etc/shadow"), "manifest: nodes[0].captures[0].file '/etc/shadow' is not valid: a file must be inside the run directory"),
    (broken(["nodes", 1, "captures", 0, "file"], "../other-run/k01-worker3-eth1.pcap"), "manifest: nodes[1].captures[0].file '../other-run/k01-worker3-eth1.pcap' is not valid"),
    (broken(["nodes", 0, "captures", 0, "file"], ""), "manifest: nodes[0].captures[0].file must be a non-empty string, got ''"),
])
def test_names_and_files_are_held_to_their_rules(data, message):
    with pytest.raises(InputError, match="^" + re.escape(message)) as caught:
        parse_manifest(data)
    assert "\n" not in str(caught.value)


def test_a_capture_file_in_a_subdirectory_of_the_run_is_fine():
    data = broken(["nodes", 0, "captures", 0, "file"], "pcaps/k01-worker-eth1.pcap")
    assert parse_manifest(data).captures[0].file == "pcaps/k01-worker-eth1.pcap"


def test_a_capture_says_which_filter_it_ran_with_and_a_bad_one_is_named():
    base = parse_manifest(_filter_manifest())
    assert base.captures[0].filter is None
    used = {"mode": "precise", "bpf": "host 192.168.81.65"}
    written = manifest_dict(base.topology, base.pods_by_node(), base.pairs, {"k01-worker": [("eth1", "w.pcap")]},
                            capture_filter=used)
    assert written["nodes"][0]["captures"] == [{"iface": "eth1", "file": "w.pcap", "filter": used}]
    assert parse_manifest(written).captures[0].filter == used
    bad = copy.deepcopy(written)
    bad["nodes"][0]["captures"][0]["filter"] = "host x"
    with pytest.raises(InputError, match=r"nodes\[0\]\.captures\[0\]\.filter must be an object"):
        parse_manifest(bad)


def _filter_manifest():
    return {
        "version": 1,
        "overlay": {"mode": "CrossSubnet"},
        "nodes": [{"name": "k01-worker", "underlay": "10.10.10.11/24",
                   "captures": [{"iface": "eth1", "file": "w.pcap"}]},
                  {"name": "k01-worker3", "underlay": "10.10.20.13/24"}],
        "pods": [{"node": "k01-worker", "ip": "192.168.81.65"}, {"node": "k01-worker3", "ip": "192.168.209.65"}],
        "pairs": [{"src": "k01-worker", "dst": "k01-worker3"}],
    }
