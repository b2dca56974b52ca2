"""``dvr-lab demo``: the seed's topology on three hosts, and DVR shown working with real packets.

A router with two subnets and a gateway; vm1 on compute1 (subnet 1, with a floating IP)
and vm2 on compute2 (subnet 2). Then: east-west across hosts, SNAT to the upstream
gateway (which sees the router's gateway address), the upstream reaching the floating
IP (and seeing it as vm1's source), and what the seed's text shows: the namespaces per
host, the dvr_host_macs table, and compute1's br-tun ``mod_dl_src`` flows.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

from dvr_agent.lab import layout, probes, services
from dvr_agent.lab.lab import Lab
from dvr_agent.lab.vms import server_json

TOPOLOGY = [
    ("network", "create", "public", "--external", "--physnet", layout.PHYSNET),
    ("subnet", "create", "public", str(layout.EXTERNAL), "--gateway", str(layout.UPSTREAM_IP),
     "--name", "public-subnet"),
    ("network", "create", "net1"),
    ("subnet", "create", "net1", "10.0.1.0/24", "--name", "subnet1"),
    ("network", "create", "net2"),
    ("subnet", "create", "net2", "10.0.2.0/24", "--name", "subnet2"),
    ("router", "create", "router1"),
    ("router", "add-interface", "router1", "subnet1"),
    ("router", "add-interface", "router1", "subnet2"),
    ("router", "set-gateway", "router1", "public"),
]


class Steps:
    """Numbered progress lines with the time each step took."""

    def __init__(self) -> None:
        self.n = 0
        self.started = time.monotonic()

    def run(self, title: str, step: Callable[[], str | None]) -> None:
        self.n += 1
        print(f"[{self.n:2}] {title} ...", flush=True)
        begun = time.monotonic()
        detail = step()
        print(f"     ok ({time.monotonic() - begun:.1f} s){': ' + detail if detail else ''}",
              flush=True)


def _show(title: str, argv: list[str], keep: Callable[[str], bool] = lambda _: True) -> None:
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    print(f"\n$ {title}")
    for line in out.splitlines():
        if keep(line):
            print(f"  {line}")


def run_demo(lab: Lab, down: bool = False) -> int:
    steps = Steps()
    if lab.hosts:
        print("a lab is up: taking it down first, the demo starts from scratch")
        lab.down()
    vms: dict[str, dict] = {}
    state: dict[str, str] = {}
    steps.run("lab up: fabric, 3 hosts with Open vSwitch, RabbitMQ, dvr-server, 3 agents",
              lambda: lab.up() or None)

    def topology() -> str:
        for args in TOPOLOGY:
            server_json(*args)
        return "router1 with subnet1 10.0.1.0/24, subnet2 10.0.2.0/24, gateway on public"
    steps.run("topology on dvr-server (dvrctl)", topology)

    def boot() -> str:
        vms["vm1"] = lab.vm_boot("vm1", "compute1", "net1")
        vms["vm2"] = lab.vm_boot("vm2", "compute2", "net2")
        fip = server_json("floatingip", "create", "public", "--port", vms["vm1"]["port_id"])
        state["fip"] = fip["floating_ip_address"]
        return (f"vm1 {vms['vm1']['ip']} on compute1 (floating IP {state['fip']}), "
                f"vm2 {vms['vm2']['ip']} on compute2")
    steps.run("VMs booted, a floating IP for vm1", boot)

    steps.run("east-west: vm1 (compute1) pings vm2 (compute2), routed on each sender's host",
              lambda: probes.wait_ping(lab, "vm1", vms["vm2"]["ip"]))
    gw_ip = server_json("router", "show", "router1")["external_gateway_info"][
        "external_fixed_ips"][0]["ip_address"]
    steps.run("SNAT: vm2 (no floating IP) reaches the upstream gateway 203.0.113.1",
              lambda: probes.expect_source(lab, "vm2", gw_ip, "the router's gateway IP"))
    steps.run(f"floating IP: the upstream pings {state['fip']} (vm1)",
              lambda: probes.wait_upstream_ping(lab, state["fip"]))
    steps.run("floating IP as source: vm1 reaches the upstream",
              lambda: probes.expect_source(lab, "vm1", state["fip"], "vm1's floating IP"))

    print(f"\nall checks passed in {time.monotonic() - steps.started:.0f} s; what it looks like:")
    for host in lab.hosts:
        _show(f"dvr-lab exec {host.name} -- ip netns",
              lab.exec_argv(host.name, ["ip", "netns"]))
    _show("dvr-lab dvrctl host list   (the dvr_host_macs table)",
          services.dvrctl_argv(["host", "list"]))
    _show("dvr-lab exec compute1 -- ovs-ofctl dump-flows br-tun | grep mod_dl_src",
          lab.exec_argv("compute1", ["ovs-ofctl", "dump-flows", "br-tun"]),
          keep=lambda line: "mod_dl_src" in line)
    if down:
        lab.down()
        print("\nlab down")
    else:
        print(f"\nThe lab stays up: try `dvr-lab status`, "
              f"`dvr-lab vm exec vm1 -- ping {vms['vm2']['ip']}`, "
              "`dvr-lab exec compute1 -- ip netns exec qrouter-... ip neigh`. "
              "`dvr-lab down` removes it all.")
    return 0
