from dvr_agent import state
from dvr_agent.state import Flow, HostState, KeyState


def _flow(match, actions="drop", cookie=1):
    return Flow(bridge="br-tun", table=1, priority=1, match=match, actions=actions, cookie=cookie)


def test_flows_compare_by_match_content_not_match_order():
    a = _flow(("dl_vlan=1", "dl_src=fa:16:3e:ec:f3:dd"))
    b = _flow(("dl_src=fa:16:3e:ec:f3:dd", "dl_vlan=1"))
    assert a == b and hash(a) == hash(b)
    assert a != _flow(("dl_vlan=1", "dl_src=fa:16:3e:ec:f3:dd"), actions="NORMAL")
    assert a != _flow(("dl_vlan=1", "dl_src=fa:16:3e:ec:f3:dd"), cookie=2)
    assert a != _flow(("dl_vlan=1",)) and a.ident == b.ident
    assert {a, b} == {a} and "_hash" not in repr(a)


def test_flow_renders_like_ovs_ofctl_dump_flows():
    flow = Flow(bridge="br-tun", table=1, priority=1,
                match=("dl_vlan=1", "dl_src=fa:16:3e:ec:f3:dd"),
                actions="mod_dl_src:fa:16:3f:b2:34:82,resubmit(,2)", cookie=1)
    assert flow.render() == ("table=1, priority=1,dl_vlan=1,dl_src=fa:16:3e:ec:f3:dd "
                             "actions=mod_dl_src:fa:16:3f:b2:34:82,resubmit(,2)")
    table0 = Flow(bridge="br-tun", table=0, priority=0, match=(), actions="drop", cookie=1)
    assert table0.render() == "priority=0 actions=drop"


def test_cookies_are_stable_per_key_and_marked_as_ours():
    key = state.router_key("e87505b3-d455-49fc-bf31-5a2c51203085")
    assert state.cookie_for(key) == state.cookie_for(key)
    assert state.cookie_for(key) != state.cookie_for(state.HOST_KEY)
    assert state.is_our_cookie(state.cookie_for(key))
    assert not state.is_our_cookie(0x1234)


def test_keys_split_back_into_kind_and_id():
    assert state.split_key("host") == (state.KeyKind.HOST, None)
    assert state.split_key(state.fip_key("x")) == (state.KeyKind.FIP, "x")


def test_host_state_orders_parts_and_rejects_duplicate_keys():
    hs = HostState.of([KeyState(key="router:b"), KeyState(key="host")])
    assert [p.key for p in hs] == ["host", "router:b"]
    try:
        HostState.of([KeyState(key="host"), KeyState(key="host")])
    except ValueError as e:
        assert "two parts" in str(e)
    else:
        raise AssertionError("duplicate keys accepted")
