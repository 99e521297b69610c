"""What Calico's MTU of 1450 means on each path: arithmetic, measurement, verdicts.

The 50 bytes: an MTU limits IP packets, not frames. VXLAN carries the pod's
whole Ethernet frame inside UDP, so against the underlay IP MTU a pod packet
costs its own size plus inner Ethernet 14 + VXLAN 8 + UDP 8 + outer IPv4 20
= 50 (outer IPv6 40: 70). Pod packet 1450 -> outer IP packet 1500 = underlay
MTU 1500. The outer Ethernet header (the 1514-byte frame a capture shows) is
not counted, like any link header. Details in `arithmetic`.

Modules, each pure:
  arithmetic  overhead, limits, frame sizes, header shares, DF outcomes, costs
  links       `ip -d -j link` JSON -> interface MTUs -> a node's pod/vxlan/underlay MTUs
  probes      the DF ping ladder, a bisection for the exact limit, ping's MTU messages
  wire_sizes  offload aggregates vs oversize frames; ICMP fragmentation-needed in raw frames
  judge       MtuFinding lists per path
  report      the `mtu` section of report.json
"""

from vxcap.core.mtu.arithmetic import (
    DfFate,
    DfOutcome,
    Headroom,
    HeaderShare,
    PlainPathCost,
    calico_mtu_setting,
    df_outcome,
    frame_len,
    header_share,
    headroom,
    icmp_packet_len,
    max_icmp_payload,
    max_inner_mtu,
    outer_packet_len,
    overhead_parts,
    plain_path_cost,
    tcp_mss,
    vxlan_overhead,
)
from vxcap.core.mtu.judge import MtuFinding, MtuMeasurement, judge_mtu
from vxcap.core.mtu.links import LinkFacts, NodeMtus, interface_mtus, node_mtus
from vxcap.core.mtu.ladder import (
    Bounds,
    LadderSearch,
    PingMtuSignals,
    ProbeFate,
    ProbeResult,
    ladder_sizes,
    ping_mtu_signals,
    probe_from_ping,
    probe_from_result,
    seen_on_wire,
)
from vxcap.core.mtu.report import mtu_report
from vxcap.core.mtu.wire_sizes import (
    FrameSize,
    SizeTally,
    classify_frame_size,
    size_tally_of_counts,
)

__all__ = [
    "Bounds",
    "DfFate",
    "DfOutcome",
    "FrameSize",
    "Headroom",
    "HeaderShare",
    "LadderSearch",
    "LinkFacts",
    "MtuFinding",
    "MtuMeasurement",
    "NodeMtus",
    "PingMtuSignals",
    "PlainPathCost",
    "ProbeFate",
    "ProbeResult",
    "SizeTally",
    "calico_mtu_setting",
    "classify_frame_size",
    "df_outcome",
    "frame_len",
    "header_share",
    "headroom",
    "icmp_packet_len",
    "interface_mtus",
    "judge_mtu",
    "ladder_sizes",
    "max_icmp_payload",
    "max_inner_mtu",
    "mtu_report",
    "node_mtus",
    "outer_packet_len",
    "overhead_parts",
    "ping_mtu_signals",
    "plain_path_cost",
    "probe_from_ping",
    "probe_from_result",
    "seen_on_wire",
    "size_tally_of_counts",
    "tcp_mss",
    "vxlan_overhead",
]
