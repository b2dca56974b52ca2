"""Read what exists for a batch of keys: the 'actual' side of the diff.

Reads are batched the way the drivers are fast: one netlink socket per namespace (read
in parallel), the OVSDB replica (memory, no round trip), and flows dumped per bridge once
for a big batch or per key cookie for a small one, all bridges side by side (inside
ovs-vswitchd one dump of 10,000 flows costs ~30 ms, a cookie-filtered one ~2 ms; the
ovs-ofctl process around it costs more); the flows of a key the passes' FlowMemory
remembers are not dumped at all (see flow_memory.py).

A pass may be limited to some *aspects* of a key (an ARP event only touches
neighbours). Aspects not read are filled in from the desired state, so the diff sees no
difference there: an optimisation that can only skip work, never invent it.
"""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass

from dvr_agent import names
from dvr_agent.reconcile.diff import ActualKey, ActualNamespace
from dvr_agent.reconcile.drivers import Drivers, LinkView, PortView
from dvr_agent.reconcile.flow_memory import FlowMemory
from dvr_agent.reconcile.parallel import submit_all
from dvr_agent.state import (
    COOKIE_MASK_ALL,
    COOKIE_PREFIX_MASK,
    OWNER_EXTERNAL_ID,
    Address,
    Flow,
    KeyKind,
    KeyState,
    Link,
    LinkKind,
    Namespace,
    NatRules,
    Neighbour,
    Route,
    Rule,
    cookie_for,
    split_key,
)

BIG_BATCH = 16  # above this many keys, one dump a bridge instead of one a key and bridge
SELECTIVE_BITS = 4  # a smaller batch too, if its cookies agree on this many bits
# what was read ahead of a namespace stands for it this long at most: a server that
# takes minutes to answer the full sync must not leave the start-up passes comparing
# with what the host held minutes ago (an operator's fix, a route the kernel dropped)
READ_AHEAD_FRESH = 10.0
HOST_LINKS_BY_NAME = 512  # up to this many of the agent's own devices, asked for by name
_HOST_SIDE = (LinkKind.OVS_VETH, LinkKind.OVS_INTERNAL)  # kinds with a device on the host


class Aspect(enum.Flag):
    """Parts of a key's state that one event can touch."""

    NETNS = enum.auto()  # namespace, links, addresses, routes, rules, sysctls, NAT
    NEIGH = enum.auto()  # permanent ARP entries
    OVS = enum.auto()  # bridges, ports, VIF tags
    FLOWS = enum.auto()
    ALL = NETNS | NEIGH | OVS | FLOWS


def namespaces_of(key: str) -> tuple[str, ...]:
    """The namespaces a key owns, whether or not they should exist now."""
    kind, ident = split_key(key)
    if kind is KeyKind.ROUTER:
        return names.qrouter_ns_name(ident), names.snat_ns_name(ident)
    if kind is KeyKind.FIP:
        return (names.fip_ns_name(ident),)
    return ()


def sysctl_device(key: str) -> str | None:
    """The device a sysctl key is about (net.ipv4.conf.<dev>.x), None for global ones."""
    parts = key.split(".")
    if len(parts) >= 5 and parts[0] == "net" and parts[2] in ("conf", "neigh"):
        return None if parts[3] in ("all", "default") else parts[3]
    return None


@dataclass(frozen=True)
class NamespaceSnapshot:
    """What a read of a namespace finds that does not depend on the desired state (all
    but the sysctls, whose names come from it): what ``read_ahead`` reads early."""

    links: Mapping[str, LinkView]
    addresses: frozenset[Address]
    routes: frozenset[Route]
    rules: frozenset[Rule]
    neighbours: frozenset[Neighbour]
    nat: NatRules | None


@dataclass(frozen=True)
class _AssumedLink:
    """A LinkView standing in for a link whose aspect was not read."""

    name: str
    kind: str | None
    mac: str
    mtu: int
    up: bool = True


def _assumed(link: Link) -> LinkView:
    return _AssumedLink(link.name, link.kind.value, link.mac or "", link.mtu or 0)


