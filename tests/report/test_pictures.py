"""The pictures of report.html: the packet's layers with their sizes against the MTU budget,
and the probes at each hop."""

import re
from html import escape

from vxcap.report.pictures import layers, packet_picture, timeline

MTU = {"wire": "vxlan", "overhead": {"bytes": 50}, "underlay_mtu": 1500, "max_icmp_payload": 1422,
       "mtus": {"src": {"pod_mtu": 1450}}, "measured": {"largest_df_payload": 1422}}


def flow(expected="vxlan", **extra):
    return {"src_node": "a", "dst_node": "b", "expected": expected, "mtu": dict(MTU, wire=expected), **extra}


def e(value):
    return escape("" if value is None else str(value))


def test_a_vxlan_packet_is_its_eight_layers_and_adds_up_to_the_underlay_mtu():
    parts = layers(flow())
    assert [name for name, _, _ in parts] == ["outer Ethernet", "outer IPv4", "UDP", "VXLAN", "inner Ethernet", "IPv4",
                                              "ICMP", "payload"]
    sizes = [n for _, n, _ in parts]
    assert sizes == [14, 20, 8, 8, 14, 20, 8, 1422]
    assert sum(sizes[1:]) == 1500 and sum(sizes[5:]) == 1450 and sum(sizes[1:5]) == 50
    page = packet_picture(flow(), e)
    assert "IP packet 1500 B of underlay MTU 1500" in page and "pod packet 1450 B of pod MTU 1450" in page
    assert "overhead 50 B" in page and "1514-byte frame" in page


def test_a_plain_packet_has_no_tunnel_and_fits_the_pod_mtu():
    parts = layers(flow("plain"))
    assert [name for name, _, _ in parts] == ["Ethernet", "IPv4", "ICMP", "payload"]
    page = packet_picture(flow("plain"), e)
    assert "IP packet 1450 B of pod MTU 1450 · underlay MTU 1500" in page and "overhead" not in page


def test_an_unmeasured_payload_is_a_question_mark_not_a_guess():
    page = packet_picture({"src_node": "a", "dst_node": "b", "expected": "vxlan"}, e)
    assert "<span>?</span>" in page and "was not measured" in page and "of underlay MTU" not in page


def dots(html):
    return [(len(re.findall(r'class="dot"', row)), len(re.findall(r'class="dot lost"', row)))
            for row in re.findall(r'<div class="dots">(.*?)</div>', html)]


def test_a_lost_reply_is_a_gap_at_its_hop():
    delivery = {"sent": 3, "left_sender": 3, "arrived_receiver": 3, "answered": 3, "replies_back": 1}
    html = timeline(flow(delivery=delivery), e)
    assert dots(html) == [(3, 0), (3, 0), (3, 0), (1, 2)]
    assert "reply back at a" in html and "1/3" in html and "the prober sent 3" in html


def test_requests_that_never_left_are_gaps_against_what_the_prober_sent():
    delivery = {"sent": 3, "left_sender": 0, "arrived_receiver": 0, "answered": 0, "replies_back": 0}
    assert dots(timeline(flow(delivery=delivery), e)) == [(0, 3)] * 4


def test_without_delivery_the_frames_at_each_capture_point():
    html = timeline(flow(seen_on={"a/eth1": 12, "b/eth1": 9}), e)
    assert "frames on a/eth1" in html and dots(html) == [(12, 0), (9, 3)] and "9/12" in html
