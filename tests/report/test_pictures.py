"""The pictures of report.html as data: the packet's layers with their sizes against the MTU
budget, and the echoes at each hop (the page draws them; tests/report/test_html.py looks)."""

from vxcap.report.pictures import layers, packet_view, timeline_view

MTU = {"wire": "vxlan", "overhead": {"bytes": 50}, "underlay_mtu": 1500, "max_icmp_payload": 1422,
       "mtus": {"src": {"pod_mtu": 1450}}, "measured": {"largest_df_payload": 1422}}


def flow(expected="vxlan", **extra):
    return {"src_node": "a", "dst_node": "b", "expected": expected, "mtu": dict(MTU, wire=expected), **extra}


def budget_texts(view):
    return [span["text"] for row in view["budget"] for span in row]


def test_a_vxlan_packet_is_its_eight_layers_and_adds_up_to_the_underlay_mtu():
    parts = layers(flow())
    assert [name for name, _, _ in parts] == ["outer Ethernet", "outer IPv4", "UDP", "VXLAN", "inner Ethernet", "IPv4",
                                              "ICMP", "payload"]
    sizes = [n for _, n, _ in parts]
    assert sizes == [14, 20, 8, 8, 14, 20, 8, 1422]
    assert sum(sizes[1:]) == 1500 and sum(sizes[5:]) == 1450 and sum(sizes[1:5]) == 50
    view = packet_view(flow())
    assert budget_texts(view) == ["IP packet 1500 B of underlay MTU 1500", "overhead 50 B",
                                  "pod packet 1450 B of pod MTU 1450"]
    assert "1514-byte frame" in view["caption"]
    assert abs(sum(cell["width"] for cell in view["cells"]) - 100) < 1e-6
    # the budgets sit under the layers they count
    underlay, (overhead, pod) = view["budget"][0][0], view["budget"][1]
    assert abs(underlay["left"] - view["cells"][0]["width"]) < 1e-6 and abs(pod["left"] - overhead["left"] - overhead["width"]) < 1e-6


def test_a_plain_packet_has_no_tunnel_and_fits_the_pod_mtu():
    assert [name for name, _, _ in layers(flow("plain"))] == ["Ethernet", "IPv4", "ICMP", "payload"]
    assert budget_texts(packet_view(flow("plain"))) == ["IP packet 1450 B of pod MTU 1450 · underlay MTU 1500"]


def test_an_unmeasured_payload_is_a_question_mark_not_a_guess():
    view = packet_view({"src_node": "a", "dst_node": "b", "expected": "vxlan"})
    assert view["cells"][-1]["size"] == "?" and "was not measured" in view["caption"]
    assert budget_texts(view)[0] == "IP packet"


def dots(view):
    return [(row["seen"], row["missing"]) for row in view["rows"]]


def test_a_lost_reply_is_a_gap_at_its_hop():
    delivery = {"sent": 3, "left_sender": 3, "arrived_receiver": 3, "answered": 3, "replies_back": 1}
    view = timeline_view(flow(delivery=delivery))
    assert dots(view) == [(3, 0), (3, 0), (3, 0), (1, 2)]
    assert view["rows"][-1]["label"] == "reply back at a" and view["rows"][-1]["count"] == "1/3"
    assert "the prober sent 3" in view["note"]


def test_requests_that_never_left_are_gaps_against_what_the_prober_sent():
    delivery = {"sent": 3, "left_sender": 0, "arrived_receiver": 0, "answered": 0, "replies_back": 0}
    assert dots(timeline_view(flow(delivery=delivery))) == [(0, 3)] * 4


def test_without_delivery_the_frames_at_each_capture_point():
    view = timeline_view(flow(seen_on={"a/eth1": 12, "b/eth1": 9}))
    assert view["unit"] == "frames" and view["rows"][0]["label"] == "frames on a/eth1"
    assert dots(view) == [(12, 0), (9, 3)] and view["rows"][1]["count"] == "9/12"
