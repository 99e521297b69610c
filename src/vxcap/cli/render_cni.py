"""Tables for `vxcap topology` on a cluster whose CNI is not Calico."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text


def cni_topology_tables(data: dict[str, Any]) -> list[Table]:
    nodes = Table(title=escape(f"nodes · {data['summary']} · from {data['source']}"), title_justify="left")
    for column in ("Node", "Underlay", "Pod CIDR", "VTEP MAC"):
        nodes.add_column(column, no_wrap=True)
    for n in data["nodes"]:
        nodes.add_row(n["name"], n["address"], n["pod_cidr"] or "—", n["vtep_mac"] or "—")
    paths = Table(title="expected wire format per direction", title_justify="left")
    for column in ("From", "To", "Expected", "Because"):
        paths.add_column(column, no_wrap=column not in ("Because", "Expected"))
    for p in data["paths"]:
        expected = " or ".join(f["text"] for f in p["formats"])
        reason = p["reason"] + (f" (decided by: {p['decided_by']})" if p["decided_by"] else "")
        style = "" if p["expected"] == ["plain"] else "bold"
        paths.add_row(p["src"], p["dst"], Text(expected, style=style), escape(reason))
    return [nodes, paths]
