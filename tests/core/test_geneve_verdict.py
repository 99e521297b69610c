"""Geneve judged by the main verdict, on frames built with scapy: each healthy capture passes and
each fault twin fails naming the field, including Cilium's per-direction VNI (the sender's
security identity, `Overlay.vni_identity` with each node's `vni`)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

import pytest
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether

from vxcap.core.decode import decode_frame
from vxcap.core.encap import ENCAPS, reading_for
from vxcap.core.errors import InputError
from vxcap.core.frames import tally
from vxcap.core.manifest import manifest_dict, parse_manifest
from vxcap.core.model import Mode, Node, Overlay, Pair, Pod, Topology, Wire
from vxcap.core.plan import plan
from vxcap.core.verdict import CapturePoint, judge

A, B = "k01-worker", "k01-worker2"
IDENTITY = {A: 48213, B: 5123}  # each test pod's Cilium security identity
NODES = (Node(A, IPv4Interface("172.18.0.5/16"), vni=IDENTITY[A]), Node(B, IPv4Interface("172.18.0.4/16"), vni=IDENTITY[B]))
PODS = {A: Pod("a", A, IPv4Address("10.0.1.5")), B: Pod("b", B, IPv4Address("10.0.2.7"))}
POINTS = {n: CapturePoint(n, "eth0") for n in (A, B)}


def topology(**overlay) -> Topology:
    return Topology(overlay=Overlay(**{"encapsulation": "geneve", "mode": Mode.ALWAYS, "port": 6081, **overlay}),
                    nodes=NODES)


def frame(src, dst, vni, dport=6081, options=()):
    s, d = PODS[src], PODS[dst]
    outer = {n.name: str(n.address) for n in NODES}
    return (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=outer[src], dst=outer[dst])
            / UDP(sport=40000, dport=dport, chksum=0) / GENEVE(vni=vni, proto=0x6558, options=list(options))
            / Ether(src="aa:00:00:00:00:01", dst="aa:00:00:00:00:02") / IP(src=str(s.ip), dst=str(d.ip)) / ICMP(id=1, seq=1))


def verdicts(topo, frames_there, frames_back):
    reading = reading_for(topo)
    there, back = sorted(plan(topo, (Pair(A, B),), PODS), key=lambda e: e.src_node != A)

    def seen(frames, key):  # every frame on both nodes' captures, as on one wire between them
        return {POINTS[n]: tally(decode_frame(bytes(f), reading=reading) for f in frames).get(key) for n in (A, B)}

    return judge(there, seen(frames_there, there.key)), judge(back, seen(frames_back, back.key))


def test_geneve_overhead_is_vxlans_without_options():
    assert (ENCAPS[Wire.GENEVE].overhead(4), ENCAPS[Wire.GENEVE].overhead(6)) == (50, 70)
    assert ENCAPS[Wire.GENEVE].default_ports == {4: 6081, 6: 6081}


def test_each_direction_carries_its_senders_identity_and_passes():
    there, back = verdicts(topology(vni_identity=True), [frame(A, B, 48213, options=[GeneveOptions(data=b"abcd")])],
                           [frame(B, A, 5123)])
    assert (there.passed, there.reasons, back.passed, back.reasons) == (True, (), True, ())


def test_a_vni_that_is_not_the_senders_identity_fails_naming_it():
    # the receiver's identity in the sender's packets: what a datapath that swapped them would send
    there, back = verdicts(topology(vni_identity=True), [frame(A, B, 5123)], [frame(B, A, 5123)])
    assert not there.passed and back.passed
    assert there.reasons == ("VNI 5123 is not the sender's security identity 48213",)


def test_without_identity_the_same_fault_reads_as_a_plain_vni_mismatch():
    flat = Topology(overlay=topology().overlay, nodes=tuple(replace(n, vni=None) for n in NODES))
    there, _ = verdicts(replace(flat, overlay=replace(flat.overlay, vni=48213)), [frame(A, B, 5123)], [frame(B, A, 48213)])
    assert there.reasons == ("VNI 5123, expected 48213",)


def test_geneve_on_another_port_fails_naming_the_port():
    there, _ = verdicts(topology(vni_identity=True), [frame(A, B, 48213, dport=7000)], [frame(B, A, 5123)])
    # 7000 is no Geneve port of this run (the header alone is too weak a sign): not seen as the pods' at all ...
    assert there.reasons == ("no packets of 10.0.1.5 -> 10.0.2.7 seen (k01-worker/eth0, k01-worker2/eth0)",)
    there, _ = verdicts(topology(vni_identity=True, port=7000), [frame(A, B, 48213, dport=6081)], [frame(B, A, 5123)])
    assert there.reasons == ("UDP port 6081, expected 7000",)  # ... but 6081 is always read: named


def test_identity_needs_each_senders_vni():
    flat = Topology(overlay=topology(vni_identity=True).overlay, nodes=tuple(replace(n, vni=None) for n in NODES))
    with pytest.raises(InputError, match="node k01-worker has no vni"):
        plan(flat, (Pair(A, B),), PODS)


def test_the_manifest_carries_encapsulation_geneve_and_vni_identity():
    def manifest(**overlay):
        return {"version": 1, "overlay": {"mode": "Always", **overlay},
                "nodes": [{"name": A, "underlay": "172.18.0.5/16", "vni": 48213},
                          {"name": B, "underlay": "172.18.0.4/16", "vni": 5123}],
                "pods": [{"name": "a", "node": A, "ip": "10.0.1.5"}, {"name": "b", "node": B, "ip": "10.0.2.7"}],
                "pairs": [{"src": A, "dst": B}]}

    parsed = parse_manifest(manifest(encapsulation="geneve", vni_identity=True)).topology
    assert (parsed.overlay.encapsulation, parsed.overlay.port, parsed.overlay.vni_identity) == ("geneve", 6081, True)
    assert manifest_dict(parsed, {}, (), {})["overlay"]["vni_identity"] is True  # what a run writes, analyze reads
    assert parse_manifest(manifest(encapsulation="geneve", port=7000)).topology.overlay.port == 7000
    assert parse_manifest(manifest()).topology.overlay.port == 4789  # VXLAN's default, as before
    with pytest.raises(InputError, match="encapsulation 'gre' is not handled"):
        parse_manifest(manifest(encapsulation="gre"))
