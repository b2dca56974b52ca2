"""Walk the captured neutron-server scenario on compute1 and on the network node, feeding
each phase's real replies to the facts, and check the keys and namespaces at each step.
"""

from dvr_agent import state
from dvr_agent.compiler import compile_host, wanted_keys
from dvr_agent.models import (
    ArpEntry,
    HostMac,
    Port,
    Router,
    fdb_entries,
)
from tests.unit.compiler_world import captures, facts_for

CALLS = captures("agent_rpc_calls.json")
NOTES = captures("server_to_agent_notifications.json")
ROUTER = "e87505b3-d455-49fc-bf31-5a2c51203085"
EXT = "08d1f8c7-cfb0-491a-ad87-4eebf79ebffd"
QROUTER, SNAT, FIP = f"qrouter-{ROUTER}", f"snat-{ROUTER}", f"fip-{EXT}"


def _sync(phase, host):
    call = next(c for c in CALLS if c["phase"] == phase and c["method"] == "sync_routers"
                and c["kwargs"]["host"] == host)
    return [Router.from_dict(r) for r in call["result"]]


def _notes(phase, method):
    return [n["args"] for n in NOTES if n["phase"] == phase and n["method"] == method]


def _host(name, mode):
    facts = facts_for(name, mode=mode)
    macs = next(c["result"] for c in CALLS if c["method"] == "get_dvr_mac_address_list")
    facts.set_dvr_macs([HostMac.from_dict(m) for m in macs])
    return facts


def test_compute1_through_the_captured_scenario():
    compute = _host("compute1", "dvr")
    # 07: VM port on compute1 -> add_arp_entry arrives before the router: ignored.
    assert compute.add_arp_entry(ArpEntry.from_kwargs(
        _notes("07_create_vm_port_compute1", "add_arp_entry")[0])) == frozenset()
    # 10: full sync after both interfaces: the router is here, no FIP yet.
    keys = compute.set_routers(_sync("10_rpc_sync_after_interfaces", "compute1"))
    assert state.router_key(ROUTER) in keys.appeared
    ports = next(c["result"] for c in CALLS if c["method"] == "get_ports_by_subnet")
    subnet = next(c["kwargs"]["subnet_id"] for c in CALLS if c["method"] == "get_ports_by_subnet")
    assert compute.set_subnet_ports(subnet, [Port.from_dict(p) for p in ports]) == {
        state.router_key(ROUTER)}
    namespaces = compile_host(compute).namespaces()
    assert set(namespaces) == {QROUTER}
    assert {(n.ip, n.mac) for n in namespaces[QROUTER].neighbours} >= {
        ("10.10.1.146", "fa:16:3e:a5:01:f8"), ("10.10.1.113", "fa:16:3e:aa:01:6a")}
    compute.add_fdb(fdb_entries(_notes("08_ovs_agent_device_up", "add_fdb_entries")[0]))
    # 13: FIP associated -> fip namespace with fg- and the rfp/fpr pair.
    compute.set_routers(_sync("13_rpc_sync_after_fip", "compute1"))
    namespaces = compile_host(compute).namespaces()
    assert set(namespaces) == {QROUTER, FIP}
    assert any(a.cidr == "203.0.113.49/24" for a in namespaces[FIP].addresses)
    assert any(r.src == "10.10.1.146/32" and r.table == 16 for r in namespaces[QROUTER].rules)
    # 16: VM deleted -> del_arp_entry, then the router is removed from the agent.
    keys = compute.del_arp_entry(ArpEntry.from_kwargs(
        _notes("16_delete_vm_port", "del_arp_entry")[0]))
    assert keys == {state.router_key(ROUTER)}
    assert compute.remove_router(ROUTER)
    # 17: the next sync agrees: nothing is left but the host's own state.
    keys = compute.set_routers(_sync("17_rpc_sync_after_port_delete", "compute1"))
    assert keys.vanished == frozenset()
    assert wanted_keys(compute) == {state.HOST_KEY}
    assert compile_host(compute).namespaces() == {}


def test_network_node_through_the_captured_scenario():
    network = _host("network", "dvr_snat")
    network.set_routers(_sync("10_rpc_sync_after_interfaces", "network"))
    namespaces = compile_host(network).namespaces()
    assert set(namespaces) == {QROUTER, SNAT}
    snat = namespaces[SNAT]
    assert {a.cidr for a in snat.addresses} == {
        "10.10.1.113/24", "10.10.2.162/24", "203.0.113.191/24"}
    assert 'oifname "qg-0bd5b983-a8" snat to 203.0.113.191' in snat.nat.postrouting
    assert any(r.dst == "0.0.0.0/0" and r.gateway == "203.0.113.1" for r in snat.routes)
    # 19: gateway cleared -> the snat namespace goes, qrouter stays (interfaces remain).
    network.set_routers(_sync("19_rpc_sync_after_gateway_clear", "network"))
    assert set(compile_host(network).namespaces()) == {QROUTER}
