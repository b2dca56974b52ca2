"""Rates of the netlink drivers on this machine (not a test: it prints numbers).

    python tests/isolated.py .venv/bin/python benchmarks/netlink_bench.py [--quick]

Runs in the private network and mount namespace of tests/isolated.py, so it touches
nothing of the host's. Each figure is the median of three runs; expect noise on a shared
machine. Compares our paths with pyroute2's own: namespace create/delete, opening a
socket in a namespace, veth pairs into namespaces, permanent neighbours 10k/40k via the
hand-encoded batch and one pyroute2 call at a time, the struct-decoded neighbour dump,
and routes in bulk.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

from pyroute2 import IPRoute, netns
from pyroute2.netlink.rtnl import ndmsg

from dvr_agent import names
from dvr_agent.drivers.namespaces import Namespaces
from dvr_agent.drivers.netlink import Netlink
from dvr_agent.state import Address, Link, LinkKind, Neighbour, Route

REPEAT = 3


def median_seconds(setup: Callable[[], object], run: Callable[[object], object],
                   teardown: Callable[[object], object]) -> float:
    times = []
    for _ in range(REPEAT):
        state = setup()
        try:
            start = time.perf_counter()
            run(state)
            times.append(time.perf_counter() - start)
        finally:
            teardown(state)
    return statistics.median(times)


def report(what: str, count: int, seconds: float) -> None:
    print(f"{what:<58} {count:>7,} in {seconds * 1000:9.1f} ms  {count / seconds:>10,.0f}/s")


def bench_namespaces(count: int) -> None:
    spaces = Namespaces()
    batch = [names.qrouter_ns_name(names.new_uuid()) for _ in range(count)]

    def create_all(_):
        for name in batch:
            spaces.create(name)

    def delete_all(_):
        for name in batch:
            spaces.delete(name)

    report("namespace create (thread + unshare + bind mount)", count,
           median_seconds(lambda: None, create_all, delete_all))
    report("namespace delete (umount + unlink)", count,
           median_seconds(lambda: create_all(None), delete_all, lambda _: None))

    def fork_create_all(_):
        for name in batch:
            netns.create(name)

    report("  pyroute2 netns.create (forks a helper)", count,
           median_seconds(lambda: None, fork_create_all, delete_all))


def bench_open(count: int) -> None:
    name = names.qrouter_ns_name(names.new_uuid())
    Namespaces().create(name)
    try:
        def ours(_):
            for _ in range(count):
                Netlink(name).close()

        def theirs(_):
            for _ in range(count):
                IPRoute(netns=name).close()

        report("Netlink(ns) open + close (socket made by a thread)", count,
               median_seconds(lambda: None, ours, lambda _: None))
        report("  pyroute2 IPRoute(netns=ns) open + close (forks)", count,
               median_seconds(lambda: None, theirs, lambda _: None))
    finally:
        Namespaces().delete(name)


def bench_veths(count: int) -> None:
    """Phase 2 of a cold sync: a veth per namespace whose host end OVS plugs, far end in
    the namespace with its MAC and MTU: our batch against one pyroute2 call each."""
    spaces = Namespaces()
    batch = [names.qrouter_ns_name(names.new_uuid()) for _ in range(count)]
    ends = [(ns, Link(f"qr-bench{i}", LinkKind.OVS_VETH, mac=f"fa:16:3e:00:{i >> 8:02x}:"
                      f"{i & 255:02x}", mtu=1450, peer=f"tap-bench{i}"))
            for i, ns in enumerate(batch)]
    for name in batch:
        spaces.create(name)
    host = Netlink(None)

    def delete_all(_):
        for _ns, link in ends:
            host.link_del(link.peer)

    def ours(_):
        assert not host.veths_add(ends)

    def theirs(_):
        with IPRoute() as ipr:
            for ns, link in ends:
                fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
                try:
                    ipr.link("add", ifname=link.peer, kind="veth", mtu=link.mtu,
                             peer={"ifname": link.name, "net_ns_fd": fd, "mtu": link.mtu,
                                   "address": link.mac})
                finally:
                    os.close(fd)
    try:
        report("veth pairs into namespaces, batch from the agent's", count,
               median_seconds(lambda: None, ours, delete_all))
        report("  pyroute2 link('add', kind='veth'), one call each", count,
               median_seconds(lambda: None, theirs, delete_all))
    finally:
        host.close()
        for name in batch:
            spaces.delete(name)


def neighbours(count: int) -> list[Neighbour]:
    return [Neighbour("qr-1", f"10.{1 + i // 65536}.{i // 256 % 256}.{i % 256}",
                      f"fa:16:3e:{i >> 16:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}")
            for i in range(count)]


class Router:
    """A namespace with qr-1 up on 10.0.0.1/8, and a Netlink on it."""

    def __init__(self) -> None:
        self.name = names.qrouter_ns_name(names.new_uuid())
        Namespaces().create(self.name)
        self.nl = Netlink(self.name)
        self.nl.veth_add("qr-1", "qr-peer", self.name)
        self.nl.link_set("qr-1", up=True)
        self.nl.addr_add(Address("qr-1", "10.0.0.1/8"))

    def close(self) -> None:
        self.nl.close()
        Namespaces().delete(self.name)


def bench_neighbours(count: int, per_call: bool) -> None:
    entries = neighbours(count)
    router = Router()
    try:
        report("neighbour replace, batch", count, median_seconds(
            lambda: None, lambda _: router.nl.neigh_replace(entries),
            lambda _: router.nl.neigh_del(entries)))
        report("neighbour read back (struct-decoded dump)", count, median_seconds(
            lambda: router.nl.neigh_replace(entries), lambda _: router.nl.neighbours(),
            lambda _: router.nl.neigh_del(entries)))
        report("neighbour delete, batch", count, median_seconds(
            lambda: router.nl.neigh_replace(entries), lambda _: router.nl.neigh_del(entries),
            lambda _: None))
        if per_call:
            with IPRoute(netns=router.name) as ipr:
                index = ipr.link_lookup(ifname="qr-1")[0]

                def one_at_a_time(_):
                    for n in entries:
                        ipr.neigh("replace", dst=n.ip, lladdr=n.mac, ifindex=index,
                                  state=ndmsg.states["permanent"])

                report("  pyroute2 neigh('replace'), one call each", count, median_seconds(
                    lambda: None, one_at_a_time, lambda _: router.nl.neigh_del(entries)))
    finally:
        router.close()


def bench_routes(count: int) -> None:
    routes = [Route(f"172.16.{i // 256}.{i % 256}/32", 1000, "10.0.0.254", "qr-1")
              for i in range(count)]
    router = Router()
    try:
        report("route replace, batch", count, median_seconds(
            lambda: None, lambda _: router.nl.route_replace_many(routes),
            lambda _: router.nl.route_del_many(routes)))
        report("route read back (struct-decoded dump)", count, median_seconds(
            lambda: router.nl.route_replace_many(routes), lambda _: router.nl.routes(),
            lambda _: router.nl.route_del_many(routes)))
        report("route delete, batch", count, median_seconds(
            lambda: router.nl.route_replace_many(routes),
            lambda _: router.nl.route_del_many(routes), lambda _: None))
    finally:
        router.close()


def main(argv: list[str]) -> int:
    if os.environ.get("DVR_TEST_ISOLATED") != "1":
        print("run me isolated: python tests/isolated.py .venv/bin/python "
              "benchmarks/netlink_bench.py", file=sys.stderr)
        return 2
    quick = "--quick" in argv
    print(f"median of {REPEAT} runs each")
    bench_namespaces(50 if quick else 200)
    bench_open(20 if quick else 100)
    bench_veths(100 if quick else 1000)
    bench_neighbours(10_000, per_call=True)
    bench_neighbours(40_000, per_call=not quick)
    bench_routes(10_000)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
