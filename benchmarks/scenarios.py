"""The scenarios of issue 9, each measured through the whole path.

Every event starts where Neutron's would (a cast of the server's notifier, a management
request to dvr-server, a tap plugged into br-int) and ends where a user would look (the
kernel's neighbour table, the server's port status, a ping from the upstream, the
namespace list). Nothing inside the agent is timed here: its own view is the Prometheus
endpoint, scraped for the details file.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field

from benchmarks import probes
from benchmarks.probes import KernelWatch, Pinger, PortStatus
from benchmarks.stack import AGENT_NAMESPACES, UPSTREAM_NS, Stack, Vm
from benchmarks.topology import HOST, RouterSpec, Topology
from dvr_agent import names
from dvr_agent.ctl.client import ManagementClient
from dvr_agent.drivers import nftables
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.rpc import protocol
from dvr_agent.server.domain import notifications as notify
from dvr_agent.server.notifier import Notifier

EVENT_TIMEOUT = 120.0  # at 1,000 routers ovs-vswitchd (userspace datapath) stalls for 30 s+
_READY_CHANGES = re.compile(r" with (\d+) changes")


@dataclass
class Bench:
    """What every scenario needs: the stack, the topology it runs, and clients of the bus."""

    stack: Stack
    topology: Topology
    database: str  # the pristine, prebuilt database of this topology
    notifier: Notifier
    management: ManagementClient
    profiler: probes.Profiler
    vms: dict[str, Vm] = field(default_factory=dict)

    def router(self, index: int) -> RouterSpec:
        return self.topology.routers[index]


def ready_changes(status: str) -> int:
    """The N of the agent's READY status line ``ready in X s with N changes``."""
    found = _READY_CHANGES.search(status)
    if found is None:
        raise RuntimeError(f"no change count in the agent's status: {status!r}")
    return int(found.group(1))


# ---------------------------------------------------------------- what must be in place


def missing_from_host(topology: Topology) -> list[str]:
    """What of the topology compute1 does not have (empty: everything is in place).

    Every qrouter namespace, every permanent ARP entry on the qr- devices, the fip
    namespace, and the DNAT rule of every floating IP.
    """
    present = AGENT_NAMESPACES.list()
    missing = []
    neighbours = 0
    for router in topology.routers:
        ns = names.qrouter_ns_name(router.id)
        if ns not in present:
            missing.append(ns)
            continue
        with Netlink(ns) as nl:
            neighbours += sum(1 for n in nl.neighbours() if n.device.startswith("qr-"))
        if router.floating_ip is not None:
            nat = nftables.read(ns)
            if nat is None or not any(router.floating_ip in rule for rule in nat.prerouting):
                missing.append(f"DNAT of {router.floating_ip} in {ns}")
    if neighbours != topology.arp_entries:
        missing.append(f"{topology.arp_entries - neighbours} of {topology.arp_entries} "
                       "permanent ARP entries")
    fip_ns = names.fip_ns_name(topology.external_network_id)
    if topology.floating_ips and fip_ns not in present:
        missing.append(fip_ns)
    return missing


def our_flows(stack: Stack) -> dict[str, int]:
    """Flows with the agent's cookie prefix, per bridge."""
    counts = {}
    for bridge in ("br-int", "br-tun", "br-ex"):
        dump = stack.ovs.ofctl("--no-stats", "dump-flows", stack.ovs.mgmt(bridge),
                               "cookie=0x4456000000000000/0xffff000000000000")
        counts[bridge] = sum(1 for line in dump.splitlines() if " actions=" in line)
    return counts


# ---------------------------------------------------------------- 1. cold full sync


def _start_agent(bench: Bench, profile: str) -> tuple[float, str, dict[str, float]]:
    """Start the agent under the profiler: (seconds to READY, its STATUS line, the CPU
    each process used meanwhile, the new agent counted from zero)."""
    stack = bench.stack
    before = probes.cpu_seconds(stack.pids())
    try:
        seconds, status = stack.start_agent(lambda pid: bench.profiler.start(pid, profile))
    finally:
        bench.profiler.stop()
    return seconds, status, probes.cpu_used({"agent": 0.0, **before},
                                            probes.cpu_seconds(stack.pids()))