class ActualReader:
    def __init__(self, drivers: Drivers, executor: Executor,
                 memory: FlowMemory | None = None,
                 namespace_executor: Executor | None = None) -> None:
        """``memory``: take the flows of the keys it remembers from there instead of
        dumping them (the passes' reader); without one, every key is dumped (the rolling
        comparison's, which must see what is there).

        ``namespace_executor`` reads the namespaces (default: ``executor``, which runs the
        flow dumps): a read is mostly Python parsing netlink replies, so the pool that
        reads them is kept narrower than the one that waits for ovs-ofctl processes.
        """
        self._drivers = drivers
        self._executor = executor
        self._namespace_executor = namespace_executor or executor
        self._memory = memory
        self._ahead: dict[str, tuple[float, Future[NamespaceSnapshot]]] = {}

    def read_ahead(self, namespaces: Iterable[str]) -> None:
        """Start reading ``namespaces`` now, for reads to come: a restarted agent reads
        its namespaces while the server is still answering its full sync, rather than
        after it. What a read finds stands for the namespace until ``forget_ahead`` names
        it (its key is about to change), ``stop_reading_ahead``, or READ_AHEAD_FRESH
        seconds; the caller stops it once it could be stale (after the start-up passes).
        """
        now = time.monotonic()
        for name in namespaces:
            if name not in self._ahead:
                self._ahead[name] = (now, self._namespace_executor.submit(self._snapshot, name))

    def forget_ahead(self, namespaces: Iterable[str]) -> None:
        """What was read ahead of ``namespaces`` no longer stands: read them again."""
        for name in namespaces:
            self._ahead.pop(name, None)

    def stop_reading_ahead(self) -> None:
        self._ahead.clear()

    def _taken_ahead(self, name: str) -> NamespaceSnapshot | None:
        """The snapshot read ahead of ``name`` (waited for), or None: none, too old, or
        it failed (a namespace gone meanwhile, say), and the read will tell."""
        started, future = self._ahead.get(name, (0.0, None))
        if future is None or time.monotonic() - started > READ_AHEAD_FRESH \
                or future.exception() is not None:
            return None
        return future.result()

    def host_links(self, desired: Mapping[str, KeyState],
                   aspects: Mapping[str, Aspect]) -> Mapping[str, LinkView]:
        """The agent's own namespace's devices, as the diff of this batch needs them.

        Read only for the keys of the batch whose namespace devices are read (NETNS),
        and only the devices the diff asks about (OVS internal ports' names, veth host
        ends): that namespace holds a veth end per plugged port, thousands at scale, and
        listing them all in every periodic-comparison pass was 9 % of the agent's CPU in
        the ARP-event scenario at 300 routers. Listed whole for a big batch (a cold
        sync); the host ends of other keys are assumed, like the devices they belong to.
        """
        read: set[str] = set()
        assumed: dict[str, LinkView] = {}
        for key, want in desired.items():
            for link in (link for ns in want.namespaces for link in ns.links):
                if aspects[key] & Aspect.NETNS and link.kind in _HOST_SIDE:
                    read.add(link.peer if link.kind is LinkKind.OVS_VETH else link.name)
                elif link.kind is LinkKind.OVS_VETH:
                    assumed[link.peer] = _AssumedLink(link.peer, None, "", 0)
        if not read:
            return assumed
        host = self._drivers.netlink(None)
        return {**assumed, **(host.links() if len(read) > HOST_LINKS_BY_NAME
                              else host.links_named(read))}

    def read(self, desired: Mapping[str, KeyState], aspects: Mapping[str, Aspect],
             bridges: Iterable[str]) -> dict[str, ActualKey]:
        existing = self._existing_namespaces(desired)
        bridges_now = self._drivers.ovsdb.bridges()
        # the flow dumps go to the pool first: each is an ovs-ofctl process, waited for
        # rather than computed, and queued behind a big batch's namespace reads they
        # would start last (a bridge that does not exist yet has no flows, no socket)
        flow_keys = [k for k in desired if aspects[k] & Aspect.FLOWS]
        remembered = self._memory.recall(flow_keys) if self._memory is not None else {}
        to_dump = [k for k in flow_keys if k not in remembered]
        dumps = self._dump_flows(to_dump, [b for b in bridges if b in bridges_now])
        reads = {}
        for key, want in desired.items():
            wanted_ns = {ns.name: ns for ns in want.namespaces}
            for name in namespaces_of(key):
                if name in existing:
                    reads[name] = functools.partial(self._read_namespace, name,
                                                    wanted_ns.get(name), aspects[key],
                                                    self._taken_ahead(name))
        jobs = submit_all(self._namespace_executor, reads)
        flows = {**_flows_by_key(to_dump, dumps), **remembered}
        owned: dict[str, dict[str, PortView]] = {}
        if any(aspects[k] & Aspect.OVS for k in desired):
            # which ports a key owns is only known by looking at all of them
            replica = self._drivers.ovsdb.ports()
            for name, port in replica.items():
                owner = port.external_ids.get(OWNER_EXTERNAL_ID)
                if owner in desired:
                    owned.setdefault(owner, {})[name] = port
        else:
            replica = self._drivers.ovsdb.ports_named(
                {p.name for want in desired.values() for p in want.ports}
                | {t.port for want in desired.values() for t in want.vif_tags})
        result = {}
        for key, want in desired.items():
            aspect = aspects[key]
            namespaces = {name: (jobs[name].result() if name in jobs else None)
                          for name in namespaces_of(key)}
            if aspect & Aspect.OVS:
                ports = owned.get(key, {})
                bridge_view = bridges_now
            else:
                ports = {p.name: _port_view_of(p, replica.get(p.name)) for p in want.ports}
                bridge_view = {b.name: b for b in want.bridges}
            foreign = {t.port: replica[t.port] for t in want.vif_tags if t.port in replica}
            key_flows = flows.get(key, frozenset()) if aspect & Aspect.FLOWS else want.flows
            result[key] = ActualKey(key=key, namespaces=namespaces, ports=ports,
                                    foreign_ports=foreign, bridges=bridge_view,
                                    flows=frozenset(key_flows))
        return result

    def _existing_namespaces(self, desired: Mapping[str, KeyState]) -> set[str]:
        """Which of the batch's namespaces exist: listed for a big batch, looked up one
        by one for a small one (a listing stats every namespace, 1,000 at scale)."""
        if len(desired) > BIG_BATCH:
            return self._drivers.namespaces.list()
        return {name for key in desired for name in namespaces_of(key)
                if self._drivers.namespaces.exists(name)}

    def _read_namespace(self, name: str, want: Namespace | None, aspect: Aspect,
                        ahead: NamespaceSnapshot | None = None) -> ActualNamespace:
        if want is None:  # unwanted: it will be deleted whole, nothing to read inside
            return ActualNamespace(name, {}, frozenset(), frozenset(), frozenset(),
                                   frozenset(), {}, None)
        if not aspect & Aspect.NETNS:
            neighbours = want.neighbours
            if aspect & Aspect.NEIGH:
                neighbours = ahead.neighbours if ahead else self._neighbours(name)
            return ActualNamespace(
                name=name,
                links={link.name: _assumed(link) for link in want.links},
                addresses=want.addresses, routes=want.routes, rules=want.rules,
                neighbours=neighbours,
                sysctls={s.key: s.value for s in want.sysctls}, nat=want.nat)
        snapshot = ahead or self._snapshot(name, neighbours=bool(aspect & Aspect.NEIGH))
        keys = [s.key for s in want.sysctls]
        readable = [k for k in keys if sysctl_device(k) in (None, *snapshot.links)]
        return ActualNamespace(
            name=name, links=snapshot.links, addresses=snapshot.addresses,
            routes=snapshot.routes, rules=snapshot.rules,
            neighbours=snapshot.neighbours if aspect & Aspect.NEIGH else want.neighbours,
            sysctls=self._drivers.sysctl.get(name, readable) if readable else {},
            nat=snapshot.nat)

    def _neighbours(self, name: str) -> frozenset[Neighbour]:
        handle = self._drivers.netlink(name)
        return handle.neighbours(handle.links())

    def _snapshot(self, name: str, neighbours: bool = True) -> NamespaceSnapshot:
        """Everything in ``name`` but its sysctls (its neighbours only if asked for)."""
        handle = self._drivers.netlink(name)
        links = handle.links()
        return NamespaceSnapshot(
            links=links, addresses=handle.addresses(links), routes=handle.routes(links),
            rules=handle.rules(),
            neighbours=handle.neighbours(links) if neighbours else frozenset(),
            nat=self._drivers.nat.read(name))

    def _dump_flows(self, keys: list[str], bridges: Iterable[str]) -> list[Future[set[Flow]]]:
        """Start dumping the flows of ``keys`` from every bridge, side by side.

        One dump a bridge for a big batch, or a small one whose cookies agree on enough
        bits (covering_cookie); otherwise one a key and bridge. Each dump is an
        ovs-ofctl process: ~15 ms on an idle host at 300 routers, 80-100 ms while
        ovs-vswitchd is busy with a port just plugged. One after the other, a VIF's
        three bridges were 120-140 ms of its ~220 ms in the agent (benchmarks/README.md,
        fix 24).
        """
        if not keys:
            return []
        cookie, mask = covering_cookie(cookie_for(k) for k in keys)
        if len(keys) > BIG_BATCH or selective_bits(mask) >= SELECTIVE_BITS:
            # of the flows whose cookies agree with all of the batch's where those agree:
            # every flow of ours for a big random batch, a sixteenth or less for the
            # periodic comparison's slices (ordered so that they agree)
            specs = [(bridge, cookie, mask) for bridge in bridges]
        else:
            specs = [(bridge, cookie_for(key), COOKIE_MASK_ALL)
                     for key in keys for bridge in bridges]
        return [self._executor.submit(self._drivers.openflow.dump, *spec) for spec in specs]


