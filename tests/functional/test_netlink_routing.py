"""Addresses, routes and rules on the real kernel, read back as the values of state.py."""

from __future__ import annotations

import errno

import pytest

from dvr_agent.drivers.errors import DriverError, InvalidInput
from dvr_agent.state import Address, Route, Rule
from tests.functional import netlink_fixtures
from tests.functional.netlink_fixtures import ip

new_namespace = netlink_fixtures.new_namespace
netlink = netlink_fixtures.netlink


@pytest.fixture
def router(netlink):
    """A namespace with one device up, as a qrouter has: qr-1 with 10.0.0.1/24."""
    netlink.veth_add("qr-1", "qr-peer", netlink.namespace)
    netlink.link_set("qr-1", up=True)
    netlink.link_set("qr-peer", up=True)
    netlink.addr_add(Address("qr-1", "10.0.0.1/24"))
    return netlink


def test_addresses_read_back_ipv4_and_global_ipv6_never_link_local(router):
    router.addr_add(Address("qr-1", "2001:db8::1/64"))
    router.addr_add(Address("qr-1", "169.254.93.94/31"))
    assert "fe80::" in ip("-n", router.namespace, "-6", "addr", "show", "dev", "qr-1")
    assert router.addresses() == {Address("qr-1", "10.0.0.1/24"),
                                  Address("qr-1", "2001:db8::1/64"),
                                  Address("qr-1", "169.254.93.94/31")}


def test_adding_and_deleting_an_address_twice_changes_nothing_the_second_time(router):
    extra = Address("qr-1", "10.0.1.1/24")
    router.addr_add(extra)
    before = router.addresses()
    router.addr_add(extra)
    assert router.addresses() == before
    router.addr_del(extra)
    router.addr_del(extra)
    assert router.addresses() == {Address("qr-1", "10.0.0.1/24")}


def test_deleting_an_address_of_a_missing_device_is_success(router):
    router.addr_del(Address("qr-gone", "10.0.0.1/24"))


def test_adding_an_address_to_a_missing_device_is_an_error(router):
    with pytest.raises(DriverError) as caught:
        router.addr_add(Address("qr-gone", "10.0.0.1/24"))
    assert caught.value.errno == errno.ENODEV
    assert caught.value.obj == Address("qr-gone", "10.0.0.1/24")


def test_rule_and_table_with_a_default_route_and_a_host_route(router):
    router.rule_add(Rule(priority=32768, table=1000, src="10.0.0.0/24"))
    router.route_replace(Route("0.0.0.0/0", table=1000, gateway="10.0.0.254", device="qr-1"))
    router.route_replace(Route("203.0.113.7/32", table=1000, device="qr-1"))

    assert router.rules() == {Rule(32768, 1000, "10.0.0.0/24")}
    assert router.routes() == {
        Route("0.0.0.0/0", 1000, "10.0.0.254", "qr-1"),
        Route("203.0.113.7/32", 1000, None, "qr-1"),
    }
    table = ip("-n", router.namespace, "route", "show", "table", "1000")
    assert "default via 10.0.0.254 dev qr-1 proto static" in table
    assert "203.0.113.7 dev qr-1 proto static scope link" in table
    assert "32768:\tfrom 10.0.0.0/24 lookup 1000" in ip("-n", router.namespace, "rule")


def test_connected_routes_and_default_rules_are_not_read(router):
    # the kernel made 10.0.0.0/24 (proto kernel) and the local/main/default rules
    assert "10.0.0.0/24 dev qr-1 proto kernel" in ip("-n", router.namespace, "route")
    assert router.routes() == frozenset()
    assert router.rules() == frozenset()


def test_routes_in_main_and_big_tables_and_ipv6(router):
    router.addr_add(Address("qr-1", "2001:db8::1/64"))
    wanted = {Route("198.51.100.0/24", gateway="10.0.0.2", device="qr-1"),
              Route("192.0.2.0/24", table=4_000_000_000, gateway="10.0.0.3", device="qr-1"),
              Route("2001:db8:1::/64", table=70000, gateway="2001:db8::2", device="qr-1")}
    for route in wanted:
        router.route_replace(route)
    assert router.routes() == wanted


