"""Facts mutations name exactly the keys they touch, and allocations never renumber."""

from dvr_agent import state
from dvr_agent.facts.allocations import Allocations, Allocator, HostAllocations
from dvr_agent.models import ArpEntry, DeviceDetails, LocalVif
from tests.unit.compiler_world import facts_for, parse_routers, router, router_interface, uid


def _two_routers():
    facts = facts_for("compute1")
    facts.set_routers(parse_routers([
        router("ra", [router_interface("ra", "net-a", "sub-a", "10.1.0.0/24", "10.1.0.1",
                                       "fa:16:3e:00:00:0a")]),
        router("rb", [router_interface("rb", "net-b", "sub-b", "10.2.0.0/24", "10.2.0.1",
                                       "fa:16:3e:00:00:0b")])]))
    return facts


def _arp(router_label, subnet_label, ip="10.1.0.5"):
    return ArpEntry.from_kwargs({"payload": {"router_id": uid(router_label), "arp_table": {
        "ip_address": ip, "mac_address": "fa:16:3e:12:34:56", "subnet_id": uid(subnet_label)}}})


def test_arp_entry_touches_only_the_routers_on_its_subnet():
    facts = _two_routers()
    assert facts.add_arp_entry(_arp("ra", "sub-a")) == {state.router_key(uid("ra"))}
    assert facts.add_arp_entry(_arp("ra", "sub-a")) == frozenset()  # already so


def test_arp_entry_for_a_router_not_hosted_here_is_ignored():
    facts = _two_routers()
    assert facts.add_arp_entry(_arp("elsewhere", "sub-a")) == frozenset()
    assert facts.del_arp_entry(_arp("ra", "sub-b", "10.2.0.5")) == frozenset()


def test_stale_arp_delete_with_another_mac_keeps_the_entry():
    facts = _two_routers()
    facts.add_arp_entry(_arp("ra", "sub-a"))
    stale = ArpEntry(router_id=uid("ra"), subnet_id=uid("sub-a"),
                     ip=_arp("ra", "sub-a").ip, mac="fa:16:3e:00:00:99")
    assert facts.del_arp_entry(stale) == frozenset()
    assert str(_arp("ra", "sub-a").ip) in facts.arp.entries(uid("sub-a"))


def test_local_vlan_of_a_network_survives_other_networks_leaving():
    facts = _two_routers()
    vlan_b = facts.local_vlan(uid("net-b"))
    facts.remove_router(uid("ra"))
    facts.update_router(parse_routers([router("rb", [router_interface(
        "rb", "net-b", "sub-b", "10.2.0.0/24", "10.2.0.1", "fa:16:3e:00:00:0c")])])[0])
    assert facts.local_vlan(uid("net-b")) == vlan_b


def test_vif_on_a_router_subnet_touches_its_network_and_router():
    facts = _two_routers()
    details = DeviceDetails.from_dict({
        "port_id": uid("vm"), "network_id": uid("net-a"), "mac_address": "fa:16:3e:a5:01:f8",
        "fixed_ips": [{"subnet_id": uid("sub-a"), "ip_address": "10.1.0.9"}],
        "network_type": "vxlan", "segmentation_id": 38})
    keys = facts.set_vif(LocalVif.from_details("tapvm", details))
    assert keys == {state.network_key(uid("net-a")), state.router_key(uid("ra"))}
    assert facts.set_ofport("tapvm", 7) == keys


def test_allocator_gives_lowest_free_and_recycles_remembered_values_last():
    pool = Allocator(1, 3)
    pool.remember({"old": 1})
    pool.claim(["b", "a"])
    assert (pool.get("a"), pool.get("b")) == (2, 3)
    pool.claim(["c"])  # pool full: the unclaimed remembered value is recycled
    assert pool.get("c") == 1


def test_allocation_version_moves_whenever_the_snapshot_does():
    pools = HostAllocations()
    seen = {pools.version(): pools.snapshot()}

    def step(change) -> bool:
        before = pools.version()
        change()
        moved = pools.version() != before
        assert moved or pools.snapshot() == seen[before], "changed without a new version"
        seen[pools.version()] = pools.snapshot()
        return moved

    assert step(lambda: pools.restore(Allocations(local_vlans={"net-x": 7})))
    assert pools.snapshot().local_vlans == {"net-x": 7}
    assert step(lambda: pools.vlans.claim(["net-a"]))
    assert not step(lambda: pools.vlans.claim(["net-a"]))  # claimed already
    assert step(lambda: pools.link_local.claim(["router-a"]))
    assert not step(lambda: pools.fip_priorities.release(["203.0.113.9"]))  # never held
    assert step(lambda: pools.vlans.release(["net-a"]))
    assert step(lambda: pools.forget_unclaimed())  # net-x's remembered VLAN
    assert not step(lambda: pools.forget_unclaimed())
