"""dvr-server as a process on a real RabbitMQ and database, with fake agents on the bus.

Every user action of the captured neutron-server scenario, and who hears about it: the
right hosts, only them, with Neutron's methods and payloads.
"""

from __future__ import annotations

import concurrent.futures
import re
import sqlite3
import uuid

import pytest
from oslo_config import cfg

from dvr_agent.ctl.client import ManagementClient
from dvr_agent.rpc import protocol as p
from dvr_agent.rpc import transport as rpc_transport
from tests.fixtures.dvr_server import DvrServer
from tests.fixtures.fake_agents import FakeHost, settle, stop_all
from tests.fixtures.server_world import l3_state

NEUTRON_MAC = re.compile(r"^FA-16-3F(-[0-9A-F]{2}){3}$")
L3_METHODS = {"routers_updated", "router_removed_from_agent", "router_deleted"}


@pytest.fixture
def transport(rabbitmq):
    cfg.CONF([], project="dvr-agent-tests")
    transport = rpc_transport.get_transport(cfg.CONF, url=rabbitmq.url())
    yield transport
    transport.cleanup()


@pytest.fixture
def server(rabbitmq, tmp_path):
    srv = DvrServer(rabbitmq.url(), str(tmp_path / "state")).start()
    yield srv
    srv.stop()


@pytest.fixture
def mgmt(transport, server):
    return ManagementClient(transport, timeout=30)


@pytest.fixture
def hosts(transport, server):
    """network (dvr_snat), compute1 and compute2 (dvr), with names unique to this test."""
    tag = uuid.uuid4().hex[:6]
    made = {"network": FakeHost(transport, f"network-{tag}", mode=p.AGENT_MODE_DVR_SNAT,
                                tunnel_ip="192.0.2.10"),
            "compute1": FakeHost(transport, f"compute1-{tag}", tunnel_ip="192.0.2.11"),
            "compute2": FakeHost(transport, f"compute2-{tag}", tunnel_ip="192.0.2.12")}
    try:
        for host in made.values():
            host.start()
            assert host.report() == "new"
        yield made
    finally:
        stop_all(list(made.values()))


def l3_heard(hosts) -> dict[str, set[tuple[str, str]]]:
    """Per host name: (method, router id or '-') of the L3 casts it received, and clear."""
    heard = {}
    for name, host in hosts.items():
        got = set()
        for r in [r for m in sorted(L3_METHODS) for r in host.take(m)]:
            if r.method in L3_METHODS:
                router = (r.kwargs.get("routers") or [r.kwargs.get("router_id")
                          or r.kwargs.get("payload", {}).get("router_id")])
                got |= {(r.method, rid) for rid in router}
        heard[name] = got
    return heard


def fanouts(hosts, method: str) -> list[list[dict]]:
    """For each host, the kwargs of ``method`` casts it got (a fanout reaches everyone)."""
    return [[r.kwargs for r in h.received if r.method == method] for h in hosts.values()]


def wait_l3(hosts, expected: dict[str, set]) -> dict[str, set]:
    """Wait for the expected L3 casts, then check nothing else came: 'only them'."""
    def arrived() -> bool:
        return all(
            expected.get(name, set()) <= {
                (r.method, rid) for r in h.received if r.method in L3_METHODS
                for rid in (r.kwargs.get("routers") or [r.kwargs.get("router_id") or
                            r.kwargs.get("payload", {}).get("router_id")])}
            for name, h in hosts.items())
    settle(list(hosts.values()), arrived)
    heard = l3_heard(hosts)
    assert heard == {name: expected.get(name, set()) for name in hosts}
    return heard


