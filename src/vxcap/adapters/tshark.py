"""A second opinion: the run's captures dissected by tshark (through pyshark) and
compared, flow by flow, with what vxcap's own decoder put in report.json.

tshark is told what a person's Wireshark would be told: VXLAN on the manifest's
port (`-d udp.port==P,vxlan` when P is not 4789, the only port it registers).
Where the two decoders disagree the line names the flow, the capture, and both
values; a VXLAN port the manifest does not name shows up here as frames tshark
left undissected.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from vxcap.core.errors import VxcapError
from vxcap.core.manifest import Manifest
from vxcap.core.wireshark import WIRESHARK_VXLAN_PORT, decode_as_map, interface_name

# Only these protocols' fields are rendered: pdml of whole packets is several times slower.
_PROTOCOLS = "eth ip udp vxlan"
# vxcap judges each frame as captured; tshark's reassembly would move a fragmented
# packet's VXLAN onto its last fragment.
_PREFS = {"ip.defragment": "FALSE"}


class TsharkError(VxcapError):
    """tshark is missing, or could not read a capture at all (one line)."""


@dataclass
class _Tally:
    """What tshark saw of one flow on one capture: the same figures as report.json."""

    packets: int = 0
    plain: int = 0
    vxlan: int = 0
    ipip: int = 0
    vnis: Counter = field(default_factory=Counter)
    dports: Counter = field(default_factory=Counter)
    outer_pairs: Counter = field(default_factory=Counter)
    inner_dst_macs: Counter = field(default_factory=Counter)

    def merge(self, other: _Tally) -> None:
        self.packets += other.packets
        self.plain += other.plain
        self.vxlan += other.vxlan
        self.ipip += other.ipip
        for mine, theirs in (
            (self.vnis, other.vnis),
            (self.dports, other.dports),
            (self.outer_pairs, other.outer_pairs),
            (self.inner_dst_macs, other.inner_dst_macs),
        ):
            mine.update(theirs)

    @property
    def observed(self) -> str:
        if sum(bool(n) for n in (self.plain, self.vxlan, self.ipip)) > 1:
            return "mixed"
        if self.vxlan:
            return "vxlan"
        if self.ipip:
            return "ipip"
        return "plain" if self.plain else "none"


def find_tshark(tshark_path: str | os.PathLike | None = None) -> str:
    """The tshark to run: the one given, else the one on PATH. Missing is a one-line error."""
    wanted = os.fspath(tshark_path) if tshark_path is not None else "tshark"
    found = shutil.which(wanted)
    if found is None:
        where = f"at {wanted}" if tshark_path is not None else "on PATH"
        raise TsharkError(
            f"tshark not found {where}: install it (Debian/Ubuntu: apt-get install tshark) to cross-check with Wireshark's dissectors"
        )
    return found


def _frame_facts(packet) -> tuple[str, IPv4Address, IPv4Address, dict[str, Any]] | None:
    """(encap, innermost src, innermost dst, VXLAN details) of one tshark-dissected frame.

    The flow's header is the first IPv4 after the VXLAN layer, as in vxcap's decoder:
    whatever the pod itself tunnels inside it is not the overlay's business.
    """
    layers = packet.layers
    names = [layer.layer_name for layer in layers]
    if "ip" not in names:
        return None
    first_ip = names.index("ip")
    if "vxlan" in names:
        at = names.index("vxlan")
        inner_ips = [i for i in range(at + 1, len(names)) if names[i] == "ip"]
        if inner_ips:
            inner = layers[inner_ips[0]]
            outer = layers[first_ip]
            inner_eth = next((layers[i] for i in range(at + 1, inner_ips[0]) if names[i] == "eth"), None)
            udp = next((layers[i] for i in range(first_ip, at) if names[i] == "udp"), None)
            details = {
                "vni": int(layers[at].vni),
                "dport": int(udp.dstport) if udp is not None else None,
                "outer": (IPv4Address(outer.src), IPv4Address(outer.dst)),
                "inner_dst_mac": str(inner_eth.dst).lower() if inner_eth is not None else None,
            }
            return "vxlan", IPv4Address(inner.src), IPv4Address(inner.dst), details
    ip = layers[first_ip]
    # IP-in-IP (protocol 4): Wireshark dissects the inner IPv4 as a second ip layer right after the outer.
    if int(ip.proto) == 4 and first_ip + 1 < len(names) and names[first_ip + 1] == "ip":
        inner = layers[first_ip + 1]
        return "ipip", IPv4Address(inner.src), IPv4Address(inner.dst), {"outer": (IPv4Address(ip.src), IPv4Address(ip.dst))}
    return "plain", IPv4Address(ip.src), IPv4Address(ip.dst), {}


def _display_filter(addresses: set[IPv4Address]) -> str:
    # Dissected VXLAN puts the pods' addresses in ip.addr too: the filter keeps both kinds.
    return " || ".join(f"ip.addr=={a}" for a in sorted(addresses))


def tshark_tallies(
    capture: Path,
    keys: set[tuple[IPv4Address, IPv4Address]],
    port: int,
    tshark: str,
) -> dict[tuple[IPv4Address, IPv4Address], _Tally]:
    """Per-flow tallies of one capture as tshark's dissectors see it."""
    import pyshark  # heavy, and only the cross-check needs it

    tallies: dict[tuple[IPv4Address, IPv4Address], _Tally] = {key: _Tally() for key in keys}
    if not keys:
        return tallies
    addresses = {a for key in keys for a in key}
    cap = None
    restore = _keep_signal_state()
    try:
        cap = pyshark.FileCapture(
            str(capture),
            keep_packets=False,
            display_filter=_display_filter(addresses),
            decode_as=decode_as_map([port]) or None,
            override_prefs=_PREFS,
            tshark_path=tshark,
            custom_parameters=["-j", _PROTOCOLS],
        )
        for packet in cap:
            facts = _frame_facts(packet)
            if facts is None:
                continue
            encap, src, dst, details = facts
            tally = tallies.get((src, dst))
            if tally is None:
                continue
            tally.packets += 1
            if encap == "vxlan":
                tally.vxlan += 1
                tally.vnis[details["vni"]] += 1
                tally.dports[details["dport"]] += 1
                tally.outer_pairs[details["outer"]] += 1
                if details["inner_dst_mac"] is not None:
                    tally.inner_dst_macs[details["inner_dst_mac"]] += 1
            elif encap == "ipip":
                tally.ipip += 1
                tally.outer_pairs[details["outer"]] += 1
            else:
                tally.plain += 1
    except Exception as err:  # pyshark raises its own (TSharkCrashException), asyncio's and OSError
        raise TsharkError(f"{capture.name}: tshark could not read it: {_one_line(err)}") from None
    finally:
        if cap is not None:
            try:
                cap.close()
            except Exception:  # noqa: BLE001 - tshark already exited (that is the error above)
                # pyshark keeps an exited process listed after a failed close and closes it
                # again from __del__, inside whichever event loop runs then.
                cap._running_processes.clear()
        restore()
    return tallies


