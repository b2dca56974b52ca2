"""``q-reports-plugin``: heartbeats (neutron's AgentExtRpcCallback, target 1.4)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from dvr_agent.rpc import protocol
from dvr_agent.rpc.transport import oslo_messaging
from dvr_agent.server.domain import agents, routers
from dvr_agent.server.domain.notifications import Outcome
from dvr_agent.server.service import ControlPlane

LOG = logging.getLogger(__name__)


class ReportsEndpoint:
    target = oslo_messaging.Target(version=protocol.REPORTS_VERSION)

    def __init__(self, plane: ControlPlane):
        self._plane = plane

    def report_state(self, context: dict, **kwargs: Any) -> str:
        """Record the heartbeat; a dvr_snat agent that appears or revives gets waiting routers."""
        state = agents.parse_agent_state(kwargs)
        settings = self._plane.settings

        def work(session: Session) -> Outcome:
            status = agents.report_state(session, state, settings.now(),
                                         settings.agent_down_time)
            notes = []
            snat = state.get("configurations", {}).get("agent_mode") == \
                protocol.AGENT_MODE_DVR_SNAT
            if status != agents.STATE_ALIVE and snat:
                session.flush()
                notes = routers.schedule_unbound(session, settings)
            if status != agents.STATE_ALIVE:
                LOG.info("agent %s on %s: %s", state["agent_type"], state["host"], status)
            return Outcome(status, notes)

        return self._plane.change(work, topology=False)

    def has_alive_neutron_server(self, context: dict, **kwargs: Any) -> bool:
        return True
