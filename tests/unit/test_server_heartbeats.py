"""Heartbeats that change nothing but the time are batched; everything else is written at once."""

from __future__ import annotations

import datetime

import pytest
from sqlalchemy import delete, select

from dvr_agent.rpc import protocol as p
from dvr_agent.server.db import models
from dvr_agent.server.heartbeats import HeartbeatBatcher
from dvr_agent.server.rpc.reports import ReportsEndpoint
from tests.fixtures.server_world import CONTEXT, World, l3_state

DOWN_TIME = 75


@pytest.fixture
def world(tmp_path):
    w = World(f"sqlite:///{tmp_path}/dvr.db", agent_down_time=DOWN_TIME)
    w.batcher = HeartbeatBatcher(w.db.write, interval=1.0, down_time=DOWN_TIME)
    w.reports = ReportsEndpoint(w.plane, w.batcher)  # the flusher is driven by hand here
    yield w
    w.close()


def _report(world: World, host: str = "compute1", **extra) -> str:
    kwargs = l3_state(host, p.AGENT_MODE_DVR)
    kwargs["agent_state"]["agent_state"].update(extra)
    return world.reports.report_state(CONTEXT, **kwargs)


def _stamp(world: World, host: str = "compute1") -> datetime.datetime:
    return world.db.read(lambda s: s.scalar(select(models.Agent.heartbeat_timestamp).where(
        models.Agent.host == host, models.Agent.agent_type == p.L3_AGENT_TYPE)))


def test_a_repeated_heartbeat_is_answered_alive_and_written_with_the_next_batch(world):
    assert _report(world) == "new"
    first = world.clock.now
    world.clock.advance(30)
    assert _report(world) == "alive"
    assert _stamp(world) == first, "written before the batch"
    assert world.batcher.flush() == 1
    assert _stamp(world) == first + datetime.timedelta(seconds=30)
    assert world.batcher.flush() == 0


@pytest.mark.parametrize("change", [
    {"start_flag": True},
    {"configurations": {"agent_mode": p.AGENT_MODE_DVR, "routers": 7}},
    {"availability_zone": "az2"},
])
def test_a_heartbeat_that_changes_more_than_the_time_is_written_at_once(world, change):
    _report(world)
    world.clock.advance(30)
    assert _report(world, **change) == "alive"
    assert _stamp(world) == world.clock.now
    assert world.batcher.flush() == 0


def test_an_agent_silent_for_longer_than_the_down_time_is_revived_by_the_full_path(world):
    _report(world)
    world.clock.advance(DOWN_TIME + 1)
    assert _report(world) == "revived"
    assert _stamp(world) == world.clock.now


def test_a_full_write_after_a_batched_one_is_not_undone_by_the_batch(world):
    _report(world)
    world.clock.advance(10)
    _report(world)  # batched
    world.clock.advance(10)
    _report(world, start_flag=True)  # written now, and the pending one dropped
    assert world.batcher.flush() == 0
    assert _stamp(world) == world.clock.now


def test_an_agent_deleted_meanwhile_is_forgotten_and_its_next_report_registers_it(world):
    _report(world)
    world.clock.advance(10)
    _report(world)
    world.db.write(lambda s: s.execute(delete(models.Agent)))
    world.batcher.flush()
    world.clock.advance(10)
    assert _report(world) == "new"


def test_stop_writes_what_is_pending(world):
    _report(world)
    world.clock.advance(20)
    _report(world)
    world.batcher.start()
    world.batcher.stop()
    assert _stamp(world) == world.clock.now
