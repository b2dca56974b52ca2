"""Fuzzed notifications over the real broker: each is rejected with a logged reason (or is
harmless), nothing of the data plane changes, and the agent keeps serving.

Payloads come from hypothesis: the shapes neutron-server sends with fields replaced by
wrong types, invalid UUIDs/MACs/IPs, huge lists, and strings made to break a device name,
an nftables rule or a log line.
"""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyroute2 import netns

from dvr_agent import names
from dvr_agent.drivers.netlink import Netlink
from tests.functional.agent_env import L3Notifier, wait_for, world  # noqa: F401
from tests.functional.snapshot import host_snapshot

NASTY = st.sampled_from([
    "", " ", "x" * 10_000, "qr-\n-evil", '"; flush ruleset; "', "} table ip x {", "../../etc",
    "\x00", "ünïcödé", "%s%s%n", "${jndi:x}", "fa:16:3e:zz:00:00", "FA-16-3E-00-00-01-02",
    "10.0.0.256", "10.0.0.0/33", "::1", str(uuid.uuid4()).upper() + "x", "12345678-1234",
])
ANY = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                   | NASTY | st.text(max_size=20),
                   lambda inner: st.lists(inner, max_size=4)
                   | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=8)


def _arp(router_id: str, subnet_id: str):
    table = st.fixed_dictionaries({"ip_address": ANY, "mac_address": ANY, "subnet_id": ANY})
    return st.tuples(st.sampled_from(["add_arp_entry", "del_arp_entry"]), st.fixed_dictionaries(
        {"payload": st.fixed_dictionaries({"router_id": st.just(router_id) | ANY,
                                           "arp_table": table | ANY})}) | st.dictionaries(
        st.text(max_size=8), ANY, max_size=3))


L3_CASTS = st.one_of(
    st.tuples(st.just("routers_updated"), st.fixed_dictionaries(
        {"routers": st.lists(ANY, max_size=5) | ANY})),
    st.tuples(st.just("router_deleted"), st.fixed_dictionaries({"router_id": ANY})),
    st.tuples(st.just("router_removed_from_agent"), st.fixed_dictionaries({"payload": ANY})),
    st.tuples(st.just("fipnamespace_delete_on_ext_net"),
              st.fixed_dictionaries({"ext_net_id": ANY})),
    st.tuples(st.just("agent_updated"), st.fixed_dictionaries({"payload": st.text()})),
)
OVS_CASTS = st.one_of(
    st.tuples(st.just("dvr_mac_address_update"), st.fixed_dictionaries(
        {"dvr_macs": st.lists(st.fixed_dictionaries({"host": ANY, "mac_address": ANY}),
                              max_size=3) | ANY})),
    st.tuples(st.just("tunnel_update"), st.fixed_dictionaries(
        {"tunnel_ip": ANY, "tunnel_type": st.just("vxlan") | ANY})),
)


def test_fuzzed_notifications_change_nothing_and_the_agent_keeps_serving(world):  # noqa: F811
    w = world
    w.ctl("network", "create", "net1")
    subnet = w.ctl("subnet", "create", "net1", "10.10.1.0/24", "--name", "sub1")
    router = w.ctl("router", "create", "r1")
    w.ctl("router", "add-interface", "r1", "sub1")
    vm = w.boot_vm("vm1", "net1")
    qrouter = names.qrouter_ns_name(router["id"])
    wait_for("the VM port up", lambda: w.ctl("port", "show", vm.port["id"])["status"]
             == "ACTIVE")
    before = host_snapshot(w.ovs)
    notifier = L3Notifier(w.server.transport_url)
    sent = {"l3": 0, "ovs": 0}

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(cast=st.one_of(L3_CASTS, _arp(router["id"], subnet["id"]),
                          OVS_CASTS.map(lambda c: ("ovs", *c))))
    def fuzz(cast):
        if cast[0] == "ovs":
            notifier.cast_ovs(cast[1], cast[2])
            sent["ovs"] += 1
        else:
            notifier.cast_l3(cast[0], **cast[1])
            sent["l3"] += 1

    try:
        fuzz()
        # a valid entry after the fuzz: once it is in the kernel, all before it were handled
        sentinel = {"ip_address": "10.10.1.250", "mac_address": "fa:16:3e:00:02:50",
                    "subnet_id": subnet["id"]}
        notifier.arp("add_arp_entry", router["id"], sentinel)
        wait_for("the sentinel ARP entry", lambda: _neighbour(qrouter, "10.10.1.250"))
        notifier.arp("del_arp_entry", router["id"], sentinel)
        wait_for("the sentinel ARP entry gone", lambda: not _neighbour(qrouter, "10.10.1.250"))
    finally:
        notifier.close()
    log = w.agent.log()
    assert sent["l3"] > 20 and sent["ovs"] > 10
    assert log.count(" rejected: ") > 50, "expected most fuzzed notifications rejected"
    assert "the agent keeps serving" not in log, "an unexpected exception in an endpoint"
    assert w.agent.proc.poll() is None
    wait_for("the data plane as it was", lambda: host_snapshot(w.ovs) == before, timeout=30)
    vm2 = w.boot_vm("vm2", "net1")
    wait_for("a new VM wired after the fuzz", lambda: w.ctl(
        "port", "show", vm2.port["id"])["status"] == "ACTIVE")


def _neighbour(ns: str, ip: str) -> bool:
    if ns not in netns.listnetns():
        return False
    with Netlink(ns) as nl:
        return any(n.ip == ip for n in nl.neighbours())
