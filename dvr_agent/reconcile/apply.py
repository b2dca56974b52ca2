"""Apply a batch of diffs in the order the kernel and Open vSwitch need, batched per pass.

Order of a pass (creation first, removal last, so nothing in use disappears early):
  1. namespaces that must exist are created;
  2. veth-plugged ports get their veth (the host end must exist before OVS plugs it);
  3. ONE OVSDB transaction for the whole batch (bridges, ports, VIF tags): per-port
     transactions cost a full ovs-vswitchd reconfiguration each (25 ms at 1,000 ports);
  4. inside each namespace, in parallel: stale devices out, devices in (move an OVS tap
     from the host, create a veth pair), sysctls, addresses, rules, routes, neighbours
     in bulk, NAT. Namespaces without an OVS internal port to take in are worked while
     ovs-vswitchd applies phase 3; the others start once it has;
  5. flows: one OpenFlow bundle per bridge for the whole batch, the bridges side by side
     (done by the caller, which may first recompile keys whose ports just got an ofport);
     a bridge's change of thousands of flows goes as a few bundles side by side, each
     key's flows whole in one of them (see ``split_by_key``);
  6. ports to remove, in one transaction; 7. namespaces to remove.
A key whose step fails is reported failed and skipped from then on; the others go on.
Something that cannot be done yet (a veth whose peer namespace does not exist, an OVS
tap not yet created) leaves the key *pending*: it is retried by the caller shortly.
"""

from __future__ import annotations

import errno
import functools
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass, field

from dvr_agent.reconcile.actual import sysctl_device
from dvr_agent.reconcile.diff import KeyDiff, NamespaceDiff
from dvr_agent.reconcile.drivers import Drivers, NetlinkHandle
from dvr_agent.reconcile.parallel import errors_of_all, submit_all
from dvr_agent.state import Flow, KeyState, Link, LinkKind

LOG = logging.getLogger(__name__)

# A bridge's change larger than this goes as PARALLEL_BUNDLES bundles side by side.
# ovs-vswitchd takes at most 50 messages of one OpenFlow connection per round of its
# main loop, and on the userspace datapath a round costs more the more ports it has:
# 10,000 flows in one bundle took 0.1 s on a bridge alone, 0.94 s beside 1,000 ports
# and 3 s in a cold sync at 1,000 routers (2,000 qr- ports); in 2/4/8 bundles side by
# side 0.53/0.34/0.25 s beside 1,000 ports (benchmarks/README.md, fix 39).
SPLIT_ABOVE_FLOWS = 2000
PARALLEL_BUNDLES = 4


@dataclass
class ApplyResult:
    pending: set[str] = field(default_factory=set)
    failed: dict[str, Exception] = field(default_factory=dict)
    changes: Counter = field(default_factory=Counter)  # per driver area
    seconds: dict[str, float] = field(default_factory=dict)  # phase -> wall time
    unsettled: set[str] = field(default_factory=set)  # keys whose tags await settle()

    def ok(self, key: str) -> bool:
        return key not in self.failed

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the wall time of the block to ``phase``: the start-up log names where a
        pass went (benchmarks/README.md reads its phases from there)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.monotonic() - started


