"""MTU arithmetic, evidence parsing, probe ladder, offload and verdicts.

Expected numbers are written out as header sums here, or measured on packets
scapy builds, never taken from vxcap. Fixtures in data/ are real output, made
once on Linux 6.x network namespaces (iproute2 6.1, iputils 20221126) with
Calico's layout: a "node" with eth1 (MTU 1500) and
`ip link add vxlan.calico mtu 1450 type vxlan id 4096 dstport 4789 local 10.10.10.11 dev eth1 nolearning`
(plus vxlan-v6.calico, mtu 1430, local fd00:10:10::11), a "pod" with eth0
MTU 1450 behind a cali veth, and a second node reached through a router:
  ip-link-vxlan.json / ip-link-pod.json   `ip -d -j link` in the node / the pod
  ping-*.txt                              `ping -M do -s N` stdout+stderr from the pod
  vxlan-df-ladder.pcap                    tcpdump on eth1, pings of 56, 1372, 1422 (snaplen 160)
  vxlan-gso-excerpt.pcap                  tcpdump on eth1 during a 2 MB TCP send (snaplen 160)
  vxlan-outer-fragments.pcap              vxlan.calico MTU 1500 without a lower device: 1472 ping
  vxlan-path-mtu-mismatch.pcap            receiving eth1 when the sender's side was 9000
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

from vxcap.core.decode import decode_frame
from vxcap.core.errors import InputError
from vxcap.core.frames import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, tally
from vxcap.core.lab.spec import lab_from_dict
from vxcap.core.model import Mode, Pair, Wire
from vxcap.core.mtu.wire_sizes import LINK_HEADER
from vxcap.core.mtu.path import PointTally, direction_mtu, fail_reasons, probe_records
from vxcap.core.mtu.tcp import connected, connector_argv, listener_argv, listening_port
from vxcap.core.plan import plan
from vxcap.core.mtu import (
    DfFate,
    FrameSize,
    LadderSearch,
    MtuMeasurement,
    NodeMtus,
    ProbeFate,
    ProbeResult,
    calico_mtu_setting,
    classify_frame_size,
    df_outcome,
    frame_len,
    header_share,
    headroom,
    icmp_packet_len,
    interface_mtus,
    judge_mtu,
    ladder_sizes,
    max_icmp_payload,
    max_inner_mtu,
    mtu_report,
    node_mtus,
    outer_packet_len,
    overhead_parts,
    ping_mtu_signals,
    plain_path_cost,
    probe_from_ping,
    seen_on_wire,
    size_tally_of_counts,
    tcp_mss,
    vxlan_overhead,
)

DATA = Path(__file__).parent / "data"
POD_A, POD_B = "192.168.81.65", "192.168.209.65"
NODE_A, NODE_B = "10.10.10.11", "10.10.20.13"
NODE_A6, NODE_B6 = "fd00:10:10::11", "fd00:10:20::13"

# Header sizes, spelled out once so every expectation below is a visible sum.
ETH, IP4, IP6, UDP_H, VXLAN_H, ICMP_H, TCP_H = 14, 20, 40, 8, 8, 8, 20


def inner_packet(size: int, l4: str = "icmp"):
    """A pod IPv4 packet of exactly `size` bytes."""
    if l4 == "tcp":
        return IP(src=POD_A, dst=POD_B, flags="DF") / TCP(sport=40000, dport=5001, flags="A") / (b"t" * (size - IP4 - TCP_H))
    if l4 == "udp":
        return IP(src=POD_A, dst=POD_B) / UDP(sport=40000, dport=5001) / (b"u" * (size - IP4 - UDP_H))
    return IP(src=POD_A, dst=POD_B, flags="DF") / ICMP() / (b"i" * (size - IP4 - ICMP_H))


def encapsulate(inner, underlay_ip: int = 4):
    """The underlay IP packet vxlan.calico would send for `inner` (no outer Ethernet)."""
    outer = IP(src=NODE_A, dst=NODE_B) if underlay_ip == 4 else IPv6(src=NODE_A6, dst=NODE_B6)
    # dport explicit: scapy's VXLAN layer would otherwise overload it to 8472.
    vtep_frame = Ether(src="66:fb:ad:98:aa:13", dst="66:d2:0c:f0:ef:e5") / inner
    return outer / UDP(sport=40000, dport=4789) / VXLAN(vni=4096) / vtep_frame


def captured(packet) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b") / packet)


def read_pcap(name: str):
    return [(bytes(p), p.wirelen) for p in rdpcap(str(DATA / name))]


# --- 1. arithmetic -------------------------------------------------------------------


def test_overhead_is_inner_ethernet_vxlan_udp_and_outer_ip():
    assert vxlan_overhead(4) == ETH + VXLAN_H + UDP_H + IP4 == 50
    assert vxlan_overhead(6) == ETH + VXLAN_H + UDP_H + IP6 == 70
    assert sum(overhead_parts(4).values()) == 50 and overhead_parts(4)["inner_ethernet"] == ETH
    assert sum(overhead_parts(6).values()) == 70 and overhead_parts(6)["outer_ipv6"] == IP6


@pytest.mark.parametrize("underlay_ip", [4, 6])
def test_overhead_matches_what_encapsulation_adds_to_a_built_packet(underlay_ip):
    inner = inner_packet(1000)
    assert len(bytes(inner)) == 1000
    outer = encapsulate(inner, underlay_ip)
    assert len(bytes(outer)) - 1000 == vxlan_overhead(underlay_ip)
    assert outer_packet_len(1000, Wire.VXLAN, underlay_ip) == len(bytes(outer))


def test_1450_fills_a_1500_underlay_and_the_frame_is_1514():
    # The MTU counts the outer IP packet: 1450 + 14 inner Ethernet + 8 VXLAN + 8 UDP + 20 IPv4.
    assert max_inner_mtu(1500) == 1500 - ETH - VXLAN_H - UDP_H - IP4 == 1450
    outer = encapsulate(inner_packet(1450))
    assert len(bytes(outer)) == 1500
    # The outer Ethernet header is on the wire but outside the MTU.
    assert frame_len(1450) == len(captured(outer)) == 1500 + ETH == 1514


def test_ipv6_underlay_leaves_1430():
    assert max_inner_mtu(1500, underlay_ip=6) == 1500 - ETH - VXLAN_H - UDP_H - IP6 == 1430
    outer = encapsulate(inner_packet(1430), underlay_ip=6)
    assert len(bytes(outer)) == 1500
    assert frame_len(1430, underlay_ip=6) == len(captured(outer)) == 1514


def test_limits_at_1450():
    assert max_icmp_payload(1450) == 1450 - IP4 - ICMP_H == 1422
    assert len(bytes(inner_packet(1450))) == len(bytes(IP() / ICMP() / (b"x" * 1422)))
    assert tcp_mss(1450) == 1450 - IP4 - TCP_H == 1410
    assert len(bytes(IP() / TCP() / (b"x" * 1410))) == 1450
    assert icmp_packet_len(1422) == 1422 + IP4 + ICMP_H == 1450
    assert max_icmp_payload(1430, inner_ip=6) == 1430 - IP6 - ICMP_H
    assert tcp_mss(1430, inner_ip=6) == 1430 - IP6 - TCP_H


@pytest.mark.parametrize(
    ("underlay", "underlay_ip", "pod"),
    [(9000, 4, 9000 - 50), (9500, 4, 9500 - 50), (9000, 6, 9000 - 70), (1500, 4, 1500 - 50)],
)
def test_jumbo_underlays(underlay, underlay_ip, pod):
    assert max_inner_mtu(underlay, underlay_ip=underlay_ip) == pod
    assert max_inner_mtu(underlay, Wire.PLAIN, underlay_ip) == underlay


@pytest.mark.parametrize("wire", [Wire.PLAIN, Wire.VXLAN])
@pytest.mark.parametrize("underlay_ip", [4, 6])
@pytest.mark.parametrize("inner", [84, 576, 1400, 1450])
def test_frame_len_is_the_length_of_the_built_frame(wire, underlay_ip, inner):
    packet = inner_packet(inner)
    on_underlay = encapsulate(packet, underlay_ip) if wire is Wire.VXLAN else packet
    assert frame_len(inner, wire, underlay_ip) == len(captured(on_underlay))


def test_frame_len_counts_ethernet_padding():
    # 20 IPv4 + 8 ICMP = 28-byte packet, 42 with Ethernet: padded to the 60-byte minimum.
    assert frame_len(28, Wire.PLAIN) == 60
    assert frame_len(28, Wire.VXLAN) == 28 + 50 + ETH == 92


def test_kernel_frames_match_the_arithmetic():
    # Real VXLAN pings from the fixture: every frame is outer Ethernet + 50 + the pod packet.
    frames = read_pcap("vxlan-df-ladder.pcap")
    assert sorted({wire_len for _, wire_len in frames}) == [148, 1464, 1514]
    for data, wire_len in frames:
        facts = decode_frame(data, wire_len=wire_len)
        assert frame_len(facts.inner_len) == wire_len
        assert IP(data[ETH:]).len == outer_packet_len(facts.inner_len)
    inner_lens = {decode_frame(d, wire_len=w).inner_len for d, w in frames}
    assert inner_lens == {56 + 28, 1372 + 28, 1422 + 28}


def test_kernel_outer_fragments_add_up_to_inner_plus_50():
    # vxlan.calico at MTU 1500 on a 1500 underlay: a 1500-byte pod packet made 1550 outer bytes.
    frames = read_pcap("vxlan-outer-fragments.pcap")
    first, second = IP(frames[0][0][ETH:]), IP(frames[1][0][ETH:])
    assert first.flags.MF and second.frag * 8 == first.len - IP4
    outer_total = IP4 + (first.len - IP4) + (second.len - IP4)
    inner = decode_frame(frames[0][0], wire_len=frames[0][1]).inner_len
    assert inner == 1500
    assert outer_total == 1500 + ETH + VXLAN_H + UDP_H + IP4 == outer_packet_len(inner)


def test_header_shares():
    # 64-byte TCP payload: plain 14 + 20 + 20 + 64 = 118, VXLAN 50 more.
    plain = header_share(64, Wire.PLAIN)
    assert plain.frame == 118 and plain.header_bytes == 54 and plain.share == pytest.approx(54 / 118)
    vx = header_share(64, Wire.VXLAN)
    assert vx.frame == 168 and vx.share == pytest.approx(104 / 168)
    big = header_share(1400, Wire.VXLAN)
    assert big.frame == 1400 + 20 + 20 + 50 + 14 == 1504 and big.share == pytest.approx(104 / 1504)
    assert header_share(512, Wire.VXLAN, underlay_ip=6).frame == 512 + 20 + 20 + 70 + 14
    icmp = header_share(512, Wire.PLAIN, "icmp")
    assert icmp.frame == len(captured(inner_packet(512 + 28))) == 554
    for payload in (64, 512, 1400):
        built = captured(encapsulate(inner_packet(payload + IP4 + TCP_H, "tcp")))
        assert header_share(payload, Wire.VXLAN).frame == len(built)


def test_header_share_rejects_unknown_protocols():
    with pytest.raises(InputError, match="sctp"):
        header_share(64, Wire.PLAIN, "sctp")


@pytest.mark.parametrize("bad", [0, 67, 65536, "1500", True])
def test_out_of_range_underlay_mtu(bad):
    with pytest.raises(InputError, match="underlay MTU"):
        max_inner_mtu(bad)


def test_underlay_too_small_for_vxlan():
    with pytest.raises(InputError, match="leaves 50 bytes"):
        max_inner_mtu(100)


def test_df_1500_from_a_pod_at_1450_is_refused_locally():
    out = df_outcome(1500, wire=Wire.VXLAN, pod_mtu=1450, vxlan_mtu=1450, underlay_mtu=1500)
    assert out.fate is DfFate.REFUSED_LOCALLY and out.limit == 1450 and out.stopped_at == "pod eth0"
    assert out.outer_packet == 1500 + 50 and out.outer_frame == 1550 + ETH
    # The words ping really prints in that case (fixture from a pod at MTU 1450):
    real = (DATA / "ping-1423-local-error.txt").read_text()
    assert "message too long, mtu=1450" in real and "message too long, mtu=1450" in out.explanation


def test_df_1500_from_a_pod_at_1500_meets_vxlan_calico():
    out = df_outcome(1500, wire=Wire.VXLAN, pod_mtu=1500, vxlan_mtu=1450, underlay_mtu=1500)
    assert out.fate is DfFate.FRAG_NEEDED and out.limit == 1450 and out.stopped_at == "vxlan.calico"
    real = (DATA / "ping-1472-frag-needed.txt").read_text()
    assert "Frag needed and DF set (mtu = 1450)" in real


@pytest.mark.parametrize("vxlan_mtu", [1500, None])
def test_df_1500_when_the_tunnel_lets_it_in_is_fragmented_outside(vxlan_mtu):
    out = df_outcome(1500, wire=Wire.VXLAN, pod_mtu=1500, vxlan_mtu=vxlan_mtu, underlay_mtu=1500)
    assert out.fate is DfFate.OUTER_FRAGMENTED and out.stopped_at == "eth1"
    assert out.outer_packet == 1500 + ETH + VXLAN_H + UDP_H + IP4 == 1550
    assert "1550 > underlay eth1 MTU 1500" in out.explanation


def test_df_outcomes_that_cross_and_plain_ones():
    assert df_outcome(1450, wire=Wire.VXLAN, pod_mtu=1450, vxlan_mtu=1450, underlay_mtu=1500).fate is DfFate.CROSSES
    assert df_outcome(1500, wire=Wire.PLAIN, pod_mtu=1500, underlay_mtu=1500).fate is DfFate.CROSSES
    plain = df_outcome(1500, wire=Wire.PLAIN, pod_mtu=1500, underlay_mtu=1400)
    assert plain.fate is DfFate.FRAG_NEEDED and plain.limit == 1400 and plain.outer_frame == 1514
    # IPv6 underlay: 1450 + 70 = 1520 does not fit 1500.
    v6 = df_outcome(1450, wire=Wire.VXLAN, pod_mtu=1450, underlay_mtu=1500, underlay_ip=6)
    assert v6.fate is DfFate.OUTER_FRAGMENTED and v6.outer_packet == 1450 + 70


def test_plain_path_cost_at_1450_on_1500():
    cost = plain_path_cost(1450, 1500)
    assert cost.unused == 50
    assert (cost.mss, cost.possible_mss) == (1450 - 40, 1500 - 40)
    assert cost.payload_loss == pytest.approx(50 / 1460) and round(cost.payload_loss * 100, 1) == 3.4
    assert plain_path_cost(1500, 1500) is None


def test_headroom_names_the_pod_mtu_and_the_setting():
    room = headroom(1450, 9000)
    assert room.allowed_pod_mtu == 9000 - 50 and room.unused == 8950 - 1450
    assert "vxlanMTU: 8950 in FelixConfiguration" in room.setting
    assert "spec.calicoNetwork.mtu: 8950" in room.setting
    assert headroom(1450, 9500).allowed_pod_mtu == 9450
    assert "vxlanMTUV6: 8930" in headroom(1430, 9000, underlay_ip=6).setting
    assert headroom(1450, 1500) is None
    assert headroom(1450, 1500, Wire.PLAIN).allowed_pod_mtu == 1500
    assert calico_mtu_setting() == "vxlanMTU in FelixConfiguration or spec.calicoNetwork.mtu in the operator Installation"


# --- 2. ip -d -j link ----------------------------------------------------------------


def test_node_links_from_real_ip_output():
    links = interface_mtus((DATA / "ip-link-vxlan.json").read_text())
    assert links["eth1"].mtu == 1500 and links["eth1"].kind == "veth"
    vx = links["vxlan.calico"]
    assert (vx.mtu, vx.kind, vx.vni, vx.port, vx.local, vx.parent) == (1450, "vxlan", 4096, 4789, "10.10.10.11", "eth1")
    assert vx.address == "66:fb:ad:98:aa:13" and vx.up is True and vx.local_ip_version == 4
    v6 = links["vxlan-v6.calico"]
    assert (v6.mtu, v6.local, v6.local_ip_version) == (1430, "fd00:10:10::11", 6)
    assert links["lo"].kind is None and links["lo"].mtu == 65536
    pod = interface_mtus((DATA / "ip-link-pod.json").read_text())
    assert set(pod) == {"lo", "eth0"} and pod["eth0"].mtu == 1450


def test_node_mtus_from_real_ip_output():
    node = interface_mtus((DATA / "ip-link-vxlan.json").read_text())
    pod = interface_mtus((DATA / "ip-link-pod.json").read_text())
    mtus = node_mtus("k01-worker", node, pod, pod="vxcap-probe")
    assert (mtus.pod_mtu, mtus.vxlan_mtu, mtus.underlay_mtu) == (1450, 1450, 1500)
    assert (mtus.vxlan_ifname, mtus.underlay_ifname, mtus.pod) == ("vxlan.calico", "eth1", "vxcap-probe")
    v6 = node_mtus("k01-worker", node, pod, underlay_ip=6)
    assert (v6.vxlan_ifname, v6.vxlan_mtu, v6.underlay_mtu) == ("vxlan-v6.calico", 1430, 1500)


def test_the_underlay_is_the_vxlan_parent():
    entries = json.loads((DATA / "ip-link-vxlan.json").read_text())
    for entry in entries:
        if entry["ifname"] == "eth1":
            entry["ifname"] = "ens5"
        if entry["ifname"] == "vxlan.calico":
            entry["linkinfo"]["info_data"]["link"] = "ens5"
    mtus = node_mtus("n", interface_mtus(json.dumps(entries)))
    assert (mtus.underlay_ifname, mtus.underlay_mtu) == ("ens5", 1500)
    assert node_mtus("n", interface_mtus(json.dumps(entries)), underlay_ifname="lo").underlay_mtu == 65536


def test_missing_fields_are_tolerated():
    entries = json.loads((DATA / "ip-link-vxlan.json").read_text())
    by_name = {e["ifname"]: e for e in entries}
    del by_name["eth1"]["mtu"]
    del by_name["vxlan.calico"]["linkinfo"]["info_data"]
    del by_name["cali81"]["linkinfo"]
    by_name["lo"]["mtu"] = "65536"  # wrong type: unknown, not a crash
    entries.append({"mtu": 9000})  # no name: skipped
    entries.append("garbage")
    entries.append({"ifname": "eth9@if12", "flags": "UP"})
    links = interface_mtus(json.dumps(entries))
    assert links["eth1"].mtu is None
    vx = links["vxlan.calico"]
    assert vx.kind == "vxlan" and vx.mtu == 1450 and (vx.vni, vx.port, vx.parent) == (None, None, None)
    assert links["cali81"].kind is None and links["lo"].mtu is None
    assert links["eth9"].mtu is None and links["eth9"].up is None
    mtus = node_mtus("k01-worker", links)
    assert (mtus.pod_mtu, mtus.vxlan_mtu, mtus.underlay_mtu, mtus.underlay_ifname) == (None, 1450, None, "eth1")
    assert node_mtus("k01-worker", None) == NodeMtus("k01-worker")


@pytest.mark.parametrize(
    ("text", "says"), [("", "empty"), ("  \n", "empty"), ("mtu 1450", "not JSON"), ('{"ifname": "eth0"}', "JSON dict")]
)
def test_unreadable_ip_output_is_one_line_input_error(text, says):
    with pytest.raises(InputError, match=says) as err:
        interface_mtus(text)
    assert "\n" not in str(err.value)


# --- 3. probes -----------------------------------------------------------------------


def test_ladder_at_1450():
    sizes = ladder_sizes(1450)
    assert {1372, 1422, 1423, 1472} <= set(sizes)
    assert 56 in sizes and sizes == sorted(set(sizes))
    # Payload sizes, packets = size + 28: 1400, the limit 1450, one past it, the classic 1500.
    assert {s + IP4 + ICMP_H for s in (1372, 1422, 1423, 1472)} == {1400, 1450, 1451, 1500}


def test_ladder_follows_the_pod_mtu():
    assert {1472, 1473, 1422} <= set(ladder_sizes(1500))
    assert {9000 - 28, 9000 - 27, 9000 - 78} <= set(ladder_sizes(9000))
    assert ladder_sizes(None) == [56, 1372, 1422, 1423, 1472]
    assert all(0 <= s <= 65535 - 28 for s in ladder_sizes(65535))


def test_probe_fates():
    assert ProbeResult(1422, reply=True).packet == 1422 + 28
    assert ProbeResult(1422, reply=True, sent_on_wire=True).fate is ProbeFate.CROSSED
    assert ProbeResult(1423, reply=False, sent_on_wire=False, refused_locally=True).fate is ProbeFate.REFUSED_LOCALLY
    assert ProbeResult(1472, reply=False, refused_locally=True, frag_needed_mtu=1450).fate is ProbeFate.FRAG_NEEDED
    assert ProbeResult(1422, reply=False, sent_on_wire=True).fate is ProbeFate.LOST_ON_WIRE
    assert ProbeResult(1422, reply=False, sent_on_wire=False).fate is ProbeFate.NOT_SENT
    assert ProbeResult(1422, reply=False).fate is ProbeFate.LOST


def run_search(search: LadderSearch, limit_packet: int, start=()):
    """Drive the search against a path that carries DF packets up to `limit_packet` bytes."""
    results = [ProbeResult(s, reply=s + 28 <= limit_packet) for s in start]
    while (size := search.propose(results)) is not None:
        assert size not in {r.size for r in results}, "proposed a size it already has"
        results.append(ProbeResult(size, reply=size + 28 <= limit_packet))
    return results


@pytest.mark.parametrize("limit", [1450, 1400, 1300, 1500, 8950, 576, 68])
def test_search_finds_the_exact_largest_payload(limit):
    search = LadderSearch()
    results = run_search(search, limit, start=ladder_sizes(1450))
    bounds = search.bounds(results)
    assert bounds.largest_crossed == limit - 28 and bounds.smallest_failed_above == limit - 27 and bounds.exact
    # Bisection over 65508 sizes needs at most 17 more probes than the ladder.
    assert len(results) <= len(ladder_sizes(1450)) + 17


def test_the_ladder_alone_pins_1422_at_1450():
    results = [ProbeResult(s, reply=s + 28 <= 1450) for s in ladder_sizes(1450)]
    assert LadderSearch().propose(results) is None
    assert LadderSearch().bounds(results).largest_crossed == 1422


def test_search_from_nothing_starts_in_the_middle():
    assert LadderSearch().propose([]) == (-1 + 65508) // 2
    assert LadderSearch(floor=1000, ceiling=2000).propose([]) == (999 + 2001) // 2


def test_search_when_everything_crosses_stops_at_the_ceiling():
    search = LadderSearch(floor=0, ceiling=9000)
    results = run_search(search, 65535)
    bounds = search.bounds(results)
    assert bounds.largest_crossed == 9000 and bounds.smallest_failed_above is None and not bounds.exact


def test_search_when_nothing_crosses():
    search = LadderSearch(floor=0, ceiling=1500)
    results = run_search(search, 0)
    bounds = search.bounds(results)
    assert bounds.largest_crossed is None and bounds.smallest_failed_above == 0


def test_search_budget():
    search = LadderSearch(max_probes=5)
    results = run_search(search, 1000)
    assert len(results) == 5 and search.propose(results) is None


def test_one_reply_among_losses_counts_as_crossing():
    results = [ProbeResult(1422, reply=False), ProbeResult(1422, reply=True), ProbeResult(1423, reply=False)]
    assert LadderSearch().bounds(results).exact


@pytest.mark.parametrize(("floor", "ceiling", "budget"), [(-1, 100, 5), (10, 5, 5), (0, 70000, 5), (0, 100, 0)])
def test_search_rejects_bad_ranges(floor, ceiling, budget):
    with pytest.raises(InputError):
        LadderSearch(floor=floor, ceiling=ceiling, max_probes=budget)


def test_ping_mtu_signals_from_real_ping_output():
    ok = ping_mtu_signals((DATA / "ping-1422-ok.txt").read_text())
    assert not ok.refused_locally and ok.local_mtu is None and ok.frag_needed_mtu is None
    local = ping_mtu_signals((DATA / "ping-1423-local-error.txt").read_text())
    assert local.refused_locally and local.local_mtu == 1450 and local.frag_needed_mtu is None
    frag = ping_mtu_signals((DATA / "ping-1472-frag-needed.txt").read_text())
    assert frag.frag_needed_mtu == 1450 and frag.refused_locally  # the second echo, after PMTU was cached
    busybox = ping_mtu_signals("PING 192.168.209.65 (192.168.209.65): 1472 data bytes\nping: sendto: Message too long\n")
    assert busybox.refused_locally and busybox.local_mtu is None


# --- 5. offload ----------------------------------------------------------------------


def gso_tcp(size: int):
    return IP(src=POD_A, dst=POD_B, flags="DF") / TCP(sport=40000, dport=5001, flags="A") / (b"g" * (size - 40))


@pytest.mark.parametrize("vxlan", [False, True])
def test_a_9000_byte_tcp_segment_on_a_1500_link_is_offload(vxlan):
    packet = encapsulate(gso_tcp(9000)) if vxlan else gso_tcp(9000)
    raw = captured(packet)
    assert len(raw) == 9000 + ETH + (50 if vxlan else 0)
    facts = decode_frame(raw)
    assert facts.ip_proto == 6
    assert classify_frame_size(facts.wire_len, 1500, facts.ip_proto, fragment=facts.outer_fragment) is FrameSize.OFFLOAD


def test_big_icmp_is_oversize_not_offload():
    facts = decode_frame(captured(inner_packet(9000)))
    assert classify_frame_size(facts.wire_len, 1500, facts.ip_proto) is FrameSize.OVERSIZE
    vx = decode_frame(captured(encapsulate(inner_packet(1500))))
    assert vx.wire_len == 1564 and classify_frame_size(vx.wire_len, 1500, vx.ip_proto) is FrameSize.OVERSIZE


def test_udp_aggregate_is_offload_but_an_oversize_fragment_is_not():
    assert classify_frame_size(9014, 1500, 17) is FrameSize.OFFLOAD
    assert classify_frame_size(9014, 1500, 17, fragment=True) is FrameSize.OVERSIZE


def test_frame_size_boundary_is_mtu_plus_link_header():
    assert classify_frame_size(1500 + ETH, 1500, 1) is FrameSize.FITS
    assert classify_frame_size(1500 + ETH + 1, 1500, 1) is FrameSize.OVERSIZE
    sll = bytes(CookedLinux(proto=0x0800) / inner_packet(1500))
    assert len(sll) == 1500 + 16 and LINK_HEADER[LINKTYPE_LINUX_SLL] == 16
    assert classify_frame_size(len(sll), 1500, 1, link_header=16) is FrameSize.FITS
    assert LINK_HEADER[LINKTYPE_ETHERNET] == ETH and LINK_HEADER[LINKTYPE_RAW] == 0
    assert LINK_HEADER[LINKTYPE_LINUX_SLL2] == 20


def size_tally(frames, iface_mtu: int):
    """Frame sizes the way a run reads them: the frames tallied per flow, their sizes summed."""
    sizes = Counter()
    for flow in tally(frames).values():
        sizes.update(flow.sizes)
    return size_tally_of_counts(sizes, iface_mtu)


def frag_needed_mtu(data: bytes, linktype: int = LINKTYPE_ETHERNET) -> int | None:
    """The next-hop MTU of a fragmentation-needed, as the decoder files it for the MTU verdicts."""
    facts = decode_frame(data, linktype)
    return None if facts is None else facts.frag_needed_mtu


def test_real_gso_capture_is_offload_not_violation():
    frames = read_pcap("vxlan-gso-excerpt.pcap")
    facts = [decode_frame(data, wire_len=wire_len) for data, wire_len in frames]
    tally = size_tally(facts, 1500)
    assert tally.frames == 4 and tally.offload_frames == 2 and tally.oversize_frames == 0
    assert tally.max_offload_frame == 64424 and tally.max_frame == 124
    assert (tally.max_offload_frame - ETH) > 1500  # why it needs explaining at all


def test_size_tally_of_real_pings_and_fragments():
    ladder = size_tally((decode_frame(d, wire_len=w) for d, w in read_pcap("vxlan-df-ladder.pcap")), 1500)
    assert ladder.max_frame == 1514 and ladder.offload_frames == ladder.oversize_frames == ladder.outer_fragments == 0
    frags = size_tally([decode_frame(d, wire_len=w) for d, w in read_pcap("vxlan-outer-fragments.pcap")] + [None], 1500)
    assert frags.frames == 4 and frags.outer_fragments == 4 and frags.oversize_frames == 0


def frag_needed(mtu: int):
    original = inner_packet(1500)
    return IP(src="10.10.10.11", dst=POD_A) / ICMP(type=3, code=4, nexthopmtu=mtu) / bytes(original)[:28]


def test_frag_needed_plain_and_in_vxlan():
    assert frag_needed_mtu(captured(frag_needed(1450))) == 1450
    assert frag_needed_mtu(captured(encapsulate(frag_needed(1400)))) == 1400
    assert frag_needed_mtu(bytes(frag_needed(1300)), LINKTYPE_RAW) == 1300
    assert frag_needed_mtu(bytes(CookedLinux(proto=0x0800) / frag_needed(1280)), LINKTYPE_LINUX_SLL) == 1280
    tagged = bytes(Ether() / Dot1Q(vlan=10) / frag_needed(1450))
    assert frag_needed_mtu(tagged) == 1450


def test_other_frames_are_not_frag_needed():
    assert frag_needed_mtu(captured(inner_packet(84))) is None
    assert frag_needed_mtu(captured(IP(dst=POD_A) / ICMP(type=3, code=3) / (b"x" * 28))) is None
    assert frag_needed_mtu(captured(encapsulate(inner_packet(84)))) is None
    later = fragment(IP(dst=POD_A) / ICMP(type=3, code=4) / (b"x" * 3000), fragsize=1480)[1]
    assert frag_needed_mtu(captured(later)) is None
    assert frag_needed_mtu(b"\x00" * 10) is None
    assert frag_needed_mtu(bytes(Ether() / IPv6()), LINKTYPE_ETHERNET) is None


def test_frag_needed_in_a_real_capture():
    found = [frag_needed_mtu(data) for data, _ in read_pcap("vxlan-path-mtu-mismatch.pcap")]
    assert found == [None, None, 1450]


# --- 4. verdicts ---------------------------------------------------------------------


def node(name, pod=1450, vxlan=1450, underlay=1500, pod_name=None):
    return NodeMtus(name, pod, vxlan, underlay, pod=pod_name)


def ladder(limit_packet: int, pod_mtu: int = 1450, sizes=None):
    """Probe results of a path carrying DF packets up to `limit_packet`, sent from a pod at `pod_mtu`."""
    results = []
    for size in sizes or ladder_sizes(pod_mtu):
        packet = size + 28
        if packet > pod_mtu:
            results.append(ProbeResult(size, reply=False, sent_on_wire=False, refused_locally=True))
        else:
            results.append(ProbeResult(size, reply=packet <= limit_packet, sent_on_wire=True))
    return tuple(results)


def codes(findings, level=None):
    return [f.code for f in findings if level is None or f.level == level]


def one(findings, code):
    found = [f for f in findings if f.code == code]
    assert len(found) == 1, findings
    return found[0]


def test_a_healthy_vxlan_path_has_only_information():
    findings = judge_mtu(Wire.VXLAN, node("k01-worker"), node("k01-worker3"), MtuMeasurement(probes=ladder(1450)))
    assert codes(findings, "fail") == [] and codes(findings, "warn") == []
    largest = one(findings, "largest-df-payload")
    assert largest.level == "info" and ": 1422 (1450-byte packet; expected 1422" in largest.message


def test_pod_mtu_above_underlay_minus_overhead_fails_naming_node_interface_setting():
    findings = judge_mtu(Wire.VXLAN, node("k01-worker", pod=1500, pod_name="vxcap-probe-worker"), node("k01-worker3"))
    fail = one(findings, "pod-mtu-too-big")
    assert fail.level == "fail"
    for words in ("vxcap-probe-worker eth0 MTU 1500 on k01-worker", "expected <= 1450", "spec.calicoNetwork.mtu"):
        assert words in fail.message


def test_vxlan_device_mtu_above_underlay_minus_overhead_fails():
    fail = one(judge_mtu(Wire.VXLAN, node("k01-worker", vxlan=1500), node("k01-worker3")), "vxlan-mtu-too-big")
    assert "vxlan.calico MTU 1500 on k01-worker, expected <= 1450" in fail.message
    assert "vxlanMTU: 1450 in FelixConfiguration" in fail.message


def test_ipv6_underlay_limit_is_1430():
    a = NodeMtus("k01-worker", 1450, 1430, 1500, vxlan_ifname="vxlan-v6.calico")
    findings = judge_mtu(Wire.VXLAN, a, node("k01-worker3", pod=1430, vxlan=1430), underlay_ip=6)
    fail = one(findings, "pod-mtu-too-big")
    assert "eth0 MTU 1450 on k01-worker, expected <= 1430 (underlay MTU 1500 - 70 VXLAN overhead)" in fail.message
    assert codes(findings, "fail") == ["pod-mtu-too-big"]
    v6_too_big = NodeMtus("n1", 1430, 1450, 1500, vxlan_ifname="vxlan-v6.calico")
    bad_vxlan = judge_mtu(Wire.VXLAN, v6_too_big, node("n2", 1430, 1430), underlay_ip=6)
    assert "vxlanMTUV6: 1430" in one(bad_vxlan, "vxlan-mtu-too-big").message


def test_pod_above_vxlan_device_warns_about_pmtud():
    findings = judge_mtu(Wire.VXLAN, node("k01-worker", pod=1450, vxlan=1400), node("k01-worker3"))
    assert codes(findings, "fail") == [] and one(findings, "pod-mtu-above-vxlan-mtu").level == "warn"


def test_a_probe_that_should_fit_and_did_not_cross_fails():
    probes = ladder(1400)  # something on the path carries only 1400-byte packets
    findings = judge_mtu(Wire.VXLAN, node("k01-worker"), node("k01-worker3"), MtuMeasurement(probes=probes))
    fail = one(findings, "probe-lost")
    assert "payload 1422 (sent on the wire, no reply came back)" in fail.message
    assert "packets <= 1450 bytes" in fail.message and "1372" not in fail.message
    assert "at least 1372" in one(findings, "largest-df-payload").message


def test_lost_probe_reports_where_it_stopped():
    probes = (ProbeResult(1372, reply=False, sent_on_wire=False), ProbeResult(1422, reply=False, refused_locally=True))
    fail = one(judge_mtu(Wire.VXLAN, node("a"), node("b"), MtuMeasurement(probes=probes)), "probe-lost")
    assert "1372 (never reached the wire), 1422 (refused locally (message too long))" in fail.message


def test_black_hole_when_the_pod_mtu_lets_too_big_packets_out():
    probes = ladder(1450, pod_mtu=1500)  # 1472 leaves the pod and dies on the path
    findings = judge_mtu(Wire.VXLAN, node("k01-worker", pod=1500), node("k01-worker3"), MtuMeasurement(probes=probes))
    assert "pod-mtu-too-big" in codes(findings, "fail")
    hole = one(findings, "black-hole")
    assert hole.level == "fail" and "payload 1423 (sent on the wire, no reply came back), 1472 (sent" in hole.message
    assert "1473" not in hole.message  # one past the pod MTU of 1500: refused locally, as it should be


def test_frag_needed_probe_is_not_a_black_hole():
    probes = (ProbeResult(1422, reply=True), ProbeResult(1472, reply=False, refused_locally=True, frag_needed_mtu=1450))
    findings = judge_mtu(Wire.VXLAN, node("a", pod=1500), node("b"), MtuMeasurement(probes=probes, icmp_frag_needed=1))
    assert "black-hole" not in codes(findings) and one(findings, "icmp-frag-needed").level == "warn"


def test_a_probe_crossing_above_the_known_limit_warns():
    probes = (ProbeResult(1422, reply=True), ProbeResult(1423, reply=True))
    findings = judge_mtu(Wire.VXLAN, node("a"), node("b"), MtuMeasurement(probes=probes))
    assert "payload 1423" in one(findings, "probe-crossed-above-limit").message


def test_outer_fragments_fail_on_vxlan_and_warn_on_plain():
    m = MtuMeasurement(outer_fragments=4, capture_node="k01-worker3")
    fail = one(judge_mtu(Wire.VXLAN, node("k01-worker"), node("k01-worker3"), m), "outer-fragments")
    assert fail.level == "fail" and "4 VXLAN packets" in fail.message and "on k01-worker3" in fail.message
    assert one(judge_mtu(Wire.PLAIN, node("a"), node("b"), m), "fragments").level == "warn"


def test_oversize_frame_fails_but_offload_is_information():
    big = MtuMeasurement(max_outer_frame=1550 + ETH)
    fail = one(judge_mtu(Wire.VXLAN, node("a"), node("b"), big), "oversize-frame")
    assert "1564 bytes: IP packet 1550 > underlay MTU 1500" in fail.message
    fine = MtuMeasurement(max_outer_frame=1500 + ETH, offload_frames=25, max_offload_frame=64424)
    findings = judge_mtu(Wire.VXLAN, node("a"), node("b"), fine)
    assert codes(findings, "fail") == [] and "up to 64424 bytes" in one(findings, "offload-frames").message


def test_unused_jumbo_headroom_warns_with_the_allowed_mtu_and_setting():
    findings = judge_mtu(Wire.VXLAN, node("k01-worker", underlay=9000), node("k01-worker3", underlay=9000))
    warns = [f for f in findings if f.code == "unused-headroom"]
    assert len(warns) == 1 and codes(findings, "fail") == []  # the sender's; the receiver's on the reverse direction
    assert "on k01-worker leaves 7500 bytes of underlay MTU 9000 unused" in warns[0].message
    assert "allows pod MTU 8950 (9000 - 50 VXLAN overhead)" in warns[0].message
    assert "vxlanMTU: 8950 in FelixConfiguration or spec.calicoNetwork.mtu: 8950" in warns[0].message
    clab = judge_mtu(Wire.VXLAN, node("a", underlay=9500), node("b", underlay=9500))
    assert "allows pod MTU 9450" in [f for f in clab if f.code == "unused-headroom"][0].message


def test_a_dual_stack_pod_sized_for_its_ipv6_path_is_not_told_to_grow():
    # Calico gives a dual-stack pod the smaller MTU (1430, IPv6 VXLAN's 70 bytes): the IPv4 path's
    # 20 unused bytes are by design, and "set vxlanMTU: 1450" would be wrong advice there.
    pods_1430 = {"pod": 1430}
    dual = judge_mtu(Wire.VXLAN, node("a", **pods_1430), node("b", **pods_1430), other_family=(Wire.VXLAN, 6))
    assert "unused-headroom" not in codes(dual, "warn")
    note = one(dual, "dual-stack-pod-mtu")
    assert note.level == "info" and "is what its IPv6 path allows (1500 - 70 vxlan overhead)" in note.message
    # Its twin: single-stack, the same pod MTU is headroom to take back.
    single = judge_mtu(Wire.VXLAN, node("a", **pods_1430), node("b", **pods_1430))
    assert "leaves 20 bytes of underlay MTU 1500 unused" in one(single, "unused-headroom").message
    # And a dual-stack pod below both families' limits is still told.
    low = judge_mtu(Wire.VXLAN, node("a", pod=1400), node("b", pod=1400), other_family=(Wire.VXLAN, 6))
    assert "allows pod MTU 1450" in one(low, "unused-headroom").message


def test_a_smaller_hop_between_the_nodes_sets_the_limit():
    jumbo = {"underlay": 9000, "pod": 8950, "vxlan": 8950}
    findings = judge_mtu(Wire.VXLAN, node("a", **jumbo), node("b", **jumbo), hop_mtu=1500)
    assert codes(findings, "fail") == ["pod-mtu-too-big", "vxlan-mtu-too-big"]
    assert "pod eth0 MTU 8950 on a, expected <= 1450" in findings[0].message


def test_same_subnet_plain_path_cost_is_information():
    findings = judge_mtu(Wire.PLAIN, node("k01-worker"), node("k01-worker2"))
    assert codes(findings, "fail") == [] and codes(findings, "warn") == []
    cost = one(findings, "plain-path-cost")
    for words in ("pod MTU 1450 though the underlay allows 1500", "50 bytes", "MSS 1410 instead of 1460", "3.4%"):
        assert words in cost.message


def test_plain_path_checks_the_pod_against_the_plain_limit():
    # 1500 is too big for this node's VXLAN paths (judged there), but fits this plain one.
    assert codes(judge_mtu(Wire.PLAIN, node("a", pod=1500), node("b", pod=1500)), "fail") == []
    fail = one(judge_mtu(Wire.PLAIN, node("a", pod=9000), node("b")), "pod-mtu-too-big")
    assert "expected <= 1500 (underlay MTU 1500, plain)" in fail.message


def test_without_an_overlay_the_pod_may_use_the_whole_underlay():
    findings = judge_mtu(Wire.PLAIN, node("a"), node("b"), mode=Mode.NEVER)
    warn = [f for f in findings if f.code == "unused-headroom"][0]
    assert "allows pod MTU 1500 (no encapsulation)" in warn.message and "vxlanMTU" not in warn.message


def test_unknown_mtus_are_said_and_not_judged():
    findings = judge_mtu(Wire.VXLAN, NodeMtus("k01-worker"), NodeMtus("k01-worker3"), MtuMeasurement(probes=ladder(1450)))
    assert codes(findings, "fail") == [] and codes(findings, "warn") == []
    unknown = [f.message for f in findings if f.code == "mtu-unknown"]
    assert len(unknown) == 2 and "pod eth0 MTU, eth1 MTU, vxlan.calico MTU on k01-worker unknown" in unknown[0]


def test_fails_come_first():
    m = MtuMeasurement(offload_frames=1, max_offload_frame=9014, icmp_frag_needed=2)
    findings = judge_mtu(Wire.VXLAN, node("a", pod=1500, underlay=1500), node("b"), m)
    levels = [f.level for f in findings]
    assert levels == sorted(levels, key=["fail", "warn", "info"].index) and levels[0] == "fail"


# --- 6. report -----------------------------------------------------------------------


def test_report_for_a_vxlan_path_is_json_with_the_numbers():
    m = MtuMeasurement(
        probes=ladder(1450), max_outer_frame=1514, offload_frames=2, max_offload_frame=64424, capture_node="k01-worker"
    )
    report = json.loads(json.dumps(mtu_report(Wire.VXLAN, node("k01-worker"), node("k01-worker3"), m)))
    assert report["overhead"]["bytes"] == 14 + 8 + 8 + 20 and report["overhead"]["outer_ethernet_not_counted"] == 14
    assert report["underlay_mtu"] == 1500 and report["underlay_mtu_assumed"] is False
    assert report["max_inner_packet"] == 1450 and report["path_limit"] == 1450
    assert (report["max_icmp_payload"], report["tcp_mss"], report["max_frame"]) == (1422, 1410, 1514)
    rows = {r["payload"]: r for r in report["header_shares"]}
    assert rows[64]["plain_frame"] == 14 + 20 + 20 + 64 and rows[64]["vxlan_frame"] == 14 + 50 + 20 + 20 + 64
    assert rows[1400]["vxlan_header_share"] == round(104 / 1504, 4)
    df = report["df_1500"]
    assert df["at_pod_mtu"]["fate"] == "refused-locally"
    assert df["if_pod_mtu_1500"]["fate"] == "frag-needed" and df["if_pod_mtu_1500"]["limit"] == 1450
    assert df["if_pod_and_vxlan_mtu_1500"]["fate"] == "outer-fragmented"
    assert df["if_pod_and_vxlan_mtu_1500"]["outer_packet"] == 1550 and df["at_pod_mtu"]["outer_frame"] == 1564
    measured = report["measured"]
    assert measured["largest_df_payload"] == 1422 and measured["largest_df_payload_exact"] is True
    assert measured["smallest_failed_payload"] == 1423 and measured["offload_frames"] == 2
    assert [p["size"] for p in measured["probes"]] == sorted(ladder_sizes(1450))
    assert report["plain_path_cost"] is None and report["headroom"] is None
    assert {f["code"] for f in report["findings"]} == {"largest-df-payload", "offload-frames"}
    assert report["mtus"]["src"]["pod_mtu"] == 1450 and report["mtus"]["dst"]["node"] == "k01-worker3"


def test_report_for_a_plain_path_and_jumbo_headroom():
    report = mtu_report(Wire.PLAIN, node("k01-worker", underlay=9000), node("k01-worker2", underlay=9000))
    assert report["overhead"]["bytes"] == 0 and report["overhead"]["parts"] == {}
    assert report["plain_path_cost"]["unused_bytes"] == 9000 - 1450
    assert report["headroom"]["allowed_pod_mtu"] == 8950 and "vxlanMTU: 8950" in report["headroom"]["setting"]
    assert report["df_1500"]["if_pod_and_vxlan_mtu_1500"] is None
    assert report["max_frame"] == 1450 + 14 and report["df_1500"]["if_pod_mtu_1500"]["fate"] == "crosses"
    json.dumps(report)


def test_report_on_an_ipv6_underlay():
    a = NodeMtus("a", 1430, 1430, 1500, vxlan_ifname="vxlan-v6.calico")
    report = mtu_report(Wire.VXLAN, a, a.__class__("b", 1430, 1430, 1500), underlay_ip=6)
    assert report["overhead"]["bytes"] == 14 + 8 + 8 + 40 and report["max_inner_packet"] == 1430
    assert (report["max_icmp_payload"], report["tcp_mss"], report["max_frame"]) == (1430 - 28, 1430 - 40, 1514)
    assert [f for f in report["findings"] if f["level"] != "info"] == []


def test_report_without_evidence_assumes_1500_for_arithmetic_only():
    report = mtu_report(Wire.VXLAN, NodeMtus("a"), NodeMtus("b"))
    assert report["underlay_mtu"] == 1500 and report["underlay_mtu_assumed"] is True
    assert report["max_icmp_payload"] == 1422 and report["measured"]["largest_df_payload"] is None
    assert {f["level"] for f in report["findings"]} == {"info"}
    json.dumps(report)


def test_measurement_from_a_real_gso_capture_judges_offload_as_information():
    facts = [decode_frame(data, wire_len=wire_len) for data, wire_len in read_pcap("vxlan-gso-excerpt.pcap")]
    m = MtuMeasurement.from_tally(size_tally(facts, 1500), probes=ladder(1450), capture_node="k01-worker")
    assert (m.max_outer_frame, m.offload_frames, m.max_offload_frame, m.capture_node) == (124, 2, 64424, "k01-worker")
    findings = judge_mtu(Wire.VXLAN, node("k01-worker"), node("k01-worker3"), m)
    assert codes(findings, "fail") == [] and "offload-frames" in codes(findings, "info")


def test_a_direction_fails_for_its_sender_and_only_mentions_the_receiver():
    findings = judge_mtu(Wire.VXLAN, node("k01-worker3"), node("k01-worker", pod=1500, pod_name="vxcap-k01-worker"))
    assert codes(findings, "fail") == [] and codes(findings, "warn") == []
    note = one(findings, "receiver-mtu-too-big")
    assert note.level == "info" and "pod vxcap-k01-worker eth0 MTU 1500 on k01-worker is above 1450" in note.message
    assert "judged on k01-worker -> k01-worker3" in note.message
    back = judge_mtu(Wire.VXLAN, node("k01-worker", pod=1500, pod_name="vxcap-k01-worker"), node("k01-worker3"))
    assert codes(back, "fail") == ["pod-mtu-too-big"] and "receiver-mtu-too-big" not in codes(back)


def test_mss_above_what_the_path_carries_warns_and_a_fitting_one_is_information():
    fits = judge_mtu(Wire.VXLAN, node("a"), node("b"), MtuMeasurement(tcp_mss_seen=(1450 - 40,), tcp_connected=True))
    assert "1410 (path allows 1410 = 1450 - 20 IPv4 - 20 TCP)" in one(fits, "tcp-mss").message
    big = judge_mtu(Wire.VXLAN, node("a", pod=1500), node("b"), MtuMeasurement(tcp_mss_seen=(1500 - 40,)))
    warn = one(big, "tcp-mss-above-path")
    assert warn.level == "warn" and "advertise MSS 1460" in warn.message and "at most 1410 bytes" in warn.message
    plain = judge_mtu(Wire.PLAIN, node("a", pod=1500), node("b", pod=1500), MtuMeasurement(tcp_mss_seen=(1460,)))
    assert "tcp-mss-above-path" not in codes(plain)
    lost = judge_mtu(Wire.VXLAN, node("a"), node("b"), MtuMeasurement(tcp_connected=False))
    assert "did not connect" in one(lost, "tcp-mss").message


def test_a_reply_without_its_request_on_the_capture_warns():
    probes = (ProbeResult(1372, reply=True, sent_on_wire=False, reply_on_wire=True),)
    warn = one(judge_mtu(Wire.VXLAN, node("a"), node("b"), MtuMeasurement(probes=probes)), "probe-not-captured")
    assert warn.level == "warn" and "payload 1372" in warn.message


def test_probe_from_ping_output_and_what_the_capture_saw():
    refused = probe_from_ping(1423, 0, (DATA / "ping-1423-local-error.txt").read_text())
    assert refused.refused_locally and refused.fate is ProbeFate.REFUSED_LOCALLY
    crossed = probe_from_ping(1422, 1, "1 packets transmitted, 1 received, 0% packet loss")
    assert crossed.fate is ProbeFate.CROSSED and crossed.sent_on_wire is None
    requests = {1422 + 28: 1, 56 + 28: 3}
    seen = seen_on_wire(crossed, requests, {1422 + 28: 1})
    assert (seen.sent_on_wire, seen.reply_on_wire) == (True, True)
    lost = seen_on_wire(ProbeResult(1372, reply=False), requests, {})
    assert (lost.sent_on_wire, lost.fate) == (False, ProbeFate.NOT_SENT)
    assert seen_on_wire(crossed, None, None) == crossed  # no capture on the sender: nothing claimed
    assert seen.as_dict()["reply_on_wire"] is True


def test_size_tally_of_counted_sizes_matches_the_tally_of_the_frames():
    facts = [decode_frame(data, wire_len=wire_len) for data, wire_len in read_pcap("vxlan-gso-excerpt.pcap")]
    facts += [decode_frame(data, wire_len=wire_len) for data, wire_len in read_pcap("vxlan-outer-fragments.pcap")]
    counted = Counter((f.ip_proto, f.inner_len, f.wire_len, f.outer_fragment) for f in facts if f is not None)
    assert size_tally_of_counts(counted, 1500) == size_tally(facts, 1500)
    unknown = size_tally_of_counts(counted, None)
    assert unknown.offload_frames == 0 and unknown.max_frame == max(f.wire_len for f in facts if f is not None)


# --- 7. one direction from what a run left: evidence, probe records, capture tallies -----------

K01 = lab_from_dict(yaml.safe_load((Path(__file__).parents[2] / "topology" / "k01-lab.yaml").read_text()))
W, W2, W3 = "k01-worker", "k01-worker2", "k01-worker3"


def expectation(src: str, dst: str):
    pods = {pod.node: pod for pod in K01.pods}
    (forward, _back) = plan(K01.topology, (Pair(src, dst),), pods)
    return forward


def point(node: str, packets) -> PointTally:
    return PointTally(node, tally(decode_frame(bytes(p)) for p in packets))


def wrap(e, inner):
    """A pod packet on the sender's underlay, as the expectation says it travels."""
    return Ether() / (encapsulate(inner) if e.expected is Wire.VXLAN else inner)


