"""Seed scheduling and notification rules, event by event, on the in-process server.

Each test is one user action of the captured neutron-server scenario; it asserts which L3
agents hear what (and that nobody else does), with Neutron's methods and versions.
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
    return build_dvr_topology(world)


def hosts_of(world, router):
    return world.ctl("router.show", router=router)["hosts"]


def test_router_with_only_interfaces_is_on_no_host(world, ids):
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    assert hosts_of(world, "r1") == []
    assert l3_casts(world.take()) == set()


def test_gateway_binds_router_to_the_live_snat_host_and_tells_it(world, ids):
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    world.take()
    router = world.ctl("router.set_gateway", router="r1", network="ext")
    assert router["gw_port_host"] == "network"
    assert hosts_of(world, "r1") == ["network"]
    assert l3_casts(world.take()) == {(UPDATED, "network", V11)}


def test_gateway_skips_a_dead_snat_agent(world, ids):
    world.clock.advance(80)  # past agent_down_time (75 s) for everyone ...
    world.report("compute1", p.AGENT_MODE_DVR)
    assert world.ctl("router.set_gateway", router="r1", network="ext")["gw_port_host"] is None
    assert hosts_of(world, "r1") == []
    # ... until the network node reports again: then the router is scheduled and told
    assert world.report("network", p.AGENT_MODE_DVR_SNAT) == "revived"
    assert world.ctl("router.show", router="r1")["gw_port_host"] == "network"
    assert l3_casts(world.take()) == {(UPDATED, "network", V11)}


def test_snat_goes_to_the_least_loaded_live_snat_host(world, ids):
    world.report("network2", p.AGENT_MODE_DVR_SNAT)
    world.ctl("router.set_gateway", router="r1", network="ext")
    world.ctl("router.create", name="r2")
    assert world.ctl("router.set_gateway", router="r2", network="ext")["gw_port_host"] == \
        "network2"


def test_vm_port_brings_router_to_its_host_only_with_an_arp_fanout(world, ids):
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    world.ctl("router.set_gateway", router="r1", network="ext")
    world.take()
    port = world.ctl("port.create", network="net1", host="compute1", name="vm1")
    sent = world.take()
    assert l3_casts(sent) == {(UPDATED, "compute1", V10)}
    [arp] = by_method(sent)["add_arp_entry"]
    assert arp.fanout and arp.version == p.L3_AGENT_ARP_VERSION
    assert arp.kwargs == {"payload": {"router_id": ids["router"], "arp_table": {
        "ip_address": port["fixed_ips"][0]["ip_address"], "mac_address": port["mac_address"],
        "subnet_id": ids["sub1"]}}}
    assert hosts_of(world, "r1") == ["compute1", "network"]


def test_vm_on_a_subnet_without_router_tells_no_l3_agent(world, ids):
    world.ctl("port.create", network="net2", host="compute2")
    assert l3_casts(world.take()) == set()


def test_interface_added_tells_every_host_of_the_router(world, ids):
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    world.ctl("router.set_gateway", router="r1", network="ext")
    world.ctl("port.create", network="net1", host="compute1")
    world.ctl("port.create", network="net2", host="compute2")
    world.take()
    world.ctl("router.add_interface", router="r1", subnet="sub2")
    assert l3_casts(world.take()) == {(UPDATED, h, V11)
                                      for h in ("network", "compute1", "compute2")}
    assert hosts_of(world, "r1") == ["compute1", "compute2", "network"]


def test_last_vm_gone_removes_router_from_that_host_only(world, ids):
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    world.ctl("router.set_gateway", router="r1", network="ext")
    first = world.ctl("port.create", network="net1", host="compute1")
    second = world.ctl("port.create", network="net1", host="compute1")
    world.take()
    world.ctl("port.delete", port=first["id"])
    sent = world.take()
    assert l3_casts(sent) == set()  # compute1 still has a VM on sub1
    assert [n.kwargs["payload"]["arp_table"]["ip_address"]
            for n in by_method(sent)["del_arp_entry"]] == [first["fixed_ips"][0]["ip_address"]]
    world.ctl("port.delete", port=second["id"])
    sent = world.take()
    assert l3_casts(sent) == {(REMOVED, "compute1", V10)}
    assert by_method(sent)[REMOVED][0].kwargs == {"payload": {"router_id": ids["router"]}}
    assert [n.kwargs for n in by_method(sent)["port_delete"]] == [{"port_id": second["id"]}]
    assert hosts_of(world, "r1") == ["network"]
    assert world.l3.sync_routers(CONTEXT, host="compute1") == []


def test_moving_a_vm_elsewhere_moves_the_router(world, ids):
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    old = world.ctl("port.create", network="net1", host="compute1")
    world.take()
    world.ctl("port.create", network="net1", host="compute2", ip="10.10.1.50")
    world.ctl("port.delete", port=old["id"])
    assert l3_casts(world.take()) == {(UPDATED, "compute2", V10), (REMOVED, "compute1", V10)}


def test_floating_ip_is_told_to_the_vm_host_only(world, ids):
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    world.ctl("router.set_gateway", router="r1", network="ext")
    vm = world.ctl("port.create", network="net1", host="compute1", name="vm1")
    world.ctl("port.create", network="net1", host="compute2", name="vm2")
    world.take()
    fip = world.ctl("floatingip.create", network="ext")
    assert l3_casts(world.take()) == set()
    fip = world.ctl("floatingip.associate", floatingip=fip["floating_ip_address"], port="vm1")
    assert (fip["port_id"], fip["router_id"], fip["host"]) == (vm["id"], ids["router"],
                                                               "compute1")
    assert l3_casts(world.take()) == {(UPDATED, "compute1", V10)}
    world.ctl("floatingip.disassociate", floatingip=fip["id"])
    assert l3_casts(world.take()) == {(UPDATED, "compute1", V10)}


def test_fip_gateway_port_lives_exactly_as_long_as_the_hosts_floating_ips(world, ids):
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    world.ctl("router.set_gateway", router="r1", network="ext")
    world.ctl("port.create", network="net1", host="compute1", name="vm1")
    fip = world.ctl("floatingip.create", network="ext", port="vm1")
    [router] = world.l3.sync_routers(CONTEXT, host="compute1")
    [fg] = router["_floatingip_agent_interfaces"]
    assert (fg["device_owner"], fg["binding:host_id"]) == (p.DEVICE_OWNER_AGENT_GW, "compute1")
    assert [f["id"] for f in router["_floatingips"]] == [fip["id"]]
    assert world.l3.sync_routers(CONTEXT, host="network")[0]["_floatingip_agent_interfaces"] \
        == []
    world.take()
    world.ctl("floatingip.delete", floatingip=fip["id"])
    [router] = world.l3.sync_routers(CONTEXT, host="compute1")
    assert router["_floatingip_agent_interfaces"] == [] and "_floatingips" not in router
    assert fg["id"] in [n.kwargs["port_id"] for n in by_method(world.take())["port_delete"]]


def test_gateway_cleared_removes_router_from_snat_host_and_fip_namespaces(world, ids):
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    world.ctl("router.set_gateway", router="r1", network="ext")
    world.ctl("port.create", network="net1", host="compute1")
    world.take()
    router = world.ctl("router.clear_gateway", router="r1")
    assert router["gw_port_host"] is None and router["external_gateway_info"] is None
    sent = world.take()
    assert l3_casts(sent) == {(UPDATED, "compute1", V11), (REMOVED, "network", V10)}
    [fipns] = by_method(sent)["fipnamespace_delete_on_ext_net"]
    assert fipns.fanout and fipns.kwargs == {"ext_net_id": ids["ext"]}
    csnat_arp = by_method(sent)["del_arp_entry"]
    assert [n.kwargs["payload"]["router_id"] for n in csnat_arp] == [ids["router"]]


def test_gateway_clear_refused_while_a_floating_ip_needs_it(world, ids):
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    world.ctl("router.set_gateway", router="r1", network="ext")
    world.ctl("port.create", network="net1", host="compute1", name="vm1")
    fip = world.ctl("floatingip.create", network="ext", port="vm1")
    with pytest.raises(Conflict, match=fip["floating_ip_address"]):
        world.ctl("router.clear_gateway", router="r1")
    assert world.ctl("router.show", router="r1")["gw_port_host"] == "network"


def test_router_deleted_is_fanned_out(world, ids):
    world.ctl("router.set_gateway", router="r1", network="ext")
    world.take()
    world.ctl("router.delete", router="r1")
    sent = world.take()
    assert (("router_deleted", None, V10)) in l3_casts(sent)
    assert by_method(sent)["router_deleted"][0].kwargs == {"router_id": ids["router"]}
    with pytest.raises(NotFound):
        world.ctl("router.show", router="r1")


def test_interface_removed_tells_remaining_hosts_and_removes_the_others(world, ids):
    world.ctl("router.add_interface", router="r1", subnet="sub1")
    world.ctl("router.add_interface", router="r1", subnet="sub2")
    world.ctl("port.create", network="net1", host="compute1")
    world.ctl("port.create", network="net2", host="compute2")
    world.take()
    world.ctl("router.remove_interface", router="r1", subnet="sub2")
    assert l3_casts(world.take()) == {(UPDATED, "compute1", V11), (REMOVED, "compute2", V10)}


def test_bad_requests_change_nothing(world, ids):
    before = world.ctl("port.list")
    for command, args, error in [
        ("subnet.create", {"network": "net1", "cidr": "10.10.1.0/33"}, BadRequest),
        ("subnet.create", {"network": "net1", "cidr": "10.10.1.5/24"}, BadRequest),
        ("subnet.create", {"network": "net1", "cidr": "10.10.1.128/25"}, Conflict),
        ("port.create", {"network": "net1", "host": "compute1", "ip": "10.99.0.5"}, BadRequest),
        ("port.create", {"network": "net1", "host": "bad host!"}, BadRequest),
        ("port.create", {"network": "net1", "host": "c1", "mac": "zz:16"}, BadRequest),
        ("port.create", {"network": "nope", "host": "compute1"}, NotFound),
        ("router.add_interface", {"router": "r1", "subnet": "ext-sub"}, BadRequest),
        ("router.set_gateway", {"router": "r1", "network": "net1"}, BadRequest),
        ("floatingip.create", {"network": "net1"}, BadRequest),
        ("network.create", {"name": "x", "physnet": "p2"}, BadRequest),
        ("network.create", {"name": "ext2", "external": True}, Conflict),
        ("router.create", {"name": "r1", "colour": "red"}, BadRequest),
        ("router.frobnicate", {}, BadRequest),
    ]:
        with pytest.raises(error):
            world.ctl(command, **args)
    assert world.ctl("port.list") == before
    assert world.take() == []


def test_duplicate_names_need_an_id(world, ids):
    world.ctl("router.create", name="r1")
    with pytest.raises(Conflict, match="use its id"):
        world.ctl("router.show", router="r1")
    assert world.ctl("router.show", router=ids["router"])["id"] == ids["router"]


def test_requested_ip_and_mac_are_honoured_and_unique(world, ids):
    port = world.ctl("port.create", network="net1", host="compute1", ip="10.10.1.77",
                     mac="FA-16-3E-00-00-77")
    assert port["fixed_ips"][0]["ip_address"] == "10.10.1.77"
    assert port["mac_address"] == "fa:16:3e:00:00:77"
    with pytest.raises(Conflict, match=r"10\.10\.1\.77"):
        world.ctl("port.create", network="net1", host="compute1", ip="10.10.1.77")
    with pytest.raises(Conflict, match="fa:16:3e:00:00:77"):
        world.ctl("port.create", network="net1", host="compute1", mac="fa:16:3e:00:00:77")
    with pytest.raises(Conflict, match="gateway"):
        world.ctl("port.create", network="net1", host="compute1", ip="10.10.1.1")


def test_addresses_are_handed_out_lowest_first_skipping_the_gateway(world, ids):
    addresses = [world.ctl("port.create", network="net1", host="c1")["fixed_ips"][0]
                 ["ip_address"] for _ in range(3)]
    assert addresses == ["10.10.1.2", "10.10.1.3", "10.10.1.4"]


def test_tenant_networks_get_distinct_vnis_and_external_ones_are_flat(world, ids):
    nets = {n["name"]: n for n in world.ctl("network.list")}
    assert {nets["net1"]["provider:segmentation_id"], nets["net2"]["provider:segmentation_id"]} \
        == {1, 2}
    assert (nets["net1"]["provider:network_type"], nets["net1"]["mtu"]) == ("vxlan", 1450)
    assert (nets["ext"]["provider:network_type"], nets["ext"]["provider:physical_network"],
            nets["ext"]["router:external"], nets["ext"]["mtu"]) == ("flat", "physnet1", True, 1500)
