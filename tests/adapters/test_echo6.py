"""In-process ICMPv6 echoes on the real vxlan6 lab, with iputils `ping -6` as the witness.

The same claims as test_echo.py's for IPv4, made over IPv6 pods: replies, the sender's
refusal with its route's MTU, and a hop's Packet Too Big, each as ping says it in the
same situation; the echoes on the wire read by scapy's own inet6 dissection.
"""

from __future__ import annotations

import subprocess

import pytest
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

from tests.lab_support import captured, dataplane_spec, lab_session_guard, lab_test, running_lab  # noqa: F401
from vxcap.adapters.echo import EchoPlan, echo_all

pytestmark = pytest.mark.usefixtures("lab_session_guard")

CP, W, W2, W3 = "k01-control-plane", "k01-worker", "k01-worker2", "k01-worker3"
NODES = (CP, W, W2, W3)


def pod6(lab, node):
    return lab.spec.node6(node).pod_ip


def ping_says(lab, src, dst_ip, size, dont_fragment=True):
    """iputils ping's view of one DF echo to an IPv6 pod: the witness."""
    result, _ = lab.ping_output(src, dst_ip, count=1, size=size, dont_fragment=dont_fragment, timeout=1.0, interval=0.01)
    return result


@lab_test
def test_every_ipv6_direction_is_answered_and_its_echoes_cross_the_wire_as_the_path_wants(tmp_path):
    with running_lab(spec=dataplane_spec("vxlan6")) as lab:
        directions = [(s, d) for s in NODES for d in NODES if s != d]
        with captured(lab, W, tmp_path / "w.pcap", "ip6") as pcap:
            results = echo_all([EchoPlan(lab.pod_netns(s), pod6(lab, d), count=2, interval=0.05, size=300)
                                for s, d in directions])
        assert [(r.transmitted, r.received, r.local_errors) for r in results] == [(2, 2, 0)] * len(directions)
        assert all(ping_says(lab, s, pod6(lab, d), 300, dont_fragment=False).all_replied for s, d in directions)
        # Worker's own echo requests on its eth1, by scapy: 300 + 8 bytes of ICMPv6, plain within
        # vlan10's /64, in VXLAN over IPv6 to worker3 in the other subnet.
        sent, checksums = set(), set()
        for pkt in rdpcap(str(pcap)):
            tunnelled = pkt.haslayer(VXLAN)
            inner = pkt[VXLAN].payload.getlayer(IPv6) if tunnelled else pkt.getlayer(IPv6)
            if inner is not None and inner.src == str(pod6(lab, W)) and inner.haslayer(ICMPv6EchoRequest):
                sent.add((inner.dst, tunnelled, inner.plen))
                # We send the checksum as 0; the kernel fills it over the pseudo-header, as scapy computes it
                # (over the whole payload, which the 256-byte snaplen cut: its bytes are known, each its offset).
                echo = inner[ICMPv6EchoRequest]
                payload = bytes(i % 256 for i in range(300))
                assert payload.startswith(echo.data)
                rebuilt = IPv6(src=inner.src, dst=inner.dst) / ICMPv6EchoRequest(id=echo.id, seq=echo.seq, data=payload)
                checksums.add(echo.cksum == IPv6(bytes(rebuilt))[ICMPv6EchoRequest].cksum != 0)
        assert sent == {(str(pod6(lab, CP)), False, 308), (str(pod6(lab, W2)), False, 308),
                        (str(pod6(lab, W3)), True, 308)}
        assert checksums == {True}


def test_linux_fills_the_icmpv6_checksum_itself_and_will_not_be_told_where():
    import socket

    # RFC 3542 3.1: the kernel always computes an ICMPv6 raw socket's checksum; IPV6_CHECKSUM (7) is refused.
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as sock, \
            pytest.raises(OSError, match="Invalid argument"):
        sock.setsockopt(socket.IPPROTO_IPV6, 7, 2)


