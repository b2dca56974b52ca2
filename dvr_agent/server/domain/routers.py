"""Routers: interfaces, gateway (with its SNAT binding and csnat ports), deletion.

Every operation here changes the router itself, so every host of the router hears
``routers_updated`` (version 1.1, as neutron-server sends it) and a host that stops hosting
it hears ``router_removed_from_agent``; ``scheduler`` decides the hosts before and after.

A distributed router is bound to a dvr_snat host only while it has a gateway, and gets a
csnat port per subnet there. A legacy (centralized) router is bound to one dvr_snat host
from its creation, and its interfaces are ordinary ports bound to that host
(``network:router_interface``), as Neutron schedules legacy routers beside DVR ones.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dvr_agent.rpc import protocol
from dvr_agent.server.db import models
from dvr_agent.server.domain import (
    address_pairs,
    agents,
    extra_routes,
    ipam,
    lookup,
    ports,
    scheduler,
)
from dvr_agent.server.domain import notifications as notify
from dvr_agent.server.domain.settings import Settings
from dvr_agent.server.errors import BadRequest, Conflict

INTERFACE = protocol.DEVICE_OWNER_DVR_INTERFACE  # RouterPort.port_type of every interface
CSNAT = protocol.DEVICE_OWNER_ROUTER_SNAT
GATEWAY = protocol.DEVICE_OWNER_ROUTER_GW


def interface_owner(router: models.Router) -> str:
    """The device_owner agents see on the router's interface ports."""
    return INTERFACE if router.distributed else protocol.DEVICE_OWNER_ROUTER_INTF


def interface_host(router: models.Router) -> str:
    """Where an interface port is bound: per host for DVR (distributed bindings), on the
    router's one host for a legacy router."""
    return "" if router.distributed else router.snat_host or ""


def create(session: Session, settings: Settings, name: str,
           distributed: bool = True) -> notify.Outcome:
    router = models.Router(name=lookup.check_name(name, "router"), distributed=distributed)
    if not distributed:
        router.snat_host = scheduler.pick_snat_host(session, settings.now(),
                                                    settings.agent_down_time)
    session.add(router)
    session.flush()
    return notify.Outcome(router)


def interface_subnets(session: Session, router_id: str) -> dict[str, models.Port]:
    """subnet id -> the router's interface port on it."""
    return {ip.subnet_id: port for port in ports.router_ports(session, router_id, INTERFACE)
            for ip in port.fixed_ips}


def _add_router_port(session: Session, router: models.Router, port: models.Port,
                     port_type: str) -> None:
    session.add(models.RouterPort(router_id=router.id, port_id=port.id, port_type=port_type))
    router.revision_number += 1
    session.flush()


def add_csnat_port(session: Session, settings: Settings, router: models.Router,
                   subnet: models.Subnet) -> None:
    """The SNAT host's own address on an internal subnet (sg- in snat-R), never the gateway."""
    port = ports.new_port(session, settings, subnet.network, owner=CSNAT, device_id=router.id,
                          host=router.snat_host or "")
    ipam.allocate(session, port, subnet)
    _add_router_port(session, router, port, CSNAT)


def _plan(session: Session, before: notify.Hosting, router_id: str) -> list[notify.Notification]:
    after = scheduler.hosting(session, [router_id])
    return notify.plan_router_notifications(before, after, l3_hosts=agents.l3_hosts(session))


def add_interface(session: Session, settings: Settings, router_ref: str,
                  subnet_ref: str) -> notify.Outcome:
    router = lookup.resolve(session, models.Router, router_ref)
    subnet = lookup.resolve(session, models.Subnet, subnet_ref)
    if subnet.network.external:
        raise BadRequest(f"subnet {subnet.id} is on external network {subnet.network_id}; "
                         "use `router set-gateway` for external networks")
    if not subnet.gateway_ip:
        raise BadRequest(f"subnet {subnet.id} has no gateway_ip for the router to take")
    if subnet.id in interface_subnets(session, router.id):
        raise Conflict(f"router {router.id} already has an interface on subnet {subnet.id}")
    holder = session.get(models.IPAllocation, (subnet.id, subnet.gateway_ip))
    if holder is not None:
        raise Conflict(f"gateway {subnet.gateway_ip} of subnet {subnet.id} is in use by "
                       f"port {holder.port_id}")
    before = scheduler.hosting(session, [router.id])
    port = ports.new_port(session, settings, subnet.network, owner=interface_owner(router),
                          device_id=router.id, host=interface_host(router))
    ipam.allocate(session, port, subnet, subnet.gateway_ip)
    _add_router_port(session, router, port, INTERFACE)
    if router.distributed and ports.router_gateway_port(session, router.id) is not None \
            and subnet.ip_version == 4:
        add_csnat_port(session, settings, router, subnet)
    return notify.Outcome({"id": router.id, "port_id": port.id, "subnet_id": subnet.id,
                           "network_id": subnet.network_id},
                          _plan(session, before, router.id))


