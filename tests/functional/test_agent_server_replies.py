"""Fuzzed server replies over the real broker: a reply the agent cannot use changes nothing.

Here the server is a stand-in in the test process, answering on Neutron's topics: first
with what neutron-server 29 really answered compute1 (the recorded replies: a router with
a gateway and a floating IP), then, for every `routers_updated`, with a hypothesis-made
wrong answer to sync_routers, get_ports_by_subnet, get_agent_gateway_port or device
details. The router, its fip namespace and its flows must stay exactly as they were.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time

import oslo_messaging
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from oslo_config import cfg
from pyroute2 import netns

from dvr_agent import names
from dvr_agent.rpc import protocol, transport
from tests.fixtures.agent_proc import AgentProcess
from tests.functional.agent_env import wait_for
from tests.functional.snapshot import differences, host_snapshot
from tests.functional.test_agent_fuzz import ANY

CAPTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data",
                        "neutron_agent_rpc_calls.json")


def _recorded(method: str, phase: str):
    with open(CAPTURES) as f:
        calls = json.load(f)
    return next(c["result"] for c in calls if c["method"] == method and c["phase"] == phase
                and c["agent"].endswith("compute1"))


class StandInServer:
    """Answers the agent's calls; ``bad`` replaces one method's answer."""

    def __init__(self) -> None:
        self.routers = _recorded("sync_routers", "13_rpc_sync_after_fip")
        self.ports = _recorded("get_ports_by_subnet", "10_rpc_sync_after_interfaces")
        self.gateway = _recorded("get_agent_gateway_port", "13_rpc_sync_after_fip")
        self.bad: dict[str, object] = {}
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def answer(self, method: str, good):
        with self.lock:
            self.calls[method] = self.calls.get(method, 0) + 1
            return copy.deepcopy(self.bad.get(method, good))

    # q-reports-plugin
    def report_state(self, context, **kwargs):
        return "alive"

    # q-plugin (DVR and OVS agent)
    def get_dvr_mac_address_by_host(self, context, host):
        return {"host": host, "mac_address": "FA-16-3F-77-86-3E"}

    def get_dvr_mac_address_list(self, context):
        return [{"host": "compute1", "mac_address": "FA-16-3F-77-86-3E"},
                {"host": "network", "mac_address": "FA-16-3F-C6-07-DA"}]

    def tunnel_sync(self, context, **kwargs):
        return {"tunnels": [{"host": "network", "ip_address": "192.0.2.10", "udp_port": 4789}]}

    def get_devices_details_list_and_failed_devices(self, context, devices, **kwargs):
        return self.answer("get_devices_details_list_and_failed_devices",
                           {"devices": [], "failed_devices": devices})

    def update_device_list(self, context, devices_up, devices_down, **kwargs):
        return {"devices_up": devices_up, "devices_down": devices_down,
                "failed_devices_up": [], "failed_devices_down": []}

    # q-l3-plugin
    def get_router_ids(self, context, host):
        return [r["id"] for r in self.routers]

    def sync_routers(self, context, host, router_ids=None):
        return self.answer("sync_routers", self.routers)

    def get_ports_by_subnet(self, context, host, subnet_id):
        return self.answer("get_ports_by_subnet", self.ports)

    def get_agent_gateway_port(self, context, fip_net, host):
        return self.answer("get_agent_gateway_port", self.gateway)

    def update_floatingip_statuses(self, context, router_id, fip_statuses):
        return None


@pytest.fixture
def stand_in(rabbitmq):
    server = StandInServer()
    rpc = transport.get_transport(cfg.CONF, url=rabbitmq.url())

    class Endpoint:
        target = oslo_messaging.Target(version="1.13")

    endpoint = Endpoint()
    for name in dir(StandInServer):
        if not name.startswith("_") and name not in ("answer",):
            setattr(endpoint, name, getattr(server, name))
    servers = [oslo_messaging.get_rpc_server(rpc, oslo_messaging.Target(topic=t, server="sim"),
                                             [endpoint], executor="threading")
               for t in (protocol.TOPIC_L3_PLUGIN, protocol.TOPIC_PLUGIN,
                         protocol.TOPIC_REPORTS)]
    for s in servers:
        s.start()
    try:
        yield server, rpc
    finally:
        for s in servers:
            s.stop()
        for s in servers:
            s.wait()
        rpc.cleanup()


# ``[]`` is not garbage: to sync_routers(router_ids=[R]) it is the server saying "R is no
# longer on this host", which the agent must act on
ROUTER_GARBAGE = st.one_of(
    ANY,
    st.lists(st.dictionaries(st.sampled_from(["id", "_interfaces", "gw_port", "_floatingips",
                                              "admin_state_up", "distributed"]), ANY,
                             max_size=6), max_size=3),
).filter(lambda reply: reply != [])


def test_unusable_server_replies_change_nothing(stand_in, rabbitmq, ovs, tmp_path):
    server, rpc = stand_in
    router = server.routers[0]
    agent = AgentProcess(host="compute1", mode="dvr", transport_url=rabbitmq.url(),
                         state_dir=str(tmp_path / "agent"), ovs_db=ovs.db,
                         ovs_rundir=ovs.rundir, local_ip="192.0.2.11")
    ovs.vsctl("--may-exist", "add-br", "br-ex", "--", "set", "bridge", "br-ex",
              "datapath_type=netdev", "fail_mode=secure")
    try:
        agent.start()
        fip_ns = names.fip_ns_name(router["gw_port"]["network_id"])
        wait_for("the recorded router and its fip namespace built", lambda: {
            names.qrouter_ns_name(router["id"]), fip_ns} <= set(netns.listnetns()))
        time.sleep(1)
        before = host_snapshot(ovs)
        notify = oslo_messaging.get_rpc_client(
            rpc, oslo_messaging.Target(topic=protocol.TOPIC_L3_AGENT, version="1.0"))

        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(method=st.sampled_from(["sync_routers", "get_ports_by_subnet",
                                       "get_agent_gateway_port",
                                       "get_devices_details_list_and_failed_devices"]),
               reply=ROUTER_GARBAGE)
        # a rejected router with an id that is none of those asked for: it once read as
        # "the router is gone" and took it down (tests/unit/test_fetcher_router_replies.py)
        @example(method="sync_routers", reply=[{"id": ""}])
        def fuzz(method, reply):
            with server.lock:
                server.bad = {"sync_routers": reply} if method == "sync_routers" else {
                    "sync_routers": _with_new_subnet(server.routers), method: reply}
                calls = server.calls.get("sync_routers", 0)
            notify.prepare(fanout=True, version="1.1").cast(
                transport.admin_context(), "routers_updated", routers=[router["id"]])
            wait_for("the agent asking again",
                     lambda: server.calls.get("sync_routers", 0) > calls, timeout=10)

        fuzz()
        with server.lock:  # the good answers again: the extra interface goes
            server.bad = {}
            calls = server.calls.get("sync_routers", 0)
        notify.prepare(fanout=True, version="1.1").cast(
            transport.admin_context(), "routers_updated", routers=[router["id"]])
        wait_for("the agent asking again",
                 lambda: server.calls.get("sync_routers", 0) > calls, timeout=10)
        try:
            wait_for("the data plane as it was", lambda: host_snapshot(ovs) == before,
                     timeout=15)
        except AssertionError:
            raise AssertionError("\n".join(differences(before, host_snapshot(ovs)))) from None
        assert agent.proc.poll() is None
        log = agent.log()
        assert "rejected" in log and "Traceback" not in log.split("ready in")[1]
    finally:
        agent.close()
        for name in netns.listnetns():
            if names.is_owned_namespace(name):
                netns.remove(name)


def _with_new_subnet(routers):
    """The recorded routers with one more interface on a subnet the agent does not know, so
    that it asks for that subnet's ARP table, a gateway port, device details."""
    routers = copy.deepcopy(routers)
    port = copy.deepcopy(routers[0]["_interfaces"][0])
    port["id"] = "11111111-2222-4333-8444-555555555555"
    port["network_id"] = "21111111-2222-4333-8444-555555555555"
    port["mac_address"] = "fa:16:3e:11:11:11"
    subnet_id = "31111111-2222-4333-8444-555555555555"
    port["fixed_ips"] = [{"ip_address": "10.77.0.1", "prefixlen": 24, "subnet_id": subnet_id}]
    port["subnets"] = [{"cidr": "10.77.0.0/24", "gateway_ip": "10.77.0.1", "id": subnet_id,
                        "dns_nameservers": [], "ipv6_ra_mode": None, "subnetpool_id": None}]
    routers[0]["_interfaces"].append(port)
    return routers
