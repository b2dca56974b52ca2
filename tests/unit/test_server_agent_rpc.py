"""What agents get back from the server: shapes and values as neutron-server's captures show."""

from __future__ import annotations

import json
import os
import re

import pytest

from dvr_agent.rpc import protocol as p
from tests.fixtures.server_world import CONTEXT, World, build_dvr_topology, by_method, ovs_state

# neutron-server 29's replies, copied from shared/reference/neutron-captures/
CAPTURES = os.path.join(os.path.dirname(__file__), "..", "data", "neutron_agent_rpc_calls.json")
NEUTRON_MAC = re.compile(r"^FA-16-3F(-[0-9A-F]{2}){3}$")


def captured(method: str, index: int = 0) -> dict:
    with open(CAPTURES) as f:
        calls = [c for c in json.load(f) if c["method"] == method]
    return calls[index]


@pytest.fixture
def world(tmp_path):
    w = World(f"sqlite:///{tmp_path}/dvr.sqlite")
    yield w
    w.close()


@pytest.fixture
def scenario(world):
    """The captures' topology at phase 13: router on sub1+sub2, gateway, a VM with a FIP."""
    ids = build_dvr_topology(world)
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    world.ctl("router.set_gateway", router="r1", network="ext")
    ids["vm"] = world.ctl("port.create", network="net1", host="compute1", name="vm1")["id"]
    world.ctl("router.add_interface", router="r1", subnet="sub2")
    ids["fip"] = world.ctl("floatingip.create", network="ext", port="vm1")["id"]
    world.take()
    return ids