def echo(e, size: int, kind: int = 8, reverse: bool = False):
    src, dst = (e.dst_ip, e.src_ip) if reverse else (e.src_ip, e.dst_ip)
    return IP(src=str(src), dst=str(dst), flags="DF") / ICMP(type=kind) / (b"p" * size)


def ladder_record(e, replies: dict[int, str]) -> dict:
    """mtu-probes.json's record of one direction: ping's own output per size (real iputils text)."""
    said = {
        "ok": (DATA / "ping-1422-ok.txt").read_text(),
        "local": (DATA / "ping-1423-local-error.txt").read_text(),
        "frag": (DATA / "ping-1472-frag-needed.txt").read_text(),
    }
    return {
        "src_node": e.src_node,
        "dst_node": e.dst_node,
        "ladder": [{"size": size, "received": int(how == "ok"), "output": said[how]} for size, how in replies.items()],
        "tcp": {"connected": True, "detail": "connected"},
    }


def test_a_healthy_vxlan_direction_from_its_evidence_and_capture():
    e = expectation(W, W3)
    assert e.expected is Wire.VXLAN
    mtus = node_mtus(W, interface_mtus((DATA / "ip-link-vxlan.json").read_text()),
                     interface_mtus((DATA / "ip-link-pod.json").read_text()), pod="vxcap-k01-worker")
    syn = IP(src=str(e.src_ip), dst=str(e.dst_ip)) / TCP(flags="S", options=[("MSS", 1410)])
    packets = [wrap(e, echo(e, s)) for s in (56, 1372, 1422)] + [wrap(e, echo(e, s, 0, True)) for s in (56, 1372, 1422)]
    packets.append(wrap(e, syn))
    record = ladder_record(e, {1372: "ok", 1422: "ok", 1423: "local"})
    section = direction_mtu(e, mtus, mtus, record, [point(W, packets)])
    measured = section["measured"]
    assert measured["largest_df_payload"] == 1422 and measured["largest_df_payload_exact"]
    assert measured["tcp_mss_seen"] == [1410] and measured["tcp_connected"] is True
    assert measured["max_outer_frame"] == 1422 + 28 + 50 + 14 and measured["capture_node"] == W
    by_size = {p["size"]: p for p in measured["probes"]}
    assert (by_size[1422]["sent_on_wire"], by_size[1422]["reply_on_wire"]) == (True, True)
    assert (by_size[1423]["sent_on_wire"], by_size[1423]["fate"]) == (False, "refused-locally")
    assert fail_reasons(section) == [] and json.dumps(section)


