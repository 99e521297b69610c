"""tcpdump as data: the argv that captures an underlay interface, its filter, its closing report.

Pure: the adapter runs what these build and hands back what tcpdump printed.

Every capture is bounded three ways, so a busy node or a vxcap killed with
SIGKILL can never fill a disk or leave a tcpdump running for ever:
  * time: `timeout -s INT SECONDS` ends tcpdump with SIGINT (a complete file); the
    embedded lab's captures leave it out (`duration=None`) and give the duration to
    one watchdog process per run instead (adapters/tcpdump.start_many), which ends
    them with SIGINT too;
  * packets: `-c`;
  * bytes: by arithmetic rather than by `-C`. tcpdump writes classic pcap, so a
    file is at most 24 + count * (16 + snaplen) bytes, and `-c` is lowered to
    fit `max_bytes`. `-C N -W 1` would bound the size too, but by overwriting
    the file from the start when it fills, losing the first frames: the ones
    the verdict's evidence is taken from. `-C` with a ring (`-W K`) keeps the
    newest files and drops the oldest for the same reason. A lowered `-c` keeps
    the beginning and stops, and the file stays one file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from pathlib import Path

from vxcap.core import rundir
from vxcap.core.errors import InputError
from vxcap.core.model import Wire
from vxcap.core.names import check_iface

# Outer Ethernet 14 + IPv4 20..60 + UDP 8 + VXLAN 8 + inner Ethernet 14 + IPv4 20..60
# + TCP 20..60 is at most 224 bytes; verdicts read sizes from the original length,
# never from the captured bytes, so nothing past the headers is worth keeping.
DEFAULT_SNAPLEN = 256
DEFAULT_MAX_PACKETS = 100_000
DEFAULT_MAX_BYTES = 32 << 20  # 100 000 records of 256 bytes fit (27.2 MB)
# A capture nobody stops (vxcap killed hard) still ends by itself after this.
DEFAULT_DURATION_S = 600.0

# vxcap's one image (images/netshoot-lite: scripts/build-capture-image or its
# Dockerfile), the default of test pods and of both capture helpers (Docker
# containers and capture pods), so nothing is pulled from Docker Hub at run time.
# All run it as nobody, so its tcpdump carries cap_net_raw,cap_net_admin=eip as
# file capabilities; test pods use its ping, python3 and ip. v3 added python3.
CAPTURE_IMAGE = "vxcap/netshoot-lite:bookworm-v3"

PCAP_FILE_HEADER = 24
PCAP_RECORD_HEADER = 16


def max_file_bytes(snaplen: int, packets: int) -> int:
    """The largest pcap tcpdump can write with `-s snaplen -c packets`."""
    return PCAP_FILE_HEADER + packets * (PCAP_RECORD_HEADER + snaplen)


def packet_budget(snaplen: int, max_packets: int, max_bytes: int) -> int:
    """The `-c` that honours both the packet count and the file size cap."""
    if snaplen < 1 or max_packets < 1:
        raise InputError(f"capture: snaplen {snaplen} and max packets {max_packets} must be positive")
    fitting = (max_bytes - PCAP_FILE_HEADER) // (PCAP_RECORD_HEADER + snaplen)
    if fitting < 1:
        raise InputError(f"capture: a size cap of {max_bytes} bytes holds no packet of {snaplen} bytes")
    return min(max_packets, fitting)


def timeout_argv(duration: float) -> list[str]:
    """`timeout` that ends a command with SIGINT after `duration` seconds.

    `-s INT SECONDS` reads the same to coreutils and busybox timeout. timeout
    also passes on the SIGINT of an early stop, so tcpdump closes its file either way.
    """
    if not duration > 0:
        raise InputError(f"capture duration must be positive, got {duration:g} s")
    return ["timeout", "-s", "INT", f"{duration:g}"]


def tcpdump_argv(
    iface: str,
    path: Path | str,
    bpf: str,
    snaplen: int = DEFAULT_SNAPLEN,
    max_packets: int = DEFAULT_MAX_PACKETS,
    duration: float | None = DEFAULT_DURATION_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    ring_kib: int | None = None,
) -> list[str]:
    """tcpdump writing `iface`'s frames matching `bpf` to `path` ("-": stdout), bounded
    in time (`duration`; None: until stopped), packets and bytes.

    -U flushes the file after every packet, so a capture stopped with SIGINT is
    complete; --immediate-mode hands packets over as they come instead of when
    a buffer fills. -Z root: Debian's tcpdump otherwise drops to the `tcpdump`
    user and hands the pcap to it; the run directory stays root's throughout.
    -p: not promiscuous, so a NIC does not hand over frames addressed to other
    hosts (a switch flooding them is not delivery). -B: `ring_kib`, by default
    `buffer_kib` (a cluster node's link); the lab passes `lab_buffer_kib`.
    """
    if not iface:
        raise InputError("capture: an interface name is needed")
    check_iface(iface, "capture interface")
    count = packet_budget(snaplen, max_packets, max_bytes)
    argv = [
        "tcpdump", "-i", iface, "-nn", "-p", "-U", "--immediate-mode", "-Z", "root",
        "-B", str(buffer_kib(snaplen) if ring_kib is None else ring_kib), "-w", str(path), "-s", str(snaplen), "-c", str(count),
    ]
    if bpf:
        argv.append(bpf)
    if duration is not None:
        argv = timeout_argv(duration) + argv
    return argv


FILTER_PRECISE = "precise"
FILTER_WIDE = "wide"
FILTER_MODES = (FILTER_PRECISE, FILTER_WIDE)

# Offsets from the start of the UDP header (tcpdump's `udp[N]` follows the outer IPv4 header's
# length): UDP 8 + VXLAN 8 + inner Ethernet 14, so the inner ethertype is at 28 and the inner
# IPv4 header at 30, its source at 42 and its destination at 46 (an untagged inner frame, as
# Calico and the kernel's VXLAN device send it).
_INNER_ETHERTYPE = 28
_INNER_SRC = 42
_INNER_DST = 46
# An ICMP error quotes the offending IPv4 header at icmp[8] and its first 8 payload bytes at icmp[28]:
# for a VXLAN packet, its UDP header (protocol at icmp[17], destination port at icmp[30]).
_QUOTED_PROTO = 17
_QUOTED_DPORT = 30


# IP-in-IP (Calico's outer header has no options): the inner IPv4 header at ip[20], its source at
# ip[32] and destination at ip[36]. VXLAN over IPv6 (no extension headers): UDP at ip6[40], the
# inner ethertype at ip6[68], an inner IPv6 header's source at ip6[78] and destination at ip6[94].
_IPIP_INNER_SRC, _IPIP_INNER_DST = 32, 36
_V6_INNER_ETHERTYPE, _V6_INNER_SRC, _V6_INNER_DST = 68, 78, 94


# Geneve (RFC 8926) over IPv4: the options' length is the low 6 bits of the first header byte, in
# 4-byte words, so the inner frame's offsets are VXLAN's plus that: `udp[N + OPTS]`.
_GENEVE_OPTS = "((udp[8] & 0x3f) << 2)"


def _unique(addresses: Iterable[IPv4Address]) -> list[IPv4Address]:
    return list(dict.fromkeys(addresses))


def _v6_at(offset: int, address: IPv6Address) -> str:
    """An IPv6 address at ip6[offset], in the four 4-byte loads BPF allows."""
    words = address.packed
    return "(" + " and ".join(
        f"ip6[{offset + 4 * i}:4] = 0x{words[4 * i : 4 * i + 4].hex()}" for i in range(4)
    ) + ")"


def encap_terms(
    wire: Wire, pods: list, nodes: list, wireguard_ports: Iterable[int] = ()
) -> list[str]:
    """The precise filter's terms for one format beyond VXLAN over IPv4 (which `precise_filter`
    always writes): the frames of that format that carry (or, WireGuard, wrap) a test pod's traffic."""
    v4 = [pod for pod in pods if pod.version == 4]
    v6 = [pod for pod in pods if pod.version == 6]
    if wire is Wire.IPIP and v4:
        inner = " or ".join(f"ip[{o}:4] = 0x{int(pod):08x}" for pod in v4 for o in (_IPIP_INNER_SRC, _IPIP_INNER_DST))
        return [f"(ip proto 4 and ({inner}))"]
    if wire is Wire.VXLAN and v6:
        inner = " or ".join(_v6_at(o, pod) for pod in v6 for o in (_V6_INNER_SRC, _V6_INNER_DST))
        return [f"(ip6 and udp and ip6[{_V6_INNER_ETHERTYPE}:2] = 0x86dd and ({inner}))"]
    if wire is Wire.GENEVE and v4:
        # on any UDP port, like VXLAN's term: a tunnel on the wrong port is still taken, and named
        inner = " or ".join(f"udp[{o} + {_GENEVE_OPTS}:4] = 0x{int(pod):08x}" for pod in v4 for o in (_INNER_SRC, _INNER_DST))
        return [f"(udp and udp[8] & 0xc0 = 0 and udp[10:2] = 0x6558"
                f" and udp[{_INNER_ETHERTYPE} + {_GENEVE_OPTS}:2] = 0x0800 and ({inner}))"]
    if wire is Wire.WIREGUARD and nodes:
        # Encrypted: the nodes' data messages on the listening ports are all there is to take.
        ports = " or ".join(f"udp port {port}" for port in sorted(set(wireguard_ports)))
        node_hosts = " or ".join(f"host {node}" for node in nodes)
        return [f"(({ports}) and ({node_hosts}))"] if ports else []
    return []


