"""The server's side of issue 10 on the in-process server: extra routes, allowed address
pairs and VIP ports, moving a port to another host, centralized floating IPs
(unbound ports, dvr_no_external hosts), legacy routers and their migration, network MTUs.

Each test is one operator action: who hears what, what agents get back, and for bad input
one clear error with nothing changed.
"""

from __future__ import annotations

import pytest

from dvr_agent.rpc import protocol as p
from dvr_agent.server.errors import BadRequest, Conflict, NotFound
from tests.fixtures.server_world import CONTEXT, World, build_dvr_topology, by_method, l3_casts

UPDATED, REMOVED = "routers_updated", "router_removed_from_agent"
V10, V11 = p.L3_AGENT_NOTIFY_VERSION, p.L3_AGENT_ROUTERS_UPDATED_VERSION


@pytest.fixture
def world(tmp_path):
    w = World(f"sqlite:///{tmp_path}/dvr.sqlite")
    yield w
    w.close()


@pytest.fixture
def ids(world):
    """r1 on sub1 and sub2 with a gateway; vm1 on compute1 (sub1), vm2 on compute2 (sub2)."""
    ids = build_dvr_topology(world)
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    world.ctl("router.add_interface", router="r1", subnet="sub2")
    world.ctl("router.set_gateway", router="r1", network="ext")
    ids["vm1"] = world.ctl("port.create", network="net1", host="compute1", name="vm1")
    ids["vm2"] = world.ctl("port.create", network="net2", host="compute2", name="vm2")
    world.take()
    return ids


def sync(world, host):
    return {r["id"]: r for r in world.l3.sync_routers(CONTEXT, host=host)}


def arp(notes):
    return sorted((n.method, n.kwargs["payload"]["arp_table"]["ip_address"],
                   n.kwargs["payload"]["arp_table"]["mac_address"]) for n in notes
                  if n.method in ("add_arp_entry", "del_arp_entry"))


# ------------------------------------------------------------------ extra routes


def test_extra_route_reaches_every_host_of_the_router(world, ids):
    world.ctl("router.add_route", router="r1", destination="172.31.0.0/24",
              nexthop="10.10.1.50")
    assert l3_casts(world.take()) == {(UPDATED, h, V11) for h in
                                      ("network", "compute1", "compute2")}
    for host in ("network", "compute1", "compute2"):
        assert sync(world, host)[ids["router"]]["routes"] == [
            {"destination": "172.31.0.0/24", "nexthop": "10.10.1.50"}]
    world.ctl("router.remove_route", router="r1", destination="172.31.0.0/24",
              nexthop="10.10.1.50")
    assert sync(world, "compute1")[ids["router"]]["routes"] == []


@pytest.mark.parametrize(("destination", "nexthop", "error", "message"), [
    ("172.31.0.0", "10.10.1.50", BadRequest, "is not a CIDR"),
    ("172.31.0.0/33", "10.10.1.50", BadRequest, "is not a CIDR"),
    ("172.31.0.1/24", "10.10.1.50", BadRequest, "host bits set; did you mean 172.31.0.0/24"),
    ("172.31.0.0/24", "10.10.1", BadRequest, "is not an IP address"),
    ("172.31.0.0/24", "fd00::1", BadRequest, "different IP versions"),
    ("172.31.0.0/24", "192.168.7.1", BadRequest, "is not on a subnet of router"),
    ("172.31.0.0/24", "10.10.1.1", BadRequest, "is an address of router"),
])
def test_bad_routes_are_one_clear_error_and_change_nothing(world, ids, destination, nexthop,
                                                          error, message):
    with pytest.raises(error, match=message):
        world.ctl("router.add_route", router="r1", destination=destination, nexthop=nexthop)
    assert world.ctl("router.show", router="r1")["routes"] == []
    assert world.take() == []


