"""Ports as rows: creating and removing them, and what agents hear about their addresses.

Used by every other operation (VM ports, router ports, floating IP ports). The ARP and
l2population messages derive from a port here, so they read the same whoever made the port.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from dvr_agent.rpc import protocol
from dvr_agent.server.db import models
from dvr_agent.server.domain import agents, macs
from dvr_agent.server.domain import notifications as notify
from dvr_agent.server.domain.settings import Settings
from dvr_agent.server.errors import Conflict

FLOOD_ENTRY = ["00:00:00:00:00:00", "0.0.0.0"]  # l2pop's "send broadcasts here too"
STATUS_ACTIVE, STATUS_DOWN = "ACTIVE", "DOWN"


def new_port(session: Session, settings: Settings, network: models.Network, *, owner: str,
             device_id: str = "", host: str = "", name: str = "",
             mac: str | None = None, project_id: str = "") -> models.Port:
    """A port row on ``network`` with a MAC (the given one, or a fresh one under base_mac)."""
    if mac is None:
        mac = macs.allocate_port_mac(session, network.id, settings.base_mac)
    else:
        mac = macs.canonical_mac(mac)
        taken = session.scalar(select(models.Port.id).where(
            models.Port.network_id == network.id, models.Port.mac_address == mac))
        if taken is not None:
            raise Conflict(f"MAC address {mac} is already in use on network {network.id} "
                           f"(port {taken})")
    port = models.Port(network_id=network.id, mac_address=mac, device_owner=owner,
                       device_id=device_id, binding_host=host, name=name,
                       project_id=project_id, status=STATUS_DOWN)
    session.add(port)
    session.flush()
    return port


def is_vm_port(port: models.Port) -> bool:
    return port.device_owner.startswith(protocol.DEVICE_OWNER_COMPUTE_PREFIX)


def subnet_ids(port: models.Port) -> list[str]:
    return sorted({ip.subnet_id for ip in port.fixed_ips})


def active_on_host(session: Session, network_id: str, host: str,
                   excluding: Iterable[str] = ()) -> bool:
    """Does ``host`` have another active port on the network (l2pop's flooding condition)?"""
    skip = set(excluding)
    ports = session.scalars(select(models.Port.id).where(
        models.Port.network_id == network_id, models.Port.binding_host == host,
        models.Port.status == STATUS_ACTIVE))
    if any(p not in skip for p in ports):
        return True
    distributed = session.scalars(
        select(models.DistributedPortBinding.port_id)
        .join(models.Port, models.Port.id == models.DistributedPortBinding.port_id)
        .where(models.Port.network_id == network_id,
               models.DistributedPortBinding.host == host,
               models.DistributedPortBinding.status == STATUS_ACTIVE))
    return any(p not in skip for p in distributed)


def fdb_entries(network: models.Network, tunnel_ip: str,
                entries: list[list[str]]) -> dict[str, dict]:
    """l2population's fdb_entries payload for one network and one agent's tunnel IP."""
    return {network.id: {"network_type": network.network_type,
                         "ports": {tunnel_ip: entries},
                         "segment_id": network.segmentation_id}}


def unicast_entries(port: models.Port) -> list[list[str]]:
    if port.device_owner == protocol.DEVICE_OWNER_DVR_INTERFACE:
        return []  # the same MAC on every host: never a unicast FDB entry
    return [[port.mac_address, ip.ip_address] for ip in port.fixed_ips]


def fdb_removal(session: Session, port: models.Port, host: str) -> list[notify.Notification]:
    """``remove_fdb_entries`` for an active port leaving ``host`` (VXLAN networks only)."""
    network = port.network
    tunnel_ip = agents.tunnel_ip_of(session, host)
    if network.network_type != "vxlan" or not tunnel_ip:
        return []
    entries = unicast_entries(port)
    if not active_on_host(session, network.id, host, excluding=[port.id]):
        entries = [FLOOD_ENTRY, *entries]
    return [notify.fdb_entries(False, fdb_entries(network, tunnel_ip, entries))] if entries \
        else []


def delete_port(session: Session, port: models.Port) -> list[notify.Notification]:
    """Remove a port row (its addresses go with it); tell agents it is gone."""
    notes: list[notify.Notification] = []
    if port.status == STATUS_ACTIVE and port.binding_host:
        notes += fdb_removal(session, port, port.binding_host)
    session.delete(port)
    session.flush()
    notes.append(notify.port_delete(port.id))
    return notes


def routers_ports_by_type(session: Session, router_ids: Iterable[str],
                          ) -> dict[str, dict[str, list[models.Port]]]:
    """router id -> its ports by kind (interfaces, csnat, gateway), oldest first.

    Addresses, subnets and networks come in the same few round trips, for every router at
    once: every payload reads them, and loading them port by port, then router by router,
    was most of ``sync_routers``' time (7.6 s for 1,000 routers; benchmarks/README.md).
    """
    found: dict[str, dict[str, list[models.Port]]] = {}
    ids = sorted(set(router_ids))
    if not ids:
        return found
    rows = session.execute(
        select(models.RouterPort.router_id, models.RouterPort.port_type, models.Port)
        .join(models.Port, models.RouterPort.port_id == models.Port.id)
        .where(models.RouterPort.router_id.in_(ids))
        .options(selectinload(models.Port.fixed_ips).joinedload(models.IPAllocation.subnet),
                 selectinload(models.Port.allowed_address_pairs),
                 joinedload(models.Port.network).selectinload(models.Network.subnets))
        .order_by(models.Port.created_at, models.Port.id))
    for router_id, port_type, port in rows:
        found.setdefault(router_id, {}).setdefault(port_type, []).append(port)
    return found


def router_ports(session: Session, router_id: str, port_type: str) -> list[models.Port]:
    """A router's ports of one kind, oldest first."""
    return list(session.scalars(
        select(models.Port).join(models.RouterPort, models.RouterPort.port_id == models.Port.id)
        .where(models.RouterPort.router_id == router_id, models.RouterPort.port_type == port_type)
        .order_by(models.Port.created_at, models.Port.id)))


def router_gateway_port(session: Session, router_id: str) -> models.Port | None:
    ports = router_ports(session, router_id, protocol.DEVICE_OWNER_ROUTER_GW)
    return ports[0] if ports else None
