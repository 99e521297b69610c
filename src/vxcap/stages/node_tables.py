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
