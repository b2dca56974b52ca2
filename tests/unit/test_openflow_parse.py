"""Reading ovs-ofctl's dump-flows text into Flow values, and writing bundles (no switch)."""

import pytest

from dvr_agent import state
from dvr_agent.drivers.errors import InvalidInput, NotOurs
from dvr_agent.drivers.openflow import OpenFlow, bundle_text, parse_dump, parse_flow
from dvr_agent.state import Flow

OURS = state.cookie_for("router:e87505b3-d455-49fc-bf31-5a2c51203085")

# The seed's `ovs-ofctl dump-flows br-tun | grep mod_dl_src` on compute1.
_SEED_ACTIONS = "actions=mod_dl_src:fa:16:3f:b2:34:82,resubmit(,2)"
SEED_DUMP = "".join(
    f" table=1, priority=1,dl_vlan={vlan},dl_src={mac} {_SEED_ACTIONS}\n"
    for vlan, mac in ((1, "fa:16:3e:ec:f3:dd"), (2, "fa:16:3e:63:3b:4c"), (1, "fa:16:3e:a9:da:b5")))


def test_seed_dump_lines_parse_into_flows_that_render_back_identically():
    flows = [parse_flow("br-tun", line) for line in SEED_DUMP.splitlines()]
    assert [f.render() for f in flows] == [line.strip() for line in SEED_DUMP.splitlines()]
    assert flows[0] == Flow(bridge="br-tun", table=1, priority=1,
                            match=("dl_vlan=1", "dl_src=fa:16:3e:ec:f3:dd"),
                            actions="mod_dl_src:fa:16:3f:b2:34:82,resubmit(,2)", cookie=0)


def test_absent_table_priority_and_cookie_mean_zero_default_and_zero():
    flow = parse_flow("br-int", " in_port=1 actions=NORMAL")
    assert (flow.table, flow.priority, flow.cookie, flow.match) == (0, 32768, 0, ("in_port=1",))


def test_cookie_and_counters_are_read_and_ignored_respectively():
    line = (" cookie=0x4456000000000001, duration=0.009s, table=22, n_packets=3, n_bytes=180,"
            " idle_age=0, priority=1,dl_vlan=1 actions=strip_vlan,load:0x26->NXM_NX_TUN_ID[],"
            "output:2")
    flow = parse_flow("br-tun", line)
    assert flow.cookie == 0x4456000000000001
    assert (flow.table, flow.priority, flow.match) == (22, 1, ("dl_vlan=1",))
    assert flow.actions == "strip_vlan,load:0x26->NXM_NX_TUN_ID[],output:2"


def test_learn_action_with_commas_stays_one_action_string():
    line = (" table=10, priority=1 actions=learn(table=20,hard_timeout=300,priority=1,"
            "NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],"
            "load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:1")
    flow = parse_flow("br-tun", line)
    assert flow.match == ()
    assert flow.actions.startswith("learn(table=20,") and flow.actions.endswith("),output:1")


def test_timeouts_of_a_flow_are_not_part_of_its_match():
    flow = parse_flow("br-tun", " table=20, hard_timeout=300, priority=1,dl_vlan=1,"
                                "dl_dst=fa:16:3e:00:00:01 actions=output:3")
    assert flow.match == ("dl_vlan=1", "dl_dst=fa:16:3e:00:00:01")


def test_reply_headers_and_blank_lines_are_not_flows():
    assert parse_flow("br", "NXST_FLOW reply (xid=0x4):") is None
    assert parse_dump("br", "NXST_FLOW reply (xid=0x4):\n\n" + SEED_DUMP) == {
        parse_flow("br", line) for line in SEED_DUMP.splitlines()}


def test_bundle_deletes_strictly_by_exact_cookie_before_adding():
    gone = Flow("br-tun", 1, 2, ("dl_vlan=2",), "drop", OURS)
    new = Flow("br-tun", 1, 1, ("dl_vlan=1",), "resubmit(,2)", OURS)
    assert bundle_text([new], [gone]) == (
        f"delete_strict cookie={OURS:#x}/-1,table=1,priority=2,dl_vlan=2\n"
        f"add cookie={OURS:#x},table=1,priority=1,dl_vlan=1,actions=resubmit(,2)\n")


def test_a_modify_is_the_replacing_add_alone():
    old = Flow("br-tun", 1, 1, ("dl_vlan=1",), "drop", OURS)
    new = Flow("br-tun", 1, 1, ("dl_vlan=1",), "resubmit(,2)", OURS)
    assert bundle_text([new], [old]) == (
        f"add cookie={OURS:#x},table=1,priority=1,dl_vlan=1,actions=resubmit(,2)\n")


@pytest.mark.parametrize("flow, error", [
    (Flow("br-int", 1, 1, (), "drop", OURS), InvalidInput),              # other bridge
    (Flow("br-tun", 1, 1, (), "drop", 0x1234), NotOurs),                 # foreign cookie
    (Flow("br-tun", 255, 1, (), "drop", OURS), InvalidInput),            # no such table
    (Flow("br-tun", 1, 1, ("dl_vlan=1,in_port=2",), "drop", OURS), InvalidInput),
    (Flow("br-tun", 1, 1, (), "drop\nadd priority=9,actions=NORMAL", OURS), InvalidInput),
])
def test_apply_refuses_flows_it_must_not_write_before_running_anything(flow, error):
    driver = OpenFlow(rundir="/nonexistent")  # would fail loudly if it ran ovs-ofctl
    with pytest.raises(error):
        driver.apply("br-tun", add=[flow])


def test_cookie_operations_refuse_masks_that_reach_beyond_our_flows():
    driver = OpenFlow(rundir="/nonexistent")
    with pytest.raises(NotOurs):
        driver.delete_cookie("br-tun", OURS, mask=0)
    with pytest.raises(NotOurs):
        driver.delete_cookie("br-tun", 0x1, mask=state.COOKIE_MASK_ALL)
    with pytest.raises(InvalidInput):
        driver.dump("br-tun", mask=state.COOKIE_PREFIX_MASK)
    with pytest.raises(InvalidInput):
        driver.dump("br/tun")


def test_two_flows_with_one_ident_in_one_apply_are_refused():
    driver = OpenFlow(rundir="/nonexistent")
    one = Flow("br-tun", 1, 1, ("dl_vlan=1",), "drop", OURS)
    other = Flow("br-tun", 1, 1, ("dl_vlan=1",), "NORMAL", OURS)
    with pytest.raises(InvalidInput, match="two flows"):
        driver.apply("br-tun", add=[one, other])
