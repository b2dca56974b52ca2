"""The clockwork of benchmarks/cloud_load.py: jobs due at given times, run on a pool, timed.

A load generator must not slow down when the server does, or it would measure itself: jobs
are started when due, however many are still running, and how late each started is kept.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any


class Recorder:
    """Latencies and failures per method, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency: dict[str, list[float]] = {}
        self.failures: dict[str, list[str]] = {}
        self.max_lag = 0.0

    def timed(self, method: str, call: Callable[[], Any]) -> Any:
        start = time.monotonic()
        try:
            result = call()
        except Exception as exc:  # counted and reported: the harness's output
            with self._lock:
                self.failures.setdefault(method, []).append(f"{type(exc).__name__}: {exc}")
            return None
        with self._lock:
            self.latency.setdefault(method, []).append(time.monotonic() - start)
        return result

    def lag(self, seconds: float) -> None:
        with self._lock:
            self.max_lag = max(self.max_lag, seconds)

    def summary(self) -> dict[str, Any]:
        methods = sorted(set(self.latency) | set(self.failures))
        every = sorted(itertools.chain.from_iterable(self.latency.values()))
        return {"calls": {m: {"count": len(self.latency.get(m, [])),
                              "failed": len(self.failures.get(m, [])),
                              **percentiles(sorted(self.latency.get(m, [])))}
                          for m in methods},
                "answered": len(every), "failed": sum(map(len, self.failures.values())),
                **percentiles(every), "max_schedule_lag_s": round(self.max_lag, 3),
                "failure_samples": [f"{m}: {e}" for m, errs in self.failures.items()
                                    for e in errs[:3]]}


def percentiles(done: list[float]) -> dict[str, float | None]:
    if not done:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}

    def at(q: float) -> float:
        return round(done[min(len(done) - 1, int(q * len(done)))] * 1000, 1)
    return {"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": round(done[-1] * 1000, 1)}


class Schedule:
    """A heap of (due, seq, job) run on a thread pool; lag is how late a job started."""

    def __init__(self, recorder: Recorder, workers: int):
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._running = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
        self._recorder = recorder

    def at(self, due: float, job: Callable[[], None]) -> None:
        with self._lock:
            heapq.heappush(self._heap, (due, next(self._seq), job))

    def run_until(self, end: float) -> float:
        """Run every job due before ``end`` (also those a late job adds), then return the
        time the last one finished: past ``end`` by however far the server fell behind."""
        while True:
            now = time.monotonic()
            job = None
            with self._lock:
                head = self._heap[0][0] if self._heap else end
                if head < end and head <= now:
                    due, _, job = heapq.heappop(self._heap)
                    self._running += 1
                idle = head >= end and self._running == 0
            if job is not None:
                self._pool.submit(self._start, due, job)
            elif idle:
                break
            else:
                time.sleep(min(0.05, max(0.001, head - now)))
        finished = time.monotonic()
        time.sleep(max(0.0, end - finished))
        self._pool.shutdown(wait=True)
        return finished

    def _start(self, due: float, job: Callable[[], None]) -> None:
        try:
            self._recorder.lag(time.monotonic() - due)
            job()
        finally:
            with self._lock:
                self._running -= 1
