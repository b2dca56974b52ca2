"""``make bench-quick``, run once by the test suite: the benchmark harness works end to end.

The quick set (100 routers, one run, few samples) goes through everything the standard
set does: a topology in a real dvr-server, a real agent, Open vSwitch and kernel, every
scenario. No timing is asserted (on a shared 2-core machine timings are noise for a
test; ``make bench`` prints them against the targets); every figure of issue 9 must be
there with its type, and the harness must leave nothing behind (the leak guard checks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIGURES = {"cold_sync_s", "warm_restart_s", "arp_event_p50_ms", "arp_event_p99_ms",
           "vm_port_p50_ms", "vm_port_p99_ms", "fip_p99_ms", "burst_s", "rss_mb"}
COUNTS = {"warm_restart_changes", "warm_restart_lost_pings"}


def test_bench_quick_writes_every_figure_of_issue_9(rabbitmq, tmp_path):
    output = tmp_path / "latest.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--output", str(output),
         "--transport-url", rabbitmq.url()],
        cwd=REPO, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    results = json.loads(output.read_text())

    assert set(results) == FIGURES | COUNTS | {"cold_sync_s_by_n"}
    for key in FIGURES:
        assert isinstance(results[key], float) and results[key] > 0, key
    for key in COUNTS:
        assert isinstance(results[key], int) and results[key] >= 0, key
    by_n = results["cold_sync_s_by_n"]
    assert list(by_n) == ["100"] and by_n["100"] == results["cold_sync_s"]
    assert results["arp_event_p50_ms"] <= results["arp_event_p99_ms"]
    assert results["vm_port_p50_ms"] <= results["vm_port_p99_ms"]

    details = json.loads((tmp_path / "latest-details.json").read_text())
    assert details["machine"]["cores"] >= 1
    assert details["agent_metrics"]["dvr_agent_full_sync_seconds_count"] >= 1
    assert "cold_sync_s" in done.stdout  # the table
