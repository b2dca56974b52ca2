"""dvr-server under the load of a large cloud: hundreds of agents and an operator at work.

    python tests/isolated.py .venv/bin/python benchmarks/cloud_load.py [--agents 500]
        [--duration 600] [--ctl-rate 20] [--database-url URL | --postgres] [--json FILE]

Starts its own RabbitMQ node and dvr-server (SQLite by default; any SQLAlchemy URL, or a
private PostgreSQL cluster with ``--postgres``), builds a topology, then for ``duration``
seconds plays a cloud against it, from one process:

- ``agents`` simulated hosts, each speaking through the agent's own RPC client
  (``ServerApi``) and heartbeat payloads, so the server sees exactly what dvr-agent sends:
  a start-up exchange spread over the first report interval (both report_states with
  start_flag, DVR MACs, tunnel_sync, get_router_ids, sync_routers, get_ports_by_subnet per
  subnet, device details, update_device_list), then both report_states every
  ``report_interval`` and a port update (device details + update_device_list) and a router
  resync every minute;
- an operator changing the topology at ``ctl_rate`` per second through the management RPC
  dvrctl speaks (VMs booted and deleted, floating IPs moved), plus a real ``dvrctl``
  process every 10 s;
- a watcher asking the server every 5 s which agents it considers dead.

Everything due within the duration is done, however late: a server that cannot keep up
shows as the time past the end its work took ("behind") and in the latencies, not as calls
silently skipped. Prints per-method latency percentiles, failures, dead agents and
"database is locked" lines in the server's log; exits 1 if any of those is not zero. The
simulated agents do not consume the server's notifications (their casts go to queues
nobody declared), so this measures the server and its database, not a notification fan-out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.load_schedule import Recorder, Schedule
from dvr_agent.ctl.client import ManagementClient
from dvr_agent.lab.rabbitmq import RabbitMQNode
from dvr_agent.rpc import agent_states
from dvr_agent.rpc import protocol as p
from dvr_agent.rpc import transport as rpc_transport
from dvr_agent.rpc.agent_clients import ServerApi
from tests.fixtures.dvr_server import DvrServer

ROUTERS = 25  # each with two tenant networks; hosts spread their VMs over them
REPORT_INTERVAL = 30.0
PORT_UPDATE_INTERVAL = 60.0


class SimulatedAgent:
    """One host's dvr-agent as the server sees it: the same client, the same payloads."""

    def __init__(self, api: ServerApi, index: int, ports: list[str], rec: Recorder):
        self.api, self.ports, self.rec = api, ports, rec
        self.tunnel_ip = f"10.{64 + index // 65000}.{index // 250 % 256}.{index % 250 + 1}"
        self.router_ids: list[str] = []

    def report(self, start: bool) -> None:
        host = self.api.host
        l3 = agent_states.l3_agent_state(host, p.AGENT_MODE_DVR, "nova",
                                         agent_states.Counts(routers=len(self.router_ids)),
                                         start)
        ovs = agent_states.ovs_agent_state(host, self.tunnel_ip, {}, "br-int", "netdev",
                                           len(self.ports), start)
        for state in (l3, ovs):
            self.rec.timed("report_state", lambda s=state: self.api.report_state(s))

    def start(self) -> None:
        api, timed = self.api, self.rec.timed
        self.report(start=True)
        timed("get_dvr_mac_address_by_host", api.get_dvr_mac_address_by_host)
        timed("get_dvr_mac_address_list", api.get_dvr_mac_address_list)
        timed("tunnel_sync", lambda: api.tunnel_sync(self.tunnel_ip))
        self.router_ids = timed("get_router_ids", api.get_router_ids) or []
        routers = timed("sync_routers", lambda: api.sync_routers(self.router_ids)) or []
        subnets = {s["id"] for r in routers for i in r.get("_interfaces", [])
                   for s in i.get("subnets", [])}
        for subnet in sorted(subnets):
            timed("get_ports_by_subnet", lambda s=subnet: api.get_ports_by_subnet(s))
        self.port_update()

    def port_update(self) -> None:
        if self.ports:
            self.rec.timed("get_devices_details",
                           lambda: self.api.get_devices_details(self.ports))
            self.rec.timed("update_device_list",
                           lambda: self.api.update_device_list(self.ports, []))

    def router_resync(self) -> None:
        self.router_ids = self.rec.timed("get_router_ids", self.api.get_router_ids) or []
        self.rec.timed("sync_routers", lambda: self.api.sync_routers(self.router_ids))


