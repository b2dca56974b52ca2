"""The agent touches only what it owns: namespaces, flows, OVS ports and nftables tables of
others survive its syncs, restarts, drift repairs and cleanups."""

from __future__ import annotations

import subprocess
import time

from pyroute2 import netns

from dvr_agent import names
from tests.functional.agent_env import in_ns, wait_for, world  # noqa: F401

THEIR_COOKIE = "0x1234"


def _theirs(w, qrouter: str | None) -> dict:
    """Everything of others that must stay, as an operator would list it."""
    state = {
        "namespaces": sorted(n for n in netns.listnetns()
                             if n in ("qrouter-notauuid", "myapp-1")),
        "flows": sorted(line.split(" actions=")[0].split(", priority=")[1]
                        for bridge in ("br-int", "br-tun")
                        for line in w.ovs.ofctl("dump-flows", w.ovs.mgmt(bridge),
                                                f"cookie={THEIR_COOKIE}/-1").splitlines()[1:]),
        "port": w.ovs.vsctl("--columns=name,external_ids", "list", "Interface", "myport"),
        "table": in_ns("myapp-1", "nft", "list", "table", "ip", "myapp"),
    }
    if qrouter:
        state["table_in_ours"] = in_ns(qrouter, "nft", "list", "table", "ip", "myapp")
    return state


def test_what_is_not_ours_survives_syncs_restarts_and_cleanup(world):  # noqa: F811
    w = world
    for name in ("qrouter-notauuid", "myapp-1"):
        netns.create(name)
    try:
        for bridge in ("br-int", "br-tun"):
            w.ovs.ofctl("add-flow", w.ovs.mgmt(bridge),
                        f"cookie={THEIR_COOKIE},table=0,priority=7,in_port=1,actions=drop")
        w.ovs.vsctl("add-port", "br-int", "myport", "--", "set", "Interface", "myport",
                    "type=internal")
        def their_table(ns: str) -> None:
            in_ns(ns, "nft", "add", "table", "ip", "myapp")
            in_ns(ns, "nft", "add", "chain", "ip", "myapp", "c")
            in_ns(ns, "nft", "add", "rule", "ip", "myapp", "c", "counter", "accept")
        their_table("myapp-1")

        w.ctl("network", "create", "net1")
        w.ctl("subnet", "create", "net1", "10.10.1.0/24", "--name", "sub1")
        router = w.ctl("router", "create", "r1")
        w.ctl("router", "add-interface", "r1", "sub1")
        vm = w.boot_vm("vm1", "net1")
        qrouter = names.qrouter_ns_name(router["id"])
        wait_for("the router built", lambda: qrouter in netns.listnetns())
        their_table(qrouter)  # somebody else's table inside our namespace
        before = _theirs(w, qrouter)
        assert len(before["flows"]) == 2 and "myport" in before["port"]

        time.sleep(6)  # a whole resync cycle compares everything
        assert _theirs(w, qrouter) == before, "a resync touched what is not ours"
        w.agent.stop()
        w.agent.start()
        assert _theirs(w, qrouter) == before, "a restart touched what is not ours"

        w.unplug_vm(vm)
        w.ctl("port", "delete", vm.port["id"])
        wait_for("our router removed", lambda: qrouter not in netns.listnetns())
        time.sleep(6)
        after = _theirs(w, None)
        del before["table_in_ours"]  # it went with our namespace, as everything in it
        assert after == before, "a cleanup touched what is not ours"
    finally:
        w.ovs.vsctl("--if-exists", "del-port", "br-int", "myport")
        for name in ("qrouter-notauuid", "myapp-1"):
            if name in netns.listnetns():
                netns.remove(name)
        subprocess.run(["ip", "link", "del", "myport"], capture_output=True)
