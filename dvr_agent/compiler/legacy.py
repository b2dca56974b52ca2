"""A legacy (centralized) router: all of it in qrouter-R on the one host that runs it.

Neutron's LegacyRouter beside DVR ones (``dvrctl router create NAME --distributed
false``): qr- ports holding each subnet's gateway, ordinary ports on br-int (no DVR MAC
rewriting, no static ARP: VMs on every host reach the one gateway over the tunnels, and
the router ARPs for them as any router does), the gateway side with source NAT and all
the router's floating IPs on qg- (compiler.gateway), and the extra routes.
"""

from __future__ import annotations

from dvr_agent import names
from dvr_agent.compiler.gateway import add_gateway
from dvr_agent.compiler.namespace import NamespaceBuilder, extra_routes
from dvr_agent.compiler.ports import plug
from dvr_agent.facts import Facts
from dvr_agent.models import Router
from dvr_agent.state import Address, Namespace, OvsPort


def compile_legacy(facts: Facts, router: Router, key: str) -> tuple[Namespace, list[OvsPort]]:
    ns = NamespaceBuilder(names.qrouter_ns_name(router.id))
    ports: list[OvsPort] = []
    for port in router.interfaces:
        device = names.qr_device_name(port.id)
        link, ovs_port = plug(facts, key, port, device)
        ns.links.append(link)
        ports.append(ovs_port)
        for fixed in port.ipv4_fixed_ips():
            ns.addresses.append(Address(device, str(port.interface(fixed))))
    if facts.hosts_gateway(router):
        ports += add_gateway(ns, facts, router, key)
    ns.routes += extra_routes(router, ns.addresses)
    return ns.build(), ports