def test_duplicate_and_unknown_routes_and_an_interface_a_route_needs(world, ids):
    world.ctl("router.add_route", router="r1", destination="172.31.0.0/24",
              nexthop="10.10.1.50")
    with pytest.raises(Conflict, match="already has the route"):
        world.ctl("router.add_route", router="r1", destination="172.31.0.0/24",
                  nexthop="10.10.1.50")
    with pytest.raises(NotFound, match=r"has no route 172\.32\.0\.0/24 via 10\.10\.1\.50"):
        world.ctl("router.remove_route", router="r1", destination="172.32.0.0/24",
                  nexthop="10.10.1.50")
    with pytest.raises(Conflict, match=r"172\.31\.0\.0/24 via 10\.10\.1\.50 .* need subnet"):
        world.ctl("router.remove_interface", router="r1", subnet="sub1")


# ------------------------------------------------------------------ allowed address pairs


def test_allowed_address_gets_an_arp_entry_with_its_mac_in_every_router(world, ids):
    vm1 = ids["vm1"]
    world.ctl("port.update", port="vm1",
              allowed_addresses=["10.10.1.100,fa:16:3e:aa:00:01", "10.10.1.101"])
    sent = world.take()
    assert arp(sent) == [("add_arp_entry", "10.10.1.100", "fa:16:3e:aa:00:01"),
                         ("add_arp_entry", "10.10.1.101", vm1["mac_address"])]
    assert by_method(sent)["port_update"][0].kwargs["port"]["binding:host_id"] == "compute1"
    [listed] = [q for q in world.l3.get_ports_by_subnet(CONTEXT, subnet_id=ids["sub1"])
                if q["id"] == vm1["id"]]
    assert listed["allowed_address_pairs"] == [
        {"ip_address": "10.10.1.100", "mac_address": "fa:16:3e:aa:00:01"},
        {"ip_address": "10.10.1.101", "mac_address": vm1["mac_address"]}]
    details = world.plugin.get_devices_details_list_and_failed_devices(
        CONTEXT, devices=[vm1["id"]], host="compute1")["devices"][0]
    assert details["allowed_address_pairs"] == listed["allowed_address_pairs"]
    world.ctl("port.update", port="vm1", allowed_addresses=["10.10.1.101"])
    assert arp(world.take()) == [("del_arp_entry", "10.10.1.100", "fa:16:3e:aa:00:01")]


def test_a_vip_shared_by_two_ports_keeps_its_entry_until_the_last_one_drops_it(world, ids):
    vm3 = world.ctl("port.create", network="net1", host="compute2", name="vm3")
    vip = "10.10.1.100,fa:16:3e:aa:00:01"
    world.ctl("port.update", port="vm1", allowed_addresses=[vip])
    world.ctl("port.update", port="vm3", allowed_addresses=[vip])
    world.take()
    world.ctl("port.update", port="vm1", allowed_addresses=[])
    assert arp(world.take()) == [("add_arp_entry", "10.10.1.100", "fa:16:3e:aa:00:01")]
    world.ctl("port.delete", port=vm3["id"])
    assert ("del_arp_entry", "10.10.1.100", "fa:16:3e:aa:00:01") in arp(world.take())


@pytest.mark.parametrize(("pairs", "message"), [
    (["10.10.1.300"], "is not an IP address or CIDR"),
    (["10.10.1.5/24"], "host bits set; use 10.10.1.0/24"),
    (["10.10.1.100,fa:16:3e"], "is not a MAC address"),
    (["10.10.1.100,01:00:5e:00:00:01"], "is not a unicast MAC"),
    (["10.10.1.100", "10.10.1.100"], "repeats"),
    ([f"10.10.1.{i}" for i in range(100, 111)], "at most 10"),
])
def test_bad_allowed_addresses_change_nothing(world, ids, pairs, message):
    with pytest.raises(BadRequest, match=message):
        world.ctl("port.update", port="vm1", allowed_addresses=pairs)
    assert world.ctl("port.show", port="vm1")["allowed_address_pairs"] == []
    assert world.take() == []


