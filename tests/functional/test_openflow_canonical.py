"""Canonical flow spellings: what the compiler must write so that a dump compares equal.

Each construct Neutron's DVR pipeline uses (neutron-dvr-digest.md §3.2-3.5) is installed
and dumped back through the driver; ``assert_canonical`` fails on any flow that comes back
spelled differently. The second half pins how non-canonical spellings print, which is the
table in dvr_agent/drivers/openflow.py's docstring.
"""

from __future__ import annotations

import pytest

from dvr_agent import state
from dvr_agent.drivers.openflow import OpenFlow
from dvr_agent.state import Flow
from tests.fixtures.ovs import add_test_bridge, assert_canonical

C = state.cookie_for(state.HOST_KEY)
HOST_MAC, GW_MAC, VM_MAC = "fa:16:3f:b2:34:82", "fa:16:3e:ec:f3:dd", "fa:16:3e:00:00:05"
LEARN = ("learn(table=20,hard_timeout=300,priority=1,NXM_OF_VLAN_TCI[0..11],"
         "NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],"
         "load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:1")
ARP_RESPONDER = ("move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:fa:16:3e:00:00:05,"
                 "load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],"
                 "move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163e000005->NXM_NX_ARP_SHA[],"
                 "load:0xa000005->NXM_OF_ARP_SPA[],IN_PORT")


def tun(table, priority, match, actions):
    return Flow("br-tun", table, priority, tuple(match), actions, C)


def int_(table, priority, match, actions):
    return Flow("br-int", table, priority, tuple(match), actions, C)


DVR_PIPELINE = [
    # br-tun base (§3.2)
    tun(0, 1, ["in_port=1"], "resubmit(,1)"),
    tun(0, 1, ["in_port=12"], "resubmit(,4)"),
    tun(0, 0, [], "drop"),
    tun(2, 1, ["arp", "dl_dst=ff:ff:ff:ff:ff:ff"], "resubmit(,21)"),
    tun(2, 0, ["dl_dst=00:00:00:00:00:00/01:00:00:00:00:00"], "resubmit(,20)"),
    tun(2, 0, ["dl_dst=01:00:00:00:00:00/01:00:00:00:00:00"], "resubmit(,22)"),
    tun(4, 1, ["tun_id=0x26"], "mod_vlan_vid:1,resubmit(,9)"),
    tun(10, 1, [], LEARN),
    tun(20, 2, ["dl_vlan=1", f"dl_dst={VM_MAC}"],
        "strip_vlan,load:0x26->NXM_NX_TUN_ID[],output:12"),
    tun(21, 1, ["arp", "dl_vlan=1", "arp_tpa=10.0.0.5"], ARP_RESPONDER),
    tun(22, 1, ["dl_vlan=1"], "strip_vlan,load:0x26->NXM_NX_TUN_ID[],output:12,output:13"),
    # DVR on br-tun (§3.4, §3.5)
    tun(9, 1, [f"dl_src={HOST_MAC}"], "output:1"),
    tun(9, 0, [], "resubmit(,10)"),
    tun(1, 0, [], "resubmit(,2)"),
    tun(22, 3, ["arp", "dl_vlan=1", "arp_tpa=10.0.0.1"], "drop"),
    tun(22, 3, ["icmp6", "dl_vlan=1", f"dl_src={GW_MAC}", "icmp_type=134"], "drop"),
    tun(1, 2, ["dl_vlan=1", f"dl_dst={GW_MAC}"], "drop"),
    tun(1, 1, ["dl_vlan=1", f"dl_src={GW_MAC}"], f"mod_dl_src:{HOST_MAC},resubmit(,2)"),
    # br-int (§3.3-3.5)
    int_(0, 65535, ["dl_vlan=4095"], "drop"),
    int_(0, 2, ["in_port=1", "dl_src=fa:16:3f:db:6f:73"], "resubmit(,1)"),
    int_(0, 5, ["in_port=1", f"dl_dst={HOST_MAC}"], "resubmit(,3)"),
    int_(0, 99, ["arp", f"dl_dst={HOST_MAC}", "arp_op=2", f"arp_tha={GW_MAC}"],
         f"mod_dl_dst:{GW_MAC},resubmit(,58)"),
    int_(0, 3, ["in_port=2", "vlan_tci=0x0000/0x1fff"], "mod_vlan_vid:1,resubmit(,58)"),
    int_(0, 0, [], "resubmit(,58)"),
    int_(1, 20, ["dl_vlan=1", f"dl_dst={VM_MAC}"], f"mod_dl_src:{GW_MAC},resubmit(,60)"),
    int_(3, 5, ["dl_vlan=1", f"dl_dst={HOST_MAC}"], f"mod_dl_dst:{GW_MAC},strip_vlan,output:3"),
    int_(23, 0, [], "drop"),
    int_(60, 1, [], "NORMAL"),
    int_(60, 20, ["dl_vlan=1", f"dl_dst={VM_MAC}"], "strip_vlan,output:4"),
]


