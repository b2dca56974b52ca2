"""snat-R: only on the dvr_snat host named by ``gw_port_host``, only while R has a gateway.

One sg- per internal subnet holding the csnat port's own IP (never the gateway IP), the
qg- with the router's external IPs and default route, and source NAT out of qg- when
``enable_snat`` (digest §1.2, §2.3).
"""

from __future__ import annotations

from dvr_agent import names
from dvr_agent.compiler.namespace import NamespaceBuilder, extra_routes
from dvr_agent.compiler.ports import plug
from dvr_agent.facts import Facts
from dvr_agent.models import Port, Router
from dvr_agent.state import Address, Namespace, OvsPort, Route


def compile_snat(facts: Facts, router: Router, key: str) -> tuple[Namespace, list[OvsPort]]:
    gw_port = router.gw_port
    assert gw_port is not None, "only the snat host of a router with a gateway gets here"
    ns = NamespaceBuilder(names.snat_ns_name(router.id))
    ports: list[OvsPort] = []
    connected = []
    for port, device in [(sg, names.sg_device_name(sg.id)) for sg in router.snat_interfaces] \
            + [(gw_port, names.qg_device_name(gw_port.id))]:
        link, ovs_port = plug(facts, key, port, device)
        ns.links.append(link)
        ports.append(ovs_port)
        for fixed in port.ipv4_fixed_ips():
            ns.addresses.append(Address(device, str(port.interface(fixed))))
            connected.append(port.interface(fixed).network)
    qg = names.qg_device_name(gw_port.id)
    ns.routes += _default_routes(gw_port, qg)
    ns.routes += extra_routes(router, connected)
    gw_ips = sorted(x.ip for x in gw_port.ipv4_fixed_ips())
    if router.enable_snat and gw_ips:
        ns.postrouting.append(f'oifname "{qg}" snat to {gw_ips[0]}')
    return ns.build(), ports


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
