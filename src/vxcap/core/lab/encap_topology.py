"""A lab data plane (LabSpec.dataplane: vxlan, vxlan6, dual, wireguard, wireguard6, ipip) as the encapsulation
model sees a cluster: the Topology and pods that core/plan.py plans and core/verdict.py judges.

The lab keeps its IPv6 side and its data plane settings beside the IPv4 topology (LabSpec.nodes6,
vxlan6, wireguard, ipip); discovery of a real cluster puts them in the Topology itself
(core/calico.py). This is the one mapping from the first to the second.
"""

from __future__ import annotations

from dataclasses import replace

from vxcap.core.lab.spec import LabSpec
from vxcap.core.model import Mode, Pod, Topology


def lab_topology(spec: LabSpec) -> Topology:
    """The spec's topology with its data plane: IPv6 addresses and pool mode, WireGuard, IP-in-IP."""
    topology = spec.topology
    overlay = topology.overlay
    if spec.has_ipv6:
        if spec.vxlan6 is not None:
            overlay = replace(overlay, mode6=Mode.parse(spec.vxlan6.mode), mtu6=spec.vxlan6.mtu,
                              ipv4=spec.dataplane == "dual")
        if spec.wireguard6 is not None:
            # An IPv6 pool without encapsulation (vxlanMode Never): wg-v6.cali carries it between every pair.
            overlay = replace(overlay, mode6=Mode.NEVER, mtu6=spec.wireguard6.mtu, ipv4=spec.has_ipv4, wireguard6=True,
                              wireguard_port6=spec.wireguard6.port)
        six = {node.name: node for node in spec.nodes6}
        # An IPv6-only lab (vxlan6, wireguard6) has no IPv4 on eth1 or the pods: its nodes have no IPv4 side.
        v4 = {} if spec.has_ipv4 else {"underlay": None, "block": None, "vtep_ip": None, "vtep_mac": None}
        nodes = tuple(
            replace(node, underlay6=six[node.name].underlay, block6=six[node.name].block,
                    vtep_ip6=six[node.name].vtep_ip, vtep_mac6=six[node.name].vtep_mac or None, **v4)
            if node.name in six else node
            for node in topology.nodes
        )
        topology = replace(topology, nodes=nodes, **({} if spec.has_ipv4 else {"pool": None, "subnets": ()}))
    if spec.ipv4_encap == "wireguard" and spec.wireguard is not None:
        # every lab node is a peer (its key is the lab's): None, "taken as published"
        overlay = replace(overlay, wireguard=True, wireguard_port=spec.wireguard.port)
    if spec.cilium is not None:
        topology = _cilium_identities(spec, topology)
        overlay = replace(overlay, vni_identity=True)
    if spec.dataplane == "ipip" and spec.ipip is not None:
        overlay = replace(overlay, encapsulation="ipip", mode=Mode.parse(spec.ipip.mode))
    return replace(topology, overlay=overlay)


def lab_pods(spec: LabSpec) -> tuple[Pod, ...]:
    """The spec's test pods, with their IPv6 address where the lab gives them one."""
    if not spec.has_ipv6:
        return spec.pods
    six = {node.name: node for node in spec.nodes6}
    v4 = {} if spec.has_ipv4 else {"ip": None}
    return tuple(replace(pod, ip6=six[pod.node].pod_ip, **v4) if pod.node in six else pod for pod in spec.pods)


def _cilium_identities(spec: LabSpec, topology: Topology) -> Topology:
    """Each node's VNI is its test pod's identity, read from the pods' CiliumEndpoints as a cluster
    run reads them (`core.cni.cilium`). The inner MACs are the lab's own choice, not a Cilium
    promise, so no VTEP MAC is expected."""
    from vxcap.core.cni.cilium import endpoints, sender_vni
    from vxcap.core.lab.cilium import endpoints as lab_endpoints

    found = endpoints(lab_endpoints(spec))
    return replace(topology, nodes=tuple(replace(node, vni=sender_vni(found, spec.pod_on(node.name).ip), vtep_mac=None)
                                         for node in topology.nodes))
