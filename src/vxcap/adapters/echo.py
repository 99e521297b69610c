"""ICMP echoes from network namespaces, sent and awaited all at once from this process.

Forking one `ping` per echo costs a few milliseconds of two cores each, and an
all-pairs run on a large lab wants well over a thousand of them. Here each
namespace gets one raw ICMP socket (made inside it, it stays there), every
echo of every plan is sent from one thread on ping's schedule, and one epoll
loop collects the replies: the wait is the network's, not the process table's.

The sockets ask the kernel what ping asks it: DF or not (IP_MTU_DISCOVER), and
the errors (IP_RECVERR), so a DF echo too big for the route is refused with
the route's MTU, and a hop's fragmentation-needed arrives quoting our echo.
IPv6 the same way (`ping -6`): a raw ICMPv6 socket per namespace, no router
fragments, so "DF" is the sender not fragmenting either (IPV6_MTU_DISCOVER
IPV6_PMTUDISC_DO, IPV6_DONTFRAG), its refusals come by IPV6_RECVERR, and a hop
answers Packet Too Big. A plan's family is its destination's.
Root only (raw sockets): the lab is root's anyway.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from vxcap.adapters import netns
from vxcap.adapters.netns import NetnsError
from vxcap.core.errors import InputError
from vxcap.core.icmp import EchoReply, echo6_request, echo_request, read_icmp, read_icmp6
from vxcap.core.ping import PingResult

# Linux <linux/in.h>, <linux/icmp.h>, <linux/errqueue.h>: not all of them are in Python's socket module.
IP_MTU_DISCOVER, IP_PMTUDISC_DONT, IP_PMTUDISC_DO = 10, 0, 2
IP_RECVERR = 11
SOL_RAW, ICMP_FILTER = 255, 1
SO_EE_ORIGIN_LOCAL = 1
# <linux/in6.h>, <linux/icmpv6.h>: IPv6's twins.
IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DONT, IPV6_PMTUDISC_DO = 23, 0, 2
IPV6_RECVERR = 25
IPV6_DONTFRAG = 62
ICMP6_FILTER = 1  # at level IPPROTO_ICMPV6
SO_RCVBUFFORCE = 33  # root may exceed net.core.rmem_max
RECEIVE_BUFFER = 8 << 20
# A full device queue or socket buffer refuses a send for a moment: the echo waits
# and is sent again, as ping's does, before it counts as a local error.
_TRANSIENT = frozenset({errno.EAGAIN, errno.ENOBUFS, errno.ENOMEM})
RETRY_S = 0.005
GIVE_UP_S = 1.0
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # errno, origin, type, code, pad, info, data

# Only echo replies (0) and destination unreachable (3) wake the loop: a pod
# in an all-pairs run also receives every other pod's echo requests.
_FILTER = struct.pack("=I", ~((1 << 0) | (1 << 3)) & 0xFFFFFFFF)
# ICMPv6's filter is 256 bits, a set bit blocks its type: only echo replies (129) and Packet Too Big (2) pass.
_FILTER6 = struct.pack("=8I", *(~(1 << 2) & 0xFFFFFFFF, *([0xFFFFFFFF] * 3), ~(1 << (129 - 128)) & 0xFFFFFFFF,
                               *([0xFFFFFFFF] * 3)))
_MAX_PACKET = 65535


@dataclass(frozen=True, slots=True)
class EchoPlan:
    """`count` echoes from `netns` to `destination`, `interval` s apart, each awaited `timeout` s
    (ping -c COUNT -i INTERVAL -W TIMEOUT -s SIZE -M do|dont)."""

    netns: str
    destination: IPv4Address | IPv6Address
    count: int = 1
    interval: float = 0.2
    timeout: float = 1.0
    size: int = 56
    dont_fragment: bool = False

    def __post_init__(self) -> None:
        if self.count < 1 or self.interval <= 0 or self.timeout <= 0:
            raise InputError(f"echo count {self.count} must be at least 1, interval {self.interval} "
                             f"and timeout {self.timeout} positive")

    @property
    def socket_key(self) -> tuple[str, bool, int]:
        """One raw socket per namespace, DF setting and family."""
        return self.netns, self.dont_fragment, self.destination.version


@dataclass(slots=True)
class _Progress:
    plan: EchoPlan
    identifier: int
    sent: int = 0
    next_send: float = 0.0
    deadline: float | None = None  # when the last echo's wait ends
    held_since: float | None = None  # when the kernel first refused the next echo for lack of room
    in_flight: set[int] = field(default_factory=set)  # sequences sent and not yet answered
    received: int = 0
    refused: int = 0
    refused_too_big: bool = False
    local_mtu: int | None = None
    frag_needed_mtu: int | None = None
    last_error: str = ""

    def finished(self, now: float) -> bool:
        if self.sent < self.plan.count:
            return False
        return not self.in_flight or (self.deadline is not None and now >= self.deadline)

    def result(self) -> PingResult:
        summary = f"{self.sent} echoes sent, {self.received} replies"
        if self.refused:
            summary += f", {self.refused} refused by the sender ({self.last_error})"
        if self.frag_needed_mtu is not None:
            told = "packet too big" if self.plan.destination.version == 6 else "fragmentation needed"
            summary += f", {told} (mtu = {self.frag_needed_mtu})"
        return PingResult(
            transmitted=self.sent,
            received=self.received,
            local_errors=self.refused,
            message=summary,
            refused_too_big=self.refused_too_big,
            local_mtu=self.local_mtu,
            frag_needed_mtu=self.frag_needed_mtu,
        )


def _raw_socket(namespace: str, dont_fragment: bool, family: int = 4) -> socket.socket:
    if family == 6:
        return _raw_socket6(namespace, dont_fragment)
    with netns.entered(namespace):
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        except OSError as err:
            raise NetnsError(f"no raw ICMP socket in {namespace}: {err.strerror or err}") from None
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO if dont_fragment else IP_PMTUDISC_DONT)
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        sock.setsockopt(SOL_RAW, ICMP_FILTER, _FILTER)
        _large_buffer(sock)
    except OSError as err:
        sock.close()
        raise NetnsError(f"raw ICMP socket in {namespace}: {err.strerror or err}") from None
    return sock


def _raw_socket6(namespace: str, dont_fragment: bool) -> socket.socket:
    with netns.entered(namespace):
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        except OSError as err:
            raise NetnsError(f"no raw ICMPv6 socket in {namespace}: {err.strerror or err}") from None
    try:
        sock.setblocking(False)
        # As `ping -6 -M do|dont`: PMTUDISC_DO refuses a send above the path MTU with EMSGSIZE (and
        # queues the MTU); DONTFRAG says the same for this socket's own sends. The checksum is the
        # kernel's: it computes it on every raw ICMPv6 socket.
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO if dont_fragment else IPV6_PMTUDISC_DONT)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_DONTFRAG, int(dont_fragment))
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, _FILTER6)
        _large_buffer(sock)
    except OSError as err:
        sock.close()
        raise NetnsError(f"raw ICMPv6 socket in {namespace}: {err.strerror or err}") from None
    return sock


def _large_buffer(sock: socket.socket) -> None:
    # A round's replies to one pod arrive together (a large lab: hundreds of full-size
    # echoes): the default buffer would drop some, and a dropped reply reads as loss.
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)


def _local_mtu(sock: socket.socket) -> int | None:
    """The MTU the kernel named when it refused a DF send (queued by IP_RECVERR); drains the queue."""
    mtu = None
    while True:
        try:
            _, ancillary, _, _ = sock.recvmsg(_MAX_PACKET, socket.CMSG_SPACE(512), socket.MSG_ERRQUEUE)
        except OSError:  # empty (EAGAIN) or unreadable: what was read is all there is
            return mtu
        for level, kind, data in ancillary:
            queued = (level, kind) in ((socket.IPPROTO_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR))
            if queued and len(data) >= _EXTENDED_ERR.size:
                ee_errno, origin, _, _, _, info, _ = _EXTENDED_ERR.unpack_from(data)
                if ee_errno == errno.EMSGSIZE and origin == SO_EE_ORIGIN_LOCAL:
                    mtu = info


def echo_all(plans: Sequence[EchoPlan]) -> list[PingResult | NetnsError]:
    """Every plan's echoes, concurrently: one PingResult per plan, or why its namespace could not send."""
    if len(plans) > 0x10000:  # each plan's echoes are told apart by a 16-bit identifier
        raise InputError(f"{len(plans)} echo plans at once: at most {0x10000}")
    outcomes: list[PingResult | NetnsError | None] = [None] * len(plans)
    sockets: dict[tuple[str, bool, int], socket.socket] = {}
    failed: dict[tuple[str, bool, int], NetnsError] = {}
    progress: dict[int, _Progress] = {}
    base = int.from_bytes(os.urandom(2), "big")  # other probers share the pods: our echoes are ours
    try:
        for index, plan in enumerate(plans):
            key = plan.socket_key
            if key not in sockets and key not in failed:
                try:
                    sockets[key] = _raw_socket(*key)
                except NetnsError as err:
                    failed[key] = err
            if key in failed:
                outcomes[index] = failed[key]
                continue
            progress[index] = _Progress(plan, (base + index) & 0xFFFF)
        _converse(progress, sockets)
    finally:
        for sock in sockets.values():
            sock.close()
    for index, state in progress.items():
        outcomes[index] = state.result()
    return outcomes  # type: ignore[return-value]  # every plan has a result or an error by now


