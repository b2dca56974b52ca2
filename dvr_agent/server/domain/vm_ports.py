"""VM ports (device_owner ``compute:nova``): bound to a host at creation, as Nova would.

Seed rules: a VM on a subnet of router R brings R to its host (``routers_updated`` to that
host, version 1.0 as neutron-server sends it); the last VM that tied a host to R takes R
away (``router_removed_from_agent``). Every router on the port's subnets learns its address
through the ``add_arp_entry``/``del_arp_entry`` fanout.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from dvr_agent.rpc import protocol
from dvr_agent.server.db import models
from dvr_agent.server.domain import agents, floatingips, ipam, lookup, ports, scheduler
from dvr_agent.server.domain import notifications as notify
from dvr_agent.server.domain.settings import Settings
from dvr_agent.server.errors import BadRequest, Conflict

OWNER = protocol.DEVICE_OWNER_COMPUTE_PREFIX + "nova"
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,253})$")


def check_host(host: str) -> str:
    if not isinstance(host, str) or not _HOSTNAME.match(host):
        raise BadRequest(f"host {host!r} is not a valid host name")
    return host


def _subnet_for_ip(network: models.Network, address: str) -> models.Subnet:
    address = ipam.parse_ip(address)
    for subnet in network.subnets:
        try:
            ipam.check_in_subnet(subnet, address)
            return subnet
        except BadRequest:
            continue
    cidrs = ", ".join(s.cidr for s in network.subnets) or "none"
    raise BadRequest(f"{address} is in no subnet of network {network.id} (subnets: {cidrs})")


def create(session: Session, settings: Settings, network_ref: str, host: str, *,
           ip: str | None = None, mac: str | None = None,
           name: str | None = None) -> notify.Outcome:
    network = lookup.resolve(session, models.Network, network_ref)
    host = check_host(host)
    name = lookup.check_name(name, "port")
    subnet = _subnet_for_ip(network, ip) if ip else None
    if subnet is not None and ipam.parse_ip(ip) == subnet.gateway_ip:
        raise Conflict(f"{ip} is the gateway address of subnet {subnet.id}")
    routers = _routers_on_network(session, network)
    before = scheduler.hosting(session, routers)
    port = ports.new_port(session, settings, network, owner=OWNER, device_id=models.new_id(),
                          host=host, name=name, mac=mac)
    if subnet is not None:
        ipam.allocate(session, port, subnet, ip)
    elif network.subnets:
        ipam.allocate_on_network(session, port, network)
    session.flush()
    mine = scheduler.routers_on_subnets(session, ports.subnet_ids(port))
    notes = notify.plan_router_notifications(
        before, scheduler.hosting(session, routers), l3_hosts=agents.l3_hosts(session),
        interested={r: {host} for rs in mine.values() for r in rs},
        version=protocol.L3_AGENT_NOTIFY_VERSION)
    notes += ports.arp_notifications(session, port, add=True)
    return notify.Outcome(port, notes)


def _routers_on_network(session: Session, network: models.Network) -> list[str]:
    found = scheduler.routers_on_subnets(session, [s.id for s in network.subnets])
    return sorted({r for rs in found.values() for r in rs})


def delete(session: Session, port_ref: str) -> notify.Outcome:
    port = lookup.resolve(session, models.Port, port_ref)
    if not ports.is_vm_port(port):
        raise Conflict(f"port {port.id} is a {port.device_owner or 'unowned'} port, not a VM "
                       "port; it goes with its router, floating IP or network")
    routers = _routers_on_network(session, port.network)
    before = scheduler.hosting(session, routers)
    notes = ports.arp_notifications(session, port, add=False)
    host, fip_routers = port.binding_host, floatingips.routers_of_port_fips(session, port)
    fip_notes = floatingips.detach_for_port_delete(session, port)
    notes += ports.delete_port(session, port)
    after = scheduler.hosting(session, routers)
    planned = notify.plan_router_notifications(
        before, after, l3_hosts=agents.l3_hosts(session), interested={})
    # a host that keeps the router for its other VMs must still drop the floating IP (and
    # its fip namespace with the last one); one that loses the router is told so anyway
    keeps = sorted(r for r in fip_routers if host in after.get(r, ()))
    if host and keeps and host in agents.l3_hosts(session):
        planned.append(notify.routers_updated(host, keeps, floatingips.VERSION))
    return notify.Outcome({"id": port.id}, fip_notes + planned + notes)
