"""The `mtu` section of report.json for one path: plain, JSON-serialisable data."""

from __future__ import annotations

from vxcap.core.model import Mode, Wire
from vxcap.core.mtu.arithmetic import (
    ETHERNET_HEADER,
    DfOutcome,
    df_outcome,
    frame_len,
    header_share,
    headroom,
    max_icmp_payload,
    max_inner_mtu,
    overhead_parts,
    plain_path_cost,
    tcp_mss,
    wire_overhead,
)
from vxcap.core.mtu.judge import MtuFinding, MtuMeasurement, judge_mtu, smallest_known
from vxcap.core.mtu.links import NodeMtus
from vxcap.core.mtu.ladder import LadderSearch

ETHERNET_DEFAULT_MTU = 1500
SHARE_PAYLOADS = (64, 512, 1400)
DF_PROBE_PACKET = 1500


def _node(node: NodeMtus) -> dict:
    return {
        "node": node.node,
        "pod": node.pod,
        "pod_ifname": node.pod_ifname,
        "pod_mtu": node.pod_mtu,
        "vxlan_ifname": node.vxlan_ifname,
        "vxlan_mtu": node.vxlan_mtu,
        "underlay_ifname": node.underlay_ifname,
        "underlay_mtu": node.underlay_mtu,
    }


def _shares(underlay_ip: int) -> list[dict]:
    rows = []
    for payload in SHARE_PAYLOADS:
        plain, vxlan = (header_share(payload, wire, "tcp", underlay_ip) for wire in (Wire.PLAIN, Wire.VXLAN))
        rows.append(
            {
                "payload": payload,
                "l4": "tcp",
                "plain_frame": plain.frame,
                "plain_header_share": round(plain.share, 4),
                "vxlan_frame": vxlan.frame,
                "vxlan_header_share": round(vxlan.share, 4),
            }
        )
    return rows


def _df(outcome: DfOutcome) -> dict:
    return {
        "packet": outcome.packet,
        "fate": outcome.fate.value,
        "outer_packet": outcome.outer_packet,
        "outer_frame": outcome.outer_frame,
        "limit": outcome.limit,
        "stopped_at": outcome.stopped_at,
        "explanation": outcome.explanation,
    }


def mtu_report(
    wire: Wire,
    src: NodeMtus,
    dst: NodeMtus,
    measured: MtuMeasurement | None = None,
    *,
    underlay_ip: int = 4,
    mode: Mode = Mode.CROSS_SUBNET,
    hop_mtu: int | None = None,
    findings: list[MtuFinding] | None = None,
    inner_ip: int = 4,
    other_family: tuple[Wire, int] | None = None,
) -> dict:
    """Arithmetic for this path's MTUs, what was measured, and the findings (judged here unless given).

    The arithmetic needs an underlay MTU; when none was read it uses Ethernet's
    1500 and says so (`underlay_mtu_assumed`). The findings never assume.
    """
    measured = measured or MtuMeasurement()
    if findings is None:
        findings = judge_mtu(wire, src, dst, measured, underlay_ip=underlay_ip, mode=mode, hop_mtu=hop_mtu,
                             other_family=other_family)
    known_underlay = smallest_known(src.underlay_mtu, dst.underlay_mtu, hop_mtu)
    underlay = known_underlay or ETHERNET_DEFAULT_MTU
    allowed = max_inner_mtu(underlay, wire, underlay_ip)
    pod = smallest_known(src.pod_mtu, dst.pod_mtu)
    vxlan = smallest_known(src.vxlan_mtu, dst.vxlan_mtu) if wire is Wire.VXLAN else None
    path = smallest_known(pod, vxlan, allowed)
    bounds = LadderSearch().bounds(measured.probes)

    def df_1500(pod_mtu: int | None, vxlan_mtu: int | None) -> dict:
        return _df(
            df_outcome(
                DF_PROBE_PACKET,
                wire=wire,
                pod_mtu=pod_mtu,
                underlay_mtu=underlay,
                vxlan_mtu=vxlan_mtu,
                underlay_ip=underlay_ip,
                pod_ifname=src.pod_ifname,
                vxlan_ifname=src.vxlan_ifname,
                underlay_ifname=src.underlay_ifname,
            )
        )

    cost = plain_path_cost(pod, underlay) if wire is Wire.PLAIN and pod is not None else None
    tunnel = wire if wire is Wire.VXLAN or mode is Mode.NEVER else Wire.VXLAN
    room = headroom(pod, underlay, tunnel, underlay_ip) if pod is not None else None
    return {
        "wire": wire.value,
        "underlay_ip": underlay_ip,
        "overhead": {
            "bytes": wire_overhead(wire, underlay_ip),
            "parts": overhead_parts(underlay_ip) if wire is Wire.VXLAN else {},
            "outer_ethernet_not_counted": ETHERNET_HEADER,
        },
        "mtus": {"src": _node(src), "dst": _node(dst), "hop": hop_mtu},
        "underlay_mtu": underlay,
        "underlay_mtu_assumed": known_underlay is None,
        "max_inner_packet": allowed,
        "path_limit": path,  # the largest DF pod packet that should cross
        # The pods' own family (IPv6 echoes and SYNs have 20 bytes more of header).
        "max_icmp_payload": max_icmp_payload(path, inner_ip),
        "tcp_mss": tcp_mss(path, inner_ip),
        "max_frame": frame_len(path, wire, underlay_ip),
        "header_shares": _shares(underlay_ip),
        "df_1500": {
            "at_pod_mtu": df_1500(src.pod_mtu, src.vxlan_mtu),
            "if_pod_mtu_1500": df_1500(DF_PROBE_PACKET, src.vxlan_mtu),
            "if_pod_and_vxlan_mtu_1500": df_1500(DF_PROBE_PACKET, DF_PROBE_PACKET) if wire is Wire.VXLAN else None,
        },
        "plain_path_cost": None
        if cost is None
        else {
            "unused_bytes": cost.unused,
            "tcp_mss": cost.mss,
            "possible_tcp_mss": cost.possible_mss,
            "payload_loss": round(cost.payload_loss, 4),
        },
        "headroom": None
        if room is None
        else {"allowed_pod_mtu": room.allowed_pod_mtu, "unused_bytes": room.unused, "setting": room.setting},
        "measured": {
            "largest_df_payload": bounds.largest_crossed,
            "largest_df_payload_exact": bounds.exact,
            "smallest_failed_payload": bounds.smallest_failed_above,
            "probes": [p.as_dict() for p in sorted(measured.probes, key=lambda p: p.size)],
            "max_outer_frame": measured.max_outer_frame,
            "outer_fragments": measured.outer_fragments,
            "icmp_frag_needed": measured.icmp_frag_needed,
            "offload_frames": measured.offload_frames,
            "max_offload_frame": measured.max_offload_frame,
            "capture_node": measured.capture_node,
            "tcp_mss_seen": sorted(set(measured.tcp_mss_seen)),
            "tcp_connected": measured.tcp_connected,
        },
        "findings": [f.as_dict() for f in findings],
    }