def _fips_via(session: Session, router_id: str, subnet_id: str | None = None) -> list[str]:
    query = select(models.FloatingIP).where(models.FloatingIP.router_id == router_id)
    fips = list(session.scalars(query))
    if subnet_id is not None:
        fips = [f for f in fips if any(ip.subnet_id == subnet_id and
                                       ip.ip_address == f.fixed_ip_address
                                       for ip in session.get(models.Port, f.fixed_port_id)
                                       .fixed_ips)]
    return sorted(f.floating_ip_address for f in fips)


def delete_csnat_ports(session: Session, router: models.Router,
                       subnet_id: str | None = None) -> list[notify.Notification]:
    notes: list[notify.Notification] = []
    for port in ports.router_ports(session, router.id, CSNAT):
        if subnet_id is None or subnet_id in ports.subnet_ids(port):
            notes += address_pairs.port_notifications(session, port, add=False)
            notes += ports.delete_port(session, port)
    return notes


def remove_interface(session: Session, router_ref: str, subnet_ref: str) -> notify.Outcome:
    router = lookup.resolve(session, models.Router, router_ref)
    subnet = lookup.resolve(session, models.Subnet, subnet_ref)
    port = interface_subnets(session, router.id).get(subnet.id)
    if port is None:
        raise Conflict(f"router {router.id} has no interface on subnet {subnet.id}")
    fips = _fips_via(session, router.id, subnet.id)
    if fips:
        raise Conflict(f"floating IP(s) {', '.join(fips)} reach subnet {subnet.id} through "
                       f"router {router.id}; disassociate them first")
    routes = extra_routes.needed_by(router, subnet.cidr)
    if routes:
        raise Conflict(f"route(s) {', '.join(routes)} of router {router.id} need subnet "
                       f"{subnet.id}; remove them first")
    before = scheduler.hosting(session, [router.id])
    notes = delete_csnat_ports(session, router, subnet.id)
    notes += ports.delete_port(session, port)
    router.revision_number += 1
    session.flush()
    return notify.Outcome({"id": router.id, "port_id": port.id, "subnet_id": subnet.id},
                          _plan(session, before, router.id) + notes)


def set_gateway(session: Session, settings: Settings, router_ref: str,
                network_ref: str) -> notify.Outcome:
    router = lookup.resolve(session, models.Router, router_ref)
    network = lookup.resolve(session, models.Network, network_ref)
    if not network.external:
        raise BadRequest(f"network {network.id} is not external; a gateway needs an external "
                         "network (`network create NAME --external`)")
    current = ports.router_gateway_port(session, router.id)
    if current is not None:
        if current.network_id == network.id:
            return notify.Outcome(router)
        raise Conflict(f"router {router.id} already has a gateway on network "
                       f"{current.network_id}; clear it first")
    before = scheduler.hosting(session, [router.id])
    if router.distributed or router.snat_host is None:
        router.snat_host = scheduler.pick_snat_host(session, settings.now(),
                                                    settings.agent_down_time)
    gw = ports.new_port(session, settings, network, owner=GATEWAY, device_id=router.id,
                        host=router.snat_host or "")
    ipam.allocate_on_network(session, gw, network)
    _add_router_port(session, router, gw, GATEWAY)
    if router.distributed:
        add_csnat_ports(session, settings, router)
    return notify.Outcome(router, _plan(session, before, router.id))