def cold_sync(bench: Bench, profile: str) -> dict:
    """One cold start: a host that never ran the agent, a server on a fresh copy of the
    topology; from spawning dvr-agent to READY=1 (sent once the first full sync and
    convergence are done), then checked: everything must be in place."""
    stack = bench.stack
    stack.stop_agent()
    stack.stop_server()
    stack.wipe_host()
    stack.start_server(bench.database)
    seconds, status, cpu = _start_agent(bench, profile)
    missing = missing_from_host(bench.topology)
    if missing:
        raise RuntimeError(f"READY after {seconds:.1f} s but missing: {missing[:5]} "
                           f"({len(missing)} in all)")
    pid = stack.agent.proc.pid
    return {"seconds": seconds, "status": status, "cpu_s": cpu, "flows": our_flows(stack),
            "rss_mb": probes.rss_mb(pid), "peak_rss_mb": probes.rss_mb(pid, "VmHWM")}


# ---------------------------------------------------------------- 2. warm restart


# The warm restart's ping through router 0. Every packet wakes ovs-vswitchd's main loop,
# which on the userspace datapath polls each of its ~700 ports at N = 300: at 10 ms the
# probe kept ovs-vswitchd at 1.2 cores at rest (idle_cpu_s_per_s; 0.2 without it) and
# it took 5.7 CPU-s during a 6-second restart on this 2-core machine, slowing what it
# measured. At 50 ms: 0.8 cores at rest, 2.0 CPU-s in the restart. A blackout of 50 ms
# or more still loses a ping, and warm_restart_changes (0) says nothing was touched.
WARM_PING_INTERVAL = 0.05


def plug_and_wait(bench: Bench, vm: Vm, status: PortStatus) -> float:
    """Plug ``vm`` and wait until the server has it ACTIVE; seconds from the plug."""
    began = time.monotonic()
    bench.stack.plug_vm(vm)
    probes.poll(f"port {vm.port.id} ACTIVE", lambda: status.status(vm.port.id) == "ACTIVE",
                EVENT_TIMEOUT)
    return time.monotonic() - began


def probe_vms(bench: Bench) -> tuple[Vm, Vm]:
    """Two VMs on compute1 behind router 0, one on each of its subnets, wired."""
    router = bench.router(0)
    found = []
    status = PortStatus(bench.stack.server_database)
    try:
        for i, port in enumerate(router.local_ports[:2]):
            name = f"probe{i}"
            if name not in bench.vms:
                bench.vms[name] = bench.stack.prepare_vm(name, port)
                plug_and_wait(bench, bench.vms[name], status)
            found.append(bench.vms[name])
    finally:
        status.close()
    a, b = found
    probes.poll("the probe VMs reaching each other through router 0",
                lambda: subprocess.run(["ip", "netns", "exec", a.namespace, "ping", "-c1",
                                        "-W1", b.port.ip], capture_output=True).returncode == 0,
                EVENT_TIMEOUT, 0.2)
    return a, b


def warm_restart(bench: Bench, profile: str) -> dict:
    """SIGTERM the agent with everything in place and start it again, while a VM pings
    another VM through a router on this host every 10 ms; from spawn to READY=1."""
    a, b = probe_vms(bench)
    stack = bench.stack
    with Pinger(a.namespace, b.port.ip, interval=WARM_PING_INTERVAL) as pinger:
        idle = probes.cpu_seconds(stack.pids())
        time.sleep(1.0)
        before = probes.cpu_seconds(stack.pids())
        idle = probes.cpu_used(idle, before)  # a second of the host at rest, for comparison
        stack.stop_agent()
        seconds, status, cpu = _start_agent(bench, profile)
        time.sleep(2.0)  # what a restart would break shows up in the passes after READY
        sent, received = pinger.stop()
    return {"seconds": seconds, "changes": ready_changes(status), "status": status,
            "cpu_s": cpu, "idle_cpu_s_per_s": idle, "pings_sent": sent,
            "pings_lost": sent - received}


# ---------------------------------------------------------------- 3. event latency


