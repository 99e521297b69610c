"""MTU verdicts for one path (one direction between two nodes), as plain values.

Fail: a configuration that breaks big packets, or packets that should have
crossed and did not. Warn: it works, but leaves capacity unused or leans on
PMTUD. Info: what was measured, and what the design costs.

A direction speaks for its sender: the source pod's and node's settings decide
what it sends, so they fail or warn here; the receiver's are only mentioned,
and judged on the reverse direction, so one bad setting fails the directions
leaving it, once each.

Checks run only on values that are known: an MTU vxcap did not read is
reported as unknown, never assumed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from vxcap.core.encap import ENCAPS
from vxcap.core.model import Mode, Wire
from vxcap.core.mtu.arithmetic import (
    INSTALLATION_MTU_FIELD,
    VXLAN_MTU_FIELD,
    calico_mtu_setting,
    headroom,
    max_icmp_payload,
    max_inner_mtu,
    plain_path_cost,
    tcp_mss,
    vxlan_overhead,
    wire_overhead,
)
from vxcap.core.mtu.links import NodeMtus
from vxcap.core.mtu.ladder import FATE_TEXT, LadderSearch, ProbeFate, ProbeResult
from vxcap.core.mtu.wire_sizes import SizeTally

FAIL, WARN, INFO = "fail", "warn", "info"
_RANK = {FAIL: 0, WARN: 1, INFO: 2}

# The pod's veth MTU comes from the CNI config, not from FelixConfiguration.
POD_MTU_SETTING = (
    f"set {INSTALLATION_MTU_FIELD} in the operator Installation "
    "(manifest installs: veth_mtu in the calico-config ConfigMap) and recreate the pod"
)


@dataclass(frozen=True, slots=True)
class MtuFinding:
    level: str  # fail | warn | info
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"level": self.level, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class MtuMeasurement:
    """What the run measured on this path. Frame sizes are from the capture on `capture_node`'s underlay."""

    probes: tuple[ProbeResult, ...] = ()
    max_outer_frame: int | None = None  # largest frame that is not an offload aggregate (SizeTally.max_frame)
    outer_fragments: int = 0
    icmp_frag_needed: int = 0
    offload_frames: int = 0
    max_offload_frame: int | None = None
    capture_node: str | None = None
    link_header: int = 14
    tcp_mss_seen: tuple[int, ...] = ()  # MSS options in the sender's SYN / SYN-ACK segments of this direction
    tcp_connected: bool | None = None  # the short TCP exchange of the run; None: none was made

    @classmethod
    def from_tally(cls, tally: SizeTally, probes: Iterable[ProbeResult] = (), **rest) -> MtuMeasurement:
        """From `size_tally` of the capture; `rest`: icmp_frag_needed, capture_node, link_header."""
        return cls(
            probes=tuple(probes),
            max_outer_frame=tally.max_frame,
            outer_fragments=tally.outer_fragments,
            offload_frames=tally.offload_frames,
            max_offload_frame=tally.max_offload_frame,
            **rest,
        )


def smallest_known(*values: int | None) -> int | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


