"""Floating IPs and the FIP-agent-gateway (fg-) ports they need on their VM's host.

Seed rule: fip-E on host H exists iff a VM on H has a floating IP on E. So the server gives
H its fg port on E with the first such floating IP (or when the agent asks with
``get_agent_gateway_port``) and takes it back with the last one: no external address stays
spent on a host that has no floating IP (Neutron keeps one per host and gateway router).
A floating IP change is told to the host that serves it only, as Neutron does: the VM's
host for a distributed floating IP; the router's SNAT host for a *centralized* one (the
VM's port is unbound, e.g. a VIP port, or its host runs ``dvr_no_external``: digest §2.5)
and for every floating IP of a legacy router. Only distributed ones need an fg port.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dvr_agent.rpc import protocol
from dvr_agent.server.db import models
from dvr_agent.server.domain import agents, ipam, lookup, ports
from dvr_agent.server.domain import notifications as notify
from dvr_agent.server.domain.settings import Settings
from dvr_agent.server.errors import BadRequest, Conflict

VERSION = protocol.L3_AGENT_NOTIFY_VERSION  # routers_updated to one host: 1.0 on the wire


def gateway_port(session: Session, settings: Settings, network: models.Network,
                 host: str) -> models.Port:
    """Host's fg port on ``network``, made on first need (one per host and network)."""
    row = session.get(models.FipAgentGatewayPort, (network.id, host))
    agent = agents.l3_agent(session, host)
    if row is not None:
        port = session.get(models.Port, row.port_id)
        if agent is not None and port.device_id != agent.id:
            port.device_id = agent.id
        return port
    port = ports.new_port(session, settings, network, owner=protocol.DEVICE_OWNER_AGENT_GW,
                          device_id=agent.id if agent else "", host=host)
    ipam.allocate_on_network(session, port, network)
    session.add(models.FipAgentGatewayPort(network_id=network.id, host=host, port_id=port.id))
    session.flush()
    return port


def host_gateway_ports(session: Session, network_id: str, host: str) -> list[models.Port]:
    return list(session.scalars(
        select(models.Port).join(models.FipAgentGatewayPort,
                                 models.FipAgentGatewayPort.port_id == models.Port.id)
        .where(models.FipAgentGatewayPort.network_id == network_id,
               models.FipAgentGatewayPort.host == host)))


def release_unused_gateway_port(session: Session, network_id: str,
                                host: str) -> list[notify.Notification]:
    """Delete host's fg port on the network once no floating IP is routed there any more."""
    on_host = session.scalars(
        select(models.FloatingIP)
        .join(models.Port, models.Port.id == models.FloatingIP.fixed_port_id)
        .where(models.FloatingIP.floating_network_id == network_id,
               models.Port.binding_host == host))
    if any(distributed_here(session, fip) for fip in on_host):
        return []
    notes: list[notify.Notification] = []
    for port in host_gateway_ports(session, network_id, host):
        notes += ports.delete_port(session, port)
    return notes


def vm_host(session: Session, fip: models.FloatingIP) -> str | None:
    if fip.fixed_port_id is None:
        return None
    port = session.get(models.Port, fip.fixed_port_id)
    return port.binding_host or None if port else None


def centralized(session: Session, fip: models.FloatingIP) -> bool:
    """A floating IP of a distributed router that its SNAT host serves (``dvr_snat_bound``):
    the VM's port is unbound, or its host's L3 agent runs ``dvr_no_external``."""
    router = session.get(models.Router, fip.router_id) if fip.router_id else None
    if router is None or not router.distributed or fip.fixed_port_id is None:
        return False
    host = vm_host(session, fip)
    if host is None:
        return True
    agent = agents.l3_agent(session, host)
    return agent is not None and agents.agent_mode(agent) == \
        protocol.AGENT_MODE_DVR_NO_EXTERNAL


def distributed_here(session: Session, fip: models.FloatingIP) -> bool:
    """Routed by its VM's own host through fip-E (so that host needs an fg port)."""
    router = session.get(models.Router, fip.router_id) if fip.router_id else None
    return (router is not None and router.distributed and vm_host(session, fip) is not None
            and not centralized(session, fip))


def serving_host(session: Session, fip: models.FloatingIP) -> str | None:
    """The host whose agent sets the floating IP up (see the module docstring)."""
    router = session.get(models.Router, fip.router_id) if fip.router_id else None
    if router is None:
        return None
    if distributed_here(session, fip):
        return vm_host(session, fip)
    return router.snat_host


