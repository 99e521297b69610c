"""Write a deterministic capture mix for the decoder benchmark.

Half VXLAN, 40% plain IPv4 (with fragments and VXLAN look-alikes), 10% ARP and
IPv6, on the k01 lab's addresses. Frames are byte templates built once with
struct and stamped into records, so a million of them take seconds rather than
the minutes scapy would need to build each one.

    python benchmarks/gen_mix.py --count 1000000 --seed 1 --path /tmp/mix.pcap
"""

from __future__ import annotations

import argparse
import random
import struct
from pathlib import Path

from vxcap.core.icmp import checksum  # RFC 1071: the IPv4 and ICMP checksums alike

NODES = {
    "control-plane": ("10.10.10.10", "02:42:0a:0a:0a:0a"),
    "worker": ("10.10.10.11", "02:42:0a:0a:0a:0b"),
    "worker2": ("10.10.10.12", "02:42:0a:0a:0a:0c"),
    "worker3": ("10.10.20.13", "02:42:0a:0a:14:0d"),
}
GATEWAY_MAC = {"10.10.10": "02:42:0a:0a:0a:01", "10.10.20": "02:42:0a:0a:14:01"}
VTEP_MAC = {
    "control-plane": "66:15:9d:fa:c6:aa",
    "worker": "66:fb:ad:98:aa:13",
    "worker2": "66:c7:4d:6e:6b:f3",
    "worker3": "66:d2:0c:f0:ef:e5",
}
POD = {
    "control-plane": "192.168.23.70",
    "worker": "192.168.81.70",
    "worker2": "192.168.164.130",
    "worker3": "192.168.209.70",
}
VNI = 4096
VXLAN_PORT = 4789


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _addr(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, ident: int = 1, flags_frag: int = 0x4000,
         options: bytes = b"", total_len: int | None = None) -> bytes:
    ihl = 5 + len(options) // 4
    length = ihl * 4 + len(payload) if total_len is None else total_len
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, ident, flags_frag, 64, proto, 0,
                         _addr(src), _addr(dst)) + options
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def icmp_echo(ident: int, seq: int, size: int = 56, reply: bool = False) -> bytes:
    body = struct.pack("!HH", ident, seq) + (bytes(range(256)) * (size // 256 + 1))[:size]
    head = struct.pack("!BBH", 0 if reply else 8, 0, 0)
    return head[:2] + struct.pack("!H", checksum(head + body)) + body


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1000, 2000, 5 << 4, 0x18, 502, 0, 0) + payload


def ether(dst: str, src: str, ethertype: int, payload: bytes, vlan: int | None = None) -> bytes:
    tag = b"" if vlan is None else struct.pack("!HH", 0x8100, vlan)
    frame = _mac(dst) + _mac(src) + tag + struct.pack("!H", ethertype) + payload
    return frame + b"\0" * max(0, 60 - len(frame))


def vxlan(inner: bytes, vni: int = VNI, flags: int = 0x08) -> bytes:
    return struct.pack("!B3xI", flags, vni << 8) + inner


def _underlay(src_node: str, dst_node: str, ip_payload: bytes, proto: int, vlan: int | None = None, **ip) -> bytes:
    src_ip, src_mac = NODES[src_node]
    dst_ip, dst_mac = NODES[dst_node]
    if src_ip.rsplit(".", 1)[0] != dst_ip.rsplit(".", 1)[0]:
        dst_mac = GATEWAY_MAC[src_ip.rsplit(".", 1)[0]]
    return ether(dst_mac, src_mac, 0x0800, ipv4(src_ip, dst_ip, proto, ip_payload, **ip), vlan=vlan)


def _encapsulated(src_node: str, dst_node: str, inner_ip: bytes, port: int = VXLAN_PORT, flags: int = 0x08,
                  vlan: int | None = None) -> bytes:
    inner = _mac(VTEP_MAC[dst_node]) + _mac(VTEP_MAC[src_node]) + b"\x08\x00" + inner_ip
    sport = 40000 + 16 * list(NODES).index(src_node) + list(NODES).index(dst_node)  # one flow hash per pair
    return _underlay(src_node, dst_node, udp(sport, port, vxlan(inner, flags=flags)), 17, vlan=vlan)


def _ping(src_node: str, dst_node: str, reply: bool = False, size: int = 56) -> bytes:
    return ipv4(POD[src_node], POD[dst_node], 1, icmp_echo(7, 1, size, reply))


CROSS = [("control-plane", "worker3"), ("worker", "worker3"), ("worker2", "worker3")]
SAME = [("control-plane", "worker"), ("control-plane", "worker2"), ("worker", "worker2")]


def templates() -> list[tuple[int, bytes, int]]:
    """(weight per mille, frame, captured length) of every kind of frame in the mix."""
    out: list[tuple[int, bytes, int]] = []

    def add(weight: int, frame: bytes, caplen: int | None = None) -> None:
        out.append((weight, frame, len(frame) if caplen is None else min(caplen, len(frame))))

    # 50% VXLAN: cross-subnet pod traffic, both directions.
    for a, b in CROSS:
        for src, dst in ((a, b), (b, a)):
            add(60, _encapsulated(src, dst, _ping(src, dst)))
            add(10, _encapsulated(src, dst, ipv4(POD[src], POD[dst], 6, tcp(43000, 8080, b"x" * 1200))))
            add(4, _encapsulated(src, dst, _ping(src, dst), port=8472))  # the wrong port, still VXLAN
            add(3, _encapsulated(src, dst, _ping(src, dst), vlan=10))
            big = _encapsulated(src, dst, _ping(src, dst, size=1600))  # outer first fragment (MF, offset 0)
            first = big[:14] + ipv4(NODES[src][0], NODES[dst][0], 17, big[34:34 + 1480], flags_frag=0x2000)
            add(3, first)
            add(3, _encapsulated(src, dst, ipv4(POD[src], POD[dst], 6, tcp(43000, 8080, b"y" * 1400))), caplen=96)
    # 40% plain IPv4: same-subnet pod traffic, node traffic, fragments and look-alikes.
    for a, b in SAME:
        for src, dst in ((a, b), (b, a)):
            add(40, ether(VTEP_MAC[dst], VTEP_MAC[src], 0x0800, _ping(src, dst)))
            add(8, _underlay(src, dst, tcp(6443, 50000), 6))
            add(3, ether(VTEP_MAC[dst], VTEP_MAC[src], 0x0800,
                         ipv4(POD[src], POD[dst], 1, icmp_echo(7, 2, 3000)[1480:2960], flags_frag=185)))
            add(3, _underlay(src, dst, udp(5000, VXLAN_PORT, b"\x00" * 60), 17))  # 4789 without the I flag
            add(2, _underlay(src, dst, udp(5000, VXLAN_PORT, vxlan(b"\xff" * 12 + b"\x08\x06" + b"\0" * 28)), 17))
            add(2, _underlay(src, dst, udp(53, 53, b"\x12\x34\x01\x00" + b"\0" * 30), 17))
            add(2, _underlay(src, dst, udp(4000, 4789, vxlan(b"\0" * 20)), 17))  # too short for an inner frame
            add(2, ether(VTEP_MAC[dst], VTEP_MAC[src], 0x0800,
                         ipv4(POD[src], POD[dst], 1, icmp_echo(7, 3), options=b"\x94\x04\x00\x00")))
    for a, b in CROSS:  # the trailing fragments of the VXLAN first fragments above
        for src, dst in ((a, b), (b, a)):
            add(3, _underlay(src, dst, b"z" * 200, 17, flags_frag=185))
    # 10% ARP and IPv6.
    for node, (ip, mac) in NODES.items():
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, _mac(mac), _addr(ip), b"\0" * 6,
                          _addr(ip.rsplit(".", 1)[0] + ".1"))
        add(15, ether("ff:ff:ff:ff:ff:ff", mac, 0x0806, arp))
        v6 = struct.pack("!IHBB16s16s", 0x60000000, 32, 58, 255, b"\xfe\x80" + b"\0" * 13 + b"\x01",
                         b"\xff\x02" + b"\0" * 13 + b"\x02") + b"\x85\x00" + b"\0" * 30
        add(10, ether("33:33:00:00:00:02", mac, 0x86DD, v6))
    return out


