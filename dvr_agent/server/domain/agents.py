"""Agents and tunnel endpoints: heartbeats (``report_state``), liveness, modes, VXLAN peers."""

from __future__ import annotations

import datetime
import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dvr_agent.rpc import protocol
from dvr_agent.server.db import models
from dvr_agent.server.errors import BadRequest

STATE_NEW, STATE_ALIVE, STATE_REVIVED = "new", "alive", "revived"
_REQUIRED = ("agent_type", "binary", "topic", "host")


def is_alive(agent: models.Agent, now: datetime.datetime, down_time: int) -> bool:
    return now - agent.heartbeat_timestamp <= datetime.timedelta(seconds=down_time)


def parse_agent_state(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The inner agent_state dict of a report_state call, checked; BadRequest names the field."""
    outer = kwargs.get("agent_state")
    state = outer.get("agent_state") if isinstance(outer, Mapping) else None
    if not isinstance(state, Mapping):
        raise BadRequest("report_state needs agent_state={'agent_state': {...}}")
    for key in _REQUIRED:
        if not isinstance(state.get(key), str) or not state[key]:
            raise BadRequest(f"agent_state.{key} must be a non-empty string")
    conf = state.get("configurations", {})
    if not isinstance(conf, Mapping):
        raise BadRequest("agent_state.configurations must be a dict")
    return dict(state)


def report_state(session: Session, state: Mapping[str, Any], now: datetime.datetime,
                 down_time: int) -> str:
    """Record a heartbeat; answer ``new``, ``alive`` or ``revived`` as neutron-server does."""
    agent = session.scalar(select(models.Agent).where(
        models.Agent.agent_type == state["agent_type"], models.Agent.host == state["host"]))
    status = STATE_NEW
    if agent is None:
        agent = models.Agent(agent_type=state["agent_type"], host=state["host"],
                             created_at=now, started_at=now)
        session.add(agent)
    else:
        status = STATE_ALIVE if is_alive(agent, now, down_time) else STATE_REVIVED
    agent.binary = state["binary"]
    agent.topic = state["topic"]
    agent.availability_zone = state.get("availability_zone")
    agent.configurations = json.dumps(state.get("configurations", {}), sort_keys=True)
    if state.get("resource_versions") is not None:
        agent.resource_versions = json.dumps(state["resource_versions"], sort_keys=True)
    if state.get("start_flag"):
        agent.started_at = now
    agent.heartbeat_timestamp = now
    return status


def configurations(agent: models.Agent) -> dict[str, Any]:
    return json.loads(agent.configurations or "{}")


def l3_agents(session: Session) -> list[models.Agent]:
    return list(session.scalars(select(models.Agent).where(
        models.Agent.agent_type == protocol.L3_AGENT_TYPE).order_by(models.Agent.host)))


def l3_agent(session: Session, host: str) -> models.Agent | None:
    return session.scalar(select(models.Agent).where(
        models.Agent.agent_type == protocol.L3_AGENT_TYPE, models.Agent.host == host))


def l3_hosts(session: Session) -> frozenset[str]:
    """Hosts with an L3 agent (alive or not): the only hosts that get l3_agent casts."""
    return frozenset(session.scalars(select(models.Agent.host).where(
        models.Agent.agent_type == protocol.L3_AGENT_TYPE)))


def agent_mode(agent: models.Agent) -> str:
    return configurations(agent).get("agent_mode", protocol.AGENT_MODE_LEGACY)


def live_snat_hosts(session: Session, now: datetime.datetime, down_time: int) -> list[str]:
    """Hosts of live, admin-up L3 agents in dvr_snat mode: the candidates for SNAT."""
    return [a.host for a in l3_agents(session)
            if a.admin_state_up and agent_mode(a) == protocol.AGENT_MODE_DVR_SNAT
            and is_alive(a, now, down_time)]


def tunnel_sync(session: Session, tunnel_ip: str, tunnel_type: str,
                host: str | None) -> tuple[list[dict[str, Any]], bool]:
    """Record ``host``'s endpoint; return every endpoint and whether this one is new or moved.

    A host that changes its IP replaces its old endpoint (Neutron does the same), so peers
    never keep tunnelling to an address nobody owns.
    """
    try:
        tunnel_ip = str(ipaddress.ip_address(tunnel_ip))
    except (ValueError, TypeError):
        raise BadRequest(f"tunnel_ip {tunnel_ip!r} is not an IP address") from None
    if tunnel_type != "vxlan":
        raise BadRequest(f"tunnel_type {tunnel_type!r} is not supported (only vxlan)")
    changed = False
    if host:
        old = session.scalar(select(models.TunnelEndpoint).where(
            models.TunnelEndpoint.host == host))
        if old is not None and old.ip_address != tunnel_ip:
            session.delete(old)
            session.flush()
            changed = True
    endpoint = session.get(models.TunnelEndpoint, tunnel_ip)
    if endpoint is None:
        session.add(models.TunnelEndpoint(ip_address=tunnel_ip, host=host or None,
                                          tunnel_type=tunnel_type))
        changed = True
    elif host and endpoint.host != host:
        endpoint.host = host
        changed = True
    session.flush()
    rows = session.scalars(select(models.TunnelEndpoint).order_by(
        models.TunnelEndpoint.ip_address))
    return ([{"host": r.host, "ip_address": r.ip_address, "udp_port": r.udp_port}
             for r in rows], changed)


def tunnel_ip_of(session: Session, host: str) -> str | None:
    """A host's VXLAN endpoint: from tunnel_sync, else the OVS agent's ``tunneling_ip``."""
    endpoint = session.scalar(select(models.TunnelEndpoint.ip_address).where(
        models.TunnelEndpoint.host == host))
    if endpoint:
        return endpoint
    ovs = session.scalar(select(models.Agent).where(
        models.Agent.agent_type == protocol.OVS_AGENT_TYPE, models.Agent.host == host))
    return configurations(ovs).get("tunneling_ip") if ovs is not None else None