class Applier:
    def __init__(self, drivers: Drivers, executor: Executor) -> None:
        self._d = drivers
        self._executor = executor

    # ------------------------------------------------------------ phases 1-4

    def apply_before_flows(self, diffs: list[KeyDiff], desired: dict[str, KeyState],
                           result: ApplyResult) -> set[str]:
        """Phases 1-4. Returns the keys that added or replaced OVS ports or tagged VIFs
        (new ofports to learn before their flows)."""
        with result.timed("namespaces"):
            self._create_namespaces(diffs, result)
        with result.timed("veths"):
            self._create_ovs_veths(diffs, desired, result)
        inside = [(diff.key, ns) for diff in diffs for ns in diff.namespaces
                  if not ns.delete and result.ok(diff.key)]
        with result.timed("inside"):  # from the first namespace started to the last done
            # ovs-vswitchd applies the transaction in its own process (3 s of its CPU for
            # 2,000 ports at a cold start) while the namespaces are worked in ours; only
            # a namespace that takes in a tap ovs-vswitchd makes has to wait for it
            futures = self._inside_namespaces([(k, ns) for k, ns in inside
                                               if not _needs_ovs(ns)])
            with result.timed("ovsdb"):
                replugged = self._ovsdb_changes(diffs, result)
            futures |= self._inside_namespaces([(k, ns) for k, ns in inside
                                                if _needs_ovs(ns) and result.ok(k)])
            for (key, name), future in futures.items():
                try:
                    pending, counts = future.result()
                except Exception as exc:  # reported per key, the batch goes on
                    self._fail(result, key, exc, f"namespace {name}")
                    continue
                result.changes.update(counts)
                if pending:
                    result.pending.add(key)
        return replugged

    def _inside_namespaces(self, work: list[tuple[str, NamespaceDiff]],
                           ) -> dict[tuple[str, str], Future[tuple[bool, Counter]]]:
        """Phase 4 of these namespaces started on the pool: {(key, namespace): future}."""
        return submit_all(self._executor, {
            (key, ns.name): functools.partial(self._apply_inside_namespace, ns)
            for key, ns in work})

    def _create_namespaces(self, diffs: list[KeyDiff], result: ApplyResult) -> None:
        for diff in diffs:
            for ns in diff.namespaces:
                if ns.create and result.ok(diff.key):
                    try:
                        self._d.namespaces.create(ns.name)
                        result.changes["namespaces"] += 1
                    except Exception as exc:
                        self._fail(result, diff.key, exc, f"create namespace {ns.name}")

    def _create_ovs_veths(self, diffs: list[KeyDiff], desired: dict[str, KeyState],
                          result: ApplyResult) -> None:
        """Phase 2: every missing veth whose host end Open vSwitch plugs, made in batches
        from the agent's namespace (one message a pair, the far end placed in its
        namespace by the kernel). One at a time, with a socket opened in each new
        namespace, this was 82 % of a cold sync at 1,000 routers (benchmarks/README.md)."""
        missing = [(diff, ns, link) for diff in diffs for ns in diff.namespaces
                   for link in ns.links
                   if link.kind is LinkKind.OVS_VETH and not ns.delete and result.ok(diff.key)
                   and (ns.create or self._d.netlink(ns.name).link(link.name) is None)]
        if not missing:
            return
        host = self._d.netlink(None)
        host_ends = host.links()
        for diff, _ns, link in missing:
            if link.peer in host_ends:  # its namespace end died: the pair goes with it
                try:
                    host.link_del(link.peer)
                except Exception as exc:
                    self._fail(result, diff.key, exc, f"veth {link.name}")
        todo = [(diff, ns, link) for diff, ns, link in missing if result.ok(diff.key)]
        refused = host.veths_add([(ns.name, link) for _diff, ns, link in todo])
        self._silence_host_ends([link.peer for _d, _n, link in todo if link.name not in refused])
        replica = self._d.ovsdb.ports()
        for diff, _ns, link in todo:
            try:
                if link.name in refused:
                    raise refused[link.name]
                self._d.tx_checksum_off(None, [link.peer])
            except Exception as exc:
                self._fail(result, diff.key, exc, f"veth {link.name}")
                continue
            result.changes["links"] += 1
            if link.peer in replica:
                # ovs-vswitchd still holds the old device of that name: only a new port row
                # makes it open the new one
                _replug(diff, desired[diff.key], link.peer)

    def _silence_host_ends(self, host_ends: list[str]) -> None:
        """IPv6 off on new host ends, before their namespace ends come up (phase 4).

        A host end is a switch port, yet with IPv6 on the kernel gives it a link-local
        address as soon as it has carrier, and it sends duplicate-address probes, MLD
        reports and router solicitations into br-int, each flooded on its network. At
        N = 300 that was 600 ends' worth right after a cold sync: the userspace
        datapath hit its 1,000-flow limit and ovs-vswitchd's main loop took 3-9 s per
        round, so a VM plugged then waited 30 s for its tag (benchmarks/README.md).
        os-vif turns IPv6 off on the veths it plugs for the same reason. Hygiene, not
        state: a host without IPv6 has nothing to turn off, and a failure only logs.
        """
        if not host_ends:
            return
        try:
            self._d.sysctl.set(None, {f"net.ipv6.conf.{end}.disable_ipv6": "1"
                                      for end in host_ends})
        except Exception as exc:  # a driver's error; ENOENT: no IPv6 on this host
            if getattr(exc, "errno", None) != errno.ENOENT:
                LOG.warning("IPv6 left on %d new veth host ends (they will send link-local "
                            "traffic into the bridge): %s", len(host_ends), exc)

    def _ovsdb_changes(self, diffs: list[KeyDiff], result: ApplyResult) -> set[str]:
        todo = [d for d in diffs if result.ok(d.key)
                and (d.bridges_add or d.ports_add or d.ports_update or d.vif_tags)]
        if not todo:
            return set()
        if not any(d.bridges_add or d.ports_add or d.ports_update for d in todo):
            # VIF tags only (a VM port's pass): its flows need the VIF's ofport, not the
            # tag in ovs-vswitchd; waited for after the flows (settle), the bundle rides
            # on the reconfiguration the tag costs instead of queueing behind it: on the
            # userspace datapath at 300 routers that reconfiguration was 30-80 ms of a VM
            # port's latency (benchmarks/README.md, fix 34)
            result.unsettled = {d.key for d in todo}
        try:
            self._ovsdb_apply(todo, settle=not result.unsettled)
        except Exception as exc:  # isolate the key that broke the batch
            LOG.warning("OVSDB batch of %d keys failed (%s); retrying key by key",
                        len(todo), exc)
            for diff in todo:
                try:
                    self._ovsdb_apply([diff], settle=not result.unsettled)
                except Exception as key_exc:
                    self._fail(result, diff.key, key_exc, "OVSDB")
        done = [d for d in todo if result.ok(d.key)]
        result.changes["ovsdb"] += sum(len(d.bridges_add) + len(d.ports_add)
                                       + len(d.ports_update) + len(d.vif_tags) for d in done)
        # a VIF tag applied means ovs-vswitchd has taken the VIF in, ofport and all: its
        # flows can be compiled in this pass, not in one more after the OVSDB event
        return {d.key for d in done if d.ports_add or d.vif_tags}

    def settle(self, result: ApplyResult) -> None:
        """Wait for ovs-vswitchd to apply the VIF tags committed without waiting; the keys
        that tagged are failed if it does not (their VIFs are not reported up)."""
        if not result.unsettled:
            return
        keys, result.unsettled = result.unsettled, set()
        with result.timed("settle"):
            try:
                self._d.ovsdb.settle()
            except Exception as exc:
                for key in sorted(keys):
                    if result.ok(key):
                        self._fail(result, key, exc, "OVSDB")

    def _ovsdb_apply(self, diffs: list[KeyDiff], settle: bool = True) -> None:
        adding = {p.name for d in diffs for p in d.ports_add}
        replaced = [n for d in diffs for n in d.ports_del if n in adding]
        if replaced:
            # a port replaced by a new one of the same name (another kind, or a new device
            # behind it) goes first in a transaction of its own: when both happen in one,
            # ovs-vswitchd keeps the old device open under the name
            self._d.ovsdb.apply(del_ports=replaced)
        self._d.ovsdb.apply(
            add_bridges=[b for d in diffs for b in d.bridges_add],
            add_ports=[p for d in diffs for p in d.ports_add],
            update_ports=[p for d in diffs for p in d.ports_update],
            vif_tags=[t for d in diffs for t in d.vif_tags], settle=settle)

    def _apply_inside_namespace(self, ns: NamespaceDiff) -> tuple[bool, Counter]:
        """Phase 4 for one namespace. Returns (something is pending, counts)."""
        handle = self._d.netlink(ns.name)
        counts: Counter = Counter()
        for name in ns.links_del:
            handle.link_del(name)
            counts["links"] += 1
        for link in ns.replug:
            handle.link_del(link.name)  # the orphan left by an ovs-vswitchd restart
        # what is read here is passed to the writes below instead of each reading again:
        # at a cold start those reads were 6 of a namespace's ~13 netlink round trips
        # (two link dumps, four devices by name; benchmarks/README.md, fix 30)
        present = handle.links()
        links = [*ns.replug, *ns.links]
        host = self._d.netlink(None)
        host_ends = host.links_named([link.peer for link in links
                                      if link.kind is LinkKind.OVS_VETH])
        missing: set[str] = set()
        brought_in = False
        veth_ends = []
        for link in links:
            if link.name not in present:
                if not self._bring_in(link, ns.name, handle):
                    missing.add(link.name)
                    continue
                brought_in = True
            handle.link_set(link.name, mac=link.mac, mtu=link.mtu, up=True,
                            current=present.get(link.name))
            if link.kind is LinkKind.OVS_VETH:  # the end Open vSwitch reads must be up too
                host.link_set(link.peer, mtu=link.mtu, up=True,
                              current=host_ends.get(link.peer))
            if link.kind in (LinkKind.VETH, LinkKind.OVS_VETH):
                veth_ends.append(link.name)
            counts["links"] += 1
        if veth_ends:  # one thread into the namespace for all of them
            self._d.tx_checksum_off(ns.name, veth_ends)
        if brought_in:
            present = handle.links()
        usable = set(present) - missing if missing else None

        def ready(device: str | None) -> bool:
            return usable is None or device is None or device in usable

        sysctls = {k: v for k, v in ns.sysctls.items() if ready(sysctl_device(k))}
        if sysctls:
            counts["sysctls"] += self._d.sysctl.set(ns.name, sysctls)
        for address in ns.addr_del:
            handle.addr_del(address)
        counts["addresses"] += len(ns.addr_del)
        addresses = [a for a in ns.addr_add if ready(a.device)]
        if addresses:
            handle.addr_add_many(addresses, present)
            counts["addresses"] += len(addresses)
        for rule in ns.rule_del:
            handle.rule_del(rule)
        if ns.route_del:
            handle.route_del_many(ns.route_del, present)
        if ns.rule_add:
            handle.rule_add_many(ns.rule_add)
        counts["rules"] += len(ns.rule_add) + len(ns.rule_del)
        routes = [r for r in ns.route_add if ready(r.device)]
        if routes:
            handle.route_replace_many(routes, present)
        counts["routes"] += len(ns.route_del) + len(routes)
        if ns.neigh_del:
            counts["neighbours"] += handle.neigh_del(ns.neigh_del, present)
        adds = [n for n in ns.neigh_add if ready(n.device)]
        if adds:
            counts["neighbours"] += handle.neigh_replace(adds, present)
        if ns.nat is not None:
            self._d.nat.replace(ns.name, ns.nat)
            counts["nat"] += 1
        deferred = (len(ns.sysctls) - len(sysctls)) + (len(ns.neigh_add) - len(adds))
        return bool(missing or deferred), counts

    def _bring_in(self, link: Link, namespace: str, handle: NetlinkHandle) -> bool:
        """Get a missing device into ``namespace``; False when it cannot happen yet.

        Devices elsewhere are looked up by name, never by listing: the agent's own
        namespace holds a veth end or tap per plugged port (thousands at scale).
        """
        if link.kind is LinkKind.OVS_INTERNAL:
            host = self._d.netlink(None)
            if host.link(link.name) is None:
                return False  # ovs-vswitchd has not made the tap yet
            host.link_move(link.name, namespace)
            return True
        if link.kind is LinkKind.VETH:
            if not self._d.namespaces.exists(link.peer_namespace):
                return False  # the other key creates its namespace; we retry
            peer_side = self._d.netlink(link.peer_namespace)
            if peer_side.link(link.peer) is not None:
                return False  # being created from the other side right now
            handle.veth_add(link.name, link.peer, link.peer_namespace)
            self._d.tx_checksum_off(link.peer_namespace, [link.peer])
            return True
        return False  # OVS_VETH is created in phase 2; missing now means it failed there

    # ------------------------------------------------------------ phases 5-7

    def apply_flows(self, flow_diffs: dict[str, tuple[set[Flow], set[Flow]]],
                    result: ApplyResult) -> None:
        """Phase 5: the bundles of every bridge side by side (see ``split_by_key``); the
        keys of a bundle that failed are retried one by one, so that one bad key does
        not hold back the others (the bundles that committed are not sent again)."""
        keys = [k for k, (add, delete) in flow_diffs.items() if (add or delete) and result.ok(k)]
        if not keys:
            return
        with result.timed("flows"):
            failed = self._bundles(keys, flow_diffs)
            if failed:
                LOG.warning("flow bundles of %d keys failed (%s); retrying them key by key",
                            len(failed), next(iter(failed.values())))
            for key in sorted(failed):
                retried = self._bundles([key], flow_diffs)
                if key in retried:
                    self._fail(result, key, retried[key], "flows")
        result.changes["flows"] += sum(len(a) + len(d) for k, (a, d) in flow_diffs.items()
                                       if k in keys and result.ok(k))

    def _bundles(self, keys: Iterable[str], flow_diffs: dict[str, tuple[set[Flow], set[Flow]]],
                 ) -> dict[str, Exception]:
        """Write the flow changes of ``keys``; the keys whose bundle failed, each with the
        error (every other bundle has committed). All bundles are done when it returns:
        a retry must not race a bundle of the first attempt still running."""
        per_bridge: dict[str, dict[str, tuple[list[Flow], list[Flow]]]] = {}
        for key in keys:
            add, delete = flow_diffs[key]
            for flow in add:
                per_bridge.setdefault(flow.bridge, {}).setdefault(key, ([], []))[0].append(flow)
            for flow in delete:
                per_bridge.setdefault(flow.bridge, {}).setdefault(key, ([], []))[1].append(flow)
        bundles = [(bridge, bundle) for bridge, by_key in sorted(per_bridge.items())
                   for bundle in split_by_key(by_key)]
        # each bundle is atomic on its own bridge and none waits for another's; the
        # largest go to the pool's threads first (the pool has fewer than at a cold start)
        bundles.sort(key=lambda b: -b[1].size)
        errors = errors_of_all(self._executor, {
            i: functools.partial(self._d.openflow.apply, bridge, add=bundle.add,
                                 delete=bundle.delete)
            for i, (bridge, bundle) in enumerate(bundles)})
        return {key: exc for i, exc in errors.items() for key in bundles[i][1].keys}

    def apply_removals(self, diffs: list[KeyDiff], result: ApplyResult) -> None:
        """Phases 6 and 7: ports no longer wanted, then namespaces no longer wanted."""
        ok = [d for d in diffs if result.ok(d.key)]
        adding = {p.name for d in ok for p in d.ports_add}
        gone = [n for d in ok for n in d.ports_del if n not in adding]
        if gone:
            try:
                self._d.ovsdb.apply(del_ports=gone)
                result.changes["ovsdb"] += len(gone)
            except Exception as exc:
                for d in ok:
                    if set(d.ports_del) - adding:
                        self._fail(result, d.key, exc, "OVSDB removal")
        for diff in ok:
            for ns in diff.namespaces:
                if ns.delete and result.ok(diff.key):
                    try:
                        self._d.forget_netlink(ns.name)
                        self._d.namespaces.delete(ns.name)
                        result.changes["namespaces"] += 1
                    except Exception as exc:
                        self._fail(result, diff.key, exc, f"delete namespace {ns.name}")

    @staticmethod
    def _fail(result: ApplyResult, key: str, exc: Exception, what: str) -> None:
        LOG.error("%s: %s failed: %s", key, what, exc)
        result.failed.setdefault(key, exc)


