"""The periodic duties: the canary, the cheap comparison of the whole host, the watchdog.

- Canary: a drop flow in table 23 of every bridge the agent programs, with a cookie of its
  own, that only this check installs. When one is gone, ovs-vswitchd restarted (flows do
  not survive that; on the userspace datapath neither do internal ports moved into
  namespaces) or someone flushed that bridge: every key is queued for repair, then the
  canaries are planted again. One on br-int alone was not enough: after a restart
  ovs-vswitchd brings bridges back one by one, and a repair that reached br-int after
  br-tun's flows were wiped again left br-tun empty behind a canary that was in place. Because
  no reconcile pass restores it (a pass retried after failing on the restarting bridge
  would otherwise put it back first and hide the restart), a gone canary is never missed.
- Rolling resync: every key is compared with the host once per resync_interval, a slice
  at every tick rather than all at once (a thousand routers read in one burst would delay
  real events). The pass reads what exists and changes only what differs, so drift (a
  namespace, flow, neighbour or rule deleted by hand) is repaired, and logged as drift.
- Watchdog: systemd's WATCHDOG=1 is sent only while the reconcile loop is alive, so a
  hung agent is restarted by systemd.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from dvr_agent.agent.workqueue import PRIORITY_EVENT, PRIORITY_VERIFY
from dvr_agent.compiler.base import canary_flow
from dvr_agent.drivers.errors import DriverError
from dvr_agent.reconcile.actual import Aspect
from dvr_agent.state import CANARY_KEY, COOKIE_MASK_ALL, cookie_for

if TYPE_CHECKING:
    from dvr_agent.agent.daemon import Daemon

LOG = logging.getLogger(__name__)
TICK = 0.5
LOOP_STALL = 30.0  # a pass may take long at scale; longer than this is a hang
STATUS_EVERY = 10.0


class Housekeeping:
    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon
        now = time.monotonic()
        self._next_canary = now
        self._next_status = now
        self._cycle: list[str] = []  # keys still to compare in this resync cycle
        self._cycle_size = 0
        self._cycle_started = now
        self.canary_trips = 0
        self.cycles = 0

    def run(self) -> None:
        d = self._d
        while not d.stopping.wait(TICK):
            now = time.monotonic()
            if now - d.loop_alive < LOOP_STALL:
                d.notifier.watchdog()
            if now >= self._next_canary:
                self._next_canary = now + d.conf.agent.canary_interval
                self.check_canary()
            if d.conf.agent.resync_interval:
                self.resync_slice(now)
            if now >= self._next_status:
                self._next_status = now + STATUS_EVERY
                d.notifier.status(d.status_line())

    def check_canary(self) -> bool:
        """True if every bridge's canary is in place; otherwise everything is queued for
        repair and the canaries planted again."""
        d = self._d
        gone = []
        for bridge in d.bridges():
            try:
                if not d.drivers.openflow.dump(bridge, cookie_for(CANARY_KEY), COOKIE_MASK_ALL):
                    gone.append(bridge)
            except DriverError as exc:
                LOG.warning("canary check on %s failed: %s", bridge, exc)
                return False
        if not gone:
            return True
        self.canary_trips += 1
        LOG.warning("the canary flow on %s is gone (ovs-vswitchd restarted?): "
                    "reprogramming everything", ", ".join(gone))
        d.queue.put_many(d.core.wanted(), Aspect.ALL, PRIORITY_EVENT)
        self.plant_canary()
        return False

    def plant_canary(self) -> None:
        """Install the canaries (after the first convergence, and after each trip)."""
        for bridge in self._d.bridges():
            try:
                self._d.drivers.openflow.apply(bridge, add=[canary_flow(bridge)])
            except DriverError as exc:  # the next check finds it missing and tries again
                LOG.warning("cannot plant the canary flow on %s: %s", bridge, exc)

    def resync_slice(self, now: float) -> int:
        """Queue the share of this cycle's keys that is due by now; returns how many."""
        d = self._d
        interval = d.conf.agent.resync_interval
        if not self._cycle:
            if now - self._cycle_started < interval and self.cycles:
                return 0
            self._cycle = sorted(set(d.core.wanted()) | d.reconciler.stale_keys())
            self._cycle_size, self._cycle_started = len(self._cycle), now
            self.cycles += 1
            try:
                d.reconciler.delete_stale_flows()
            except DriverError as exc:  # ovs-vswitchd away (restarting): the next cycle
                LOG.warning("cannot look for stale flows: %s", exc)
        share = min(1.0, (now - self._cycle_started + TICK) / interval)
        due = math.ceil(self._cycle_size * share) - (self._cycle_size - len(self._cycle))
        batch, self._cycle = self._cycle[:due], self._cycle[max(due, 0):]
        d.queue.put_many(batch, Aspect.ALL, PRIORITY_VERIFY)
        return len(batch)
