"""Delivery, per direction, from the packets: did the echo requests get there, and were they answered?

A wire format that is right on both underlays proves nothing if nothing ever answers. Each
ICMP echo is followed by its (identifier, sequence) from hop to hop: leaving the sender's
underlay, arriving at the receiver's (sent to the receiver's own MAC: a frame flooded past
its port is not delivered), answered (its reply leaving the receiver), and the reply back at
the sender. The reason of a failing direction names the hop where the echoes vanished.

Replies travel as the reverse flow (receiver pod -> sender pod), so a direction needs both
flows' tallies at every capture point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from vxcap.core.frames import FlowTally

ECHO_REQUEST, ECHO_REPLY = 8, 0

EchoId = tuple[int, int]  # (identifier, sequence)


@dataclass(frozen=True, slots=True)
class PointState:
    """What a capture point's file is worth: complete, or why not (kernel drops, damage)."""

    name: str  # node/iface
    kernel_dropped: int | None = None
    damaged: str | None = None  # a damaged or cut record: the frames after it are not in the tally

    @property
    def incomplete(self) -> str | None:
        """Why this capture may miss frames, in words; None when nothing says so."""
        why = []
        if self.kernel_dropped:
            why.append(f"{self.name} dropped {self.kernel_dropped} packet{'s' if self.kernel_dropped != 1 else ''} in the kernel")
        if self.damaged:
            why.append(f"{self.name} is damaged ({self.damaged})")
        return "; ".join(why) or None


@dataclass(frozen=True, slots=True)
class Delivery:
    sent: int | None  # the prober's count; None when no prober ran (captures taken by hand)
    left_sender: int
    arrived_receiver: int
    answered: int
    replies_back: int
    flooded: int = 0  # requests seen at the receiver addressed to another MAC
    reasons: tuple[str, ...] = field(default=())  # each fails the direction
    notes: tuple[str, ...] = field(default=())  # losses short of a failure, said in the report
    not_checked: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict:
        return {
            "sent": self.sent,
            "left_sender": self.left_sender,
            "arrived_receiver": self.arrived_receiver,
            "answered": self.answered,
            "replies_back": self.replies_back,
            "flooded": self.flooded,
            "notes": list(self.notes),
        }


def _ids(tallies: Iterable[FlowTally | None], echo_type: int, mac: str | None) -> tuple[set[EchoId], set[EchoId], bool]:
    """(echoes addressed to `mac` or to no link address, echoes addressed elsewhere, whether any frame had no
    link address) of `echo_type`; with `mac` None every echo counts as addressed."""
    to_us: set[EchoId] = set()
    elsewhere: set[EchoId] = set()
    unaddressed = False
    for tally in tallies:
        if tally is None:
            continue
        for (kind, ident, seq, dst_mac), n in tally.echo_ids.items():
            if kind != echo_type or not n:
                continue
            if dst_mac is None:
                unaddressed = True
            if mac is None or dst_mac is None or dst_mac == mac:
                to_us.add((ident, seq))
            else:
                elsewhere.add((ident, seq))
    return to_us, elsewhere - to_us, unaddressed


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def judge_delivery(
    src_node: str,
    dst_node: str,
    requests: Mapping[str, FlowTally | None],
    replies: Mapping[str, FlowTally | None],
    points: Mapping[str, str],
    *,
    sender_mac: str | None = None,
    receiver_mac: str | None = None,
    sent: int | None = None,
    states: Mapping[str, PointState] | None = None,
) -> Delivery:
    """Follow the direction's echoes hop by hop.

    `requests`/`replies`: per capture point name (`node/iface`), its tally of the direction's flow and of the
    reverse flow; `points`: capture point name -> its node. `*_mac`: the nodes' underlay MACs (from their
    link evidence), None when unknown. `states`: per point, whether its capture is complete.
    """
    sender = [p for p, node in points.items() if node == src_node]
    receiver = [p for p, node in points.items() if node == dst_node]
    states = states or {}
    not_checked: list[str] = []
    left, _, _ = _ids((requests.get(p) for p in sender), ECHO_REQUEST, None)
    arrived, flooded, unaddressed = _ids((requests.get(p) for p in receiver), ECHO_REQUEST, receiver_mac)
    answered_all, _, _ = _ids((replies.get(p) for p in receiver), ECHO_REPLY, None)
    back, _, unaddressed_back = _ids((replies.get(p) for p in sender), ECHO_REPLY, sender_mac)
    if receiver_mac is None:
        not_checked.append(f"outer destination MAC at {dst_node}: its underlay MAC is unknown (no link evidence)")
    elif unaddressed:
        not_checked.append(f"outer destination MAC at {dst_node}: its capture has no Ethernet header")
    if sender_mac is None:
        not_checked.append(f"outer destination MAC of the replies at {src_node}: its underlay MAC is unknown")
    elif unaddressed_back:
        not_checked.append(f"outer destination MAC of the replies at {src_node}: its capture has no Ethernet header")
    answered = answered_all & arrived
    back &= answered
    at_sender = ", ".join(sender) or src_node
    at_receiver = ", ".join(receiver) or dst_node
    reasons: list[str] = []
    notes: list[str] = []
    if sender and receiver:
        if not left:
            reasons.append(f"no echo request seen leaving {at_sender}: delivery not proven")
        elif not arrived:
            flood = f" ({len(flooded)} seen there addressed to another MAC: flooded, not delivered)" if flooded else ""
            reasons.append(f"{len(left)} left {at_sender}, 0 reached {at_receiver}{flood}")
        elif not answered:
            reasons.append(f"{_plural(len(arrived), 'echo request')} reached {at_receiver}, 0 answered")
        else:
            if len(arrived & left) < len(left):
                notes.append(f"{len(left - arrived)} of {len(left)} echo requests that left {at_sender} never reached {at_receiver}")
            if len(answered) < len(arrived):
                notes.append(f"{len(arrived - answered)} of {len(arrived)} echo requests that reached {at_receiver} were not answered")
            if len(back) < len(answered):
                notes.append(f"{len(answered - back)} of {len(answered)} replies that left {at_receiver} never reached {at_sender}")
        if sent is not None and len(left) < sent:
            notes.append(f"the prober sent {sent} echo requests, {len(left)} seen leaving {at_sender}")
        incomplete = [why for p in sender + receiver if (why := states.get(p, PointState(p)).incomplete)]
        if incomplete:
            # What a capture missed cannot be told from what the network lost: only a full account passes.
            accounted = left and left <= arrived and arrived <= answered and answered <= back
            if sent is not None and len(left) < sent:
                accounted = False
            if not accounted:
                reasons = [
                    f"inconclusive: {'; '.join(incomplete)}, and not every echo request is accounted for "
                    f"({len(left)} left, {len(arrived)} arrived, {len(answered)} answered, {len(back)} came back"
                    f"{'' if sent is None else f', {sent} sent'})"
                ]
    return Delivery(
        sent=sent,
        left_sender=len(left),
        arrived_receiver=len(arrived),
        answered=len(answered),
        replies_back=len(back),
        flooded=len(flooded),
        reasons=tuple(reasons),
        notes=tuple(notes),
        not_checked=tuple(not_checked),
    )
