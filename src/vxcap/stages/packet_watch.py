"""While the probes run: how many packets each node's capture holds so far, said
whenever it changes, so a person sees traffic arrive instead of a still line."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

TICK_S = 0.5


def packets_line(counts: dict[str, int | None]) -> str:
    """'packets captured: k01-worker 12 · k01-worker3 12' (a node whose capture cannot say: '?')."""
    return "packets captured: " + " · ".join(f"{node} {'?' if n is None else n}" for node, n in counts.items())


class PacketWatch:
    """A daemon thread asking each running capture `packets_so_far()` every TICK_S seconds.

    Captures that cannot count (Docker's: the pcap stays in the container until the
    stop) are left out; with none that can, the thread is never started."""

    def __init__(self, captures: Sequence[tuple[str, Any]], waiting: Callable[[str], None], tick: float = TICK_S) -> None:
        self._captures = [(node, handle) for node, handle in captures if hasattr(handle, "packets_so_far")]
        self._waiting = waiting
        self._tick = tick
        self._stop = threading.Event()
        self._said: str | None = None
        self._thread = threading.Thread(target=self._run, name="vxcap-packet-watch", daemon=True)
        if self._captures:
            self._thread.start()

    def _counts(self) -> dict[str, int | None]:
        counts: dict[str, int | None] = {}
        for node, handle in self._captures:
            try:
                counts[node] = handle.packets_so_far()
            except Exception:  # noqa: BLE001 - a count is a courtesy; the capture's own errors come at its stop
                counts[node] = None
        return counts

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            self._tell()

    def _tell(self) -> None:
        line = packets_line(self._counts())
        if line != self._said:
            self._waiting(line)
            self._said = line

    def stop(self) -> None:
        """Stop watching, and tell the last count (a run quicker than a tick still shows it). Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2 * self._tick)
        if self._captures:
            self._tell()