def test_every_construct_of_the_dvr_pipeline_round_trips_unchanged(ovs):
    assert_canonical(ovs, DVR_PIPELINE)


# (match, actions) as written -> (match, actions) as dump-flows prints them
SPELLINGS = [
    (("dl_type=0x0806",), "drop", ("arp",), "drop"),
    (("ipv6", "nw_proto=58", "icmpv6_type=134"), "drop", ("icmp6", "icmp_type=134"), "drop"),
    (("dl_src=FA:16:3E:EC:F3:DD",), "drop", ("dl_src=fa:16:3e:ec:f3:dd",), "drop"),
    (("ip", "nw_dst=10.0.0.1/32"), "drop", ("ip", "nw_dst=10.0.0.1"), "drop"),
    (("tun_id=38",), "drop", ("tun_id=0x26",), "drop"),
    (("dl_vlan=0x2",), "drop", ("dl_vlan=2",), "drop"),
    (("vlan_tci=0x0000",), "drop", ("vlan_tci=0x0000/0x1fff",), "drop"),
    ((), "set_field:fa:16:3f:b2:34:82->eth_src", (), "mod_dl_src:fa:16:3f:b2:34:82"),
    ((), "set_field:fa:16:3e:ec:f3:dd->eth_dst", (), "mod_dl_dst:fa:16:3e:ec:f3:dd"),
    (("dl_vlan=1",), "pop_vlan,output:2", ("dl_vlan=1",), "strip_vlan,output:2"),
    ((), "push_vlan:0x8100,set_field:4097->vlan_vid", (), "mod_vlan_vid:1"),
    ((), "set_tunnel:0x26,output:2", (), "load:0x26->NXM_NX_TUN_ID[],output:2"),
    ((), "set_tunnel64:0x26", (), "load:0x26->NXM_NX_TUN_ID[]"),
    ((), "set_field:0x26->tun_id", (), "load:0x26->NXM_NX_TUN_ID[]"),
    ((), "in_port", (), "IN_PORT"),
    ((), "output:IN_PORT", (), "IN_PORT"),
    ((), "normal", (), "NORMAL"),
    ((), "2", (), "output:2"),
    ((), "goto_table:2", (), "resubmit(,2)"),
    ((), "", (), "drop"),
]


@pytest.mark.parametrize("match, actions, printed_match, printed_actions", SPELLINGS)
def test_non_canonical_spellings_print_in_their_canonical_form(
        ovs, match, actions, printed_match, printed_actions):
    add_test_bridge(ovs, "br-x")
    driver = OpenFlow(ovs.rundir)
    written = Flow("br-x", 1, 1, match, actions, C)
    driver.apply("br-x", add=[written])
    (dumped,) = driver.dump("br-x", cookie=C)
    assert (set(dumped.match), dumped.actions) == (set(printed_match), printed_actions)
    assert dumped != written  # written this way, a flow would be rewritten on every pass
