"""The seed's scenarios on hosts that are systemd containers, with the shipped units.

Lifecycle: qrouter only where a VM of the router is (and on the network node with a
gateway), snat with the gateway, fip with the first floating IP; east-west traffic across
hosts with the DVR MAC on the wire; SNAT and floating IPs seen from the upstream.
"""

from __future__ import annotations

import re
import subprocess
import time

from dvr_agent import names
from dvr_agent.lab import layout, probes
from tests.container_lab.world import wait_for


def test_router_namespaces_follow_the_vms_the_gateway_and_the_floating_ip(lab):
    net_a, sub_a = lab.network("10.61.1.0/24")
    net_b, sub_b = lab.network("10.61.2.0/24")
    router = lab.router(sub_a, sub_b)
    qrouter, snat = names.qrouter_ns_name(router["id"]), names.snat_ns_name(router["id"])
    fip_ns = names.fip_ns_name(lab.external()["id"])

    vm_a = lab.boot("compute1", net_a)
    wait_for("qrouter on compute1 only", lambda: lab.hosts_with(qrouter) == {"compute1"})
    vm_b = lab.boot("compute2", net_b)
    wait_for("qrouter on both computes", lambda: lab.hosts_with(qrouter) == {
        "compute1", "compute2"})

    lab.ctl("router", "set-gateway", router["id"], "public")
    wait_for("snat on the network node", lambda: lab.hosts_with(snat) == {"network"})
    fip = lab.ctl("floatingip", "create", "public", "--port", vm_a["port_id"])
    wait_for("fip namespace on compute1 only", lambda: lab.hosts_with(fip_ns) == {"compute1"})

    lab.ctl("floatingip", "delete", fip["id"])
    wait_for("fip namespace gone with the last floating IP", lambda: not lab.hosts_with(fip_ns))
    lab.lab.vm_delete(vm_a["name"])
    wait_for("qrouter gone from compute1 with its last VM", lambda: lab.hosts_with(qrouter) == {
        "compute2", "network"})
    lab.ctl("router", "clear-gateway", router["id"])
    wait_for("snat gone with the gateway", lambda: not lab.hosts_with(snat))
    lab.lab.vm_delete(vm_b["name"])
    wait_for("no qrouter left", lambda: not lab.hosts_with(qrouter))


def test_east_west_across_hosts_carries_the_dvr_mac_on_the_underlay(lab):
    net1, sub1 = lab.network("10.62.1.0/24")
    net2, sub2 = lab.network("10.62.2.0/24")
    lab.router(sub1, sub2)
    vm1, vm2 = lab.boot("compute1", net1), lab.boot("compute2", net2)
    try:
        wait_for("vm1 reaching vm2 across hosts", lambda: lab.ping(vm1, vm2["ip"]))
        assert lab.ping(vm2, vm1["ip"], count=3)
        macs = {h["host"]: h["mac_address"] for h in lab.ctl("host", "list")}
        # the wire into compute2, in the fabric: podman's veth, named as in the namespace lab;
        # VXLAN with ICMP inside (UDP 8 + VXLAN 8 + Ethernet 14 + IP's protocol at 9 = 39)
        capture = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{layout.FABRIC_NS}", "--", "tcpdump", "-l", "-n",
             "-e", "-c", "4", "-i", "u-compute2", "udp port 4789 and udp[39] = 1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(1)
        assert lab.ping(vm1, vm2["ip"], count=3)
        wire, _ = capture.communicate(timeout=20)
        inner = re.findall(r"^\s*([0-9a-f:]{17}) > [0-9a-f:]{17}, ethertype IPv4.*ICMP", wire,
                           re.MULTILINE)
        # the sender host's DVR MAC both ways, never the shared gateway MAC
        assert set(inner) == {macs["compute1"], macs["compute2"]}, wire
    finally:
        lab.lab.vm_delete(vm1["name"])
        lab.lab.vm_delete(vm2["name"])


def test_snat_and_floating_ip_as_the_upstream_sees_them(lab):
    net, sub = lab.network("10.63.1.0/24")
    router = lab.router(sub, gateway=True)
    vm_snat, vm_fip = lab.boot("compute1", net), lab.boot("compute2", net)
    fip = lab.ctl("floatingip", "create", "public", "--port", vm_fip["port_id"])
    try:
        gateway_ip = lab.ctl("router", "show", router["id"])["external_gateway_info"][
            "external_fixed_ips"][0]["ip_address"]
        wait_for("vm_snat reaching the upstream", lambda: lab.ping(vm_snat, "203.0.113.1"))
        assert probes.source_seen_upstream(vm_snat["name"]) == gateway_ip
        address = fip["floating_ip_address"]
        wait_for("the upstream reaching the floating IP",
                 lambda: probes.ping_ok(probes.UPSTREAM, address))
        assert probes.source_seen_upstream(vm_fip["name"]) == address
    finally:
        lab.ctl("floatingip", "delete", fip["id"])
        lab.lab.vm_delete(vm_snat["name"])
        lab.lab.vm_delete(vm_fip["name"])
        lab.ctl("router", "clear-gateway", router["id"])
