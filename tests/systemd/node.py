"""One systemd container as a whole small cloud, installed as the README tells an operator.

The controller's part (RabbitMQ, dvr-server) and a node's part (Open vSwitch, dvr-agent)
run as the systemd services of the image, with the shipped, unchanged unit files and
configs written to /etc/dvr-agent/. The VMs are network namespaces inside the container,
plugged into br-int the way Nova plugs them. Everything is done through `podman exec`
with the programs an operator would use (systemctl, rabbitmqctl, dvrctl, ip, ovs-vsctl).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field

from dvr_agent import names
from dvr_agent.lab.podman import SystemdContainer

HOST = "node1"
UNDERLAY_IP = "192.0.2.10"
DROP_IN_DIR = "/etc/systemd/system/dvr-agent.service.d"
NETWORK_NODE_DROP_IN = "/usr/share/dvr-agent/network-node.conf"
DVRCTL = ("dvrctl", "--config-file", "/etc/dvr-agent/dvr-server.conf", "--json")
_CHANGES = re.compile(r"ready in [0-9.]+ s with (\d+) changes")


def sh(box: SystemdContainer, script: str, check: bool = True) -> str:
    """A shell script in the container (test set-up: the lab code itself uses none)."""
    return box.exec(["sh", "-c", script], check=check)


def wait_for(what: str, check, timeout: float = 60.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


@dataclass
class Vm:
    name: str
    port: dict
    gateway: str

    @property
    def ip(self) -> str:
        return self.port["fixed_ips"][0]["ip_address"]


@dataclass
class Node:
    box: SystemdContainer
    password: str = field(default_factory=lambda: secrets.token_hex(16))

    @property
    def transport_url(self) -> str:
        return f"rabbit://dvr:{self.password}@127.0.0.1:5672/dvr"

    # ------------------------------------------------------------ installation

    def install_controller(self) -> None:
        """RabbitMQ with a user of its own, dvr-server with its config; both started."""
        self.box.systemctl("enable", "--now", "rabbitmq-server")
        for argv in (["add_vhost", "dvr"], ["add_user", "dvr", self.password],
                     ["set_permissions", "-p", "dvr", "dvr", ".*", ".*", ".*"],
                     ["delete_user", "guest"]):
            self.box.exec(["rabbitmqctl", "--quiet", *argv])
        self.box.write("/etc/dvr-agent/dvr-server.conf",
                       f"[DEFAULT]\nhost = controller\ntransport_url = {self.transport_url}\n"
                       "agent_down_time = 20\n", mode=0o640, owner="root:dvr")
        self.box.systemctl("enable", "--now", "dvr-server")
        wait_for("dvr-server serving", lambda: "serving on" in self.box.journal("dvr-server"))

    def install_node(self) -> None:
        """What a node needs before its agent starts: an underlay address, br-ex, config."""
        sh(self.box, f"ip link add ul0 type veth peer name ul1 && "
                    f"ip addr add {UNDERLAY_IP}/24 dev ul0 && ip link set ul0 up && "
                    f"ip link set ul1 up")
        self.box.exec(["ovs-vsctl", "--may-exist", "add-br", "br-ex", "--", "set", "bridge",
                       "br-ex", "datapath_type=netdev", "fail_mode=secure"])
        self.box.write("/etc/dvr-agent/dvr-agent.conf", f"""[DEFAULT]
host = {HOST}
transport_url = {self.transport_url}

[agent]
report_interval = 5