def add_csnat_ports(session: Session, settings: Settings, router: models.Router) -> None:
    """One csnat port per IPv4 interface subnet (a distributed router with a gateway)."""
    for subnet_id in sorted(interface_subnets(session, router.id)):
        subnet = session.get(models.Subnet, subnet_id)
        if subnet.ip_version == 4:
            add_csnat_port(session, settings, router, subnet)


def clear_gateway(session: Session, router_ref: str) -> notify.Outcome:
    router = lookup.resolve(session, models.Router, router_ref)
    gw = ports.router_gateway_port(session, router.id)
    if gw is None:
        return notify.Outcome(router)
    fips = _fips_via(session, router.id)
    if fips:
        raise Conflict(f"floating IP(s) {', '.join(fips)} use the gateway of router "
                       f"{router.id}; disassociate them first")
    before = scheduler.hosting(session, [router.id])
    notes = delete_csnat_ports(session, router)
    notes += ports.delete_port(session, gw)
    if router.distributed:
        router.snat_host = None  # a legacy router keeps its host: it still routes there
    router.revision_number += 1
    session.flush()
    notes += _release_external_network(session, gw.network_id)
    return notify.Outcome(router, _plan(session, before, router.id) + notes)


def _release_external_network(session: Session, network_id: str) -> list[notify.Notification]:
    """When the last gateway on an external network goes, so do its fg ports and fip-E."""
    still_used = session.scalar(select(models.RouterPort.port_id)
                                .join(models.Port, models.Port.id == models.RouterPort.port_id)
                                .where(models.RouterPort.port_type == GATEWAY,
                                       models.Port.network_id == network_id).limit(1))
    if still_used is not None:
        return []
    notes: list[notify.Notification] = []
    for row in list(session.scalars(select(models.FipAgentGatewayPort).where(
            models.FipAgentGatewayPort.network_id == network_id))):
        port = session.get(models.Port, row.port_id)
        session.delete(row)
        notes += ports.delete_port(session, port)
    notes.append(notify.fipnamespace_delete_on_ext_net(network_id))
    return notes


def delete(session: Session, router_ref: str) -> notify.Outcome:
    """Delete a router without interfaces (its gateway is cleared on the way, as Neutron does)."""
    router = lookup.resolve(session, models.Router, router_ref)
    interfaces = sorted(interface_subnets(session, router.id))
    if interfaces:
        raise Conflict(f"router {router.id} still has interfaces on subnet(s) "
                       f"{', '.join(interfaces)}; remove them first")
    notes = clear_gateway(session, router.id).notifications
    router_id = router.id
    session.delete(router)
    session.flush()
    return notify.Outcome({"id": router_id}, [*notes, notify.router_deleted(router_id)])


def schedule_unbound(session: Session, settings: Settings) -> list[notify.Notification]:
    """Bind routers that need a host and have none to a live dvr_snat agent: gateway
    routers (their snat namespace) and every legacy router.

    Runs when a dvr_snat agent appears or revives (Neutron auto-schedules then too), so a
    gateway set while no network node was up still gets its snat namespace.
    """
    notes: list[notify.Notification] = []
    with_gateway = select(models.RouterPort.router_id).where(
        models.RouterPort.port_type == GATEWAY)
    unbound = session.scalars(
        select(models.Router)
        .where(models.Router.snat_host.is_(None),
               models.Router.id.in_(with_gateway) | models.Router.distributed.is_(False))
        .order_by(models.Router.created_at))
    for router in list(unbound):
        host = scheduler.pick_snat_host(session, settings.now(), settings.agent_down_time)
        if host is None:
            break
        before = scheduler.hosting(session, [router.id])
        bind(session, router, host)
        notes += _plan(session, before, router.id)
    return notes


def bind(session: Session, router: models.Router, host: str) -> None:
    """Put the router's centralized part on ``host``: its gateway and csnat ports, and all
    its interfaces if it is a legacy router."""
    router.snat_host = host
    kinds = [GATEWAY, CSNAT] + ([] if router.distributed else [INTERFACE])
    for kind in kinds:
        for port in ports.router_ports(session, router.id, kind):
            port.binding_host = host
    router.revision_number += 1
    session.flush()
