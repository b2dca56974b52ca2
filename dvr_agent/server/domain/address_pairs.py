"""Allowed address pairs (VIPs) and the static ARP entries a port's addresses call for.

A DVR router cannot ARP across hosts, so every qrouter holds a permanent entry for every
address a bound port answers for: its fixed IPs and, as Neutron's DVR does, each
single-host allowed address pair inside one of its network's subnets, with the pair's
MAC (release note use-correct-aap-mac-for-dvr-arp). Two ports may claim one VIP (the
VRRP pair of a keepalived setup, sharing a virtual MAC): an entry is deleted only when
no bound port claims that address any more, otherwise the remaining claim is re-sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from dvr_agent.rpc import protocol
from dvr_agent.server.db import models
from dvr_agent.server.domain import macs, scheduler
from dvr_agent.server.domain import notifications as notify
from dvr_agent.server.errors import BadRequest

MAX_PAIRS = 10  # neutron's max_allowed_address_pair

Entry = tuple[str, str, str]  # (ip, mac, subnet id)


def parse_pairs(port: models.Port, texts: Iterable[str]) -> list[tuple[str, str]]:
    """``["10.0.0.5", "10.0.0.6,fa:16:3e:00:00:01"]`` -> [(ip or CIDR, MAC)], checked.

    A pair without a MAC takes the port's own, as Neutron stores it.
    """
    pairs: list[tuple[str, str]] = []
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("--allowed-address needs IP[,MAC]")
        address, _, mac = (part.strip() for part in text.partition(","))
        try:
            network = ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise BadRequest(f"allowed address {address!r} is not an IP address or CIDR") \
                from None
        if "/" in address and network.network_address != ipaddress.ip_interface(
                address).ip:
            raise BadRequest(f"allowed address {address!r} has host bits set; use "
                             f"{network}")
        ip = str(network.network_address) if network.num_addresses == 1 else str(network)
        mac = macs.canonical_mac(mac) if mac else port.mac_address
        if int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
            raise BadRequest(f"allowed address {text!r}: {mac} is not a unicast MAC")
        if (ip, mac) == (_own(port), port.mac_address) or (ip, mac) in pairs:
            raise BadRequest(f"allowed address {text!r} repeats the port's own address or "
                             "another pair")
        pairs.append((ip, mac))
    if len(pairs) > MAX_PAIRS:
        raise BadRequest(f"at most {MAX_PAIRS} allowed addresses per port")
    return pairs


def _own(port: models.Port) -> str | None:
    return port.fixed_ips[0].ip_address if port.fixed_ips else None


def _subnet_of(network: models.Network, ip: str) -> models.Subnet | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:  # a CIDR pair: no single neighbour to write
        return None
    return next((s for s in network.subnets
                 if address in ipaddress.ip_network(s.cidr)), None)


def entries(port: models.Port) -> list[Entry]:
    """What ``port`` answers for on its subnets: fixed IPs, then single-host pairs.

    Unbound ports answer for nothing (``get_ports_by_subnet`` skips them too): an unbound
    VIP port only reserves its address, the VMs' pairs carry the entry.
    """
    if port.device_owner in protocol.ROUTER_INTERFACE_OWNERS or not port.binding_host:
        return []
    found = [(ip.ip_address, port.mac_address, ip.subnet_id) for ip in port.fixed_ips]
    for pair in port.allowed_address_pairs:
        subnet = _subnet_of(port.network, pair.ip_address)
        if subnet is not None:
            found.append((pair.ip_address, pair.mac_address, subnet.id))
    return found


def _claim(session: Session, network_id: str, ip: str,
           excluding: str) -> tuple[str, str] | None:
    """(mac, subnet) of another bound port on the network that answers for ``ip``."""
    candidates = session.scalars(select(models.Port).where(
        models.Port.network_id == network_id, models.Port.id != excluding,
        models.Port.binding_host != "").order_by(models.Port.id))
    for other in candidates:
        for entry_ip, mac, subnet_id in entries(other):
            if entry_ip == ip:
                return mac, subnet_id
    return None


def notifications(session: Session, port: models.Port, add: Iterable[Entry],
                  remove: Iterable[Entry]) -> list[notify.Notification]:
    """``add_arp_entry`` / ``del_arp_entry`` for every router on each entry's subnet.

    A removed entry that another bound port still claims is re-sent with that claim, so
    the static entry stays (with the right MAC) instead of being deleted.
    """
    add, remove = list(add), list(remove)
    planned: list[tuple[bool, Entry]] = [(True, e) for e in add]
    for ip, mac, subnet_id in remove:
        other = _claim(session, port.network_id, ip, port.id)
        planned.append((True, (ip, *other)) if other else (False, (ip, mac, subnet_id)))
    routers = scheduler.routers_on_subnets(session, {e[2] for _, e in planned})
    return [notify.arp_entry(is_add, router_id, ip, mac, subnet_id)
            for is_add, (ip, mac, subnet_id) in planned
            for router_id in routers.get(subnet_id, ())]


def port_notifications(session: Session, port: models.Port,
                       add: bool) -> list[notify.Notification]:
    """The entries of a port that appears (``add``) or goes."""
    mine = entries(port)
    return notifications(session, port, mine if add else [], [] if add else mine)


def replace(session: Session, port: models.Port,
            pairs: list[tuple[str, str]]) -> list[notify.Notification]:
    """Give the port exactly ``pairs``; the ARP changes that follow for bound ports."""
    before = set(entries(port))
    port.allowed_address_pairs = [models.AllowedAddressPair(port_id=port.id, ip_address=ip,
                                                            mac_address=mac)
                                  for ip, mac in pairs]
    port.revision_number += 1
    session.flush()
    after = set(entries(port))
    return notifications(session, port, sorted(after - before), sorted(before - after))


def as_dicts(port: models.Port) -> list[dict[str, str]]:
    """The ``allowed_address_pairs`` field of port payloads."""
    return [{"ip_address": p.ip_address, "mac_address": p.mac_address}
            for p in port.allowed_address_pairs]