@lab_test
def test_a_df_echo_too_big_for_the_ipv6_pod_route_is_refused_with_its_mtu_as_ping_is():
    with running_lab(spec=dataplane_spec("vxlan6")) as lab:
        [fits, too_big] = echo_all([
            EchoPlan(lab.pod_netns(W), pod6(lab, W3), size=1382, dont_fragment=True),
            EchoPlan(lab.pod_netns(W), pod6(lab, W3), size=1383, dont_fragment=True),
        ])
        assert fits.received == 1 and not fits.refused_too_big
        assert (too_big.received, too_big.local_errors, too_big.refused_too_big, too_big.local_mtu) == (0, 1, True, 1430)
        witness = ping_says(lab, W, pod6(lab, W3), 1383)
        assert (witness.refused_too_big, witness.local_mtu) == (True, 1430)


@lab_test
def test_without_df_an_ipv6_echo_above_the_mtu_is_fragmented_by_the_sender_and_answered():
    with running_lab(spec=dataplane_spec("vxlan6")) as lab:
        [fragmented] = echo_all([EchoPlan(lab.pod_netns(W), pod6(lab, W3), size=2000, dont_fragment=False)])
        assert (fragmented.received, fragmented.refused_too_big) == (1, False)
        assert ping_says(lab, W, pod6(lab, W3), 2000, dont_fragment=False).all_replied


def shrink_underlay(lab, node, mtu):
    """The node's eth1 below what its pod sends: the node becomes a hop that cannot forward."""
    subprocess.run(["ip", "-n", lab.names.node(node), "link", "set", "eth1", "mtu", str(mtu)], check=True)


@lab_test
def test_a_hop_that_cannot_forward_answers_packet_too_big_as_ping_hears_it():
    with running_lab(spec=dataplane_spec("vxlan6")) as lab:
        shrink_underlay(lab, W, 1400)  # worker -> worker2 is plain IPv6: the pod's 1430 must cross a 1400 eth1
        [too_big] = echo_all([EchoPlan(lab.pod_netns(W), pod6(lab, W2), size=1382, dont_fragment=True)])
        assert (too_big.received, too_big.frag_needed_mtu, too_big.refused_too_big) == (0, 1400, False)
        assert "packet too big (mtu = 1400)" in too_big.message
        # The pod learnt the path MTU: the same echo is now refused before it leaves, with that MTU.
        [after] = echo_all([EchoPlan(lab.pod_netns(W), pod6(lab, W2), size=1382, dont_fragment=True)])
        assert (after.refused_too_big, after.local_mtu) == (True, 1400)
        [smaller] = echo_all([EchoPlan(lab.pod_netns(W), pod6(lab, W2), size=1352, dont_fragment=True)])
        assert smaller.received == 1
    with running_lab(spec=dataplane_spec("vxlan6")) as lab:  # iputils, on a fresh lab with the same fault
        shrink_underlay(lab, W, 1400)
        assert ping_says(lab, W, pod6(lab, W2), 1382).frag_needed_mtu == 1400


@lab_test
def test_one_round_on_a_dual_lab_answers_both_families_from_one_pod():
    with running_lab(spec=dataplane_spec("dual")) as lab:
        plans = [EchoPlan(lab.pod_netns(W), lab.pod(W3).ip, count=3, interval=0.02, size=1402, dont_fragment=True),
                 EchoPlan(lab.pod_netns(W), pod6(lab, W3), count=3, interval=0.02, size=1382, dont_fragment=True),
                 EchoPlan(lab.pod_netns(W), pod6(lab, W3), size=1383, dont_fragment=True)]
        v4, v6, v6_too_big = echo_all(plans)
        # The dual lab's pods carry the smaller MTU (1430) for both families.
        assert (v4.transmitted, v4.received) == (3, 3) and (v6.transmitted, v6.received) == (3, 3)
        assert (v6_too_big.refused_too_big, v6_too_big.local_mtu) == (True, 1430)
