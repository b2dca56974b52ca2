"""A one-host world for the agent's functional tests: broker, dvr-server, OVS, the agent, VMs.

Everything is real: RabbitMQ (session fixture), dvr-server on SQLite, a private Open
vSwitch, the kernel. The one host runs as the network node (dvr_snat), so a router there
has its qrouter, snat and (with a floating IP) fip namespaces. "VMs" are namespaces
plugged into br-int by a veth, with Nova's external_ids, as the compute service does.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import oslo_messaging
import pytest
from pyroute2 import IPRoute, netns

from dvr_agent import names
from tests.fixtures.agent_proc import AgentProcess
from tests.fixtures.dvr_server import DvrServer
from tests.root_conftest import has_failed

HOST = "network"
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T], timeout: float = 20.0,
              interval: float = 0.02) -> T:
    """Poll ``check`` until it returns something true; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def in_ns(ns: str, *argv: str, check: bool = True) -> str:
    done = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          timeout=30)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} in {ns}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Vm:
    name: str
    port: dict
    ns: str
    tap: str

    @property
    def ip(self) -> str:
        return self.port["fixed_ips"][0]["ip_address"]

    @property
    def mac(self) -> str:
        return self.port["mac_address"]

    def run(self, *argv: str, check: bool = True) -> str:
        return in_ns(self.ns, *argv, check=check)

    def ping(self, address: str, count: int = 1, timeout: int = 2) -> bool:
        done = subprocess.run(["ip", "netns", "exec", self.ns, "ping", "-c", str(count), "-W",
                               str(timeout), "-i", "0.2", address], capture_output=True)
        return done.returncode == 0


@dataclass
class World:
    server: DvrServer
    agent: AgentProcess
    ovs: Any
    vms: list[Vm] = field(default_factory=list)

    def ctl(self, *args: str) -> Any:
        return self.server.ctl_json(*args)

    def boot_vm(self, name: str, network: str, ip: str | None = None) -> Vm:
        """What Nova does: a port bound to the host, a tap on br-int with its iface-id."""
        args = ["port", "create", network, "--host", HOST, "--name", name]
        if ip:
            args += ["--ip", ip]
        port = self.ctl(*args)
        ns = f"vmtest-{name}"
        tap = names.veth_host_name("qr-" + port["id"])
        netns.create(ns)
        with IPRoute() as ipr:
            ipr.link("add", ifname=tap, kind="veth", peer={"ifname": "eth0", "net_ns_fd": ns})
            ipr.link("set", ifname=tap, state="up")
        subnet = self.ctl("subnet", "show", port["fixed_ips"][0]["subnet_id"])
        prefix = subnet["cidr"].split("/")[1]
        for argv in (["ip", "link", "set", "eth0", "address", port["mac_address"], "mtu",
                      "1450", "up"], ["ip", "link", "set", "lo", "up"],
                     ["ip", "addr", "add", f"{port['fixed_ips'][0]['ip_address']}/{prefix}",
                      "dev", "eth0"],
                     ["ip", "route", "add", "default", "via", subnet["gateway_ip"]],
                     ["ethtool", "-K", "eth0", "tx", "off"]):
            in_ns(ns, *argv)
        subprocess.run(["ethtool", "-K", tap, "tx", "off"], capture_output=True, check=True)
        self.ovs.vsctl("add-port", "br-int", tap, "--", "set", "Interface", tap,
                       f"external_ids:iface-id={port['id']}",
                       f"external_ids:attached-mac={port['mac_address']}",
                       "external_ids:iface-status=active", f"external_ids:vm-uuid={name}")
        vm = Vm(name, port, ns, tap)
        self.vms.append(vm)
        return vm

    def router_with_fip(self) -> tuple[dict, Vm, dict]:
        """r1 on net1 with a gateway on "public", vm1 on net1 with an active floating IP."""
        self.ctl("network", "create", "public", "--external", "--physnet", "physnet1")
        self.ctl("subnet", "create", "public", "203.0.113.0/24", "--gateway", "203.0.113.1")
        self.ctl("network", "create", "net1")
        self.ctl("subnet", "create", "net1", "10.10.1.0/24", "--name", "sub1")
        router = self.ctl("router", "create", "r1")
        self.ctl("router", "add-interface", "r1", "sub1")
        self.ctl("router", "set-gateway", "r1", "public")
        vm = self.boot_vm("vm1", "net1")
        fip = self.ctl("floatingip", "create", "public", "--port", vm.port["id"])
        wait_for("the floating IP active",
                 lambda: self.ctl("floatingip", "show", fip["id"])["status"] == "ACTIVE")
        return router, vm, fip

    def unplug_vm(self, vm: Vm) -> None:
        self.ovs.vsctl("--if-exists", "del-port", "br-int", vm.tap)
        with IPRoute() as ipr:
            for index in ipr.link_lookup(ifname=vm.tap):
                ipr.link("del", index=index)
        if vm.ns in netns.listnetns():
            netns.remove(vm.ns)
        self.vms.remove(vm)

    def close(self) -> None:
        for vm in list(self.vms):
            with contextlib.suppress(Exception):
                self.unplug_vm(vm)


