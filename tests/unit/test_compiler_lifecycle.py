"""The seed's lifecycle rules, expressed as the facts a server sends at each step and the
namespaces that result. The server's scheduler decides which routers a host gets (as
neutron-server does); the compiler must follow those facts exactly.
"""

from dvr_agent import state
from dvr_agent.compiler import compile_host, wanted_keys
from dvr_agent.compiler.base import canary_flow
from dvr_agent.compiler.host import is_wanted
from dvr_agent.compiler.tables import INT_CANARY
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
QROUTER = f"qrouter-{uid(R)}"
SNAT = f"snat-{uid(R)}"
FIP_NS = f"fip-{EXT_NET}"


def _interfaces():
    return [router_interface(R, "net1", "sub1", "10.10.1.0/24", "10.10.1.1", "fa:16:3e:aa:19:bd")]


def _with_gateway(fips=(), fg_host="compute1", snat_host="network"):
    return router(R, _interfaces(), gateway=gateway_port(R, "203.0.113.191", "fa:16:3e:83:e6:bd",
                                                        snat_host),
                  snat_host=snat_host,
                  snat_interfaces=[csnat_port(R, "net1", "sub1", "10.10.1.0/24", "10.10.1.1",
                                              "10.10.1.113", "fa:16:3e:aa:01:6a", snat_host)],
                  fips=list(fips),
                  fip_agent_ports=[agent_gateway_port(fg_host, "203.0.113.49",
                                                      "fa:16:3e:75:47:52")] if fips else [])


def _namespaces(facts):
    return set(compile_host(facts).namespaces())


def test_router_namespace_exists_while_the_server_gives_the_host_the_router():
    facts = facts_for("compute1")
    assert QROUTER not in _namespaces(facts)
    facts.set_routers(parse_routers([router(R, _interfaces())]))  # a VM on sub1 arrived
    assert QROUTER in _namespaces(facts)
    keys = facts.set_routers([])  # its last VM left: sync_routers answers []
    assert state.router_key(uid(R)) in keys.vanished
    assert QROUTER not in _namespaces(facts)


def test_router_namespace_removed_with_its_router_and_its_networks_released():
    facts = facts_for("compute1")
    facts.set_routers(parse_routers([router(R, _interfaces())]))
    assert facts.local_vlan(uid("net1")) == 1
    facts.remove_router(uid(R))
    assert facts.local_vlan(uid("net1")) is None
    assert wanted_keys(facts) == {state.HOST_KEY}


def test_snat_namespace_only_on_the_gateway_host_and_only_with_a_gateway():
    network = facts_for("network", mode="dvr_snat")
    network.set_routers(parse_routers([router(R, _interfaces())]))
    assert SNAT not in _namespaces(network)  # no gateway yet
    network.set_routers(parse_routers([_with_gateway()]))
    snat = compile_host(network).namespaces()[SNAT]
    assert {a.cidr for a in snat.addresses} == {"10.10.1.113/24", "203.0.113.191/24"}
    network.set_routers(parse_routers([router(R, _interfaces())]))  # gateway cleared
    assert SNAT not in _namespaces(network)


def test_snat_namespace_never_on_a_compute_host_nor_on_another_snat_host():
    compute = facts_for("compute1")
    compute.set_routers(parse_routers([_with_gateway()]))
    other = facts_for("network2", mode="dvr_snat")
    other.set_routers(parse_routers([_with_gateway()]))
    assert SNAT not in _namespaces(compute) and QROUTER in _namespaces(compute)
    assert SNAT not in _namespaces(other)


def test_fip_namespace_created_with_the_first_floating_ip_on_the_host():
    facts = facts_for("compute1")
    facts.set_routers(parse_routers([_with_gateway()]))
    assert FIP_NS not in _namespaces(facts)  # a gateway alone is not enough (seed rule)
    facts.set_routers(parse_routers([_with_gateway([fip("f1", R, "203.0.113.152",
                                                        "10.10.1.146", "compute1")])]))
    fip_ns = compile_host(facts).namespaces()[FIP_NS]
    assert any(r.dst == "203.0.113.152/32" for r in fip_ns.routes)


def test_fip_namespace_removed_with_last_floating_ip():
    facts = facts_for("compute1")
    two = [fip("f1", R, "203.0.113.152", "10.10.1.146", "compute1"),
           fip("f2", R, "203.0.113.153", "10.10.1.147", "compute1")]
    facts.set_routers(parse_routers([_with_gateway(two)]))
    facts.set_routers(parse_routers([_with_gateway(two[:1])]))
    assert FIP_NS in _namespaces(facts)
    keys = facts.set_routers(parse_routers([_with_gateway([])]))
    assert state.fip_key(EXT_NET) in keys
    assert FIP_NS not in _namespaces(facts)
    assert facts.allocations().link_local == {} and facts.allocations().fip_priorities == {}


def test_fip_of_a_vm_on_another_host_or_centralised_makes_no_fip_namespace_here():
    facts = facts_for("compute1")
    elsewhere = fip("f1", R, "203.0.113.152", "10.10.1.146", "compute2")
    central = fip("f2", R, "203.0.113.153", "10.10.1.147", "compute1", dvr_snat_bound=True)
    facts.set_routers(parse_routers([_with_gateway([elsewhere, central])]))
    assert FIP_NS not in _namespaces(facts)


def test_fip_namespace_waits_for_the_agent_gateway_port():
    facts = facts_for("compute1")
    r = _with_gateway([fip("f1", R, "203.0.113.152", "10.10.1.146", "compute1")])
    r["_floatingip_agent_interfaces"] = []
    facts.set_routers(parse_routers([r]))
    assert FIP_NS not in _namespaces(facts)
    from dvr_agent.models import Port
    keys = facts.set_fip_gateway_port(EXT_NET, Port.from_dict(
        agent_gateway_port("compute1", "203.0.113.49", "fa:16:3e:75:47:52")))
    assert state.fip_key(EXT_NET) in keys
    assert FIP_NS in _namespaces(facts)


def test_the_canary_is_no_key_s_flow_so_no_pass_restores_it():
    """Only the canary check plants it: a pass retried after an ovs-vswitchd restart would
    otherwise put it back before the check sees it gone."""
    facts = facts_for("compute1")
    facts.set_routers(parse_routers([_with_gateway()]))
    compiled = compile_host(facts)
    canary = canary_flow("br-int")
    assert canary.table == INT_CANARY and canary.cookie == state.cookie_for(state.CANARY_KEY)
    every_flow = compiled.flows()
    assert every_flow
    assert all(f.table != INT_CANARY or f.bridge != "br-int" for f in every_flow)
    assert canary.cookie not in {f.cookie for f in every_flow}


def test_a_key_is_wanted_exactly_while_wanted_keys_lists_it():
    """The per-key question a pass asks (is_wanted) and the whole set (wanted_keys, what
    stale-key removal uses) must agree at every step, for keys that come and go."""
    facts = facts_for("compute1")
    every_key = {state.HOST_KEY, state.router_key(uid(R)), state.network_key(uid("net1")),
                 state.network_key(EXT_NET), state.fip_key(EXT_NET)}
    with_fip = _with_gateway([fip("f1", R, "203.0.113.152", "10.10.1.146", "compute1")])
    steps = [[router(R, _interfaces())], [with_fip], [router(R, _interfaces())], []]
    seen = set()
    for routers in steps:
        facts.set_routers(parse_routers(routers))
        wanted = wanted_keys(facts)
        seen |= wanted
        assert {k for k in every_key if is_wanted(facts, k)} == wanted & every_key
    assert seen == every_key, "the steps went through every kind of key"
