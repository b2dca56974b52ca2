"""A lost get_router_ids costs seconds, not rpc_timeout: a request published while the
server's consumer is away (its broker just restarted) is never answered, and everything
the fetcher does waits behind it, VIF details included (a lab run saw a new VM unwired
for the whole minute). No broker: the calls are recorded."""

from __future__ import annotations

import threading

import oslo_messaging

from dvr_agent.agent.core import AgentCore
from dvr_agent.agent.fetcher import PROBE_TIMEOUT, Fetcher
from dvr_agent.agent.metrics import Metrics
from dvr_agent.agent.workqueue import WorkQueue
from tests.unit.compiler_world import facts_for


class LosingApi:
    """Loses the first ``lost`` get_router_ids calls, then answers no routers."""

    def __init__(self, lost: int) -> None:
        self.lost = lost
        self.timeouts: list[float | None] = []
        self.answered = threading.Event()

    def get_router_ids(self, timeout=None):
        self.timeouts.append(timeout)
        if len(self.timeouts) <= self.lost:
            raise oslo_messaging.MessagingTimeout("no reply")
        self.answered.set()
        return []


def _run(api: LosingApi, rpc_timeout: float) -> Fetcher:
    fetcher = Fetcher(AgentCore(facts_for("compute1"), WorkQueue()), api, 64,
                      on_vif_details=lambda *_: None, metrics=Metrics(),
                      rpc_timeout=rpc_timeout)
    thread = threading.Thread(target=fetcher.run, daemon=True)
    thread.start()
    fetcher.request_full_sync()
    try:
        assert api.answered.wait(10), f"never answered: {api.timeouts}"
    finally:
        fetcher.stop()
        thread.join(5)
    return fetcher


def test_the_first_try_is_short_and_each_retry_doubles_it():
    api = LosingApi(lost=2)
    fetcher = _run(api, rpc_timeout=60)
    assert api.timeouts == [PROBE_TIMEOUT, 2 * PROBE_TIMEOUT, 4 * PROBE_TIMEOUT]
    assert fetcher.full_syncs == 1


def test_never_longer_than_rpc_timeout():
    api = LosingApi(lost=1)
    _run(api, rpc_timeout=3)
    assert api.timeouts == [3, 3]
