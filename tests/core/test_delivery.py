"""Delivery from the packets: echoes followed by (identifier, sequence) from hop to hop, on frames built with scapy."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from vxcap.core.decode import decode_frame
from vxcap.core.delivery import PointState, judge_delivery
from vxcap.core.frames import tally
from vxcap.core.model import Mode, Node, Overlay, Pair, Pod, Topology
from vxcap.core.plan import plan
from vxcap.core.verdict import CapturePoint, judge

A, B = "node-a", "node-b"
UNDERLAY = {A: "10.10.10.11", B: "10.10.20.13"}
MAC = {A: "02:42:0a:0a:0a:0b", B: "02:42:0a:0a:14:0d"}
ROUTER = "02:42:0a:0a:0a:01"
POD = {A: "192.168.81.65", B: "192.168.209.65"}
POINTS = {f"{A}/eth1": A, f"{B}/eth1": B}


def frame(src, dst, seq, *, reply=False, dst_mac=None, ident=0x4242):
    """An echo from src's pod to dst's pod in VXLAN, addressed on the underlay to `dst_mac`."""
    return bytes(
        Ether(dst=dst_mac or ROUTER) / IP(src=UNDERLAY[src], dst=UNDERLAY[dst]) / UDP(sport=40000, dport=4789)
        / VXLAN(vni=4096) / Ether() / IP(src=POD[src], dst=POD[dst]) / ICMP(type=0 if reply else 8, id=ident, seq=seq)
    )


def point(frames):
    return tally(decode_frame(f) for f in frames)


def requests_of(frames):
    return {p: point(fs).get((IPv4Address(POD[A]), IPv4Address(POD[B]))) for p, fs in frames.items()}


def replies_of(frames):
    return {p: point(fs).get((IPv4Address(POD[B]), IPv4Address(POD[A]))) for p, fs in frames.items()}


def deliver(frames, **options):
    options.setdefault("sender_mac", MAC[A])
    options.setdefault("receiver_mac", MAC[B])
    return judge_delivery(A, B, requests_of(frames), replies_of(frames), POINTS, **options)


def exchange(seqs, *, answered=True, arrived=True, back=True, flooded=False):
    """Each capture point's frames of A pinging B."""
    at_a = [frame(A, B, s) for s in seqs]
    at_b = [frame(A, B, s, dst_mac=ROUTER if flooded else MAC[B]) for s in seqs] if arrived else []
    if arrived and answered:
        at_b += [frame(B, A, s, reply=True) for s in seqs]
        if back:
            at_a += [frame(B, A, s, reply=True, dst_mac=MAC[A]) for s in seqs]
    return {f"{A}/eth1": at_a, f"{B}/eth1": at_b}


def test_a_healthy_exchange_is_delivered_at_every_hop():
    delivery = deliver(exchange(range(3)), sent=3)
    assert (delivery.sent, delivery.left_sender, delivery.arrived_receiver, delivery.answered, delivery.replies_back) == (
        3, 3, 3, 3, 3)
    assert delivery.reasons == () and delivery.notes == () and delivery.not_checked == ()


def test_replies_blackholed_at_the_receiver_name_the_receiver():
    delivery = deliver(exchange(range(3), answered=False))
    assert delivery.reasons == (f"3 echo requests reached {B}/eth1, 0 answered",)
    assert (delivery.arrived_receiver, delivery.answered, delivery.replies_back) == (3, 0, 0)


def test_requests_lost_in_the_underlay_name_both_hops():
    delivery = deliver(exchange(range(3), arrived=False))
    assert delivery.reasons == (f"3 left {A}/eth1, 0 reached {B}/eth1",)


def test_a_flooded_frame_does_not_count_as_arrived():
    delivery = deliver(exchange(range(3), flooded=True))
    assert delivery.reasons == (
        f"3 left {A}/eth1, 0 reached {B}/eth1 (3 seen there addressed to another MAC: flooded, not delivered)",)
    assert delivery.flooded == 3


def test_an_unknown_receiver_mac_is_not_checked_and_said_so():
    delivery = deliver(exchange(range(3), flooded=True), receiver_mac=None)
    assert delivery.reasons == ()
    assert delivery.not_checked == (f"outer destination MAC at {B}: its underlay MAC is unknown (no link evidence)",)


def test_partial_loss_on_complete_captures_is_noted():
    frames = exchange(range(3))
    frames[f"{B}/eth1"] = [f for f in frames[f"{B}/eth1"] if decode_frame(f).echo_seq != 2]
    delivery = deliver(frames)
    assert delivery.reasons == ()
    assert f"1 of 3 echo requests that left {A}/eth1 never reached {B}/eth1" in delivery.notes


def test_an_incomplete_capture_passes_only_with_every_echo_accounted_for():
    states = {f"{B}/eth1": PointState(f"{B}/eth1", kernel_dropped=12)}
    assert deliver(exchange(range(3)), sent=3, states=states).reasons == ()
    frames = exchange(range(3))
    frames[f"{B}/eth1"] = [f for f in frames[f"{B}/eth1"] if decode_frame(f).echo_seq != 2]
    delivery = deliver(frames, sent=3, states=states)
    assert delivery.reasons == (
        f"inconclusive: {B}/eth1 dropped 12 packets in the kernel, and not every echo request is accounted for "
        "(3 left, 2 arrived, 2 answered, 2 came back, 3 sent)",)
    # the prober sent more than the sender's capture shows: not accounted for either
    assert deliver(exchange(range(2)), sent=3, states=states).reasons[0].startswith("inconclusive:")


def test_no_pass_without_both_ends():
    topology = Topology(
        overlay=Overlay(mode=Mode.CROSS_SUBNET),
        nodes=tuple(Node(n, IPv4Interface(f"{UNDERLAY[n]}/24")) for n in (A, B)),
    )
    pods = {n: Pod(f"p-{n}", n, IPv4Address(POD[n])) for n in (A, B)}
    (forward, _) = plan(topology, (Pair(A, B),), pods)
    flows = point(exchange(range(3))[f"{A}/eth1"])
    only_sender = {CapturePoint(A, "eth1"): flows.get(forward.key)}
    verdict = judge(forward, only_sender)
    assert not verdict.passed
    assert f"no usable capture of {B} (receiver): none in manifest.json" in verdict.reasons
    verdict = judge(forward, only_sender, {B: f"{B}-eth1.pcap: not a pcap or pcapng capture"})
    assert f"no usable capture of {B} (receiver): {B}-eth1.pcap: not a pcap or pcapng capture" in verdict.reasons
    # the VTEP MAC is unknown: the inner MAC check is listed as not made
    assert verdict.not_checked == (f"inner destination MAC: the VTEP MAC of {B} is unknown",)
