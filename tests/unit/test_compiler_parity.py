"""The compiler's side of issue 10: legacy routers, centralized floating IPs (VIP ports,
dvr_no_external hosts), allowed-address-pair MACs, extra routes, MTUs, and what a pass
announces by gratuitous ARP. Facts in as the server sends them, desired state out.
"""

from __future__ import annotations

from dvr_agent import state
from dvr_agent.compiler import compile_host, compile_key
from dvr_agent.compiler.allocations import FIP_LOCAL_PRIORITY, FIP_ROUTER_TABLE
from dvr_agent.compiler.tables import INT_DVR_TO_SRC_MAC, INT_TRANSIENT
from dvr_agent.models import DeviceDetails, LocalVif
from dvr_agent.reconcile.announce import Announcement, announcements
from dvr_agent.reconcile.diff import KeyDiff, NamespaceDiff
from dvr_agent.state import Address, Route, Rule
from tests.unit.compiler_world import (
    EXT_NET,
    agent_gateway_port,
    csnat_port,
    facts_for,
    fip,
    gateway_port,
    parse_routers,
    router,
    router_interface,
    uid,
)

R = "r1"
QROUTER, SNAT, FIP_NS = f"qrouter-{uid(R)}", f"snat-{uid(R)}", f"fip-{EXT_NET}"
GW_MAC = "fa:16:3e:aa:19:bd"
QG = f"qg-{uid(R + '-qg')[:11]}"


def _interfaces(owner="network:router_interface_distributed"):
    qr = router_interface(R, "net1", "sub1", "10.10.1.0/24", "10.10.1.1", GW_MAC)
    qr["device_owner"] = owner
    return [qr]


def _router(fips=(), *, distributed=True, routes=(), fg_host=None):
    r = router(R, _interfaces() if distributed else _interfaces("network:router_interface"),
               gateway=gateway_port(R, "203.0.113.191", "fa:16:3e:83:e6:bd", "network"),
               snat_host="network",
               snat_interfaces=[csnat_port(R, "net1", "sub1", "10.10.1.0/24", "10.10.1.1",
                                           "10.10.1.113", "fa:16:3e:aa:01:6a", "network")]
               if distributed else [],
               fips=list(fips),
               fip_agent_ports=[agent_gateway_port(fg_host, "203.0.113.49",
                                                   "fa:16:3e:75:47:52")] if fg_host else [])
    r["distributed"] = distributed
    r["routes"] = [{"destination": d, "nexthop": n} for d, n in routes]
    return r


def _fip(host, **extra):
    return fip("f1", R, "203.0.113.7", "10.10.1.5", host, **extra)


# ------------------------------------------------------------------ legacy routers


def test_legacy_router_is_one_qrouter_with_qg_nat_and_its_floating_ips_on_the_snat_host():
    network = facts_for("network", mode="dvr_snat")
    network.set_routers(parse_routers([_router([_fip("compute1")], distributed=False)]))
    namespaces = compile_host(network).namespaces()
    assert set(namespaces) == {QROUTER}, "no snat, no fip namespace for a legacy router"
    qrouter = namespaces[QROUTER]
    assert {a.cidr for a in qrouter.addresses} == {"10.10.1.1/24", "203.0.113.191/24",
                                                   "203.0.113.7/32"}
    assert Route(dst="0.0.0.0/0", gateway="203.0.113.1", device=QG) in qrouter.routes
    assert qrouter.nat.prerouting == ("ip daddr 203.0.113.7 dnat to 10.10.1.5",)
    assert qrouter.nat.output == qrouter.nat.prerouting
    assert qrouter.nat.postrouting == (f'oifname "{QG}" ip saddr 10.10.1.5 snat to 203.0.113.7',
                                       f'oifname "{QG}" snat to 203.0.113.191')
    assert not qrouter.neighbours, "a legacy router ARPs like any router"
    assert not compile_key(network, state.router_key(uid(R))).flows, "no DVR flows"


def test_legacy_router_is_not_built_by_a_compute_agent():
    compute = facts_for("compute1")
    compute.set_routers(parse_routers([_router(distributed=False)]))
    assert QROUTER not in compile_host(compute).namespaces()


# ------------------------------------------------------------------ centralized floating IPs


def test_dvr_snat_bound_floating_ip_lives_on_qg_of_the_snat_namespace():
    network = facts_for("network", mode="dvr_snat")
    network.set_routers(parse_routers([_router([_fip(None, dvr_snat_bound=True)])]))
    namespaces = compile_host(network).namespaces()
    assert FIP_NS not in namespaces
    snat = namespaces[SNAT]
    assert Address(QG, "203.0.113.7/32") in snat.addresses
    assert snat.nat.prerouting == ("ip daddr 203.0.113.7 dnat to 10.10.1.5",)
    assert snat.nat.postrouting[0] == f'oifname "{QG}" ip saddr 10.10.1.5 snat to 203.0.113.7'
    assert not [r for r in namespaces[QROUTER].rules if r.table == FIP_ROUTER_TABLE]


