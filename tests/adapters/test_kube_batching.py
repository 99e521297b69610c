"""Batches, bounded concurrency and the client-side rate limit (a fake clock: no waiting)."""

from __future__ import annotations

import threading
import time

import pytest

from vxcap.adapters.kube.batching import Limits, RateLimiter, run_batched


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_bucket_allows_a_burst_then_qps_per_second():
    clock = Clock()
    limiter = RateLimiter(qps=10, burst=5, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(25):
        limiter.acquire()
        times.append(clock.now)
    assert times[:5] == [0.0] * 5  # the burst
    assert times[-1] == pytest.approx(2.0)  # the other 20 at 10 per second
    assert all(b - a == pytest.approx(0.1) for a, b in zip(times[5:], times[6:]))


def test_no_qps_means_no_waiting():
    clock = Clock()
    limiter = RateLimiter(qps=None, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        limiter.acquire()
    assert clock.slept == []


def test_calls_run_in_batches_in_order_with_progress_per_batch():
    seen = []
    results = run_batched(lambda i: i * i, list(range(250)), Limits(max_parallel=4, qps=None, batch=100),
                          progress=lambda done, total, n: seen.append((done, total, n)))
    assert results == [i * i for i in range(250)]
    assert seen == [(100, 250, 1), (200, 250, 2), (250, 250, 3)]


def test_at_most_max_parallel_calls_are_in_flight():
    lock, state = threading.Lock(), {"now": 0, "most": 0}

    def call(i):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.005)
        with lock:
            state["now"] -= 1
        return i

    run_batched(call, list(range(60)), Limits(max_parallel=3, qps=None, batch=20))
    assert 1 < state["most"] <= 3


def test_the_first_failure_is_raised_and_later_batches_never_start():
    started = []

    def call(i):
        started.append(i)
        if i == 5:
            raise RuntimeError("no")
        return i

    with pytest.raises(RuntimeError, match="no"):
        run_batched(call, list(range(40)), Limits(max_parallel=2, qps=None, batch=10))
    assert max(started) < 10


@pytest.mark.parametrize("kwargs", [{"max_parallel": 0}, {"batch": 0}])
def test_limits_are_checked(kwargs):
    with pytest.raises(ValueError):
        Limits(**kwargs)
