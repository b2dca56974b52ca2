"""A router's extra routes (``dvrctl router add-route ROUTER CIDR NEXTHOP``).

Checked as Neutron checks them (``_validate_routes``): the destination is a network, the
next hop an address of the same family on a subnet the router is attached to and not one
of the router's own addresses. Every host of the router hears ``routers_updated``; its
agent puts each route where the next hop is reachable: the qrouter namespaces for next
hops on internal subnets, the snat namespace for both kinds.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy.orm import Session

from dvr_agent.rpc import protocol
from dvr_agent.server.db import models
from dvr_agent.server.domain import agents, lookup, ports, scheduler
from dvr_agent.server.domain import notifications as notify
from dvr_agent.server.errors import BadRequest, Conflict, NotFound

MAX_ROUTES = 30  # neutron's max_routes


def _destination(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        if "/" not in cidr:
            raise ValueError
        network = ipaddress.ip_network(cidr, strict=False)
    except (ValueError, TypeError):
        raise BadRequest(f"destination {cidr!r} is not a CIDR (NETWORK/PREFIX)") from None
    if ipaddress.ip_interface(cidr).ip != network.network_address:
        raise BadRequest(f"destination {cidr!r} has host bits set; did you mean {network}?")
    return network


def _nexthop(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(value)
    except (ValueError, TypeError):
        raise BadRequest(f"nexthop {value!r} is not an IP address") from None


def _router_addresses(session: Session, router: models.Router) -> tuple[set[str], list]:
    """The router's own addresses, and the subnets (as networks) it is attached to."""
    own, subnets = set(), []
    for kind in (protocol.DEVICE_OWNER_DVR_INTERFACE, protocol.DEVICE_OWNER_ROUTER_GW):
        for port in ports.router_ports(session, router.id, kind):
            for ip in port.fixed_ips:
                own.add(ip.ip_address)
                subnets.append(ipaddress.ip_network(ip.subnet.cidr))
    return own, subnets


def check(session: Session, router: models.Router, destination: str,
          nexthop: str) -> tuple[str, str]:
    """The route in canonical form, or BadRequest naming what is wrong with it."""
    dest, hop = _destination(destination), _nexthop(nexthop)
    if dest.version != hop.version:
        raise BadRequest(f"nexthop {hop} and destination {dest} are of different IP versions")
    own, subnets = _router_addresses(session, router)
    if str(hop) in own:
        raise BadRequest(f"nexthop {hop} is an address of router {router.id} itself")
    if not any(hop in subnet for subnet in subnets):
        attached = ", ".join(sorted(map(str, subnets))) or "none"
        raise BadRequest(f"nexthop {hop} is not on a subnet of router {router.id} "
                         f"(attached: {attached})")
    return str(dest), str(hop)


def _changed(session: Session, router: models.Router) -> list[notify.Notification]:
    router.revision_number += 1
    session.flush()
    hosts = scheduler.hosting(session, [router.id])
    return notify.plan_router_notifications(hosts, hosts, l3_hosts=agents.l3_hosts(session))


def add(session: Session, router_ref: str, destination: str, nexthop: str) -> notify.Outcome:
    router = lookup.resolve(session, models.Router, router_ref)
    dest, hop = check(session, router, destination, nexthop)
    if any((r.destination, r.nexthop) == (dest, hop) for r in router.routes):
        raise Conflict(f"router {router.id} already has the route {dest} via {hop}")
    if len(router.routes) >= MAX_ROUTES:
        raise Conflict(f"router {router.id} has {MAX_ROUTES} routes already (the maximum)")
    router.routes.append(models.RouterRoute(router_id=router.id, destination=dest,
                                            nexthop=hop))
    return notify.Outcome(router, _changed(session, router))


def remove(session: Session, router_ref: str, destination: str,
           nexthop: str) -> notify.Outcome:
    router = lookup.resolve(session, models.Router, router_ref)
    dest, hop = str(_destination(destination)), str(_nexthop(nexthop))
    route = next((r for r in router.routes if (r.destination, r.nexthop) == (dest, hop)),
                 None)
    if route is None:
        raise NotFound(f"router {router.id} has no route {dest} via {hop}")
    router.routes.remove(route)
    return notify.Outcome(router, _changed(session, router))


def needed_by(router: models.Router, cidr: str) -> list[str]:
    """Routes whose next hop lies in ``cidr``: they keep an interface on it attached."""
    network = ipaddress.ip_network(cidr)
    return [f"{r.destination} via {r.nexthop}" for r in router.routes
            if ipaddress.ip_address(r.nexthop) in network]
