"""The capture stage's filters: one for the whole run, or at scale one per node."""

from __future__ import annotations

from vxcap.core.model import DEFAULT_WG_PORT, DEFAULT_WG_PORT_V6, Pair, Pod, Topology, Wire


def capture_filter(topology: Topology, nodes: tuple[str, ...], pods: dict[str, Pod], mode: str) -> dict[str, str]:
    """The filter every capture of the run uses (see `vxcap.core.capture.capture_filter`)."""
    from vxcap.core.capture import capture_filter as build
    from itertools import permutations

    from vxcap.core.plan import expected_wire, path_families

    # Every format a direction between these nodes uses, in either family (core/encap.py).
    members = [topology.node(n) for n in nodes]
    wires = sorted({expected_wire(topology.overlay, a, b, family)[0]
                    for a, b in permutations(members, 2) for family in path_families(topology, a, b)})
    overlay = topology.overlay
    if overlay.mode6 is not None and "vxlan" not in wires:
        # As IPv4 VXLAN always is: IPv6 VXLAN carrying a test pod is kept where plain is expected,
        # so a same-subnet pair sent through vxlan-v6.calico fails as VXLAN, not as nothing seen.
        wires.append("vxlan")
        wires.sort()
    if "wireguard" not in wires:
        # WireGuard between two involved nodes on Felix's default ports is kept where it is not expected,
        # so a cluster encrypting what was promised as VXLAN or plain fails as WireGuard, not as nothing seen.
        wires.append("wireguard")
    return build(
        mode,
        [ip for pod in pods.values() for ip in (pod.ip, pod.ip6) if ip is not None],
        [a for n in nodes for a in (topology.node(n).address_of(4), topology.node(n).address_of(6)) if a is not None],
        overlay.port,
        topology.pool,
        wires=[Wire(w) for w in wires],
        wireguard_ports=[p for p, on in ((overlay.wireguard_port, overlay.wireguard),
                                         (overlay.wireguard_port6, overlay.wireguard6)) if on]
                        + [p for p, on in ((DEFAULT_WG_PORT, overlay.wireguard), (DEFAULT_WG_PORT_V6, overlay.wireguard6))
                           if not on],
    )


# Up to this many nodes every capture uses the one filter of the run; beyond, each node's names
# only its own pod and address and its partners' in the plan (a filter naming 256 pods and
# nodes costs libpcap about a second of CPU to compile, for each of 256 captures).
ONE_FILTER_UP_TO = 16


def capture_filters(
    topology: Topology, nodes: tuple[str, ...], pairs: tuple[Pair, ...], pods: dict[str, Pod], mode: str
) -> dict[str, dict[str, str]]:
    """Each node's capture filter: the run's, or at scale the node's own (see ONE_FILTER_UP_TO)."""
    if len(nodes) <= ONE_FILTER_UP_TO:
        shared = capture_filter(topology, nodes, pods, mode)
        return {node: shared for node in nodes}
    partners: dict[str, dict[str, None]] = {node: {node: None} for node in nodes}
    for pair in pairs:
        partners[pair.a].setdefault(pair.b)
        partners[pair.b].setdefault(pair.a)
    return {node: capture_filter(topology, tuple(partners[node]), {n: pods[n] for n in partners[node] if n in pods},
                                 mode) for node in nodes}
