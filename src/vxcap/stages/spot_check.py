"""Which sample frames scapy re-reads, across all the captures of a run (the spot-check's budget).

The fast decoder files every frame; scapy, the reference dissector, re-reads a few and must file
them the same way. scapy costs about a millisecond a frame: every sample frame of every capture
(three per flow per capture) was 6,600 frames, most of a 256-node run's decode. The same echo
crosses the sender's and the receiver's capture and is filed the same way in both, so past a
run-wide allowance the check keeps what makes it a check:

- while the run has checked fewer than `full` frames, every sample frame (small runs: all of them);
- then, one frame of each flow under each set of encapsulations a capture filed it with that no
  earlier capture checked (the flow's first sample frame in the first capture that holds it so);
- and at least one frame of every capture that holds a judged flow, so each file is checked.

Every judged flow thus has scapy hold the fast decoder to account on at least one of its frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vxcap.core.frames import FlowKey, FlowTally

FULL_FRAMES = 256  # below this many checked frames in the run, nothing is skipped


@dataclass
class SpotCheck:
    full: int = FULL_FRAMES
    frames: int = 0  # sample frames scapy re-read in this run
    offered: int = 0  # sample frames the fast decoder offered (three per flow per capture)
    per_capture: dict[str, int] = field(default_factory=dict)  # capture file name -> frames re-read
    _checked: set[tuple[FlowKey, frozenset]] = field(default_factory=set)

    def choose(
        self, name: str, flows: dict[FlowKey, FlowTally], sample_frames: dict[FlowKey, list[int]]
    ) -> dict[int, FlowKey]:
        """One capture's sample frames to re-read: frame index -> the flow the fast decoder filed it under.
        Call once per capture, in the run's order; it counts what it chose."""
        offered = sum(len(indices) for indices in sample_frames.values())
        self.offered += offered
        if self.frames + offered <= self.full:
            chosen = {index: key for key, indices in sample_frames.items() for index in indices}
        else:
            chosen = {}
            for key, indices in sample_frames.items():
                filed = (key, frozenset(flows[key].encaps) if key in flows else frozenset())
                if indices and filed not in self._checked:
                    chosen[indices[0]] = key
            if not chosen:  # every flow here was checked elsewhere: still one frame of this file
                first = min(((indices[0], key) for key, indices in sample_frames.items() if indices), default=None)
                if first is not None:
                    chosen[first[0]] = first[1]
        for index, key in chosen.items():
            self._checked.add((key, frozenset(flows[key].encaps) if key in flows else frozenset()))
        self.frames += len(chosen)
        self.per_capture[name] = self.per_capture.get(name, 0) + len(chosen)
        return chosen

    def summary(self) -> dict[str, Any]:
        """What report.json says was sampled."""
        return {
            "frames": self.frames,
            "offered": self.offered,
            "flows": len({key for key, _ in self._checked}),
            "policy": f"every sample frame (the first 3 of each flow in each capture) up to {self.full} in the run; "
            "beyond, one frame of each flow and set of encapsulations not yet checked, and at least one per capture",
        }
