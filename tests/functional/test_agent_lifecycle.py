"""dvr-agent against a real dvr-server, RabbitMQ, Open vSwitch and kernel: the seed's events.

One host, the network node: a router with a subnet and a gateway, a VM port plugged into
br-int, a floating IP, then everything taken away again — each step checked the way an
operator would (`ip netns`, `ip neigh`, `ovs-ofctl dump-flows`, `nft list`, port status).
"""

from __future__ import annotations

import time

from pyroute2 import netns

from dvr_agent import names
from dvr_agent.drivers.netlink import Netlink
from tests.functional.agent_env import HOST, L3Notifier, in_ns, wait_for, world  # noqa: F401
from tests.functional.snapshot import host_snapshot


def _topology(w, gateway: bool = True):
    ext = w.ctl("network", "create", "public", "--external", "--physnet", "physnet1")
    w.ctl("subnet", "create", "public", "203.0.113.0/24", "--gateway", "203.0.113.1")
    w.ctl("network", "create", "net1")
    sub1 = w.ctl("subnet", "create", "net1", "10.10.1.0/24", "--name", "sub1")
    router = w.ctl("router", "create", "r1")
    w.ctl("router", "add-interface", "r1", "sub1")
    if gateway:
        w.ctl("router", "set-gateway", "r1", "public")
    return ext, sub1, router


def _flows(w, bridge: str) -> str:
    return w.ovs.ofctl("dump-flows", w.ovs.mgmt(bridge))


def _local_vlan(w, port: str) -> int:
    return int(w.ovs.vsctl("get", "Port", port, "tag"))


def test_vm_on_a_router_subnet_brings_the_router_and_its_dvr_flows(world):  # noqa: F811
    w = world
    _, _sub1, router = _topology(w)
    qrouter = names.qrouter_ns_name(router["id"])
    vm = w.boot_vm("vm1", "net1")
    wait_for("the qrouter namespace", lambda: qrouter in netns.listnetns())
    gw_port = next(p for p in w.ctl("port", "list")
                   if p["device_owner"] == "network:router_interface_distributed")
    qr = names.qr_device_name(gw_port["id"])

    def qr_ready():
        with Netlink(qrouter) as nl:
            link = nl.link(qr)
            addrs = {a.cidr for a in nl.addresses()}
            neigh = {(n.ip, n.mac) for n in nl.neighbours()}
        return link and link.up and "10.10.1.1/24" in addrs and (vm.ip, vm.mac) in neigh
    wait_for("qr- up with the gateway address and the VM's ARP entry", qr_ready)

    own_mac = next(h["mac_address"] for h in w.ctl("host", "list") if h["host"] == HOST)
    seed_line = f"dl_src={gw_port['mac_address']} actions=mod_dl_src:{own_mac.lower()}"
    wait_for("the DVR_PROCESS mod_dl_src flow", lambda: seed_line in _flows(w, "br-tun"))
    wait_for("the VM port reported up", lambda: w.ctl("port", "show", vm.port["id"])
             ["status"] == "ACTIVE")
    assert _local_vlan(w, vm.tap) > 0  # tagged with its network's local VLAN
    assert f"dl_dst={vm.mac} actions=strip_vlan,output:" in _flows(w, "br-int")
    assert vm.ping("10.10.1.1"), "the VM cannot reach its local gateway"
    # qr-'s host end is a switch port: IPv6 off, so it sends no link-local traffic
    host_end = names.veth_host_name(qr)
    with open(f"/proc/sys/net/ipv6/conf/{host_end}/disable_ipv6") as f:
        assert f.read().strip() == "1"
    with Netlink(None) as host:
        assert not [a for a in host.addresses() if a.device == host_end]


def test_router_removed_when_its_last_vm_goes(world):  # noqa: F811
    w = world
    _, _, router = _topology(w, gateway=False)
    qrouter = names.qrouter_ns_name(router["id"])
    vm = w.boot_vm("vm1", "net1")
    wait_for("the qrouter namespace", lambda: qrouter in netns.listnetns())
    w.unplug_vm(vm)
    w.ctl("port", "delete", vm.port["id"])
    wait_for("the qrouter namespace gone", lambda: qrouter not in netns.listnetns())
    assert [line for line in _flows(w, "br-tun").splitlines() if "mod_dl_src" in line] == []
    assert "tap" not in w.ovs.vsctl("list-ports", "br-int")  # the router's ports went too


