"""dvr-agent.service under real systemd: the shipped unit, unchanged, with an operator's config.

What systemd promises an operator here: the unit is active only once the agent has
synced and converged (Type=notify), `systemctl status` tells what the agent does
(STATUS=), a hung agent is killed and restarted (WatchdogSec=), a crashed one restarted
(Restart=on-failure), a stop is quick; and through all of it the data plane stays and a
ping through a router keeps working. Times are printed, not asserted tightly: the
machine is shared.
"""

from __future__ import annotations

import re
import signal
import time

from tests.systemd.node import Node, Vm, wait_for

WATCHDOG_SEC = 60  # systemd/dvr-agent.service


def _restarts(node: Node) -> int:
    return int(node.show("NRestarts")["NRestarts"])


def test_unit_is_active_only_after_the_first_sync_and_shows_the_agents_status(node):
    node.box.systemctl("stop", "dvr-agent", "dvr-server")
    node.box.systemctl("start", "--no-block", "dvr-agent")
    wait_for("the agent asking for its DVR MAC",
             lambda: "DVR MAC" in node.show("StatusText")["StatusText"])
    for _ in range(10):  # 2 s without a server: starting, and not yet "active"
        state = node.show("ActiveState", "SubState")
        assert (state["ActiveState"], state["SubState"]) == ("activating", "start"), state
        time.sleep(0.2)

    since = node.journal_now()
    node.box.systemctl("start", "dvr-server")
    wait_for("dvr-agent active", lambda: node.show("ActiveState")["ActiveState"] == "active")
    log = node.journal_since(since)
    assert log.index("ready in") < log.index("Started dvr-agent.service"), log
    status = node.box.systemctl("status", "dvr-agent", check=False)
    assert "Active: active (running)" in status, status
    assert re.search(r'Status: ".*\d+ routers, \d+ VIFs, last full sync', status), status


def test_stop_returns_within_5_s_and_leaves_the_data_plane(node, east_west):
    vm1, vm2 = east_west
    before = node.dataplane()
    began = time.monotonic()
    node.box.systemctl("stop", "dvr-agent")
    took = time.monotonic() - began
    print(f"systemctl stop dvr-agent: {took:.2f} s")
    try:
        assert took < 5, f"systemctl stop took {took:.1f} s"
        assert node.show("ActiveState")["ActiveState"] == "inactive"
        assert node.dataplane() == before
        assert node.ping(vm1, vm2.ip, count=3), "the router stopped routing with the agent"
    finally:
        node.box.systemctl("start", "dvr-agent")


def test_restart_converges_with_zero_changes(node, east_west):
    vm1, vm2 = east_west
    before = node.dataplane()
    since = node.journal_now()
    node.box.systemctl("restart", "dvr-agent")
    assert node.wait_ready_after(since) == 0
    assert "converged: 0 changes" in node.journal_since(since)
    assert node.dataplane() == before
    assert node.ping(vm1, vm2.ip)


def _survives(node: Node, vm1: Vm, vm2: Vm, fault: signal.Signals, timeout: float) -> float:
    """Send ``fault`` to the agent with a ping running through the router; once systemd
    has restarted it, check nothing was lost. Returns seconds from fault to new agent."""
    before = node.dataplane()
    restarts = _restarts(node)
    old_pid = node.agent_pid()
    ping = node.start_background_ping(vm1, vm2.ip)
    time.sleep(1)
    since = node.journal_now()
    began = time.monotonic()
    node.box.exec(["kill", f"-{fault.name.removeprefix('SIG')}", str(old_pid)])
    wait_for("systemd to start a new agent", lambda: node.agent_pid() not in (0, old_pid),
             timeout=timeout)
    replaced = time.monotonic() - began
    changes = node.wait_ready_after(since)
    sent, received = node.stop_background_ping(ping)
    print(f"{fault.name}: new agent after {replaced:.1f} s; ping {received}/{sent}; "
          f"restart made {changes} changes")
    assert _restarts(node) == restarts + 1
    assert changes == 0
    assert node.dataplane() == before
    # the last echo may be in flight when ping is stopped
    assert sent > 5 and received >= sent - 1, f"ping through the router: {received}/{sent}"
    return replaced


def test_killed_agent_is_restarted_with_the_data_plane_untouched(node, east_west):
    since = node.journal_now()
    _survives(node, *east_west, signal.SIGKILL, timeout=30)
    log = node.journal_since(since)
    assert "Main process exited, code=killed, status=9/KILL" in log, log
    assert "Scheduled restart job" in log, log


def test_hung_agent_is_killed_by_the_watchdog_and_restarted(node, east_west):
    since = node.journal_now()
    replaced = _survives(node, *east_west, signal.SIGSTOP, timeout=WATCHDOG_SEC * 2 + 30)
    log = node.journal_since(since)
    assert f"Watchdog timeout (limit {WATCHDOG_SEC // 60}min)" in log, log
    assert "Failed with result 'watchdog'" in log, log
    # the agent's last words (faulthandler): where each of its threads was
    assert "Fatal Python error: Aborted" in log and "Thread 0x" in log, log
    # the last WATCHDOG=1 came at most half a WatchdogSec before the SIGSTOP
    assert replaced > WATCHDOG_SEC / 2, f"killed after {replaced:.0f} s"


def test_network_node_drop_in_runs_dvr_snat_with_its_own_config(node, east_west):
    node.set_network_node(True)
    try:
        node.box.systemctl("restart", "dvr-agent")
        cmdline = node.box.exec(["cat", f"/proc/{node.agent_pid()}/cmdline"]).split("\0")
        assert "--config-file=/etc/dvr-agent/network-node.conf" in cmdline, cmdline
        wait_for("the server to know node1 as a network node", lambda: [
            h["agent_modes"] for h in node.ctl("host", "list") if h["host"] == "node1"] == [
            ["dvr_snat"]])
        node.ctl("network", "create", "public", "--external", "--physnet", "physnet1")
        node.ctl("subnet", "create", "public", "203.0.113.0/24", "--gateway", "203.0.113.1",
                 "--name", "public-sub")
        node.ctl("router", "set-gateway", "ew", "public")
        snat = f"snat-{node.ctl('router', 'show', 'ew')['id']}"
        wait_for("the router's snat namespace on the network node",
                 lambda: snat in node.box.exec(["ip", "netns"]))
        node.ctl("router", "clear-gateway", "ew")
        wait_for("the snat namespace gone with the gateway",
                 lambda: snat not in node.box.exec(["ip", "netns"]))
    finally:
        node.set_network_node(False)
        node.box.systemctl("restart", "dvr-agent")


def test_journal_has_the_agents_logs_and_no_secrets(node, east_west):
    agent_log = node.box.journal("dvr-agent")
    assert "dvr-agent on node1: ready in" in agent_log
    assert "DVR MAC of node1" in agent_log
    everything = node.box.exec(["journalctl", "--no-pager", "-o", "cat"])
    assert node.password not in everything, "the broker password is in the journal"
