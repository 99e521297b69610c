"""Where a person goes after the verdict: Wireshark and tshark command lines for a
flow in its pcapng (the names of those files are vxcap.core.rundir's).

The lines are printed for people to copy, never run by vxcap: argv lists are the
data, `shlex.join` only renders them. Wireshark registers VXLAN on UDP 4789 alone,
so any other port needs a decode-as (`-d udp.port==8472,vxlan`) or the flow hides
inside UDP payload and the display filter on the pods' addresses matches nothing.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vxcap.core.plan import Expectation
from vxcap.core.verdict import wireshark_filter

WIRESHARK_VXLAN_PORT = 4789


def decode_as_args(ports: Iterable[int | None]) -> list[str]:
    """`-d udp.port==P,vxlan` for every distinct port Wireshark would not dissect as VXLAN."""
    args: list[str] = []
    for port in sorted({p for p in ports if p is not None and p != WIRESHARK_VXLAN_PORT}):
        args += ["-d", f"udp.port=={port},vxlan"]
    return args


def decode_as_map(ports: Iterable[int | None]) -> dict[str, str]:
    """The same decode-as rules in the form pyshark's `decode_as` takes."""
    return {f"udp.port=={p}": "vxlan" for p in sorted({p for p in ports if p is not None and p != WIRESHARK_VXLAN_PORT})}


def flow_filter(flow: Expectation | Mapping[str, Any]) -> str:
    """The display filter of a flow: report.json carries it, an Expectation computes it."""
    if isinstance(flow, Expectation):
        return wireshark_filter(flow)
    return str(flow["wireshark_filter"])


def flow_ports(flow: Expectation | Mapping[str, Any], overlay_port: int) -> tuple[int, ...]:
    """The overlay's port, and the port the flow's VXLAN was actually seen on when it
    differs: a person looking into a wrong-port failure needs to see those frames too."""
    if isinstance(flow, Expectation):
        return (overlay_port,)
    seen = flow.get("udp_dport")
    return (overlay_port,) if seen in (None, overlay_port) else (overlay_port, int(seen))


def wireshark_argv(capture: str, display_filter: str, ports: Iterable[int | None] = ()) -> list[str]:
    return ["wireshark", "-r", capture, *decode_as_args(ports), "-Y", display_filter]


def tshark_argv(capture: str, display_filter: str, ports: Iterable[int | None] = ()) -> list[str]:
    return ["tshark", "-r", capture, *decode_as_args(ports), "-Y", display_filter]


def command_line(argv: list[str]) -> str:
    """An argv as one line a POSIX shell reads back as the same argv."""
    return shlex.join(argv)


@dataclass(frozen=True, slots=True)
class FlowCommands:
    display_filter: str
    wireshark: str
    tshark: str


def flow_commands(flow: Expectation | Mapping[str, Any], capture: str, overlay_port: int) -> FlowCommands:
    """What to type to look at one flow in `capture` (a path as the person will use it)."""
    display = flow_filter(flow)
    ports = flow_ports(flow, overlay_port)
    return FlowCommands(
        display_filter=display,
        wireshark=command_line(wireshark_argv(capture, display, ports)),
        tshark=command_line(tshark_argv(capture, display, ports)),
    )


def interface_name(node: str, iface: str) -> str:
    """The pcapng interface name of one node's capture: Wireshark shows it per frame."""
    return f"{node}/{iface}"
