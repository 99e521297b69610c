"""Targets: what a run points at (the embedded lab, a cluster), each composed from
adapters behind one small interface the pipeline drives."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

from vxcap.core.errors import VxcapError
from vxcap.core.model import Pod, Topology
from vxcap.core.ping import PingResult

# Probes that each hold a process or an exec stream open: enough to overlap the
# waits, few enough for two cores and an API server.
PROBE_WORKERS = 8

Item = TypeVar("Item")
Result = TypeVar("Result")


class RunningCapture(Protocol):
    def stop(self, timeout: float = ...) -> object: ...


@runtime_checkable
class MtuProbing(Protocol):
    """What the MTU probes (vxcap.stages.mtu_probes) ask of a target: every target has it."""

    def df_ping_all(
        self, probes: Sequence[tuple[str, IPv4Address, int]], wait: float
    ) -> list[tuple[PingResult, str] | VxcapError]:
        """One DF echo per (source node, destination pod IP, payload size), all concurrently:
        per probe (what the sender saw, what it said), or why it could not be sent."""
        ...

    def tcp_exchange(self, src_node: str, dst_node: str, dst_ip: IPv4Address, port: int) -> tuple[bool, str]: ...


class Target(MtuProbing, Protocol):
    """The outside world of one run; the pipeline knows nothing else of it."""

    description: str

    def discover(self) -> Topology: ...

    def provision(self, nodes: tuple[str, ...]) -> dict[str, Pod]: ...

    def underlay_iface(self, node: str) -> str: ...

    def start_capture(self, node: str, path: Path, bpf: str) -> RunningCapture: ...

    def ping_all(self, probes: Sequence[tuple[str, IPv4Address]], count: int) -> list[PingResult | VxcapError]:
        """`count` echoes per (source node, destination pod IP), all probes concurrently:
        per probe its result, or why it could not be sent."""
        ...

    def node_tables(self, node: str) -> dict[str, str]:
        """The node's links, routes, neighbours and FDB (and its test pod's links) as JSON
        texts, keyed by their run directory suffix (vxcap.core.rundir)."""
        ...

    def release(self) -> None: ...


def fan_out(one: Callable[[Item], Result], items: Sequence[Item], workers: int = PROBE_WORKERS) -> list[Result | VxcapError]:
    """`one` over `items` on a bounded pool, in order; a VxcapError is that item's result."""

    def guarded(item: Item) -> Result | VxcapError:
        try:
            return one(item)
        except VxcapError as err:
            return err

    pool = ThreadPoolExecutor(max_workers=min(workers, len(items) or 1))
    try:
        return list(pool.map(guarded, items))
    finally:
        # On Ctrl-C, do not wait for probes still queued: stopping the captures comes first.
        pool.shutdown(wait=False, cancel_futures=True)
