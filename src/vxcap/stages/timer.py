"""How long each stage of a run took, and telling the display which stage is on."""

from __future__ import annotations

import time
from collections.abc import Callable

Progress = Callable[[str, str], None]


class StageTimer:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}

    current: str = ""

    def stage(self, name: str, detail: str = "") -> None:
        self._close()
        self.current = name
        self._current = (name, time.perf_counter())
        self.progress(name, detail)

    def _close(self) -> None:
        current = getattr(self, "_current", None)
        if current is not None:
            name, started = current
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started
            self._current = None

    def done(self) -> dict[str, float]:
        self._close()
        return self.timings
