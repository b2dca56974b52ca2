"""Routers and floating IPs as ``sync_routers`` returns them for one host."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from dvr_agent.models import fields as f
from dvr_agent.models.errors import PayloadError
from dvr_agent.models.ports import Port


@dataclass(frozen=True, kw_only=True, slots=True)
class FloatingIp:
    """A floating IP F on fixed IP P, with where the server says it is bound.

    ``host``/``dest_host`` say which host routes it (the VM's binding host, or a live
    migration's destination); ``dvr_snat_bound`` marks one the snat host centralises.
    """

    id: str
    floating_ip: ipaddress.IPv4Address
    fixed_ip: ipaddress.IPv4Address
    floating_network_id: str
    router_id: str
    port_id: str
    host: str | None = None
    dest_host: str | None = None
    dvr_snat_bound: bool = False

    @classmethod
    def from_dict(cls, d: Any) -> FloatingIp:
        return cls(
            id=f.field(d, "id", f.uuid),
            floating_ip=f.field(d, "floating_ip_address", f.ipv4),
            fixed_ip=f.field(d, "fixed_ip_address", f.ipv4),
            floating_network_id=f.field(d, "floating_network_id", f.uuid),
            router_id=f.field(d, "router_id", f.uuid),
            port_id=f.field(d, "port_id", f.uuid),
            host=f.field(d, "host", f.optional_host, default=None),
            dest_host=f.field(d, "dest_host", f.optional_host, default=None),
            dvr_snat_bound=f.field(d, "dvr_snat_bound", f.boolean, default=False),
        )

    def bound_to(self, host: str) -> bool:
        """True if ``host`` routes this FIP itself (distributed, not centralised)."""
        return not self.dvr_snat_bound and host in (self.host, self.dest_host)


@dataclass(frozen=True, kw_only=True, slots=True)
class ExtraRoute:
    destination: f.IPNetwork
    nexthop: f.IPAddress

    @classmethod
    def from_dict(cls, d: Any) -> ExtraRoute:
        destination = f.field(d, "destination", f.cidr)
        nexthop = f.field(d, "nexthop", f.ip)
        if nexthop.version != destination.version:
            raise PayloadError("nexthop", str(nexthop), "IP version differs from destination")
        return cls(destination=destination, nexthop=nexthop)


@dataclass(frozen=True, kw_only=True, slots=True)
class Router:
    """A router as one host's agent receives it: interfaces, gateway, FIPs bound here."""

    id: str
    admin_state_up: bool = True
    distributed: bool = True
    enable_snat: bool = True
    interfaces: tuple[Port, ...] = ()
    gw_port: Port | None = None
    gw_port_host: str | None = None
    snat_interfaces: tuple[Port, ...] = ()
    floating_ips: tuple[FloatingIp, ...] = ()
    fip_agent_interfaces: tuple[Port, ...] = ()
    routes: tuple[ExtraRoute, ...] = ()

    @classmethod
    def from_dict(cls, d: Any) -> Router:
        router_id = f.field(d, "id", f.uuid)
        floating_ips = f.field(d, "_floatingips", f.items(FloatingIp.from_dict), default=())
        for i, fip in enumerate(floating_ips):
            if fip.router_id != router_id:
                raise PayloadError(f"_floatingips[{i}].router_id", fip.router_id,
                                   f"not this router {router_id}")
        gw_port = f.field(d, "gw_port", Port.from_dict, default=None)
        if gw_port is not None and not gw_port.fixed_ips:
            raise PayloadError("gw_port.fixed_ips", [], "a gateway port without addresses")
        return cls(
            id=router_id,
            admin_state_up=f.field(d, "admin_state_up", f.boolean, default=True),
            distributed=f.field(d, "distributed", f.boolean, default=True),
            enable_snat=f.field(d, "enable_snat", f.boolean, default=True),
            interfaces=f.field(d, "_interfaces", f.items(Port.from_dict), default=()),
            gw_port=gw_port,
            gw_port_host=f.field(d, "gw_port_host", f.optional_host, default=None),
            snat_interfaces=f.field(d, "_snat_router_interfaces", f.items(Port.from_dict),
                                    default=()),
            floating_ips=floating_ips,
            fip_agent_interfaces=f.field(d, "_floatingip_agent_interfaces",
                                         f.items(Port.from_dict), default=()),
            routes=f.field(d, "routes", f.items(ExtraRoute.from_dict), default=()),
        )

    @property
    def external_network_id(self) -> str | None:
        return self.gw_port.network_id if self.gw_port else None

    def subnet_ids(self) -> frozenset[str]:
        """The subnets this router has an interface on (where its ARP tables live)."""
        return frozenset(x.subnet_id for p in self.interfaces for x in p.fixed_ips)

    def network_ids(self) -> frozenset[str]:
        return frozenset(p.network_id for p in self.interfaces)
