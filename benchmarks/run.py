"""``make bench`` / ``make bench-quick``: run the scenarios, write the results, print a table.

    python tests/isolated.py .venv/bin/python -m benchmarks.run           # the standard set
    python tests/isolated.py .venv/bin/python -m benchmarks.run --quick   # N = 100, once

Writes ``benchmarks/results/latest.json`` with the figures of issue 9 (medians of the runs,
percentiles over the event samples) and, beside it, ``latest-details.json`` with every run,
the spread, the machine, and what the agent's Prometheus endpoint said. Asserts nothing
about timings: a shared 2-core machine makes them noise for a test; the table compares
them with the targets.
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass

from benchmarks import probes, scenarios, topology
from benchmarks.scenarios import Bench
from benchmarks.stack import Stack

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
CACHE = os.path.join(HERE, ".cache")
ISOLATED_ENV = "DVR_TEST_ISOLATED"


@dataclass(frozen=True)
class Plan:
    """How much of each scenario a set runs (router indexes are chosen from these)."""

    sizes: tuple[int, ...]
    runs: int
    arp_samples: int
    vm_samples: int
    fip_samples: int
    removals: int
    burst_routers: int
    events_at: int | None = None  # the warm restart's and the events' N; None: sizes[-1]

    def event_size(self) -> int:
        return self.events_at if self.events_at is not None else self.sizes[-1]

    def order(self) -> list[int]:
        """Cold syncs size by size, the event size last: its stack stays up for the rest."""
        return [n for n in self.sizes if n != self.event_size()] + [self.event_size()]


# Cold syncs at every size, the rest at N = 300: this machine has no Open vSwitch kernel
# module, and the userspace datapath does not keep up with the 2,200 veth ports of
# N = 1,000 (ovs-vswitchd at a full core with no traffic, minutes for one add-port:
# benchmarks/README.md, "The userspace datapath's limit"). With the kernel datapath of a
# real host, `--events-at 1000` runs them at the size of the cold sync.
STANDARD = Plan(sizes=(100, 300, 1000), runs=3, arp_samples=300, vm_samples=100,
                fip_samples=40, removals=20, burst_routers=500, events_at=300)
QUICK = Plan(sizes=(100,), runs=1, arp_samples=40, vm_samples=10, fip_samples=5,
             removals=3, burst_routers=100)

TARGETS = {  # issue 9: (comparison, target)
    "cold_sync_s": ("<=", 20.0), "warm_restart_s": ("<=", 3.0),
    "warm_restart_changes": ("==", 0), "warm_restart_lost_pings": ("==", 0),
    "arp_event_p99_ms": ("<=", 20.0), "vm_port_p99_ms": ("<=", 200.0),
    "fip_p99_ms": ("<=", 1000.0), "burst_s": ("<=", 5.0), "rss_mb": ("<=", 150.0),
}


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of 100 samples is the 99th smallest)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def machine() -> dict:
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f
                      if line.startswith("model name")), "?")
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    ovs = subprocess.run(["ovs-vswitchd", "--version"], capture_output=True, text=True)
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "ovs": ovs.stdout.splitlines()[0] if ovs.stdout else "?",
            "load_before": os.getloadavg()}


def scrape(port: int) -> dict[str, float]:
    """The agent's Prometheus samples (name{labels} -> value)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def run(plan: Plan, workdir: str, transport_url: str | None,
        profiler: probes.Profiler) -> tuple[dict, dict]:
    from oslo_config import cfg

    from dvr_agent.ctl.client import ManagementClient
    from dvr_agent.rpc import transport as rpc_transport
    from dvr_agent.server.notifier import Notifier

    cfg.CONF([], project="dvr-agent-bench")
    details: dict = {"plan": {**plan.__dict__, "events_at": plan.event_size()},
                     "machine": machine(), "started": time.time()}
    began = time.monotonic()
    stack = Stack(workdir, transport_url)
    transport = rpc_transport.get_transport(cfg.CONF, url=stack.transport_url)
    bench = None
    try:
        stack.start_ovs()
        cold: dict[int, list[dict]] = {}
        for n in plan.order():
            built = time.monotonic()
            database, topo = topology.cached(CACHE, n)
            details.setdefault("build_s", {})[str(n)] = time.monotonic() - built
            bench = Bench(stack, topo, database, Notifier(transport),
                          ManagementClient(transport), profiler)
            cold[n] = [scenarios.cold_sync(bench, f"cold-n{n}-{i}.txt")
                       for i in range(plan.runs)]
            _say(f"N={n}: cold sync " + ", ".join(f"{c['seconds']:.1f} s" for c in cold[n]))
        n = plan.event_size()
        f = topo.floating_ips
        warm = [scenarios.warm_restart(bench, f"warm-n{n}-{i}.txt") for i in range(plan.runs)]
        _say("warm restart " + ", ".join(f"{w['seconds']:.1f} s/{w['changes']} changes/"
                                         f"{w['pings_lost']} lost" for w in warm))

        def profiled(name: str):
            return profiler.recording(stack.agent.proc.pid, f"{name}-n{n}.txt")

        with profiled("arp"):
            arp = scenarios.arp_events(bench, plan.arp_samples, range(1, 11))
        _say(f"ARP: p50 {percentile(arp['add'], 50) * 1e3:.1f} ms")
        vm_routers = range(f + 5, f + 5 + max(1, plan.vm_samples // 2))
        with profiled("vm"):
            vm = scenarios.vm_port_events(bench, plan.vm_samples, vm_routers)
        _say(f"VM ports: p50 {percentile(vm, 50) * 1e3:.0f} ms")
        with profiled("fip"):
            fip = scenarios.fip_events(bench, plan.fip_samples, range(f, f + 5))
        _say(f"FIPs: p50 {percentile(fip, 50) * 1e3:.0f} ms")
        burst_routers = range(min(plan.burst_routers, n - plan.removals))
        with profiled("burst"):
            bursts = [scenarios.burst(bench, burst_routers, 1400 if i % 2 == 0 else 1450)
                      for i in range(plan.runs)]
        _say("burst " + ", ".join(f"{b['seconds']:.2f} s" for b in bursts))
        peak = probes.rss_mb(stack.agent.proc.pid, "VmHWM")
        metrics = scrape(stack.metrics_port)
        with profiled("removal"):
            removals = scenarios.router_removals(bench, range(n - plan.removals, n))
    finally:
        try:
            for vm_ in (bench.vms.values() if bench else ()):
                stack.unplug_vm(vm_)
            transport.cleanup()
        finally:  # a failed run must not leave its OVS, agent, server or broker running
            stack.close()
    largest = max(plan.sizes)
    rss = max([peak] + [c["rss_mb"] for c in cold[largest]])
    results = {
        "cold_sync_s": statistics.median(c["seconds"] for c in cold[largest]),
        "cold_sync_s_by_n": {str(k): statistics.median(c["seconds"] for c in cold[k])
                             for k in sorted(cold)},
        "warm_restart_s": statistics.median(w["seconds"] for w in warm),
        "warm_restart_changes": max(w["changes"] for w in warm),
        "warm_restart_lost_pings": max(w["pings_lost"] for w in warm),
        "arp_event_p50_ms": percentile(arp["add"], 50) * 1e3,
        "arp_event_p99_ms": percentile(arp["add"], 99) * 1e3,
        "vm_port_p50_ms": percentile(vm, 50) * 1e3,
        "vm_port_p99_ms": percentile(vm, 99) * 1e3,
        "fip_p99_ms": percentile(fip, 99) * 1e3,
        "burst_s": statistics.median(b["seconds"] for b in bursts),
        "rss_mb": rss,
    }
    details.update({
        "cold_sync": {str(k): {**spread([c["seconds"] for c in v]), "detail": v}
                      for k, v in cold.items()},
        "warm_restart": warm,
        "arp_event_ms": {kind: {"p50": percentile(s, 50) * 1e3, "p99": percentile(s, 99) * 1e3,
                                "max": max(s) * 1e3, "samples": len(s)}
                         for kind, s in arp.items()},
        "vm_port_ms": {"p50": percentile(vm, 50) * 1e3, "p99": percentile(vm, 99) * 1e3,
                       "max": max(vm) * 1e3, "samples": len(vm)},
        "fip_ms": {"p50": percentile(fip, 50) * 1e3, "p99": percentile(fip, 99) * 1e3,
                   "max": max(fip) * 1e3, "samples": len(fip)},
        "router_removed_ms": {"p50": percentile(removals, 50) * 1e3,
                              "p99": percentile(removals, 99) * 1e3, "samples": len(removals)},
        "burst": bursts,
        "rss_mb": {f"peak_vmhwm_n{n}": peak,
                   f"after_cold_sync_n{largest}": [c["rss_mb"] for c in cold[largest]],
                   # not the figure: the start-up's own peak (benchmarks/README.md, RSS)
                   f"peak_in_cold_sync_n{largest}": [c["peak_rss_mb"] for c in cold[largest]]},
        "agent_metrics": metrics,
        "wall_s": time.monotonic() - began,
    })
    return results, details


def _say(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def table(results: dict, details: dict) -> str:
    lines = [f"{'figure':<26} {'value':>12} {'target':>10}  ok", "-" * 54]
    for key, value in results.items():
        if isinstance(value, dict):
            value = " ".join(f"{k}:{v:.1f}" for k, v in value.items())
            lines.append(f"{key:<26} {value}")
            continue
        op, target = TARGETS.get(key, ("", None))
        ok = ""
        if target is not None:
            ok = "yes" if (value <= target if op == "<=" else value == target) else "NO"
        shown = f"{op} {target:g}" if target is not None else ""
        lines.append(f"{key:<26} {value:>12.2f} {shown:>10}  {ok}")
    lines.append(f"(wall time {details['wall_s']:.0f} s; details in latest-details.json)")
    return "\n".join(lines)


def compile_agent() -> None:
    """Byte-compile dvr_agent as a packaged install is at install time.

    The checkout is installed editable and the test environment sets
    PYTHONDONTWRITEBYTECODE, so every agent start compiled ~100 modules from source: a
    third of a warm restart's CPU under load (benchmarks/README.md, profile 7), and
    nothing a deployed agent pays.
    """
    import dvr_agent

    compileall.compile_dir(os.path.dirname(dvr_agent.__file__), quiet=1)


def _sizes(text: str) -> tuple[int, ...]:
    """``--sizes 100,1000``: router counts, each at least 25 (removals and FIPs need them)."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of router counts: {text!r}") from None
    if not sizes or min(sizes) < 25:
        raise argparse.ArgumentTypeError(f"router counts must be >= 25: {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 100, one run, few samples")
    parser.add_argument("--output", default=os.path.join(RESULTS, "latest.json"))
    parser.add_argument("--transport-url", help="use this broker instead of starting one")
    parser.add_argument("--workdir", help="keep logs and state here (default: a temp dir)")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy the agent during every scenario into DIR (needs py-spy)")
    parser.add_argument("--sizes", type=_sizes, metavar="N[,N...]",
                        help="router counts to run instead of the set's (development)")
    parser.add_argument("--runs", type=int, metavar="K",
                        help="cold syncs, warm restarts and bursts per size (development)")
    parser.add_argument("--events-at", type=int, metavar="N",
                        help="run the warm restart and the events at N, one of the sizes "
                             "(default: 300 in the standard set, else the last size)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or os.environ.get(ISOLATED_ENV) != "1":
        print("benchmarks.run needs root and runs isolated: "
              "python tests/isolated.py .venv/bin/python -m benchmarks.run", file=sys.stderr)
        return 2
    plan = QUICK if args.quick else STANDARD
    if args.sizes or args.runs:
        plan = dataclasses.replace(plan, sizes=args.sizes or plan.sizes,
                                   runs=args.runs or plan.runs,
                                   events_at=None if args.sizes else plan.events_at)
    if args.events_at is not None:
        if args.events_at not in plan.sizes:
            parser.error(f"--events-at {args.events_at}: not one of the sizes "
                         f"{','.join(map(str, plan.sizes))}")
        plan = dataclasses.replace(plan, events_at=args.events_at)
    # `kill` of a run (or of `make bench`) takes the same way out as a failure, through
    # the finally blocks that stop its agent, server, broker and OVS: by default SIGTERM
    # ended the process at once and left all of them running
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    compile_agent()
    output = os.path.abspath(args.output)
    profiler = probes.Profiler(os.path.abspath(args.profile) if args.profile else None)
    if args.workdir:
        results, details = run(plan, os.path.abspath(args.workdir), args.transport_url,
                               profiler)
    else:
        with tempfile.TemporaryDirectory(prefix="dvr-bench-") as workdir:
            results, details = run(plan, workdir, args.transport_url, profiler)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    stem, _ = os.path.splitext(output)
    for path, data in ((output, results), (stem + "-details.json", details)):
        with open(path + ".tmp", "w") as f:
            json.dump(data, f, indent=1, sort_keys=False)
            f.write("\n")
        os.replace(path + ".tmp", path)
    print(table(results, details))
    return 0


if __name__ == "__main__":
    sys.exit(main())
