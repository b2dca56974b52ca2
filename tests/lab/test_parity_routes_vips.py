"""Extra routes and allowed address pairs (VIPs) with real packets (issue 10, items 3, 4).

Extra routes: a VM acts as a router for a network behind it (a namespace of its own on
the VM's second interface); ``router add-route`` puts the route in the qrouter of every
host that has the router and in the snat namespace, and a VM on another host reaches the
network behind. Bad routes are one clear line and change nothing.

VIPs, the keepalived way: two VMs on different hosts carry the same allowed address pair
(the VIP with VRRP's virtual MAC); an unbound port reserves the VIP and holds its
floating IP, which the network node serves; the holder puts the VIP on a macvlan with
the virtual MAC and sends its own gratuitous ARP. Every qrouter has the VIP's entry; a
client on another subnet and the upstream reach it, before and after it moves.
"""

from __future__ import annotations

import contextlib
import subprocess

from pyroute2 import IPRoute

from dvr_agent import names
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.drivers.netns_thread import run_in_netns
from dvr_agent.lab import fabric, layout, probes
from dvr_agent.lab.vms import command
from dvr_agent.state import Address, Route
from tests.lab.world import wait_for

BEHIND = "172.31.62.0/24"
VMAC = "00:00:5e:00:01:3f"  # VRRP's virtual MAC of router id 63


def _sysctl(namespace: str, settings: dict[str, str]) -> None:
    """Write ``/proc/sys/net/ipv4/<key>`` inside ``namespace``: pyroute2 has no sysctl
    API, and /proc/sys/net resolves against the calling thread's namespace."""
    def write() -> None:
        for key, value in settings.items():
            with open(f"/proc/sys/net/ipv4/{key}", "w") as f:
                f.write(value)
    run_in_netns(namespace, write)


@contextlib.contextmanager
def _network_behind(gateway_vm: dict):
    """A namespace behind ``gateway_vm`` on 172.31.62.0/24, routed by the VM (its guest
    forwards between eth0 and a second interface, lan0). Gone after the block, lan0 with
    it (the veth's other end dies with the namespace), whatever happens in the block."""
    ns, vm_ns = layout.vm_netns(gateway_vm["name"] + "lan"), layout.vm_netns(gateway_vm["name"])
    fabric.NAMESPACES.create(ns)
    try:
        with Netlink(ns) as behind:
            behind.veth_add("eth0", "lan0", vm_ns)
            behind.link_set("lo", up=True)
            behind.link_set("eth0", up=True)
            behind.addr_add(Address("eth0", "172.31.62.2/24"))
            behind.route_replace(Route("0.0.0.0/0", gateway="172.31.62.1", device="eth0"))
        with Netlink(vm_ns) as guest:
            guest.addr_add(Address("lan0", "172.31.62.1/24"))
            guest.link_set("lan0", up=True)
        _sysctl(vm_ns, {"ip_forward": "1"})
        yield "172.31.62.2"
    finally:
        fabric.delete_namespace(ns)


def _routes(lab, host: str, namespace: str) -> str:
    return lab.in_namespace(host, namespace, "ip", "route", "show", BEHIND)


def test_extra_route_via_a_vm_reaches_the_network_behind_it_from_every_host(lab):
    net1, sub1 = lab.network("10.62.1.0/24")
    net2, sub2 = lab.network("10.62.2.0/24")
    router = lab.router(sub1, sub2, gateway=True)
    qrouter, snat = names.qrouter_ns_name(router["id"]), names.snat_ns_name(router["id"])
    gateway_vm = lab.boot("compute1", net1)
    client = lab.boot("compute2", net2)
    with _network_behind(gateway_vm) as behind:
        wait_for("the client reaching the gateway VM", lambda: lab.ping(client,
                                                                        gateway_vm["ip"]))
        assert not lab.ping(client, behind), "reachable before the route exists?"
        lab.ctl("router", "add-route", router["id"], BEHIND, gateway_vm["ip"])
        expected = f"{BEHIND} via {gateway_vm['ip']}"
        for host, namespace in (("compute1", qrouter), ("compute2", qrouter),
                                ("network", qrouter), ("network", snat)):
            wait_for(f"the route in {namespace[:5]} on {host}",
                     lambda h=host, n=namespace: expected in _routes(lab, h, n))
        wait_for("the client reaching the network behind the VM",
                 lambda: lab.ping(client, behind))
        assert lab.restart_changes("compute2") == 0, "a restart changed the routes"
        lab.ctl("router", "remove-route", router["id"], BEHIND, gateway_vm["ip"])
        wait_for("the route gone from every qrouter", lambda: not any(
            _routes(lab, h, qrouter) for h in ("compute1", "compute2", "network")))
        assert not _routes(lab, "network", snat)
    lab.delete_vm(gateway_vm)
    lab.delete_vm(client)
    lab.delete_router(router)