def _flows_by_key(keys: list[str], dumps: Iterable[Future[set[Flow]]]) -> dict[str, set[Flow]]:
    """The dumped flows of each of ``keys`` (a covering dump may hold others' flows too)."""
    cookies = {cookie_for(k): k for k in keys}
    by_key: dict[str, set[Flow]] = {k: set() for k in keys}
    for dump in dumps:
        for flow in dump.result():
            key = cookies.get(flow.cookie)
            if key is not None:
                by_key[key].add(flow)
    return by_key


def covering_cookie(cookies: Iterable[int]) -> tuple[int, int]:
    """The narrowest cookie/mask that matches every one of ``cookies``: the bits on which
    they all agree. Two random keys agree on ~24 of the 48 bits, so one dump with it
    returns their flows and almost nothing else."""
    cookies = list(cookies)
    differ = 0
    for cookie in cookies:
        differ |= cookie ^ cookies[0]
    mask = COOKIE_MASK_ALL & ~differ
    return cookies[0] & mask, mask


def cookie_slices(keys: Iterable[str], max_keys: int) -> list[list[str]]:
    """``keys`` cut into slices of at most ``max_keys`` whose cookies agree on their
    lowest bits: 1,000 keys in slices of ~32 agree on five or more, and one dump for a
    slice (covering_cookie) returns ~1/32 of the flows, not all of them.

    Split like a trie on the cookie's bits from the lowest up: a group too big is cut by
    its next bit, so every slice is all the keys that share some lowest bits.
    """
    cookies = {key: cookie_for(key) for key in keys}
    slices: list[list[str]] = []
    groups = [(sorted(cookies), 0)]
    while groups:
        group, bit = groups.pop()
        if len(group) <= max_keys or bit == 48:
            slices.append(group)
            continue
        ones = [k for k in group if cookies[k] >> bit & 1]
        zeros = [k for k in group if not cookies[k] >> bit & 1]
        groups += [(part, bit + 1) for part in (ones, zeros) if part]
    return slices


def selective_bits(mask: int) -> int:
    """How many bits of the key's part of a cookie ``mask`` fixes (2**-n of all keys)."""
    return (mask & ~COOKIE_PREFIX_MASK & COOKIE_MASK_ALL).bit_count()


def _port_view_of(port, current: PortView | None) -> PortView:
    """For an unread OVS aspect: the replica's row if there is one, else assume it is right."""
    if current is not None:
        return current
    return _AssumedPort(port.bridge, port.name, port.type, port.tag, None,
                        dict(port.options), dict(port.external_ids), dict(port.other_config))


@dataclass(frozen=True)
class _AssumedPort:
    bridge: str
    name: str
    type: str
    tag: int | None
    ofport: int | None
    options: Mapping[str, str]
    external_ids: Mapping[str, str]
    other_config: Mapping[str, str]
