"""The run's MTU probes, per direction: one short TCP exchange whose SYNs carry the
pods' MSS onto the wire, a DF ping ladder, and a bisection for the exact limit.

They run inside the capture window, after the connectivity pings, so the
captures show what left and what came back; directions run concurrently (each
one's sizes in order: a fragmentation-needed teaches the pod a smaller path
MTU, and the next sizes are then refused locally, as they would be for any
application). What ping and the TCP programs said is kept as it was said in
mtu-probes.json, which `vxcap.core.mtu.path` judges together with the captures.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address
from typing import Any, Protocol, runtime_checkable

from vxcap.core.errors import VxcapError
from vxcap.core.model import DEFAULT_MTU, Pod
from vxcap.core.mtu import LadderSearch, ProbeResult, ladder_sizes, probe_from_ping
from vxcap.core.probe import PingResult

PROBES_VERSION = 1
LADDER_WAIT_S = 0.5  # one echo per size: a reply on a healthy path takes milliseconds
MAX_PROBES = 24  # distinct sizes per direction, ladder and bisection together
PROBE_WORKERS = 8  # concurrent directions, as for the connectivity pings
TCP_PORT_BASE = 41000  # clusters: one port per direction (the lab lets the kernel pick)
OUTPUT_KEPT = 2000  # characters of ping's output kept per probe: the lines that matter are short


@runtime_checkable
class MtuProbing(Protocol):
    """What a target needs for the MTU probes (LabTarget and ClusterTarget have it)."""

    def df_ping(self, src_node: str, dst_ip: IPv4Address, size: int, wait: float) -> tuple[PingResult, str]: ...

    def tcp_exchange(self, src_node: str, dst_node: str, dst_ip: IPv4Address, port: int) -> tuple[bool, str]: ...


def probe_direction(target: MtuProbing, src: str, dst: str, dst_ip: IPv4Address, ladder: Sequence[int], port: int) -> dict[str, Any]:
    """One direction's ladder, bisection and TCP exchange, as the record mtu-probes.json keeps."""
    record: dict[str, Any] = {"src_node": src, "dst_node": dst, "dst_ip": str(dst_ip), "ladder": [], "tcp": None}
    results: list[ProbeResult] = []

    def send(size: int) -> None:
        ping, output = target.df_ping(src, dst_ip, size, LADDER_WAIT_S)
        record["ladder"].append(
            {"size": size, "transmitted": ping.transmitted, "received": ping.received, "output": output[-OUTPUT_KEPT:]}
        )
        results.append(probe_from_ping(size, ping.received, output))

    # TCP first: its SYN must carry the MSS the pod's own MTU gives, before a fragmentation-needed
    # from the ladder teaches the pod a smaller path MTU (which the kernel would then advertise).
    try:
        connected, detail = target.tcp_exchange(src, dst, dst_ip, port)
        record["tcp"] = {"connected": connected, "detail": detail[-OUTPUT_KEPT:]}
    except VxcapError as err:
        record["tcp"] = {"connected": False, "detail": f"TCP exchange from {src}: {err}"}
    try:
        for size in ladder:
            send(size)
        if any(r.reply for r in results):  # a path nothing crosses has no limit to look for
            search = LadderSearch(max_probes=MAX_PROBES)
            while (size := search.propose(results)) is not None:
                send(size)
    except VxcapError as err:
        record["error"] = f"DF probe from {src}: {err}"
    return record


def run_mtu_probes(
    target: Any, directions: Sequence[tuple[str, str]], pods: dict[str, Pod], pod_mtu: int | None = DEFAULT_MTU
) -> dict[str, Any] | None:
    """Every direction's probes, concurrently; None when the target cannot probe MTUs."""
    if not isinstance(target, MtuProbing):
        return None
    ladder = ladder_sizes(pod_mtu)

    def one(indexed: tuple[int, tuple[str, str]]) -> dict[str, Any]:
        index, (src, dst) = indexed
        return probe_direction(target, src, dst, pods[dst].ip, ladder, TCP_PORT_BASE + index)

    pool = ThreadPoolExecutor(max_workers=min(PROBE_WORKERS, len(directions) or 1))
    try:
        records = list(pool.map(one, enumerate(directions)))
    finally:
        # On Ctrl-C, do not wait for probes still queued: stopping the captures comes first.
        pool.shutdown(wait=False, cancel_futures=True)
    return {"version": PROBES_VERSION, "ladder_wait_s": LADDER_WAIT_S, "ladder": ladder, "directions": records}
