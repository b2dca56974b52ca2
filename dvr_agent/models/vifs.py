"""A VIF on br-int that somebody else plugged (a VM's tap), as the agent knows it.

It joins what OVSDB says (port name, ofport) with what the server says
(``get_devices_details_list_and_failed_devices``): the compiler needs both to tag the
port and to write the DVR delivery flows to it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from dvr_agent import names
from dvr_agent.models.errors import PayloadError
from dvr_agent.models.ports import AddressPair, DeviceDetails, FixedIp

OFPORT_MAX = 0xFEFF  # OpenFlow port numbers above this are reserved


@dataclass(frozen=True, kw_only=True, slots=True)
class LocalVif:
    port_name: str
    port_id: str
    mac: str
    network_id: str
    fixed_ips: tuple[FixedIp, ...]
    device_owner: str
    allowed_address_pairs: tuple[AddressPair, ...] = ()

    def __post_init__(self) -> None:
        if not names.valid_device_name(self.port_name):
            raise PayloadError("port_name", self.port_name, "not a device name")

    @classmethod
    def from_details(cls, port_name: str, details: DeviceDetails) -> LocalVif:
        return cls(port_name=port_name, port_id=details.port_id, mac=details.mac,
                   network_id=details.network_id, fixed_ips=details.fixed_ips,
                   device_owner=details.device_owner,
                   allowed_address_pairs=details.allowed_address_pairs)

    def pair_macs_in(self, subnet: ipaddress.IPv4Network | ipaddress.IPv6Network
                     ) -> frozenset[str]:
        """MACs other than its own that the VIF answers with on ``subnet``: those of its
        single-host allowed address pairs there (a VIP's virtual MAC)."""
        return frozenset(p.mac for p in self.allowed_address_pairs
                         if p.mac not in (None, self.mac) and p.single_host is not None
                         and p.single_host.version == subnet.version
                         and p.single_host in subnet)

    def ips_in(self, subnet_id: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address,
                                                ...]:
        return tuple(x.ip for x in self.fixed_ips if x.subnet_id == subnet_id)
