"""The userspace tunl0's header arithmetic (adapters/ipip_tun.py), read back with scapy's dissection.
The forwarder itself is proved on the wire in tests/integration (test_dataplane_runs, test_dataplanes_lab)."""

from ipaddress import IPv4Address, IPv4Network

from scapy.layers.inet import ICMP, IP

from vxcap.adapters.ipip_tun import next_hop, outer_header

LOCAL, REMOTE = IPv4Address("10.10.10.11"), IPv4Address("10.10.20.13")


def encapsulate(inner: IP) -> IP:
    raw = bytes(inner)
    return IP(outer_header(raw, LOCAL.packed, REMOTE.packed) + raw)


def test_outer_header_is_rfc_2003_with_the_inner_packets_ttl_df_and_ecn():
    inner = IP(src="192.168.81.65", dst="192.168.209.65", ttl=63, flags="DF", tos=0xB9) / ICMP() / (b"x" * 1452)
    outer = encapsulate(inner)
    assert (outer.version, outer.ihl, outer.proto, outer.src, outer.dst) == (4, 5, 4, str(LOCAL), str(REMOTE))
    assert (outer.ttl, outer.flags.DF, outer.tos) == (63, True, 0x01)  # DSCP not copied (tos 0), ECN is
    assert outer.len == 20 + 1480 == 1500
    assert outer.frag == 0 and not outer.flags.MF
    assert bytes(outer.payload) == bytes(inner)


def test_outer_df_is_clear_when_the_inner_packets_is():
    outer = encapsulate(IP(src="192.168.81.65", dst="192.168.209.65", ttl=5) / ICMP())
    assert (outer.ttl, outer.flags.DF) == (5, False)


def test_next_hop_is_the_longest_matching_tunl0_routes_gateway():
    routes = [(IPv4Network("192.168.209.64/32"), IPv4Address("10.10.10.10").packed),
              (IPv4Network("192.168.209.64/26"), REMOTE.packed)]
    assert next_hop(routes, IPv4Address("192.168.209.65").packed) == REMOTE.packed
    assert next_hop(routes, IPv4Address("192.168.209.64").packed) == IPv4Address("10.10.10.10").packed
    assert next_hop(routes, IPv4Address("192.168.81.65").packed) is None