# The busy node: BUSY_PODS pods spread over the k01 nodes plus BUSY_EXTRA_NODES more, talking
# all-to-all (about 200,000 ordered pod pairs), none of them a test pod.
BUSY_PODS = 450
BUSY_EXTRA_NODES = 8
BUSY_TEST_PER_MILLE = 20  # frames of the quiet mix (the test pods' traffic) among the busy traffic


def busy_nodes() -> list[tuple[bytes, bytes]]:
    """(underlay address, MAC) of every node of the busy cluster."""
    nodes = [(_addr(ip), _mac(mac)) for ip, mac in NODES.values()]
    for i in range(BUSY_EXTRA_NODES):
        nodes.append((_addr(f"10.10.30.{100 + i}"), _mac(f"02:42:0a:0a:1e:{100 + i:02x}")))
    return nodes


def busy_pods() -> list[tuple[bytes, int]]:
    """(address, node index) of the busy pods: a /26 block per node, in 10.244.0.0/16 (not the test pool)."""
    nodes = len(busy_nodes())
    return [(_addr(f"10.244.{i % nodes}.{2 + i // nodes}"), i % nodes) for i in range(BUSY_PODS)]


class BusyFrames:
    """Frames of a busy node's underlay, stamped from a few templates with varying addresses:
    VXLAN between pods on different nodes (to 4789), plain pod traffic, and the noise a capture
    of `host A or host B` keeps: ARP, IPv6, IPv4 fragments, UDP to 8472 that is not VXLAN, UDP
    from port 4789 (a DNS-like service answering), and VXLAN to 8472 from another overlay."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.nodes = busy_nodes()
        self.pods = busy_pods()
        self.quiet = templates()
        self.quiet_weights = [w for w, _, _ in self.quiet]
        self.noise = self._noise()
        self.noise_weights = [w for w, _, _ in self.noise]

    def _noise(self) -> list[tuple[int, bytes, int]]:
        out = []
        out.append((30, _underlay("worker", "worker2", udp(51000, 8472, b"\x01" * 48), 17)))  # not VXLAN, on 8472
        out.append((30, _underlay("worker2", "worker", udp(4789, 33000, b"\x02" * 80), 17)))  # from 4789
        out.append((20, _underlay("worker", "worker2", b"f" * 400, 17, flags_frag=185)))  # a trailing fragment
        flannel = _mac(VTEP_MAC["worker2"]) + _mac(VTEP_MAC["worker"]) + b"\x08\x00" + ipv4(
            "10.42.1.5", "10.42.2.7", 6, tcp(5000, 80, b"q" * 300))
        out.append((20, _underlay("worker", "worker2", udp(40000, 8472, vxlan(flannel)), 17)))  # flannel's VXLAN
        for node, (ip, mac) in NODES.items():
            arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, _mac(mac), _addr(ip), b"\0" * 6,
                              _addr(ip.rsplit(".", 1)[0] + ".1"))
            out.append((10, ether("ff:ff:ff:ff:ff:ff", mac, 0x0806, arp)))
            v6 = struct.pack("!IHBB16s16s", 0x60000000, 32, 6, 64, b"\xfd\x00" + b"\0" * 13 + b"\x01",
                             b"\xfd\x00" + b"\0" * 13 + b"\x02") + b"\0" * 32
            out.append((10, ether("02:42:0a:0a:0a:0c", mac, 0x86DD, v6)))
        return [(w, f, len(f)) for w, f in out]

    def batch(self, n: int) -> list[tuple[bytes, int, int]]:
        """n (frame, captured length, original length) triples."""
        rng = self.rng
        pods, nodes = self.pods, self.nodes
        npods = len(pods)
        out = []
        roll = rng.random
        for _ in range(n):
            r = roll() * 1000
            if r < BUSY_TEST_PER_MILLE:
                _, frame, caplen = rng.choices(self.quiet, weights=self.quiet_weights)[0]
                out.append((frame, caplen, len(frame)))
                continue
            if r < BUSY_TEST_PER_MILLE + 120:
                _, frame, caplen = rng.choices(self.noise, weights=self.noise_weights)[0]
                out.append((frame, caplen, len(frame)))
                continue
            src, dst = rng.randrange(npods), rng.randrange(npods - 1)
            dst += dst >= src
            (src_ip, src_node), (dst_ip, dst_node) = pods[src], pods[dst]
            size = (64, 120, 600, 1400)[src * 7 + dst & 3]
            proto = 6 if src & 1 else 17
            inner = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + size, 1, 0x4000, 64, proto, 0, src_ip, dst_ip)
            inner += struct.pack("!HHI", 30000 + src, 80 + dst % 1000, 0) + b"\0" * 12
            if nodes[src_node][0][:3] == nodes[dst_node][0][:3]:  # one subnet: plain (CrossSubnet)
                frame = nodes[dst_node][1] + nodes[src_node][1] + b"\x08\x00" + inner
                out.append((frame, len(frame), 34 + size))  # headers only, as a 256-byte snaplen keeps them
                continue
            vx = struct.pack("!B3xI", 0x08, VNI << 8) + b"\x66" * 12 + b"\x08\x00" + inner
            u = struct.pack("!HHHH", 40000 + src % 20000, VXLAN_PORT, 8 + 8 + 14 + 20 + size, 0) + vx
            outer = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + 8 + 14 + 20 + size, 2, 0, 64, 17, 0,
                                nodes[src_node][0], nodes[dst_node][0])
            frame = nodes[dst_node][1] + nodes[src_node][1] + b"\x08\x00" + outer + u
            out.append((frame, len(frame), 84 + size))
        return out


def generate(count: int, seed: int, path: Path, fmt: str = "pcap", mix: str = "quiet") -> int:
    """Write `count` frames of the `mix` ("quiet": the lab; "busy": a busy node) to `path`;
    returns the number of bytes written."""
    kinds = templates()
    weights = [w for w, _, _ in kinds]
    rng = random.Random(seed)
    busy = BusyFrames(rng) if mix == "busy" else None
    record = struct.Struct("<IIII")
    block = struct.Struct("<IIIIIII")
    written = 0
    with open(path, "wb") as out:
        if fmt == "pcap":
            out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        else:
            out.write(struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28))
            out.write(struct.pack("<IIHHII", 1, 20, 1, 0, 262144, 20))
        done = 0
        t0 = 1_700_000_000_000_000
        while done < count:
            n = min(50_000, count - done)
            if busy is None:
                frames = [(kinds[pick][1], kinds[pick][2], len(kinds[pick][1]))
                          for pick in rng.choices(range(len(kinds)), weights=weights, k=n)]
            else:
                frames = busy.batch(n)
            parts = []
            for i, (frame, caplen, wire_len) in enumerate(frames, done):
                t = t0 + i * 20
                if fmt == "pcap":
                    parts.append(record.pack(t // 1_000_000, t % 1_000_000, caplen, wire_len))
                    parts.append(frame[:caplen])
                else:
                    pad = -caplen % 4
                    total = 32 + caplen + pad
                    parts.append(block.pack(6, total, 0, t >> 32, t & 0xFFFFFFFF, caplen, wire_len))
                    parts.append(frame[:caplen] + b"\0" * pad + total.to_bytes(4, "little"))
            data = b"".join(parts)
            out.write(data)
            written += len(data)
            done += n
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--path", type=Path, default=Path("/tmp/vxcap-mix.pcap"))
    parser.add_argument("--format", choices=("pcap", "pcapng"), default="pcap")
    parser.add_argument("--mix", choices=("quiet", "busy"), default="quiet")
    args = parser.parse_args()
    size = generate(args.count, args.seed, args.path, args.format, args.mix)
    print(f"{args.path}: {args.count} frames, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
