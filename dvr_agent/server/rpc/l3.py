"""``q-l3-plugin``: what an L3 agent asks (neutron's L3RpcCallback, target 1.13)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from dvr_agent.rpc import protocol
from dvr_agent.rpc.transport import oslo_messaging
from dvr_agent.server import payloads
from dvr_agent.server.db import models
from dvr_agent.server.domain import agents, devices, floatingips, scheduler
from dvr_agent.server.domain.notifications import Outcome
from dvr_agent.server.errors import BadRequest
from dvr_agent.server.service import ControlPlane

LOG = logging.getLogger(__name__)
# What neutron-server 29 answered (captures); agents only test for membership.
SERVICE_PLUGINS = ["CORE", "L3_ROUTER_NAT", "auto-allocated-topology", "TAG", "timestamp",
                   "network-ip-availability", "FLAVORS", "revision_plugin"]


def _require(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} must be a non-empty string")
    return value


class SyncCache:
    """``sync_routers`` answers per (host, router_ids), valid for one ControlPlane generation.

    Agents ask far more often (every resync, every routers_updated) than the topology
    changes, and building a router payload is most of the server's CPU under load. The
    generation is read before the database, so an answer built from an older snapshot is
    filed under the older generation and never served once a change has committed.
    Bounded: when full it simply starts over.
    """

    def __init__(self, size: int = 8192):
        self._size = size
        self._entries: dict[tuple, tuple[int, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple, generation: int) -> list[dict[str, Any]] | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[0] != generation:
            return None
        return entry[1]  # shared, read-only: oslo.messaging only serialises it

    def put(self, key: tuple, generation: int, routers: list[dict[str, Any]]) -> None:
        with self._lock:
            if len(self._entries) >= self._size:
                self._entries.clear()
            self._entries[key] = (generation, routers)


def ports_on_subnets(session: Session, subnet_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """``get_ports_by_subnet``'s answer for each of ``subnet_ids``, in three queries.

    Plain rows, not Port objects: building 12,000 ORM ports with their addresses and
    pairs was 1.1 s of the server's CPU at an agent's start with 300 routers, the rows
    0.3 s (benchmarks/README.md, fix 21).
    """
    allocation, pair = models.IPAllocation, models.AllowedAddressPair
    rows = session.execute(
        select(allocation.subnet_id, *payloads.BRIEF_COLUMNS)
        .join(models.Port, allocation.port_id == models.Port.id)
        .where(allocation.subnet_id.in_(subnet_ids),
               models.Port.binding_host != "",
               models.Port.device_owner.not_in(protocol.ROUTER_INTERFACE_OWNERS))
        .order_by(allocation.subnet_id, models.Port.id))
    on_subnets = select(allocation.port_id).where(allocation.subnet_id.in_(subnet_ids))
    fixed_ips = _by_port(session.execute(
        select(allocation.port_id, allocation.ip_address, allocation.subnet_id)
        .where(allocation.port_id.in_(on_subnets))
        .order_by(allocation.port_id, allocation.ip_address)), "ip_address", "subnet_id")
    pairs = _by_port(session.execute(
        select(pair.port_id, pair.ip_address, pair.mac_address)
        .where(pair.port_id.in_(on_subnets))
        .order_by(pair.port_id, pair.ip_address, pair.mac_address)), "ip_address", "mac_address")
    found: dict[str, dict[str, dict[str, Any]]] = {s: {} for s in subnet_ids}
    for row in rows:
        if row.id not in found[row.subnet_id]:  # (two addresses on one subnet: one entry)
            found[row.subnet_id][row.id] = payloads.port_brief(
                row, fixed_ips.get(row.id, []), pairs.get(row.id, []))
    return {s: list(ports.values()) for s, ports in found.items()}


def _by_port(rows, *names: str) -> dict[str, list[dict[str, str]]]:
    """Rows of (port_id, *values) as {port_id: [{name: value, ...}, ...]}, in row order."""
    grouped: dict[str, list[dict[str, str]]] = {}
    for port_id, *values in rows:
        grouped.setdefault(port_id, []).append(dict(zip(names, values, strict=True)))
    return grouped


class BulkEndpoint:
    """Ours, not Neutron's: the ARP tables of many subnets in one call.

    An agent with 1,000 routers asks for 2,000 tables when it starts; one
    ``get_ports_by_subnet`` each was most of its full sync (benchmarks/README.md, fix 13).
    """

    target = oslo_messaging.Target(namespace=protocol.BULK_NAMESPACE,
                                   version=protocol.BULK_VERSION)

    def __init__(self, plane: ControlPlane):
        self._plane = plane

    def get_ports_by_subnets(self, context: dict, **kwargs: Any) -> dict[str, list[dict]]:
        _require(kwargs.get("host"), "host")
        subnet_ids = kwargs.get("subnet_ids")
        if (not isinstance(subnet_ids, list) or not subnet_ids
                or len(subnet_ids) > protocol.MAX_SUBNETS_PER_CALL
                or not all(isinstance(s, str) and s for s in subnet_ids)):
            raise BadRequest(f"subnet_ids must be a list of 1 to "
                             f"{protocol.MAX_SUBNETS_PER_CALL} subnet ids")
        return self._plane.read(lambda s: ports_on_subnets(s, sorted(set(subnet_ids))))


class L3PluginEndpoint:
    target = oslo_messaging.Target(version=protocol.L3_PLUGIN_SERVER_VERSION)

    def __init__(self, plane: ControlPlane):
        self._plane = plane
        self._synced = SyncCache()

    def get_router_ids(self, context: dict, host: str, **kwargs: Any) -> list[str]:
        host = _require(host, "host")
        return self._plane.read(lambda s: scheduler.routers_of_host(s, host))

    def sync_routers(self, context: dict, host: str, router_ids: list[str] | None = None,
                     **kwargs: Any) -> list[dict[str, Any]]:
        """The routers ``host`` hosts (all, or those of ``router_ids``), Neutron-shaped.

        A router the host does not host is simply absent: that is how an agent learns to
        remove it (the captures show ``[]`` once compute1's last VM is gone).
        """
        host = _require(host, "host")
        if router_ids is not None and not isinstance(router_ids, list):
            raise BadRequest("router_ids must be a list of router ids or None")

        def build(session: Session) -> list[dict[str, Any]] | None:
            ids = scheduler.routers_of_host(session, host)
            if router_ids is not None:
                wanted = set(router_ids)
                ids = [i for i in ids if i in wanted]
            if devices.missing_distributed_bindings(session, ids, host):
                return None  # bind first (a write), then build
            return payloads.sync_router_dicts(session, _routers(session, ids), host)

        key = (host, None if router_ids is None else tuple(sorted(router_ids)))
        generation = self._plane.generation
        routers = self._synced.get(key, generation)
        if routers is None:
            routers = self._plane.read(build)
        if routers is None:
            self._plane.change(lambda s: Outcome(devices.bind_distributed(
                s, scheduler.routers_of_host(s, host), host)))
            generation = self._plane.generation
            routers = self._plane.read(build) or []
        self._synced.put(key, generation, routers)
        return routers

    def get_agent_gateway_port(self, context: dict, **kwargs: Any) -> dict[str, Any] | None:
        """The host's fg port on the external network, made if missing (Neutron: the same).

        Neutron's agent sends ``network_id``; the stand-in agents of the captures sent
        ``fip_net``. Both are accepted.
        """
        network_id = _require(kwargs.get("network_id") or kwargs.get("fip_net"), "network_id")
        host = _require(kwargs.get("host"), "host")

        def work(session: Session) -> Outcome:
            network = session.get(models.Network, network_id)
            if network is None or not network.external:
                raise BadRequest(f"network_id {network_id} is not an external network")
            agent = agents.l3_agent(session, host)
            if agent is not None and agents.agent_mode(agent) == \
                    protocol.AGENT_MODE_DVR_NO_EXTERNAL:
                return Outcome(None)
            return Outcome(floatingips.gateway_port(session, self._plane.settings, network,
                                                    host))

        return self._plane.change(
            work, lambda s, port: payloads.port_dict(port) if port is not None else None)

    def get_ports_by_subnet(self, context: dict, **kwargs: Any) -> list[dict[str, Any]]:
        """Every bound port with an address on the subnet, for the router's static ARP.

        The ports' addresses and address pairs come in the same three queries: loaded
        lazily, port by port, they made an answer of 20 ports cost ~12 ms, and a Neutron
        agent with 1,000 routers asks 2,000 times when it starts (benchmarks/README.md,
        profiles 3 and 10).
        """
        subnet_id = _require(kwargs.get("subnet_id"), "subnet_id")
        return self._plane.read(lambda s: ports_on_subnets(s, [subnet_id])[subnet_id])

    def update_floatingip_statuses(self, context: dict, router_id: str,
                                   fip_statuses: dict[str, str], **kwargs: Any) -> None:
        _require(router_id, "router_id")
        self._plane.change(lambda s: Outcome(
            floatingips.set_statuses(s, router_id, fip_statuses)))

    def get_service_plugin_list(self, context: dict, **kwargs: Any) -> list[str]:
        return list(SERVICE_PLUGINS)

    def get_host_ha_router_count(self, context: dict, host: str, **kwargs: Any) -> int:
        return 0  # no HA routers here


def _routers(session: Session, ids: list[str]) -> list[models.Router]:
    """The routers of ``ids`` that exist, in that order, with their extra routes: one
    query for all (one each, and one more for each one's routes, was a fifth of a full
    sync's answer)."""
    rows = session.scalars(select(models.Router).where(models.Router.id.in_(ids))
                           .options(selectinload(models.Router.routes)))
    by_id = {r.id: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]
