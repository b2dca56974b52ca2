"""Every dvr-lab command on the containers backend, as a user types it.

On these hosts the daemons are systemd units, so each command is checked for what systemd
shows: `dvr-lab agent restart` is a `systemctl restart` that converges with no change,
`agent kill` a crash that Restart=on-failure repairs, `ovs restart` a restarted
ovs-vswitchd the agent reprograms, `broker stop` an outage the agents live through.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.container_lab.world import dvr_lab, wait_for


def _ok(*args: str) -> str:
    done = dvr_lab(*args)
    assert done.returncode == 0, f"dvr-lab {' '.join(args)}: {done.stderr}"
    return done.stdout


def _agent(host: str) -> dict:
    status = json.loads(_ok("status", "--json"))
    return next(h["agent"] for h in status["hosts"] if h["name"] == host)


@pytest.fixture(scope="module")
def pair(lab):
    """Two VMs across compute1 and compute2 on one router; their ping is the check."""
    net1, sub1 = lab.network("10.64.1.0/24")
    net2, sub2 = lab.network("10.64.2.0/24")
    lab.router(sub1, sub2)
    vm1, vm2 = lab.boot("compute1", net1), lab.boot("compute2", net2)
    wait_for("vm1 reaching vm2", lambda: lab.ping(vm1, vm2["ip"]))
    yield vm1, vm2
    lab.lab.vm_delete(vm1["name"])
    lab.lab.vm_delete(vm2["name"])


def test_status_exec_logs_and_dvrctl(lab):
    status = json.loads(_ok("status", "--json"))
    assert [h["name"] for h in status["hosts"]] == ["network", "compute1", "compute2"]
    assert all(h["agent"]["running"] and all(h["ovs"]) for h in status["hosts"])
    assert status["broker"]["running"] and status["server"]["running"]
    assert _ok("exec", "compute1", "--", "hostname").strip() == "compute1"
    assert _ok("exec", "compute1", "--", "systemctl", "is-active", "dvr-agent",
               "ovs-vswitchd").split() == ["active", "active"]
    assert _ok("exec", "controller", "--", "systemctl", "is-active", "rabbitmq-server",
               "dvr-server").split() == ["active", "active"]
    # the network node runs the shipped unit with the network-node drop-in
    assert "network-node.conf" in _ok("exec", "network", "--", "systemctl", "cat", "dvr-agent")
    assert "203.0.113.1/24" in _ok("exec", "upstream", "--", "ip", "-o", "addr")
    assert "dvr-agent on compute2: ready in" in _ok("logs", "compute2")
    assert "serving on" in _ok("logs", "controller")
    table = _ok("dvrctl", "host", "list")  # the dvr_host_macs table, with the agents' modes
    for host, mode in (("network", "dvr_snat"), ("compute1", "dvr"), ("compute2", "dvr")):
        assert re.search(rf"\| {host} +\| {mode} +\| yes +\| fa:16:3f:", table), table


def test_vm_boot_exec_and_delete(lab):
    net, subnet = lab.network("10.65.1.0/24")
    lab.router(subnet)
    _ok("vm", "boot", "cli1", "--host", "network", "--network", net["id"])
    wait_for("the VM reaching its gateway", lambda: dvr_lab(
        "vm", "exec", "cli1", "--", "ping", "-c", "1", "-W", "1", "10.65.1.1").returncode == 0)
    _ok("vm", "delete", "cli1")
    assert "cli1" not in json.loads(_ok("status", "--json"))["vms"]


def test_agent_restart_kill_stop_and_start_keep_traffic(lab, pair):
    vm1, vm2 = pair
    before = _agent("compute1")["pid"]
    _ok("agent", "restart", "compute1")
    assert _agent("compute1")["pid"] != before
    ready = re.findall(r"dvr-agent on compute1: ready in [0-9.]+ s with (\d+) changes",
                       _ok("logs", "compute1"))
    assert ready[-1] == "0", ready
    assert lab.ping(vm1, vm2["ip"], count=3)

    killed = _agent("compute2")["pid"]
    _ok("agent", "kill", "compute2")
    wait_for("systemd restarting the killed agent", lambda: (
        _agent("compute2")["running"] and _agent("compute2")["pid"] != killed))
    assert lab.ping(vm1, vm2["ip"], count=3)

    _ok("agent", "stop", "compute1")
    assert not _agent("compute1")["running"]
    assert lab.ping(vm1, vm2["ip"], count=3), "the data plane stays with the agent stopped"
    _ok("agent", "start", "compute1")
    assert _agent("compute1")["running"]


def test_ovs_and_ovsdb_restarts_are_repaired(lab, pair):
    vm1, vm2 = pair
    _ok("ovs", "restart", "compute1")
    wait_for("traffic back after ovs-vswitchd restarted", lambda: lab.ping(vm1, vm2["ip"]))
    _ok("ovsdb", "restart", "compute2")
    wait_for("traffic after ovsdb-server restarted", lambda: lab.ping(vm1, vm2["ip"]))
    assert lab.ping(vm2, vm1["ip"], count=3)


def test_broker_outage_and_server_restart(lab, pair):
    vm1, vm2 = pair
    _ok("broker", "stop")
    assert not json.loads(_ok("status", "--json"))["broker"]["running"]
    assert lab.ping(vm1, vm2["ip"], count=3), "the data plane stays without a broker"
    _ok("broker", "start")
    _ok("server", "restart")
    status = json.loads(_ok("status", "--json"))
    assert status["broker"]["running"] and status["server"]["running"]
    net, subnet = lab.network("10.66.1.0/24")  # the control plane works again end to end
    lab.router(subnet)
    vm3 = lab.boot("compute1", net)
    try:
        wait_for("a new VM reaching its gateway", lambda: lab.ping(vm3, "10.66.1.1"))
    finally:
        lab.lab.vm_delete(vm3["name"])
