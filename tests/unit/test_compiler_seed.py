"""Golden tests from the seed: compute1's br-tun rewrites gateway MACs to its DVR MAC."""

from dvr_agent import names
from dvr_agent import state as st
from dvr_agent.compiler import compile_host, compile_key
from dvr_agent.compiler.tables import INT_ARP_DVR_MAC_TO_DST_MAC
from tests.unit.compiler_world import facts_for, parse_routers, router, router_interface, uid

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
    facts = _seed_host()
    hs = compile_host(facts).by_key()
    for key, part in hs.items():
        assert all(f.cookie == st.cookie_for(key) for f in part.flows)


def test_routers_sharing_a_network_leave_one_owner_of_its_dvr_mac_flow():
    """r1 and r2 both sit on net-a. br-int table 3's flow for frames addressed to the
    host's DVR MAC matches the network (dl_vlan, dl_dst=D), so OpenFlow keeps one: one
    router's key must own it, or each write replaces the other's and every comparison
    finds one of them drifted. The owner is the router of lowest id; when it leaves,
    the other's key is named for recompiling and takes the flow over."""
    facts = _seed_host()
    for ofport, (r, sub) in enumerate([("r1", "sub-a1"), ("r1", "sub-b"), ("r2", "sub-a2")], 5):
        facts.set_ofport(names.qr_device_name(uid(f"{r}-qr-{sub}")), ofport)
    vlan_a = facts.local_vlan(uid("net-a"))

    def table3(router_label):
        flows = compile_key(facts, st.router_key(uid(router_label))).flows
        return {f.match for f in flows if f.table == INT_ARP_DVR_MAC_TO_DST_MAC}

    on_a = (f"dl_vlan={vlan_a}", "dl_dst=fa:16:3f:b2:34:82")
    owner, other = sorted(["r1", "r2"], key=uid)
    assert on_a in table3(owner) and on_a not in table3(other)
    assert sum(1 for f in compile_host(facts).flows("br-int")
               if f.table == INT_ARP_DVR_MAC_TO_DST_MAC and f.match == on_a) == 1
    keys = facts.remove_router(uid(owner))
    assert st.router_key(uid(other)) in keys, "the other router is compiled again"
    assert on_a in table3(other)