def test_applying_the_same_routes_and_rules_twice_changes_nothing(router):
    def apply() -> None:
        router.rule_add(Rule(32000, 1000, "10.0.0.0/24"))
        router.rule_add(Rule(32001, 1001, iif="qr-1"))
        router.route_replace(Route("0.0.0.0/0", 1000, "10.0.0.254", "qr-1"))

    apply()
    before = (router.routes(), router.rules(), ip("-n", router.namespace, "rule"))
    apply()
    assert (router.routes(), router.rules(), ip("-n", router.namespace, "rule")) == before


def test_replacing_a_route_changes_its_gateway(router):
    router.route_replace(Route("0.0.0.0/0", 1000, "10.0.0.254", "qr-1"))
    router.route_replace(Route("0.0.0.0/0", 1000, "10.0.0.253", "qr-1"))
    assert router.routes() == {Route("0.0.0.0/0", 1000, "10.0.0.253", "qr-1")}


def test_deleting_routes_and_rules_twice_is_success(router):
    route, rule = Route("0.0.0.0/0", 1000, "10.0.0.254", "qr-1"), Rule(32000, 1000, "10.0.0.0/24")
    router.route_replace(route)
    router.rule_add(rule)
    for _ in range(2):
        router.route_del(route)
        router.rule_del(rule)
    assert router.routes() == frozenset() and router.rules() == frozenset()


def test_a_route_the_kernel_refuses_is_a_driver_error_naming_it(router):
    unreachable = Route("0.0.0.0/0", 1000, "192.0.2.1", "qr-1")  # not on qr-1's subnet
    with pytest.raises(DriverError) as caught:
        router.route_replace(unreachable)
    assert caught.value.obj == unreachable
    assert caught.value.errno == errno.ENETUNREACH
    assert router.routes() == frozenset()


@pytest.mark.parametrize("call", [
    lambda nl: nl.addr_add(Address("qr-1", "10.0.0.300/24")),
    lambda nl: nl.addr_add(Address("qr-1", "10.0.0.5")),  # no prefix length
    lambda nl: nl.addr_add(Address("qr-1234567890abc", "10.0.0.5/24")),
    lambda nl: nl.route_replace(Route("10.0.0.1/24", 1000, "10.0.0.254", "qr-1")),  # host bits
    lambda nl: nl.route_replace(Route("10.9.0.0/16", 255, "10.0.0.254", "qr-1")),  # local
    lambda nl: nl.route_replace(Route("10.9.0.0/16", 0, "10.0.0.254", "qr-1")),
    lambda nl: nl.route_replace(Route("10.9.0.0/16", 2**32, "10.0.0.254", "qr-1")),
    lambda nl: nl.route_replace(Route("10.9.0.0/16", 1000, "10.0.0.254")),  # no device
    lambda nl: nl.route_replace(Route("10.9.0.0/16", 1000, "2001:db8::1", "qr-1")),
    lambda nl: nl.route_replace_many([Route("10.9.0.0/16", 1000, "10.0.0.254", "qr-1"),
                                      Route("10.8.0.0/16", 1000, "bogus", "qr-1")]),
    lambda nl: nl.rule_add(Rule(0, 1000, "10.0.0.0/24")),
    lambda nl: nl.rule_add(Rule(2**32, 1000, "10.0.0.0/24")),
    lambda nl: nl.rule_add(Rule(100, 255, "10.0.0.0/24")),
    lambda nl: nl.rule_add(Rule(100, 1000, "10.0.0.0/33")),
], ids=["octet", "no-prefix", "long-device", "host-bits", "local-table", "table-0",
        "table-2^32", "no-device", "gateway-family", "bad-one-in-a-batch",
        "priority-0", "priority-2^32", "rule-local-table", "src-prefix"])
def test_bad_input_is_refused_before_anything_changes(router, call):
    before = (router.addresses(), router.routes(), router.rules())
    with pytest.raises(InvalidInput):
        call(router)
    assert (router.addresses(), router.routes(), router.rules()) == before
