"""The system under test on one host: broker, dvr-server, a private Open vSwitch, the agent.

Everything is real and started the way the functional tests start it (tests/fixtures):
RabbitMQ, dvr-server as its console script on the prebuilt SQLite database, ovsdb-server
and ovs-vswitchd of our own (userspace datapath), ``dvr-agent`` as a process on compute1
with the production defaults for its timers, the real kernel. Around it, what a host has
that is not the agent's: br-ex with an upstream router on the external network, and VMs
(namespaces plugged into br-int the way Nova plugs them).

Runs inside tests/isolated.py's private network and mount namespace: nothing here can
touch the machine's own namespaces, bridges or /run/openvswitch.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks import probes
from benchmarks.topology import EXTERNAL_CIDR, EXTERNAL_GATEWAY, HOST, TUNNEL_IPS, VmPort
from dvr_agent import names
from dvr_agent.drivers import ethtool
from dvr_agent.drivers.namespaces import Namespaces
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.drivers.sysctl import sysctls_set
from dvr_agent.lab.rabbitmq import RabbitMQNode
from dvr_agent.state import Address, Route
from tests.fixtures.agent_proc import AgentProcess
from tests.fixtures.dvr_server import DvrServer
from tests.fixtures.ovs import OvsError, PrivateOvs, add_test_bridge

UPSTREAM_NS = "bench-upstream"
UPSTREAM_PORT = "bench-up0"  # its other end, on br-ex
PREFIX = "bench-"
OURS = Namespaces(owned=lambda name: name.startswith(PREFIX))
AGENT_NAMESPACES = Namespaces()  # the agent's: qrouter-, snat-, fip-<uuid>
SETTLE_TIMEOUT = 180.0
# a start is measured, not judged: at 1,000 routers on a machine loaded by other suites a
# cold start took 150 s and more (its full sync alone 59 s), so READY gets ample time
READY_TIMEOUT = 900.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _exited(pid: int | None) -> bool:
    """True once ``pid`` is gone or a zombie (PID 1 here reaps only now and then)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@dataclass
class Vm:
    """A VM: a namespace whose eth0 has the port's address; ``tap`` is its end on br-int."""

    name: str
    port: VmPort
    namespace: str
    tap: str


def ovsdb_transact(db: str, operations: list[dict]) -> list[dict]:
    """One OVSDB transaction on the Open_vSwitch database, its results; OvsError naming
    what OVSDB refused (``ovsdb-client transact`` prints a refusal and still exits 0)."""
    request = json.dumps(["Open_vSwitch", *operations])
    try:
        proc = subprocess.run(["ovsdb-client", "transact", db, request],
                              capture_output=True, text=True, check=False, timeout=30)
    except subprocess.TimeoutExpired:
        raise OvsError(f"no answer from OVSDB in 30 s to {request}") from None
    if proc.returncode != 0 or not proc.stdout:
        raise OvsError(f"ovsdb-client transact {request}: {proc.stderr.strip()}")
    results = json.loads(proc.stdout)
    refused = [r for r in results if r and "error" in r]
    if refused:
        raise OvsError(f"OVSDB refused {request}: {refused}")
    return results


