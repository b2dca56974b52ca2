"""Agent modes and router kinds with real packets (issue 10, item 5).

- A ``dvr_no_external`` compute (compute2, restarted in that mode) routes east-west but
  never has a fip namespace: the floating IP of its VM is served by the network node.
- A legacy (centralized) router beside the distributed ones: one qrouter, on the network
  node, with qg- in it; VMs on both computes reach each other, the upstream and the
  floating IP through it.
- Migrating a router legacy -> distributed -> legacy (admin down, flag, admin up): after
  each step the namespaces are where the kind says and the traffic is back.
"""

from __future__ import annotations

import pytest

from dvr_agent import names
from dvr_agent.lab import probes
from tests.lab.world import wait_for


@pytest.fixture
def compute2_without_external(lab):
    lab.lab.agent("restart", "compute2", mode="dvr_no_external")
    try:
        yield
    finally:
        lab.lab.agent("restart", "compute2", mode="dvr")


def test_dvr_no_external_compute_has_no_fip_namespace_and_its_floating_ip_is_central(
        lab, compute2_without_external):
    net1, sub1 = lab.network("10.64.1.0/24")
    net2, sub2 = lab.network("10.64.2.0/24")
    router = lab.router(sub1, sub2, gateway=True)
    external = lab.external()
    vm = lab.boot("compute2", net1)
    peer = lab.boot("compute1", net2)
    fip = lab.ctl("floatingip", "create", "public", "--port", vm["port_id"])
    address = fip["floating_ip_address"]
    wait_for("the upstream reaching the floating IP",
             lambda: probes.ping_ok(probes.UPSTREAM, address))
    snat = names.snat_ns_name(router["id"])
    assert f"{address}/32" in lab.in_namespace("network", snat, "ip", "-o", "addr")
    assert names.fip_ns_name(external["id"]) not in lab.namespaces("compute2")
    assert probes.source_seen_upstream(vm["name"]) == address
    wait_for("east-west still routed on compute2", lambda: lab.ping(vm, peer["ip"]))
    assert lab.restart_changes("network") == 0, "a restart changed the central floating IP"
    assert names.qrouter_ns_name(router["id"]) in lab.namespaces("compute2")
    assert lab.ctl("floatingip", "show", fip["id"])["status"] == "ACTIVE"
    lab.ctl("floatingip", "delete", fip["id"])
    lab.delete_vm(vm)
    lab.delete_vm(peer)
    lab.delete_router(router)


def _traffic_flows(lab, vm1: dict, vm2: dict, router: dict, fip: dict) -> None:
    wait_for("vm1 reaching vm2 across hosts", lambda: lab.ping(vm1, vm2["ip"]))
    wait_for("the upstream reaching vm1's floating IP",
             lambda: probes.ping_ok(probes.UPSTREAM, fip["floating_ip_address"]))
    assert probes.source_seen_upstream(vm2["name"]) == lab.gateway_ip(router)
    assert probes.source_seen_upstream(vm1["name"]) == fip["floating_ip_address"]


def _placed_as_legacy(lab, router: dict) -> None:
    qrouter, snat = names.qrouter_ns_name(router["id"]), names.snat_ns_name(router["id"])
    wait_for("the legacy router only on the network node",
             lambda: lab.hosts_with(qrouter) == {"network"} and not lab.hosts_with(snat))

    def ports_up() -> bool:  # the namespace comes first, its ports a moment later
        links = lab.in_namespace("network", qrouter, "ip", "-o", "link", "show", "up")
        return links.count(" qr-") == 2 and links.count(" qg-") == 1
    wait_for("qr- (two) and qg- up in the network node's qrouter", ports_up)


def _placed_as_distributed(lab, router: dict) -> None:
    qrouter, snat = names.qrouter_ns_name(router["id"]), names.snat_ns_name(router["id"])
    wait_for("the distributed router on both computes and the network node, snat there",
             lambda: lab.hosts_with(qrouter) == {"network", "compute1", "compute2"}
             and lab.hosts_with(snat) == {"network"})


def _topology(lab, cidr1: str, cidr2: str, distributed: bool):
    net1, sub1 = lab.network(cidr1)
    net2, sub2 = lab.network(cidr2)
    router = lab.ctl("router", "create", lab.name("router"), "--distributed",
                     "true" if distributed else "false")
    for sub in (sub1, sub2):
        lab.ctl("router", "add-interface", router["id"], sub["id"])
    lab.ctl("router", "set-gateway", router["id"], lab.external()["id"])
    vm1, vm2 = lab.boot("compute1", net1), lab.boot("compute2", net2)
    fip = lab.ctl("floatingip", "create", "public", "--port", vm1["port_id"])
    return router, vm1, vm2, fip


def _tear_down(lab, router, vm1, vm2, fip) -> None:
    lab.ctl("floatingip", "delete", fip["id"])
    lab.delete_vm(vm1)
    lab.delete_vm(vm2)
    lab.delete_router(router)


def test_legacy_router_runs_on_the_network_node_beside_distributed_ones(lab):
    router, vm1, vm2, fip = _topology(lab, "10.65.1.0/24", "10.65.2.0/24", distributed=False)
    assert router["distributed"] is False
    _placed_as_legacy(lab, router)
    _traffic_flows(lab, vm1, vm2, router, fip)
    assert lab.restart_changes("network") == 0, "a restart changed the legacy router"
    _tear_down(lab, router, vm1, vm2, fip)


def test_router_migrates_distributed_to_legacy_and_back_with_traffic_restored(lab):
    router, vm1, vm2, fip = _topology(lab, "10.66.1.0/24", "10.66.2.0/24", distributed=True)
    _placed_as_distributed(lab, router)
    _traffic_flows(lab, vm1, vm2, router, fip)
    refused = lab.ctl_fails("router", "set", router["id"], "--distributed", "false")
    assert "set it down first" in refused.stderr
    for distributed, placed in ((False, _placed_as_legacy), (True, _placed_as_distributed)):
        lab.ctl("router", "set", router["id"], "--admin-state", "down")
        wait_for("the router gone everywhere while down", lambda: not lab.hosts_with(
            names.qrouter_ns_name(router["id"])))
        lab.ctl("router", "set", router["id"], "--distributed", str(distributed).lower())
        lab.ctl("router", "set", router["id"], "--admin-state", "up")
        placed(lab, router)
        _traffic_flows(lab, vm1, vm2, router, fip)
    _tear_down(lab, router, vm1, vm2, fip)