def test_floating_ip_of_an_unbound_vip_port_is_served_by_the_snat_host(world, ids):
    vip = world.ctl("port.create", network="net1", ip="10.10.1.100", name="vip")
    assert vip["binding:host_id"] == "" and arp(world.take()) == []
    fip = world.ctl("floatingip.create", network="ext", port="vip")
    assert l3_casts(world.take()) == {(UPDATED, "network", V10)}
    [served] = sync(world, "network")[ids["router"]]["_floatingips"]
    assert served["id"] == fip["id"] and served["dvr_snat_bound"] is True
    assert "_floatingips" not in sync(world, "compute1")[ids["router"]]
    assert not [q for q in world.ctl("port.list") if q["device_owner"] ==
                p.DEVICE_OWNER_AGENT_GW], "a centralized floating IP needs no fg port"


# ------------------------------------------------------------------ moving a port


def test_moving_a_port_moves_its_router_floating_ip_and_fg_port(world, ids):
    fip = world.ctl("floatingip.create", network="ext", port="vm1")
    world.take()
    world.ctl("port.update", port="vm1", host="compute2")
    sent = world.take()
    assert (REMOVED, "compute1", V10) in l3_casts(sent)
    assert (UPDATED, "compute2", V10) in l3_casts(sent)
    assert world.ctl("router.show", router="r1")["hosts"] == ["compute2", "network"]
    [moved] = sync(world, "compute2")[ids["router"]]["_floatingips"]
    assert (moved["id"], moved["host"]) == (fip["id"], "compute2")
    gateways = {q["binding:host_id"] for q in world.ctl("port.list")
                if q["device_owner"] == p.DEVICE_OWNER_AGENT_GW}
    assert gateways == {"compute2"}, "the fg port follows the floating IP"
    assert world.ctl("port.show", port="vm1")["status"] == "DOWN"  # until compute2 says up


def test_moving_a_port_to_an_unknown_or_bad_host_changes_nothing(world, ids):
    for host, message in (("compute9", "has no L3 agent"), ("bad host!", "not a valid host")):
        with pytest.raises(BadRequest, match=message):
            world.ctl("port.update", port="vm1", host=host)
    assert world.ctl("port.show", port="vm1")["binding:host_id"] == "compute1"
    with pytest.raises(BadRequest, match="nothing to change"):
        world.ctl("port.update", port="vm1")
    assert world.take() == []


# ------------------------------------------------------------------ dvr_no_external


def test_dvr_no_external_host_gets_no_fg_port_and_its_floating_ips_go_central(world, ids):
    world.report("compute3", p.AGENT_MODE_DVR_NO_EXTERNAL)
    world.ctl("port.create", network="net1", host="compute3", name="vm3")
    world.take()
    fip = world.ctl("floatingip.create", network="ext", port="vm3")
    assert l3_casts(world.take()) == {(UPDATED, "network", V10)}
    assert world.l3.get_agent_gateway_port(CONTEXT, network_id=ids["ext"],
                                           host="compute3") is None
    [central] = sync(world, "network")[ids["router"]]["_floatingips"]
    assert (central["id"], central["dvr_snat_bound"]) == (fip["id"], True)
    assert "_floatingips" not in sync(world, "compute3")[ids["router"]]


def test_agent_switching_to_dvr_no_external_hands_its_floating_ips_to_the_snat_host(world,
                                                                                   ids):
    world.ctl("floatingip.create", network="ext", port="vm1")
    assert "_floatingips" in sync(world, "compute1")[ids["router"]]
    world.take()
    world.report("compute1", p.AGENT_MODE_DVR_NO_EXTERNAL)
    assert {(UPDATED, "compute1", V10), (UPDATED, "network", V10)} <= l3_casts(world.take())
    assert "_floatingips" not in sync(world, "compute1")[ids["router"]]
    assert sync(world, "network")[ids["router"]]["_floatingips"][0]["dvr_snat_bound"]
    assert not [q for q in world.ctl("port.list") if q["device_owner"] ==
                p.DEVICE_OWNER_AGENT_GW], "its fg port is given back"


