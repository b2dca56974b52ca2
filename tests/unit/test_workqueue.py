import threading
import time

from dvr_agent.agent.workqueue import PRIORITY_EVENT, PRIORITY_RESYNC, RESYNC_BATCH, WorkQueue
from dvr_agent.reconcile.actual import Aspect


def test_ten_updates_of_one_key_make_one_entry_with_merged_aspects():
    q = WorkQueue()
    for _ in range(5):
        q.put("router:a", Aspect.NEIGH)
    q.put("router:a", Aspect.FLOWS)
    assert len(q) == 1
    assert q.take(10, timeout=0) == {"router:a": Aspect.NEIGH | Aspect.FLOWS}


def test_events_go_before_periodic_resync():
    q = WorkQueue()
    q.put("router:resync", priority=PRIORITY_RESYNC)
    q.put("router:event", priority=PRIORITY_EVENT)
    assert list(q.take(1, timeout=0)) == ["router:event"]
    assert list(q.take(1, timeout=0)) == ["router:resync"]


def test_an_event_promotes_a_key_already_queued_for_resync():
    q = WorkQueue()
    q.put("router:a", priority=PRIORITY_RESYNC)
    q.put("router:b", priority=PRIORITY_RESYNC)
    q.put("router:b", priority=PRIORITY_EVENT)
    assert list(q.take(1, timeout=0)) == ["router:b"]


def test_failed_keys_come_back_after_a_growing_backoff():
    q = WorkQueue()
    first = q.retry("router:a")
    second = q.retry("router:a")
    assert second == 2 * first
    assert q.take(1, timeout=0) == {}
    assert "router:a" in q.take(1, timeout=first * 4)
    q.succeeded("router:a")
    assert q.retry("router:a") == first


def test_take_waits_for_a_put_from_another_thread():
    q = WorkQueue()
    threading.Timer(0.05, q.put, args=("router:late",)).start()
    started = time.monotonic()
    assert list(q.take(1, timeout=5)) == ["router:late"]
    assert time.monotonic() - started < 5


def test_close_releases_a_waiting_taker():
    q = WorkQueue()
    threading.Timer(0.05, q.close).start()
    assert q.take(1) == {}


class _Waiter:
    def __init__(self) -> None:
        self.done: list[str] = []

    def key_done(self, key: str) -> None:
        self.done.append(key)


def test_waiters_hear_when_their_key_has_been_applied():
    q = WorkQueue()
    waiter = _Waiter()
    q.put_many(["router:a", "router:b"], Aspect.NEIGH, waiters=[waiter])
    taken = q.take(10, timeout=0)
    q.succeeded("router:a")
    assert waiter.done == ["router:a"]
    assert set(taken) == {"router:a", "router:b"}


def test_a_key_that_failed_keeps_its_waiters_until_it_succeeds():
    q = WorkQueue()
    waiter = _Waiter()
    q.put("router:a", waiters=[waiter])
    q.take(1, timeout=0)
    delay = q.retry("router:a")
    assert waiter.done == []
    assert q.take(1, timeout=delay * 4) == {"router:a": Aspect.ALL}
    q.succeeded("router:a")
    assert waiter.done == ["router:a"]


def test_a_periodic_comparison_goes_in_small_passes_apart_from_events():
    q = WorkQueue()
    q.put_many([f"router:{i}" for i in range(100)], priority=PRIORITY_RESYNC)
    q.put("router:event", priority=PRIORITY_EVENT)
    assert list(q.take(512, timeout=0)) == ["router:event"]
    assert len(q.take(512, timeout=0)) == RESYNC_BATCH


def test_a_running_pass_takes_back_what_asks_for_no_more_than_it_does():
    """A VIF's ofport learnt while its pass waited for ovs-vswitchd queues its keys for
    flows; the pass does those flows, so it takes the entries, waiters and all."""
    q = WorkQueue()
    waiter = _Waiter()
    q.put("router:a", Aspect.FLOWS, waiters=[waiter])
    q.put("network:n", Aspect.OVS | Aspect.FLOWS)
    q.put("router:b", Aspect.FLOWS)
    taken = q.take_into_pass(["router:a", "network:n", "router:c"], Aspect.FLOWS)
    assert taken == {"router:a"}
    assert q.keys() == {"network:n", "router:b"}, "more than flows, or not in the pass"
    assert waiter.done == []
    q.succeeded("router:a")
    assert waiter.done == ["router:a"]
