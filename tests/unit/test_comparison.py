"""agent/comparison.py: every key compared once per interval, in cookie slices, and only
the keys that differ (and are not queued by an event already) queued for repair."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from dvr_agent.agent.comparison import TICK, RollingComparison
from dvr_agent.agent.workqueue import PRIORITY_EVENT, PRIORITY_VERIFY, RESYNC_BATCH, WorkQueue
from dvr_agent.drivers.errors import DriverError
from dvr_agent.reconcile.actual import Aspect
from dvr_agent.reconcile.flow_memory import FlowMemory
from dvr_agent.state import Flow, cookie_for, router_key

KEYS = {router_key(f"r{i}") for i in range(100)}


class FakeReconciler:
    def __init__(self, differing=(), broken=False):
        self.differing = set(differing)
        self.broken = broken
        self.compared: list[list[str]] = []
        self.flow_memory = FlowMemory()

    def drifted(self, keys):
        if self.broken:
            raise DriverError("ovs-vswitchd is not answering")
        self.compared.append(list(keys))
        return {k: "+1 addr" for k in keys if k in self.differing}

    def stale_keys(self):
        return set()

    def delete_stale_flows(self):
        return 0


def _flow(key):
    return Flow(bridge="br-int", table=1, priority=2, match=("dl_vlan=3",), actions="drop",
                cookie=cookie_for(key))


def _daemon(reconciler, interval=8):
    return SimpleNamespace(conf=SimpleNamespace(agent=SimpleNamespace(resync_interval=interval)),
                           core=SimpleNamespace(wanted=lambda: frozenset(KEYS)),
                           reconciler=reconciler, queue=WorkQueue(), stopping=threading.Event(),
                           yield_to_passes=lambda until: None)


def test_a_slice_waits_for_the_pass_in_flight():
    """Each slice's reads are ovs-vswitchd rounds an event's pass would queue behind."""
    reconciler = FakeReconciler()
    daemon = _daemon(reconciler)
    between_passes = threading.Event()  # a pass is in flight
    daemon.yield_to_passes = lambda until: between_passes.wait(until - time.monotonic())
    compared_while_passing = []
    reconciler.drifted = lambda keys: compared_while_passing.append(
        not between_passes.is_set()) or {}
    threading.Timer(0.2, between_passes.set).start()
    assert RollingComparison(daemon).compare_due(0.0) > 0
    assert compared_while_passing and not any(compared_while_passing)


def test_every_key_is_compared_once_per_interval_a_share_at_a_time():
    reconciler = FakeReconciler()
    comparison = RollingComparison(_daemon(reconciler))
    first = comparison.compare_due(0.0)
    assert 0 < first < len(KEYS)  # a tick's share, not everything at once
    now = 0.0
    while now + TICK < 8:  # at 8 s the next cycle starts
        now += TICK
        comparison.compare_due(now)
    compared = [k for keys in reconciler.compared for k in keys]
    assert sorted(compared) == sorted(KEYS), "each key once in the cycle"
    assert max(map(len, reconciler.compared)) <= RESYNC_BATCH


def test_only_differing_keys_are_queued_and_not_those_an_event_queued():
    queued_by_event = router_key("r1")
    reconciler = FakeReconciler(differing={router_key("r0"), queued_by_event})
    daemon = _daemon(reconciler)
    daemon.queue.put(queued_by_event, Aspect.NEIGH, PRIORITY_EVENT)
    memory = reconciler.flow_memory
    memory.remember({k: {_flow(k)} for k in KEYS}, memory.epoch())
    RollingComparison(daemon).compare(sorted(KEYS))
    # both repairs (the queued one's too) read the flows from the switch, not from memory
    assert memory.remembered() == set(KEYS) - {router_key("r0"), queued_by_event}
    event = daemon.queue.take(100, timeout=0)  # events first, without repair keys
    assert dict(event) == {queued_by_event: Aspect.NEIGH}, "the event's entry as it was"
    repair = daemon.queue.take(100, timeout=0)
    assert dict(repair) == {router_key("r0"): Aspect.ALL}
    assert repair.priorities[router_key("r0")] == PRIORITY_VERIFY
    assert len(daemon.queue) == 0


def test_a_comparison_that_cannot_read_queues_nothing_and_goes_on():
    daemon = _daemon(FakeReconciler(broken=True))
    assert RollingComparison(daemon).compare(sorted(KEYS)) == set()
    assert len(daemon.queue) == 0
