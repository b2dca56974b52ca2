"""The OpenFlow driver against a private, real ovs-vswitchd."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from dvr_agent import state
from dvr_agent.drivers.errors import DriverError
from dvr_agent.drivers.openflow import OpenFlow
from dvr_agent.reconcile.apply import Applier, ApplyResult
from dvr_agent.state import COOKIE_PREFIX, COOKIE_PREFIX_MASK, Flow
from tests.fixtures.ovs import add_test_bridge

ROUTER = state.cookie_for(state.router_key("e87505b3-d455-49fc-bf31-5a2c51203085"))
HOST = state.cookie_for(state.HOST_KEY)
FOREIGN = 0x1234  # an operator's flows
SEED_DUMP = [
    f" table=1, priority=1,dl_vlan={vlan},dl_src={mac} "
    "actions=mod_dl_src:fa:16:3f:b2:34:82,resubmit(,2)"
    for vlan, mac in ((1, "fa:16:3e:ec:f3:dd"), (2, "fa:16:3e:63:3b:4c"), (1, "fa:16:3e:a9:da:b5"))
]


@pytest.fixture
def openflow(ovs):
    for bridge in ("br-int", "br-tun"):
        add_test_bridge(ovs, bridge)
    return OpenFlow(ovs.rundir)


def _mod_dl_src(vlan: int, mac: str, cookie: int = ROUTER) -> Flow:
    return Flow("br-tun", 1, 1, (f"dl_vlan={vlan}", f"dl_src={mac}"),
                "mod_dl_src:fa:16:3f:b2:34:82,resubmit(,2)", cookie)


def _many(count: int, cookie: int) -> list[Flow]:
    return [_mod_dl_src(1 + i % 4094, f"fa:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:"
                                      f"{i & 255:02x}", cookie) for i in range(count)]


def test_ten_thousand_flows_in_one_bundle_dump_back_equal_and_go_by_cookie(ovs, openflow):
    ovs.ofctl("add-flow", "br-tun", f"cookie={FOREIGN:#x},table=1,priority=5,actions=drop")
    host_flow = Flow("br-tun", 0, 0, (), "drop", HOST)
    openflow.apply("br-tun", add=[host_flow])
    flows = _many(10_000, ROUTER)

    began = time.monotonic()
    openflow.apply("br-tun", add=flows)
    added = time.monotonic() - began
    began = time.monotonic()
    dumped = openflow.dump("br-tun", cookie=ROUTER)
    dumping = time.monotonic() - began

    assert dumped == set(flows)
    assert openflow.dump("br-tun", cookie=COOKIE_PREFIX, mask=COOKIE_PREFIX_MASK) == {
        *flows, host_flow}
    # cookie 0 (unset) and the foreign one do not match our prefix
    ovs.ofctl("add-flow", "br-tun", "table=2,priority=5,actions=drop")
    assert openflow.cookies("br-tun", COOKIE_PREFIX, COOKIE_PREFIX_MASK) == {ROUTER, HOST}
    openflow.delete_cookie("br-tun", ROUTER)
    assert openflow.dump("br-tun", cookie=COOKIE_PREFIX, mask=COOKIE_PREFIX_MASK) == {host_flow}
    assert f"cookie={FOREIGN:#x}" in ovs.ofctl("dump-flows", "br-tun")  # never touched
    print(f"\n10,000 flows: one bundle {added:.2f} s, dump {dumping:.2f} s")


def test_a_bundle_with_one_bad_flow_applies_nothing(ovs, openflow):
    kept = _mod_dl_src(1, "fa:16:3e:ec:f3:dd")
    openflow.apply("br-tun", add=[kept])
    good = _many(100, ROUTER)[1:]
    malformed = Flow("br-tun", 1, 1, ("dl_src=fa:16:3e:zz:f3:dd",), "drop", ROUTER)
    refused = Flow("br-tun", 1, 2, (), "group:5", ROUTER)  # the switch rejects it, not ovs-ofctl

    with pytest.raises(DriverError, match=r"invalid Ethernet address in line 101: add .*zz"):
        openflow.apply("br-tun", add=[*good, malformed], delete=[kept])
    with pytest.raises(DriverError, match="OFPBAC_BAD_OUT_GROUP"):
        openflow.apply("br-tun", add=[*good, refused], delete=[kept])

    assert openflow.dump("br-tun", cookie=ROUTER) == {kept}


def test_the_seeds_mod_dl_src_flows_show_in_plain_dump_flows_as_in_the_seed(ovs, openflow):
    openflow.apply("br-tun", add=[
        _mod_dl_src(1, "fa:16:3e:ec:f3:dd"), _mod_dl_src(2, "fa:16:3e:63:3b:4c"),
        _mod_dl_src(1, "fa:16:3e:a9:da:b5")])

    plain = [line for line in ovs.ofctl("dump-flows", "br-tun").splitlines()
             if "mod_dl_src" in line]  # ovs-ofctl dump-flows br-tun | grep mod_dl_src
    # the seed's copy shows no cookie and no counters; everything else must be identical
    without_counters = [re.sub(r"(cookie|duration|n_packets|n_bytes|idle_age)=[^,]*, ", "", line)
                        for line in plain]
    assert sorted(without_counters) == sorted(SEED_DUMP)


def test_same_match_with_other_actions_is_modified_in_one_bundle(openflow):
    old = Flow("br-tun", 22, 1, ("dl_vlan=1",), "strip_vlan,load:0x26->NXM_NX_TUN_ID[],output:2",
               ROUTER)
    new = Flow("br-tun", 22, 1, ("dl_vlan=1",),
               "strip_vlan,load:0x26->NXM_NX_TUN_ID[],output:2,output:3", ROUTER)
    openflow.apply("br-tun", add=[old])
    openflow.apply("br-tun", add=[new], delete=[old])
    assert openflow.dump("br-tun", cookie=ROUTER) == {new}

    moved = Flow(new.bridge, new.table, new.priority, new.match, new.actions, HOST)
    openflow.apply("br-tun", add=[moved], delete=[new])  # the same flow, now of another key
    assert openflow.dump("br-tun", cookie=COOKIE_PREFIX, mask=COOKIE_PREFIX_MASK) == {moved}


def test_a_strict_delete_leaves_a_same_match_flow_with_another_cookie(ovs, openflow):
    ovs.ofctl("add-flow", "br-tun",
              f"cookie={FOREIGN:#x},table=1,priority=1,dl_vlan=9,actions=drop")
    ours = Flow("br-tun", 1, 1, ("dl_vlan=9",), "drop", ROUTER)
    openflow.apply("br-tun", delete=[ours])
    assert f"cookie={FOREIGN:#x}" in ovs.ofctl("dump-flows", "br-tun")


def test_flows_are_gone_after_ovs_vswitchd_restarts(ovs, openflow):
    openflow.apply("br-tun", add=_many(10, ROUTER))
    ovs.restart_vswitchd()
    assert openflow.dump("br-tun", cookie=COOKIE_PREFIX, mask=COOKIE_PREFIX_MASK) == set()


def test_a_missing_bridge_is_a_driver_error_naming_it(openflow):
    with pytest.raises(DriverError, match="br-none"):
        openflow.dump("br-none")


def test_a_large_change_goes_in_parallel_bundles_and_a_refused_key_fails_alone(openflow):
    """The applier's split (reconcile/apply.py, fix 39) against the real switch: 40 keys'
    4,000 flows on one bridge go as parallel bundles, all in place; the key whose flow
    ovs-ofctl refuses fails alone and none of its flows is left half written."""
    keys = [state.router_key(f"r{i}") for i in range(40)]
    wanted = {k: {_mod_dl_src(1 + i * 100 + j, "fa:16:3e:00:00:01", state.cookie_for(k))
                  for j in range(100)} for i, k in enumerate(keys)}
    bad = keys[5]
    wanted[bad].add(Flow("br-tun", 1, 2, ("dl_vlan=4000",), "resubmit(,300)",
                         state.cookie_for(bad)))  # table 300 does not exist
    result = ApplyResult()
    with ThreadPoolExecutor(4) as pool:
        Applier(SimpleNamespace(openflow=openflow), pool).apply_flows(
            {k: (flows, set()) for k, flows in wanted.items()}, result)
    assert set(result.failed) == {bad}
    for key in keys:
        on_switch = openflow.dump("br-tun", cookie=state.cookie_for(key))
        assert on_switch == (set() if key == bad else wanted[key]), key
