"""What a lab test does and looks at: topology through dvrctl, VMs, what each host shows."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

from dvr_agent import names
from dvr_agent.lab import layout, services
from dvr_agent.lab.lab import Lab
from dvr_agent.lab.vms import server_json

T = TypeVar("T")
_unique = itertools.count(1)


def wait_for(what: str, check: Callable[[], T], timeout: float = 30.0,
             interval: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class LabWorld:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    # ------------------------------------------------------------ topology

    def ctl(self, *args: str) -> Any:
        return server_json(*args)

    def ctl_fails(self, *args: str) -> subprocess.CompletedProcess:
        done = services.dvrctl(list(args), capture=True)
        assert done.returncode != 0, f"dvrctl {' '.join(args)} should have failed"
        return done

    def name(self, base: str) -> str:
        return f"{base}{next(_unique)}"

    def network(self, cidr: str) -> tuple[dict, dict]:
        net = self.ctl("network", "create", self.name("net"))
        subnet = self.ctl("subnet", "create", net["id"], cidr, "--name", self.name("sub"))
        return net, subnet

    def external(self) -> dict:
        """The lab's external network (one for all tests), made on first use."""
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

    def boot(self, host: str, network: dict, name: str | None = None) -> dict:
        return self.lab.vm_boot(name or self.name("vm"), host, network["id"])

    def delete_vm(self, vm: dict) -> None:
        self.lab.vm_delete(vm["name"])

    def gateway_ip(self, router: dict) -> str:
        info = self.ctl("router", "show", router["id"])["external_gateway_info"]
        return info["external_fixed_ips"][0]["ip_address"]

    # ------------------------------------------------------------ looking at hosts

    def on(self, host: str, *argv: str, check: bool = True) -> str:
        done = subprocess.run(self.lab.exec_argv(host, list(argv)), capture_output=True,
                              text=True, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} on {host}: {done.stderr.strip()}")
        return done.stdout

    def namespaces(self, host: str) -> set[str]:
        return {line.split()[0] for line in self.on(host, "ip", "netns").splitlines()
                if line.strip()}

    def hosts_with(self, namespace: str) -> set[str]:
        return {h.name for h in self.lab.hosts if namespace in self.namespaces(h.name)}

    def in_namespace(self, host: str, namespace: str, *argv: str) -> str:
        return self.on(host, "ip", "netns", "exec", namespace, *argv)

    def neighbours(self, host: str, router: dict) -> set[tuple[str, str]]:
        """(ip, mac) of the PERMANENT entries in the router's qrouter on ``host``."""
        out = self.in_namespace(host, names.qrouter_ns_name(router["id"]), "ip", "-j",
                                "neigh", "show", "nud", "permanent")
        return {(n["dst"], n["lladdr"]) for n in json.loads(out or "[]")}

    def flows(self, host: str, bridge: str) -> str:
        return self.on(host, "ovs-ofctl", "dump-flows", bridge)

    def dvr_mac(self, host: str) -> str:
        return next(h["mac_address"] for h in self.ctl("host", "list") if h["host"] == host)

    def vm_run(self, vm: dict, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.lab.vm_exec(vm["name"], list(argv), capture=True)

    def ping(self, vm: dict, address: str, count: int = 1) -> bool:
        return self.vm_run(vm, "ping", "-c", str(count), "-W", "1", "-i", "0.2",
                           address).returncode == 0
