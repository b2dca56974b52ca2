"""The seed's lifecycle rules, on three hosts with their own OVS and agents (real everything).

1. A subnet added to a router: qrouter only on hosts with a VM on that subnet (and the
   network node when the router has a gateway).
2. A VM booted on a host without the router: qrouter appears there.
3. The last VM of the router on a host deleted: qrouter gone there, still on the others.
4. Gateway set: snat namespace on the network node with sg- and qg-; cleared: gone.
5. First floating IP on a host: fip namespace there; the last one removed (disassociated,
   or its VM deleted): gone.
"""

from __future__ import annotations

from dvr_agent import names
from tests.lab.world import wait_for


def test_router_namespaces_follow_the_vms_and_the_gateway(lab):
    _, sub_a = lab.network("10.31.1.0/24")
    net_b, sub_b = lab.network("10.31.2.0/24")
    net_c, sub_c = lab.network("10.31.3.0/24")
    router = lab.router(sub_a, sub_b)
    qrouter = names.qrouter_ns_name(router["id"])
    snat = names.snat_ns_name(router["id"])

    vm_c = lab.boot("compute2", net_c)  # on subnet C, not yet on the router
    vm_b = lab.boot("compute1", net_b)
    wait_for("qrouter on compute1 only (rule 2)", lambda: lab.hosts_with(qrouter) == {"compute1"})

    lab.ctl("router", "add-interface", router["id"], sub_c["id"])
    wait_for("qrouter on compute2 once its subnet joins the router (rule 1)",
             lambda: lab.hosts_with(qrouter) == {"compute1", "compute2"})

    lab.ctl("router", "set-gateway", router["id"], lab.external()["id"])
    wait_for("snat on the network node with the gateway (rule 4)",
             lambda: snat in lab.namespaces("network"))

    def snat_ports() -> bool:
        links = lab.in_namespace("network", snat, "ip", "-o", "link", "show", "up")
        return links.count(" sg-") == 3 and links.count(" qg-") == 1
    wait_for("one sg- per subnet and the qg- up in the snat namespace", snat_ports)
    assert lab.hosts_with(snat) == {"network"}
    wait_for("qrouter also on the network node (the SNAT host)",
             lambda: lab.hosts_with(qrouter) == {"compute1", "compute2", "network"})

    lab.delete_vm(vm_b)
    wait_for("qrouter gone from compute1 with its last VM, kept elsewhere (rule 3)",
             lambda: lab.hosts_with(qrouter) == {"compute2", "network"})

    lab.ctl("router", "clear-gateway", router["id"])
    wait_for("snat gone with the gateway (rule 4)", lambda: not lab.hosts_with(snat))
    wait_for("qrouter only where a VM is", lambda: lab.hosts_with(qrouter) == {"compute2"})
    lab.delete_vm(vm_c)
    wait_for("no qrouter left anywhere", lambda: not lab.hosts_with(qrouter))


def test_fip_namespace_comes_with_the_first_floating_ip_and_goes_with_the_last(lab):
    net, sub = lab.network("10.32.1.0/24")
    lab.router(sub, gateway=True)
    fip_ns = names.fip_ns_name(lab.external()["id"])
    vm1 = lab.boot("compute1", net)
    vm2 = lab.boot("compute1", net)
    assert fip_ns not in lab.namespaces("compute1")
    fip1 = lab.ctl("floatingip", "create", "public", "--port", vm1["port_id"])
    fip2 = lab.ctl("floatingip", "create", "public", "--port", vm2["port_id"])
    wait_for("fip namespace on compute1 with the first floating IP",
             lambda: lab.hosts_with(fip_ns) == {"compute1"})
    lab.ctl("floatingip", "disassociate", fip1["id"])
    wait_for("the DNAT of the disassociated floating IP gone", lambda: fip1[
        "floating_ip_address"] not in lab.in_namespace(
            "compute1", fip_ns, "ip", "route"))
    assert fip_ns in lab.namespaces("compute1"), "one floating IP is left: fip stays"
    lab.delete_vm(vm2)  # the VM of the last floating IP goes
    wait_for("fip namespace gone with the last floating IP",
             lambda: fip_ns not in lab.namespaces("compute1"))
    lab.ctl("floatingip", "associate", fip1["id"], vm1["port_id"])
    wait_for("fip namespace back with a new floating IP",
             lambda: fip_ns in lab.namespaces("compute1"))
    lab.ctl("floatingip", "delete", fip1["id"])
    wait_for("fip namespace gone when its floating IP is deleted",
             lambda: fip_ns not in lab.namespaces("compute1"))
    lab.ctl("floatingip", "delete", fip2["id"])
    lab.delete_vm(vm1)