def test_a_direction_failing_on_mtu_gives_its_reasons_and_counts_only_its_own_frag_needed():
    e = expectation(W, W2)
    assert e.expected is Wire.PLAIN
    src, dst = node("k01-worker", pod=9000, pod_name="vxcap-k01-worker"), node("k01-worker2")
    quoted = IP(src=str(e.src_ip), dst=str(e.dst_ip), flags="DF", len=1500) / ICMP()
    other = IP(src=str(e.src_ip), dst="192.168.209.65", flags="DF", len=1500) / ICMP()
    frag_needed = [
        Ether() / IP(src=str(e.outer_dst), dst=str(e.src_ip)) / ICMP(type=3, code=4, nexthopmtu=1450) / quoted,
        Ether() / IP(src="10.10.10.1", dst=str(e.src_ip)) / ICMP(type=3, code=4, nexthopmtu=1400) / other,
    ]
    section = direction_mtu(e, src, dst, ladder_record(e, {1422: "ok", 1472: "frag"}), [point(W, frag_needed)])
    assert section["measured"]["icmp_frag_needed"] == 1  # the message about another destination is not this path's
    reasons = fail_reasons(section)
    assert reasons == ["MTU: " + next(f["message"] for f in section["findings"] if f["code"] == "pod-mtu-too-big")]
    assert "eth0 MTU 9000 on k01-worker, expected <= 1500" in reasons[0]


