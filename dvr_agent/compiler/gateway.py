"""A router's gateway side: qg- on the external network, in snat-R (distributed) or in
qrouter-R (legacy).

qg- carries the router's external address with the default route, source NAT for the
router's subnets when ``enable_snat``, and the *centralized* floating IPs as /32 addresses
(digest §2.3, §2.5): the upstream ARPs for them on qg-, PREROUTING/OUTPUT translate the
floating address to the fixed one, and traffic from the fixed address leaves as the
floating one, ahead of the router's own source NAT.
"""

from __future__ import annotations

from dvr_agent import names
from dvr_agent.compiler.namespace import NamespaceBuilder
from dvr_agent.compiler.ports import plug
from dvr_agent.facts import Facts
from dvr_agent.models import Port, Router
from dvr_agent.state import Address, OvsPort, Route


def add_gateway(ns: NamespaceBuilder, facts: Facts, router: Router, key: str
                ) -> list[OvsPort]:
    """qg- and what hangs on it."""
    gw_port = router.gw_port
    assert gw_port is not None, "only a router with a gateway has a gateway side"
    qg = names.qg_device_name(gw_port.id)
    link, ovs_port = plug(facts, key, gw_port, qg)
    ns.links.append(link)
    for fixed in gw_port.ipv4_fixed_ips():
        ns.addresses.append(Address(qg, str(gw_port.interface(fixed))))
    ns.routes += _default_routes(gw_port, qg)
    for fip in facts.central_fips(router):
        ns.addresses.append(Address(qg, f"{fip.floating_ip}/32"))
        translate = f"ip daddr {fip.floating_ip} dnat to {fip.fixed_ip}"
        ns.prerouting.append(translate)
        ns.output.append(translate)
        ns.postrouting.append(f'oifname "{qg}" ip saddr {fip.fixed_ip} snat to {fip.floating_ip}')
    gw_ips = sorted(x.ip for x in gw_port.ipv4_fixed_ips())
    if router.enable_snat and gw_ips:
        ns.postrouting.append(f'oifname "{qg}" snat to {gw_ips[0]}')
    return [ovs_port]


def _default_routes(gw_port: Port, qg: str) -> list[Route]:
    """Default via the external subnet's gateway; on-link first if it is outside the subnet."""
    for fixed in sorted(gw_port.ipv4_fixed_ips(), key=lambda x: x.ip):
        subnet = gw_port.subnet(fixed.subnet_id)
        if subnet is None or subnet.gateway_ip is None:
            continue
        routes = [Route(dst="0.0.0.0/0", gateway=str(subnet.gateway_ip), device=qg)]
        if subnet.gateway_ip not in gw_port.interface(fixed).network:
            routes.append(Route(dst=f"{subnet.gateway_ip}/32", device=qg))
        return routes
    return []