def _needs_ovs(ns: NamespaceDiff) -> bool:
    """Does phase 4 of ``ns`` need the OVSDB transaction done? Yes for an internal port:
    its tap, made by ovs-vswitchd, is moved in. A veth's host end is ours, made in phase 2."""
    return bool(ns.replug) or any(link.kind is LinkKind.OVS_INTERNAL for link in ns.links)


def _replug(diff: KeyDiff, want: KeyState, port_name: str) -> None:
    port = next((p for p in want.ports if p.name == port_name), None)
    if port is None or any(p.name == port_name for p in diff.ports_add):
        return
    diff.ports_update = [p for p in diff.ports_update if p.name != port_name]
    diff.ports_del.append(port_name)
    diff.ports_add.append(port)


@dataclass
class Bundle:
    """What one bundle writes on a bridge, and the keys it is for."""
    keys: list[str] = field(default_factory=list)
    add: list[Flow] = field(default_factory=list)
    delete: list[Flow] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.add) + len(self.delete)


def split_by_key(by_key: dict[str, tuple[list[Flow], list[Flow]]]) -> list[Bundle]:
    """One bridge's change as the bundles to send: one, or PARALLEL_BUNDLES of about
    equal size when it is larger than SPLIT_ABOVE_FLOWS.

    A key's flows stay in one bundle, so each key's change is still atomic. Keys have a
    cookie each and deletes are cookie-exact, but an add replaces the flow of the same
    table, priority and match whatever its cookie: keys that name one such ident (two
    routers' ARP-reply flow on one network, for one) go in the same bundle, where
    ``OpenFlow.apply`` refuses the pair as it always did, rather than in two bundles
    where the last one committed would win.
    """
    size = {key: len(add) + len(delete) for key, (add, delete) in by_key.items()}
    if sum(size.values()) <= SPLIT_ABOVE_FLOWS:
        return [Bundle(keys=sorted(by_key), add=[f for a, _ in by_key.values() for f in a],
                       delete=[f for _, d in by_key.values() for f in d])]
    bundles = [Bundle() for _ in range(PARALLEL_BUNDLES)]
    groups = sorted((-sum(size[k] for k in group), group)
                    for group in _keys_sharing_idents(by_key))
    for _, group in groups:  # largest first: even loads
        lightest = min(bundles, key=lambda b: b.size)
        for key in group:
            lightest.keys.append(key)
            lightest.add.extend(by_key[key][0])
            lightest.delete.extend(by_key[key][1])
    return [b for b in bundles if b.keys]


def _keys_sharing_idents(by_key: dict[str, tuple[list[Flow], list[Flow]]],
                         ) -> list[list[str]]:
    """The keys in groups: two keys that name one flow ident are in the same group."""
    parent = {key: key for key in by_key}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    owner: dict[tuple, str] = {}
    for key in sorted(by_key):
        add, delete = by_key[key]
        for flow in (*add, *delete):
            other = owner.setdefault(flow.ident, key)
            if root(other) != root(key):
                parent[root(other)] = root(key)
    groups: dict[str, list[str]] = {}
    for key in sorted(by_key):
        groups.setdefault(root(key), []).append(key)
    return list(groups.values())