def test_without_a_capture_on_the_sender_the_receivers_is_used_and_nothing_is_claimed_about_leaving():
    e = expectation(W, W3)
    section = direction_mtu(e, node(W), node(W3), ladder_record(e, {1422: "ok"}), [point(W3, [wrap(e, echo(e, 1422))])])
    assert section["measured"]["capture_node"] == W3
    assert section["measured"]["probes"][0]["sent_on_wire"] is None
    nothing = direction_mtu(e, node(W), node(W3), None, [])
    assert nothing["measured"]["probes"] == [] and nothing["measured"]["tcp_connected"] is None


def test_version_2_records_carry_the_senders_signals_as_fields_and_read_as_ping_text_does():
    e = expectation(W, W3)
    v1 = ladder_record(e, {1422: "ok", 1423: "local", 1472: "frag"})
    v2 = dict(v1, ladder=[
        {"size": 1422, "transmitted": 1, "received": 1, "refused_too_big": False, "local_mtu": None,
         "frag_needed_mtu": None, "output": "1 echoes sent, 1 replies"},
        {"size": 1423, "transmitted": 1, "received": 0, "refused_too_big": True, "local_mtu": 1450,
         "frag_needed_mtu": None, "output": "1 echoes sent, 0 replies, 1 refused by the sender (Message too long)"},
        # as in the real ping text: a hop's fragmentation-needed, then the second echo refused locally
        {"size": 1472, "transmitted": 2, "received": 0, "refused_too_big": True, "local_mtu": 1450,
         "frag_needed_mtu": 1450, "output": "2 echoes sent, 0 replies, 1 refused by the sender (Message too long), "
                                            "fragmentation needed (mtu = 1450)"},
    ])
    probes = [direction_mtu(e, node(W), node(W3), record, [])["measured"]["probes"] for record in (v1, v2)]
    assert probes[0] == probes[1]
    assert [p["fate"] for p in probes[1]] == ["crossed", "refused-locally", "frag-needed"]
    # The fields decide, not the words: a v2 entry whose text says nothing still reads as refused.
    quiet = dict(v2, ladder=[dict(v2["ladder"][1], output="")])
    assert direction_mtu(e, node(W), node(W3), quiet, [])["measured"]["probes"][0]["fate"] == "refused-locally"


