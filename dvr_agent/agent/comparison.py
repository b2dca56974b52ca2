"""The rolling comparison of the host with the facts: drift is found, and only then fixed.

Every key is compared with the host once per ``resync_interval``, a slice at every tick
rather than all at once (a thousand routers read in one burst would load the host). The
comparison only reads, in a thread of its own beside the reconcile passes: run as a pass,
a slice of 32 keys took 100-500 ms that an event arriving meanwhile waited for (the ARP
event's p99 at 300 routers was 159 ms; benchmarks/README.md, fix 17), and in the
housekeeping thread a slow read would delay the canary. A key that differs (a namespace,
flow, neighbour or rule deleted by hand) is queued; its pass repairs it and logs that as
drift. Slices are cut by cookie (``cookie_slices``) so that the flows of a slice come in
one small dump per bridge.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from dvr_agent.agent.housekeeping import DUTY_YIELD
from dvr_agent.agent.workqueue import PRIORITY_VERIFY, RESYNC_BATCH
from dvr_agent.drivers.errors import DriverError
from dvr_agent.reconcile.actual import Aspect, cookie_slices

if TYPE_CHECKING:
    from dvr_agent.agent.daemon import Daemon

LOG = logging.getLogger(__name__)
TICK = 0.5


class RollingComparison:
    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon
        self._cycle: list[list[str]] = []  # slices still to compare in this cycle
        self._cycle_size = 0
        self._compared = 0  # keys of this cycle compared so far
        self._cycle_started = time.monotonic()
        self.cycles = 0

    def run(self) -> None:
        while not self._d.stopping.wait(TICK):
            self.compare_due(time.monotonic())

    def compare_due(self, now: float) -> int:
        """Compare the share of this cycle's keys that is due by now; returns how many."""
        d = self._d
        interval = d.conf.agent.resync_interval
        if not self._cycle:
            if now - self._cycle_started < interval and self.cycles:
                return 0
            keys = set(d.core.wanted()) | d.reconciler.stale_keys()
            self._cycle = cookie_slices(keys, RESYNC_BATCH)
            self._cycle_size, self._cycle_started = len(keys), now
            self._compared = 0
            self.cycles += 1
            try:
                d.reconciler.delete_stale_flows()
            except DriverError as exc:  # ovs-vswitchd away (restarting): the next cycle
                LOG.warning("cannot look for stale flows: %s", exc)
        due = math.ceil(self._cycle_size * min(1.0, (now - self._cycle_started + TICK) / interval))
        compared = 0
        # the slices of one call yield DUTY_YIELD in all: with passes back to back, a
        # wait a slice would hold the comparison far behind its interval
        until = time.monotonic() + DUTY_YIELD
        while self._cycle and self._compared < due and not d.stopping.is_set():
            d.yield_to_passes(until)
            keys = self._cycle.pop()
            self.compare(keys)
            self._compared += len(keys)
            compared += len(keys)
        return compared

    def compare(self, keys: list[str]) -> set[str]:
        """Queue those of ``keys`` that differ from the facts; returns them."""
        d = self._d
        try:
            drifted = d.reconciler.drifted(keys)
        except DriverError as exc:  # ovs-vswitchd or a namespace away: a pass would fail too
            LOG.warning("cannot compare %d keys with the host: %s", len(keys), exc)
            return set()
        except Exception:  # a read that broke mid-way, as a pass catches it: next cycle
            if not d.stopping.is_set():  # (a stop closes the pool under a comparison)
                LOG.exception("comparing %d keys with the host failed", len(keys))
            return set()
        # the repair must read what is there, not what the passes remember of the flows
        d.reconciler.flow_memory.forget(drifted)
        queued = d.queue.keys()  # changed by an event meanwhile: its pass is coming anyway
        drifted = {k: s for k, s in drifted.items() if k not in queued}
        for key, summary in drifted.items():
            LOG.info("%s differs from the facts (%s): queued for repair", key, summary)
        d.queue.put_many(drifted, Aspect.ALL, PRIORITY_VERIFY)
        return set(drifted)
