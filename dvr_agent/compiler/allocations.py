"""Addresses, tables and MACs the compiler derives from the facts' allocations.

Everything here is a pure function of an allocated number or an id, so the same facts
give the same values on every compile and after a restart.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from dvr_agent.facts.allocations import link_local_pair

FIP_ROUTER_TABLE = 16  # neutron FIP_RT_TBL: qrouter table with the default via fpr
# The qrouter's own packets (ICMP errors) to table 16: after the FIP rules (32768..72767)
# and Neutron's address-scope fast path (80000), before any SNAT redirect (int(qr IP)).
FIP_LOCAL_PRIORITY = 80001


@dataclass(frozen=True, slots=True)
class RouterFipLink:
    """The rfp-R (qrouter side, even address) <-> fpr-R (fip side, odd) /31 of a router."""

    rfp_ip: ipaddress.IPv4Address
    fpr_ip: ipaddress.IPv4Address
    rfp_mac: str
    fpr_mac: str

    @property
    def rfp_cidr(self) -> str:
        return f"{self.rfp_ip}/31"

    @property
    def fpr_cidr(self) -> str:
        return f"{self.fpr_ip}/31"

    @property
    def fip_table(self) -> int:
        """Table (and rule priority) of ``iif fpr-R`` in the fip namespace: int(fpr IP)."""
        return int(self.fpr_ip)


def router_fip_link(router_id: str, index: int) -> RouterFipLink:
    pair = link_local_pair(index)
    return RouterFipLink(rfp_ip=pair.network_address, fpr_ip=pair.broadcast_address,
                         rfp_mac=veth_mac(router_id, "rfp"), fpr_mac=veth_mac(router_id, "fpr"))


def veth_mac(router_id: str, side: str) -> str:
    """A stable, locally administered unicast MAC for one end of a router's veth.

    Fixed MACs let each side carry a permanent neighbour entry for the other (Neutron
    adds them too, commit ac5815a110) without reading the kernel's random MAC first.
    """
    digest = hashlib.sha256(f"{side}:{router_id}".encode()).digest()
    octets = [0x02 | (digest[0] & 0xFC), *digest[1:6]]  # locally administered, unicast
    return ":".join(f"{b:02x}" for b in octets)


def snat_redirect_table(qr_ip: ipaddress.IPv4Address) -> int:
    """Table and priority of a subnet's SNAT redirect: the integer value of the qr IP.

    Neutron's choice (digest §2.3): unique per subnet gateway, far above FIP priorities.
    """
    return int(qr_ip)