def replan(session: Session, settings: Settings, fips: list[models.FloatingIP],
           served_before: dict[str, str | None],
           released_hosts: set[str]) -> list[notify.Notification]:
    """After something moved the floating IPs ``fips`` (a port to another host, an agent's
    mode): the hosts that served them and those that serve them now hear of their routers,
    new serving hosts get their fg port, and ``released_hosts`` give back unused ones."""
    notes: list[notify.Notification] = []
    l3 = agents.l3_hosts(session)
    for fip in fips:
        now = serving_host(session, fip)
        if now and distributed_here(session, fip):
            gateway_port(session, settings, session.get(models.Network,
                                                        fip.floating_network_id), now)
        for host in sorted({served_before.get(fip.id), now} - {None}):
            if host in l3:
                notes.append(notify.routers_updated(host, [fip.router_id], VERSION))
    session.flush()
    for network_id in sorted({f.floating_network_id for f in fips}):
        for host in sorted(released_hosts):
            notes += release_unused_gateway_port(session, network_id, host)
    return notes


def replan_host(session: Session, settings: Settings, host: str,
                old_mode: str) -> list[notify.Notification]:
    """A host's L3 agent changed mode (``dvr`` <-> ``dvr_no_external``): its VMs'
    floating IPs move between it and their routers' SNAT hosts."""
    fips = list(session.scalars(
        select(models.FloatingIP)
        .join(models.Port, models.Port.id == models.FloatingIP.fixed_port_id)
        .where(models.Port.binding_host == host).order_by(models.FloatingIP.id)))
    served = {}
    for fip in fips:
        router = session.get(models.Router, fip.router_id)
        was_local = router.distributed and old_mode != protocol.AGENT_MODE_DVR_NO_EXTERNAL
        served[fip.id] = host if was_local else router.snat_host
    return replan(session, settings, fips, served, {host})


def of_port(session: Session, port: models.Port) -> list[models.FloatingIP]:
    return list(session.scalars(select(models.FloatingIP).where(
        models.FloatingIP.fixed_port_id == port.id).order_by(models.FloatingIP.id)))


def _router_reaching(session: Session, port: models.Port, ip: models.IPAllocation,
                     network_id: str) -> models.Router:
    """The router that connects the port's subnet to the external network (Neutron's rule)."""
    candidates = session.scalars(
        select(models.Router)
        .join(models.RouterPort, models.RouterPort.router_id == models.Router.id)
        .join(models.IPAllocation, models.IPAllocation.port_id == models.RouterPort.port_id)
        .where(models.IPAllocation.subnet_id == ip.subnet_id,
               models.RouterPort.port_type == protocol.DEVICE_OWNER_DVR_INTERFACE)
        .order_by(models.Router.created_at))
    for router in candidates:
        gw = ports.router_gateway_port(session, router.id)
        if gw is not None and gw.network_id == network_id:
            return router
    raise Conflict(f"external network {network_id} is not reachable from subnet "
                   f"{ip.subnet_id}: no router connects them (add an interface and a gateway)")


def _attach(session: Session, settings: Settings, fip: models.FloatingIP,
            port: models.Port) -> list[notify.Notification]:
    if not ports.is_vm_port(port):
        raise BadRequest(f"port {port.id} is not a VM port (device_owner {port.device_owner!r})")
    v4 = [ip for ip in port.fixed_ips if ":" not in ip.ip_address]
    if not v4:
        raise BadRequest(f"port {port.id} has no IPv4 address to map a floating IP to")
    ip = v4[0]
    other = session.scalar(select(models.FloatingIP.floating_ip_address).where(
        models.FloatingIP.fixed_port_id == port.id,
        models.FloatingIP.fixed_ip_address == ip.ip_address,
        models.FloatingIP.id != fip.id))
    if other is not None:
        raise Conflict(f"{ip.ip_address} of port {port.id} already has floating IP {other}")
    router = _router_reaching(session, port, ip, fip.floating_network_id)
    notes = _detach(session, fip) if fip.fixed_port_id else []
    fip.fixed_port_id, fip.fixed_ip_address = port.id, ip.ip_address
    fip.router_id = fip.last_known_router_id = router.id
    fip.revision_number += 1
    session.flush()
    host = serving_host(session, fip)
    if host and distributed_here(session, fip):
        gateway_port(session, settings, session.get(models.Network, fip.floating_network_id),
                     host)
    if host and host in agents.l3_hosts(session):
        notes.append(notify.routers_updated(host, [router.id], VERSION))
    session.flush()
    return notes


