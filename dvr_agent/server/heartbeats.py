"""Heartbeats of agents already known alive, written in batches instead of one by one.

In a large cloud most writes a server does are heartbeats: 500 hosts that each report as an
L3 and an OVS agent every 30 s are 33 write transactions a second that change nothing but a
timestamp, queued behind one writer on SQLite (and round trips on any database). A heartbeat
that would change nothing else — the agent is known, was alive at its last report, reports
the same configuration and no start — is answered "alive" at once and its timestamp kept
here; a flusher writes all of them in one transaction every ``interval`` seconds. Anything
else (a new or revived agent, a restart, a changed configuration) takes the full path, which
may schedule routers.

The timestamps in the database are at most ``interval`` late, against an ``agent_down_time``
of tens of seconds. Heartbeats not yet flushed when the server dies are lost, which costs
nothing: the agent reports again within its interval. With more than one server process,
each keeps its own view; a stale view only sends a heartbeat down the full path.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from dvr_agent.server.db import models

LOG = logging.getLogger(__name__)
Key = tuple[str, str]  # (agent_type, host)


def _fingerprint(state: Mapping[str, Any]) -> str:
    """What a heartbeat stores besides its timestamp: if this is unchanged, only time moved."""
    return json.dumps([state.get("binary"), state.get("topic"),
                       state.get("availability_zone"), state.get("configurations", {})],
                      sort_keys=True)


class HeartbeatBatcher:
    def __init__(self, write: Callable[[Callable[[Session], Any]], Any], interval: float,
                 down_time: int):
        self._write = write
        self._interval = interval
        self._down = datetime.timedelta(seconds=down_time)
        self._lock = threading.Lock()
        self._known: dict[Key, tuple[str, datetime.datetime]] = {}
        self._pending: dict[Key, datetime.datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def absorb(self, state: Mapping[str, Any], now: datetime.datetime) -> bool:
        """Keep this heartbeat for the next batch if it changes nothing but the time."""
        if state.get("start_flag") or state.get("resource_versions") is not None:
            return False
        key = (state["agent_type"], state["host"])
        with self._lock:
            known = self._known.get(key)
            if known is None or known[0] != _fingerprint(state) or now - known[1] > self._down:
                return False
            self._known[key] = (known[0], now)
            self._pending[key] = now
        return True

    def remember(self, state: Mapping[str, Any], now: datetime.datetime) -> None:
        """A heartbeat the full path has written: the next like it may be batched."""
        key = (state["agent_type"], state["host"])
        with self._lock:
            self._known[key] = (_fingerprint(state), now)
            self._pending.pop(key, None)  # the full path wrote a newer timestamp

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="heartbeats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the flusher and write what is pending (a clean stop loses nothing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:  # the next round retries; a flusher that died would stop liveness
                LOG.exception("writing %d heartbeats failed; retrying in %.1f s",
                              len(self._pending), self._interval)

    def flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            missing = self._write(lambda session: _write_batch(session, batch))
        except Exception:
            with self._lock:  # put them back unless a newer heartbeat came meanwhile
                for key, when in batch.items():
                    self._pending.setdefault(key, when)
            raise
        if missing:
            with self._lock:  # rows gone (deleted agents): their next report goes the full way
                for key in missing:
                    self._known.pop(key, None)
        return len(batch)


def _write_batch(session: Session, batch: Mapping[Key, datetime.datetime]) -> list[Key]:
    missing = []
    for (agent_type, host), when in batch.items():
        done = session.execute(
            update(models.Agent)
            .where(models.Agent.agent_type == agent_type, models.Agent.host == host)
            .values(heartbeat_timestamp=when))
        if done.rowcount == 0:
            missing.append((agent_type, host))
    return missing
