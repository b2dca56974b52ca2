"""Golden tests from the seed: compute1's br-tun rewrites gateway MACs to its DVR MAC."""

from dvr_agent.compiler import compile_host
from tests.unit.compiler_world import facts_for, parse_routers, router, router_interface

SEED_LINES = [
    "table=1, priority=1,dl_vlan=1,dl_src=fa:16:3e:ec:f3:dd "
    "actions=mod_dl_src:fa:16:3f:b2:34:82,resubmit(,2)",
    "table=1, priority=1,dl_vlan=2,dl_src=fa:16:3e:63:3b:4c "
    "actions=mod_dl_src:fa:16:3f:b2:34:82,resubmit(,2)",
    "table=1, priority=1,dl_vlan=1,dl_src=fa:16:3e:a9:da:b5 "
    "actions=mod_dl_src:fa:16:3f:b2:34:82,resubmit(,2)",
]


def _seed_host():
    """Network A (local VLAN 1) has two routed subnets, network B (VLAN 2) one."""
    r1 = router("r1", [router_interface("r1", "net-a", "sub-a1", "90.1.180.0/24", "90.1.180.1",
                                        "fa:16:3e:ec:f3:dd"),
                       router_interface("r1", "net-b", "sub-b", "90.1.181.0/24", "90.1.181.1",
                                        "fa:16:3e:63:3b:4c")])
    r2 = router("r2", [router_interface("r2", "net-a", "sub-a2", "90.1.182.0/24", "90.1.182.1",
                                        "fa:16:3e:a9:da:b5")])
    facts = facts_for("compute1")
    facts.set_routers(parse_routers([r1, r2]))
    return facts


def test_br_tun_rewrites_each_gateway_mac_to_the_host_dvr_mac_exactly_as_in_the_seed():
    facts = _seed_host()
    assert facts.own_dvr_mac == "fa:16:3f:b2:34:82"
    state = compile_host(facts)
    lines = sorted(f.render() for f in state.flows("br-tun") if "mod_dl_src" in f.actions)
    assert lines == sorted(SEED_LINES)


def test_seed_local_vlans_follow_network_order():
    facts = _seed_host()
    vlans = {facts.local_vlan(n) for n in facts.local_networks()}
    assert vlans == {1, 2}


def test_dvr_flows_carry_the_router_cookie_and_base_flows_the_host_cookie():
    from dvr_agent import state as st
    facts = _seed_host()
    hs = compile_host(facts).by_key()
    for key, part in hs.items():
        assert all(f.cookie == st.cookie_for(key) for f in part.flows)
