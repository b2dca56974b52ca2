"""The periodic duties: the canary, the watchdog, the status line.

- Canary: a drop flow in table 23 of every bridge the agent programs, with a cookie of its
  own, that only this check installs. When one is gone, ovs-vswitchd restarted (flows do
  not survive that; on the userspace datapath neither do internal ports moved into
  namespaces) or someone flushed that bridge: every key is queued for repair, then the
  canaries are planted again. One on br-int alone was not enough: after a restart
  ovs-vswitchd brings bridges back one by one, and a repair that reached br-int after
  br-tun's flows were wiped again left br-tun empty behind a canary that was in place. Because
  no reconcile pass restores it (a pass retried after failing on the restarting bridge
  would otherwise put it back first and hide the restart), a gone canary is never missed.
- The rolling comparison of every key with the host has a thread of its own
  (comparison.py): a slow read there must not delay the canary.
- Watchdog: systemd's WATCHDOG=1 is sent only while the reconcile loop is alive, so a
  hung agent is restarted by systemd.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from dvr_agent.agent.workqueue import PRIORITY_EVENT
from dvr_agent.compiler.base import canary_flow
from dvr_agent.drivers.errors import DriverError
from dvr_agent.reconcile.actual import Aspect
from dvr_agent.state import CANARY_KEY, COOKIE_MASK_ALL, cookie_for

if TYPE_CHECKING:
    from dvr_agent.agent.daemon import Daemon

LOG = logging.getLogger(__name__)
# the duties' reads of the switch (a canary check, a tick's comparison slices) wait at
# most this long in all for passes in flight: each read is a round of ovs-vswitchd's
# main loop that an event's pass would queue behind (a VM port's p99 at 300 routers,
# fix 41)
DUTY_YIELD = 0.5
TICK = 0.5
LOOP_STALL = 30.0  # a pass may take long at scale; longer than this is a hang
STATUS_EVERY = 10.0


class Housekeeping:
    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon
        now = time.monotonic()
        self._next_canary = now
        self._next_status = now
        self.canary_trips = 0

    def run(self) -> None:
        d = self._d
        while not d.stopping.wait(TICK):
            now = time.monotonic()
            if now - d.loop_alive < LOOP_STALL:
                d.notifier.watchdog()
            if now >= self._next_canary:
                self._next_canary = now + d.conf.agent.canary_interval
                self.check_canary()
            if now >= self._next_status:
                self._next_status = now + STATUS_EVERY
                d.notifier.status(d.status_line())

    def check_canary(self) -> bool:
        """True if every bridge's canary is in place; otherwise everything is queued for
        repair and the canaries planted again."""
        d = self._d
        gone = []
        # the whole check yields at most DUTY_YIELD: a restarted ovs-vswitchd must still
        # be found within the canary interval and that, whatever passes run meanwhile
        until = time.monotonic() + DUTY_YIELD
        for bridge in d.bridges():
            d.yield_to_passes(until)
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
        d.reconciler.flow_memory.forget()  # what the passes remember of flows is gone too
        d.queue.put_many(d.core.wanted(), Aspect.ALL, PRIORITY_EVENT)
        self.plant_canary()
        return False

    def plant_canary(self) -> None:
        """Install the canaries (after the first convergence, and after each trip)."""
        bridges = self._d.bridges()
        # side by side: one ovs-ofctl process a bridge (~50 ms each at 300 routers), and
        # the first planting is the last thing before READY
        with ThreadPoolExecutor(len(bridges), thread_name_prefix="canary") as pool:
            planted = {bridge: pool.submit(self._d.drivers.openflow.apply, bridge,
                                           add=[canary_flow(bridge)]) for bridge in bridges}
        for bridge, done in planted.items():
            try:
                done.result()
            except DriverError as exc:  # the next check finds it missing and tries again
                LOG.warning("cannot plant the canary flow on %s: %s", bridge, exc)
