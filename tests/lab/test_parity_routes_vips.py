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

from dvr_agent import names
from dvr_agent.lab import layout, probes
from dvr_agent.lab.vms import command
from tests.lab.world import wait_for

BEHIND = "172.31.62.0/24"
VMAC = "00:00:5e:00:01:3f"  # VRRP's virtual MAC of router id 63


def _in_vm(vm: dict, *argv: str) -> None:
    subprocess.run(command(vm["name"], list(argv)), check=True, capture_output=True,
                   timeout=30)


@contextlib.contextmanager
def _network_behind(lab, gateway_vm: dict):
    """A namespace behind ``gateway_vm`` on 172.31.62.0/24, routed by the VM."""
    ns = layout.vm_netns(gateway_vm["name"] + "lan")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "link", "add", "lan0", "netns", layout.vm_netns(
            gateway_vm["name"]), "type", "veth", "peer", "name", "eth0", "netns", ns],
                       check=True)
        for argv in (["addr", "add", "172.31.62.2/24", "dev", "eth0"],
                     ["link", "set", "eth0", "up"],
                     ["route", "add", "default", "via", "172.31.62.1"]):
            subprocess.run(["ip", "-n", ns, *argv], check=True)
        _in_vm(gateway_vm, "ip", "addr", "add", "172.31.62.1/24", "dev", "lan0")
        _in_vm(gateway_vm, "ip", "link", "set", "lan0", "up")
        _in_vm(gateway_vm, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        yield "172.31.62.2"
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def _routes(lab, host: str, namespace: str) -> str:
    return lab.in_namespace(host, namespace, "ip", "route", "show", BEHIND)


def test_extra_route_via_a_vm_reaches_the_network_behind_it_from_every_host(lab):
    net1, sub1 = lab.network("10.62.1.0/24")
    net2, sub2 = lab.network("10.62.2.0/24")
    router = lab.router(sub1, sub2, gateway=True)
    qrouter, snat = names.qrouter_ns_name(router["id"]), names.snat_ns_name(router["id"])
    gateway_vm = lab.boot("compute1", net1)
    client = lab.boot("compute2", net2)
    with _network_behind(lab, gateway_vm) as behind:
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
    the virtual MAC, then a gratuitous ARP of its own."""
    _in_vm(vm, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1",
           "net.ipv4.conf.all.arp_announce=2")
    _in_vm(vm, "ip", "link", "add", "vip0", "link", "eth0", "address", VMAC, "type",
           "macvlan", "mode", "bridge")
    _in_vm(vm, "ip", "addr", "add", f"{vip}/24", "dev", "vip0")
    _in_vm(vm, "ip", "link", "set", "vip0", "up")
    subprocess.run(command(vm["name"], ["arping", "-U", "-c", "1", "-I", "vip0", vip]),
                   capture_output=True, timeout=30)


def _release_vip(vm: dict) -> None:
    _in_vm(vm, "ip", "link", "del", "vip0")


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
