"""The run's MTU probes, per direction: one short TCP exchange whose SYNs carry the
pods' MSS onto the wire, a DF ping ladder, and a bisection for the exact limit.

They run inside the capture window, after the connectivity pings, so the
captures show what left and what came back. Every direction's TCP exchange
comes first: its SYN must carry the MSS the pod's own MTU gives, before a
fragmentation-needed from the ladder teaches the pod a smaller path MTU. Then
the sizes go out in rounds, one size per direction per round, all directions
at once: each direction's sizes stay in order (a fragmentation-needed teaches
the pod a smaller path MTU and the next sizes are then refused locally, as
they would be for any application), and a round waits at most one probe's
wait. What the sender saw is kept in mtu-probes.json, which
`vxcap.core.mtu.path` judges together with the captures.

IPv6 pods are probed the same way (ICMPv6 echoes, payload = MTU - 48; TCP over
IPv6, MSS = MTU - 60): a direction is probed in each family asked for, and on a
dual-stack run both families go out in the same rounds. Each direction's record
says its family; IPv4's records are what they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from vxcap.core.errors import InputError, VxcapError
from vxcap.core.model import DEFAULT_MTU, Pod
from vxcap.core.mtu.ladder import LadderSearch, ProbeResult, ladder_sizes, probe_from_result
from vxcap.core.ping import PingResult
from vxcap.targets import MtuProbing, fan_out

# 2: each ladder entry carries the sender's signals as fields, not only as ping's text;
# 3: each direction says its family (4 or 6), and "ladders" gives each family's sizes.
PROBES_VERSION = 3
LADDER_WAIT_S = 0.5  # one echo per size: a reply on a healthy path takes milliseconds
MAX_PROBES = 24  # distinct sizes per direction, ladder and bisection together
TCP_PORT_BASE = 41000  # clusters: one port per direction (the lab lets the kernel pick)
OUTPUT_KEPT = 2000  # characters of ping's output kept per probe: the lines that matter are short
# A DF echo that simply got no answer (not refused, no fragmentation-needed) is sent again this
# many times before it counts as lost: one lost echo on a lossy path says nothing about its MTU.
LOSS_RETRIES = 1


@dataclass
class _Direction:
    src: str
    dst: str
    dst_ip: IPv4Address | IPv6Address
    port: int
    record: dict[str, Any] = field(init=False)
    results: list[ProbeResult] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)  # ladder sizes still to send, in order
    searching: bool = False
    done: bool = False

    @property
    def family(self) -> int:
        return self.dst_ip.version

    def __post_init__(self) -> None:
        self.record = {"src_node": self.src, "dst_node": self.dst, "dst_ip": str(self.dst_ip),
                       "family": self.family, "ladder": [], "tcp": None}

    def next_size(self, search: LadderSearch) -> int | None:
        if self.done:
            return None
        if self.pending:
            return self.pending.pop(0)
        # A path nothing crosses has no limit to look for.
        size = search.propose(self.results) if any(r.reply for r in self.results) else None
        self.done = size is None
        return size

    def heard(self, size: int, outcome: tuple[PingResult, str] | VxcapError) -> None:
        if isinstance(outcome, VxcapError):
            self.record["error"] = f"DF probe from {self.src}: {outcome}"
            self.done = True
            return
        ping, output = outcome
        plain_loss = not ping.received and not ping.refused_too_big and ping.frag_needed_mtu is None
        if plain_loss and sum(r.size == size for r in self.results) < LOSS_RETRIES:
            self.pending.insert(0, size)  # sent again next round, before the ladder goes on
        self.record["ladder"].append({
            "size": size,
            "transmitted": ping.transmitted,
            "received": ping.received,
            "refused_too_big": ping.refused_too_big,
            "local_mtu": ping.local_mtu,
            "frag_needed_mtu": ping.frag_needed_mtu,
            "output": output[-OUTPUT_KEPT:],
        })
        self.results.append(probe_from_result(size, ping, self.family))


def pod_address(pod: Pod, family: int, ipv6: Mapping[str, IPv6Address] | None = None) -> IPv4Address | IPv6Address:
    """The pod's address in `family`: IPv4 its `ip`; IPv6 from `ipv6` (node -> address) or the pod's own `ip6`."""
    if family == 4:
        return pod.ip
    address = (ipv6 or {}).get(pod.node) or getattr(pod, "ip6", None)
    if address is None:
        raise InputError(f"MTU probes over IPv6: the pod on {pod.node} has no IPv6 address")
    if address.version != 6:
        raise InputError(f"MTU probes over IPv6: {address} (the pod on {pod.node}) is not an IPv6 address")
    return address


def run_mtu_probes(
    target: MtuProbing,
    directions: Sequence[tuple[str, str]],
    pods: dict[str, Pod],
    pod_mtu: int | None = DEFAULT_MTU,
    families: Sequence[int] = (4,),
    ipv6: Mapping[str, IPv6Address] | None = None,
) -> dict[str, Any]:
    """Every direction's probes in each of `families` (every Target can probe: MtuProbing is part of
    the Target protocol). IPv6 destinations are `ipv6[node]` or the pod's `ip6`; `pod_mtu` is the pods'
    MTU for both families (Calico gives a pod one MTU, the smallest of its encapsulations')."""
    if not families or any(family not in (4, 6) for family in families) or len(set(families)) != len(families):
        raise InputError(f"MTU probe families {tuple(families)}: each of 4 and 6 at most once")
    ladders = {family: ladder_sizes(pod_mtu, family) for family in families}
    states = [
        _Direction(src, dst, pod_address(pods[dst], family, ipv6), TCP_PORT_BASE + index,
                   pending=list(ladders[family]))
        for index, (family, (src, dst)) in enumerate((f, d) for f in families for d in directions)
    ]

    def exchange(state: _Direction) -> tuple[bool, str]:
        return target.tcp_exchange(state.src, state.dst, state.dst_ip, state.port)

    for state, outcome in zip(states, fan_out(exchange, states)):
        if isinstance(outcome, VxcapError):
            state.record["tcp"] = {"connected": False, "detail": f"TCP exchange from {state.src}: {outcome}"}
        else:
            connected, detail = outcome
            state.record["tcp"] = {"connected": connected, "detail": detail[-OUTPUT_KEPT:]}

    searches = {family: LadderSearch.for_family(family, MAX_PROBES) for family in families}
    while round_ := [(state, size) for state in states
                     if (size := state.next_size(searches[state.family])) is not None]:
        outcomes = target.df_ping_all([(state.src, state.dst_ip, size) for state, size in round_], LADDER_WAIT_S)
        for (state, size), outcome in zip(round_, outcomes):
            state.heard(size, outcome)
    return {
        "version": PROBES_VERSION,
        "ladder_wait_s": LADDER_WAIT_S,
        "ladder": ladders.get(4, ladders[families[0]]),  # versions 1-2's field: the IPv4 ladder when there is one
        "ladders": {str(family): sizes for family, sizes in ladders.items()},
        "directions": [state.record for state in states],
    }