def test_bad_routes_are_one_clear_line_and_change_nothing(lab):
    _, sub = lab.network("10.62.3.0/24")
    router = lab.router(sub)
    for destination, nexthop, message in (
            ("172.31.0.0/33", "10.62.3.50", "is not a CIDR"),
            ("172.31.0.1/24", "10.62.3.50", "host bits set"),
            ("172.31.0.0/24", "10.62.3.300", "is not an IP address"),
            ("172.31.0.0/24", "192.168.9.9", "is not on a subnet of router"),
            ("172.31.0.0/24", "10.62.3.1", "is an address of router")):
        done = lab.ctl_fails("router", "add-route", router["id"], destination, nexthop)
        assert message in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert lab.ctl("router", "show", router["id"])["routes"] == []
    lab.delete_router(router)


def _hold_vip(vm: dict, vip: str) -> None:
    """What keepalived does on becoming master with use_vmac: the VIP on a macvlan with
    the virtual MAC, then a gratuitous ARP of its own (the guest's arping, as keepalived
    sends it: the agent plays no part in a VIP's move)."""
    vm_ns = layout.vm_netns(vm["name"])
    _sysctl(vm_ns, {"conf/all/arp_ignore": "1", "conf/all/arp_announce": "2"})
    with IPRoute(netns=vm_ns, flags=0) as ipr:  # the driver has no macvlan: the agent needs none
        [eth0] = ipr.link_lookup(ifname="eth0")
        ipr.link("add", ifname="vip0", kind="macvlan", link=eth0, macvlan_mode="bridge",
                 address=VMAC)
    with Netlink(vm_ns) as guest:
        guest.addr_add(Address("vip0", f"{vip}/24"))
        guest.link_set("vip0", up=True)
    subprocess.run(command(vm["name"], ["arping", "-U", "-c", "1", "-I", "vip0", vip]),
                   capture_output=True, timeout=30)


def _release_vip(vm: dict) -> None:
    with Netlink(layout.vm_netns(vm["name"])) as guest:
        guest.link_del("vip0")


def test_vip_moving_between_two_vms_stays_reachable_east_west_and_by_its_floating_ip(lab):
    net1, sub1 = lab.network("10.63.1.0/24")
    net2, sub2 = lab.network("10.63.2.0/24")
    router = lab.router(sub1, sub2, gateway=True)
    vip = "10.63.1.100"
    first, second = lab.boot("compute1", net1), lab.boot("compute2", net1)
    client = lab.boot("compute2", net2)
    vip_port = lab.ctl("port", "create", net1["id"], "--ip", vip, "--name", lab.name("vip"))
    assert vip_port["binding:host_id"] == ""
    for vm in (first, second):
        lab.ctl("port", "update", vm["port_id"], "--allowed-address", f"{vip},{VMAC}")
    fip = lab.ctl("floatingip", "create", "public", "--port", vip_port["id"])
    address = fip["floating_ip_address"]
    for host in ("compute1", "compute2", "network"):
        wait_for(f"the VIP's ARP entry in the qrouter on {host}",
                 lambda h=host: (vip, VMAC) in lab.neighbours(h, router))
    snat = names.snat_ns_name(router["id"])
    wait_for("the centralized floating IP on qg- of the network node", lambda: f"{address}/32"
             in lab.in_namespace("network", snat, "ip", "-o", "addr"))

    for holder in (first, second, first):
        _hold_vip(holder, vip)
        wait_for(f"the client reaching the VIP on {holder['host']}",
                 lambda: lab.ping(client, vip))
        wait_for(f"the upstream reaching the VIP's floating IP on {holder['host']}",
                 lambda: probes.ping_ok(probes.UPSTREAM, address))
        _release_vip(holder)
    assert lab.restart_changes("compute1") == 0, "a restart changed the VIP's flows"

    lab.ctl("floatingip", "delete", fip["id"])
    lab.ctl("port", "delete", vip_port["id"])
    for vm in (first, second, client):
        lab.delete_vm(vm)
    lab.delete_router(router)


def test_bad_allowed_addresses_are_one_clear_line_and_change_nothing(lab):
    net, _ = lab.network("10.63.3.0/24")
    vm = lab.boot("compute1", net)
    for pair, message in (("10.63.3.300", "is not an IP address or CIDR"),
                          ("10.63.3.100,fa:16:3e", "is not a MAC address"),
                          ("10.63.3.100,01:00:5e:00:00:01", "is not a unicast MAC")):
        done = lab.ctl_fails("port", "update", vm["port_id"], "--allowed-address", pair)
        assert message in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert lab.ctl("port", "show", vm["port_id"])["allowed_address_pairs"] == []
    lab.delete_vm(vm)
