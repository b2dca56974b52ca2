"""How the cold sync grows with N, as a PNG, from a results details file.

    .venv/bin/pip install matplotlib     # not a dependency of dvr-agent
    .venv/bin/python -m benchmarks.plot [benchmarks/results/latest-details.json]

Left: seconds from spawn to READY per router count (median, and the range of the runs),
with the least-squares line through the medians. Right: where the CPU went during the
median run of each size (the agent, dvr-server, ovs-vswitchd, the rest of the machine).
"""

from __future__ import annotations

import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "results", "latest-details.json")
COMPONENTS = ("agent", "dvr-server", "ovs-vswitchd", "rabbitmq", "ovsdb-server")


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args = sys.argv[1:] if argv is None else argv
    source = args[0] if args else DEFAULT
    with open(source) as f:
        details = json.load(f)
    cold = details["cold_sync"]
    sizes = sorted(int(n) for n in cold)
    medians = [cold[str(n)]["median"] for n in sizes]
    lows = [m - cold[str(n)]["min"] for n, m in zip(sizes, medians, strict=True)]
    highs = [cold[str(n)]["max"] - m for n, m in zip(sizes, medians, strict=True)]
    slope, intercept = statistics.linear_regression(sizes, medians)

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.errorbar(sizes, medians, yerr=[lows, highs], fmt="o", capsize=4,
                  label="spawn to READY (median, range of runs)")
    left.plot([0, sizes[-1]], [intercept, intercept + slope * sizes[-1]], "--",
              label=f"least squares: {intercept:.1f} s + {slope * 1000:.1f} ms/router")
    left.axhline(20, color="red", linewidth=0.8, label="target at 1,000 routers")
    left.set_xlabel("routers (x 2 subnets x 20 ports) on the host")
    left.set_ylabel("seconds")
    left.set_title("Cold full sync")
    left.legend(fontsize=8)

    bottom = [0.0] * len(sizes)
    for component in (*COMPONENTS, "other"):
        values = []
        for n in sizes:
            runs = cold[str(n)]["detail"]
            run = min(runs, key=lambda r: abs(r["seconds"] - cold[str(n)]["median"]))
            cpu = run["cpu_s"]
            if component == "other":
                values.append(max(0.0, cpu["all"] - sum(cpu.get(c, 0) for c in COMPONENTS)))
            else:
                values.append(cpu.get(component, 0.0))
        right.bar([str(n) for n in sizes], values, bottom=bottom, label=component)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    right.set_xlabel("routers")
    right.set_ylabel("CPU seconds (2 cores: wall x 2 at most)")
    right.set_title("Where the CPU went during the cold sync")
    right.legend(fontsize=8)
    fig.tight_layout()
    target = os.path.join(os.path.dirname(source), "cold-sync-by-n.png")
    fig.savefig(target, dpi=110)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
