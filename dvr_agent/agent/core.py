"""The facts under one lock, and the work their changes make.

Every thread that learns something (RPC notifications, server replies, OVSDB port
events) changes the facts through ``change()``: the mutation returns the state keys it
touched, and those keys go to the work queue. The reconcile thread compiles keys
through ``compile()``. The facts object itself is not thread-safe; this is the one place
that serialises access to it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from dvr_agent.agent.metrics import EventTrace
from dvr_agent.agent.workqueue import PRIORITY_EVENT, WorkQueue
from dvr_agent.compiler import compile_key, wanted_keys
from dvr_agent.facts import Facts
from dvr_agent.reconcile.actual import Aspect
from dvr_agent.state import KeyState

T = TypeVar("T")


class AgentCore:
    def __init__(self, facts: Facts, queue: WorkQueue) -> None:
        self._facts = facts
        self._lock = threading.RLock()
        self.queue = queue

    def change(self, mutate: Callable[[Facts], Iterable[str]], aspect: Aspect = Aspect.ALL,
               priority: int = PRIORITY_EVENT,
               traces: Sequence[EventTrace] = ()) -> frozenset[str]:
        """Apply ``mutate`` to the facts and queue the keys it touched; ``traces`` (the
        events this change is made for) wait for those keys."""
        with self._lock:
            keys = frozenset(mutate(self._facts))
        for trace in traces:
            trace.touch(keys)
        if keys:
            self.queue.put_many(keys, aspect, priority, traces)
        return keys

    def change_quietly(self, mutate: Callable[[Facts], Iterable[str]]) -> frozenset[str]:
        """Apply ``mutate`` and return the keys it touched without queueing them (the
        caller, the reconciler in the middle of a pass, takes care of them)."""
        with self._lock:
            return frozenset(mutate(self._facts))

    def read(self, query: Callable[[Facts], T]) -> T:
        """A consistent read of the facts (keep queries short: the lock is shared)."""
        with self._lock:
            return query(self._facts)

    def compile(self, keys: Iterable[str]) -> dict[str, KeyState]:
        with self._lock:
            return {key: compile_key(self._facts, key) for key in keys}

    def wanted(self) -> frozenset[str]:
        with self._lock:
            return wanted_keys(self._facts)
