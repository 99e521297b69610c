"""`vxcap topology --cni flannel|cilium|antrea --json`: what was read and what each direction must show."""

from __future__ import annotations

from typing import Any

from vxcap.core.cni import CniDiscovery, WireFormat


def _format(wire: WireFormat) -> dict[str, Any]:
    return {"encap": wire.encap.value, "port": wire.port, "vni": wire.vni,
            "zero_udp_checksum": wire.zero_udp_checksum, "device": wire.device, "text": wire.describe()}


def cni_topology_dict(found: CniDiscovery) -> dict[str, Any]:
    return {
        "cni": found.cni.value,
        "source": found.source,
        "summary": found.summary,
        "overlay": dict(found.settings),
        "nodes": [
            {"name": n.name, "address": str(n.address), "pod_cidr": None if n.pod_cidr is None else str(n.pod_cidr),
             "vtep_mac": n.vtep_mac, "vni": n.vni}
            for n in found.nodes
        ],
        "paths": [
            {"src": p.src, "dst": p.dst, "expected": [w.encap.value for w in p.expected],
             "formats": [_format(w) for w in p.expected], "reason": p.reason, "decided_by": p.decided_by}
            for p in found.paths
        ],
    }