def test_every_event_reaches_exactly_the_right_hosts(hosts, mgmt):
    net, c1 = hosts["network"].host, hosts["compute1"].host
    mgmt.execute("network.create", name="net1")
    mgmt.execute("network.create", name="net2")
    ext = mgmt.execute("network.create", name="ext", external=True)["id"]
    sub1 = mgmt.execute("subnet.create", network="net1", cidr="10.10.1.0/24")["id"]
    mgmt.execute("subnet.create", network="net2", cidr="10.10.2.0/24", name="sub2")
    mgmt.execute("subnet.create", network="ext", cidr="203.0.113.0/24")
    r = mgmt.execute("router.create", name="r1")["id"]

    # gateway set: bound to the live dvr_snat agent, which alone is told
    assert mgmt.execute("router.set_gateway", router="r1", network="ext")["gw_port_host"] == net
    wait_l3(hosts, {"network": {("routers_updated", r)}})
    # interface on sub1: only the router's hosts (the SNAT host so far)
    mgmt.execute("router.add_interface", router="r1", subnet=sub1)
    wait_l3(hosts, {"network": {("routers_updated", r)}})
    # a VM on compute1: the router comes to compute1 only; every L3 agent learns its ARP entry
    vm = mgmt.execute("port.create", network="net1", host=c1, name="vm1")
    wait_l3(hosts, {"compute1": {("routers_updated", r)}})
    arp = {"router_id": r, "arp_table": {"ip_address": vm["fixed_ips"][0]["ip_address"],
                                         "mac_address": vm["mac_address"], "subnet_id": sub1}}
    assert fanouts(hosts, "add_arp_entry") == [[{"payload": arp}]] * 3
    [router] = hosts["compute1"].sync_routers()
    assert (router["id"], router["gw_port_host"]) == (r, net)
    assert hosts["compute2"].sync_routers() == []
    # interface on sub2: every host of the router
    mgmt.execute("router.add_interface", router="r1", subnet="sub2")
    wait_l3(hosts, {"network": {("routers_updated", r)}, "compute1": {("routers_updated", r)}})
    # floating IP: created unassociated (nobody), associated / disassociated (the VM's host)
    fip = mgmt.execute("floatingip.create", network="ext")
    mgmt.execute("floatingip.associate", floatingip=fip["id"], port="vm1")
    wait_l3(hosts, {"compute1": {("routers_updated", r)}})
    [router] = hosts["compute1"].sync_routers([r])
    assert [f["floating_ip_address"] for f in router["_floatingips"]] == \
        [fip["floating_ip_address"]]
    assert [pt["binding:host_id"] for pt in router["_floatingip_agent_interfaces"]] == [c1]
    mgmt.execute("floatingip.disassociate", floatingip=fip["floating_ip_address"])
    wait_l3(hosts, {"compute1": {("routers_updated", r)}})
    mgmt.execute("floatingip.associate", floatingip=fip["id"], port=vm["id"])
    wait_l3(hosts, {"compute1": {("routers_updated", r)}})
    # the VM goes: compute1 loses the router; its FIP's router update goes to the SNAT host
    for h in hosts.values():
        h.take()
    mgmt.execute("port.delete", port="vm1")
    wait_l3(hosts, {"compute1": {("router_removed_from_agent", r)},
                    "network": {("routers_updated", r)}})
    assert fanouts(hosts, "del_arp_entry") == [[{"payload": arp}]] * 3
    assert [{"port_id": vm["id"]} in k for k in fanouts(hosts, "port_delete")] == [True] * 3
    assert hosts["compute1"].sync_routers() == []
    # gateway cleared: the SNAT host had nothing else, so the router leaves it; fip-E goes
    for h in hosts.values():
        h.take()
    mgmt.execute("floatingip.delete", floatingip=fip["id"])
    mgmt.execute("router.clear_gateway", router="r1")
    wait_l3(hosts, {"network": {("router_removed_from_agent", r)}})
    assert [{"ext_net_id": ext} in k for k in fanouts(hosts, "fipnamespace_delete_on_ext_net")] \
        == [True] * 3
    # interfaces removed, router deleted: the deletion is fanned out
    mgmt.execute("router.remove_interface", router="r1", subnet=sub1)
    mgmt.execute("router.remove_interface", router="r1", subnet="sub2")
    mgmt.execute("router.delete", router="r1")
    wait_l3(hosts, {name: {("router_deleted", r)} for name in hosts})


def test_dvr_macs_and_tunnels_are_fanned_out_to_every_ovs_agent(hosts):
    c1, c2 = hosts["compute1"], hosts["compute2"]
    first = c1.dvr("get_dvr_mac_address_by_host", host=c1.host)
    assert first["host"] == c1.host and NEUTRON_MAC.match(first["mac_address"])
    second = c2.dvr("get_dvr_mac_address_by_host", host=c2.host)
    assert c2.dvr("get_dvr_mac_address_by_host", host=c2.host) == second
    settle(list(hosts.values()), lambda: all(
        len(f) == 2 for f in fanouts(hosts, "dvr_mac_address_update")))
    for got in fanouts(hosts, "dvr_mac_address_update"):
        assert got == [{"dvr_macs": [first]}, {"dvr_macs": sorted(
            [first, second], key=lambda m: m["host"])}]
    assert c1.dvr("get_dvr_mac_address_list") == sorted([first, second],
                                                        key=lambda m: m["host"])
    reply = c1.call(p.TOPIC_PLUGIN, p.PLUGIN_METHOD_VERSIONS["tunnel_sync"], "tunnel_sync",
                    tunnel_ip="192.0.2.11", tunnel_type="vxlan", host=c1.host)
    assert reply == {"tunnels": [{"host": c1.host, "ip_address": "192.0.2.11",
                                  "udp_port": 4789}]}
    settle(list(hosts.values()), lambda: all(fanouts(hosts, "tunnel_update")))
    assert fanouts(hosts, "tunnel_update") == [[{"tunnel_ip": "192.0.2.11",
                                                 "tunnel_type": "vxlan"}]] * 3


