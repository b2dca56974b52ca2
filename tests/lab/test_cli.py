"""dvr-lab as a user drives it: status, exec on hosts and upstream, logs, VMs, errors."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.lab.world import wait_for


def dvr_lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvr_agent.lab.main", *args],
                          capture_output=True, text=True, timeout=120)


def test_status_exec_and_logs(lab):
    status = json.loads(dvr_lab("status", "--json").stdout)
    assert [h["name"] for h in status["hosts"]] == ["network", "compute1", "compute2"]
    assert all(h["agent"]["running"] and len(h["ovs"]) == 2 for h in status["hosts"])
    assert status["broker"]["running"] and status["server"]["running"]
    assert dvr_lab("exec", "compute1", "--", "ovs-vsctl", "br-exists", "br-tun").returncode == 0
    assert dvr_lab("exec", "compute1", "--", "hostname").stdout.strip() == "compute1"
    assert "203.0.113.1/24" in dvr_lab("exec", "upstream", "--", "ip", "-o", "addr").stdout
    assert "ready in" in dvr_lab("logs", "compute2").stdout
    hosts = json.loads(dvr_lab("dvrctl", "--json", "host", "list").stdout)
    assert {h["host"] for h in hosts} == {"network", "compute1", "compute2"}


def test_vm_commands_and_clear_errors(lab):
    net, subnet = lab.network("10.51.1.0/24")
    lab.router(subnet)
    boot = dvr_lab("vm", "boot", "cli1", "--host", "compute2", "--network", net["id"])
    assert boot.returncode == 0, boot.stderr
    wait_for("the VM reaching its gateway", lambda: dvr_lab(
        "vm", "exec", "cli1", "--", "ping", "-c", "1", "-W", "1", "10.51.1.1").returncode == 0)
    assert dvr_lab("vm", "delete", "cli1").returncode == 0
    for args, message in [
        (("exec", "nosuchhost", "--", "true"), "no lab host 'nosuchhost'"),
        (("vm", "boot", "x", "--host", "compute1", "--network", "nosuchnet"), "nosuchnet"),
        (("vm", "exec", "nosuchvm", "--", "true"), "no VM 'nosuchvm'"),
        (("up", "--hosts", "a:b"), "mode 'b' of a is not one of"),
    ]:
        done = dvr_lab(*args)
        assert done.returncode == 1 and message in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert dvr_lab("agent", "explode", "compute1").returncode == 2  # argparse: bad usage
