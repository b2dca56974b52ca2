"""Ports and subnets as neutron-server sends them (router interfaces, gateway and csnat
ports, FIP agent gateway ports, ``get_ports_by_subnet`` entries, device details).

One Port type serves every owner: the fields are the same, and which list a port came
from (``_interfaces``, ``_snat_router_interfaces``, ...) already says what it is for.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from dvr_agent.models import fields as f
from dvr_agent.models.errors import PayloadError, at

MTU_MIN = 68  # the IPv4 minimum; neutron's own lower bound for a network MTU
MTU_MAX = 65535


@dataclass(frozen=True, kw_only=True, slots=True)
class Subnet:
    """A subnet as the L3 plugin attaches it to a port (``subnets`` of a router port)."""

    id: str
    cidr: f.IPNetwork
    gateway_ip: f.IPAddress | None

    @classmethod
    def from_dict(cls, d: Any) -> Subnet:
        cidr = f.field(d, "cidr", f.cidr)
        gateway = f.field(d, "gateway_ip", f.ip, default=None)
        if gateway is not None and gateway.version != cidr.version:
            # Outside the CIDR is allowed (neutron adds an on-link route for it).
            raise PayloadError("gateway_ip", str(gateway), f"IP version differs from {cidr}")
        return cls(id=f.field(d, "id", f.uuid), cidr=cidr, gateway_ip=gateway)


@dataclass(frozen=True, kw_only=True, slots=True)
class FixedIp:
    subnet_id: str
    ip: f.IPAddress
    prefixlen: int | None = None  # the L3 plugin adds it; get_ports_by_subnet does not

    @classmethod
    def from_dict(cls, d: Any) -> FixedIp:
        address = f.field(d, "ip_address", f.ip)
        bits = 32 if address.version == 4 else 128
        return cls(subnet_id=f.field(d, "subnet_id", f.uuid), ip=address,
                   prefixlen=f.field(d, "prefixlen", f.integer(0, bits), default=None))


@dataclass(frozen=True, kw_only=True, slots=True)
class AddressPair:
    """An allowed address pair; ``mac`` None means "the port's own MAC"."""

    network: f.IPNetwork
    mac: str | None

    @classmethod
    def from_dict(cls, d: Any) -> AddressPair:
        return cls(network=f.field(d, "ip_address", f.address_or_cidr),
                   mac=f.field(d, "mac_address", f.unicast_mac, default=None))

    @property
    def single_host(self) -> f.IPAddress | None:
        """The address if the pair names one host (a /32 or /128), else None."""
        if self.network.num_addresses == 1:
            return self.network.network_address
        return None


@dataclass(frozen=True, kw_only=True, slots=True)
class Port:
    id: str
    network_id: str
    mac: str
    device_owner: str = ""
    device_id: str = ""
    fixed_ips: tuple[FixedIp, ...] = ()
    subnets: tuple[Subnet, ...] = ()
    mtu: int | None = None
    host: str | None = None  # binding:host_id; None when unbound
    allowed_address_pairs: tuple[AddressPair, ...] = ()
    admin_state_up: bool = True

    @classmethod
    def from_dict(cls, d: Any) -> Port:
        subnets = f.field(d, "subnets", f.items(Subnet.from_dict), default=())
        fixed_ips = f.field(d, "fixed_ips", f.items(FixedIp.from_dict), default=())
        _check_fixed_ips_in_subnets(fixed_ips, subnets)
        return cls(
            id=f.field(d, "id", f.uuid),
            network_id=f.field(d, "network_id", f.uuid),
            mac=f.field(d, "mac_address", f.unicast_mac),
            device_owner=f.field(d, "device_owner", f.text, default=""),
            device_id=f.field(d, "device_id", f.text, default=""),
            fixed_ips=fixed_ips,
            subnets=subnets,
            mtu=f.field(d, "mtu", f.integer(MTU_MIN, MTU_MAX), default=None),
            host=f.field(d, "binding:host_id", f.optional_host, default=None),
            allowed_address_pairs=f.field(d, "allowed_address_pairs",
                                          f.items(AddressPair.from_dict), default=()),
            admin_state_up=f.field(d, "admin_state_up", f.boolean, default=True),
        )

    def subnet(self, subnet_id: str) -> Subnet | None:
        return next((s for s in self.subnets if s.id == subnet_id), None)

    def ipv4_fixed_ips(self) -> tuple[FixedIp, ...]:
        return tuple(x for x in self.fixed_ips if x.ip.version == 4)

    def interface(self, fixed_ip: FixedIp) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        """The fixed IP with its prefix: the payload's ``prefixlen``, else the subnet's."""
        prefixlen = fixed_ip.prefixlen
        if prefixlen is None:
            subnet = self.subnet(fixed_ip.subnet_id)
            prefixlen = subnet.cidr.prefixlen if subnet else fixed_ip.ip.max_prefixlen
        return ipaddress.ip_interface(f"{fixed_ip.ip}/{prefixlen}")


def _check_fixed_ips_in_subnets(fixed_ips: tuple[FixedIp, ...],
                                subnets: tuple[Subnet, ...]) -> None:
    """A fixed IP outside the subnet it names would put a wrong address on a device."""
    by_id = {s.id: s for s in subnets}
    for i, fixed in enumerate(fixed_ips):
        subnet = by_id.get(fixed.subnet_id)
        if subnet is None:
            continue
        with at("fixed_ips"), at(i):
            if fixed.ip not in subnet.cidr:
                raise PayloadError("ip_address", str(fixed.ip), f"not in subnet {subnet.cidr}")
            if fixed.prefixlen is not None and fixed.prefixlen != subnet.cidr.prefixlen:
                raise PayloadError("prefixlen", fixed.prefixlen,
                                   f"differs from subnet {subnet.cidr}")


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceDetails:
    """One entry of ``get_devices_details_list_and_failed_devices``: a VIF the server knows.

    Carries the network's segmentation too, which is how the OVS side learns VNIs.
    """

    port_id: str
    network_id: str
    mac: str
    device_owner: str
    fixed_ips: tuple[FixedIp, ...]
    network_type: str
    segmentation_id: int | None
    physical_network: str | None
    mtu: int | None
    admin_state_up: bool
    allowed_address_pairs: tuple[AddressPair, ...] = ()

    @classmethod
    def from_dict(cls, d: Any) -> DeviceDetails:
        return cls(
            port_id=f.field(d, "port_id", f.uuid),
            network_id=f.field(d, "network_id", f.uuid),
            mac=f.field(d, "mac_address", f.unicast_mac),
            device_owner=f.field(d, "device_owner", f.text, default=""),
            fixed_ips=f.field(d, "fixed_ips", f.items(FixedIp.from_dict), default=()),
            network_type=f.field(d, "network_type", f.text),
            segmentation_id=f.field(d, "segmentation_id", f.integer(0, 2**32 - 1),
                                    default=None),
            physical_network=f.field(d, "physical_network", f.text, default=None),
            mtu=f.field(d, "mtu", f.integer(MTU_MIN, MTU_MAX), default=None),
            admin_state_up=f.field(d, "admin_state_up", f.boolean, default=True),
            allowed_address_pairs=f.field(d, "allowed_address_pairs",
                                          f.items(AddressPair.from_dict), default=()),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class DevicesDetails:
    """The whole reply: details of known devices, ids of unknown and failed ones.

    Neutron answers ``{"device": id}`` alone for a port it does not know; that is not
    an error, just a device to leave alone.
    """

    devices: tuple[DeviceDetails, ...]
    unknown: tuple[str, ...]
    failed: tuple[str, ...]

    @classmethod
    def from_dict(cls, d: Any) -> DevicesDetails:
        raw = f.field(d, "devices", f.items(f.mapping))
        known, unknown = [], []
        for i, entry in enumerate(raw):
            with at("devices"), at(i):
                if "port_id" in entry:
                    known.append(DeviceDetails.from_dict(entry))
                else:
                    unknown.append(f.field(entry, "device", f.text))
        return cls(devices=tuple(known), unknown=tuple(unknown),
                   failed=f.field(d, "failed_devices", f.items(f.text), default=()))
