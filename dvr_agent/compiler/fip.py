"""fip-E: the namespace that connects this host's routers to external network E.

Only while a FIP on E is routed here (seed rule) and the server gave us our agent
gateway port on E: fg- with that port's IPs and proxy ARP (so the upstream router's ARP
for a floating IP is answered by fg-), and per connected router the fpr- end of its
veth, a policy table for traffic coming back from the router, and a /32 route per FIP
(digest §2.4).
"""

from __future__ import annotations

from dvr_agent import names, state
from dvr_agent.compiler.allocations import RouterFipLink, router_fip_link
from dvr_agent.compiler.namespace import NamespaceBuilder, device_sysctl
from dvr_agent.compiler.ports import plug
from dvr_agent.facts import Facts
from dvr_agent.models import Port, Router
from dvr_agent.state import Address, Link, LinkKind, Neighbour, Route, Rule


def compile_fip(facts: Facts, ext_net_id: str) -> state.KeyState:
    key = state.fip_key(ext_net_id)
    gw_port = facts.fip_gateway_port(ext_net_id)
    if gw_port is None:
        return state.KeyState(key=key)
    fg = names.fg_device_name(gw_port.id)
    ns = NamespaceBuilder(names.fip_ns_name(ext_net_id))
    link, ovs_port = plug(facts, key, gw_port, fg)
    ns.links.append(link)
    ns.addresses += [Address(fg, str(gw_port.interface(x))) for x in gw_port.ipv4_fixed_ips()]
    # proxy_delay 0: the kernel answers a proxied ARP at once instead of after a random
    # wait of up to 0.8 s (bug 1920975; Neutron writes 1, one jiffy, for the same reason).
    ns.sysctls += [device_sysctl(fg, "proxy_arp", "1"),
                   device_sysctl(fg, "proxy_delay", "0", family="neigh")]
    gateway = _external_gateway(gw_port)
    for router in facts.fip_routers(ext_net_id):
        index = facts.link_local_index(router.id)
        if index is not None:
            _add_router_side(ns, facts, router, router_fip_link(router.id, index), fg, gateway)
    return state.KeyState(key=key, namespaces=(ns.build(),), ports=frozenset([ovs_port]))


def _external_gateway(gw_port: Port) -> str | None:
    for fixed in sorted(gw_port.ipv4_fixed_ips(), key=lambda x: x.ip):
        subnet = gw_port.subnet(fixed.subnet_id)
        if subnet is not None and subnet.gateway_ip is not None:
            return str(subnet.gateway_ip)
    return None


def _add_router_side(ns: NamespaceBuilder, facts: Facts, router: Router, link: RouterFipLink,
                     fg: str, gateway: str | None) -> None:
    """fpr-R: traffic in from the router leaves by fg- (table int(fpr IP)); traffic to a
    FIP goes to the router through fpr-R.
    """
    fpr = names.fpr_device_name(router.id)
    rfp = names.rfp_device_name(router.id)
    ns.links.append(Link(name=fpr, kind=LinkKind.VETH, mac=link.fpr_mac,
                         mtu=router.gw_port.mtu if router.gw_port else None, peer=rfp,
                         peer_namespace=names.qrouter_ns_name(router.id)))
    ns.addresses.append(Address(fpr, link.fpr_cidr))
    ns.neighbours.append(Neighbour(device=fpr, ip=str(link.rfp_ip), mac=link.rfp_mac))
    ns.rules.append(Rule(priority=link.fip_table, table=link.fip_table, iif=fpr))
    if gateway is not None:
        ns.routes.append(Route(dst="0.0.0.0/0", table=link.fip_table, gateway=gateway,
                               device=fg))
    for fip in facts.local_fips(router):
        ns.routes.append(Route(dst=f"{fip.floating_ip}/32", gateway=str(link.rfp_ip),
                               device=fpr))
