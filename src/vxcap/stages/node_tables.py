"""What the node tables saved beside each pcap tell the judge stage: why a failing
direction went where it went (its sender's routes, neighbours and FDB), and each node's
underlay MAC for the delivery checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vxcap.adapters.rundir import read_node_tables, read_optional
from vxcap.core import rundir as names
from vxcap.core.manifest import Manifest


def explain_failures(run_dir: Path, manifest: Manifest, report: dict[str, Any]) -> None:
    """Routes, neighbours and FDB explain a failure: a failing direction says what
    its sender's kernel decided for the destination pod (when the run saved them)."""
    from vxcap.core.explain import explain, node_tables

    ifaces = {cap.node: cap.iface for cap in manifest.captures}
    for flow in report["flows"]:
        if flow["verdict"] == "pass" or flow["src_node"] not in ifaces:
            continue
        texts = read_node_tables(run_dir, flow["src_node"], ifaces[flow["src_node"]], names.NODE_TABLES)
        lines = explain(flow["src_node"], node_tables(texts), flow["dst_ip"])
        if lines:
            flow["explanation"] = lines


def underlay_macs(run_dir: Path, manifest: Manifest) -> dict[str, str]:
    """Each captured node's underlay MAC, from the `ip -j link` node table saved beside its pcap."""
    from vxcap.core.mtu.path import links_or_none

    macs: dict[str, str] = {}
    for cap in manifest.captures:
        links = links_or_none(read_optional(run_dir / names.node_file(cap.node, cap.iface, names.NODE_LINKS))) or {}
        link = links.get(cap.iface)
        if link is not None and link.address:
            macs[cap.node] = link.address.lower()
    return macs


class NodeTables:
    """Every node's tables, read a few nodes at a time from when the captures are stopped. A run
    waits for them at once; a coverage run on a target that reads the links alone starts them when
    its probes start, and waits before the judge stage (which reads the links), and before the
    target is released. They are `ip` and `bridge` processes,
    three per node, that mostly wait on the kernel, not on this process (the lab's links alone are a
    netlink dump in this process: adapters.netlink_links).

    `deferred` (coverage runs, on a target that can read the links alone): every node's links now,
    which the verdicts read, and its routes, neighbours and FDB, which only explain a failure, later
    and only for the senders of failing directions (`complete`). On the 256-node lab a neighbour dump
    walks the entries of every namespace on the machine, so the full tables of all nodes took as long
    as the rest of the run's judging."""

    WORKERS = 8  # a few nodes at a time: each is a handful of commands (or execs) that mostly wait

    def __init__(self, target: Any, run_dir: Path, nodes: tuple[str, ...], deferred: bool = False) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.target, self.run_dir, self.nodes = target, run_dir, nodes
        links = getattr(target, "node_links", None) if deferred else None
        self.deferred = links is not None
        self.full: list[str] = []  # nodes whose routes, neighbours and FDB were read when deferred
        self._pool = ThreadPoolExecutor(max_workers=self.WORKERS, thread_name_prefix="node-tables")
        read = links or target.node_tables
        self._futures = [self._pool.submit(_collect, read, target, run_dir, node) for node in nodes]
        self._failures: list[str] | None = None

    @property
    def pending(self) -> bool:
        """Not waited for yet."""
        return self._failures is None

    def wait(self) -> list[str]:
        """Why some nodes' tables were not saved (one line each); waits for the rest."""
        if self._failures is None:
            try:
                self._failures = [failure for failure in (f.result() for f in self._futures) if failure]
            finally:
                self._pool.shutdown(wait=True, cancel_futures=True)
        return self._failures

    def complete(self, senders: list[str]) -> list[str]:
        """When deferred: the full tables of these nodes (the senders of failing directions), so each
        failure is explained as in any run; why some were not saved."""
        from concurrent.futures import ThreadPoolExecutor

        wanted = [node for node in dict.fromkeys(senders) if node in self.nodes and node not in self.full]
        if not self.deferred or not wanted:
            return []
        self.full += wanted
        with ThreadPoolExecutor(max_workers=self.WORKERS, thread_name_prefix="node-tables") as pool:
            failures = list(pool.map(lambda node: _collect(self.target.node_tables, self.target, self.run_dir, node),
                                     wanted))
        return [failure for failure in failures if failure]

    def summary(self) -> dict[str, Any] | None:
        """What report.json says of the tables when not every node's were read in full."""
        if not self.deferred:
            return None
        return {"links": len(self.nodes), "full": list(self.full),
                "why": "a coverage run reads every node's links (the verdicts read them) and the routes, "
                       "neighbours and FDB of the senders of failing directions only (they explain a failure)"}

    def close(self) -> None:
        """On the way out (an interrupt, a failure): nothing new starts; what runs finishes."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _collect(read: Any, target: Any, run_dir: Path, node: str) -> str | None:
    from vxcap.adapters.rundir import save_node_tables

    try:
        save_node_tables(run_dir, node, target.underlay_iface(node), read(node))
    except Exception as err:  # noqa: BLE001 - the node tables are a bonus; their absence is reported
        return f"node tables of {node} not saved: {err}"
    return None
