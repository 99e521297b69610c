"""The one meaning of the packet counts shown beside a verdict (terminal and page alike):
echo requests and replies at the sender and the receiver, from report.json's `delivery`;
for a report without it, this direction's frames at each end."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _count(value: Any) -> str:
    return "?" if value is None else str(value)


def frames_at(flow: Mapping[str, Any], node: str) -> int | None:
    """Frames of this direction on `node`'s captures; None when no capture of it counted."""
    counts = [n for point, n in (flow.get("seen_on") or {}).items() if str(point).split("/", 1)[0] == node]
    return sum(counts) if counts else None


def has_delivery(report: Mapping[str, Any]) -> bool:
    return any(isinstance(f.get("delivery"), Mapping) for f in report.get("flows", []))


def header(report: Mapping[str, Any]) -> str:
    return "Echoes" if has_delivery(report) else "Frames"


def cell(flow: Mapping[str, Any]) -> tuple[str, str | None]:
    """(requests line, replies line or None)."""
    delivery = flow.get("delivery")
    if isinstance(delivery, Mapping):
        return (f"{_count(delivery.get('left_sender'))} → {_count(delivery.get('arrived_receiver'))}",
                f"{_count(delivery.get('replies_back'))} ← {_count(delivery.get('answered'))}")
    return f"{_count(frames_at(flow, flow['src_node']))} → {_count(frames_at(flow, flow['dst_node']))}", None


def legend(report: Mapping[str, Any]) -> str:
    if has_delivery(report):
        return ("Echoes: requests leaving the sender's underlay → arriving at the receiver's; "
                "replies back at the sender ← leaving the receiver. Every count is in report.json.")
    return ("Frames: this direction's frames on the sender's underlay → on the receiver's "
            "(echoes, the DF ping ladder and the TCP exchange). Per capture point in report.json.")