def _keep_signal_state():
    """pyshark installs asyncio's SafeChildWatcher: a SIGCHLD handler writing to its
    closed loop's wake-up pipe. Left in place, every later child process of ours
    (ping, tcpdump) would raise into that pipe; put the process back as it was."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    handler = signal.getsignal(signal.SIGCHLD)
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)

    def restore() -> None:
        signal.signal(signal.SIGCHLD, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(wakeup)

    return restore


def _one_line(err: Exception) -> str:
    text = " ".join(str(err).split())
    # pyshark wraps tshark's own message ("Last error line: tshark: The file ... isn't a
    # capture file ...") in advice about pyshark's debug mode: keep only tshark's words.
    if "Last error line:" in text:
        text = text.split("Last error line:", 1)[1].split(" Try rerunning", 1)[0].strip()
        text = text.removeprefix("tshark:").strip()
    return text or type(err).__name__


def _top_values(counter: Counter) -> set:
    if not counter:
        return set()
    most = max(counter.values())
    return {value for value, n in counter.items() if n == most}


def _agrees(counter: Counter, reported: Any) -> bool:
    """vxcap reports the most frequent value: tshark agrees when that value is (one of) its own."""
    top = _top_values(counter)
    return (not top and reported is None) or reported in top


def _show(counter: Counter) -> str:
    if not counter:
        return "none"
    return ", ".join(
        f"{v[0]} -> {v[1]}" if isinstance(v, tuple) else str(v) for v, _ in counter.most_common()
    )


def _compare_flow(flow: dict[str, Any], per_point: dict[str, _Tally], port: int) -> list[str]:
    name = f"{flow['src_node']} -> {flow['dst_node']} ({flow['src_ip']} -> {flow['dst_ip']})"
    lines = []
    seen_on = flow.get("seen_on", {})
    for point, tally in per_point.items():
        ours = seen_on.get(point, 0)
        if tally.packets != ours:
            lines.append(f"{name} on {point}: tshark saw {tally.packets} packets, vxcap {ours}")
    total = _Tally()
    for tally in per_point.values():
        total.merge(tally)
    if total.observed != flow["observed"]:
        lines.append(f"{name}: tshark sees it as {total.observed}, vxcap as {flow['observed']}")
    if total.ipip and not total.vxlan:
        reported = None if flow.get("outer_src") is None else (IPv4Address(flow["outer_src"]), IPv4Address(flow["outer_dst"]))
        if not _agrees(total.outer_pairs, reported):
            lines.append(f"{name}: tshark outer {_show(total.outer_pairs)}, vxcap {flow.get('outer_src')} -> {flow.get('outer_dst')}")
    if total.vxlan:
        if not _agrees(total.vnis, flow.get("vni")):
            lines.append(f"{name}: tshark VNI {_show(total.vnis)}, vxcap {flow.get('vni')}")
        if not _agrees(total.dports, flow.get("udp_dport")):
            lines.append(f"{name}: tshark UDP port {_show(total.dports)}, vxcap {flow.get('udp_dport')}")
        reported_pair = (
            None
            if flow.get("outer_src") is None
            else (IPv4Address(flow["outer_src"]), IPv4Address(flow["outer_dst"]))
        )
        if not _agrees(total.outer_pairs, reported_pair):
            lines.append(
                f"{name}: tshark outer {_show(total.outer_pairs)}, vxcap {flow.get('outer_src')} -> {flow.get('outer_dst')}"
            )
        if total.inner_dst_macs and not _agrees(total.inner_dst_macs, flow.get("inner_dst_mac")):
            lines.append(
                f"{name}: tshark inner destination MAC {_show(total.inner_dst_macs)}, vxcap {flow.get('inner_dst_mac')}"
            )
    seen_port = flow.get("udp_dport")
    if lines and seen_port is not None and seen_port != port and seen_port != WIRESHARK_VXLAN_PORT:
        lines.append(
            f"{name}: tshark was told VXLAN is on UDP {port} (manifest overlay.port); vxcap found it on UDP {seen_port}"
        )
    return lines


def cross_check(
    run_dir: Path,
    manifest: Manifest,
    report: dict[str, Any],
    *,
    tshark_path: str | os.PathLike | None = None,
) -> list[str]:
    """One line per disagreement between tshark and report.json; empty when they agree.

    Compared per flow: packets per capture point, plain/VXLAN/IP-in-IP, VNI, UDP port, outer
    addresses and inner destination MAC (the inner addresses are the flow itself).
    Raises TsharkError when tshark is missing.
    """
    tshark = find_tshark(tshark_path)
    run_dir = Path(run_dir)
    port = manifest.topology.overlay.port
    flows = report.get("flows", [])
    keys = {(IPv4Address(f["src_ip"]), IPv4Address(f["dst_ip"])) for f in flows}

    lines: list[str] = []
    per_capture: dict[str, dict[tuple[IPv4Address, IPv4Address], _Tally]] = {}
    for cap in manifest.captures:
        point = interface_name(cap.node, cap.iface)
        try:
            tallies = tshark_tallies(run_dir / cap.file, keys, port, tshark)
        except TsharkError as err:
            # A capture vxcap could not read either is already in the report's errors.
            if not any(str(e).startswith(f"{cap.file}: ") for e in report.get("errors", [])):
                lines.append(str(err))
            continue
        merged = per_capture.setdefault(point, {key: _Tally() for key in keys})
        for key, tally in tallies.items():
            merged[key].merge(tally)

    for flow in flows:
        key = (IPv4Address(flow["src_ip"]), IPv4Address(flow["dst_ip"]))
        lines += _compare_flow(flow, {point: tallies[key] for point, tallies in per_capture.items()}, port)
    return lines