class Operator:
    """Topology changes as an operator (or Nova) makes them, through dvrctl's RPC.

    VMs are booted and deleted on random hosts; floating IPs move between the VMs built
    with the topology (never deleted here, so a move cannot race a delete). Each floating
    IP and each target VM is reserved while a change on it is in flight: the operator's
    changes are concurrent, and a refused change would be the harness's fault, not the
    server's.
    """

    def __init__(self, mgmt: ManagementClient, hosts: list[str], networks: list[str],
                 fip_ports: dict[str, str], vm_ports: list[str], rec: Recorder, seed: int):
        self.mgmt, self.hosts, self.networks, self.rec = mgmt, hosts, networks, rec
        self.fip_at: dict[str, str | None] = dict(fip_ports)
        self.vm_ports = vm_ports
        self.booted: list[str] = []
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def step(self) -> None:
        with self._lock:
            r = self._random.random()
            network, host = self._random.choice(self.networks), self._random.choice(self.hosts)
            victim = self.booted.pop(0) if (r < 0.4 and len(self.booted) > 10) else None
        if victim:
            self.rec.timed("dvrctl port delete",
                           lambda: self.mgmt.execute("port.delete", port=victim))
        elif r < 0.8:
            port = self.rec.timed("dvrctl port create", lambda: self.mgmt.execute(
                "port.create", network=network, host=host))
            if port:
                with self._lock:
                    self.booted.append(port["id"])
        else:
            self.move_floating_ip()

    def move_floating_ip(self) -> None:
        """Take a floating IP off its VM, or put a free one on a VM that has none."""
        with self._lock:
            free = [f for f in self.fip_at if f not in self._busy]
            if not free:
                return
            fip = self._random.choice(free)
            port = self.fip_at[fip]
            target = None
            if port is None:
                taken = set(self.fip_at.values()) | self._busy
                candidates = [p for p in self.vm_ports if p not in taken]
                if not candidates:
                    return
                target = self._random.choice(candidates)
                self._busy.add(target)
            self._busy.add(fip)
        try:
            if target is None:
                done = self.rec.timed("dvrctl floatingip disassociate", lambda: self.mgmt.execute(
                    "floatingip.disassociate", floatingip=fip))
            else:
                done = self.rec.timed("dvrctl floatingip associate", lambda: self.mgmt.execute(
                    "floatingip.associate", floatingip=fip, port=target))
            if done is not None:
                with self._lock:
                    self.fip_at[fip] = target
        finally:
            with self._lock:
                self._busy.discard(fip)
                self._busy.discard(target)


def build(mgmt: ManagementClient, hosts: list[str]
          ) -> tuple[list[str], dict[str, list[str]], dict[str, str]]:
    """Routers with two networks each and a gateway; one VM per host; floating IPs."""
    mgmt.execute("network.create", name="public", external=True, physnet="physnet1")
    mgmt.execute("subnet.create", network="public", cidr="198.18.0.0/16", name="public")
    networks = []
    for r in range(ROUTERS):
        mgmt.execute("router.create", name=f"r{r}")
        mgmt.execute("router.set_gateway", router=f"r{r}", network="public")
        for n in range(2):
            name = f"r{r}n{n}"
            mgmt.execute("network.create", name=name)
            mgmt.execute("subnet.create", network=name, cidr=f"10.{r}.{n * 32}.0/19", name=name)
            mgmt.execute("router.add_interface", router=f"r{r}", subnet=name)
            networks.append(name)
    ports: dict[str, list[str]] = {}
    for i, host in enumerate(hosts):
        port = mgmt.execute("port.create", network=networks[i % len(networks)], host=host)
        ports[host] = [port["id"]]
    fips = {mgmt.execute("floatingip.create", network="public",
                         port=ports[hosts[i]][0])["id"]: ports[hosts[i]][0]
            for i in range(min(50, len(hosts)))}
    return networks, ports, fips


def dead_agents(mgmt: ManagementClient, rec: Recorder) -> list[str]:
    agents = rec.timed("dvrctl agent list", lambda: mgmt.execute("agent.list")) or []
    return sorted(f"{a['host']}/{a['agent_type']}" for a in agents if not a["alive"])


def real_dvrctl(server: DvrServer, rec: Recorder) -> None:
    """The CLI itself, now and then: its start-up is the part the RPC path does not show."""
    def run() -> None:
        done = server.ctl("--json", "router", "list", timeout=60)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip()[-300:])
    rec.timed("dvrctl process: router list", run)


@contextlib.contextmanager
def database(args: argparse.Namespace, state: str) -> Iterator[str | None]:
    """The database URL to use: the given one, a private PostgreSQL, or None (SQLite)."""
    if not args.postgres:
        yield args.database_url
        return
    from tests.fixtures import postgres as pg
    with pg.running_cluster() as cluster:
        name = cluster.create_database()
        try:
            yield cluster.url(name)
        finally:
            cluster.drop_database(name)


