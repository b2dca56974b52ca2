"""What a container-lab test does: topology through dvrctl, VMs, looking at hosts, the CLI.

Everything goes through the lab's own interfaces (the Lab facade, dvrctl, `dvr-lab`), the
same on both backends; only the hosts underneath are systemd containers.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from typing import Any

from dvr_agent.lab import layout
from dvr_agent.lab.lab import Lab
from dvr_agent.lab.vms import server_json

_unique = itertools.count(1)


def wait_for(what: str, check, timeout: float = 60.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def dvr_lab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The `dvr-lab` command, as a user runs it (it finds the lab from its state)."""
    return subprocess.run([sys.executable, "-m", "dvr_agent.lab.main", *args],
                          capture_output=True, text=True, timeout=timeout)


class ContainerLab:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def ctl(self, *args: str) -> Any:
        return server_json(*args)

    def name(self, base: str) -> str:
        return f"{base}{next(_unique)}"

    def network(self, cidr: str) -> tuple[dict, dict]:
        net = self.ctl("network", "create", self.name("net"))
        return net, self.ctl("subnet", "create", net["id"], cidr, "--name", self.name("sub"))

    def external(self) -> dict:
        """The one external network (physnet1 carries one), made on first use."""
        for net in self.ctl("network", "list"):
            if net["name"] == "public":
                return net
        net = self.ctl("network", "create", "public", "--external", "--physnet",
                       layout.PHYSNET)
        self.ctl("subnet", "create", "public", str(layout.EXTERNAL), "--gateway",
                 str(layout.UPSTREAM_IP), "--name", "public-subnet")
        return net

    def router(self, *subnets: dict, gateway: bool = False) -> dict:
        router = self.ctl("router", "create", self.name("router"))
        for subnet in subnets:
            self.ctl("router", "add-interface", router["id"], subnet["id"])
        if gateway:
            self.ctl("router", "set-gateway", router["id"], self.external()["id"])
        return router

    def boot(self, host: str, network: dict) -> dict:
        return self.lab.vm_boot(self.name("vm"), host, network["id"])

    def on(self, host: str, *argv: str) -> str:
        done = subprocess.run(self.lab.exec_argv(host, list(argv)), capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, f"{' '.join(argv)} on {host}: {done.stderr.strip()}"
        return done.stdout

    def namespaces(self, host: str) -> set[str]:
        return {line.split()[0] for line in self.on(host, "ip", "netns").splitlines() if line}

    def hosts_with(self, namespace: str) -> set[str]:
        return {h.name for h in self.lab.hosts if namespace in self.namespaces(h.name)}

    def ping(self, vm: dict, address: str, count: int = 1) -> bool:
        return self.lab.vm_exec(vm["name"], ["ping", "-c", str(count), "-W", "1", "-i", "0.2",
                                             address], capture=True).returncode == 0
