"""qrouter-R: the router's namespace on every host that hosts R.

One qr- per router interface with the SAME gateway IP and MAC on every host, the ARP
table, the SNAT redirect to the csnat port when R has a gateway (digest §2.3), and the
router side of the fip connection when FIPs of R are routed here (digest §2.4).
"""

from __future__ import annotations

from dvr_agent import names
from dvr_agent.compiler.allocations import (
    FIP_LOCAL_PRIORITY,
    FIP_ROUTER_TABLE,
    RouterFipLink,
    router_fip_link,
    snat_redirect_table,
)
from dvr_agent.compiler.arp import qr_neighbours
from dvr_agent.compiler.namespace import NamespaceBuilder, device_sysctl, extra_routes
from dvr_agent.compiler.ports import plug
from dvr_agent.facts import Facts
from dvr_agent.models import Port, Router
from dvr_agent.state import Address, Link, LinkKind, Namespace, Neighbour, OvsPort, Route, Rule


def router_fip_connection(facts: Facts, router: Router) -> RouterFipLink | None:
    """The rfp/fpr pair of the router, if it is connected to a fip namespace here."""
    index = facts.link_local_index(router.id)
    if index is None or router.external_network_id not in facts.fip_networks():
        return None
    return router_fip_link(router.id, index)


def compile_qrouter(facts: Facts, router: Router, key: str) -> tuple[Namespace, list[OvsPort]]:
    ns = NamespaceBuilder(names.qrouter_ns_name(router.id))
    ns.sysctls.append(device_sysctl("all", "send_redirects", "0"))
    ports: list[OvsPort] = []
    for port in router.interfaces:
        device = names.qr_device_name(port.id)
        link, ovs_port = plug(facts, key, port, device)
        ns.links.append(link)
        ports.append(ovs_port)
        ns.addresses += [Address(device, str(port.interface(x))) for x in port.ipv4_fixed_ips()]
        ns.sysctls.append(device_sysctl(device, "send_redirects", "0"))
        ns.neighbours += qr_neighbours(facts, router, port, device)
        _add_snat_redirect(ns, router, port, device)
    ns.routes += extra_routes(router, ns.addresses)
    fip_link = router_fip_connection(facts, router)
    if fip_link is not None:
        _add_fip_side(ns, facts, router, fip_link)
    return ns.build(), ports


def _add_snat_redirect(ns: NamespaceBuilder, router: Router, port: Port, device: str) -> None:
    """Traffic from a subnet, unless a FIP rule took it first, goes to the subnet's csnat
    port on the snat host. Table = priority = int(qr IP) (Neutron's numbering), rule
    ``from <qr subnet>``.
    """
    if router.gw_port is None:
        return
    for fixed in port.ipv4_fixed_ips():
        csnat_ips = sorted(x.ip for sg in router.snat_interfaces for x in sg.ipv4_fixed_ips()
                           if x.subnet_id == fixed.subnet_id)
        if not csnat_ips:
            continue
        table = snat_redirect_table(fixed.ip)
        ns.routes.append(Route(dst="0.0.0.0/0", table=table, gateway=str(csnat_ips[0]),
                               device=device))
        ns.rules.append(Rule(priority=table, table=table,
                             src=str(port.interface(fixed).network)))


def _add_fip_side(ns: NamespaceBuilder, facts: Facts, router: Router,
                  link: RouterFipLink) -> None:
    """rfp-R with table 16's default via fpr-R, and per FIP one rule and two NAT rules."""
    rfp = names.rfp_device_name(router.id)
    fpr = names.fpr_device_name(router.id)
    ns.links.append(Link(name=rfp, kind=LinkKind.VETH, mac=link.rfp_mac,
                         mtu=router.gw_port.mtu if router.gw_port else None, peer=fpr,
                         peer_namespace=names.fip_ns_name(router.external_network_id)))
    ns.addresses.append(Address(rfp, link.rfp_cidr))
    ns.routes.append(Route(dst="0.0.0.0/0", table=FIP_ROUTER_TABLE, gateway=str(link.fpr_ip),
                           device=rfp))
    ns.neighbours.append(Neighbour(device=rfp, ip=str(link.fpr_ip), mac=link.fpr_mac))
    # ICMP errors the router sends to an external peer of a floating IP (fragmentation
    # needed, TTL exceeded) are routed before they have a source address, so no
    # `from <fixed IP>` rule matches them and the main table has no default route: without
    # this rule path MTU discovery towards a floating IP fails silently. Conntrack then
    # sends the error out as coming from the floating IP.
    ns.rules.append(Rule(priority=FIP_LOCAL_PRIORITY, table=FIP_ROUTER_TABLE, iif="lo"))
    for fip in facts.local_fips(router):
        priority = facts.fip_priority(fip)
        if priority is None:
            continue  # pool exhausted: this FIP waits, the others work
        ns.rules.append(Rule(priority=priority, table=FIP_ROUTER_TABLE,
                             src=f"{fip.fixed_ip}/32"))
        ns.prerouting.append(
            f'iifname "{rfp}" ip daddr {fip.floating_ip} dnat to {fip.fixed_ip}')
        ns.postrouting.append(
            f'oifname "{rfp}" ip saddr {fip.fixed_ip} snat to {fip.floating_ip}')
