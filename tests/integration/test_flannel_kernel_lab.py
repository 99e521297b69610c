"""Flannel's vxlan data plane on the kernel's own VXLAN device, judged against what vxcap expects.

scripts/flannel-vxlan-lab programs flannel.1 devices, routes, neighbours and FDB entries the way
flanneld does, for nodes a (k01-worker, 10.10.10.11), b (k01-worker2, 10.10.10.12, same subnet)
and c (k01-worker3, 10.10.20.13, behind a router): the addresses and pod CIDRs of the fake API's
Flannel cluster, so `core.cni.flannel` reads the expectations from the same objects `vxcap topology`
reads. Captured on a's uplink, every frame is judged with `core.cni.judge`; the faults (a's device
on another port, another VNI) must be named by their field, and the healthy runs must pass.
"""

from __future__ import annotations

import json
import subprocess
from ipaddress import ip_address
from pathlib import Path

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

from tests.fakes import cni_objects as cn
from tests.lab_support import REPO, SESSION_PREFIX, lab_test, session_namespaces
from vxcap.core.cni import Encap, flannel
from vxcap.core.cni.judge import SeenWire, mismatches
from vxcap.core.cni.plan import plan_directions
from vxcap.core.cni.routes import decisions
from vxcap.core.model import Pair, Pod

SCRIPT = REPO / "scripts" / "flannel-vxlan-lab"
NODES = {"a": "k01-worker", "b": "k01-worker2", "c": "k01-worker3"}
PODS = {"k01-worker": Pod("a", "k01-worker", ip_address("10.244.1.2")),
        "k01-worker2": Pod("b", "k01-worker2", ip_address("10.244.2.2")),
        "k01-worker3": Pod("c", "k01-worker3", ip_address("10.244.3.2"))}
PAIRS = (Pair("k01-worker", "k01-worker2"), Pair("k01-worker", "k01-worker3"))


def run_lab(tmp_path: Path, suffix: str, **env: str) -> tuple[int, Path]:
    prefix = f"{SESSION_PREFIX}{suffix}"
    result = subprocess.run([str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "FLANNEL_LAB_PREFIX": prefix, **env})
    assert not session_namespaces(prefix), "the script left namespaces behind"
    assert "cleaned up" in result.stdout, result.stdout + result.stderr
    return result.returncode, tmp_path


def seen_frames(pcap: Path) -> list[tuple[tuple, SeenWire]]:
    """((inner src, inner dst), what the wire showed) for every pod ICMP frame on a's uplink."""
    found = []
    for packet in rdpcap(str(pcap)):
        outer = packet[IP]
        if UDP in packet:
            inner = Ether(bytes(VXLAN(bytes(packet[UDP].payload)).payload))
            if ICMP not in inner:
                continue
            vni = VXLAN(bytes(packet[UDP].payload)).vni
            wire = SeenWire(Encap.VXLAN, ip_address(outer.src), ip_address(outer.dst), packet[UDP].dport, vni,
                            packet[UDP].chksum)
            found.append(((ip_address(inner[IP].src), ip_address(inner[IP].dst)), wire))
        elif ICMP in packet and outer.src.startswith("10.244."):
            found.append(((ip_address(outer.src), ip_address(outer.dst)),
                          SeenWire(Encap.PLAIN, ip_address(outer.src), ip_address(outer.dst))))
    return found


def judge(out: Path, backend: dict, tables: bool = False) -> dict[tuple[str, str], list[str]]:
    """Every direction of both pairs: the reasons its frames gave (empty: it passed); a direction
    with no frame at all is reported too, so a test cannot pass on an empty capture."""
    configmap = cn.flannel(backend).configmaps[0]
    nodes = cn.flannel_nodes()
    connected = None
    if tables:
        routes = {NODES[n]: json.loads((out / f"{n}-route.json").read_text()) for n in NODES}
        connected = decisions(flannel.discover(configmap, nodes).nodes, routes, "gateway")
    directions = plan_directions(flannel.discover(configmap, nodes, connected), PAIRS, PODS)
    frames = seen_frames(out / "underlay.pcap")
    verdicts = {}
    for direction in directions:
        mine = [wire for key, wire in frames if key == (direction.src_ip, direction.dst_ip)]
        reasons = [r for wire in mine for r in mismatches(direction, wire)]
        verdicts[(direction.src_node, direction.dst_node)] = reasons if mine else ["no frame seen"]
    return verdicts


@lab_test
def test_vxlan_backend_every_direction_is_vxlan_8472_vni_1(tmp_path):
    code, out = run_lab(tmp_path, "f")
    assert code == 0
    link = json.loads((out / "a-link.json").read_text())[0]
    assert link["linkinfo"]["info_data"]["port"] == 8472  # no dstport given: the kernel's default
    assert link["linkinfo"]["info_data"]["id"] == 1 and link["ifname"] == "flannel.1"
    assert judge(out, {"Type": "vxlan"}) == {
        ("k01-worker", "k01-worker2"): [], ("k01-worker2", "k01-worker"): [],
        ("k01-worker", "k01-worker3"): [], ("k01-worker3", "k01-worker"): [],
    }


@lab_test
def test_direct_routing_is_plain_where_the_route_has_no_gateway(tmp_path):
    code, out = run_lab(tmp_path, "g", DIRECT_ROUTING="1")
    assert code == 0
    verdicts = judge(out, {"Type": "vxlan", "DirectRouting": True}, tables=True)
    assert all(reasons == [] for reasons in verdicts.values()), verdicts
    kinds = {wire.encap for _, wire in seen_frames(out / "underlay.pcap")}
    assert kinds == {Encap.PLAIN, Encap.VXLAN}  # b reached plain, c through the router in VXLAN
    # Judged as if DirectRouting were off, the same plain frames are the fault "plain where VXLAN was promised".
    wrong = judge(out, {"Type": "vxlan"})
    assert wrong[("k01-worker", "k01-worker2")][0].startswith("k01-worker → k01-worker2: plain where vxlan, UDP 8472, VNI 1")
    assert wrong[("k01-worker", "k01-worker3")] == []


@lab_test
def test_wrong_port_fault_is_named(tmp_path):
    code, out = run_lab(tmp_path, "h", FAULT_PORT="4789")
    assert code != 0  # b and c listen on 8472
    reasons = judge(out, {"Type": "vxlan"})[("k01-worker", "k01-worker3")]
    assert reasons and all(r == "k01-worker → k01-worker3: UDP port 4789, expected 8472" for r in reasons)


@lab_test
def test_wrong_vni_fault_is_named(tmp_path):
    code, out = run_lab(tmp_path, "i", FAULT_VNI="2")
    assert code != 0  # the receivers' flannel.1 is VNI 1
    reasons = judge(out, {"Type": "vxlan"})[("k01-worker", "k01-worker2")]
    assert reasons and all(r == "k01-worker → k01-worker2: VNI 2, expected 1" for r in reasons)
