"""tcpdump as data: the argv that captures an underlay interface, its filter, its closing report.

Pure: the adapter runs what these build and hands back what tcpdump printed.

Every capture is bounded three ways, so a busy node or a vxcap killed with
SIGKILL can never fill a disk or leave a tcpdump running for ever:
  * time: `timeout -s INT SECONDS` ends tcpdump with SIGINT (a complete file);
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
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from vxcap.core.errors import InputError
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
) -> list[str]:
    """tcpdump writing `iface`'s frames matching `bpf` to `path` ("-": stdout), bounded
    in time (`duration`; None: until stopped), packets and bytes.

    -U flushes the file after every packet, so a capture stopped with SIGINT is
    complete; --immediate-mode hands packets over as they come instead of when
    a buffer fills. -Z root: Debian's tcpdump otherwise drops to the `tcpdump`
    user and hands the pcap to it; the run directory stays root's throughout.
    """
    if not iface:
        raise InputError("capture: an interface name is needed")
    check_iface(iface, "capture interface")
    count = packet_budget(snaplen, max_packets, max_bytes)
    argv = [
        "tcpdump", "-i", iface, "-nn", "-U", "--immediate-mode", "-Z", "root",
        "-w", str(path), "-s", str(snaplen), "-c", str(count),
    ]
    if bpf:
        argv.append(bpf)
    if duration is not None:
        argv = timeout_argv(duration) + argv
    return argv


def bpf_filter(pool: IPv4Network | None, addresses: Iterable[IPv4Address]) -> str:
    """`net POOL or host A or host B ...`: pod traffic (plain) and anything between the
    involved nodes, so VXLAN on an unexpected port is still captured. Empty: everything."""
    terms = [f"net {pool}"] if pool is not None else []
    seen: set[IPv4Address] = set()
    for address in addresses:
        if address not in seen:
            seen.add(address)
            terms.append(f"host {address}")
    return " or ".join(terms)


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


# A node's data plane as JSON, keyed by the file name the run directory keeps it
# under (beside the pcap): every capture backend saves the same four tables.
EVIDENCE_COMMANDS: dict[str, tuple[str, ...]] = {
    "link.json": ("ip", "-d", "-j", "link"),
    "route.json": ("ip", "-j", "route"),
    "neigh.json": ("ip", "-j", "neigh"),
    "fdb.json": ("bridge", "-j", "fdb", "show"),
}
