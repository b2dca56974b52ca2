"""dvr-server's answer to a full sync, in-process: ``sync_routers`` for every router of a
host, in the agent's chunks, on a copy of the standard topology (benchmarks/topology.py).

    .venv/bin/python -m benchmarks.sync_routers_bench [--routers 1000] [--chunk 256]
        [--host compute1] [--runs 3]

No broker and no agent: the figure is the server's own cost (SQL and building the
payloads), the part of an agent's full sync that the server decides. Builds the topology
first if it is not cached (minutes at 1,000 routers). Run it under ``py-spy record`` to see
where the time goes (benchmarks/README.md, fix 14).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

from benchmarks import topology
from benchmarks.run import CACHE
from dvr_agent.server.db.api import Database
from dvr_agent.server.domain.settings import Settings
from dvr_agent.server.rpc.l3 import L3PluginEndpoint
from dvr_agent.server.service import ControlPlane


def full_sync_seconds(endpoint: L3PluginEndpoint, plane: ControlPlane, host: str,
                      chunk: int) -> tuple[float, int]:
    """(seconds, routers) for get_router_ids and every chunk of sync_routers."""
    started = time.monotonic()
    ids = endpoint.get_router_ids({}, host=host)
    synced = 0
    for i in range(0, len(ids), chunk):
        synced += len(endpoint.sync_routers({}, host=host, router_ids=ids[i:i + chunk]))
    seconds = time.monotonic() - started
    plane.new_generation()  # the next run must not be answered from the cache
    return seconds, synced


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--routers", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=256, help="the agent's sync_chunk_size")
    parser.add_argument("--host", default="compute1")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    database, _ = topology.cached(CACHE, args.routers)
    workdir = tempfile.mkdtemp(prefix="dvr-sync-bench-")
    try:
        copy = os.path.join(workdir, "db.sqlite")
        shutil.copy(database, copy)  # the cached topology stays as it was
        plane = ControlPlane(Database(f"sqlite:///{copy}"), Settings(), lambda notes: None)
        endpoint = L3PluginEndpoint(plane)
        runs = [full_sync_seconds(endpoint, plane, args.host, args.chunk)
                for _ in range(args.runs)]
    finally:
        shutil.rmtree(workdir)
    seconds = [s for s, _ in runs]
    print(f"sync_routers for {runs[0][1]} routers of {args.host} in chunks of {args.chunk}: "
          f"median {statistics.median(seconds):.2f} s (runs: "
          f"{', '.join(f'{s:.2f}' for s in seconds)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
