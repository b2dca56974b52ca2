"""The agent's Prometheus endpoint, scraped from a running agent as an operator would.

The agent runs against the real dvr-server, RabbitMQ, Open vSwitch and kernel (the
``world`` of the agent tests); the figures checked are the ones that must move when the
agent works: a full sync, passes, changes per area, event latencies, errors.
"""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from pyroute2 import netns

from dvr_agent import names
from dvr_agent.drivers.netlink import Netlink
from tests.functional.agent_env import L3Notifier, wait_for, world  # noqa: F401


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _latencies(samples, event: str) -> float:
    return samples.get(("dvr_agent_event_latency_seconds_count", (("event", event),)), 0)


def test_metrics_endpoint_shows_sync_passes_changes_event_latency_and_errors(world):  # noqa: F811
    w = world
    w.ctl("network", "create", "net1")
    sub1 = w.ctl("subnet", "create", "net1", "10.10.1.0/24", "--name", "sub1")
    router = w.ctl("router", "create", "r1")
    w.ctl("router", "add-interface", "r1", "sub1")
    port = _free_port()
    w.agent.stop()
    w.agent.extra = {"agent": {"metrics_port": port}}
    w.agent.start()

    started = scrape(port)
    assert started[("dvr_agent_full_sync_seconds_count", ())] == 1
    assert started[("dvr_agent_startup_seconds", ())] > 0
    assert ("dvr_agent_queue_depth", ()) in started

    vm = w.boot_vm("vm1", "net1")
    qrouter = names.qrouter_ns_name(router["id"])
    wait_for("the VM port reported up",
             lambda: w.ctl("port", "show", vm.port["id"])["status"] == "ACTIVE")
    assert qrouter in netns.listnetns()
    notifier = L3Notifier(w.server.transport_url)
    try:
        notifier.arp("add_arp_entry", router["id"], {
            "ip_address": "10.10.1.200", "mac_address": "fa:16:3e:00:01:c8",
            "subnet_id": sub1["id"]})
        wait_for("the ARP entry in the kernel", lambda: _neighbour(qrouter, "10.10.1.200"))
        notifier.cast_l3("add_arp_entry", payload={"router_id": "not-a-uuid",
                                                   "arp_table": {}})
        wait_for("the ARP event and the bad payload counted", lambda: (
            _latencies(scrape(port), "add_arp_entry") >= 1 and
            scrape(port).get(("dvr_agent_errors_total", (("stage", "notification"),)), 0) >= 1))
    finally:
        notifier.close()

    after = scrape(port)
    assert after[("dvr_agent_reconcile_passes_total", ())] > \
        started[("dvr_agent_reconcile_passes_total", ())]
    assert after[("dvr_agent_changes_total", (("area", "neighbours"),))] >= 2  # VM + event
    assert after[("dvr_agent_changes_total", (("area", "namespaces"),))] >= 1
    assert after[("dvr_agent_changes_total", (("area", "flows"),))] > 0
    assert _latencies(after, "vif_plugged") == 1
    assert _latencies(after, "routers_updated") >= 1  # the VM brought the router here
    arp_sum = after[("dvr_agent_event_latency_seconds_sum", (("event", "add_arp_entry"),))]
    assert 0 < arp_sum < 5
    assert after[("dvr_agent_queue_depth", ())] >= 0


def _neighbour(namespace: str, ip: str) -> bool:
    with Netlink(namespace) as nl:
        return any(n.ip == ip for n in nl.neighbours())
