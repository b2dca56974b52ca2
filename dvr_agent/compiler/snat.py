"""snat-R: only on the dvr_snat host named by ``gw_port_host``, only while R has a gateway.

One sg- per internal subnet holding the csnat port's own IP (never the gateway IP), and
the gateway side (qg-, source NAT, centralized floating IPs: compiler.gateway) (digest
§1.2, §2.3, §2.5).
"""

from __future__ import annotations

from dvr_agent import names
from dvr_agent.compiler.gateway import add_gateway
from dvr_agent.compiler.namespace import NamespaceBuilder, extra_routes
from dvr_agent.compiler.ports import plug
from dvr_agent.facts import Facts
from dvr_agent.models import Router
from dvr_agent.state import Address, Namespace, OvsPort


def compile_snat(facts: Facts, router: Router, key: str) -> tuple[Namespace, list[OvsPort]]:
    assert router.gw_port is not None, "only the snat host of a router with a gateway gets here"
    ns = NamespaceBuilder(names.snat_ns_name(router.id))
    ports: list[OvsPort] = []
    for sg in router.snat_interfaces:
        device = names.sg_device_name(sg.id)
        link, ovs_port = plug(facts, key, sg, device)
        ns.links.append(link)
        ports.append(ovs_port)
        for fixed in sg.ipv4_fixed_ips():
            ns.addresses.append(Address(device, str(sg.interface(fixed))))
    ports += add_gateway(ns, facts, router, key)
    ns.routes += extra_routes(router, ns.addresses)
    return ns.build(), ports
