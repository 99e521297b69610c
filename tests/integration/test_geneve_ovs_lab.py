"""The Open vSwitch userspace-datapath Geneve experiment (docs/geneve-lab.md), proven with packets.

scripts/geneve-ovs-lab builds two node namespaces, each with its own ovsdb-server and
ovs-vswitchd (datapath_type=netdev: no kernel module), and pings pod to pod across a Geneve
tunnel. The capture on the underlay is read with vxcap.core.geneve. The fault twin gives node b
another tunnel key: b must drop a's frames, so the ping fails and only VNI 5001 is on the wire.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from tests.lab_support import REPO, SESSION_PREFIX, lab_test, session_namespaces
from vxcap.core import geneve

SCRIPT = REPO / "scripts" / "geneve-ovs-lab"
needs_ovs = pytest.mark.skipif(shutil.which("ovs-vswitchd") is None, reason="Open vSwitch is not installed (apt openvswitch-switch)")


def run_lab(tmp_path: Path, prefix: str, **env: str) -> tuple[subprocess.CompletedProcess, list]:
    pcap = tmp_path / "underlay.pcap"
    result = subprocess.run([str(SCRIPT), str(pcap)], capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "GENEVE_LAB_PREFIX": prefix, **env})
    assert not session_namespaces(prefix), "the script left namespaces behind"
    return result, rdpcap(str(pcap)) if pcap.exists() else []


def icmp_in_geneve(packets) -> list[tuple[str, str, int, int, int]]:
    """(outer src, outer dst, VNI, ICMP type, outer UDP checksum) of every pod ICMP packet carried in Geneve."""
    found = []
    for packet in packets:
        if UDP not in packet or packet[UDP].dport != geneve.GENEVE_PORT:
            continue
        payload = bytes(packet[UDP].payload)
        header, offset = geneve.parse(payload)
        assert header.protocol == geneve.ETHERNET
        inner = Ether(payload[offset:])
        if ICMP in inner:
            found.append((packet[IP].src, packet[IP].dst, header.vni, inner[ICMP].type, packet[UDP].chksum))
    return found


@lab_test
@needs_ovs
def test_ovs_userspace_geneve_carries_pod_traffic_both_ways(tmp_path):
    result, packets = run_lab(tmp_path, f"{SESSION_PREFIX}g")
    assert result.returncode == 0, result.stdout + result.stderr
    seen = set(icmp_in_geneve(packets))
    # Echo requests a -> b and replies b -> a, each in Geneve with VNI 5001; OVS leaves the outer
    # UDP checksum at 0 unless the port sets options:csum=true (as Antrea's tunnelCsum false does).
    assert ("192.168.50.1", "192.168.50.2", 5001, 8, 0) in seen
    assert ("192.168.50.2", "192.168.50.1", 5001, 0, 0) in seen


@lab_test
@needs_ovs
def test_wrong_vni_on_the_receiver_drops_the_pods_traffic(tmp_path):
    result, packets = run_lab(tmp_path, f"{SESSION_PREFIX}h", VNI_B="5002")
    assert result.returncode != 0, "the ping crossed a tunnel whose VNI the receiver does not take"
    seen = icmp_in_geneve(packets)
    assert not any(icmp_type == 0 for *_, icmp_type, _ in seen)  # no echo reply came back
    # b's own frames (ARP, neighbour solicitations) still leave with its key: the wire shows the mismatch.
    def vnis(sender: str) -> set[int]:
        return {geneve.parse(bytes(p[UDP].payload))[0].vni for p in packets if UDP in p and p[IP].src == sender}

    assert vnis("192.168.50.1") == {5001} and vnis("192.168.50.2") == {5002}


@lab_test
@needs_ovs
def test_geneve_options_open_vswitch_sends_are_read_back(tmp_path):
    result, packets = run_lab(tmp_path, f"{SESSION_PREFIX}i", GENEVE_OPTION="0x2a")
    assert result.returncode == 0, result.stdout + result.stderr
    by_sender: dict[str, set] = {}
    for packet in packets:
        if UDP in packet and packet[UDP].dport == geneve.GENEVE_PORT:
            header, _ = geneve.parse(bytes(packet[UDP].payload))
            by_sender.setdefault(packet[IP].src, set()).add(header.options)
    # Node a's flow sets tun_metadata0 (mapped to class 0xffff, type 0x01, 4 bytes) on its pod's frames.
    assert by_sender["192.168.50.1"] == {(geneve.GeneveOption(0xFFFF, 0x01, b"\x00\x00\x00\x2a"),)}
    assert by_sender["192.168.50.2"] == {()}
