"""IP address management: subnets' CIDRs and gateways, fixed IPs of ports.

Addresses are handed out lowest-free-first from the subnet's one allocation pool (every host
address but the gateway): predictable for operators and tests, where Neutron draws at
random. The ``ipallocations`` primary key (subnet, address) is what makes two concurrent
allocations of one address impossible; the loser's transaction is retried.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import select
from sqlalchemy.orm import Session

from dvr_agent.server.db import models
from dvr_agent.server.errors import BadRequest, Conflict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_cidr(cidr: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise BadRequest(f"{cidr!r} is not a valid CIDR: {exc}") from None


def parse_ip(value: str, what: str = "IP address") -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise BadRequest(f"{value!r} is not a valid {what}") from None


def default_gateway(net: IPNetwork) -> str:
    """The first host address, Neutron's default gateway."""
    return str(next(net.hosts()))


def pool_bounds(subnet: models.Subnet) -> tuple[int, int]:
    """First and last allocatable address (as ints): all host addresses of the CIDR."""
    net = ipaddress.ip_network(subnet.cidr)
    if net.num_addresses <= 2:
        return int(net.network_address), int(net.broadcast_address)
    first = int(net.network_address) + 1
    last = int(net.broadcast_address) - (1 if net.version == 4 else 0)
    return first, last


def check_in_subnet(subnet: models.Subnet, address: str) -> str:
    """``address`` canonical, if it is a usable address of the subnet; BadRequest otherwise."""
    ip = ipaddress.ip_address(parse_ip(address))
    net = ipaddress.ip_network(subnet.cidr)
    if ip not in net or (ip in (net.network_address, net.broadcast_address) and net.version == 4):
        raise BadRequest(f"{address} is not a usable address of subnet {subnet.id} "
                         f"({subnet.cidr})")
    return str(ip)


def used_addresses(session: Session, subnet_id: str) -> set[str]:
    return set(session.scalars(select(models.IPAllocation.ip_address)
                               .where(models.IPAllocation.subnet_id == subnet_id)))


def allocate(session: Session, port: models.Port, subnet: models.Subnet,
             address: str | None = None) -> models.IPAllocation:
    """Give ``port`` an address on ``subnet``: the one asked for, or the lowest free one."""
    used = used_addresses(session, subnet.id)
    if address is not None:
        address = check_in_subnet(subnet, address)
        if address in used:
            raise Conflict(f"IP address {address} is already in use on subnet {subnet.id}")
    else:
        address = _lowest_free(subnet, used)
    allocation = models.IPAllocation(subnet_id=subnet.id, ip_address=address,
                                     port_id=port.id, network_id=subnet.network_id)
    port.fixed_ips.append(allocation)
    return allocation


def _lowest_free(subnet: models.Subnet, used: set[str]) -> str:
    first, last = pool_bounds(subnet)
    taken = {int(ipaddress.ip_address(a)) for a in used}
    if subnet.gateway_ip:
        taken.add(int(ipaddress.ip_address(subnet.gateway_ip)))
    candidate = first
    while candidate <= last:
        if candidate not in taken:
            return str(ipaddress.ip_address(candidate))
        candidate += 1
    raise Conflict(f"no free IP address left on subnet {subnet.id} ({subnet.cidr})")


def allocate_on_network(session: Session, port: models.Port,
                        network: models.Network) -> models.IPAllocation:
    """An address from the first IPv4 subnet of ``network`` that has one free."""
    subnets = [s for s in network.subnets if s.ip_version == 4] or list(network.subnets)
    if not subnets:
        raise Conflict(f"network {network.id} has no subnet to take an address from")
    last_error: Conflict | None = None
    for subnet in subnets:
        try:
            return allocate(session, port, subnet)
        except Conflict as exc:
            last_error = exc
    assert last_error is not None
    raise last_error