# ------------------------------------------------------------------ legacy routers


def test_legacy_router_lives_on_the_network_node_only(world, ids):
    router = world.ctl("router.create", name="legacy", distributed="false")
    assert router["distributed"] is False and router["hosts"] == ["network"]
    world.ctl("network.create", name="net3")
    world.ctl("subnet.create", network="net3", cidr="10.10.3.0/24", name="sub3")
    world.ctl("port.create", network="net3", host="compute1", name="vm3")
    world.take()
    world.ctl("router.add_interface", router="legacy", subnet="sub3")
    assert l3_casts(world.take()) == {(UPDATED, "network", V11)}
    assert world.ctl("router.show", router="legacy")["hosts"] == ["network"]
    payload = sync(world, "network")[router["id"]]
    assert payload["distributed"] is False
    assert {i["device_owner"] for i in payload["_interfaces"]} == {p.DEVICE_OWNER_ROUTER_INTF}
    assert {i["binding:host_id"] for i in payload["_interfaces"]} == {"network"}
    assert router["id"] not in sync(world, "compute1")


def test_migration_needs_admin_down_and_moves_the_router_between_kinds(world, ids):
    world.ctl("floatingip.create", network="ext", port="vm1")
    with pytest.raises(Conflict, match="administratively up: set it down first"):
        world.ctl("router.update", router="r1", distributed="false")
    world.take()
    world.ctl("router.update", router="r1", admin_state_up="down")
    assert {n.host for n in world.take() if n.method == UPDATED} == {
        "network", "compute1", "compute2"}
    router = world.ctl("router.update", router="r1", distributed="false")
    sent = world.take()
    assert {(REMOVED, "compute1", V10), (REMOVED, "compute2", V10)} <= l3_casts(sent)
    assert router["hosts"] == ["network"]
    payload = sync(world, "network")[ids["router"]]
    assert "_snat_router_interfaces" in payload and payload["_snat_router_interfaces"] == []
    assert [f["host"] for f in payload["_floatingips"]] == ["compute1"]
    assert not [q for q in world.ctl("port.list") if q["device_owner"] ==
                p.DEVICE_OWNER_AGENT_GW]
    world.ctl("router.update", router="r1", admin_state_up="up")
    world.ctl("router.update", router="r1", admin_state_up="down")
    router = world.ctl("router.update", router="r1", distributed="true")
    assert router["hosts"] == ["compute1", "compute2", "network"]
    assert len(sync(world, "network")[ids["router"]]["_snat_router_interfaces"]) == 2
    assert {q["binding:host_id"] for q in world.ctl("port.list")
            if q["device_owner"] == p.DEVICE_OWNER_AGENT_GW} == {"compute1"}
    with pytest.raises(BadRequest, match="must be true or false"):
        world.ctl("router.update", router="r1", distributed="maybe")


# ------------------------------------------------------------------ MTU


def test_network_mtu_is_the_largest_that_fits_or_a_smaller_one_asked_for(world):
    assert world.ctl("network.create", name="big")["mtu"] == 1450  # 1500 less VXLAN's 50
    assert world.ctl("network.create", name="small", mtu="1400")["mtu"] == 1400
    assert world.ctl("network.create", name="pub", external=True, physnet="p2")["mtu"] == 1500
    for mtu, message in (("1451", "outside 68..1450"), ("abc", "is not a number"),
                         ("10", "outside 68..1450")):
        with pytest.raises(BadRequest, match=message):
            world.ctl("network.create", name="bad", mtu=mtu)
    assert "bad" not in {n["name"] for n in world.ctl("network.list")}
