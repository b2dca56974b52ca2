"""The dirty keys waiting for a reconcile pass: prioritised, coalesced, retried with backoff.

A key is in the queue at most once. Ten updates of one router before its pass make one
pass (their aspects are merged, the most urgent priority wins), which is what keeps a
burst of notifications cheap. RPC events go before periodic resyncs, so a full resync
of a thousand routers never delays an ARP entry. A key whose pass failed comes back
after an exponential backoff, so a broken router cannot starve the others.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

from dvr_agent.reconcile.actual import Aspect

PRIORITY_EVENT = 0  # an RPC notification or a port event
PRIORITY_RETRY = 1  # a key that failed or was pending
PRIORITY_RESYNC = 2  # a full sync with the server
PRIORITY_VERIFY = 3  # the periodic comparison of the host with the facts (drift)

BACKOFF_FIRST = 0.05
BACKOFF_MAX = 10.0


@dataclass
class _Entry:
    aspect: Aspect
    priority: int
    seq: int
    ready_at: float
    queued_at: float


class Batch(dict):
    """Keys taken for one pass (key -> aspects), with the priority each was queued at."""

    def __init__(self, items=(), priorities: dict[str, int] | None = None) -> None:
        super().__init__(items)
        self.priorities = priorities or {}


class WorkQueue:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._attempts: dict[str, int] = {}
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._closed = False

    def put(self, key: str, aspect: Aspect = Aspect.ALL, priority: int = PRIORITY_EVENT,
            delay: float = 0.0) -> None:
        now = time.monotonic()
        with self._cond:
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = _Entry(aspect, priority, next(self._seq), now + delay, now)
            else:
                entry.aspect |= aspect
                if priority < entry.priority:
                    entry.priority, entry.seq = priority, next(self._seq)
                entry.ready_at = min(entry.ready_at, now + delay)
            self._cond.notify()

    def put_many(self, keys, aspect: Aspect = Aspect.ALL,
                 priority: int = PRIORITY_EVENT) -> None:
        for key in keys:
            self.put(key, aspect, priority)

    def retry(self, key: str, aspect: Aspect = Aspect.ALL) -> float:
        """Queue a failed key again after a backoff that doubles with each failure."""
        attempt = self._attempts.get(key, 0)
        self._attempts[key] = attempt + 1
        delay = min(BACKOFF_FIRST * (2 ** attempt), BACKOFF_MAX)
        self.put(key, aspect, PRIORITY_RETRY, delay)
        return delay

    def succeeded(self, key: str) -> None:
        self._attempts.pop(key, None)

    def take(self, max_keys: int, timeout: float | None = None) -> Batch:
        """Up to ``max_keys`` ready keys, most urgent first; empty on timeout or close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                ready = [(e.priority, e.seq, k) for k, e in self._entries.items()
                         if e.ready_at <= now]
                if ready:
                    ready.sort()
                    taken = [(k, self._entries.pop(k)) for _, _, k in ready[:max_keys]]
                    return Batch(((k, e.aspect) for k, e in taken),
                                 {k: e.priority for k, e in taken})
                wait = None if deadline is None else deadline - now
                nearest = min((e.ready_at for e in self._entries.values()), default=None)
                if nearest is not None:
                    wait = nearest - now if wait is None else min(wait, nearest - now)
                if wait is not None and wait <= 0:
                    if deadline is not None and now >= deadline:
                        return Batch()
                    continue
                self._cond.wait(wait)
            return Batch()

    def oldest_wait(self) -> float:
        """Seconds the oldest queued key has waited (a health signal)."""
        with self._cond:
            now = time.monotonic()
            return max((now - e.queued_at for e in self._entries.values()), default=0.0)

    def keys(self) -> frozenset[str]:
        with self._cond:
            return frozenset(self._entries)

    def __len__(self) -> int:
        with self._cond:
            return len(self._entries)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
