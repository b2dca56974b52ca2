"""Drift: what an operator deletes by hand is noticed and repaired within 10 s, and logged.

The agent compares every key with the host once per resync_interval (5 s here, 8 s by
default), a slice at a time; nothing else triggers these repairs.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from pyroute2 import netns

from dvr_agent import names
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.state import Neighbour
from tests.functional.agent_env import in_ns, wait_for, world  # noqa: F401

REPAIR_WITHIN = 10.0


@pytest.fixture
def router_with_fip(world):  # noqa: F811
    return (world, *world.router_with_fip())


def _repaired(w, what: str, check) -> float:
    started = time.monotonic()
    wait_for(what, check, timeout=REPAIR_WITHIN)
    took = time.monotonic() - started
    wait_for("the repair logged as drift", lambda: "drift repaired" in w.agent.log(), 5)
    return took


def test_a_deleted_qrouter_namespace_is_rebuilt(router_with_fip):
    w, router, vm, _ = router_with_fip
    qrouter = names.qrouter_ns_name(router["id"])
    subprocess.run(["ip", "netns", "del", qrouter], check=True)
    took = _repaired(w, "the qrouter namespace back with its gateway address", lambda: (
        qrouter in netns.listnetns()
        and "10.10.1.1/24" in in_ns(qrouter, "ip", "-o", "addr", check=False)))
    wait_for("the VM reaching its gateway again", lambda: vm.ping("10.10.1.1"))
    print(f"qrouter namespace rebuilt {took:.1f} s after its deletion")


def test_a_deleted_dvr_flow_is_put_back(router_with_fip):
    w, _, _, _ = router_with_fip
    line = next(x for x in w.ovs.ofctl("dump-flows", w.ovs.mgmt("br-tun")).splitlines()
                if "mod_dl_src" in x)
    match = line.split(" priority=")[1].split(" actions=")[0]
    table = line.split("table=")[1].split(",")[0]
    w.ovs.ofctl("--strict", "del-flows", w.ovs.mgmt("br-tun"),
                f"table={table},priority={match}")
    assert "mod_dl_src" not in w.ovs.ofctl("dump-flows", w.ovs.mgmt("br-tun"))
    _repaired(w, "the mod_dl_src flow back",
              lambda: "mod_dl_src" in w.ovs.ofctl("dump-flows", w.ovs.mgmt("br-tun")))


def test_a_deleted_arp_entry_and_fip_rule_come_back(router_with_fip):
    w, router, vm, _ = router_with_fip
    qrouter = names.qrouter_ns_name(router["id"])
    with Netlink(qrouter) as nl:
        entry = next(n for n in nl.neighbours() if n.ip == vm.ip)
        rule = next(r for r in nl.rules() if r.src == f"{vm.ip}/32")
        nl.neigh_del([entry])
        nl.rule_del(rule)

    def back() -> bool:
        with Netlink(qrouter) as nl:
            return (Neighbour(entry.device, entry.ip, entry.mac) in nl.neighbours()
                    and rule in nl.rules())
    _repaired(w, "the ARP entry and the floating IP rule back", back)