@pytest.mark.parametrize("data", [None, {}, {"directions": "x"}, {"directions": [1, {"src_node": 1}]}])
def test_malformed_probe_records_are_left_out(data):
    assert probe_records(data) == {}


def test_tcp_exchange_programs_on_the_loopback():
    listener = subprocess.Popen(listener_argv(sys.executable, 0, 5.0), stdout=subprocess.PIPE, text=True)
    try:
        port = listening_port(listener.stdout.readline())
        assert port is not None
        out = subprocess.run(connector_argv(sys.executable, "127.0.0.1", port, 5.0), capture_output=True, text=True,
                             timeout=20).stdout
        assert connected(out)
        assert listener.wait(timeout=10) == 0 and "accepted 127.0.0.1" in listener.stdout.read()
    finally:
        listener.kill()
        listener.wait()
    assert listening_port("no connection: timed out") is None and not connected("no connection: refused")


@pytest.mark.parametrize("port", [-1, 65536, True])
def test_tcp_exchange_argv_rejects_bad_ports(port):
    with pytest.raises(InputError):
        listener_argv("python3", port)
    with pytest.raises(InputError):
        connector_argv("python3", "192.168.209.65", 0)


def test_probes_that_fit_and_were_lost_fail_as_loss_not_as_mtu():
    from vxcap.core.mtu.path import fail_reasons

    section = {"findings": [
        {"level": "fail", "code": "probe-lost", "message": "DF probes that fit the path did not cross"},
        {"level": "fail", "code": "black-hole", "message": "DF probes bigger than the path allows vanished"},
    ]}
    assert fail_reasons(section) == ["loss: DF probes that fit the path did not cross",
                                     "MTU: DF probes bigger than the path allows vanished"]


