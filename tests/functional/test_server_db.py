"""The server's database layer on SQLite and on a real PostgreSQL: schema, MACs, decisions."""

from __future__ import annotations

import concurrent.futures
import itertools
import random
import threading

import pytest
import sqlalchemy

from dvr_agent.rpc import protocol as p
from dvr_agent.server.db import migrate
from dvr_agent.server.domain import macs
from tests.fixtures.server_world import CONTEXT, World, build_dvr_topology


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path, postgres):
    """``postgres`` is named here, not looked up lazily: a session fixture must be set up
    before the leak guard's snapshot of the first test that uses it."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/dvr.sqlite"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def world(url):
    w = World(url)
    yield w
    w.close()  # closes every connection: no postgres backend outlives the test


def test_schema_is_at_head_idempotently_with_dvr_host_macs_keyed_by_host(world):
    migrate.upgrade(world.db.engine)  # a second upgrade changes nothing
    assert migrate.current_revision(world.db.engine) == migrate.head_revision()
    inspector = sqlalchemy.inspect(world.db.engine)
    assert {"networks", "subnets", "ports", "ipallocations", "routers", "routerports",
            "floatingips", "fip_agent_gateway_ports", "distributed_port_bindings", "agents",
            "tunnel_endpoints", "dvr_host_macs"} <= set(inspector.get_table_names())
    assert inspector.get_pk_constraint("dvr_host_macs")["constrained_columns"] == ["host"]
    unique = [u["column_names"] for u in inspector.get_unique_constraints("dvr_host_macs")]
    assert ["mac_address"] in unique


def test_dvr_mac_collision_draws_another_and_keeps_the_first_owner(world):
    taken = world.db.write(lambda s: macs.dvr_mac_for_host(s, "h1", "fa:16:3f:00:00:00"))[0]
    draws = iter([int(taken.replace(":", "")[6:], 16), 0x00beef])
    mac, created = world.db.write(lambda s: macs.dvr_mac_for_host(
        s, "h2", "fa:16:3f:00:00:00", rng=lambda bits: next(draws)))
    assert (mac, created) == ("fa:16:3f:00:be:ef", True)
    assert world.dvr.get_dvr_mac_address_list(CONTEXT) == [
        {"host": "h1", "mac_address": macs.neutron_mac(taken)},
        {"host": "h2", "mac_address": "FA-16-3F-00-BE-EF"}]


def test_dvr_macs_stay_unique_when_hosts_race_in_a_tiny_mac_space(world):
    """64 possible MACs, 48 hosts at once: collisions are certain; each is retried."""
    seeded = random.Random(7)
    lock = threading.Lock()

    def rng(bits: int) -> int:
        with lock:
            return seeded.getrandbits(6)

    def allocate(host: str) -> str:
        return world.db.write(lambda s: macs.dvr_mac_for_host(
            s, host, "fa:16:3f:00:00:00", retries=500, rng=rng))[0]

    hosts = [f"h{i}" for i in range(48)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        got = list(pool.map(allocate, hosts))
    assert len(set(got)) == 48
    assert world.db.read(lambda s: macs.dvr_mac_list(s)) == sorted(
        [{"host": h, "mac_address": macs.neutron_mac(m)} for h, m in zip(hosts, got,
                                                                         strict=True)],
        key=lambda m: m["host"])


def test_hosting_rules_hold_on_this_database(world):
    ids = build_dvr_topology(world)
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    assert world.ctl("router.show", router="r1")["hosts"] == []
    world.ctl("router.set_gateway", router="r1", network="ext")
    world.ctl("port.create", network="net1", host="compute1", name="vm1")
    world.ctl("port.create", network="net2", host="compute2")
    assert world.ctl("router.show", router="r1")["hosts"] == ["compute1", "network"]
    world.ctl("router.add_interface", router="r1", subnet="sub2")
    assert world.ctl("router.show", router="r1")["hosts"] == ["compute1", "compute2",
                                                              "network"]
    assert world.l3.get_router_ids(CONTEXT, host="compute2") == [ids["router"]]
    world.ctl("floatingip.create", network="ext", port="vm1")
    [router] = world.l3.sync_routers(CONTEXT, host="compute1")
    assert len(router["_floatingips"]) == 1 and len(router["_snat_router_interfaces"]) == 2
    world.ctl("port.delete", port="vm1")
    assert world.ctl("router.show", router="r1")["hosts"] == ["compute2", "network"]


def test_decisions_and_macs_survive_reopening_the_database(url):
    first = World(url)
    try:
        build_dvr_topology(first)
        first.ctl("router.add_interface", router="r1", subnet="sub1")
        first.ctl("router.set_gateway", router="r1", network="ext")
        first.ctl("port.create", network="net1", host="compute1")
        macs_before = [first.dvr.get_dvr_mac_address_by_host(CONTEXT, host=h)
                       for h in ("network", "compute1")]
        sync_before = first.l3.sync_routers(CONTEXT, host="compute1")
    finally:
        first.close()
    second = World(url)
    try:
        assert second.dvr.get_dvr_mac_address_list(CONTEXT) == sorted(
            macs_before, key=lambda m: m["host"])
        assert second.ctl("router.show", router="r1")["hosts"] == ["compute1", "network"]
        assert second.l3.sync_routers(CONTEXT, host="compute1") == sync_before
    finally:
        second.close()


def test_concurrent_heartbeats_allocations_and_syncs_all_succeed(world):
    build_dvr_topology(world)
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    for i in range(8):
        world.ctl("port.create", network="net1", host=f"c{i}")
    counter = itertools.count()

    def work(i: int) -> None:
        host = f"c{i % 8}"
        world.report(host, p.AGENT_MODE_DVR)
        assert len(world.l3.sync_routers(CONTEXT, host=host)) == 1
        world.dvr.get_dvr_mac_address_by_host(CONTEXT, host=host)
        world.ctl("port.create", network="net1", host=host)
        next(counter)

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(work, range(160)))
    assert next(counter) == 160
    ports = world.ctl("port.list")
    addresses = [pt["fixed_ips"][0]["ip_address"] for pt in ports if pt["fixed_ips"]]
    assert len(addresses) == len(set(addresses))