def test_device_up_activates_the_port_and_populates_l2_everywhere(hosts, mgmt):
    c1 = hosts["compute1"]
    assert c1.report_ovs() == "new"
    net = mgmt.execute("network.create", name="net1")
    mgmt.execute("subnet.create", network="net1", cidr="10.10.1.0/24")
    vm = mgmt.execute("port.create", network="net1", host=c1.host)
    for h in hosts.values():
        h.take()
    reply = c1.call(p.TOPIC_PLUGIN, p.PLUGIN_METHOD_VERSIONS["update_device_list"],
                    "update_device_list", devices_up=[vm["id"]], devices_down=[],
                    agent_id="ovs-agent", host=c1.host)
    assert reply["devices_up"] == [vm["id"]] and reply["failed_devices_up"] == []
    assert mgmt.execute("port.show", port=vm["id"])["status"] == "ACTIVE"
    settle(list(hosts.values()), lambda: all(fanouts(hosts, "add_fdb_entries")))
    expected = {"fdb_entries": {net["id"]: {
        "network_type": "vxlan", "segment_id": net["provider:segmentation_id"],
        "ports": {"192.0.2.11": [["00:00:00:00:00:00", "0.0.0.0"],
                                 [vm["mac_address"], vm["fixed_ips"][0]["ip_address"]]]}}}}
    assert fanouts(hosts, "add_fdb_entries") == [[expected]] * 3


def test_dvr_macs_are_unique_across_1000_hosts_requested_concurrently(rabbitmq, transport,
                                                                      tmp_path):
    """16 random bits only (dvr_base_mac fixes 4 octets): collisions happen and are retried."""
    srv = DvrServer(rabbitmq.url(), str(tmp_path / "state"),
                    extra={"dvr_base_mac": "fa:16:3f:5a:00:00", "dvr_mac_retries": 100,
                           "debug": "false"}).start()
    try:
        agent = FakeHost(transport, "caller")
        names = [f"host-{i:04d}" for i in range(1000)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
            replies = list(pool.map(
                lambda h: agent.dvr("get_dvr_mac_address_by_host", host=h), names))
        assert [r["host"] for r in replies] == names
        macs = [r["mac_address"] for r in replies]
        assert len(set(macs)) == 1000
        assert all(m.startswith("FA-16-3F-5A-") for m in macs)
        listed = agent.dvr("get_dvr_mac_address_list")
        assert {m["host"]: m["mac_address"] for m in listed} == dict(zip(names, macs,
                                                                         strict=True))
        with sqlite3.connect(tmp_path / "state" / "dvr-server.sqlite") as db:
            rows = db.execute("SELECT count(*), count(DISTINCT mac_address) FROM dvr_host_macs")
            assert rows.fetchone() == (1000, 1000)
    finally:
        srv.stop()


def test_restart_keeps_every_mac_and_scheduling_decision(hosts, mgmt, server):
    net, c1 = hosts["network"], hosts["compute1"]
    mgmt.execute("network.create", name="net1")
    mgmt.execute("network.create", name="ext", external=True)
    mgmt.execute("subnet.create", network="net1", cidr="10.10.1.0/24", name="sub1")
    mgmt.execute("subnet.create", network="ext", cidr="203.0.113.0/24")
    mgmt.execute("router.create", name="r1")
    mgmt.execute("router.add_interface", router="r1", subnet="sub1")
    mgmt.execute("router.set_gateway", router="r1", network="ext")
    mgmt.execute("port.create", network="net1", host=c1.host, name="vm1")
    mgmt.execute("floatingip.create", network="ext", port="vm1")
    macs = {h.host: h.dvr("get_dvr_mac_address_by_host", host=h.host) for h in hosts.values()}
    before = {"router": mgmt.execute("router.show", router="r1"),
              "c1": c1.sync_routers(), "net": net.sync_routers(),
              "hosts": mgmt.execute("host.list")}
    server.restart()
    assert {h.host: h.dvr("get_dvr_mac_address_by_host", host=h.host)
            for h in hosts.values()} == macs
    after = {"router": mgmt.execute("router.show", router="r1"),
             "c1": c1.sync_routers(), "net": net.sync_routers(),
             "hosts": mgmt.execute("host.list")}
    assert after == before
    assert after["router"]["hosts"] == sorted([c1.host, net.host])


def test_concurrent_heartbeats_and_syncs_never_lock_sqlite(transport, mgmt, server):
    mgmt.execute("network.create", name="net1")
    mgmt.execute("subnet.create", network="net1", cidr="10.10.1.0/24", name="sub1")
    mgmt.execute("router.create", name="r1")
    mgmt.execute("router.add_interface", router="r1", subnet="sub1")
    for i in range(40):
        mgmt.execute("port.create", network="net1", host=f"load-{i}")
    caller = FakeHost(transport, "load-caller")

    def one(i: int) -> None:
        host = f"load-{i % 40}"
        status = caller.call(p.TOPIC_REPORTS, p.REPORTS_VERSION, "report_state",
                             **l3_state(host, p.AGENT_MODE_DVR))
        assert status in ("new", "alive")
        assert len(caller.sync_routers_of(host)) == 1

    with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
        list(pool.map(one, range(800)))
    with open(server.log_path) as f:
        log = f.read()
    assert "database is locked" not in log
    # ERROR records, not the option dump at start (logging_exception_prefix names ERROR)
    assert not re.search(r"^\S+ \S+ \d+ ERROR ", log, re.M)
