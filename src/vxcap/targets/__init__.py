"""Targets: what a run points at (the embedded lab, a cluster), each composed from
adapters behind one small interface the pipeline drives."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Protocol

from vxcap.core.model import Pod, Topology


class RunningCapture(Protocol):
    def stop(self, timeout: float = ...) -> object: ...


class Target(Protocol):
    """The outside world of one run; the pipeline knows nothing else of it."""

    description: str

    def discover(self) -> Topology: ...

    def provision(self, nodes: tuple[str, ...]) -> dict[str, Pod]: ...

    def underlay_iface(self, node: str) -> str: ...

    def start_capture(self, node: str, path: Path, bpf: str) -> RunningCapture: ...

    def ping(self, src_node: str, dst_ip: IPv4Address, count: int) -> object: ...

    def evidence(self, node: str) -> dict[str, str]: ...

    def release(self) -> None: ...
