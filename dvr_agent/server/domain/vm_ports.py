"""VM ports (device_owner ``compute:nova``): bound to a host at creation, as Nova would.

Seed rules: a VM on a subnet of router R brings R to its host (``routers_updated`` to that
host, version 1.0 as neutron-server sends it); the last VM that tied a host to R takes R
away (``router_removed_from_agent``). Every router on the port's subnets learns its address
through the ``add_arp_entry``/``del_arp_entry`` fanout.

A port made without a host stays unbound: it only reserves its address (a VIP port,
whose floating IP the SNAT host serves). ``update`` moves a port to another host, as a
live migration does, and sets its allowed address pairs.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from dvr_agent.rpc import protocol
from dvr_agent.server.db import models
from dvr_agent.server.domain import (
    address_pairs,
    agents,
    floatingips,
    ipam,
    lookup,
    ports,
    scheduler,
)
from dvr_agent.server.domain import notifications as notify
from dvr_agent.server.domain.settings import Settings
from dvr_agent.server.errors import BadRequest, Conflict

OWNER = protocol.DEVICE_OWNER_COMPUTE_PREFIX + "nova"
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,253})$")


def check_host(host: str) -> str:
    if not isinstance(host, str) or not _HOSTNAME.match(host):
        raise BadRequest(f"host {host!r} is not a valid host name")
    return host


def check_known_host(session: Session, host: str) -> str:
    """A host an agent has reported from: a port moved anywhere else would go dark."""
    check_host(host)
    if host not in agents.l3_hosts(session):
        known = ", ".join(sorted(agents.l3_hosts(session))) or "none"
        raise BadRequest(f"host {host!r} has no L3 agent (hosts: {known})")
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


def create(session: Session, settings: Settings, network_ref: str, host: str | None, *,
           ip: str | None = None, mac: str | None = None,
           name: str | None = None) -> notify.Outcome:
    network = lookup.resolve(session, models.Network, network_ref)
    host = check_host(host) if host else ""
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
    notes += address_pairs.port_notifications(session, port, add=True)
    return notify.Outcome(port, notes)


def update(session: Session, settings: Settings, port_ref: str, *, host: str | None = None,
           allowed_addresses: list[str] | None = None) -> notify.Outcome:
    """Move a VM port to ``host`` and/or replace its allowed address pairs.

    Everything is checked before anything changes, so a bad host or address leaves the
    port as it was.
    """
    port = lookup.resolve(session, models.Port, port_ref)
    if not ports.is_vm_port(port):
        raise Conflict(f"port {port.id} is a {port.device_owner or 'unowned'} port, not a VM "
                       "port")
    if host is None and allowed_addresses is None:
        raise BadRequest("nothing to change: give --host and/or --allowed-address")
    if host is not None:
        check_known_host(session, host)
    pairs = (address_pairs.parse_pairs(port, allowed_addresses)
             if allowed_addresses is not None else None)
    notes: list[notify.Notification] = []
    if pairs is not None:
        notes += address_pairs.replace(session, port, pairs)
    if host is not None and host != port.binding_host:
        notes += _move(session, settings, port, host)
    if notes or pairs is not None:
        notes.append(notify.port_update(port.id, port.network_id, port.mac_address,
                                        port.binding_host))
    return notify.Outcome(port, notes)


def _move(session: Session, settings: Settings, port: models.Port,
          host: str) -> list[notify.Notification]:
    """What a live migration's binding change does: the old host removes everything of
    the port (and the routers it alone held there), the new host adds it; its floating IPs
    follow, with their fip namespaces (seed rule) on both hosts."""
    old = port.binding_host
    routers = _routers_on_network(session, port.network)
    before = scheduler.hosting(session, routers)
    fips = floatingips.of_port(session, port)
    served = {f.id: floatingips.serving_host(session, f) for f in fips}
    notes: list[notify.Notification] = []
    if port.status == ports.STATUS_ACTIVE and old:
        notes += ports.fdb_removal(session, port, old)
    port.binding_host, port.status = host, ports.STATUS_DOWN
    port.revision_number += 1
    session.flush()
    if not old:  # an unbound port becomes bound: its addresses enter the ARP tables
        notes += address_pairs.port_notifications(session, port, add=True)
    mine = scheduler.routers_on_subnets(session, ports.subnet_ids(port))
    notes = notify.plan_router_notifications(
        before, scheduler.hosting(session, routers), l3_hosts=agents.l3_hosts(session),
        interested={r: {host, old} - {""} for rs in mine.values() for r in rs},
        version=protocol.L3_AGENT_NOTIFY_VERSION) + notes
    notes += floatingips.replan(session, settings, fips, served, {old} - {""})
    return notes


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
    host = port.binding_host
    fip_routers = {f.router_id for f in floatingips.of_port(session, port) if f.router_id}
    notes = address_pairs.port_notifications(session, port, add=False)
    fip_notes = floatingips.detach_for_port_delete(session, port)
    notes += ports.delete_port(session, port)
    after = scheduler.hosting(session, routers)
    # a host that keeps a router for its other VMs must still drop this VM's floating IP
    planned = notify.plan_router_notifications(
        before, after, l3_hosts=agents.l3_hosts(session),
        interested={r: {host} for r in fip_routers if host},
        version=protocol.L3_AGENT_NOTIFY_VERSION)
    return notify.Outcome({"id": port.id}, fip_notes + planned + notes)
