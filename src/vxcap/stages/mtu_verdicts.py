"""The judge stage's MTU part: each direction's `mtu` section, from the node and pod links
saved beside the pcaps, mtu-probes.json and the capture tallies (vxcap.core.mtu judges them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vxcap.adapters.rundir import read_node_tables, read_optional
from vxcap.core import rundir as names
from vxcap.core.encap import ENCAPS
from vxcap.core.frames import FlowKey, FlowTally
from vxcap.core.manifest import Manifest
from vxcap.core.model import Wire
from vxcap.core.mtu.path import PointTally, direction_mtu, probe_records, read_node_mtus
from vxcap.core.plan import Expectation
from vxcap.core.verdict import CapturePoint


def judge_mtu(
    run_dir: Path,
    manifest: Manifest,
    expectations: list[Expectation],
    seen: dict[CapturePoint, dict[FlowKey, FlowTally]],
    link_headers: dict[CapturePoint, int],
    warnings: list[str],
) -> list[dict[str, Any]]:
    """Each direction's `mtu` section, from the links saved beside the pcaps, mtu-probes.json and the captures."""
    ifaces = {cap.node: cap.iface for cap in manifest.captures}
    pods = manifest.pods_by_node()
    families = sorted({e.family for e in expectations})
    records: dict[int, dict] = {family: {} for family in families}  # each family's probes judge its own directions
    probes_text = read_optional(run_dir / names.MTU_PROBES)
    if probes_text is not None:
        try:
            data = json.loads(probes_text)
            records = {family: probe_records(data, family=family) for family in families}
        except json.JSONDecodeError:
            warnings.append(f"{names.MTU_PROBES} is not JSON: the MTU probes are not judged")
    nodes = {}
    # Per family and format: an IPv6 direction's VXLAN device is vxlan-v6.calico, an IP-in-IP one's
    # tunl0, a WireGuard one's wireguard.cali (wg-v6.cali), each with its own MTU (core/encap.py).
    def device(e: Expectation) -> str | None:
        return ENCAPS[e.expected].device(e.family)

    for node, family, tunnel in {(n, e.family, device(e)) for e in expectations for n in (e.src_node, e.dst_node)}:
        iface = ifaces.get(node, "eth1")
        tables = read_node_tables(run_dir, node, iface, (names.NODE_LINKS, names.POD_LINKS))
        nodes[node, family, tunnel] = read_node_mtus(
            node,
            tables[names.NODE_LINKS],
            tables[names.POD_LINKS],
            pod=pods[node].name if node in pods else None,
            underlay_ifname=iface,
            underlay_ip=family,
            tunnel_ifname=tunnel,
        )
    captures = [PointTally(point.node, flows, link_headers.get(point, 14)) for point, flows in seen.items()]
    # A dual-stack pod's one MTU is bounded by both families: each family's tunnel, as this run's
    # directions of that family show it (plain where none of them tunnels).
    tunnels = {
        family: next((e.expected for e in expectations if e.family == family and e.expected is not Wire.PLAIN), Wire.PLAIN)
        for family in families
    }

    def other_family(e: Expectation) -> tuple[Wire, int] | None:
        other = 10 - e.family  # 4 <-> 6
        return (tunnels[other], other) if other in tunnels else None

    return [
        direction_mtu(
            e,
            nodes[e.src_node, e.family, device(e)],
            nodes[e.dst_node, e.family, device(e)],
            records[e.family].get((e.src_node, e.dst_node)),
            captures,
            mode=manifest.topology.overlay.mode,
            other_family=other_family(e),
        )
        for e in expectations
    ]
