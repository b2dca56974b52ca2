"""``dvrctl router set``: a router's admin state, and migrating it legacy <-> distributed.

Neutron's procedure, and its rule: the ``distributed`` flag changes only while the router
is administratively down (admin down -> flag -> admin up), so no host ever runs half of
one kind and half of the other. Migrating rewrites what agents see of the router:

- distributed -> legacy: the interfaces become ordinary ports bound to the router's one
  host (scheduled now if it had none), their per-host bindings and the csnat ports go,
  and so do the fg ports that only its floating IPs needed;
- legacy -> distributed: the interfaces become distributed again (bound per host when a
  host syncs), csnat ports come back with the gateway, a router without gateway loses
  its binding, and the VMs' hosts get fg ports for its floating IPs.
The ports keep their MACs and addresses, so no VM has to learn its gateway anew.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dvr_agent.server.db import models
from dvr_agent.server.domain import agents, floatingips, lookup, ports, routers, scheduler
from dvr_agent.server.domain import notifications as notify
from dvr_agent.server.domain.settings import Settings
from dvr_agent.server.errors import BadRequest, Conflict


def update(session: Session, settings: Settings, router_ref: str, *,
           admin_state_up: bool | None = None,
           distributed: bool | None = None) -> notify.Outcome:
    router = lookup.resolve(session, models.Router, router_ref)
    if admin_state_up is None and distributed is None:
        raise BadRequest("nothing to change: give --admin-state and/or --distributed")
    migrating = distributed is not None and distributed != router.distributed
    if migrating and router.admin_state_up:
        raise Conflict(f"router {router.id} is administratively up: set it down first "
                       "(`dvrctl router set ROUTER --admin-state down`), then change "
                       "--distributed, then set it up again")
    before = scheduler.hosting(session, [router.id])
    fip_rows = list(session.scalars(select(models.FloatingIP).where(
        models.FloatingIP.router_id == router.id).order_by(models.FloatingIP.id)))
    served = {f.id: floatingips.serving_host(session, f) for f in fip_rows}
    notes: list[notify.Notification] = []
    if migrating:
        notes += _migrate(session, settings, router, distributed)
        notes += floatingips.replan(session, settings, fip_rows, served,
                                    {h for h in served.values() if h})
    if admin_state_up is not None:
        router.admin_state_up = admin_state_up
    router.revision_number += 1
    session.flush()
    notes = notify.plan_router_notifications(
        before, scheduler.hosting(session, [router.id]),
        l3_hosts=agents.l3_hosts(session)) + notes
    return notify.Outcome(router, notes)


def _migrate(session: Session, settings: Settings, router: models.Router,
             distributed: bool) -> list[notify.Notification]:
    notes: list[notify.Notification] = []
    has_gateway = ports.router_gateway_port(session, router.id) is not None
    router.distributed = distributed
    if distributed:
        if has_gateway:
            routers.add_csnat_ports(session, settings, router)
        else:
            router.snat_host = None
    else:
        notes += routers.delete_csnat_ports(session, router)
        session.execute(delete(models.DistributedPortBinding).where(
            models.DistributedPortBinding.router_id == router.id))
        if router.snat_host is None:
            router.snat_host = scheduler.pick_snat_host(session, settings.now(),
                                                        settings.agent_down_time)
    for port in ports.router_ports(session, router.id, routers.INTERFACE):
        port.device_owner = routers.interface_owner(router)
        port.binding_host = routers.interface_host(router)
        port.status = ports.STATUS_DOWN
        port.revision_number += 1
    session.flush()
    return notes
