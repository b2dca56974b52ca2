"""``q-reports-plugin``: heartbeats (neutron's AgentExtRpcCallback, target 1.4)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from dvr_agent.rpc import protocol
from dvr_agent.rpc.transport import oslo_messaging
from dvr_agent.server.domain import agents, floatingips, routers
from dvr_agent.server.domain.notifications import Outcome
from dvr_agent.server.heartbeats import HeartbeatBatcher
from dvr_agent.server.service import ControlPlane

LOG = logging.getLogger(__name__)


class ReportsEndpoint:
    target = oslo_messaging.Target(version=protocol.REPORTS_VERSION)

    def __init__(self, plane: ControlPlane, heartbeats: HeartbeatBatcher | None = None):
        self._plane = plane
        self._heartbeats = heartbeats

    def report_state(self, context: dict, **kwargs: Any) -> str:
        """Record the heartbeat; a dvr_snat agent that appears or revives gets waiting routers."""
        state = agents.parse_agent_state(kwargs)
        settings = self._plane.settings
        now = settings.now()
        if self._heartbeats is not None and self._heartbeats.absorb(state, now):
            return agents.STATE_ALIVE

        mode_changed = False

        def work(session: Session) -> Outcome:
            nonlocal mode_changed
            mode = state.get("configurations", {}).get("agent_mode")
            before = agents.l3_agent(session, state["host"]) \
                if state["agent_type"] == protocol.L3_AGENT_TYPE else None
            was = agents.agent_mode(before) if before is not None else None
            status = agents.report_state(session, state, now, settings.agent_down_time)
            notes = []
            if status != agents.STATE_ALIVE and mode == protocol.AGENT_MODE_DVR_SNAT:
                session.flush()
                notes = routers.schedule_unbound(session, settings)
            if was is not None and was != mode:
                LOG.info("L3 agent on %s changed mode %s -> %s", state["host"], was, mode)
                session.flush()
                mode_changed = True
                notes += floatingips.replan_host(session, settings, state["host"], was)
            if status != agents.STATE_ALIVE:
                LOG.info("agent %s on %s: %s", state["agent_type"], state["host"], status)
            return Outcome(status, notes)

        result = self._plane.change(work, topology=False)
        if mode_changed:  # answers about the host's floating IPs changed: no cached sync
            self._plane.new_generation()
        if self._heartbeats is not None:
            self._heartbeats.remember(state, now)
        return result

    def has_alive_neutron_server(self, context: dict, **kwargs: Any) -> bool:
        return True
