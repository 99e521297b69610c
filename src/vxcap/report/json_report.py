"""report.json, version 1: one flow per direction, the verdict and its reasons."""

from __future__ import annotations

from typing import Any

from vxcap.core.coverage import CoveragePlan
from vxcap.core.model import Topology
from vxcap.core.verdict import FlowVerdict, wireshark_filter

REPORT_VERSION = 1


def flow_dict(verdict: FlowVerdict) -> dict[str, Any]:
    e = verdict.expectation
    return {
        "src_node": e.src_node,
        "dst_node": e.dst_node,
        "src_ip": str(e.src_ip),
        "dst_ip": str(e.dst_ip),
        "expected": e.expected.value,
        "expected_because": e.reason,
        "family": f"IPv{e.family}",
        "observed": verdict.observed.value,
        "vni": verdict.vni,
        "udp_dport": verdict.udp_dport,
        "outer_src": None if verdict.outer_src is None else str(verdict.outer_src),
        "outer_dst": None if verdict.outer_dst is None else str(verdict.outer_dst),
        "inner_dst_mac": verdict.inner_dst_mac,
        "packets": verdict.packets,
        "seen_on": dict(verdict.seen_on),
        "max_frame_len": verdict.max_wire_len,
        "outer_fragments": verdict.outer_fragments,
        "delivery": None if verdict.delivery is None else verdict.delivery.as_dict(),
        "wireguard_data": verdict.wg_data if e.expected.value == "wireguard" else None,
        "verdict": "pass" if verdict.passed else "fail",
        "reasons": list(verdict.reasons),
        "not_checked": list(verdict.not_checked),
        "wireshark_filter": wireshark_filter(e, verdict.observed),
    }


def report_dict(
    verdicts: list[FlowVerdict],
    *,
    run_id: str | None = None,
    errors: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A run with errors (a capture that could not be read, a stage that failed)
    never passes, even when every flow it could judge did."""
    errors = list(errors or [])
    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "verdict": None,  # decided last, by run_verdict, from what the report holds
        "run_id": run_id,
        "summary": {
            "flows": len(verdicts),
            "passed": sum(v.passed for v in verdicts),
            "failed": sum(not v.passed for v in verdicts),
        },
        "errors": errors,
        "flows": [flow_dict(v) for v in verdicts],
    }
    if extra:
        report.update(extra)
    report["verdict"] = run_verdict(report)
    return report


def coverage_dict(plan: CoveragePlan, topology: Topology) -> dict[str, Any]:
    """A coverage plan as report.json, manifest.json and `topology --coverage --json` carry it."""
    count = len(topology.nodes)
    return {
        "kind": "coverage",
        "seed": plan.seed,
        "peers": plan.peers,
        "nodes": count,
        "pairs": len(plan.pairs),
        "directions": plan.directions,
        "all_pairs_directions": count * (count - 1),
        "subnets": [{"subnet": net, "nodes": n} for net, n in plan.subnets],
        "classes": [{"class": cls, "nodes": n} for cls, n in plan.classes],
        "plan": [{"a": p.pair.a, "b": p.pair.b, "why": list(p.reasons)} for p in plan.pairs],
    }


def coverage_summary(plan: dict[str, Any]) -> str:
    return (
        f"coverage (seed {plan['seed']}, {plan['peers']} peer{'s' if plan['peers'] != 1 else ''}): "
        f"{plan['pairs']} pairs, {plan['directions']} directions for {plan['nodes']} nodes "
        f"on {len(plan['subnets'])} subnet{'s' if len(plan['subnets']) != 1 else ''} "
        f"(all pairs: {plan['all_pairs_directions']})"
    )


def run_verdict(report: dict[str, Any]) -> str:
    """The one rule for a run's verdict: every direction passed, nothing went wrong, and a
    cross-check, when asked for, agreed (a verdict is only as good as its decoder)."""
    passed = (
        bool(report["flows"])
        and all(flow["verdict"] == "pass" for flow in report["flows"])
        and not report["errors"]
        and (report.get("cross_check") or {}).get("agreed", True)
    )
    return "pass" if passed else "fail"
