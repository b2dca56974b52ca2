"""The OVS agent's side: device details, ports going up and down, and DVR port bindings.

``update_device_list(devices_up=[port])`` is where a port becomes ACTIVE and l2population
tells every agent where its MAC lives (``add_fdb_entries``, with the flooding entry when it
is the host's first active port on the network), as in the captures of neutron-server.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from dvr_agent.rpc import protocol
from dvr_agent.server.db import models
from dvr_agent.server.domain import address_pairs, agents, ports
from dvr_agent.server.domain import notifications as notify

_DEVICE_PREFIXES = ("tap", "qr-", "sg-", "qg-", "fg-")


def find_port(session: Session, device: str) -> models.Port | None:
    """A port by id, or by the id prefix in a device name (``tap1a2b3c4d-5e``, ``qr-...``)."""
    if not isinstance(device, str) or not device:
        return None
    port = session.get(models.Port, device)
    if port is not None:
        return port
    prefix = next((device[len(p):] for p in _DEVICE_PREFIXES if device.startswith(p)), device)
    if len(prefix) < 8:
        return None
    found = list(session.scalars(select(models.Port).where(
        models.Port.id.startswith(prefix)).limit(2)))
    return found[0] if len(found) == 1 else None


PRELOAD_CHUNK = 500  # port ids per query: well within every database's parameter limit


def devices_details(session: Session, devices: list[Any], host: str | None,
                    ) -> list[dict[str, Any]]:
    """``device_details`` of each device, the ports named by id loaded first in a few queries.

    Loaded one by one, each port cost four queries (itself, its network, addresses and
    pairs): an agent starting with 300 routers asks for one port of each of its 585
    networks, 0.6 s of the server (benchmarks/README.md, fix 22).
    """
    ids = sorted({d for d in devices if isinstance(d, str) and d})
    loaded = [port for i in range(0, len(ids), PRELOAD_CHUNK)
              for port in session.scalars(
                  select(models.Port).where(models.Port.id.in_(ids[i:i + PRELOAD_CHUNK]))
                  .options(joinedload(models.Port.network),
                           selectinload(models.Port.fixed_ips),
                           selectinload(models.Port.allowed_address_pairs)))]
    details = [device_details(session, device, host) for device in devices]
    del loaded  # (held until here: the session keeps loaded objects only weakly)
    return details


def device_details(session: Session, device: str, host: str | None) -> dict[str, Any]:
    """One entry of ``get_devices_details_list_and_failed_devices`` (capture shape)."""
    port = find_port(session, device)
    if port is None:
        return {"device": device}
    network = port.network
    return {"admin_state_up": port.admin_state_up,
            "allowed_address_pairs": address_pairs.as_dicts(port),
            "device": device, "device_owner": port.device_owner,
            "fixed_ips": [{"ip_address": ip.ip_address, "subnet_id": ip.subnet_id}
                          for ip in port.fixed_ips],
            "mac_address": port.mac_address, "mtu": network.mtu, "network_id": network.id,
            "network_type": network.network_type,
            "physical_network": network.physical_network, "port_id": port.id,
            "port_security_enabled": ports.is_vm_port(port), "profile": {},
            "propagate_uplink_status": False, "qos_network_policy_id": None,
            "qos_policy_id": None, "segmentation_id": network.segmentation_id}


def _bound_here(session: Session, port: models.Port, host: str,
                ) -> models.Port | models.DistributedPortBinding | None:
    """The object whose status the host may set: the port, or its DVR binding on the host."""
    if port.device_owner == protocol.DEVICE_OWNER_DVR_INTERFACE:
        return session.get(models.DistributedPortBinding, (port.id, host))
    if port.binding_host in ("", host):
        return port
    return None


def set_device_status(session: Session, device: str, host: str,
                      up: bool) -> tuple[bool, list[notify.Notification]]:
    """Mark a device ACTIVE/DOWN as ``host`` reports it: ``(known, notifications)``."""
    port = find_port(session, device)
    if port is None:
        return False, []
    target = _bound_here(session, port, host)
    if target is None:
        return False, []
    status = ports.STATUS_ACTIVE if up else ports.STATUS_DOWN
    if target.status == status:
        return True, []
    network = port.network
    tunnel_ip = agents.tunnel_ip_of(session, host)
    notes: list[notify.Notification] = []
    if not up:
        notes = ports.fdb_removal(session, port, host)
    elif network.network_type == "vxlan" and tunnel_ip:
        entries = ports.unicast_entries(port)
        first = not ports.active_on_host(session, network.id, host, excluding=[port.id])
        if first:
            entries = [ports.FLOOD_ENTRY, *entries]
            notes += _existing_fdb_for_host(session, network, host)
        if entries:
            notes.insert(0, notify.fdb_entries(
                True, ports.fdb_entries(network, tunnel_ip, entries)))
    target.status = status
    if isinstance(target, models.Port):
        target.revision_number += 1
    session.flush()
    return True, notes


def _existing_fdb_for_host(session: Session, network: models.Network,
                           host: str) -> list[notify.Notification]:
    """A host's first port on a network: tell it where every other agent's ports are."""
    by_ip: dict[str, list[list[str]]] = {}
    active = session.scalars(select(models.Port).where(
        models.Port.network_id == network.id, models.Port.status == ports.STATUS_ACTIVE,
        models.Port.binding_host != host, models.Port.binding_host != ""))
    for port in active:
        ip = agents.tunnel_ip_of(session, port.binding_host)
        if ip:
            by_ip.setdefault(ip, [ports.FLOOD_ENTRY]).extend(ports.unicast_entries(port))
    if not by_ip:
        return []
    entries = {network.id: {"network_type": network.network_type, "ports": by_ip,
                            "segment_id": network.segmentation_id}}
    return [notify.fdb_entries(True, entries, host=host)]


def bind_distributed(session: Session, router_ids: list[str], host: str) -> None:
    """Bind the routers' DVR interface ports on ``host`` (Neutron does it in sync_routers)."""
    for router_id in router_ids:
        if not session.get(models.Router, router_id).distributed:
            continue  # a legacy router's interfaces are bound to its host like any port
        for port in ports.router_ports(session, router_id, protocol.DEVICE_OWNER_DVR_INTERFACE):
            if session.get(models.DistributedPortBinding, (port.id, host)) is None:
                session.add(models.DistributedPortBinding(port_id=port.id, host=host,
                                                          router_id=router_id))
    session.flush()


def missing_distributed_bindings(session: Session, router_ids: list[str], host: str) -> bool:
    """Has any DVR interface of these routers no binding on ``host`` yet? (one query)"""
    if not router_ids:
        return False
    unbound = session.scalar(
        select(models.RouterPort.port_id)
        .outerjoin(models.DistributedPortBinding,
                   (models.DistributedPortBinding.port_id == models.RouterPort.port_id)
                   & (models.DistributedPortBinding.host == host))
        .join(models.Router, models.Router.id == models.RouterPort.router_id)
        .where(models.RouterPort.router_id.in_(router_ids),
               models.Router.distributed.is_(True),
               models.RouterPort.port_type == protocol.DEVICE_OWNER_DVR_INTERFACE,
               models.DistributedPortBinding.port_id.is_(None)).limit(1))
    return unbound is not None


def unbind_distributed(session: Session, router_id: str, host: str) -> None:
    """Drop the router's DVR bindings on a host that no longer hosts it."""
    for binding in session.scalars(select(models.DistributedPortBinding).where(
            models.DistributedPortBinding.router_id == router_id,
            models.DistributedPortBinding.host == host)):
        session.delete(binding)
    session.flush()
