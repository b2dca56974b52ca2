"""A sync_routers answer the agent cannot use leaves the routers it asked for in place.

Found by tests/functional/test_agent_server_replies.py on a loaded CI machine: a reply
such as ``[{"id": ""}]`` (one rejected router, with an id that is none of those asked
for) was read as "the server no longer has the router here", and the router, its
namespace and its ports were taken down, then rebuilt by the next good answer. No broker:
the answers are handed in.
"""

from __future__ import annotations

import threading

import pytest

from dvr_agent.agent.core import AgentCore
from dvr_agent.agent.fetcher import Fetcher
from dvr_agent.agent.metrics import Metrics
from dvr_agent.agent.workqueue import WorkQueue
from tests.unit.compiler_world import facts_for, parse_routers, router, router_interface

ROUTERS = [router(f"r{i}", [router_interface(f"r{i}", f"net{i}", f"sub{i}", "10.0.0.0/24",
                                             "10.0.0.1", "fa:16:3e:00:10:01")])
           for i in range(2)]
ASKED = ROUTERS[0]["id"]


class Api:
    """Answers sync_routers with ``reply``, get_router_ids with both routers."""

    def __init__(self, reply) -> None:
        self.reply = reply

    def get_router_ids(self, timeout=None):
        return [r["id"] for r in ROUTERS]

    def sync_routers(self, router_ids):
        return self.reply

    def get_ports_by_subnets(self, subnet_ids):
        return {s: [] for s in subnet_ids}

    def get_devices_details(self, devices):
        return {"devices": [], "failed_devices": devices}


def _routers_after(reply, *, full_sync: bool) -> set[str]:
    facts = facts_for("compute1")
    facts.set_routers(parse_routers(ROUTERS))
    core = AgentCore(facts, WorkQueue())
    fetcher = Fetcher(core, Api(reply), 64, on_vif_details=lambda *_: None, metrics=Metrics())
    thread = threading.Thread(target=fetcher.run, daemon=True)
    thread.start()
    try:
        if full_sync:
            fetcher.request_full_sync()
        else:
            fetcher.request_routers([ASKED])
        assert fetcher.wait_idle(10)
    finally:
        fetcher.stop()
        thread.join(5)
    return core.read(lambda f: set(f.routers))


@pytest.mark.parametrize("reply", [
    [{"id": ""}],
    [{"id": "not-a-router-we-asked-for", "admin_state_up": True}],
    [{"id": None}],
    [{}],
    ["x"],
    {"id": ASKED},
    None,
], ids=["empty id", "stranger's id", "id None", "no id", "not a dict", "not a list", "None"])
@pytest.mark.parametrize("full_sync", [False, True], ids=["routers_updated", "full sync"])
def test_a_rejected_answer_takes_no_router_down(reply, full_sync):
    assert _routers_after(reply, full_sync=full_sync) == {r["id"] for r in ROUTERS}


def test_a_rejected_router_named_by_its_id_stays_and_the_others_follow_the_server():
    # the full sync asked for both; the answer names r0 (broken) and leaves r1 out
    assert _routers_after([{"id": ASKED, "_interfaces": "broken"}], full_sync=True) == {ASKED}


def test_an_empty_answer_still_removes_the_router_asked_for():
    # [] is the server saying "not on this host": that must keep working
    assert _routers_after([], full_sync=False) == {ROUTERS[1]["id"]}