def arp_events(bench: Bench, samples: int, routers: range) -> dict[str, list[float]]:
    """``add_arp_entry`` then ``del_arp_entry`` as dvr-server casts them (fanout), each
    timed from the cast to the kernel's neighbour event in the qrouter namespace."""
    watch = KernelWatch()
    adds, deletes = [], []
    try:
        for r in routers:
            watch.watch(names.qrouter_ns_name(bench.router(r).id), neighbours=True)
        for i in range(samples):
            router = bench.router(routers[i % len(routers)])
            port = router.local_ports[0]
            ns = names.qrouter_ns_name(router.id)
            ip = port.ip.rsplit(".", 1)[0] + f".{100 + i // len(routers) % 150}"
            mac = f"fa:16:3e:ff:{i // 256 % 256:02x}:{i % 256:02x}"
            for add, series in ((True, adds), (False, deletes)):
                began = time.monotonic()
                bench.notifier.send([notify.arp_entry(add, router.id, ip, mac, port.subnet_id)])
                _, _, when = watch.wait(
                    f"{'add' if add else 'del'}_arp_entry {ip} in {ns}",
                    lambda k=(ns, ip), a=add: (watch.neighbours.get(k, (not a,))[0] == a
                                               and watch.neighbours[k]), EVENT_TIMEOUT)
                series.append(when - began)
    finally:
        watch.close()
    return {"add": adds, "del": deletes}


def vm_port_events(bench: Bench, samples: int, routers: range) -> list[float]:
    """A VM's tap plugged into br-int (its port bound to compute1), timed until the port
    is tagged, its flows are in place and the server has it ACTIVE (the agent reports a
    port up only once the first two are done; both are checked after each sample)."""
    stack = bench.stack
    ports = [p for r in routers for p in bench.router(r).local_ports]
    status = PortStatus(stack.server_database)
    latencies = []
    try:
        for i in range(samples):
            port = ports[i % len(ports)]
            vm = stack.prepare_vm(f"plug{i % len(ports)}", port)
            latencies.append(plug_and_wait(bench, vm, status))
            tag = stack.ovs.vsctl("get", "Port", vm.tap, "tag").strip()
            if not tag.isdigit() or not _delivered(stack, port.mac):
                raise RuntimeError(f"{vm.tap} reported up without its tag ({tag}) or flows")
            stack.unplug_vm(vm)
            # the next sample starts on a quiet agent: the port reported down and its
            # flows gone (the unplug's pass is over, it is not counted in the next plug)
            probes.poll(f"port {port.id} DOWN and its flows gone",
                        lambda p=port: (status.status(p.id) == "DOWN"
                                        and not _delivered(stack, p.mac)),
                        EVENT_TIMEOUT, 0.02)
    finally:
        status.close()
    return latencies


def _delivered(stack: Stack, mac: str) -> bool:
    """Whether br-int delivers to ``mac`` (the DVR flow in table 60 names its port)."""
    flows = stack.ovs.ofctl("--no-stats", "dump-flows", stack.ovs.mgmt("br-int"),
                            f"table=60,dl_dst={mac}")
    return "output:" in flows


def _first_reply(ping: subprocess.Popen, timeout: float) -> float:
    """The wall-clock time (ping -D) of the first echo reply ping prints."""
    deadline = time.monotonic() + timeout
    last = ""
    for line in ping.stdout:
        if "bytes from" in line:
            return float(line[1:line.index("]")])
        last = line.strip() or last
        if time.monotonic() > deadline:
            break
    raise probes.Timeout(f"no echo reply from the floating IP (ping's last words: {last!r})")