def bpf_filter(
    pool: IPv4Network | None, addresses: Iterable[IPv4Address], pods: Iterable[IPv4Address] = ()
) -> str:
    """The wide filter: `net POOL or host POD ... or host NODE ...`: pod traffic (plain) and
    anything between the involved nodes, so VXLAN on an unexpected port is still captured.
    The test pods are always named, so a cluster whose pods lie in several pools (no single
    POOL) still captures their plain frames. Empty: everything."""
    terms = [f"net {pool}"] if pool is not None else []
    terms += [f"host {address}" for address in _unique([*pods, *addresses])]
    return " or ".join(terms)


def precise_filter(
    pods: Iterable[IPv4Address],
    nodes: Iterable[IPv4Address],
    vxlan_port: int,
    wires: Iterable[Wire] = (),
    wireguard_ports: Iterable[int] = (),
) -> str:
    """The test pods' traffic and what is about it, and little else of a busy node's:

    * plain frames from or to a test pod (same-subnet pod traffic, ICMP errors sent to a pod);
    * VXLAN whose inner IPv4 source or destination is a test pod, on any UDP port, so VXLAN on
      the wrong port is still seen (the verdict names the port), and whatever the flags, so a
      malformed header still gets its warning: offsets into the VXLAN payload, first fragments
      included;
    * the trailing fragments of IPv4 packets between two involved nodes (an outer fragment of a
      VXLAN packet carries no inner header to match);
    * ICMP errors sent to an involved node about a UDP packet to the VXLAN port (a hop refusing
      an encapsulated packet answers its sender, the node);
    * the terms of each other format the run expects (`wires`: IP-in-IP, VXLAN over IPv6,
      WireGuard; see `encap_terms`). Pods and nodes may be IPv6 addresses.

    Empty when there is no test pod: everything.
    """
    pods, nodes = _unique(pods), _unique(nodes)
    if not pods:
        return ""
    hosts = " or ".join(f"host {pod}" for pod in pods)
    pods4 = [pod for pod in pods if pod.version == 4]
    terms = [hosts]
    if pods4:
        inner = " or ".join(
            f"udp[{offset}:4] = 0x{int(pod):08x}" for pod in pods4 for offset in (_INNER_SRC, _INNER_DST)
        )
        terms.append(f"(udp and udp[{_INNER_ETHERTYPE}:2] = 0x0800 and ({inner}))")
    for wire in dict.fromkeys(wires):
        terms += encap_terms(wire, pods, nodes, wireguard_ports)
    nodes = [node for node in nodes if node.version == 4]
    if nodes:
        node_hosts = " or ".join(f"host {node}" for node in nodes)
        if len(nodes) > 1:
            terms.append(f"(ip[6:2] & 0x1fff != 0 and ({node_hosts}))")
        node_dsts = " or ".join(f"dst host {node}" for node in nodes)
        terms.append(
            f"(icmp and (icmp[0] = 3 or icmp[0] = 11 or icmp[0] = 12) and icmp[{_QUOTED_PROTO}] = 17"
            f" and icmp[{_QUOTED_DPORT}:2] = {vxlan_port} and ({node_dsts}))"
        )
    return " or ".join(terms)