class L3Notifier:
    """Casts notifications exactly as neutron-server sends them (topics, versions, args)."""

    def __init__(self, url: str) -> None:
        from oslo_config import cfg

        from dvr_agent.rpc import protocol, transport

        self._protocol = protocol
        self._transport = transport.get_transport(cfg.CONF, url=url)
        self._l3 = oslo_messaging.get_rpc_client(
            self._transport, oslo_messaging.Target(topic=protocol.TOPIC_L3_AGENT,
                                                   version="1.0"))
        self._context = transport.admin_context

    def arp(self, method: str, router_id: str, entry: dict) -> None:
        self._l3.prepare(fanout=True, version=self._protocol.L3_AGENT_ARP_VERSION).cast(
            self._context(), method, payload={"router_id": router_id, "arp_table": entry})

    def cast_l3(self, method: str, **kwargs: Any) -> None:
        self._l3.prepare(fanout=True).cast(self._context(), method, **kwargs)

    def cast_ovs(self, method: str, kwargs: dict) -> None:
        topic = {"dvr_mac_address_update": self._protocol.TOPIC_DVR_UPDATE,
                 "tunnel_update": self._protocol.TOPIC_TUNNEL_UPDATE,
                 "tunnel_delete": self._protocol.TOPIC_TUNNEL_DELETE}[method]
        client = oslo_messaging.get_rpc_client(
            self._transport, oslo_messaging.Target(topic=topic, version="1.0"))
        client.prepare(fanout=True).cast(self._context(), method, **kwargs)

    def close(self) -> None:
        self._transport.cleanup()


@pytest.fixture
def world(rabbitmq, ovs, tmp_path, request) -> Iterator[World]:
    server = DvrServer(transport_url=rabbitmq.url(), state_dir=str(tmp_path / "server"),
                       extra={"agent_down_time": 10})
    server.start()
    agent = AgentProcess(host=HOST, mode="dvr_snat", transport_url=rabbitmq.url(),
                         state_dir=str(tmp_path / "agent"), ovs_db=ovs.db,
                         ovs_rundir=ovs.rundir)
    w = World(server=server, agent=agent, ovs=ovs)
    try:
        ovs.vsctl("--may-exist", "add-br", "br-ex", "--", "set", "bridge", "br-ex",
                  "datapath_type=netdev", "fail_mode=secure")
        agent.start()
        yield w
    finally:
        if has_failed(request):
            print(f"---- the agent's log, last lines ----\n{agent.tail(200)}")
        w.close()
        agent.close()
        server.stop()
        for name in netns.listnetns():  # the agent leaves its data plane on purpose
            if names.is_owned_namespace(name):
                netns.remove(name)
