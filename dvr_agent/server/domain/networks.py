"""Networks and subnets: tenant VXLAN networks with a VNI, external flat networks on a physnet."""

from __future__ import annotations

import ipaddress

from sqlalchemy import select
from sqlalchemy.orm import Session

from dvr_agent.rpc import protocol
from dvr_agent.server.db import models
from dvr_agent.server.domain import ipam, lookup, ports
from dvr_agent.server.domain import notifications as notify
from dvr_agent.server.domain.settings import Settings
from dvr_agent.server.errors import BadRequest, Conflict

VXLAN, FLAT = "vxlan", "flat"
MTU_MIN = 68  # IPv4's minimum


def _free_vni(session: Session, ranges: tuple[tuple[int, int], ...]) -> int:
    used = set(session.scalars(select(models.Network.segmentation_id).where(
        models.Network.network_type == VXLAN)))
    for low, high in ranges:
        for vni in range(low, high + 1):
            if vni not in used:
                return vni
    raise Conflict("every VNI of vni_ranges is in use")


def check_mtu(settings: Settings, external: bool, mtu: str | int | None) -> int:
    """The network's MTU: the largest its carrier allows (the physnet's, less the VXLAN
    overhead for tenant networks), or a smaller one asked for."""
    largest = settings.global_physnet_mtu if external else settings.vxlan_mtu
    if mtu is None:
        return largest
    try:
        value = int(mtu)
    except (TypeError, ValueError):
        raise BadRequest(f"mtu {mtu!r} is not a number") from None
    if not MTU_MIN <= value <= largest:
        kind = "an external" if external else "a VXLAN"
        raise BadRequest(f"mtu {value} is outside {MTU_MIN}..{largest} for {kind} network "
                         f"(physnet MTU {settings.global_physnet_mtu})")
    return value


def create_network(session: Session, settings: Settings, name: str, *, external: bool = False,
                   physnet: str | None = None, mtu: str | int | None = None
                   ) -> notify.Outcome:
    name = lookup.check_name(name, "network")
    mtu = check_mtu(settings, external, mtu)
    if physnet is not None and not external:
        raise BadRequest("--physnet applies to external networks only")
    if external:
        physnet = physnet or settings.default_physnet
        if not physnet.replace("-", "").replace("_", "").isalnum() or len(physnet) > 64:
            raise BadRequest(f"physnet {physnet!r} must be letters, digits, '-' or '_'")
        taken = session.scalar(select(models.Network.id).where(
            models.Network.physical_network == physnet))
        if taken is not None:
            raise Conflict(f"physnet {physnet} already carries flat network {taken}")
        network = models.Network(name=name, external=True, network_type=FLAT,
                                 physical_network=physnet, mtu=mtu)
    else:
        network = models.Network(name=name, external=False, network_type=VXLAN,
                                 segmentation_id=_free_vni(session, settings.vni_ranges),
                                 mtu=mtu)
    session.add(network)
    session.flush()
    return notify.Outcome(network)


def create_subnet(session: Session, network_ref: str, cidr: str, *, gateway: str | None = None,
                  name: str | None = None) -> notify.Outcome:
    network = lookup.resolve(session, models.Network, network_ref)
    name = lookup.check_name(name, "subnet")
    net = ipam.parse_cidr(cidr)
    if net.num_addresses < 4:
        raise BadRequest(f"{cidr} is too small for a subnet (at least a /30 or /126)")
    for other in network.subnets:
        if ipaddress.ip_network(other.cidr).overlaps(net):
            raise Conflict(f"{net} overlaps subnet {other.id} ({other.cidr}) on network "
                           f"{network.id}")
    subnet = models.Subnet(network_id=network.id, cidr=str(net), ip_version=net.version,
                           name=name, gateway_ip=None)
    subnet.gateway_ip = (ipam.check_in_subnet(subnet, gateway) if gateway
                         else ipam.default_gateway(net))
    session.add(subnet)
    session.flush()
    return notify.Outcome(subnet)


def delete_network(session: Session, network_ref: str) -> notify.Outcome:
    """Delete a network with its subnets; refused while a VM, router or floating IP uses it."""
    network = lookup.resolve(session, models.Network, network_ref)
    in_use = [p for p in session.scalars(select(models.Port).where(
        models.Port.network_id == network.id))
        if p.device_owner != protocol.DEVICE_OWNER_AGENT_GW]
    if in_use:
        owners = sorted({p.device_owner or "unowned" for p in in_use})
        raise Conflict(f"network {network.id} still has {len(in_use)} port(s) "
                       f"({', '.join(owners)}); delete them first")
    notes: list[notify.Notification] = []
    for row in session.scalars(select(models.FipAgentGatewayPort).where(
            models.FipAgentGatewayPort.network_id == network.id)):
        port = session.get(models.Port, row.port_id)
        session.delete(row)
        notes += ports.delete_port(session, port)
    for subnet in list(network.subnets):
        session.delete(subnet)
    session.delete(network)
    session.flush()
    notes.append(notify.network_delete(network.id))
    if network.external:
        notes.append(notify.fipnamespace_delete_on_ext_net(network.id))
    return notify.Outcome({"id": network.id}, notes)
