"""Larger labs on the reference pattern: N Kind-style nodes spread over K subnets.

Pure: returns the same structure as the lab file (topology/k01-lab.yaml), so a
generated lab is built, checked and judged exactly like the reference one.
"""

from __future__ import annotations

import hashlib
from typing import Any

from vxcap.core.errors import InputError

MAX_NODES = 256
MAX_SUBNETS = 24
# Host addresses .10 to .254 of a subnet's /24: the gateway is .1.
FIRST_HOST = 10
MAX_PER_SUBNET = 254 - FIRST_HOST + 1
# Above this many nodes the lab pins its neighbours (lab.spec.LabSpec.static_neighbours).
STATIC_NEIGHBOURS_FROM = 33


def node_names(cluster: str, count: int) -> list[str]:
    """Kind's naming: <cluster>-control-plane, <cluster>-worker, <cluster>-worker2, ..."""
    names = [f"{cluster}-control-plane"]
    for i in range(1, count):
        names.append(f"{cluster}-worker" if i == 1 else f"{cluster}-worker{i}")
    return names


def vtep_mac(name: str) -> str:
    """Deterministic, locally administered (0x66 like Calico's), unique per node name."""
    digest = hashlib.sha256(name.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x66, *digest[:5]))


def _host(i: int, s: int, nodes: int, subnets: int) -> int:
    """.10 + the node's index, as labs of up to 64 nodes always had; past that, its index in its subnet."""
    if FIRST_HOST + nodes - 1 <= 254:
        return FIRST_HOST + i
    first_in_subnet = -(-s * nodes // subnets)  # the smallest index i with i * subnets // nodes == s
    return FIRST_HOST + i - first_in_subnet


def _block(i: int) -> str:
    """A /26 of 192.168.0.0/16 per node: 192.168.<i+1>.64 as before, then the .128 and .192 quarters."""
    third, quarter = (i + 1) % 256, 1 + (i + 1) // 256
    return f"192.168.{third}.{64 * quarter}/26"


def generate_lab(nodes: int, subnets: int, cluster: str = "k01") -> dict[str, Any]:
    if not 2 <= nodes <= MAX_NODES:
        raise InputError(f"--nodes {nodes}: a lab has 2 to {MAX_NODES} nodes")
    if not 1 <= subnets <= min(nodes, MAX_SUBNETS):
        raise InputError(f"--subnets {subnets}: between 1 and {min(nodes, MAX_SUBNETS)} for {nodes} nodes")
    if -(-nodes // subnets) > MAX_PER_SUBNET:
        raise InputError(f"--nodes {nodes} on {subnets} subnet(s): a /24 subnet holds {MAX_PER_SUBNET} nodes here; "
                         f"give --subnets {-(-nodes // MAX_PER_SUBNET)} or more")
    subnet_list = [
        {"name": f"vlan{10 * (s + 1)}", "vlan": 10 * (s + 1), "cidr": f"10.10.{10 * (s + 1)}.0/24",
         "gateway": f"10.10.{10 * (s + 1)}.1"}
        for s in range(subnets)
    ]
    node_list = []
    for i, name in enumerate(node_names(cluster, nodes)):
        s = i * subnets // nodes  # contiguous runs, like the reference (first nodes share a subnet)
        node_list.append(
            {
                "name": name,
                "address": f"10.10.{10 * (s + 1)}.{_host(i, s, nodes, subnets)}/24",
                "block": _block(i),
                "vtep_mac": vtep_mac(name),
            }
        )
    return {
        "version": 1,
        "cluster": cluster,
        "overlay": {"encapsulation": "vxlan", "mode": "CrossSubnet", "vni": 4096, "port": 4789, "mtu": 1450},
        "pool": {"cidr": "192.168.0.0/16", "blockSize": 26, "ipipMode": "Never"},
        "underlay": {"iface": "eth1", "mtu": 1500, **({"static_neighbours": True} if nodes >= STATIC_NEIGHBOURS_FROM else {})},
        "subnets": subnet_list,
        "nodes": node_list,
    }


# The lab's own IPv6 prefixes (ULA, fd00::/8: never routed beyond a site, and the lab has no route out at all).
# Each keeps the IPv4 address it stands for readable in it: 10.10.20.13/24 is fd00:10:10:20::13/64 on the
# underlay, and the pod block 192.168.209.64/26 is fd19:2168::c0a8:d140/122 (the IPv4 block in the last 32 bits,
# /122 being Calico's default IPv6 block size and as many addresses as a /26).
POD_POOL6 = "fd19:2168::/96"


def _underlay6(ipv4: str) -> str:
    """10.10.20.13 -> fd00:10:10:20::13 (the decimal octets written as hex groups)."""
    a, b, c, d = ipv4.split(".")
    return f"fd00:{a}:{b}:{c}::{d}"


def _block6(block4: str) -> str:
    address, length = block4.split("/")
    octets = [int(o) for o in address.split(".")]
    return f"fd19:2168::{octets[0] * 256 + octets[1]:x}:{octets[2] * 256 + octets[3]:x}/{96 + int(length)}"


def with_overlay(data: dict[str, Any], overlay: str, ipip_mode: str | None = None) -> dict[str, Any]:
    """A lab description (the lab file's structure) made to build `overlay`'s data plane.

    Adds the `dataplane` section and, for the IPv6 ones, each subnet's and node's IPv6
    side derived from its IPv4 one (written out in full: the lab remembers and shows
    plain data, not a rule). "vxlan" returns the description unchanged. `ipip_mode`
    ("Always" | "CrossSubnet", the default) is the ipip data plane's ipipMode.
    """
    from vxcap.core.lab.spec import DATAPLANES

    if overlay not in DATAPLANES:
        raise InputError(f"--overlay {overlay!r}: one of {', '.join(DATAPLANES)}")
    if overlay == "vxlan":
        return data
    out = {**data, "dataplane": {"overlay": overlay}}
    if overlay in ("vxlan6", "dual", "wireguard6", "wireguard-dual"):
        if overlay in ("wireguard6", "wireguard-dual"):
            out["dataplane"]["wireguard6"] = {"port": 51821,
                                              "mtu": int((data.get("underlay") or {}).get("mtu", 1500)) - 80}
        else:
            out["dataplane"]["vxlan6"] = {"mode": "CrossSubnet", "vni": 4096, "port": 4789,
                                          "mtu": int((data.get("underlay") or {}).get("mtu", 1500)) - 70}
        out["pool6"] = {"cidr": POD_POOL6, "blockSize": 122,
                        "vxlanMode": "Never" if overlay.startswith("wireguard") else "CrossSubnet"}
        out["subnets"] = [
            {**s, "cidr6": _underlay6(str(s["cidr"]).split("/")[0]).rsplit("::", 1)[0] + "::/64",
             "gateway6": _underlay6(str(s["gateway"]))}
            for s in data["subnets"]
        ]
        out["nodes"] = [
            {**n, "address6": _underlay6(str(n["address"]).split("/")[0]) + "/64", "block6": _block6(str(n["block"])),
             "vtep_mac6": vtep_mac(str(n["name"]) + "/v6")}
            for n in data["nodes"]
        ]
    if overlay in ("wireguard", "wireguard-dual"):
        out["dataplane"]["wireguard"] = {"port": 51820, "mtu": int((data.get("underlay") or {}).get("mtu", 1500)) - 60}
    if overlay == "ipip":
        out["dataplane"]["ipip"] = {"mode": ipip_mode or "CrossSubnet", "mtu": int((data.get("underlay") or {}).get("mtu", 1500)) - 20}
    return out
