"""ping as data: the iputils argv for a pod-to-pod probe and what its output says.

Pure: the adapter runs `ping_argv` in the source pod and hands back stdout,
stderr and the exit status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address

from vxcap.core.errors import InputError

# ICMP echo payload limit: 65535 - 20 (IPv4) - 8 (ICMP).
MAX_PING_SIZE = 65507
# ICMPv6: IPv6's payload length (65535) leaves out its 40-byte header: 65535 - 8 (ICMPv6).
MAX_PING_SIZE6 = 65527


@dataclass(frozen=True, slots=True)
class PingResult:
    transmitted: int
    received: int
    local_errors: int  # packets the sender's own stack refused (DF and too big for the route's MTU)
    message: str  # the summary line, or what ping said instead of one
    # Why echoes did not leave or come back, as the sender's stack told it:
    refused_too_big: bool = False  # a DF echo refused as too long for the route (EMSGSIZE)
    local_mtu: int | None = None  # the MTU that refused it
    frag_needed_mtu: int | None = None  # a hop's ICMP fragmentation-needed (IPv6: Packet Too Big), with its MTU

    @property
    def lost(self) -> int:
        return self.transmitted - self.received

    @property
    def all_replied(self) -> bool:
        return self.transmitted > 0 and self.received == self.transmitted


def _seconds(value: float) -> str:
    return f"{value:g}"


def ping_argv(
    dst_ip: IPv4Address | str,
    count: int,
    interval: float,
    timeout: float,
    size: int | None = None,
    dont_fragment: bool = False,
) -> list[str]:
    """iputils ping: `count` echoes `interval` s apart, waiting `timeout` s for each reply.

    `size` is the ICMP payload (-s); the IPv4 packet is 28 bytes more, the IPv6 one 48.
    `dont_fragment` sets DF (-M do; for IPv6, where no router fragments, it forbids the
    sender's own fragmenting) so a too-big packet fails instead of fragmenting.
    """
    if count < 1:
        raise InputError(f"ping count {count} must be at least 1")
    if interval <= 0 or timeout <= 0:
        raise InputError(f"ping interval {interval} and timeout {timeout} must be positive")
    destination = ip_address(str(dst_ip))
    limit = MAX_PING_SIZE6 if destination.version == 6 else MAX_PING_SIZE
    if size is not None and not 0 <= size <= limit:
        raise InputError(f"ping size {size} is out of range (0..{limit})")
    argv = ["ping", "-n", "-c", str(count), "-i", _seconds(interval), "-W", _seconds(timeout)]
    if size is not None:
        argv += ["-s", str(size)]
    argv += ["-M", "do" if dont_fragment else "dont"]
    argv.append(str(destination))  # iputils ping takes either family
    return argv


# iputils: IPv4 "mtu=1450", IPv6 "mtu: 1430".
_LOCAL_MTU = re.compile(r"message too long, mtu\s*[=:]\s*(\d+)", re.IGNORECASE)
_TOO_LONG = re.compile(r"message too long", re.IGNORECASE)
_FRAG_NEEDED = re.compile(
    r"frag(?:mentation)? needed and DF set \(mtu = (\d+)\)|packet too big: mtu\s*=\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PingMtuSignals:
    refused_locally: bool
    local_mtu: int | None  # iputils names the route MTU that refused it
    frag_needed_mtu: int | None


def ping_mtu_signals(output: str) -> PingMtuSignals:
    """What ping's stdout+stderr says about MTU: iputils' 'local error: message too long,
    mtu=1450' (IPv6: 'mtu: 1430'), busybox's 'sendto: Message too long', 'Frag needed and
    DF set (mtu = 1450)', and for IPv6 a hop's 'Packet too big: mtu=1400'."""
    local = _LOCAL_MTU.search(output)
    frag = _FRAG_NEEDED.search(output)
    return PingMtuSignals(
        refused_locally=bool(_TOO_LONG.search(output)),
        local_mtu=int(local.group(1)) if local else None,
        frag_needed_mtu=int(frag.group(1) or frag.group(2)) if frag else None,
    )


_SUMMARY = re.compile(r"^(\d+) packets transmitted, (\d+) (?:packets )?received.*$", re.MULTILINE)
_LOCAL_ERROR = re.compile(r"local error", re.IGNORECASE)


def parse_ping(stdout: str, stderr: str, returncode: int) -> PingResult:
    """Counts from ping's statistics; with no statistics (e.g. 'Network is unreachable'
    on connect) nothing was sent and the message is ping's own last words."""
    # iputils writes these to stderr; a capture that merged the streams has them in stdout.
    local_errors = sum(1 for line in (stdout + "\n" + stderr).splitlines() if _LOCAL_ERROR.search(line))
    mtu = ping_mtu_signals(stdout + "\n" + stderr)
    signals = {"refused_too_big": mtu.refused_locally, "local_mtu": mtu.local_mtu, "frag_needed_mtu": mtu.frag_needed_mtu}
    summaries = list(_SUMMARY.finditer(stdout))
    if summaries:
        last = summaries[-1]
        return PingResult(int(last.group(1)), int(last.group(2)), local_errors, last.group(0).strip(), **signals)
    said = [line.strip() for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    message = said[-1] if said else f"ping exited with status {returncode} and said nothing"
    return PingResult(0, 0, local_errors, message, **signals)