def keys_deep(value):
    """The key structure of a payload, values ignored (lists by their first element)."""
    if isinstance(value, dict):
        return {k: keys_deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [keys_deep(value[0])] if value else []
    return None


def without(keys: set[str], value: dict) -> dict:
    return {k: v for k, v in value.items() if k not in keys}


def test_sync_routers_payload_has_neutrons_shape(world, scenario):
    [ours] = world.l3.sync_routers(CONTEXT, host="compute1", router_ids=None)
    [theirs] = captured("sync_routers", 3)["result"]  # compute1, after the FIP
    drop = {"standard_attr_id"}

    def shape(router):
        out = keys_deep(without(drop, router))
        for key in ("_interfaces", "_snat_router_interfaces", "_floatingip_agent_interfaces",
                    "_floatingips"):
            out[key] = [keys_deep(without(drop, router[key][0]))]
        out["gw_port"] = keys_deep(without(drop, router["gw_port"]))
        return out

    assert shape(ours) == shape(theirs)
    assert ours["gw_port_host"] == "network"
    assert ours["_floatingips"][0]["host"] == "compute1"
    assert [i["binding:vif_type"] for i in ours["_interfaces"]] == ["distributed"] * 2


def test_sync_routers_for_a_host_without_the_router_is_empty(world, scenario):
    assert world.l3.sync_routers(CONTEXT, host="compute2") == []
    assert world.l3.get_router_ids(CONTEXT, host="compute2") == []
    assert world.l3.get_router_ids(CONTEXT, host="compute1") == [scenario["router"]]
    assert world.l3.sync_routers(CONTEXT, host="compute1", router_ids=["other"]) == []


def test_snat_host_sync_has_no_other_hosts_floating_ips(world, scenario):
    [router] = world.l3.sync_routers(CONTEXT, host="network")
    assert "_floatingips" not in router and router["_floatingip_agent_interfaces"] == []
    assert len(router["_snat_router_interfaces"]) == 2
    assert {pt["binding:host_id"] for pt in router["_snat_router_interfaces"]} == {"network"}


def test_agent_gateway_port_is_made_lazily_in_neutrons_shape(world, scenario):
    world.report("compute2", p.AGENT_MODE_DVR)
    port = world.l3.get_agent_gateway_port(CONTEXT, network_id=scenario["ext"], host="compute2")
    theirs = captured("get_agent_gateway_port")["result"]
    assert keys_deep(port) == keys_deep(without({"standard_attr_id"}, theirs))
    assert (port["device_owner"], port["binding:host_id"]) == (p.DEVICE_OWNER_AGENT_GW,
                                                               "compute2")
    again = world.l3.get_agent_gateway_port(CONTEXT, fip_net=scenario["ext"], host="compute2")
    assert again["id"] == port["id"]


def test_ports_by_subnet_lists_bound_ports_but_not_the_router(world, scenario):
    ports = world.l3.get_ports_by_subnet(CONTEXT, host="compute1", subnet_id=scenario["sub1"])
    theirs = captured("get_ports_by_subnet")["result"]
    assert sorted(pt["device_owner"] for pt in ports) == sorted(
        pt["device_owner"] for pt in theirs)
    assert keys_deep(ports[0]) == keys_deep(without({"standard_attr_id"}, theirs[0]))


def test_an_arp_table_costs_the_same_queries_for_2_ports_or_20(world, scenario):
    """Port addresses and address pairs load with the ports, never one query per port:
    an agent with 1,000 routers asks 2,000 ARP tables when it starts, and per-port lazy
    loads doubled the server's CPU (benchmarks/README.md, profile 10)."""
    from sqlalchemy import event

    statements: list[str] = []
    event.listen(world.db.engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_a: statements.append(sql))

    def cost(call) -> int:
        statements.clear()
        call()
        return len(statements)

    def answers() -> int:
        return cost(lambda: world.l3.get_ports_by_subnet(CONTEXT, host="compute1",
                                                         subnet_id=scenario["sub1"]))
    few = answers()
    for i in range(18):
        world.ctl("port.create", network="net1", host="compute1", name=f"vm-x{i}")
        world.ctl("port.update", port=f"vm-x{i}", allowed_addresses=[f"10.0.1.{200 + i}"])
    world.take()
    assert len(world.l3.get_ports_by_subnet(CONTEXT, host="compute1",
                                            subnet_id=scenario["sub1"])) >= 20
    assert answers() == few


def test_sync_routers_costs_the_same_queries_for_1_router_or_6(world, scenario):
    """Routers, their ports and extra routes load together, never a few queries per
    router: a full sync at 1,000 routers took 7.6 s of the server's answers that way
    (benchmarks/README.md, fix 14). Floating IPs still cost a query or two each (200 at
    1,000 routers); the extra routers here have none."""
    from sqlalchemy import event

    statements: list[str] = []
    event.listen(world.db.engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_a: statements.append(sql))

    def cost() -> tuple[int, int]:
        world.l3.sync_routers(CONTEXT, host="compute1")  # binds new routers' ports here
        world.plane.new_generation()  # no cached answer
        statements.clear()
        routers = world.l3.sync_routers(CONTEXT, host="compute1")
        return len(routers), len(statements)

    one, few = cost()
    for i in range(5):
        world.ctl("network.create", name=f"n{i}")
        world.ctl("subnet.create", network=f"n{i}", cidr=f"10.30.{i}.0/24", name=f"s{i}")
        world.ctl("router.create", name=f"r-x{i}")
        world.ctl("router.add_interface", router=f"r-x{i}", subnet=f"s{i}")
        world.ctl("router.set_gateway", router=f"r-x{i}", network="ext")
        world.ctl("router.add_route", router=f"r-x{i}", destination="10.99.0.0/16",
                  nexthop=f"10.30.{i}.9")
        world.ctl("port.create", network=f"n{i}", host="compute1", name=f"vm-x{i}")
    world.take()
    assert one == 1
    assert cost() == (6, few)


def test_arp_tables_in_bulk_are_each_subnets_table_in_one_query(world, scenario):
    """Ours, not Neutron's: get_ports_by_subnets answers, per subnet, exactly what
    get_ports_by_subnet does, with the same number of statements for 2 subnets or 12."""
    from sqlalchemy import event

    statements: list[str] = []
    event.listen(world.db.engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_a: statements.append(sql))
    world.ctl("port.create", network="net2", host="compute2", name="vm2")
    subnets = [scenario["sub1"], scenario["sub2"]]
    statements.clear()
    tables = world.bulk.get_ports_by_subnets(CONTEXT, host="compute1", subnet_ids=subnets)
    two = len(statements)
    assert set(tables) == set(subnets)
    for subnet_id in subnets:
        assert tables[subnet_id] == world.l3.get_ports_by_subnet(
            CONTEXT, host="compute1", subnet_id=subnet_id)
    assert "vm2" in [pt["name"] for pt in tables[scenario["sub2"]]]
    for i in range(10):
        world.ctl("network.create", name=f"more{i}")
        subnets.append(world.ctl("subnet.create", network=f"more{i}",
                                 cidr=f"10.9.{i}.0/24", name=f"more{i}")["id"])
        world.ctl("port.create", network=f"more{i}", host="compute1", name=f"vm-m{i}")
    statements.clear()
    tables = world.bulk.get_ports_by_subnets(CONTEXT, host="compute1", subnet_ids=subnets)
    assert len(statements) == two
    assert all(len(tables[s]) == 1 for s in subnets[2:])


def test_a_port_with_addresses_on_two_subnets_is_in_both_tables_once(world, scenario):
    """Each table lists the port once, with all its addresses (the agent picks the one on
    its subnet), whether the table is asked for alone or in bulk."""
    from dvr_agent.server.db import models
    from dvr_agent.server.domain.notifications import Outcome

    def more_addresses(session):
        port = session.get(models.Port, scenario["vm"])
        for subnet, address in ((scenario["sub1"], "10.0.1.77"), (scenario["sub2"], "10.0.2.77")):
            session.add(models.IPAllocation(subnet_id=subnet, ip_address=address,
                                            port_id=port.id, network_id=port.network_id))
        return Outcome(None)
    world.plane.change(more_addresses)
    subnets = [scenario["sub1"], scenario["sub2"]]
    tables = world.bulk.get_ports_by_subnets(CONTEXT, host="compute1", subnet_ids=subnets)
    for subnet_id in subnets:
        alone = world.l3.get_ports_by_subnet(CONTEXT, host="compute1", subnet_id=subnet_id)
        assert tables[subnet_id] == alone
        [vm] = [port for port in alone if port["id"] == scenario["vm"]]
        addresses = [ip["ip_address"] for ip in vm["fixed_ips"]]
        assert len(addresses) == 3 and {"10.0.1.77", "10.0.2.77"} <= set(addresses)
        assert list(vm) == sorted(vm)  # the field order of neutron's answers


@pytest.mark.parametrize("subnet_ids", [None, [], "sub1", [""], [1],
                                        [f"s{i}" for i in range(p.MAX_SUBNETS_PER_CALL + 1)]])
def test_arp_tables_in_bulk_refuse_bad_subnet_lists(world, subnet_ids):
    from dvr_agent.server.errors import BadRequest
    with pytest.raises(BadRequest, match="subnet_ids must be a list of 1 to 500"):
        world.bulk.get_ports_by_subnets(CONTEXT, host="compute1", subnet_ids=subnet_ids)


def test_ports_on_host_by_subnet_are_the_hosts_vms(world, scenario):
    ports = world.dvr.get_ports_on_host_by_subnet(CONTEXT, host="compute1",
                                                  subnet=scenario["sub1"])
    theirs = captured("get_ports_on_host_by_subnet")["result"]
    assert [pt["id"] for pt in ports] == [scenario["vm"]]
    assert keys_deep(ports[0]) == keys_deep(without({"standard_attr_id"}, theirs[0]))
    assert world.dvr.get_ports_on_host_by_subnet(CONTEXT, host="compute2",
                                                 subnet=scenario["sub1"]) == []


def test_subnet_for_dvr_carries_the_gateway_mac(world, scenario):
    [router] = world.l3.sync_routers(CONTEXT, host="compute1")
    qr = next(i for i in router["_interfaces"] if i["subnets"][0]["id"] == scenario["sub1"])
    subnet = world.dvr.get_subnet_for_dvr(CONTEXT, subnet=scenario["sub1"], fixed_ips=[
        {"ip_address": "10.10.1.1", "subnet_id": scenario["sub1"]}])
    theirs = captured("get_subnet_for_dvr")["result"]
    assert keys_deep(subnet) == keys_deep(without({"standard_attr_id"}, theirs))
    assert subnet["gateway_mac"] == qr["mac_address"]
    assert subnet["allocation_pools"] == [{"start": "10.10.1.2", "end": "10.10.1.254"}]
    assert world.dvr.get_subnet_for_dvr(CONTEXT, subnet=scenario["sub1"])["gateway_mac"] == \
        qr["mac_address"]
    assert world.dvr.get_subnet_for_dvr(CONTEXT, subnet="nope") == {}


def test_dvr_mac_is_allocated_once_in_neutrons_spelling_and_fanned_out(world):
    first = world.dvr.get_dvr_mac_address_by_host(CONTEXT, host="compute1")
    assert first["host"] == "compute1" and NEUTRON_MAC.match(first["mac_address"])
    [update] = by_method(world.take())["dvr_mac_address_update"]
    assert update.fanout and update.topic == p.TOPIC_DVR_UPDATE
    assert update.kwargs == {"dvr_macs": [first]}
    assert world.dvr.get_dvr_mac_address_by_host(CONTEXT, host="compute1") == first
    assert world.take() == []  # nothing new: nothing fanned out
    second = world.dvr.get_dvr_mac_address_by_host(CONTEXT, host="network")
    [update] = by_method(world.take())["dvr_mac_address_update"]
    assert update.kwargs["dvr_macs"] == [first, second]  # the whole list, sorted by host
    assert world.dvr.get_dvr_mac_address_list(CONTEXT) == [first, second]


def test_report_state_answers_new_alive_revived(world):
    assert world.report("compute1", p.AGENT_MODE_DVR) == "new"
    world.clock.advance(30)
    assert world.report("compute1", p.AGENT_MODE_DVR) == "alive"
    world.clock.advance(76)
    assert world.report("compute1", p.AGENT_MODE_DVR) == "revived"
    [host] = world.ctl("host.list")
    assert (host["host"], host["alive"], host["agent_modes"]) == ("compute1", True, ["dvr"])
    world.clock.advance(76)
    assert world.ctl("host.list")[0]["alive"] is False


def test_tunnel_sync_records_the_endpoint_and_tells_the_others(world):
    reply = world.plugin.tunnel_sync(CONTEXT, tunnel_ip="192.0.2.11", tunnel_type="vxlan",
                                     host="compute1")
    assert reply == {"tunnels": [{"host": "compute1", "ip_address": "192.0.2.11",
                                  "udp_port": 4789}]}
    [update] = world.take()
    assert (update.method, update.topic, update.fanout, update.kwargs) == (
        "tunnel_update", p.TOPIC_TUNNEL_UPDATE, True,
        {"tunnel_ip": "192.0.2.11", "tunnel_type": "vxlan"})
    world.plugin.tunnel_sync(CONTEXT, tunnel_ip="192.0.2.11", tunnel_type="vxlan",
                             host="compute1")
    assert world.take() == []
    reply = world.plugin.tunnel_sync(CONTEXT, tunnel_ip="192.0.2.10", tunnel_type="vxlan",
                                     host="network")
    assert [t["host"] for t in reply["tunnels"]] == ["network", "compute1"]


def test_device_details_cost_the_same_queries_for_2_ports_or_12(world, scenario):
    """The ports named by id load together with their networks, addresses and pairs: an
    agent starting with 300 routers asks for 585 ports at once, and four lazy queries a
    port were 0.6 s of the server (benchmarks/README.md, fix 22). Devices named by a
    device name still resolve, one query each, with the same details."""
    from sqlalchemy import event

    statements: list[str] = []
    event.listen(world.db.engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_a: statements.append(sql))

    def details(devices: list[str]) -> tuple[list[dict], int]:
        statements.clear()
        reply = world.plugin.get_devices_details_list_and_failed_devices(
            CONTEXT, devices=devices, agent_id="ovs-compute1", host="compute1")
        return reply["devices"], len(statements)

    for i in range(11):
        world.ctl("port.create", network="net1", host="compute1", name=f"vm-d{i}")
        world.ctl("port.update", port=f"vm-d{i}", allowed_addresses=[f"10.0.1.{200 + i}"])
    world.take()
    more = [world.ctl("port.show", port=f"vm-d{i}")["id"] for i in range(11)]
    few_details, few = details([scenario["vm"], more[0]])
    many_details, many = details([scenario["vm"], *more])
    assert many == few
    assert many_details[:2] == few_details
    assert many_details[-1]["allowed_address_pairs"] == [
        {"ip_address": "10.0.1.210", "mac_address": many_details[-1]["mac_address"]}]
    by_name, _ = details([f"tap{more[-1][:11]}"])
    assert by_name[0] == {**many_details[-1], "device": f"tap{more[-1][:11]}"}


def test_device_up_makes_the_port_active_and_populates_l2(world, scenario):
    world.reports.report_state(CONTEXT, **ovs_state("compute1", "192.0.2.11"))
    world.reports.report_state(CONTEXT, **ovs_state("compute2", "192.0.2.12"))
    details = world.plugin.get_devices_details_list_and_failed_devices(
        CONTEXT, devices=[scenario["vm"], "nope"], agent_id="ovs-compute1", host="compute1")
    vm = details["devices"][0]
    assert (vm["network_type"], vm["segmentation_id"], vm["mtu"]) == ("vxlan", 1, 1450)
    assert details["devices"][1] == {"device": "nope"}
    reply = world.plugin.update_device_list(CONTEXT, devices_up=[scenario["vm"]],
                                            devices_down=[], agent_id="ovs", host="compute1")
    assert reply == {"devices_up": [scenario["vm"]], "failed_devices_up": [],
                     "devices_down": [], "failed_devices_down": []}
    [fdb] = by_method(world.take())["add_fdb_entries"]
    port = world.ctl("port.show", port=scenario["vm"])
    assert port["status"] == "ACTIVE"
    assert fdb.fanout and fdb.kwargs == {"fdb_entries": {scenario["net1"]: {
        "network_type": "vxlan", "segment_id": 1, "ports": {"192.0.2.11": [
            ["00:00:00:00:00:00", "0.0.0.0"],
            [port["mac_address"], port["fixed_ips"][0]["ip_address"]]]}}}}
    # a second host's first port: everyone learns it, and it learns where compute1's are
    other = world.ctl("port.create", network="net1", host="compute2")
    world.take()
    world.plugin.update_device_list(CONTEXT, devices_up=[other["id"]], host="compute2")
    sent = by_method(world.take())["add_fdb_entries"]
    assert sorted((n.host or "fanout") for n in sent) == ["compute2", "fanout"]
    to_new = next(n for n in sent if n.host == "compute2")
    assert list(to_new.kwargs["fdb_entries"][scenario["net1"]]["ports"]) == ["192.0.2.11"]
    world.ctl("port.delete", port=other["id"])
    [removed] = by_method(world.take())["remove_fdb_entries"]
    assert removed.kwargs["fdb_entries"][scenario["net1"]]["ports"]["192.0.2.12"][0] == \
        ["00:00:00:00:00:00", "0.0.0.0"]


def test_floating_ip_statuses_are_recorded(world, scenario):
    world.l3.update_floatingip_statuses(CONTEXT, router_id=scenario["router"],
                                        fip_statuses={scenario["fip"]: "ACTIVE"})
    assert world.ctl("floatingip.show", floatingip=scenario["fip"])["status"] == "ACTIVE"


def test_sync_answers_are_reused_until_the_topology_changes(world, scenario):
    first = world.l3.sync_routers(CONTEXT, host="compute1")
    world.report("compute1", p.AGENT_MODE_DVR)  # a heartbeat changes nothing agents see
    assert world.l3.sync_routers(CONTEXT, host="compute1") is first
    world.ctl("router.remove_interface", router="r1", subnet="sub2")
    [router] = world.l3.sync_routers(CONTEXT, host="compute1")
    assert len(router["_interfaces"]) == 1 and len(first[0]["_interfaces"]) == 2
    world.l3.update_floatingip_statuses(CONTEXT, router_id=scenario["router"],
                                        fip_statuses={scenario["fip"]: "ACTIVE"})
    [router] = world.l3.sync_routers(CONTEXT, host="compute1")
    assert router["_floatingips"][0]["status"] == "ACTIVE"
