"""The decode stage, one capture at a time: the fast decoder reads the file, scapy (the
reference dissector) re-reads the first frames of every judged flow and must file them the same
way (the spot-check: a disagreement is a bug of ours, reported, never hidden), and what no pod
flow can use is warned of, per file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vxcap.core.encap import Reading, reading_for  # noqa: F401 (reading_for: the pipeline's, from here)
from vxcap.core.frames import FlowKey, FlowTally
from vxcap.core.manifest import Manifest
from vxcap.stages.spot_check import SpotCheck


def judged_addresses(manifest: Manifest) -> frozenset[int]:
    """The addresses whose flows a verdict can read: the test pods' (each direction's flow, and the
    ICMP errors sent back to a pod) and the nodes' (ICMP errors about an encapsulated packet go back
    to the sending node). Every other flow of a busy node's capture is only counted."""
    addresses = {ip for pod in manifest.pods for ip in (pod.ip, pod.ip6) if ip is not None}
    for node in manifest.topology.nodes:
        addresses.add(node.address)  # an IPv6-only node's is its IPv6 one
        if node.underlay6 is not None:  # IPv6 underlay: VXLAN over IPv6's ICMPv6 errors, WireGuard over IPv6
            addresses.add(node.underlay6.ip)
        if node.vtep_ip is not None:
            addresses.add(node.vtep_ip)
    return frozenset(int(address) for address in addresses)


def decode_point(
    path: Path, warnings: list[str], vxlan_port: int | None = None, judged: frozenset[int] | None = None,
    dissect: Callable[..., dict] | None = None, reading: Reading | None = None, spot_check: SpotCheck | None = None,
    fast: Callable[[], Any] | None = None, checks: list[PendingCheck] | None = None,
) -> tuple[dict[FlowKey, FlowTally], int, str | None]:
    """One capture through the fast streaming decoder, scapy re-reading each kept flow's first
    frames (the spot-check); returns its flows, the bytes before the IP header in its frames (for frame sizes vs MTU), and
    what is damaged in the file (a cut or damaged record: the frames after it are missing), if anything.
    `judged`: the addresses whose flows are kept (`judged_addresses`); None keeps every flow.
    `dissect`: scapy's dissection of frames by index (`ScapyWorker.dissect`); None dissects here.
    `spot_check`: the run's budget across its captures (stages.spot_check); None re-reads every sample frame.
    `fast`: the fast pass's result for `path`, when it was read ahead (`ReadAhead.get`); None reads it here.
    `checks`: the spot-check is left to the caller: `dissect` may answer later (a Future, `ScapyWorker.
    submit`), and the `PendingCheck` appended here raises the disagreement when verified. None: checked here."""
    from vxcap.adapters.pcapfile import frames_at
    from vxcap.core.mtu.wire_sizes import LINK_HEADER

    reading = _reading(reading, vxlan_port)
    result = fast() if fast is not None else fast_pass(path, vxlan_port, judged, reading)
    if result.truncated:
        warnings.append(f"{path.name}: the last record is cut short (capture killed?); every frame before it counts")
    if result.problem:
        warnings.append(f"{path.name}: {result.problem}")
    # scapy dissects the sample frames (the first few) of every kept flow, read back at the offsets
    # the fast pass recorded: a live check of the fast path whose cost is a few frames per judged
    # flow, wherever they lie in the file (full agreement is the decoder tests' job).
    if spot_check is None:
        wanted = {index: key for key, indices in result.sample_frames.items() for index in indices}
    else:
        wanted = spot_check.choose(path.name, result.flows, result.sample_frames)
    if dissect is None:
        from vxcap.stages.scapy_worker import in_process as dissect
    pending = PendingCheck(path.name, wanted, result.flows,
                           dissect(frames_at(path, {i: result.frame_at[i] for i in wanted}), reading))
    if checks is None:
        pending.verify()
    else:
        checks.append(pending)
    # Frames no pod flow can use, named per file: else a direction missing from every capture
    # only reads "no packets seen". "Not VXLAN" is decode.py's reading (fastdecode.classify says
    # how): an I flag and an inner Ethernet + IPv4 frame, reserved bits ignored (RFC 7348).
    for port, count in sorted(result.not_vxlan.items()):
        warnings.append(
            f"{path.name}: {count} frame{'s' if count != 1 else ''} to UDP port {port} {'are' if count != 1 else 'is'} "
            "not valid VXLAN (too short, I flag clear, or no Ethernet + IPv4 frame inside)"
        )
    for port, count in sorted(result.ipv6_in_vxlan.items()):
        warnings.append(
            f"{path.name}: {count} VXLAN frame{'s' if count != 1 else ''} to UDP port {port} "
            f"carr{'y' if count != 1 else 'ies'} IPv6 pod traffic, not judged (vxcap reads IPv4 pods)"
        )
    if result.ipv6_frames:
        count = result.ipv6_frames
        warnings.append(f"{path.name}: {count} IPv6 frame{'s' if count != 1 else ''} not judged (vxcap reads IPv4 underlays)")
    linktypes = [LINK_HEADER.get(linktype, 14) for linktype in result.linktypes]
    damaged = result.problem or ("the last record is cut short" if result.truncated else None)
    return result.flows, linktypes[0] if len(linktypes) == 1 else 14, damaged