class Stack:
    def __init__(self, workdir: str, transport_url: str | None = None) -> None:
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.broker: RabbitMQNode | None = None
        if transport_url is None:
            self.broker = RabbitMQNode(base_dir=os.path.join(workdir, "rabbitmq")).start()
            transport_url = self.broker.url()
        self.transport_url = transport_url
        self.ovs: PrivateOvs | None = None
        self.server: DvrServer | None = None
        self.agent: AgentProcess | None = None
        self.metrics_port = free_port()
        self._ovs_runs = 0
        self._vm_taps: set[str] = set()

    # ------------------------------------------------------------ Open vSwitch and upstream

    def start_ovs(self) -> PrivateOvs:
        self._ovs_runs += 1
        basedir = os.path.join(self.workdir, f"ovs-{self._ovs_runs}")
        shutil.rmtree(basedir, ignore_errors=True)  # a --workdir kept from a killed run
        self.ovs = PrivateOvs(basedir).start()
        add_test_bridge(self.ovs, "br-ex")
        self._plug_upstream()
        return self.ovs

    def stop_ovs(self) -> None:
        if self.ovs is None:
            return
        pid = self.ovs.vswitchd_pid
        try:
            self.ovs.stop()
        except OvsError:
            # right after 1,000 namespaces were deleted, ovs-vswitchd can sit in the kernel
            # (state D, behind the RTNL lock the namespaces' teardown holds) longer than
            # the fixture waits; it has had its SIGKILL: wait for it, then stop the rest
            probes.poll(f"ovs-vswitchd (pid {pid}) to exit", lambda: _exited(pid),
                        SETTLE_TIMEOUT, 0.5)
            self.ovs.stop()
        shutil.rmtree(self.ovs.basedir, ignore_errors=True)
        self.ovs = None

    def _plug_upstream(self) -> None:
        """The upstream router on the external network: its eth0 holds the gateway address.

        ARP is retried every 10 ms (not every second), so "reachable" is measured when the
        floating IP starts answering, not at the upstream's next ARP retry.
        """
        OURS.create(UPSTREAM_NS)
        with Netlink(UPSTREAM_NS) as up:
            if "eth0" not in up.links():
                up.veth_add("eth0", UPSTREAM_PORT, None)
            up.link_set("eth0", up=True)
            up.link_set("lo", up=True)
            prefix = EXTERNAL_CIDR.split("/")[1]
            up.addr_add(Address("eth0", f"{EXTERNAL_GATEWAY}/{prefix}"))
        sysctls_set(UPSTREAM_NS, {"net.ipv4.neigh.eth0.retrans_time_ms": "10",
                                  "net.ipv4.neigh.eth0.mcast_solicit": "500"})
        ethtool.tx_checksum_off(UPSTREAM_NS, "eth0")
        with Netlink(None) as host:
            host.link_set(UPSTREAM_PORT, up=True)
        ethtool.tx_checksum_off(None, UPSTREAM_PORT)
        self.ovs.vsctl("--may-exist", "add-port", "br-ex", UPSTREAM_PORT)

    # ------------------------------------------------------------ dvr-server

    @property
    def server_database(self) -> str:
        return os.path.join(self.workdir, "server", "dvr-server.sqlite")

    def start_server(self, database: str | None = None) -> DvrServer:
        """Start dvr-server; with ``database``, on a fresh copy of it."""
        state = os.path.join(self.workdir, "server")
        if database is not None:
            shutil.rmtree(state, ignore_errors=True)
            os.makedirs(state)
            shutil.copyfile(database, self.server_database)
        self.server = DvrServer(self.transport_url, state, extra={"debug": "false"}).start()
        return self.server

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    # ------------------------------------------------------------ the agent

    def agent_process(self) -> AgentProcess:
        if self.agent is None:
            self.agent = AgentProcess(
                host=HOST, mode="dvr", transport_url=self.transport_url,
                state_dir=os.path.join(self.workdir, "agent"), ovs_db=self.ovs.db,
                ovs_rundir=self.ovs.rundir, local_ip=TUNNEL_IPS[HOST],
                extra={"DEFAULT": {"debug": "false"},
                       # production timers, so that what they cost shows in the figures
                       "agent": {"report_interval": 30, "rpc_timeout": 60,
                                 "resync_interval": 60, "canary_interval": 2.0,
                                 "metrics_port": self.metrics_port}})
        self.agent.ovs_db, self.agent.ovs_rundir = self.ovs.db, self.ovs.rundir
        return self.agent

    def start_agent(self, on_spawn: Callable[[int], None] | None = None,
                    timeout: float = READY_TIMEOUT) -> tuple[float, str]:
        """Start the agent; (seconds from spawn to READY=1, its STATUS line when ready).

        ``on_spawn(pid)`` runs right after the spawn (to attach a profiler)."""
        agent = self.agent_process()
        began = time.monotonic()
        agent.start(wait=False)
        if on_spawn is not None:
            on_spawn(agent.proc.pid)
        agent.wait_ready(timeout)
        took = time.monotonic() - began
        return took, agent.wait_for_notification("STATUS=ready", 5)

    def stop_agent(self) -> None:
        if self.agent is not None:
            self.agent.stop(timeout=30)

    def wipe_host(self) -> None:
        """Back to a host that never ran the agent: no namespaces of its own, a new Open
        vSwitch, no state file. Waits until the kernel has let go of the old devices, so
        the next cold start does not share the CPU with their teardown."""
        self.stop_agent()
        self._delete_agent_namespaces()
        self.stop_ovs()
        if self.agent is not None:
            shutil.rmtree(os.path.join(self.agent.state_dir, "state"), ignore_errors=True)
        self.start_ovs()

    def _delete_agent_namespaces(self) -> None:
        """Delete the agent's namespaces and wait until the kernel has let go of their
        devices: ovs-vswitchd then stops without closing thousands of live ports, and the
        next start does not share the CPU with their teardown."""
        for name in AGENT_NAMESPACES.list():
            if names.is_owned_namespace(name):
                AGENT_NAMESPACES.delete(name)
        probes.poll("the agent's old devices torn down", self._agent_devices_gone,
                    SETTLE_TIMEOUT, 0.1)
        probes.kernel_netns_cleanup_done(SETTLE_TIMEOUT)

    def _agent_devices_gone(self) -> bool:
        """True once no host end of the agent's veths is left (the kernel deletes them
        asynchronously after their namespaces went); VMs' taps are not the agent's."""
        with Netlink(None) as host:
            return not any(n.startswith("tap") and n not in self._vm_taps
                           for n in host.links())

    # ------------------------------------------------------------ VMs

    def prepare_vm(self, name: str, port: VmPort) -> Vm:
        """A VM's namespace and its veth to the host, configured but not plugged."""
        vm = Vm(name=name, port=port, namespace=PREFIX + name,
                tap=names.veth_host_name("qr-" + port.id))
        OURS.create(vm.namespace)
        self._vm_taps.add(vm.tap)
        with Netlink(vm.namespace) as inside:
            if "eth0" not in inside.links():
                inside.veth_add("eth0", vm.tap, None)
            inside.link_set("eth0", mac=port.mac, mtu=1450, up=True)
            inside.link_set("lo", up=True)
            inside.addr_add(Address("eth0", f"{port.ip}/{port.prefixlen}"))
            inside.route_replace(Route("0.0.0.0/0", gateway=port.gateway_ip, device="eth0"))
        ethtool.tx_checksum_off(vm.namespace, "eth0")
        with Netlink(None) as host:
            host.link_set(vm.tap, mtu=1450, up=True)
        ethtool.tx_checksum_off(None, vm.tap)
        return vm

    def plug_vm(self, vm: Vm) -> None:
        """What Nova does: the tap on br-int with the port's external_ids, ONE transaction.

        Sent with ``ovsdb-client transact`` as os-vif's native OVSDB interface sends it over
        its open connection. ovs-vsctl would first download the Bridge, Port and Interface
        tables (~40 ms at 300 routers, ~2,200 rows at 1,000) before committing: time of
        the measuring tool, not of the agent. Returns once OVSDB committed it, the moment
        the agent can learn of it; what ovs-vswitchd does next is part of what is measured.
        """
        external_ids = {"iface-id": vm.port.id, "attached-mac": vm.port.mac,
                        "iface-status": "active", "vm-uuid": vm.name}
        results = ovsdb_transact(self.ovs.db, [
            {"op": "insert", "table": "Interface", "uuid-name": "iface",
             "row": {"name": vm.tap,
                     "external_ids": ["map", sorted(external_ids.items())]}},
            {"op": "insert", "table": "Port", "uuid-name": "port",
             "row": {"name": vm.tap, "interfaces": ["named-uuid", "iface"]}},
            {"op": "mutate", "table": "Bridge", "where": [["name", "==", "br-int"]],
             "mutations": [["ports", "insert", ["set", [["named-uuid", "port"]]]]]},
        ])
        if results[2] != {"count": 1}:
            raise OvsError(f"no br-int to plug {vm.tap} into: {results}")

    def unplug_vm(self, vm: Vm) -> None:
        """Nova's unplug; ``--no-wait`` as the plug (at 1,000 routers ovs-vswitchd can take
        longer to reconfigure than ovs-vsctl's timeout, and the agent learns from OVSDB)."""
        self.ovs.vsctl("--no-wait", "--if-exists", "del-port", "br-int", vm.tap)
        if OURS.exists(vm.namespace):
            OURS.delete(vm.namespace)  # eth0 goes with it, and the tap with eth0
        self._vm_taps.discard(vm.tap)

    def pids(self) -> dict[str, int | None]:
        """The processes of the system under test, for probes.cpu_seconds."""
        agent = self.agent.proc.pid if self.agent and self.agent.proc else None
        server = self.server.proc.pid if self.server and self.server.proc else None
        return {"agent": agent, "dvr-server": server,
                "ovs-vswitchd": self.ovs.vswitchd_pid if self.ovs else None,
                "ovsdb-server": self.ovs.ovsdb_pid if self.ovs else None,
                "rabbitmq": self._broker_pid()}

    def _broker_pid(self) -> int | None:
        if self.broker is None:
            return None
        with contextlib.suppress(OSError, ValueError), \
                open(self.broker.env()["RABBITMQ_PID_FILE"]) as f:
            return int(f.read().strip())
        return None

    # ------------------------------------------------------------ the end

    def close(self) -> None:
        """Stop everything started here and remove every namespace and device of ours."""
        with contextlib.suppress(Exception):
            if self.agent is not None:
                self.agent.close()
        self.stop_server()
        for name in OURS.list():
            if name.startswith(PREFIX):
                OURS.delete(name)
        self._vm_taps.clear()
        with contextlib.suppress(probes.Timeout):
            self._delete_agent_namespaces()
        self.stop_ovs()
        if self.broker is not None:
            self.broker.stop()