def play(args: argparse.Namespace) -> dict[str, Any]:
    from oslo_config import cfg

    cfg.CONF([], project="dvr-agent-load")
    rec = Recorder()
    hosts = [f"compute-{i:04d}" for i in range(args.agents)]
    with tempfile.TemporaryDirectory() as state, RabbitMQNode() as node, \
            database(args, state) as db_url:
        server = DvrServer(node.url(), state, database_url=db_url,
                           extra={"debug": "false"}).start()
        transport = rpc_transport.get_transport(cfg.CONF, url=node.url())
        try:
            mgmt = ManagementClient(transport, timeout=60)
            built = time.monotonic()
            networks, ports, fips = build(mgmt, hosts)
            build_s = time.monotonic() - built
            agents = [SimulatedAgent(ServerApi(transport, h, 60), i, ports[h], rec)
                      for i, h in enumerate(hosts)]
            operator = Operator(mgmt, hosts, networks, fips,
                                [p for h in hosts for p in ports[h]], rec, args.seed)
            schedule = Schedule(rec, args.workers)
            began = time.monotonic()
            end = began + args.duration
            spread = random.Random(args.seed)
            dead_seen: set[str] = set()

            def every(period: float, first: float, job: Callable[[], None]) -> None:
                """``job`` at ``first`` and every ``period`` after, whether or not the
                last one is done (a slow server must not slow the load down)."""
                def again(due: float) -> None:
                    if due + period < end:
                        schedule.at(due + period, lambda: again(due + period))
                    job()
                schedule.at(first, lambda: again(first))

            for agent in agents:
                first = began + spread.uniform(0, REPORT_INTERVAL)
                schedule.at(first, agent.start)
                every(REPORT_INTERVAL, first + REPORT_INTERVAL, lambda a=agent: a.report(False))
                every(PORT_UPDATE_INTERVAL, first + spread.uniform(5, PORT_UPDATE_INTERVAL),
                      agent.port_update)
                every(PORT_UPDATE_INTERVAL, first + spread.uniform(5, PORT_UPDATE_INTERVAL),
                      agent.router_resync)
            if args.ctl_rate > 0:
                every(1.0 / args.ctl_rate, began, operator.step)
            every(10.0, began + 5, lambda: real_dvrctl(server, rec))
            # Dead agents are counted once every agent has had its first report in.
            every(5.0, began + REPORT_INTERVAL + 5,
                  lambda: dead_seen.update(dead_agents(mgmt, rec)))
            finished = schedule.run_until(end)
            elapsed = max(finished, end) - began
            final_dead = dead_agents(mgmt, rec)
        finally:
            transport.cleanup()
            server.stop()
        with open(server.log_path) as f:
            locked = f.read().count("database is locked")
    summary = rec.summary()
    ctl_ops = sum(c["count"] for m, c in summary["calls"].items()
                  if m.startswith("dvrctl ") and m != "dvrctl agent list"
                  and not m.startswith("dvrctl process"))
    return {"database": db_url.split(":", 1)[0] if db_url else "sqlite",
            "agents": args.agents, "duration_s": round(elapsed, 1), "ctl_rate": args.ctl_rate,
            "build_s": round(build_s, 1), "behind_at_end_s": round(max(0.0, finished - end), 1),
            "rate_per_s": round(summary["answered"] / elapsed, 1),
            "dead_agents": sorted(dead_seen | set(final_dead)),
            "ctl_ops_per_s": round(ctl_ops / elapsed, 1), "database_locked": locked,
            **summary}


def report(result: dict[str, Any]) -> None:
    print(f"dvr-server load on {result['database']}: {result['agents']} agents, operator at "
          f"{result['ctl_rate']}/s, {result['duration_s']} s (topology built in "
          f"{result['build_s']} s)")
    print(f"  {'method':36} {'count':>7} {'failed':>6} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8}")
    for method, c in result["calls"].items():
        print(f"  {method:36} {c['count']:7} {c['failed']:6} {c['p50_ms'] or '-':>8} "
              f"{c['p99_ms'] or '-':>8} {c['max_ms'] or '-':>8}")
    print(f"  all: {result['answered']} answered ({result['rate_per_s']}/s), "
          f"{result['failed']} failed, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms; "
          f"latest start {result['max_schedule_lag_s']} s behind schedule")
    print(f"  operator: {result['ctl_ops_per_s']} changes/s done; the work due in the run "
          f"was done {result['behind_at_end_s']} s after its end")
    print(f"  agents ever seen dead: {len(result['dead_agents'])}; 'database is locked' in "
          f"the server's log: {result['database_locked']}")
    for line in result["failure_samples"][:5]:
        print(f"  failure: {line}")


def healthy(result: dict[str, Any]) -> bool:
    return not (result["failed"] or result["dead_agents"] or result["database_locked"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--duration", type=int, default=600, help="seconds of load")
    parser.add_argument("--ctl-rate", type=float, default=20.0,
                        help="topology changes per second")
    parser.add_argument("--workers", type=int, default=64, help="client threads")
    parser.add_argument("--seed", type=int, default=11)
    db = parser.add_mutually_exclusive_group()
    db.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite)")
    db.add_argument("--postgres", action="store_true",
                    help="a private PostgreSQL 15 cluster, started and removed here")
    parser.add_argument("--json", help="write the result here as JSON")
    args = parser.parse_args(argv)
    if args.agents < 1 or args.duration < REPORT_INTERVAL + 10 or args.ctl_rate < 0:
        parser.error(f"need --agents >= 1, --duration >= {REPORT_INTERVAL + 10:.0f} "
                     "(one report interval and a liveness check), --ctl-rate >= 0")
    result = play(args)
    report(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, sort_keys=True)
    return 0 if healthy(result) else 1


if __name__ == "__main__":
    sys.exit(main())
