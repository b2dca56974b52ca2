"""A qrouter's ARP table: permanent neighbours for every port on each attached subnet.

The router cannot ARP across hosts for addresses behind the shared gateway MAC, so
every host's qrouter carries static entries (seed: "the router's ARP table"; digest
§2.2): the subnet's ports from ``get_ports_by_subnet`` kept current by
``add_arp_entry``/``del_arp_entry``, plus the csnat (sg-) port of the subnet.
"""

from __future__ import annotations

import ipaddress

from dvr_agent.facts import Facts
from dvr_agent.models import Port, Router
from dvr_agent.state import Neighbour


def qr_neighbours(facts: Facts, router: Router, qr_port: Port, device: str) -> list[Neighbour]:
    """Neighbours on one qr- device. IPv4 only: IPv6 is off in our namespaces."""
    out: list[Neighbour] = []
    own = {x.ip for x in qr_port.fixed_ips}
    for fixed in qr_port.ipv4_fixed_ips():
        subnet = qr_port.interface(fixed).network
        # the table is keyed by str(ip): formatting each address again was a quarter of
        # compiling a router (42 neighbours each, every pass; benchmarks/README.md fix 27)
        for text, (ip, mac) in facts.arp.entries(fixed.subnet_id).items():
            if _on_subnet(ip, subnet) and ip not in own:
                out.append(Neighbour(device=device, ip=text, mac=mac))
        for sg in router.snat_interfaces:
            for sg_fixed in sg.ipv4_fixed_ips():
                if sg_fixed.subnet_id == fixed.subnet_id and sg_fixed.ip not in own:
                    out.append(Neighbour(device=device, ip=str(sg_fixed.ip), mac=sg.mac))
    return _one_per_ip(out)


def _on_subnet(ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
               subnet: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return ip.version == subnet.version and ip in subnet


def _one_per_ip(neighbours: list[Neighbour]) -> list[Neighbour]:
    """The kernel holds one entry per (device, IP): the csnat port's own MAC wins over an
    ARP table entry for the same IP (a stale one), whatever the order facts arrived in.
    """
    chosen: dict[tuple[str, str], Neighbour] = {}
    for n in reversed(neighbours):  # csnat entries were appended last: they come first here
        current = chosen.get((n.device, n.ip))
        if current is None:
            chosen[(n.device, n.ip)] = n
    return sorted(chosen.values())
