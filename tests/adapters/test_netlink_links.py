"""adapters.netlink_links on the real kernel, with `ip -d -j link show` as the oracle: every key the
netlink reader writes has the value ip prints for the same device, in ip's order.

Namespaces are named with this session's prefix (tests/lab_support.py) and deleted afterwards.
Needs root; skips cleanly without.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.lab_support import SESSION_PREFIX, lab_test
from vxcap.adapters import netlink_links
from vxcap.adapters.lab import NetnsLab
from vxcap.adapters.netns import NetnsError
from vxcap.core.mtu.links import interface_mtus

NODE, PEER = f"{SESSION_PREFIX}-nlnode", f"{SESSION_PREFIX}-nlpeer"

# What the node namespace holds: a cross-namespace veth (eth1), a same-namespace veth pair (the pod
# side's cali/eth0 twin), Calico's VXLAN device on eth1, an IPv6 VXLAN with the knobs ip prints in
# hex or only when set, one with a multicast group, and a bridge with a port (master, slave kind).
STEPS = [
    ("link", "add", "eth1", "type", "veth", "peer", "name", "eth1", "netns", PEER),
    ("addr", "add", "10.77.0.1/24", "dev", "eth1"),
    ("link", "set", "eth1", "up"),
    ("link", "add", "vxlan.calico", "type", "vxlan", "id", "4096", "local", "10.77.0.1", "dev", "eth1",
     "dstport", "4789", "nolearning"),
    ("link", "set", "vxlan.calico", "mtu", "1450", "up"),
    ("link", "add", "cali0", "type", "veth", "peer", "name", "eth0"),
    ("link", "set", "cali0", "up"),
    ("link", "add", "vxlan-v6.calico", "type", "vxlan", "id", "4097", "local", "fd77::1", "remote", "fd77::2",
     "dstport", "4789", "ttl", "5", "tos", "0x10", "flowlabel", "0x123", "ageing", "120", "maxaddr", "10"),
    ("link", "add", "vxg", "type", "vxlan", "id", "9", "group", "239.1.1.1", "dev", "eth1", "dstport", "8472",
     "srcport", "1000", "2000", "l2miss", "proxy"),
    ("link", "add", "br0", "type", "bridge"),
    ("link", "add", "port0", "type", "veth", "peer", "name", "port1"),
    ("link", "set", "port0", "master", "br0", "up"),
    ("link", "set", "port0", "alias", "a port"),
    ("link", "property", "add", "dev", "port0", "altname", "portzero"),
]

# What vxcap's readers take from a link table (core.mtu.links, core.explain, the lab's checks): each
# must be written whenever ip prints it.
READ_KEYS = ("ifindex", "ifname", "flags", "mtu", "operstate", "link_type", "address", "broadcast", "link",
             "link_index", "link_netnsid", "master", "min_mtu", "max_mtu", "linkinfo")
READ_VXLAN_KEYS = ("id", "local", "local6", "remote6", "group", "link", "port", "port_range", "learning", "ttl",
                   "tos", "label", "ageing", "limit", "df")


@pytest.fixture
def namespaces():
    for name in (NODE, PEER):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for step in STEPS:
            subprocess.run(["ip", "-n", NODE, *step], check=True, capture_output=True)
        yield NODE, PEER
    finally:
        for name in (NODE, PEER):
            subprocess.run(["ip", "netns", "delete", name], check=False)


def ip_links(ns: str) -> list[dict[str, Any]]:
    out = subprocess.run(["ip", "-n", ns, "-d", "-j", "link", "show"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def differences(mine: Any, ip: Any, path: str) -> list[str]:
    """Where `mine` says something ip does not: a key ip lacks, another value, another type, another order."""
    if isinstance(mine, dict) and isinstance(ip, dict):
        found = [] if [k for k in ip if k in mine] == list(mine) else [f"{path}: key order {list(mine)}"]
        for key, value in mine.items():
            found += differences(value, ip[key], f"{path}.{key}") if key in ip else [f"{path}.{key}: not in ip"]
        return found
    return [] if (mine, type(mine)) == (ip, type(ip)) else [f"{path}: {mine!r} where ip says {ip!r}"]


@lab_test
@pytest.mark.parametrize("which", ["node", "peer"])
def test_every_key_read_over_netlink_is_what_ip_prints(namespaces, which):
    ns = dict(zip(("node", "peer"), namespaces))[which]
    mine, theirs = netlink_links.read_links(ns), ip_links(ns)
    assert [link["ifname"] for link in mine] == [link["ifname"] for link in theirs]
    for link, ip in zip(mine, theirs):
        assert differences(link, ip, link["ifname"]) == []
        assert [key for key in READ_KEYS if key in ip and key not in link] == [], link["ifname"]
        ip_data = ip.get("linkinfo", {}).get("info_data", {})
        if ip.get("linkinfo", {}).get("info_kind") == "vxlan":
            assert [key for key in ip_data if key not in link["linkinfo"]["info_data"]] == [], link["ifname"]


@lab_test
def test_the_fields_vxcap_reads_are_there_with_the_devices_values(namespaces):
    """Not only equal to ip: present, with the values the namespace was built with."""
    links = {link["ifname"]: link for link in netlink_links.read_links(NODE)}
    vxlan = links["vxlan.calico"]
    assert vxlan["mtu"] == 1450 and "UP" in vxlan["flags"] and vxlan["linkinfo"]["info_kind"] == "vxlan"
    data = vxlan["linkinfo"]["info_data"]
    assert (data["id"], data["port"], data["local"], data["link"], data["learning"]) == (
        4096, 4789, "10.77.0.1", "eth1", False)
    v6 = links["vxlan-v6.calico"]["linkinfo"]["info_data"]
    assert (v6["id"], v6["local6"], v6["remote6"], v6["tos"], v6["label"], v6["ttl"], v6["ageing"]) == (
        4097, "fd77::1", "fd77::2", "0x10", "0x123", 5, 120)
    assert links["vxg"]["linkinfo"]["info_data"]["group"] == "239.1.1.1"
    eth1 = links["eth1"]
    assert "link" not in eth1 and isinstance(eth1["link_index"], int) and isinstance(eth1["link_netnsid"], int)
    assert eth1["linkinfo"] == {"info_kind": "veth"}
    assert links["eth0"]["link"] == "cali0" and links["cali0"]["link"] == "eth0"
    port = links["port0"]
    assert (port["master"], port["linkinfo"]["info_slave_kind"], port["ifalias"], port["altnames"]) == (
        "br0", "bridge", "a port", ["portzero"])
    assert links["lo"]["link_type"] == "loopback" and links["eth1"]["link_type"] == "ether"
    # what the run's readers make of the saved text
    facts = interface_mtus(netlink_links.links_json(NODE))
    assert (facts["vxlan.calico"].vni, facts["vxlan.calico"].port, facts["vxlan.calico"].parent) == (4096, 4789, "eth1")
    assert facts["eth1"].address == eth1["address"] and facts["eth1"].up is True


@lab_test
def test_a_missing_namespace_is_a_one_line_error_naming_it():
    missing = f"{SESSION_PREFIX}-nosuch"
    with pytest.raises(NetnsError) as err:
        netlink_links.read_links(missing)
    message = str(err.value)
    assert missing in message and "\n" not in message and "No such file" in message


@lab_test
def test_the_lab_reads_a_node_it_cannot_enter_as_the_namespace_error():
    """NetnsLab.node_links/pod_links of a lab that is not there: the error NodeTables reports, one line."""
    from tests.lab_support import k01_spec

    lab = NetnsLab(k01_spec(), prefix=f"{SESSION_PREFIX}x")  # never brought up
    for read, ns in ((lab.node_links, lab.node_netns("k01-worker")), (lab.pod_links, lab.pod_netns("k01-worker"))):
        with pytest.raises(NetnsError, match=rf'^Cannot open network namespace "{ns}": No such file'):
            read("k01-worker")