@dataclass(slots=True)
class _Judge:
    wire: Wire
    src: NodeMtus
    dst: NodeMtus
    measured: MtuMeasurement
    underlay_ip: int
    mode: Mode
    hop_mtu: int | None
    # A dual-stack pod has one MTU for both families: (the other family's wire, that family).
    other_family: tuple[Wire, int] | None = None
    findings: list[MtuFinding] = field(default_factory=list)

    def add(self, level: str, code: str, message: str) -> None:
        self.findings.append(MtuFinding(level, code, message))

    @property
    def nodes(self) -> tuple[NodeMtus, ...]:
        return (self.src,) if self.src.node == self.dst.node else (self.src, self.dst)

    @property
    def label(self) -> str:
        return f"{self.src.node} -> {self.dst.node}"

    @property
    def overhead(self) -> int:
        return wire_overhead(self.wire, self.underlay_ip)  # core/encap.py's, per format and underlay family

    @property
    def tunneled(self) -> bool:
        """Whether the path goes through a tunnel device (vxlan.calico, vxlan-v6.calico, tunl0,
        wireguard.cali: `NodeMtus.vxlan_*` hold that device's name and MTU), whose MTU limits it too."""
        return self.wire is not Wire.PLAIN

    @property
    def underlay(self) -> int | None:
        """The smallest underlay MTU known on the path: both nodes' interfaces and any hop between."""
        return smallest_known(self.src.underlay_mtu, self.dst.underlay_mtu, self.hop_mtu)

    @property
    def pod_limit(self) -> int | None:
        """The largest pod packet the underlay carries on this path."""
        return None if self.underlay is None else self.underlay - self.overhead

    @property
    def expected_max(self) -> int | None:
        """The largest DF packet that should cross: every MTU it meets, both ways."""
        vxlan = (self.src.vxlan_mtu, self.dst.vxlan_mtu) if self.tunneled else ()
        return smallest_known(self.src.pod_mtu, self.dst.pod_mtu, self.pod_limit, *vxlan)

    def limit_text(self) -> str:
        if self.overhead:
            return f"underlay MTU {self.underlay} - {self.overhead} {ENCAPS[self.wire].title} overhead"
        return f"underlay MTU {self.underlay}, plain"

    def run(self) -> list[MtuFinding]:
        self.unknowns()
        self.configuration()
        self.receiver()
        self.probes()
        self.capture()
        self.tcp()
        self.costs()
        return sorted(self.findings, key=lambda f: _RANK[f.level])

    def unknowns(self) -> None:
        for node in self.nodes:
            wanted = [(node.pod_label, node.pod_mtu), (node.underlay_ifname, node.underlay_mtu)]
            if self.tunneled:
                wanted.append((node.vxlan_ifname, node.vxlan_mtu))
            missing = [f"{name} MTU" for name, mtu in wanted if mtu is None]
            if missing:
                self.add(
                    INFO,
                    "mtu-unknown",
                    f"{', '.join(missing)} on {node.node} unknown (no ip link evidence): checks that need it were skipped",
                )

    def configuration(self) -> None:
        limit = self.pod_limit
        if limit is None:
            return
        for node in (self.src,):
            if node.pod_mtu is not None and node.pod_mtu > limit:
                self.add(
                    FAIL,
                    "pod-mtu-too-big",
                    f"{node.pod_label} MTU {node.pod_mtu} on {node.node}, expected <= {limit} ({self.limit_text()}): "
                    f"{POD_MTU_SETTING}",
                )
            if not self.tunneled or node.vxlan_mtu is None:
                continue
            if node.vxlan_mtu > limit:
                self.add(
                    FAIL,
                    "vxlan-mtu-too-big",
                    f"{node.vxlan_ifname} MTU {node.vxlan_mtu} on {node.node}, expected <= {limit} ({self.limit_text()}): "
                    f"set {calico_mtu_setting(limit, self.underlay_ip, self.wire)}",
                )
            elif node.pod_mtu is not None and node.vxlan_mtu < node.pod_mtu <= limit:
                self.add(
                    WARN,
                    "pod-mtu-above-vxlan-mtu",
                    f"{node.pod_label} MTU {node.pod_mtu} on {node.node} is above {node.vxlan_ifname} MTU {node.vxlan_mtu}: "
                    "bigger DF packets are refused by the node with ICMP fragmentation-needed (PMTUD) and "
                    f"black-hole where that ICMP is filtered; set {ENCAPS[self.wire].mtu_fields.get(self.underlay_ip, VXLAN_MTU_FIELD[self.underlay_ip])} and the pod MTU alike",
                )

    def receiver(self) -> None:
        limit = self.pod_limit
        node = self.dst
        if limit is None or node.node == self.src.node:
            return
        too_big = [(node.pod_label, node.pod_mtu)]
        if self.tunneled:
            too_big.append((node.vxlan_ifname, node.vxlan_mtu))
        for name, mtu in too_big:
            if mtu is not None and mtu > limit:
                self.add(
                    INFO,
                    "receiver-mtu-too-big",
                    f"{name} MTU {mtu} on {node.node} is above {limit} too: it limits what {node.node} sends, "
                    f"judged on {node.node} -> {self.src.node}",
                )

    def probes(self) -> None:
        probes = self.measured.probes
        if not probes:
            return
        expected = self.expected_max
        if expected is not None:
            self.lost_probes(probes, expected)
        bounds = LadderSearch().bounds(probes)
        largest = bounds.largest_crossed
        if largest is None:
            self.add(INFO, "largest-df-payload", f"no DF probe crossed {self.label}")
            return
        wording = f"{largest}" if bounds.exact else f"at least {largest}"
        if bounds.smallest_failed_above is None:
            wording += " (no larger size probed)"
        elif not bounds.exact:
            wording += f" ({bounds.smallest_failed_above} did not; sizes between untested)"
        want = ""
        if expected is not None:
            want = f"; expected {max_icmp_payload(expected)} = path limit {expected} - 20 IPv4 - 8 ICMP"
        self.add(
            INFO,
            "largest-df-payload",
            f"largest DF ICMP payload that crossed {self.label}: {wording} ({largest + 28}-byte packet{want})",
        )

    def lost_probes(self, probes: Sequence[ProbeResult], expected: int) -> None:
        replied = {p.size for p in probes if p.reply}
        lost = {}
        black_holed = {}
        crossed_over = set()
        for probe in sorted(probes, key=lambda p: p.size):
            if probe.reply:
                if probe.packet > expected:
                    crossed_over.add(probe.size)
                continue
            if probe.size in replied:
                continue  # another echo of that size crossed: loss, not MTU
            if probe.packet <= expected:
                lost.setdefault(probe.size, probe.fate)
            elif (
                self.src.pod_mtu is not None
                and probe.packet <= self.src.pod_mtu
                and probe.fate in (ProbeFate.LOST_ON_WIRE, ProbeFate.NOT_SENT, ProbeFate.LOST)
            ):
                black_holed.setdefault(probe.size, probe.fate)
        if lost:
            sizes = ", ".join(f"{size} ({FATE_TEXT[fate]})" for size, fate in lost.items())
            self.add(
                FAIL,
                "probe-lost",
                f"DF probes that fit the path (packets <= {expected} bytes) did not cross {self.label}: payload {sizes}",
            )
        if black_holed:
            sizes = ", ".join(f"{size} ({FATE_TEXT[fate]})" for size, fate in black_holed.items())
            self.add(
                FAIL,
                "black-hole",
                f"DF probes bigger than the path allows ({expected} bytes) left the pod on {self.src.node} "
                f"({self.src.pod_label} MTU {self.src.pod_mtu}) and vanished without ICMP fragmentation-needed "
                f"on {self.label}: payload {sizes}",
            )
        unseen = sorted({p.size for p in probes if p.reply and p.sent_on_wire is False})
        if unseen:
            self.add(
                WARN,
                "probe-not-captured",
                f"DF probes with payload {', '.join(map(str, unseen))} got replies on {self.label}, yet the "
                f"capture on {self.src.node} shows no echo request of that size leaving: the capture missed them",
            )
        if crossed_over:
            sizes = ", ".join(str(s) for s in sorted(crossed_over))
            self.add(
                WARN,
                "probe-crossed-above-limit",
                f"DF probes with payload {sizes} crossed {self.label} although the MTUs read allow packets of "
                f"at most {expected} bytes: the MTU evidence does not describe this path",
            )

    def capture(self) -> None:
        m = self.measured
        where = f" on {m.capture_node}" if m.capture_node else ""
        if m.outer_fragments:
            if self.wire is Wire.VXLAN:
                limit = f" (inner packets above {self.pod_limit} bytes)" if self.pod_limit is not None else ""
                self.add(
                    FAIL,
                    "outer-fragments",
                    f"{m.outer_fragments} VXLAN packets of {self.label} were fragmented on the underlay{where}: "
                    f"the overlay sends packets the underlay cannot carry whole{limit}",
                )
            else:
                self.add(
                    WARN, "fragments", f"{m.outer_fragments} pod packets of {self.label} were fragmented on the underlay{where}"
                )
        if m.max_outer_frame is not None and self.underlay is not None:
            packet = m.max_outer_frame - m.link_header
            if packet > self.underlay:
                self.add(
                    FAIL,
                    "oversize-frame",
                    f"largest frame of {self.label}{where} is {m.max_outer_frame} bytes: IP packet {packet} > "
                    f"underlay MTU {self.underlay}, and not segmentation offload",
                )
        if m.icmp_frag_needed:
            self.add(
                WARN,
                "icmp-frag-needed",
                f"{m.icmp_frag_needed} ICMP fragmentation-needed messages on {self.label}{where}: a hop refuses packets "
                "bigger than its MTU and PMTUD is covering for a pod MTU that is too big",
            )
        if m.offload_frames:
            self.add(
                INFO,
                "offload-frames",
                f"{m.offload_frames} frames of {self.label}{where} up to {m.max_offload_frame} bytes exceed the MTU as "
                "segmentation-offload aggregates (GSO/TSO/GRO), cut to size below the capture: not an MTU violation",
            )

    def tcp(self) -> None:
        m = self.measured
        receiver_limit = smallest_known(
            self.dst.pod_mtu,
            self.pod_limit,
            *((self.src.vxlan_mtu, self.dst.vxlan_mtu) if self.tunneled else ()),
        )
        expected = None if receiver_limit is None else tcp_mss(receiver_limit)
        if m.tcp_mss_seen:
            seen = ", ".join(str(v) for v in sorted(set(m.tcp_mss_seen)))
            above = sorted(v for v in set(m.tcp_mss_seen) if expected is not None and v > expected)
            if above:
                self.add(
                    WARN,
                    "tcp-mss-above-path",
                    f"TCP SYNs from {self.src.pod_label} on {self.src.node} advertise MSS {seen}, but {self.label} "
                    f"carries segments of at most {expected} bytes ({receiver_limit} - 40): peers that believe it "
                    "send segments the path refuses, and lean on PMTUD",
                )
            else:
                want = "" if expected is None else f" (path allows {expected} = {receiver_limit} - 20 IPv4 - 20 TCP)"
                self.add(INFO, "tcp-mss", f"TCP MSS advertised by {self.src.pod_label} on {self.label}: {seen}{want}")
        elif m.tcp_connected:
            self.add(INFO, "tcp-mss", f"the TCP exchange on {self.label} connected, but no SYN of it was captured")
        elif m.tcp_connected is False:
            self.add(INFO, "tcp-mss", f"the TCP exchange on {self.label} did not connect: no MSS to read")

    def costs(self) -> None:
        underlay = self.underlay
        if underlay is None:
            return
        # The pod MTU is one per node for every path, so under an overlay mode it must fit VXLAN even here.
        tunnel = Wire.PLAIN if self.mode is Mode.NEVER else Wire.VXLAN
        # A direction in a tunnel of its own (WireGuard, IP-in-IP) is held to that tunnel's overhead.
        allowed_by = self.wire if self.wire in (Wire.VXLAN, Wire.WIREGUARD, Wire.IPIP) else tunnel
        for node in (self.src,):
            if node.pod_mtu is None:
                continue
            room = headroom(node.pod_mtu, underlay, allowed_by, self.underlay_ip)
            if room is None:
                continue
            if self.other_family is not None:
                other_wire, other_ip = self.other_family
                other_allowed = max_inner_mtu(underlay, other_wire, other_ip)
                if node.pod_mtu >= other_allowed:
                    # Calico gives a dual-stack pod the smaller of the two families' MTUs: not a setting to raise.
                    self.add(
                        INFO,
                        "dual-stack-pod-mtu",
                        f"{node.pod_label} MTU {node.pod_mtu} on {node.node} is what its IPv{other_ip} path allows "
                        f"({underlay} - {underlay - other_allowed} {other_wire.value} overhead): one pod MTU serves "
                        f"both families, so {room.unused} bytes of this IPv{self.underlay_ip} path stay unused by design",
                    )
                    continue
            if allowed_by is Wire.VXLAN:
                how, setting = f"{underlay} - {vxlan_overhead(self.underlay_ip)} VXLAN overhead", f"set {room.setting}"
            elif allowed_by in (Wire.WIREGUARD, Wire.IPIP):
                fmt = ENCAPS[allowed_by]
                how = f"{underlay} - {fmt.overhead(self.underlay_ip)} {fmt.title} overhead"
                setting = f"set {fmt.mtu_fields.get(self.underlay_ip, 'the MTU')}: {room.allowed_pod_mtu} in FelixConfiguration"
            else:
                how, setting = "no encapsulation", POD_MTU_SETTING
            self.add(
                WARN,
                "unused-headroom",
                f"{node.pod_label} MTU {node.pod_mtu} on {node.node} leaves {room.unused} bytes of underlay MTU "
                f"{underlay} unused: it allows pod MTU {room.allowed_pod_mtu} ({how}); {setting}",
            )
        if self.wire is Wire.PLAIN:
            pod = smallest_known(self.src.pod_mtu, self.dst.pod_mtu)
            cost = None if pod is None else plain_path_cost(pod, underlay)
            if cost is not None:
                self.add(
                    INFO,
                    "plain-path-cost",
                    f"{self.label} runs plain at pod MTU {pod} though the underlay allows {underlay}: "
                    f"{cost.unused} bytes of every full-size packet unused (TCP MSS {cost.mss} instead of "
                    f"{cost.possible_mss}, {cost.payload_loss:.1%} of payload capacity)",
                )


def judge_mtu(
    wire: Wire,
    src: NodeMtus,
    dst: NodeMtus,
    measured: MtuMeasurement | None = None,
    *,
    underlay_ip: int = 4,
    mode: Mode = Mode.CROSS_SUBNET,
    hop_mtu: int | None = None,
    other_family: tuple[Wire, int] | None = None,
) -> list[MtuFinding]:
    """Findings for the path src -> dst, fails first. `hop_mtu`: a hop between the nodes (the switch), if known.
    `other_family`: on a dual-stack run, the wire and family of the pods' other family (its MTU bounds the pod's)."""
    return _Judge(wire, src, dst, measured or MtuMeasurement(), underlay_ip, mode, hop_mtu, other_family).run()