def test_tcp_exchange_programs_on_the_ipv6_loopback():
    listener = subprocess.Popen(listener_argv(sys.executable, 0, 5.0, family=6), stdout=subprocess.PIPE, text=True)
    try:
        port = listening_port(listener.stdout.readline())
        assert port is not None
        out = subprocess.run(connector_argv(sys.executable, "::1", port, 5.0), capture_output=True, text=True,
                             timeout=20).stdout
        assert connected(out)
        assert listener.wait(timeout=10) == 0 and "accepted ::1" in listener.stdout.read()
    finally:
        listener.kill()
        listener.wait()


def test_tcp_exchange_argv_rejects_an_unknown_family_and_a_non_address():
    with pytest.raises(InputError):
        listener_argv("python3", 0, family=5)
    with pytest.raises(InputError):
        connector_argv("python3", "fd19:2168::zz", 1234)


def test_probe_records_of_one_family_and_their_probes_sized_as_that_family():
    from vxcap.core.mtu.path import _ladder

    entry = {"size": 1383, "transmitted": 1, "received": 0, "refused_too_big": True, "local_mtu": 1430,
             "frag_needed_mtu": None, "output": ""}
    v4 = {"src_node": W, "dst_node": W3, "dst_ip": "192.168.209.65", "family": 4, "ladder": [entry]}
    v6 = {"src_node": W, "dst_node": W3, "dst_ip": "fd19:2168::c0a8:d141", "family": 6, "ladder": [entry]}
    old = {"src_node": W3, "dst_node": W, "dst_ip": "192.168.81.65", "ladder": [entry]}  # version 2: no family
    data = {"version": 3, "directions": [v4, v6, old]}
    assert probe_records(data) == {(W, W3): v4, (W3, W): old}
    assert probe_records(data, family=6) == {(W, W3): v6}
    assert [p.packet for p in _ladder(v6)] == [1431] and [p.packet for p in _ladder(v4)] == [1411]