def _converse(progress: dict[int, _Progress], sockets: dict[tuple[str, bool, int], socket.socket]) -> None:
    by_identifier = {state.identifier: state for state in progress.values()}
    # epoll, not select(): a large lab has more sockets than select's 1024 descriptors.
    readers = selectors.DefaultSelector()
    for sock in sockets.values():
        readers.register(sock, selectors.EVENT_READ)
    try:
        _exchange(progress, sockets, by_identifier, readers)
    finally:
        readers.close()


def _exchange(
    progress: dict[int, _Progress],
    sockets: dict[tuple[str, bool, int], socket.socket],
    by_identifier: dict[int, _Progress],
    readers: selectors.BaseSelector,
) -> None:
    start = time.monotonic()
    for state in progress.values():
        state.next_send = start
    active = list(progress.values())
    while active:
        now = time.monotonic()
        for state in active:
            if state.sent < state.plan.count and state.next_send <= now:
                _send(state, sockets[state.plan.socket_key], now)
        active = [state for state in active if not state.finished(now)]
        if not active:
            return
        wake = min(state.next_send if state.sent < state.plan.count else state.deadline or now for state in active)
        for ready, _ in readers.select(max(0.0, wake - time.monotonic())):
            _receive(ready.fileobj, by_identifier)  # type: ignore[arg-type]  # registered sockets only