def fip_events(bench: Bench, samples: int, routers: range) -> list[float]:
    """A floating IP associated with a wired VM's port through dvr-server, timed until
    the upstream router gets the first echo reply from it (pinging every 10 ms, its ARP
    cache flushed, retrying ARP every 10 ms)."""
    stack = bench.stack
    status = PortStatus(stack.server_database)
    vms = []
    try:
        for r in routers:
            name = f"fip{r}"
            if name not in bench.vms:
                bench.vms[name] = stack.prepare_vm(name, bench.router(r).local_ports[0])
                plug_and_wait(bench, bench.vms[name], status)
            vms.append((bench.router(r), bench.vms[name]))
    finally:
        status.close()
    latencies = []
    for i in range(samples):
        router, vm = vms[i % len(vms)]
        fip = bench.management.execute("floatingip.create",
                                       network=bench.topology.external_network_id)
        address = fip["floating_ip_address"]
        subprocess.run(["ip", "-n", UPSTREAM_NS, "neigh", "flush", "all"], check=True)
        # A count, not a deadline: with -w, ping quits at its first error, and the
        # upstream's ARP for a floating IP not yet wired fails within 30 ms ("Destination
        # Host Unreachable"): the sample ended before the agent had a chance.
        ping = subprocess.Popen(["ip", "netns", "exec", UPSTREAM_NS, "ping", "-D", "-n",
                                 "-i", "0.01", "-c", str(int(EVENT_TIMEOUT / 0.01)), address],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(0.05)  # ping is up and sending before the clock starts
            began = time.time()
            bench.management.execute("floatingip.associate", floatingip=fip["id"],
                                     port=vm.port.id)
            latencies.append(_first_reply(ping, EVENT_TIMEOUT) - began)
        finally:
            ping.kill()
            ping.wait()
        bench.management.execute("floatingip.delete", floatingip=fip["id"])
        rfp = names.rfp_device_name(router.id)
        probes.poll(f"{rfp} gone after the floating IP",
                    lambda r=router, d=rfp: not _has_link(names.qrouter_ns_name(r.id), d),
                    EVENT_TIMEOUT, 0.01)
    return latencies


def _has_link(namespace: str, device: str) -> bool:
    with Netlink(namespace) as nl:
        return nl.link(device) is not None


def router_removals(bench: Bench, routers: range) -> list[float]:
    """The last VM port on compute1 of a router deleted through dvr-server, timed until
    the qrouter namespace is gone (router_removed_from_agent)."""
    latencies = []
    for r in routers:
        router = bench.router(r)
        ns = names.qrouter_ns_name(router.id)
        first, last = router.local_ports
        bench.management.execute("port.delete", port=first.id)
        time.sleep(0.2)  # its del_arp_entry pass is over
        began = time.monotonic()
        bench.management.execute("port.delete", port=last.id)
        probes.poll(f"{ns} removed", lambda n=ns: not probes.namespace_exists(n),
                    EVENT_TIMEOUT)
        latencies.append(time.monotonic() - began)
    return latencies


# ---------------------------------------------------------------- 4. burst


def burst(bench: Bench, routers: range, mtu: int) -> dict:
    """N ``routers_updated`` in one second for N routers that did change: the MTU of
    each one's first network (written to the database as an operator's update would,
    then a management request so the server's answers are not served from its cache).
    Timed from the first cast until every qr- device carries the new MTU."""
    specs = [bench.router(r) for r in routers]
    networks = [s.local_ports[0].network_id for s in specs]
    db = sqlite3.connect(bench.stack.server_database, timeout=30)
    with db:
        db.executemany("UPDATE networks SET mtu = ?, revision_number = revision_number + 1 "
                       "WHERE id = ?", [(mtu, n) for n in networks])
    db.close()
    bench.management.execute("network.create", name=f"bench-mtu-{mtu}-{time.monotonic_ns()}")
    watch = KernelWatch()
    try:
        devices = []
        for spec in specs:
            ns = names.qrouter_ns_name(spec.id)
            watch.watch(ns, links=True)
            devices.append((ns, names.qr_device_name(spec.interface_ports[0])))
        began = time.monotonic()
        for i, spec in enumerate(specs):
            time.sleep(max(0.0, began + i / len(specs) - time.monotonic()))
            bench.notifier.send([notify.routers_updated(
                HOST, [spec.id], protocol.L3_AGENT_ROUTERS_UPDATED_VERSION)])
        sent = time.monotonic() - began
        watch.wait(f"the MTU of {len(devices)} qr- devices at {mtu}",
                   lambda: all(watch.mtus.get(d, (0,))[0] == mtu for d in devices),
                   EVENT_TIMEOUT)
        done = max(watch.mtus[d][1] for d in devices)
    finally:
        watch.close()
    return {"seconds": done - began, "sent_in_s": sent, "routers": len(specs)}
