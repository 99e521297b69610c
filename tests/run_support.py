"""Run directories for tests that judge captures without a lab: the reference
nodes and pods, frames built with scapy, and a manifest beside the pcaps."""

from __future__ import annotations

import json
from pathlib import Path

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from scapy.utils import wrpcap

W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"
UNDERLAY = {W: "10.10.10.11", W2: "10.10.10.12", W3: "10.10.20.13"}
POD = {W: "192.168.81.65", W2: "192.168.164.129", W3: "192.168.209.65"}
MAC = {W: "66:fb:ad:98:aa:13", W2: "66:c7:4d:6e:6b:f3", W3: "66:d2:0c:f0:ef:e5"}


def vx(src, dst, vni=4096, n=3, port=4789, payload=b"", reply=False):
    """`n` echo requests src -> dst in VXLAN (or, with `reply`, the answers dst's pod sends src's pod ...
    travelling src -> dst: a reply's flow is the reverse of its request's)."""
    # dport always explicit: scapy's VXLAN overloads UDP's dport to 8472.
    return [
        Ether() / IP(src=UNDERLAY[src], dst=UNDERLAY[dst]) / UDP(sport=40000 + i, dport=port) / VXLAN(vni=vni)
        / Ether(dst=MAC[dst]) / IP(src=POD[src], dst=POD[dst]) / ICMP(type=0 if reply else 8, seq=i) / Raw(payload)
        for i in range(n)
    ]


def plain(src, dst, n=3, reply=False):
    return [Ether() / IP(src=POD[src], dst=POD[dst]) / ICMP(type=0 if reply else 8, seq=i) for i in range(n)]


def pings(build, a, b, **options):
    """a pings b: the requests a -> b and b's replies b -> a, as `build` (vx or plain) writes them."""
    return build(a, b, **options) + build(b, a, reply=True, **options)


def healthy_frames(port=4789):
    """Every pod pings its peer and is answered, seen on both nodes' underlays."""
    cross = pings(vx, W, W3, port=port) + pings(vx, W3, W, port=port)
    same = pings(plain, W, W2) + pings(plain, W2, W)
    return {W: cross + same, W3: cross, W2: same}


def new_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    return run


def write_manifest(
    run: Path,
    captures: dict[str, str],
    pairs=((W, W3), (W, W2)),
    port: int = 4789,
    mtu: int | None = 1450,
    run_id: str | None = None,
) -> Path:
    """manifest.json for the reference nodes and pods; `captures`: node -> its capture's file in `run`."""
    nodes = []
    for node in (W, W2, W3):
        entry = {"name": node, "underlay": f"{UNDERLAY[node]}/24", "vtep_mac": MAC[node]}
        if node in captures:
            entry["captures"] = [{"iface": "eth1", "file": captures[node]}]
        nodes.append(entry)
    manifest = {
        "version": 1,
        "overlay": {"encapsulation": "vxlan", "mode": "CrossSubnet", "vni": 4096, "port": port, "mtu": mtu},
        "nodes": nodes,
        "pods": [{"name": f"p-{n}", "node": n, "ip": POD[n]} for n in (W, W2, W3)],
        "pairs": [{"src": a, "dst": b} for a, b in pairs],
    }
    if run_id is not None:
        manifest["run_id"] = run_id
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def write_run(
    tmp_path: Path, frames: dict[str, list], pairs=((W, W3), (W, W2)), port=4789, run_id: str | None = None
) -> Path:
    run = new_run(tmp_path)
    for node, node_frames in frames.items():
        wrpcap(str(run / f"{node}-eth1.pcap"), node_frames)
    return write_manifest(run, {node: f"{node}-eth1.pcap" for node in frames}, pairs, port, run_id=run_id)
