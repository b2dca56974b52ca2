"""The bulk paths on the real kernel: thousands of permanent neighbours and routes per call."""

from __future__ import annotations

import errno

import pytest

from dvr_agent.drivers.errors import DriverError, InvalidInput
from dvr_agent.state import Address, Neighbour, Route
from tests.functional import netlink_fixtures
from tests.functional.netlink_fixtures import ip

new_namespace = netlink_fixtures.new_namespace
netlink = netlink_fixtures.netlink


@pytest.fixture
def router(netlink):
    netlink.veth_add("qr-1", "qr-peer", netlink.namespace)
    netlink.link_set("qr-1", up=True)
    netlink.addr_add(Address("qr-1", "10.0.0.1/16"))
    return netlink


def _neighbours(count: int, device: str = "qr-1", mac_prefix: str = "fa:16:3e") -> list[Neighbour]:
    return [Neighbour(device, f"10.{1 + i // 65536}.{i // 256 % 256}.{i % 256}",
                      f"{mac_prefix}:{i >> 16:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}")
            for i in range(count)]


def _permanent_in_kernel(namespace: str) -> int:
    return len(ip("-n", namespace, "neigh", "show", "nud", "permanent").splitlines())


def test_ten_thousand_permanent_neighbours_are_read_back_exactly_then_deleted(router):
    entries = _neighbours(10_000)
    assert router.neigh_replace(entries) == 10_000
    assert router.neighbours() == frozenset(entries)
    assert _permanent_in_kernel(router.namespace) == 10_000
    line = ip("-n", router.namespace, "neigh", "show", "10.1.39.15")
    assert "lladdr fa:16:3e:00:27:0f PERMANENT" in line

    assert router.neigh_del(entries) == 10_000
    assert router.neighbours() == frozenset()
    assert _permanent_in_kernel(router.namespace) == 0


def test_writes_take_indexes_from_links_just_read_or_read_them(router):
    """With the caller's fresh read of the links, the bulk writes need no dump; a device
    it does not list (made since) is looked up, never an error."""
    links = router.links()
    entries = _neighbours(3)
    assert router.neigh_replace(entries, links) == 3
    assert router.neighbours() == frozenset(entries)
    router.veth_add("qr-9", "qr-peer9", router.namespace)
    router.link_set("qr-9", up=True)
    router.addr_add_many([Address("qr-9", "10.9.0.1/24")], links)  # qr-9 not in links
    route = Route("10.99.0.0/24", table=254, gateway=None, device="qr-9")
    assert router.route_replace_many([route], links) == 1
    assert route in router.routes()
    assert router.neigh_del(entries, router.links()) == 3


def test_replacing_the_same_neighbours_twice_changes_nothing(router):
    entries = _neighbours(2_000)
    router.neigh_replace(entries)
    before = (router.neighbours(), ip("-n", router.namespace, "neigh", "show"))
    router.neigh_replace(entries)
    assert (router.neighbours(), ip("-n", router.namespace, "neigh", "show")) == before


def test_replacing_a_neighbour_updates_its_mac(router):
    router.neigh_replace([Neighbour("qr-1", "10.0.0.5", "fa:16:3e:00:00:05")])
    router.neigh_replace([Neighbour("qr-1", "10.0.0.5", "FA-16-3E-00-00-55")])
    assert router.neighbours() == {Neighbour("qr-1", "10.0.0.5", "fa:16:3e:00:00:55")}


def test_deleting_absent_neighbours_is_success_and_counts_nothing(router):
    entries = _neighbours(10)
    router.neigh_replace(entries[:5])
    assert router.neigh_del(entries) == 5
    assert router.neigh_del(entries) == 0
    assert router.neigh_del([Neighbour("qr-gone", "10.0.0.5", "fa:16:3e:00:00:05")]) == 0


def test_neighbours_of_the_kernel_are_not_read(router):
    ip("-n", router.namespace, "neigh", "replace", "10.0.0.9", "lladdr", "fa:16:3e:00:00:09",
       "dev", "qr-1", "nud", "reachable")
    ip("-n", router.namespace, "neigh", "replace", "2001:db8::9", "lladdr", "fa:16:3e:00:00:0a",
       "dev", "qr-1", "nud", "permanent")
    assert router.neighbours() == {Neighbour("qr-1", "2001:db8::9", "fa:16:3e:00:00:0a")}


def test_a_bad_entry_anywhere_in_a_batch_changes_nothing(router):
    entries = [*_neighbours(500), Neighbour("qr-1", "10.0.0.500", "fa:16:3e:00:00:01")]
    with pytest.raises(InvalidInput, match=r"10\.0\.0\.500") as caught:
        router.neigh_replace(entries)
    assert caught.value.obj == entries[-1]
    bad_mac = [*_neighbours(500), Neighbour("qr-1", "10.0.0.7", "fa:16:3e:00:00")]
    with pytest.raises(InvalidInput):
        router.neigh_replace(bad_mac)
    assert router.neighbours() == frozenset()


def test_neighbours_on_a_missing_device_change_nothing(router):
    entries = [*_neighbours(100), Neighbour("qr-gone", "10.0.0.7", "fa:16:3e:00:00:07")]
    with pytest.raises(DriverError, match="qr-gone") as caught:
        router.neigh_replace(entries)
    assert caught.value.errno == errno.ENODEV
    assert router.neighbours() == frozenset()


def test_routes_in_bulk_are_read_back_exactly_then_deleted(router):
    routes = [Route(f"172.16.{i // 256}.{i % 256}/32", table=1000 + i % 3, gateway="10.0.0.254",
                    device="qr-1") for i in range(3_000)]
    assert router.route_replace_many(routes) == 3_000
    assert router.routes() == frozenset(routes)
    assert len(ip("-n", router.namespace, "route", "show", "table", "1001").splitlines()) == 1_000
    assert router.route_replace_many(routes) == 3_000  # replace: the same routes, no error
    assert router.routes() == frozenset(routes)
    assert router.route_del_many(routes) == 3_000
    assert router.route_del_many(routes) == 0
    assert router.routes() == frozenset()


def test_the_kernel_refusing_one_route_of_a_batch_names_that_route(router):
    routes = [Route(f"172.16.0.{i}/32", 1000, "10.0.0.254", "qr-1") for i in range(100)]
    refused = Route("172.17.0.0/24", 1000, "192.0.2.1", "qr-1")  # gateway not on-link
    with pytest.raises(DriverError, match="1 of 101 refused") as caught:
        router.route_replace_many([*routes[:50], refused, *routes[50:]])
    assert caught.value.obj == refused
    assert caught.value.errno == errno.ENETUNREACH
    # the kernel applies each message on its own: the others are in place
    assert router.routes() == frozenset(routes)