def test_floating_ip_brings_the_fip_namespace_and_nat_and_takes_them_away(world):  # noqa: F811
    w = world
    _, _, router = _topology(w)
    vm = w.boot_vm("vm1", "net1")
    fip = w.ctl("floatingip", "create", "public", "--port", vm.port["id"])
    ext = fip["floating_network_id"]
    fip_ns, qrouter = names.fip_ns_name(ext), names.qrouter_ns_name(router["id"])
    wait_for("the fip namespace", lambda: fip_ns in netns.listnetns())
    dnat = f"ip daddr {fip['floating_ip_address']} dnat to {vm.ip}"
    wait_for("the DNAT rule in the qrouter",
             lambda: dnat in in_ns(qrouter, "nft", "list", "ruleset"))
    rfp = names.rfp_device_name(router["id"])
    assert rfp in in_ns(qrouter, "ip", "-o", "link")
    wait_for("the /32 route to the floating IP in the fip namespace",
             lambda: f"{fip['floating_ip_address']} via" in in_ns(fip_ns, "ip", "route"))
    wait_for("the floating IP reported ACTIVE",
             lambda: w.ctl("floatingip", "show", fip["id"])["status"] == "ACTIVE")
    w.ctl("floatingip", "disassociate", fip["id"])
    wait_for("the fip namespace gone with the last floating IP",
             lambda: fip_ns not in netns.listnetns())
    assert dnat not in in_ns(qrouter, "nft", "list", "ruleset")
    assert rfp not in in_ns(qrouter, "ip", "-o", "link")


def test_arp_entries_reach_the_kernel_within_100_ms(world):  # noqa: F811
    """add_arp_entry/del_arp_entry as neutron-server sends them (fanout, payload of the
    captures), timed from the cast to the entry being in (or gone from) the qrouter."""
    w = world
    _, sub1, router = _topology(w, gateway=False)
    qrouter = names.qrouter_ns_name(router["id"])
    w.boot_vm("vm1", "net1")
    wait_for("the qrouter namespace", lambda: qrouter in netns.listnetns())
    notifier = L3Notifier(w.server.transport_url)
    delays = []
    try:
        for i in range(20):
            entry = {"ip_address": f"10.10.1.{200 + i}", "mac_address": f"fa:16:3e:00:01:{i:02x}",
                     "subnet_id": sub1["id"]}
            for method, present in (("add_arp_entry", True), ("del_arp_entry", False)):
                started = time.monotonic()
                notifier.arp(method, router["id"], entry)
                wait_for(f"{method} {entry['ip_address']}",
                         lambda e=entry, p=present: _has_neighbour(qrouter, e) is p,
                         interval=0.002)
                delays.append(time.monotonic() - started)
    finally:
        notifier.close()
    delays.sort()
    median, worst = delays[len(delays) // 2], delays[-1]
    print(f"ARP event to kernel: median {median * 1000:.1f} ms, max {worst * 1000:.1f} ms")
    assert median < 0.1, f"median {median * 1000:.0f} ms"


def _has_neighbour(ns: str, entry: dict) -> bool:
    with Netlink(ns) as nl:
        return any(n.ip == entry["ip_address"] and n.mac == entry["mac_address"]
                   for n in nl.neighbours())


def test_malformed_notifications_are_logged_and_change_nothing(world):  # noqa: F811
    w = world
    _, sub1, router = _topology(w)
    vm = w.boot_vm("vm1", "net1")
    wait_for("the VM port reported up", lambda: w.ctl("port", "show", vm.port["id"])
             ["status"] == "ACTIVE")
    before = host_snapshot(w.ovs)
    notifier = L3Notifier(w.server.transport_url)
    bad = [
        ("add_arp_entry", {"payload": {"router_id": router["id"], "arp_table": {
            "ip_address": "10.10.1.77", "mac_address": "not-a-mac", "subnet_id": sub1["id"]}}}),
        ("add_arp_entry", {"payload": {"router_id": "../../etc", "arp_table": {}}}),
        ("routers_updated", {"routers": ["x" * 10_000]}),
        ("router_deleted", {"router_id": 42}),
        ("fipnamespace_delete_on_ext_net", {"ext_net_id": '"; flush ruleset; "'}),
    ]
    try:
        for method, kwargs in bad:
            notifier.cast_l3(method, **kwargs)
        notifier.cast_ovs("dvr_mac_address_update", {"dvr_macs": [{"host": "x",
                                                                   "mac_address": "zz"}]})
        notifier.cast_ovs("tunnel_update", {"tunnel_ip": "999.1.1.1", "tunnel_type": "vxlan"})
    finally:
        notifier.close()
    wait_for("every malformed notification rejected in the log",
             lambda: w.agent.log().count(" rejected: ") >= len(bad) + 2)
    assert "arp_table.mac_address" in w.agent.log()
    time.sleep(1)  # a pass that should not happen would be done by now
    assert host_snapshot(w.ovs) == before
    vm2 = w.boot_vm("vm2", "net1")  # and the agent still serves
    wait_for("a new VM wired after the bad input", lambda: w.ctl(
        "port", "show", vm2.port["id"])["status"] == "ACTIVE")
