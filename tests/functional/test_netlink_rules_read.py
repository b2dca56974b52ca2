"""Rules as the struct-decoded dump reads them back: every selector Rule can express, in
both families, and nothing that Rule cannot express (somebody else's rules stay out)."""

from __future__ import annotations

from dvr_agent.state import Rule
from tests.functional import netlink_fixtures
from tests.functional.netlink_fixtures import ip

new_namespace = netlink_fixtures.new_namespace
netlink = netlink_fixtures.netlink


def test_rules_on_source_input_device_and_ipv6_are_read_back_with_priority_and_table(netlink):
    netlink.veth_add("rfp-1", "rfp-peer", netlink.namespace)
    ip("-n", netlink.namespace, "rule", "add", "from", "192.0.2.7", "lookup", "16",
       "priority", "57481")
    ip("-n", netlink.namespace, "rule", "add", "iif", "rfp-1", "lookup", "4000",
       "priority", "40000")
    ip("-n", netlink.namespace, "-6", "rule", "add", "from", "2001:db8::/64", "lookup",
       "300", "priority", "1234")

    assert netlink.rules() == {
        Rule(priority=57481, table=16, src="192.0.2.7/32"),
        Rule(priority=40000, table=4000, iif="rfp-1"),
        Rule(priority=1234, table=300, src="2001:db8::/64"),
    }


def test_rules_with_selectors_a_rule_cannot_express_are_not_read(netlink):
    ip("-n", netlink.namespace, "rule", "add", "fwmark", "0x10", "lookup", "20",
       "priority", "100")
    ip("-n", netlink.namespace, "rule", "add", "to", "198.51.100.0/24", "lookup", "21",
       "priority", "101")
    ip("-n", netlink.namespace, "rule", "add", "from", "198.51.100.0/24", "blackhole",
       "priority", "102")

    assert netlink.rules() == frozenset()
