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

from vxcap.core.encap import ENCAPS, VXLAN, Encap
from vxcap.core.model import Wire
from vxcap.core.plan import Expectation
from vxcap.core.verdict import wireshark_filter

WIRESHARK_VXLAN_PORT = 4789


def _decode_as(ports: Iterable[int | None], encap: Encap) -> list[str]:
    """The ports of a UDP format Wireshark would not dissect as it without being told (none for IP-in-IP)."""
    if encap.wireshark_dissector is None:
        return []
    return [f"udp.port=={p},{encap.wireshark_dissector}"
            for p in sorted({p for p in ports if p is not None and p not in encap.wireshark_ports})]


def decode_as_args(ports: Iterable[int | None], encap: Encap = VXLAN) -> list[str]:
    """`-d udp.port==P,vxlan` (`,wg` for WireGuard) for every distinct port Wireshark would not dissect as it."""
    args: list[str] = []
    for rule in _decode_as(ports, encap):
        args += ["-d", rule]
    return args


def decode_as_map(ports: Iterable[int | None], encap: Encap = VXLAN) -> dict[str, str]:
    """The same decode-as rules in the form pyshark's `decode_as` takes."""
    return dict(rule.split(",", 1) for rule in _decode_as(ports, encap))


def flow_encap(flow: Expectation | Mapping[str, Any]) -> Encap:
    """The format whose decode-as rules a flow's lines need: its expected one when that is a UDP
    format, else VXLAN (a plain path's wrong-format frames are most likely VXLAN)."""
    wire = flow.expected if isinstance(flow, Expectation) else Wire(str(flow.get("expected", "vxlan")))
    if not isinstance(flow, Expectation) and flow.get("observed") == Wire.WIREGUARD.value:
        wire = Wire.WIREGUARD  # seen instead of the expected format: its lines look at WireGuard
    encap = ENCAPS[wire]
    return encap if encap.wireshark_dissector else VXLAN


def flow_filter(flow: Expectation | Mapping[str, Any]) -> str:
    """The display filter of a flow: report.json carries it, an Expectation computes it."""
    if isinstance(flow, Expectation):
        return wireshark_filter(flow)
    return str(flow["wireshark_filter"])


def flow_ports(flow: Expectation | Mapping[str, Any], overlay_port: int) -> tuple[int, ...]:
    """The overlay's port, and the port the flow's VXLAN was actually seen on when it
    differs: a person looking into a wrong-port failure needs to see those frames too.
    A WireGuard flow's port is its expectation's (the listening port), not VXLAN's."""
    if isinstance(flow, Expectation):
        return (flow.port,) if flow.expected is Wire.WIREGUARD else (overlay_port,)
    seen = flow.get("udp_dport")
    if Wire.WIREGUARD.value in (flow.get("expected"), flow.get("observed")):
        # report.json holds no listening port but the one the data messages were seen on; the overlay's
        # port is VXLAN's, and decoding it as WireGuard (`-d udp.port==4789,wg`) would mislead
        return () if seen is None else (int(seen),)
    return (overlay_port,) if seen in (None, overlay_port) else (overlay_port, int(seen))


def wireshark_argv(capture: str, display_filter: str, ports: Iterable[int | None] = (), encap: Encap = VXLAN) -> list[str]:
    return ["wireshark", "-r", capture, *decode_as_args(ports, encap), "-Y", display_filter]


def tshark_argv(capture: str, display_filter: str, ports: Iterable[int | None] = (), encap: Encap = VXLAN) -> list[str]:
    return ["tshark", "-r", capture, *decode_as_args(ports, encap), "-Y", display_filter]


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
    encap = flow_encap(flow)
    return FlowCommands(
        display_filter=display,
        wireshark=command_line(wireshark_argv(capture, display, ports, encap)),
        tshark=command_line(tshark_argv(capture, display, ports, encap)),
    )


def interface_name(node: str, iface: str) -> str:
    """The pcapng interface name of one node's capture: Wireshark shows it per frame."""
    return f"{node}/{iface}"