def capture_filter(
    mode: str,
    pods: Iterable[IPv4Address],
    nodes: Iterable[IPv4Address],
    vxlan_port: int,
    pool: IPv4Network | None = None,
    wires: Iterable[Wire] = (),
    wireguard_ports: Iterable[int] = (),
) -> dict[str, str]:
    """The filter a run's captures use, as the manifest and report.json record it:
    `{"mode": "precise" | "wide", "bpf": ...}`."""
    if mode == FILTER_PRECISE:
        return {"mode": mode, "bpf": precise_filter(pods, nodes, vxlan_port, wires, wireguard_ports)}
    if mode == FILTER_WIDE:
        return {"mode": mode, "bpf": bpf_filter(pool, nodes, pods)}
    raise InputError(f"capture filter {mode!r}: one of {', '.join(FILTER_MODES)}")


# tcpdump's kernel buffer (-B, KiB): room for this long a stall of its writer at line rate, in
# full-size frames each kept at the snap length plus the ring's per-frame header. The filter
# runs before the ring, so only matching frames use it; a wide capture on a busy link needs it all.
DEFAULT_LINK_MBPS = 10_000
BUFFER_STALL_S = 0.05
_RING_FRAME_OVERHEAD = 48  # tpacket3_hdr + sockaddr_ll, aligned
_FULL_FRAME = 1538  # 1500-byte MTU + Ethernet header, FCS, preamble and inter-frame gap on the wire
MIN_BUFFER_KIB = 4096
MAX_BUFFER_KIB = 65536


