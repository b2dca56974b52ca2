"""Load on dvr-server: N agents calling report_state and sync_routers every second.

    python tests/isolated.py .venv/bin/python benchmarks/server_load.py [--agents 200]
        [--duration 60] [--alternate] [--workers 96]

Starts its own RabbitMQ node and dvr-server (SQLite, the default), on loopback only, builds
a topology where every agent's host hosts one router (a VM on its subnet), then for
``duration`` seconds makes every agent call ``report_state`` and ``sync_routers`` once per
second (400 calls/s for 200 agents); with ``--alternate`` each agent makes one of the two
per second, in turn (half the rate). Prints calls made,
errors, the achieved rate, latency percentiles and how often the server logged "database
is locked". Bounded in time; stops by itself.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dvr_agent.ctl.client import ManagementClient
from dvr_agent.lab.rabbitmq import RabbitMQNode
from dvr_agent.rpc import protocol as p
from dvr_agent.rpc import transport as rpc_transport
from tests.fixtures.dvr_server import DvrServer
from tests.fixtures.fake_agents import FakeHost
from tests.fixtures.server_world import l3_state


def build(mgmt: ManagementClient, agents: int) -> None:
    mgmt.execute("network.create", name="bench")
    mgmt.execute("subnet.create", network="bench", cidr="10.200.0.0/16", name="bench")
    mgmt.execute("router.create", name="bench")
    mgmt.execute("router.add_interface", router="bench", subnet="bench")
    for i in range(agents):
        mgmt.execute("port.create", network="bench", host=f"bench-{i:04d}")


def run(args: argparse.Namespace) -> int:
    from oslo_config import cfg

    cfg.CONF([], project="dvr-agent-bench")
    with tempfile.TemporaryDirectory() as state, RabbitMQNode() as node:
        server = DvrServer(node.url(), state, extra={"debug": "false"}).start()
        transport = rpc_transport.get_transport(cfg.CONF, url=node.url())
        try:
            mgmt = ManagementClient(transport)
            build(mgmt, args.agents)
            caller = FakeHost(transport, "bench-caller")
            latencies: list[float] = []
            errors: list[str] = []
            lock = threading.Lock()

            def calls(host: str, turn: int) -> None:
                plan = (("report_state", lambda: caller.call(
                            p.TOPIC_REPORTS, p.REPORTS_VERSION, "report_state",
                            **l3_state(host, p.AGENT_MODE_DVR))),
                        ("sync_routers", lambda: caller.sync_routers_of(host)))
                if args.alternate:
                    plan = (plan[turn % 2],)
                for method, call in plan:
                    start = time.monotonic()
                    try:
                        result = call()
                        if method == "sync_routers" and len(result) != 1:
                            raise AssertionError(f"{host} got {len(result)} routers")
                    except Exception as exc:  # counted, reported: the benchmark's output
                        with lock:
                            errors.append(f"{method}: {type(exc).__name__}: {exc}")
                        continue
                    with lock:
                        latencies.append(time.monotonic() - start)

            hosts = [f"bench-{i:04d}" for i in range(args.agents)]
            began = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as pool:
                futures = []
                for second in range(args.duration):
                    tick = began + second
                    time.sleep(max(0.0, tick - time.monotonic()))
                    futures += [pool.submit(calls, h, i + second) for i, h in enumerate(hosts)]
                concurrent.futures.wait(futures)
            elapsed = time.monotonic() - began
        finally:
            transport.cleanup()
            server.stop()
        with open(server.log_path) as f:
            locked = f.read().count("database is locked")
    per_agent = 1 if args.alternate else 2
    sent = per_agent * args.agents * args.duration
    done = sorted(latencies)
    pct = (lambda q: done[min(len(done) - 1, int(q * len(done)))] * 1000) if done else \
        (lambda q: float("nan"))
    kind = "report_state or sync_routers" if args.alternate else "report_state + sync_routers"
    print(f"dvr-server load: {args.agents} agents x ({kind}) per second "
          f"for {args.duration} s on SQLite")
    print(f"  calls: {sent} sent, {len(done)} answered, {len(errors)} errors, "
          f"'database is locked' in server log: {locked}")
    print(f"  rate: {len(done) / elapsed:.0f} calls/s answered over {elapsed:.1f} s "
          f"(target {per_agent * args.agents} calls/s)")
    if done:
        print(f"  latency ms: p50 {pct(0.5):.1f}  p90 {pct(0.9):.1f}  p99 {pct(0.99):.1f}  "
              f"max {done[-1] * 1000:.1f}  mean {statistics.mean(done) * 1000:.1f}")
    for line in errors[:5]:
        print(f"  error: {line}")
    return 0 if not errors and not locked else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--workers", type=int, default=96)
    parser.add_argument("--alternate", action="store_true",
                        help="one call per agent per second, in turn, instead of both")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
