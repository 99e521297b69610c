"""Progress a person can read while a run works: the stage, the time, and what it waits for.

On a terminal, one live line (rich) with a spinner, the stage, its detail, the elapsed
time and, during waits, what is waited for ("pods Ready 2/4", "captures listening
3/3", packets per node); each finished stage stays above it with its duration. Off a
terminal (CI logs, pipes), plain lines: each stage as it starts, its first word the
stage's name, and the waits below it. `--quiet` prints none of it.
"""

from __future__ import annotations

import threading
import time

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from vxcap.cli.console import err_console

STAGE_WIDTH = 11
# Packet counts tick twice a second: a log gets one line of them every few seconds.
PLAIN_PACKETS_EVERY_S = 5.0
_PACKETS = "packets captured:"


class LiveProgress:
    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.console = console or err_console
        self.quiet = quiet
        self.on_terminal = not quiet and self.console.is_terminal
        self._lock = threading.RLock()  # waits are told from other threads (pod watch, packet watch)
        self._started = time.monotonic()
        self._stage: str | None = None
        self._stage_started = self._started
        self._detail = ""
        self._waiting = ""
        self._held_packets: str | None = None  # plain mode: the latest count not yet printed
        self._packets_printed = 0.0
        self._live: Live | None = None
        self._spinner = Spinner("dots", style="stage")

    # -- the pipeline's callbacks
    # Lines are composed under the lock and printed outside it: rich's refresh thread holds the
    # console's lock while it asks __rich__ (which takes ours), so printing under ours could deadlock.

    def stage(self, name: str, detail: str = "") -> None:
        with self._lock:
            lines = self._finish_stage()
            self._stage, self._detail, self._waiting = name, detail, ""
            self._stage_started = time.monotonic()
            if not self.quiet and not self.on_terminal:
                parts = [f"[stage]{name:>{STAGE_WIDTH}}[/]", escape(detail), f"[hint]+{self._elapsed():.1f}s[/]"]
                lines.append(" ".join(p for p in parts if p))
        self._print(lines)

    def waiting(self, what: str) -> None:
        lines = []
        with self._lock:
            self._waiting = what
            if self.quiet or self.on_terminal:
                return
            now = time.monotonic()
            if what.startswith(_PACKETS) and now - self._packets_printed < PLAIN_PACKETS_EVERY_S:
                self._held_packets = what
                return
            lines.append(self._wait_line(what))
        self._print(lines)

    # -- terminal

    def __enter__(self) -> LiveProgress:
        if self.on_terminal:
            self._live = Live(self, console=self.console, transient=True, refresh_per_second=8)
            self._live.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        with self._lock:
            lines = self._finish_stage(failed=exc_type is not None)
            self._stage = None
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._print(lines)

    def __rich__(self) -> Group | Text:
        with self._lock:
            if self._stage is None:
                return Text("")
            line = Table.grid(padding=(0, 1))
            line.add_row(
                self._spinner,
                Text(f"{self._stage:<{STAGE_WIDTH}}", style="stage"),
                Text(self._detail),
                Text(f"{time.monotonic() - self._stage_started:.1f}s", style="hint"),
            )
            if not self._waiting:
                return Group(line)
            return Group(line, Text(f"  {'':<{STAGE_WIDTH}} waiting: {self._waiting}", style="hint"))

    # -- inside

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def _print(self, lines: list[str]) -> None:
        for line in lines:
            self.console.print(line, soft_wrap=True, highlight=False)

    def _wait_line(self, what: str) -> str:
        if what.startswith(_PACKETS):
            self._packets_printed = time.monotonic()
            self._held_packets = None
        return f"{'':>{STAGE_WIDTH}} [hint]· {escape(what)}[/]"

    def _finish_stage(self, failed: bool = False) -> list[str]:
        """The lines that close the current stage (call with the lock held; print them after)."""
        if self._stage is None:
            return []
        if not self.on_terminal:
            if self._held_packets is not None and not self.quiet:
                return [self._wait_line(self._held_packets)]
            return []
        took = time.monotonic() - self._stage_started
        mark = "[fail]✗[/]" if failed else "[pass]✓[/]"  # the error itself follows, on its own line
        parts = [f"{mark} [stage]{self._stage:<{STAGE_WIDTH}}[/]", escape(self._detail)]
        if self._waiting:
            parts.append(f"[hint]({escape(self._waiting)})[/]")
        parts.append(f"[hint]{took:.1f}s[/]")
        return [" ".join(p for p in parts if p)]