def buffer_kib(
    snaplen: int, link_mbps: int = DEFAULT_LINK_MBPS, stall_s: float = BUFFER_STALL_S, floor_kib: int = MIN_BUFFER_KIB
) -> int:
    """tcpdump's `-B`: the KiB that hold `stall_s` of full-size frames at `link_mbps`."""
    frames = link_mbps * 1_000_000 / 8 / _FULL_FRAME * stall_s
    kib = int(frames * (min(snaplen, 1514) + _RING_FRAME_OVERHEAD) / 1024) + 1
    return min(max(kib, floor_kib), MAX_BUFFER_KIB)


# The embedded lab's veths carry only vxcap's own probes (pings, the DF ladder, one small TCP
# exchange per direction), far below 1 Gb/s even in a burst; sized for 10 Gb/s, a 256-node lab's
# rings took 3 GiB and about a second more to start. The kernel's drop count is still reported
# per capture, so a ring too small would show, not pass silently.
LAB_LINK_MBPS = 1_000
LAB_MIN_BUFFER_KIB = 1024


def lab_buffer_kib(snaplen: int) -> int:
    """tcpdump's `-B` on a lab node: `buffer_kib` at the lab's rate, with a floor of its own."""
    return buffer_kib(snaplen, LAB_LINK_MBPS, floor_kib=LAB_MIN_BUFFER_KIB)


_CAPTURED = re.compile(r"^(\d+) packets? captured\s*$", re.MULTILINE)
_DROPPED = re.compile(r"^(\d+) packets? dropped by kernel\s*$", re.MULTILINE)


def parse_tcpdump_stats(stderr: str) -> tuple[int | None, int | None]:
    """(captured, dropped by kernel) from tcpdump's closing lines; None where it printed none
    (it prints them only when it stops cleanly: on SIGINT or after -c packets)."""
    captured = _CAPTURED.findall(stderr)
    dropped = _DROPPED.findall(stderr)
    return (int(captured[-1]) if captured else None, int(dropped[-1]) if dropped else None)


def is_listening(line: str) -> bool:
    """tcpdump's 'listening on IFACE, link-type ...' line: from here on, packets are kept."""
    return line.startswith("listening on ") or " listening on " in line


# A node's data plane as JSON, keyed by the suffix the run directory keeps it
# under (beside the pcap, vxcap.core.rundir): every capture backend saves the same four tables.
NODE_TABLE_COMMANDS: dict[str, tuple[str, ...]] = {
    rundir.NODE_LINKS: ("ip", "-d", "-j", "link"),
    rundir.ROUTES: ("ip", "-j", "route"),
    rundir.NEIGHBOURS: ("ip", "-j", "neigh"),
    rundir.FDB: ("bridge", "-j", "fdb", "show"),
}