[ovs]
local_ip = {UNDERLAY_IP}
datapath_type = netdev
ovs_use_veth = true
bridge_mappings = physnet1:br-ex
""", mode=0o640)

    def set_network_node(self, enabled: bool) -> None:
        """Install (or remove) the network-node drop-in, as the README says."""
        if enabled:
            sh(self.box, f"mkdir -p {DROP_IN_DIR} && cp {NETWORK_NODE_DROP_IN} {DROP_IN_DIR}/")
        else:
            sh(self.box, f"rm -f {DROP_IN_DIR}/network-node.conf")
        self.box.systemctl("daemon-reload")

    # ------------------------------------------------------------ the agent's unit

    def show(self, *props: str, unit: str = "dvr-agent") -> dict[str, str]:
        out = self.box.systemctl("show", unit, *(f"--property={p}" for p in props))
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def agent_pid(self) -> int:
        return int(self.show("MainPID")["MainPID"])

    def ensure_agent_running(self) -> None:
        if self.box.systemctl("is-active", "dvr-agent", check=False).strip() != "active":
            self.box.systemctl("reset-failed", "dvr-agent", check=False)
            self.box.systemctl("start", "dvr-agent")

    def journal_now(self) -> str:
        """Now, on the container's clock: what is logged after it is what a step caused.

        A time, not a journal cursor: ``--after-cursor`` with a ``-u`` filter skips the
        first matching entry when the cursor's own entry is of another unit.
        """
        return "@" + self.box.exec(["date", "+%s.%N"]).strip()

    def journal_since(self, since: str, *units: str) -> str:
        argv = ["journalctl", "--no-pager", "-o", "cat", f"--since={since}"]
        for unit in units or ("dvr-agent",):
            argv += ["-u", unit]
        return self.box.exec(argv)

    def wait_ready_after(self, since: str, timeout: float = 120.0) -> int:
        """The changes the agent's next start made (its "ready in ... with N changes")."""
        found = wait_for("dvr-agent ready again",
                         lambda: _CHANGES.search(self.journal_since(since)), timeout=timeout)
        return int(found.group(1))

    # ------------------------------------------------------------ topology and VMs

    def ctl(self, *args: str):
        return json.loads(self.box.exec([*DVRCTL, *args]))

    def boot_vm(self, name: str, network: str) -> Vm:
        """A port bound to this host, and a namespace with a veth plugged into br-int."""
        port = self.ctl("port", "create", network, "--host", HOST, "--name", name)
        subnet = self.ctl("subnet", "show", port["fixed_ips"][0]["subnet_id"])
        tap = names.veth_host_name("qr-" + port["id"])
        prefix = subnet["cidr"].split("/")[1]
        sh(self.box, " && ".join([
            f"ip netns add {name}",
            f"ip link add {tap} type veth peer name eth0 netns {name}",
            f"ip -n {name} link set eth0 address {port['mac_address']} mtu 1450 up",
            f"ip -n {name} link set lo up",
            f"ip -n {name} addr add {port['fixed_ips'][0]['ip_address']}/{prefix} dev eth0",
            f"ip -n {name} route add default via {subnet['gateway_ip']}",
            # the userspace datapath loses "checksum to be computed" marks (testbed pitfall 3)
            f"ip netns exec {name} ethtool -K eth0 tx off >/dev/null",
            f"ethtool -K {tap} tx off >/dev/null && ip link set {tap} mtu 1450 up",
            f"ovs-vsctl add-port br-int {tap} -- set Interface {tap} "
            f"external_ids:iface-id={port['id']} external_ids:attached-mac={port['mac_address']}"
            f" external_ids:iface-status=active external_ids:vm-uuid={name}"]))
        return Vm(name, port, subnet["gateway_ip"])

    def ping(self, vm: Vm, address: str, count: int = 1) -> bool:
        out = self.box.exec(["ip", "netns", "exec", vm.name, "ping", "-c", str(count), "-W",
                             "1", "-i", "0.2", address], check=False)
        return f" {count} received" in out

    def start_background_ping(self, vm: Vm, address: str) -> str:
        """A ping that runs until stopped, as a transient unit; returns the unit's name."""
        unit = f"ping-{vm.name}-{secrets.token_hex(3)}"
        self.box.exec(["systemd-run", "--quiet", f"--unit={unit}", "ip", "netns", "exec",
                       vm.name, "ping", "-i", "0.2", "-W", "1", address])
        return unit

    def stop_background_ping(self, unit: str) -> tuple[int, int]:
        """Stop it (SIGINT makes ping print its statistics); (sent, received)."""
        self.box.systemctl("kill", "--signal=SIGINT", unit)
        wait_for(f"{unit} to end", lambda: self.box.systemctl(
            "is-active", unit, check=False).strip() != "active", timeout=10)
        stats = wait_for("ping statistics", lambda: re.search(
            r"(\d+) packets transmitted, (\d+) received", self.box.journal(unit)), timeout=10)
        return int(stats.group(1)), int(stats.group(2))

    # ------------------------------------------------------------ the data plane

    def dataplane(self) -> dict[str, object]:
        """What must survive the agent: its namespaces with their devices, and its flows."""
        namespaces = sorted(n for n in self.box.exec(["ip", "netns"]).split()
                            if names.is_owned_namespace(n))
        devices = {ns: sorted(line.split()[0].split("@")[0] for line in self.box.exec(
            ["ip", "-n", ns, "-br", "link"]).splitlines()) for ns in namespaces}
        flows = {}
        for bridge in ("br-int", "br-tun", "br-ex"):
            dump = self.box.exec(["ovs-ofctl", "dump-flows", "--no-stats", bridge])
            flows[bridge] = sorted(line.strip() for line in dump.splitlines()
                                   if "cookie=" in line)
        return {"namespaces": namespaces, "devices": devices, "flows": flows}
