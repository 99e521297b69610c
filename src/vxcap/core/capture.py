"""tcpdump as data: the argv that captures an underlay interface, its filter, its closing report.

Pure: the adapter runs what these build and hands back what tcpdump printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from vxcap.core.errors import InputError

# Outer Ethernet 14 + IPv4 20..60 + UDP 8 + VXLAN 8 + inner Ethernet 14 + IPv4 20..60
# + TCP 20..60 is at most 224 bytes; verdicts read sizes from the original length,
# never from the captured bytes, so nothing past the headers is worth keeping.
DEFAULT_SNAPLEN = 256
DEFAULT_MAX_PACKETS = 100_000


def tcpdump_argv(
    iface: str,
    path: Path | str,
    bpf: str,
    snaplen: int = DEFAULT_SNAPLEN,
    max_packets: int = DEFAULT_MAX_PACKETS,
) -> list[str]:
    """tcpdump writing `iface`'s frames matching `bpf` to `path`.

    -U flushes the file after every packet, so a capture stopped with SIGINT is
    complete; --immediate-mode hands packets over as they come instead of when
    a buffer fills. -Z root: Debian's tcpdump otherwise drops to the `tcpdump`
    user and hands the pcap to it; the run directory stays root's throughout.
    """
    if not iface:
        raise InputError("capture: an interface name is needed")
    if snaplen < 1 or max_packets < 1:
        raise InputError(f"capture: snaplen {snaplen} and max packets {max_packets} must be positive")
    argv = [
        "tcpdump", "-i", iface, "-nn", "-U", "--immediate-mode", "-Z", "root",
        "-w", str(path), "-s", str(snaplen), "-c", str(max_packets),
    ]
    if bpf:
        argv.append(bpf)
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