def test_dvr_no_external_host_never_builds_a_fip_namespace():
    compute = facts_for("compute3", mode="dvr_no_external")
    compute.set_routers(parse_routers([_router([_fip("compute3")], fg_host="compute3")]))
    namespaces = compile_host(compute).namespaces()
    assert set(namespaces) == {QROUTER}
    assert compute.local_fips(compute.routers[uid(R)]) == ()


def test_distributed_floating_ip_routes_the_routers_own_icmp_errors_by_table_16():
    compute = facts_for("compute1")
    compute.set_routers(parse_routers([_router([_fip("compute1")], fg_host="compute1")]))
    qrouter = compile_host(compute).namespaces()[QROUTER]
    assert Rule(priority=FIP_LOCAL_PRIORITY, table=FIP_ROUTER_TABLE, iif="lo") in qrouter.rules


# ------------------------------------------------------------------ extra routes, MTU


def test_extra_routes_go_where_their_next_hop_is_connected():
    routes = [("172.31.0.0/24", "10.10.1.50"), ("198.51.100.0/24", "203.0.113.254")]
    network = facts_for("network", mode="dvr_snat")
    network.set_routers(parse_routers([_router(routes=routes)]))
    namespaces = compile_host(network).namespaces()
    qr, sg = f"qr-{uid(R + '-qr-sub1')[:11]}", f"sg-{uid(R + '-sg-sub1')[:11]}"
    internal = Route(dst="172.31.0.0/24", gateway="10.10.1.50", device=qr)
    external = Route(dst="198.51.100.0/24", gateway="203.0.113.254", device=QG)
    assert internal in namespaces[QROUTER].routes
    assert not {r for r in namespaces[QROUTER].routes if r.dst == "198.51.100.0/24"}
    assert {Route(dst="172.31.0.0/24", gateway="10.10.1.50", device=sg), external} <= \
        namespaces[SNAT].routes


def test_router_ports_take_their_networks_mtu():
    network = facts_for("network", mode="dvr_snat")
    network.set_routers(parse_routers([_router()]))
    namespaces = compile_host(network).namespaces()
    mtus = {link.name[:3]: link.mtu for ns in namespaces.values() for link in ns.links}
    assert mtus == {"qr-": 1450, "sg-": 1450, "qg-": 1500}


# ------------------------------------------------------------------ allowed address pairs


def test_vip_mac_of_a_local_vm_is_delivered_by_normal_after_the_dvr_rewrite():
    compute = facts_for("compute1")
    compute.set_routers(parse_routers([router(R, _interfaces())]))
    details = DeviceDetails.from_dict({
        "port_id": uid("vm1"), "network_id": uid("net1"), "mac_address": "fa:16:3e:00:00:05",
        "device_owner": "compute:nova", "network_type": "vxlan", "segmentation_id": 101,
        "fixed_ips": [{"subnet_id": uid("sub1"), "ip_address": "10.10.1.5"}],
        "allowed_address_pairs": [{"ip_address": "10.10.1.100",
                                   "mac_address": "fa:16:3e:ee:00:01"}]})
    compute.set_vif(LocalVif.from_details("tap-vm1", details))
    compute.set_ofport("tap-vm1", 7)
    flows = compile_key(compute, state.router_key(uid(R))).flows
    vip = {(f.table, f.actions) for f in flows if "dl_dst=fa:16:3e:ee:00:01" in f.match}
    assert vip == {(INT_DVR_TO_SRC_MAC, f"mod_dl_src:{GW_MAC},resubmit(,{INT_TRANSIENT})")}
    own = {f.table for f in flows if "dl_dst=fa:16:3e:00:00:05" in f.match}
    assert own == {INT_DVR_TO_SRC_MAC, INT_TRANSIENT}, "the VM's own MAC goes to its port"


# ------------------------------------------------------------------ announcements


def test_a_pass_announces_the_addresses_it_puts_on_the_wire_and_nothing_else():
    compute = facts_for("compute1")
    compute.set_routers(parse_routers([_router([_fip("compute1")], fg_host="compute1")]))
    fip_key = compile_key(compute, state.fip_key(EXT_NET))
    [fip_ns] = fip_key.namespaces
    fg = next(link.name for link in fip_ns.links if link.name.startswith("fg-"))
    diff = KeyDiff(key=fip_key.key, namespaces=[NamespaceDiff(
        name=FIP_NS, addr_add=set(fip_ns.addresses),
        route_add={r for r in fip_ns.routes})])
    assert announcements(fip_key, diff) == [Announcement(FIP_NS, fg, "203.0.113.49"),
                                            Announcement(FIP_NS, fg, "203.0.113.7")]
    router_key = compile_key(compute, state.router_key(uid(R)))
    [qrouter] = router_key.namespaces
    diff = KeyDiff(key=router_key.key, namespaces=[NamespaceDiff(
        name=QROUTER, addr_add=set(qrouter.addresses))])
    assert announcements(router_key, diff) == [
        Announcement(QROUTER, f"qr-{uid(R + '-qr-sub1')[:11]}", "10.10.1.1")], \
        "qr- yes, the link-local rfp- no"
    assert announcements(router_key, KeyDiff(key=router_key.key)) == [], \
        "nothing changed (a restart): nothing announced"