def _send(state: _Progress, sock: socket.socket, now: float) -> None:
    plan = state.plan
    sequence = state.sent + 1  # ping counts from 1
    try:
        build = echo6_request if plan.destination.version == 6 else echo_request
        sock.sendto(build(state.identifier, sequence, plan.size), (str(plan.destination), 0))
    except OSError as err:
        if err.errno in _TRANSIENT:
            if state.held_since is None:
                state.held_since = now
            if now - state.held_since < GIVE_UP_S:
                state.next_send = now + RETRY_S
                return
        state.refused += 1
        state.last_error = err.strerror or str(err)
        if err.errno == errno.EMSGSIZE:
            state.refused_too_big = True
            state.local_mtu = _local_mtu(sock) or state.local_mtu
    else:
        state.in_flight.add(sequence)
    state.held_since = None
    state.sent = sequence
    state.next_send = now + plan.interval
    if state.sent == plan.count:
        state.deadline = now + plan.timeout


def _receive(sock: socket.socket, by_identifier: dict[int, _Progress]) -> None:
    while True:
        try:
            packet, sender = sock.recvfrom(_MAX_PACKET)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            # IP_RECVERR reports a hop's error once as the socket's error; the packet
            # itself arrives as ICMP below, so the queued copy is only drained.
            _local_mtu(sock)
            continue
        if sock.family == socket.AF_INET6:
            # The ICMPv6 message alone; its source is recvfrom's (a link-local one with its %zone).
            message = read_icmp6(packet, IPv6Address(sender[0].split("%")[0]))
        else:
            message = read_icmp(packet)
        if message is None:
            continue
        state = by_identifier.get(message.identifier)
        about = message.source if isinstance(message, EchoReply) else message.quoted_destination
        if state is None or about != state.plan.destination:
            continue
        if message.sequence not in state.in_flight:
            continue  # a duplicate, or an echo this run did not send
        state.in_flight.discard(message.sequence)
        if isinstance(message, EchoReply):
            state.received += 1
        else:  # FragNeeded or PacketTooBig: a hop could not forward it
            state.frag_needed_mtu = message.next_hop_mtu
