"""Which hosts host a router, and which routers a host gets: the seed's rules, in one place.

A distributed router R is on host H iff H has a bound VM port (device_owner ``compute:*``)
with a fixed IP on a subnet of one of R's interfaces, or H is R's SNAT host (R has a
gateway and is bound to H's live dvr_snat agent). A legacy (centralized) router is on its
bound host only, gateway or not: that host routes for every VM. ``sync_routers``,
``get_router_ids``, the notification planner and ``dvrctl router show`` all ask these
functions, so they cannot disagree.

Neutron also counts DHCP ports (``host_dvr_for_dhcp``) and "related" routers sharing a
subnet; neither exists here yet.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import and_, bindparam, func, select, union
from sqlalchemy.orm import Session, aliased

from dvr_agent.rpc import protocol
from dvr_agent.server.db import models
from dvr_agent.server.domain import agents

_vm_port = aliased(models.Port)
_vm_ip = aliased(models.IPAllocation)
_if_ip = aliased(models.IPAllocation)


def _vm_hosts_query():
    """(router_id, host) pairs from VM ports on the subnets of the routers' interfaces."""
    return (
        select(models.RouterPort.router_id, _vm_port.binding_host).distinct()
        .join(models.Router, models.Router.id == models.RouterPort.router_id)
        .join(_if_ip, _if_ip.port_id == models.RouterPort.port_id)
        .join(_vm_ip, _vm_ip.subnet_id == _if_ip.subnet_id)
        .join(_vm_port, _vm_port.id == _vm_ip.port_id)
        .where(models.RouterPort.port_type == protocol.DEVICE_OWNER_DVR_INTERFACE,
               models.Router.distributed.is_(True),
               _vm_port.device_owner.startswith(protocol.DEVICE_OWNER_COMPUTE_PREFIX),
               _vm_port.binding_host != "")
    )


def hosting(session: Session, router_ids: Iterable[str]) -> dict[str, frozenset[str]]:
    """For each of ``router_ids``: the hosts that host it (empty if none, or deleted)."""
    ids = sorted(set(router_ids))
    found: dict[str, set[str]] = defaultdict(set)
    if ids:
        for router_id, host in session.execute(
                _vm_hosts_query().where(models.RouterPort.router_id.in_(ids))):
            found[router_id].add(host)
        for router_id, host in session.execute(
                select(models.Router.id, models.Router.snat_host).where(
                    models.Router.id.in_(ids), models.Router.snat_host.is_not(None))):
            found[router_id].add(host)
    return {r: frozenset(found.get(r, ())) for r in ids}


def hosts_of_router(session: Session, router_id: str) -> frozenset[str]:
    return hosting(session, [router_id])[router_id]


# Built once: constructing a SELECT costs more Python time than SQLite takes to run it, and
# this one runs on every get_router_ids and sync_routers.
_ROUTERS_OF_HOST = union(
    select(models.RouterPort.router_id)
    .join(models.Router, and_(models.Router.id == models.RouterPort.router_id,
                              models.Router.distributed.is_(True)))
    .join(_if_ip, _if_ip.port_id == models.RouterPort.port_id)
    .join(_vm_ip, _vm_ip.subnet_id == _if_ip.subnet_id)
    .join(_vm_port, and_(_vm_port.id == _vm_ip.port_id,
                         _vm_port.binding_host == bindparam("host")))
    .where(models.RouterPort.port_type == protocol.DEVICE_OWNER_DVR_INTERFACE,
           _vm_port.device_owner.startswith(protocol.DEVICE_OWNER_COMPUTE_PREFIX)),
    select(models.Router.id).where(models.Router.snat_host == bindparam("host")))


def routers_of_host(session: Session, host: str) -> list[str]:
    """Ids of the routers ``host`` hosts, sorted."""
    return sorted(set(session.scalars(_ROUTERS_OF_HOST, {"host": host})))


def routers_on_subnets(session: Session, subnet_ids: Iterable[str]) -> dict[str, list[str]]:
    """subnet id -> ids of the routers with an interface on it."""
    ids = sorted(set(subnet_ids))
    found: dict[str, list[str]] = defaultdict(list)
    if ids:
        rows = session.execute(
            select(models.IPAllocation.subnet_id, models.RouterPort.router_id)
            .join(models.RouterPort, models.RouterPort.port_id == models.IPAllocation.port_id)
            .where(models.IPAllocation.subnet_id.in_(ids),
                   models.RouterPort.port_type == protocol.DEVICE_OWNER_DVR_INTERFACE)
            .order_by(models.RouterPort.router_id))
        for subnet_id, router_id in rows:
            found[subnet_id].append(router_id)
    return dict(found)


def choose_snat_host(candidates: Iterable[str], load: Mapping[str, int]) -> str | None:
    """The least loaded candidate (fewest SNAT routers), ties broken by name; None if none."""
    ranked = sorted(candidates, key=lambda h: (load.get(h, 0), h))
    return ranked[0] if ranked else None


def snat_load(session: Session) -> dict[str, int]:
    return dict(session.execute(
        select(models.Router.snat_host, func.count(models.Router.id))
        .where(models.Router.snat_host.is_not(None)).group_by(models.Router.snat_host)).all())


def pick_snat_host(session: Session, now: datetime.datetime, down_time: int) -> str | None:
    """The live dvr_snat host a router with a new gateway should be bound to."""
    return choose_snat_host(agents.live_snat_hosts(session, now, down_time), snat_load(session))