def _detach(session: Session, fip: models.FloatingIP, *,
            tell: str | None = "vm") -> list[notify.Notification]:
    """Unmap ``fip``. ``tell``: "vm" notifies the host that served it, "snat" the router's
    SNAT host.

    Neutron tells the SNAT host when the VM's port is being deleted (its host is moot).
    """
    host, router_id, served_by = vm_host(session, fip), fip.router_id, serving_host(session,
                                                                                     fip)
    fip.fixed_port_id = fip.fixed_ip_address = fip.router_id = None
    fip.status = protocol.FLOATINGIP_STATUS_DOWN
    fip.revision_number += 1
    session.flush()
    notes: list[notify.Notification] = []
    router = session.get(models.Router, router_id) if router_id else None
    target = served_by if tell == "vm" else (router.snat_host if router else None)
    if router is not None and target and target in agents.l3_hosts(session):
        version = VERSION if tell == "vm" else protocol.L3_AGENT_ROUTERS_UPDATED_VERSION
        notes.append(notify.routers_updated(target, [router.id], version))
    if host:
        notes += release_unused_gateway_port(session, fip.floating_network_id, host)
    return notes


def detach_for_port_delete(session: Session, port: models.Port) -> list[notify.Notification]:
    """Unmap every floating IP of a VM port that is about to be deleted.

    The VM's host hears of the routers through the caller's plan (it may keep a router
    for its other VMs, and must still drop this floating IP and maybe its fip namespace).
    """
    notes: list[notify.Notification] = []
    for fip in of_port(session, port):
        host, network_id = port.binding_host, fip.floating_network_id
        fip.fixed_port_id = None  # so the gateway-port check below no longer counts it
        notes += _detach(session, fip, tell="snat")
        if host:
            notes += release_unused_gateway_port(session, network_id, host)
    return notes


def create(session: Session, settings: Settings, network_ref: str,
           port_ref: str | None = None) -> notify.Outcome:
    network = lookup.resolve(session, models.Network, network_ref)
    if not network.external:
        raise BadRequest(f"network {network.id} is not external; floating IPs come from an "
                         "external network")
    fip = models.FloatingIP(floating_network_id=network.id,
                            status=protocol.FLOATINGIP_STATUS_DOWN, floating_ip_address="",
                            floating_port_id="")
    fip.id = models.new_id()
    port = ports.new_port(session, settings, network, owner=protocol.DEVICE_OWNER_FLOATINGIP,
                          device_id=fip.id)
    fip.floating_ip_address = ipam.allocate_on_network(session, port, network).ip_address
    fip.floating_port_id = port.id
    session.add(fip)
    session.flush()
    notes = []
    if port_ref is not None:
        notes = _attach(session, settings, fip, lookup.resolve(session, models.Port, port_ref))
    return notify.Outcome(fip, notes)


def associate(session: Session, settings: Settings, fip_ref: str,
              port_ref: str) -> notify.Outcome:
    fip = lookup.resolve_floatingip(session, fip_ref)
    port = lookup.resolve(session, models.Port, port_ref)
    if fip.fixed_port_id == port.id:
        return notify.Outcome(fip)
    return notify.Outcome(fip, _attach(session, settings, fip, port))


def disassociate(session: Session, fip_ref: str) -> notify.Outcome:
    fip = lookup.resolve_floatingip(session, fip_ref)
    if fip.fixed_port_id is None:
        return notify.Outcome(fip)
    return notify.Outcome(fip, _detach(session, fip))


def delete(session: Session, fip_ref: str) -> notify.Outcome:
    fip = lookup.resolve_floatingip(session, fip_ref)
    notes = _detach(session, fip) if fip.fixed_port_id else []
    floating_port = session.get(models.Port, fip.floating_port_id)
    session.delete(fip)
    session.flush()
    if floating_port is not None:
        notes += ports.delete_port(session, floating_port)
    return notify.Outcome({"id": fip.id}, notes)


def set_statuses(session: Session, router_id: str, statuses: dict[str, str]) -> None:
    """``update_floatingip_statuses``: the agent reports what it applied, per floating IP."""
    valid = {protocol.FLOATINGIP_STATUS_ACTIVE, protocol.FLOATINGIP_STATUS_DOWN,
             protocol.FLOATINGIP_STATUS_ERROR}
    if not isinstance(statuses, dict):
        raise BadRequest("fip_statuses must be a dict of floating IP id to status")
    for fip_id, status in statuses.items():
        if status not in valid:
            raise BadRequest(f"fip_statuses[{fip_id}] = {status!r} is not one of "
                             f"{sorted(valid)}")
    for fip_id, status in statuses.items():
        fip = session.get(models.FloatingIP, fip_id)
        if fip is not None and fip.status != status:
            fip.status = status
            fip.revision_number += 1
