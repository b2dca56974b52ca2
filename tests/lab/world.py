"""What a lab test does and looks at: topology through dvrctl, VMs, what each host shows."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

from dvr_agent import names
from dvr_agent.lab import layout, probes, services
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


class Topology:
    """Topology through dvrctl, as an operator makes it: the same on both lab backends."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

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

    def delete_router(self, router: dict) -> None:
        """Its gateway, its interfaces, then the router: nothing of it stays on any host."""
        shown = self.ctl("router", "show", router["id"])
        if shown["external_gateway_info"]:
            self.ctl("router", "clear-gateway", router["id"])
        for route in shown["routes"]:
            self.ctl("router", "remove-route", router["id"], route["destination"],
                     route["nexthop"])
        for subnet in sorted({i["subnet_id"] for i in shown["interfaces"]}):
            self.ctl("router", "remove-interface", router["id"], subnet)
        self.ctl("router", "delete", router["id"])


class LabWorld(Topology):
    """What a namespace-lab test looks at on each host."""

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

    def learned_at(self, host: str, mac: str) -> int | None:
        """The ofport br-int on ``host`` has learned ``mac`` at (any VLAN), if any."""
        for line in self.on(host, "ovs-appctl", "fdb/show", "br-int").splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 3 and fields[2] == mac:
                return int(fields[0])
        return None

    def dvr_mac(self, host: str) -> str:
        return next(h["mac_address"] for h in self.ctl("host", "list") if h["host"] == host)

    def vm_run(self, vm: dict, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.lab.vm_exec(vm["name"], list(argv), capture=True)

    def ping(self, vm: dict, address: str, count: int = 1) -> bool:
        return self.vm_run(vm, "ping", "-c", str(count), "-W", "1", "-i", "0.2",
                           address).returncode == 0

    def restart_changes(self, host: str) -> int:
        """Restart the host's agent; the changes it made to converge (0: it found all in
        place, as a restart must). From the agent's log, wherever the backend keeps it
        (a file, the journal: the line may reach the journal after systemd has the
        agent's READY=1, so wait for it)."""
        ready = re.compile(rf"dvr-agent on {re.escape(host)}: ready in [0-9.]+ s with "
                           r"(\d+) changes")
        before = len(ready.findall(self.lab.logs(host)))
        self.lab.agent("restart", host)
        changes = wait_for(f"{host}'s agent logging that it is ready after its restart",
                           lambda: ready.findall(self.lab.logs(host))[before:], interval=0.2)
        return int(changes[-1])

    # ------------------------------------------------------------ the upstream's view

    def upstream(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([*probes.UPSTREAM, *argv], capture_output=True, text=True,
                              timeout=60)

    def upstream_neighbour(self, ip: str) -> str | None:
        """The MAC the upstream router has cached for ``ip`` (never flushed by a test)."""
        out = self.upstream("ip", "-j", "neigh", "show", ip, "dev", "eth0").stdout
        entries = [e for e in json.loads(out or "[]") if "lladdr" in e]
        return entries[0]["lladdr"] if entries else None

    def fg_mac(self, host: str, external: dict) -> str:
        """The MAC of the host's fg- port (its FIP agent gateway port on ``external``),
        where the floating IPs it routes answer; once its fg- device has it."""
        [port] = [p for p in self.ctl("port", "list")
                  if p["device_owner"] == "network:floatingip_agent_gateway"
                  and p["binding:host_id"] == host and p["network_id"] == external["id"]]
        fip_ns = names.fip_ns_name(external["id"])

        def device_has_it() -> bool:
            out = self.on(host, "ip", "netns", "exec", fip_ns, "ip", "-j", "link", check=False)
            return any(link["ifname"].startswith(names.FIP_EXT_DEV_PREFIX)
                       and link["address"] == port["mac_address"]
                       for link in json.loads(out or "[]"))
        wait_for(f"fg- on {host} with its port's MAC", device_has_it)
        return port["mac_address"]

    def ping_df(self, argv_prefix: list[str], address: str, payload: int) -> str:
        """One ping with Don't Fragment set and ``payload`` bytes; ping's output."""
        done = subprocess.run([*argv_prefix, "ping", "-c", "1", "-W", "2", "-M", "do", "-s",
                               str(payload), address], capture_output=True, text=True,
                              timeout=30)
        return done.stdout + done.stderr


class Capture:
    """tcpdump in a namespace, started before the action it watches, read after it.

    A context manager: the capture ends with the block, whatever happens in it; ``text``
    is what it saw (set by ``stop()`` or at the end of the block).
    """

    def __init__(self, argv_prefix: list[str], interface: str, expression: str) -> None:
        self.text = ""
        self._proc = subprocess.Popen(
            # --immediate-mode: each packet handed over as it comes, not in libpcap's
            # buffer blocks, so a stop right after the awaited packet cannot lose it
            [*argv_prefix, "tcpdump", "--immediate-mode", "-l", "-n", "-e", "-i", interface,
             expression],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(5):  # "listening on ..." comes once it sees packets
            line = self._proc.stderr.readline()
            if "listening" in line or not line:
                break
        if "listening" not in line:
            self.stop()
            raise AssertionError(f"tcpdump did not start: {line}")

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> str:
        if self._proc.poll() is None:
            self._proc.terminate()
            self.text, _ = self._proc.communicate(timeout=20)
        return self.text
