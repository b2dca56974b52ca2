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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dvr_agent.reconcile.actual import Aspect

PRIORITY_EVENT = 0  # an RPC notification or a port event
PRIORITY_RETRY = 1  # a key that failed or was pending
PRIORITY_RESYNC = 2  # a full sync with the server
PRIORITY_VERIFY = 3  # a key the periodic comparison found different from the facts

# Resync and repair keys go in passes this small, and never ride along with an event, so
# an event waits for one short pass at most (a pass over 512 keys took seconds at 1,000
# routers; benchmarks/README.md, profile 5). The periodic comparison reads this many
# keys at a time too.
RESYNC_BATCH = 32

BACKOFF_FIRST = 0.05
BACKOFF_MAX = 10.0


class Waiter(Protocol):
    """Something waiting for keys to be applied (metrics.EventTrace)."""

    def key_done(self, key: str) -> None: ...


@dataclass
class _Entry:
    aspect: Aspect
    priority: int
    seq: int
    ready_at: float
    queued_at: float
    waiters: list[Waiter] = field(default_factory=list)


class Batch(dict):
    """Keys taken for one pass (key -> aspects), with the priority each was queued at."""

    def __init__(self, items=(), priorities: dict[str, int] | None = None) -> None:
        super().__init__(items)
        self.priorities = priorities or {}


class WorkQueue:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._attempts: dict[str, int] = {}
        self._in_pass: dict[str, list[Waiter]] = {}  # waiters of keys taken, not yet done
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._closed = False

    def put(self, key: str, aspect: Aspect = Aspect.ALL, priority: int = PRIORITY_EVENT,
            delay: float = 0.0, waiters: Sequence[Waiter] = ()) -> None:
        now = time.monotonic()
        with self._cond:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(aspect, priority, next(self._seq),
                                                    now + delay, now)
            else:
                entry.aspect |= aspect
                if priority < entry.priority:
                    entry.priority, entry.seq = priority, next(self._seq)
                entry.ready_at = min(entry.ready_at, now + delay)
            entry.waiters.extend(waiters)
            self._cond.notify()

    def put_many(self, keys: Iterable[str], aspect: Aspect = Aspect.ALL,
                 priority: int = PRIORITY_EVENT, waiters: Sequence[Waiter] = ()) -> None:
        for key in keys:
            self.put(key, aspect, priority, waiters=waiters)

    def take_into_pass(self, keys: Iterable[str], within: Aspect) -> frozenset[str]:
        """Take the queued entries of ``keys`` (keys a running pass has) that ask for
        no more than ``within``: that pass does their work, and their waiters hear of it
        with the pass's own (``succeeded``). What they asked for came in while the pass
        waited on ovs-vswitchd (a VIF's ofport): left queued, it cost one more pass."""
        taken = []
        with self._cond:
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and not entry.aspect & ~within:
                    del self._entries[key]
                    self._in_pass.setdefault(key, []).extend(entry.waiters)
                    taken.append(key)
        return frozenset(taken)

    def retry(self, key: str, aspect: Aspect = Aspect.ALL) -> float:
        """Queue a failed key again after a backoff that doubles with each failure (its
        waiters keep waiting)."""
        attempt = self._attempts.get(key, 0)
        self._attempts[key] = attempt + 1
        delay = min(BACKOFF_FIRST * (2 ** attempt), BACKOFF_MAX)
        with self._cond:
            waiters = self._in_pass.pop(key, [])
        self.put(key, aspect, PRIORITY_RETRY, delay, waiters)
        return delay

    def succeeded(self, key: str) -> None:
        """The pass of a taken key is done: its waiters hear of it."""
        self._attempts.pop(key, None)
        with self._cond:
            waiters = self._in_pass.pop(key, [])
        for waiter in waiters:
            waiter.key_done(key)

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
                    if ready[0][0] < PRIORITY_RESYNC:  # events and retries: no resync keys
                        ready = [r for r in ready if r[0] < PRIORITY_RESYNC]
                    else:
                        max_keys = min(max_keys, RESYNC_BATCH)
                    batch = Batch()
                    for _, _, key in ready[:max_keys]:
                        entry = self._entries.pop(key)
                        batch[key] = entry.aspect
                        batch.priorities[key] = entry.priority
                        if entry.waiters:
                            self._in_pass.setdefault(key, []).extend(entry.waiters)
                    return batch
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
