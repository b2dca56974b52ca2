"""Benchmarks of the Open vSwitch and nftables drivers: print numbers, assert nothing.

Run as root, isolated like the functional tests (a private OVS, throw-away namespaces):

    .venv/bin/python tests/isolated.py .venv/bin/python benchmarks/ovs_bench.py [WHICH]

Each figure is the median of ``--repeat`` runs. The machine has 2 shared cores: expect
±20% from run to run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyroute2 import netns

from dvr_agent import state
from dvr_agent.drivers import nftables
from dvr_agent.drivers.openflow import OpenFlow
from dvr_agent.drivers.ovsdb import Ovsdb
from dvr_agent.state import Bridge, Flow, NatRules, OvsPort
from tests.fixtures.ovs import add_test_bridge, private_ovs


def timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def report(what: str, samples: list[float], count: int | None = None) -> None:
    median = statistics.median(samples)
    rate = f", {count / median:,.0f}/s" if count else ""
    runs = " ".join(f"{s:.3f}" for s in samples)
    print(f"  {what:<52} {median:8.3f} s{rate}   [{runs}]")


def bench_ovsdb(repeat: int, ports: int) -> None:
    print(f"OVSDB: {ports} internal ports on a netdev bridge, one apply() each")
    starts, adds, noops, dels = [], [], [], []
    for _ in range(repeat):
        with private_ovs() as ovs:
            starts.append(ovs.start_seconds)
            with Ovsdb(ovs.db, timeout=120) as db:
                db.apply(add_bridges=[Bridge("br-int", "netdev")])
                batch = [OvsPort("br-int", f"qr-{i:011d}", "internal", tag=1 + i % 4094,
                                 external_ids=(("iface-id", f"port-{i}"),))
                         for i in range(ports)]
                adds.append(timed(lambda b=batch: db.apply(add_ports=b)))
                noops.append(timed(lambda b=batch: db.apply(add_ports=b)))
                dels.append(timed(lambda b=batch: db.apply(del_ports=[p.name for p in b])))
    report("private OVS start (ovsdb-server + ovs-vswitchd)", starts)
    report("add (commit + cur_cfg + every ofport)", adds, ports)
    report("add again (nothing to change: no transaction)", noops, ports)
    report("delete (kernel unregisters one tap per port)", dels, ports)


def bench_openflow(repeat: int, flows: int) -> None:
    print(f"OpenFlow: {flows} flows on br-tun (mod_dl_src, as in the seed)")
    cookie = state.cookie_for(state.HOST_KEY)
    batch = [Flow("br-tun", 1, 1, (f"dl_vlan={1 + i % 4094}",
                                   f"dl_src=fa:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:"
                                   f"{i & 255:02x}"),
                  "mod_dl_src:fa:16:3f:b2:34:82,resubmit(,2)", cookie) for i in range(flows)]
    adds, dumps, modifies, removes, deletes = [], [], [], [], []
    with private_ovs() as ovs:
        add_test_bridge(ovs, "br-tun")
        of = OpenFlow(ovs.rundir)
        for _ in range(repeat):
            adds.append(timed(lambda: of.apply("br-tun", add=batch)))
            dumps.append(timed(lambda: of.dump("br-tun", cookie=cookie)))
            changed = [Flow(f.bridge, f.table, f.priority, f.match, "drop", f.cookie)
                       for f in batch[:flows // 10]]
            modifies.append(timed(lambda c=changed: of.apply(
                "br-tun", add=c, delete=batch[:flows // 10])))
            removes.append(timed(lambda c=changed: of.apply("br-tun", delete=c)))
            deletes.append(timed(lambda: of.delete_cookie("br-tun", cookie)))
    report("apply(add=...) in one bundle", adds, flows)
    report("dump(cookie=...) and parse", dumps, flows)
    report(f"modify {flows // 10} (the replacing adds, one bundle)", modifies, flows // 10)
    report(f"delete {flows // 10} (strict, cookie-exact; all share one cookie)", removes,
           flows // 10)
    report("delete_cookie", deletes, flows)


def bench_nft(repeat: int, count: int) -> None:
    print(f"nftables: read + replace in each of {count} namespaces")
    rules = NatRules(prerouting=('iifname "rfp-e87505b3-d" ip daddr 203.0.113.152 '
                                 'dnat to 10.10.1.146',),
                     postrouting=('oifname "qg-0bd5b983-a8" snat to 203.0.113.191',))
    names = [f"dvrbench-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for name in names:
        netns.create(name)
    try:
        lib, cli, parallel, unchanged = [], [], [], []
        for _ in range(repeat):
            lib.append(timed(lambda: [(nftables.read(n), nftables.replace(n, rules))
                                      for n in names]))
            unchanged.append(timed(lambda: [nftables.read(n) == rules for n in names]))
            with ThreadPoolExecutor(16) as pool:
                parallel.append(timed(lambda p=pool: list(p.map(
                    lambda n: (nftables.read(n), nftables.replace(n, rules)), names))))
            cli.append(timed(lambda: [_cli_read_replace(n, rules) for n in names]))
        for name in names:
            nftables.replace(name, NatRules())
    finally:
        for name in names:
            netns.remove(name)
    report("libnftables on a setns thread (the driver)", lib, count)
    report("nsenter --net=... nft (two fork+exec each)", cli, count)
    report("the driver, 16 namespaces at a time (threads)", parallel, count)
    report("the driver, read only (a pass with nothing to change)", unchanged, count)


def _cli_read_replace(namespace: str, rules: NatRules) -> None:
    enter = ["nsenter", f"--net=/run/netns/{namespace}", "nft"]
    subprocess.run([*enter, "list", "table", "ip", nftables.TABLE], capture_output=True,
                   check=False)
    batch = f"add table ip {nftables.TABLE}\ndelete table ip {nftables.TABLE}\n"
    subprocess.run([*enter, "-f", "-"], input=batch + nftables.render(rules), text=True,
                   check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="?", default="all",
                        choices=["ovsdb", "openflow", "nft", "all"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=1000)
    args = parser.parse_args()
    if os.environ.get("DVR_TEST_ISOLATED") != "1":
        sys.exit("run me through tests/isolated.py (root, private namespaces)")
    if args.which in ("ovsdb", "all"):
        bench_ovsdb(args.repeat, args.ports)
    if args.which in ("openflow", "all"):
        bench_openflow(args.repeat, args.flows)
    if args.which in ("nft", "all"):
        bench_nft(args.repeat, args.namespaces)


if __name__ == "__main__":
    main()
