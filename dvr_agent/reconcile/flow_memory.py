"""What this process last read or wrote of each key's flows, so that an event need not ask.

Why: every ``ovs-ofctl`` conversation wakes ovs-vswitchd's main loop, and on the userspace
datapath a round of that loop polls every port (~25 ms of its CPU per conversation at 300
routers, measured). A VM port's pass dumped its two keys' flows on three bridges (three
conversations, ~100 ms, while ovs-vswitchd was still adding the port just plugged), before
its tag and its bundle: the largest part of a VM port's latency (benchmarks/README.md,
fix 33). Neutron's agent never reads flows back; we still do, but not on every event:

- a pass that dumps a key's flows, or writes them, remembers what the key then has;
- a later pass of that key takes its flows from here instead of dumping them;
- whatever could have changed flows behind our back makes us forget: a pass or bundle that
  failed (a key forgotten), drift found by the rolling comparison (those keys), a canary
  gone (ovs-vswitchd restarted, a bridge flushed or re-created: everything).

The rolling comparison never reads from here: it dumps, so drift is still found within
``resync_interval``, and a start begins with nothing remembered (the host is read).

Kept as one compact string per key, not as Flow objects: 14,000 flows at 1,000 routers are
~1.9 MB of text against ~6.7 MB of frozen sets of Flows (measured with tracemalloc), and
the agent's memory is a target of its own. Decoding a key's few dozen flows when a pass
asks for them costs microseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from dvr_agent.state import Flow

# separators that none of a flow's fields contains (ovs-ofctl's syntax is printable ASCII)
_FIELD = "\x1f"
_MATCH = "\x1e"
_FLOW = "\n"


def encode(flows: Iterable[Flow]) -> str:
    """``flows`` as one string, in a stable order (the same flows give the same text)."""
    return "".join(sorted(
        f"{f.bridge}{_FIELD}{f.table}{_FIELD}{f.priority}{_FIELD}{f.cookie:x}{_FIELD}"
        f"{_MATCH.join(f.match)}{_FIELD}{f.actions}{_FLOW}" for f in flows))


def decode(text: str) -> set[Flow]:
    """The flows ``encode`` was given."""
    flows = set()
    for line in text.split(_FLOW)[:-1]:  # not splitlines(): it splits at \x1e too
        bridge, table, priority, cookie, match, actions = line.split(_FIELD)
        flows.add(Flow(bridge=bridge, table=int(table), priority=int(priority),
                       match=tuple(match.split(_MATCH)) if match else (),
                       actions=actions, cookie=int(cookie, 16)))
    return flows


class FlowMemory:
    """Each key's flows on the bridges, as this process last read or wrote them.

    Thread-safe: passes remember and recall on the reconcile thread, while the comparison
    and the canary forget from theirs. ``epoch`` guards the race between the two: a pass
    that read before a forget must not write back what it believed (``remember``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text: dict[str, str] = {}
        self._epoch = 0

    def epoch(self) -> int:
        """Changes with every forget: taken before a pass reads, handed to ``remember``."""
        with self._lock:
            return self._epoch

    def recall(self, keys: Iterable[str]) -> dict[str, set[Flow]]:
        """The remembered flows of those of ``keys`` that are remembered."""
        with self._lock:
            texts = {k: self._text[k] for k in keys if k in self._text}
        return {k: decode(t) for k, t in texts.items()}

    def remember(self, flows: Mapping[str, Iterable[Flow]], epoch: int,
                 unknown: Iterable[str] = ()) -> bool:
        """Take ``flows`` as what each key now has, and drop ``unknown`` (keys whose flows
        were written without being read); nothing is taken if anything was forgotten
        since ``epoch`` (then what the pass believed may be wrong: its keys are dropped
        too). A key with no flows is dropped rather than kept (a removed router's key).
        """
        encoded = {k: encode(f) for k, f in flows.items()}
        with self._lock:
            for key in unknown:
                self._text.pop(key, None)
            if epoch != self._epoch:
                for key in encoded:
                    self._text.pop(key, None)
                return False
            for key, text in encoded.items():
                if text:
                    self._text[key] = text
                else:
                    self._text.pop(key, None)
            return True

    def forget(self, keys: Iterable[str] | None = None) -> None:
        """Forget ``keys`` (all if None): their next pass dumps their flows again."""
        with self._lock:
            self._epoch += 1
            if keys is None:
                self._text.clear()
            else:
                for key in keys:
                    self._text.pop(key, None)

    def remembered(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._text)