def test_the_ipv6_ladder_is_sized_for_icmpv6_and_its_mss_for_tcp_over_ipv6():
    from vxcap.core.mtu.ladder import MAX_ICMP6_PAYLOAD, expected_mss

    # Calico's IPv6 VXLAN MTU 1430: payload 1430 - 40 - 8, one past it refused, the 1500-byte packet.
    assert ladder_sizes(1430, family=6) == [56, 1332, 1352, 1382, 1383, 1452]
    assert ladder_sizes(1450) == ladder_sizes(1450, family=4)  # IPv4's unchanged
    assert (expected_mss(1430, 6), expected_mss(1450, 4)) == (1370, 1410)
    assert ProbeResult(1382, True, family=6).packet == 1430 and ProbeResult(1382, True).packet == 1410
    assert LadderSearch.for_family(6).ceiling == MAX_ICMP6_PAYLOAD == 65527
    with pytest.raises(InputError):
        LadderSearch(ceiling=65527)  # beyond IPv4's echo payloads
    with pytest.raises(InputError):
        ladder_sizes(1430, family=5)


def test_a_packet_too_big_in_pings_words_is_the_probes_fragmentation_needed():
    probe = probe_from_ping(1382, 0, "From fd19:2168::c0a8:5140 icmp_seq=1 Packet too big: mtu=1400\n", family=6)
    assert (probe.fate, probe.frag_needed_mtu, probe.packet) == (ProbeFate.FRAG_NEEDED, 1400, 1430)


def test_report_of_ipv6_pods_counts_their_40_byte_header():
    a = NodeMtus("a", 1430, 1430, 1500, vxlan_ifname="vxlan-v6.calico")
    report = mtu_report(Wire.VXLAN, a, a.__class__("b", 1430, 1430, 1500), underlay_ip=6, inner_ip=6)
    assert (report["max_icmp_payload"], report["tcp_mss"]) == (1430 - 48, 1430 - 60)  # ping -6 -s 1382, MSS 1370


def test_a_wireguard_direction_is_held_to_wireguards_overhead_not_vxlans():
    at_1440 = judge_mtu(Wire.WIREGUARD, NodeMtus("a", 1440, None, 1500), NodeMtus("b", 1440, None, 1500), MtuMeasurement())
    assert "unused-headroom" not in codes(at_1440, "warn")  # 1500 - 60 is all WireGuard allows
    at_1400 = judge_mtu(Wire.WIREGUARD, NodeMtus("a", 1400, None, 1500), NodeMtus("b", 1400, None, 1500), MtuMeasurement())
    (warning,) = [f for f in at_1400 if f.code == "unused-headroom"]
    assert "allows pod MTU 1440 (1500 - 60 WireGuard overhead); set wireguardMTU: 1440" in warning.message
