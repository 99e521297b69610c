"""Many API calls without overwhelming the API server: batches, bounded concurrency, a client-side rate limit.

A 1,000-node run creates a thousand test pods and as many capture pods. Sent all at
once they would queue in the API server (and its priority-and-fairness limits would
throttle every other client of it); one at a time they take minutes. So calls go
out in batches, at most `max_parallel` in flight, no faster than `qps` per second on
average (a token bucket, like client-go's), and each finished batch is reported.

Knows no Kubernetes: it runs callables. The clock and the sleep are injectable so
the limit is tested without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

DEFAULT_MAX_PARALLEL = 8
DEFAULT_QPS = 50.0  # what kubectl allows itself since 1.27 (client-go's own default is 5)
DEFAULT_BATCH = 100


class RateLimiter:
    """A token bucket: `burst` calls at once, then `qps` per second. `qps` None: no limit."""

    def __init__(
        self,
        qps: float | None = DEFAULT_QPS,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if qps is not None and qps <= 0:
            raise ValueError("qps must be positive")
        self.qps = qps
        self.burst = max(1, int(burst if burst is not None else (2 * qps if qps else 1)))
        self._clock, self._sleep = clock, sleep
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.qps is None:
            return
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
                self._last = now
                if self._tokens >= 1 - 1e-9:  # float rounding must not leave a sliver to wait for forever
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                wait = (1 - self._tokens) / self.qps
            self._sleep(wait)


@dataclass(frozen=True, slots=True)
class Limits:
    max_parallel: int = DEFAULT_MAX_PARALLEL
    qps: float | None = DEFAULT_QPS
    batch: int = DEFAULT_BATCH

    def __post_init__(self) -> None:
        if self.max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        if self.batch < 1:
            raise ValueError("batch must be at least 1")


def run_batched(
    call: Callable[[Item], Result],
    items: Sequence[Item],
    limits: Limits = Limits(),
    limiter: RateLimiter | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> list[Result]:
    """`call` on every item, in order of results; batch by batch, each at most `max_parallel`
    wide and rate limited. `progress(done, total, batch_number)` after each batch. The first
    exception stops what has not started and is raised (what started is waited for)."""
    if not items:
        return []
    limiter = limiter or RateLimiter(limits.qps)

    def limited(item: Item) -> Result:
        limiter.acquire()
        return call(item)

    results: list[Result] = []
    workers = min(limits.max_parallel, limits.batch, len(items))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vxcap-batch") as pool:
        for number, start in enumerate(range(0, len(items), limits.batch), 1):
            futures = [pool.submit(limited, item) for item in items[start:start + limits.batch]]
            try:
                results += [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
            if progress is not None:
                progress(len(results), len(items), number)
    return results