class DecoderDisagreement(ValueError):
    """The fast path and scapy read a frame differently: a bug of ours, reported, never hidden."""


@dataclass
class PendingCheck:
    """One capture's spot-check: the frames scapy was given (index -> the flow the fast decoder filed
    each under) and its answer, a dict or a Future of one (`ScapyWorker.submit`): the run judges
    while scapy reads, and verifies before it reports."""

    name: str
    wanted: dict[int, FlowKey]
    flows: dict[FlowKey, FlowTally]
    answer: Any

    def verify(self) -> None:
        """Raises DecoderDisagreement for the first frame scapy files otherwise; waits for the answer."""
        answer = self.answer.result() if isinstance(self.answer, Future) else self.answer
        for index, facts in answer.items():
            flow = self.flows[self.wanted[index]]
            if facts is None or facts.key != self.wanted[index] or facts.encap not in flow.encaps:
                raise DecoderDisagreement(
                    f"{self.name}: frame {index + 1}: scapy reads "
                    f"{facts and (str(facts.src), str(facts.dst), facts.encap.value)}, "
                    f"the fast decoder filed it under {tuple(map(str, self.wanted[index]))}"
                )


def _reading(reading: Reading | None, vxlan_port: int | None) -> Reading:
    if reading is not None:
        return reading
    from vxcap.core.fastdecode import VXLAN_PORTS

    return Reading(vxlan_ports=VXLAN_PORTS if vxlan_port is None else frozenset({vxlan_port}))


def fast_pass(path: Path, vxlan_port: int | None, judged: frozenset[int] | None, reading: Reading | None) -> Any:
    """The fast decoder over the whole file (`pcapfile.read_flows`)."""
    from vxcap.adapters.pcapfile import read_flows

    reading = _reading(reading, vxlan_port)
    return read_flows(path, vxlan_ports=reading.vxlan_ports, judged=judged, reading=reading)


class ReadAhead:
    """The fast pass of the next captures, in a thread, while the current one's spot-check waits on
    scapy's worker process: the two run on two cores instead of one after the other (at 256 captures,
    about a second each). `depth` captures ahead at most, so memory holds a few results, not a run's.
    `get(i)` is capture i's result, or raises what reading it raised."""

    def __init__(
        self, paths: Sequence[Path], vxlan_port: int | None, judged: frozenset[int] | None, reading: Reading | None,
        depth: int = 2,
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="vxcap-fast-pass")
        self._paths, self._args, self._depth = list(paths), (vxlan_port, judged, reading), depth
        self._futures: dict[int, Any] = {}
        self._submitted = 0

    def get(self, i: int) -> Any:
        while self._submitted < min(len(self._paths), i + 1 + self._depth):
            self._futures[self._submitted] = self._pool.submit(fast_pass, self._paths[self._submitted], *self._args)
            self._submitted += 1
        return self._futures.pop(i).result()

    def close(self) -> None:
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
