"""The same facts give the same state, byte for byte, whatever order they came in; and a
restarted agent given its persisted allocations compiles exactly the same state.
"""

import copy
import ipaddress
import random

from dvr_agent.compiler import compile_host
from dvr_agent.facts import Facts
from dvr_agent.models import (
    ArpEntry,
    DeviceDetails,
    HostMac,
    LocalVif,
    Port,
    Segment,
    TunnelPeer,
    fdb_entries,
)
from tests.unit.compiler_world import (
    agent_gateway_port,
    csnat_port,
    facts_for,
    fip,
    gateway_port,
    parse_routers,
    router,
    router_interface,
    uid,
)


def _routers():
    out = []
    for i in range(4):
        name = f"r{i}"
        ifaces = [router_interface(name, f"net{i}{j}", f"sub{i}{j}", f"10.{i}.{j}.0/24",
                                   f"10.{i}.{j}.1", f"fa:16:3e:00:{i:02x}:{j:02x}")
                  for j in range(2)]
        sgs = [csnat_port(name, f"net{i}{j}", f"sub{i}{j}", f"10.{i}.{j}.0/24", f"10.{i}.{j}.1",
                          f"10.{i}.{j}.2", f"fa:16:3e:01:{i:02x}:{j:02x}", "network")
               for j in range(2)]
        fips = [fip(f"f{i}", name, f"203.0.113.{100 + i}", f"10.{i}.0.10", "network")]
        out.append(router(name, ifaces, gateway=gateway_port(name, f"203.0.113.{10 + i}",
                                                             f"fa:16:3e:02:00:{i:02x}",
                                                             "network"),
                          snat_host="network", snat_interfaces=sgs, fips=fips,
                          fip_agent_ports=[agent_gateway_port("network", "203.0.113.49",
                                                              "fa:16:3e:75:47:52")]))
    return out


def _arp_ports(i, j):
    return [Port.from_dict({"id": uid(f"vm{i}{j}{k}"), "network_id": uid(f"net{i}{j}"),
                            "mac_address": f"fa:16:3e:10:{i}{j}:{k:02x}",
                            "device_owner": "compute:nova",
                            "fixed_ips": [{"subnet_id": uid(f"sub{i}{j}"),
                                           "ip_address": f"10.{i}.{j}.{10 + k}"}]})
            for k in range(3)]


def _vifs():
    vifs = []
    for i in range(4):
        details = DeviceDetails.from_dict({
            "port_id": uid(f"vm{i}00"), "network_id": uid(f"net{i}0"),
            "mac_address": f"fa:16:3e:10:{i}0:00", "device_owner": "compute:nova",
            "fixed_ips": [{"subnet_id": uid(f"sub{i}0"), "ip_address": f"10.{i}.0.10"}],
            "network_type": "vxlan", "segmentation_id": 100 + i})
        vifs.append((LocalVif.from_details(f"tap{i}", details), 10 + i, details))
    return vifs


def _fdb():
    return fdb_entries({"fdb_entries": {uid(f"net{i}0"): {
        "network_type": "vxlan", "segment_id": 100 + i,
        "ports": {"192.0.2.11": [["00:00:00:00:00:00", "0.0.0.0"],
                                 [f"fa:16:3e:20:00:{i:02x}", f"10.{i}.0.50"]]}}
        for i in range(4)}})


def _build(shuffle: random.Random | None, saved=None, vifs_first=False) -> Facts:
    def mix(items):
        items = list(items)
        if shuffle:
            shuffle.shuffle(items)
        return items

    facts = facts_for("network", mode="dvr_snat", local_ip=ipaddress.IPv4Address("192.0.2.10"))
    if saved is not None:  # a restarted agent: same config and MACs, persisted numbers
        macs = [HostMac(host=h, mac=m) for h, m in facts.remote_dvr_macs.items()]
        macs.append(HostMac(host="network", mac=facts.own_dvr_mac))
        facts = Facts(facts.config, saved)
        facts.set_dvr_macs(mix(macs))
    routers = [copy.deepcopy(r) for r in _routers()]
    for r in routers:
        for lst in ("_interfaces", "_snat_router_interfaces", "_floatingips"):
            r[lst] = mix(r[lst])
    vif_events = []
    for vif, ofport, details in _vifs():
        vif_events += [lambda v=vif: facts.set_vif(v),
                       lambda v=vif, o=ofport: facts.set_ofport(v.port_name, o),
                       lambda d=details: facts.set_segment(d.network_id, Segment(
                           network_type="vxlan", segmentation_id=d.segmentation_id))]
    if vifs_first:
        for event in vif_events:
            event()
    facts.set_routers(parse_routers(mix(routers)))
    other = []
    for i in range(4):
        for j in range(2):
            other.append(lambda i=i, j=j: facts.set_subnet_ports(uid(f"sub{i}{j}"),
                                                                 mix(_arp_ports(i, j))))
    other.append(lambda: facts.set_tunnel_peers([TunnelPeer(ip=ipaddress.IPv4Address(
        "192.0.2.11"), host="compute1")]))
    other.append(lambda: facts.set_ofport("vxlan-c000020b", 5))
    other.append(lambda: facts.add_fdb(mix(_fdb())))
    other.append(lambda: facts.add_arp_entry(ArpEntry.from_kwargs({"payload": {
        "router_id": uid("r0"), "arp_table": {"ip_address": "10.0.0.99",
                                              "mac_address": "fa:16:3e:99:99:99",
                                              "subnet_id": uid("sub00")}}})))
    if not vifs_first:
        other += vif_events
    for event in mix(other) if shuffle else other:
        event()
    return facts


def test_same_facts_in_any_order_compile_to_the_same_state_byte_for_byte():
    reference = compile_host(_build(None)).render()
    assert "mod_dl_src:fa:16:3f:12:a3:38" in reference and "neigh 10.0.0.99" in reference
    for seed in range(5):
        assert compile_host(_build(random.Random(seed))).render() == reference


def test_compiling_twice_gives_equal_values():
    facts = _build(None)
    assert compile_host(facts) == compile_host(facts)


def test_restarted_agent_with_persisted_allocations_compiles_the_same_state():
    before = _build(None)
    saved = before.allocations()
    after = _build(random.Random(7), saved=saved, vifs_first=True)
    assert after.allocations() == saved
    assert compile_host(after).render() == compile_host(before).render()


def test_without_persisted_allocations_a_different_event_order_may_renumber():
    """The control for the test above: restoring is what keeps the numbers."""
    before = _build(None)
    after = _build(None, vifs_first=True)
    assert after.allocations().local_vlans != before.allocations().local_vlans
