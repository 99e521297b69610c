"""`vxcap analyze` on a public capture of real IP-in-IP frames (tests/cli/data/ipip-public-hand, from nDPI's
test suite; its README says where from and what is in it).

The capture holds one UDP flow in one direction and no echoes, so the run never passes (delivery
is not proven, the reverse direction has no packets): what these tests judge is the wire format of
real frames, which reasons of the tunnel-a -> tunnel-b direction name, if any.
"""

from tests.cli.hand_captures import hand_run
from tests.cli import hand_captures
from vxcap.exit_status import ExitStatus

A, B = "tunnel-a", "tunnel-b"
NO_ECHO = "no echo request seen leaving tunnel-a/wire: delivery not proven"


def test_public_ipip_capture_is_read_as_ipip_with_its_outer_and_inner_addresses(tmp_path):
    result, flows = hand_captures.analyze(hand_run(tmp_path, "ipip-public"))
    flow = flows[(A, B)]
    assert (flow["expected"], flow["observed"]) == ("ipip", "ipip")
    assert (flow["outer_src"], flow["outer_dst"]) == ("69.67.35.146", "41.202.46.110")
    assert (flow["src_ip"], flow["dst_ip"]) == ("10.10.100.25", "10.10.101.2")
    assert (flow["vni"], flow["udp_dport"], flow["inner_dst_mac"]) == (None, None, None)  # no UDP, no VNI, no inner Ethernet
    assert flow["packets"] == 10  # 5 frames, the one file listed as both nodes' capture
    assert flow["reasons"] == [NO_ECHO]  # nothing about the wire: UDP, not pings
    assert flows[(B, A)]["observed"] == "none"  # the file holds one direction
    assert result.exit_code == ExitStatus.VERDICT_FAILED


def test_public_ipip_capture_judged_as_vxlan_names_the_ip_in_ip_packets(tmp_path):
    run = hand_run(tmp_path, "ipip-public", encapsulation="vxlan", vni=4096, port=4789, mtu=1450)
    _, flows = hand_captures.analyze(run)
    assert flows[(A, B)]["reasons"] == [
        "10 IP-in-IP packets (outer 69.67.35.146 -> 41.202.46.110), expected VXLAN (vxlanMode Always)", NO_ECHO]


def test_public_ipip_capture_judged_as_plain_names_the_ip_in_ip_packets(tmp_path):
    _, flows = hand_captures.analyze(hand_run(tmp_path, "ipip-public", mode="Never"))
    assert flows[(A, B)]["reasons"] == [
        "10 IP-in-IP packets (outer 69.67.35.146 -> 41.202.46.110), expected plain IPv4 (ipipMode Never)", NO_ECHO]


def test_public_ipip_capture_judged_with_another_outer_destination_names_it(tmp_path):
    _, flows = hand_captures.analyze(hand_run(tmp_path, "ipip-public", nodes={B: {"underlay": "41.202.46.111/32"}}))
    assert flows[(A, B)]["reasons"] == ["outer destination 41.202.46.110, expected 41.202.46.111", NO_ECHO]


def test_public_ipip_capture_judged_with_another_outer_source_names_it(tmp_path):
    _, flows = hand_captures.analyze(hand_run(tmp_path, "ipip-public", nodes={A: {"underlay": "69.67.35.147/32"}}))
    assert flows[(A, B)]["reasons"] == ["outer source 69.67.35.146, expected 69.67.35.147", NO_ECHO]
