"""One reconcile pass: compile the dirty keys, read what exists, diff, apply the minimum.

Level-triggered (STYLE exemplar 6): a pass is given keys, never events, and makes the
host match the facts as they are now, so a lost or repeated event is harmless. The
reconciler knows nothing of RPC or of how facts are kept: it is handed a function that
compiles keys, and one that says which keys are wanted at all.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dvr_agent import names
from dvr_agent.reconcile.actual import ActualReader, Aspect, namespaces_of
from dvr_agent.reconcile.announce import Announcement, announcements, withdrawals
from dvr_agent.reconcile.apply import Applier, ApplyResult
from dvr_agent.reconcile.diff import ActualKey, KeyDiff, diff_flows, diff_key
from dvr_agent.reconcile.drivers import Drivers
from dvr_agent.reconcile.flow_memory import FlowMemory
from dvr_agent.reconcile.parallel import run_all
from dvr_agent.state import (
    CANARY_KEY,
    COOKIE_MASK_ALL,
    COOKIE_PREFIX,
    COOKIE_PREFIX_MASK,
    OWNER_EXTERNAL_ID,
    Flow,
    KeyState,
    cookie_for,
    fip_key,
    router_key,
)

LOG = logging.getLogger(__name__)
# A pass that plugged new ports leaves the flows of other keys that name them (the
# external network's VLAN flows for a new fg- port, say) to a follow-up pass; until that
# pass the port drops what it sends. So the pass's gratuitous ARPs wait for it: a lab run
# saw a moved floating IP's first announcement lost that way, and the upstream's entry
# moved a whole round (1 s) late. At most this long (looked at after every pass), in
# case a follow-up key keeps failing.
HOLD_FOR_FOLLOW_UP = 5.0
COMPARE_WORKERS = 2  # reads of the periodic comparison, beside the passes' own pool
# namespaces a pass reads side by side, whatever ``workers`` says: a read is Python
# parsing netlink replies under the one GIL, and beyond two readers the threads only
# hand it back and forth. A warm restart at 300 routers (reads of 301 namespaces):
# 4 readers 3.0 s to READY with 0.8 CPU-s in the kernel, mostly futex waits and task
# switches; 2 readers 2.7-2.9 s with 0.64; 1 reader 3.1 s (benchmarks/README.md fix 42)
READ_WORKERS = 2
# keys recompiled at a time once new ports have their ofports: only their flows are kept,
# and a cold start's recompile of every key at once, neighbours included (the ARP tables
# had come meanwhile), was the agent's peak memory at 1,000 routers (benchmarks/README.md)
RECOMPILE_SLICE = 256

# compiles keys; a key that is not wanted compiles to an empty KeyState (it must go)
CompileKeys = Callable[[Iterable[str]], Mapping[str, KeyState]]


@dataclass
class _Held:
    """Announcements waiting for the follow-up passes of ``waiting``."""

    waiting: set[str]
    items: list[Announcement]
    until: float


@dataclass
class PassResult:
    keys: int = 0
    changes: Counter = field(default_factory=Counter)
    changed_keys: dict[str, str] = field(default_factory=dict)  # key -> summary
    pending: set[str] = field(default_factory=set)
    failed: dict[str, Exception] = field(default_factory=dict)
    follow_up: frozenset[str] = frozenset()  # keys outside the pass that need one
    announced: list[Announcement] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # phase -> wall time (s)

    def phases_text(self) -> str:
        """``compile 0.56, read 0.29, ...``: where the pass's time went, in its order."""
        return ", ".join(f"{phase} {seconds:.2f}" for phase, seconds in self.phases.items())

    @property
    def total_changes(self) -> int:
        return sum(self.changes.values())


class Reconciler:
    def __init__(self, drivers: Drivers, compile_keys: CompileKeys,
                 wanted_keys: Callable[[], frozenset[str]],
                 bridges: Callable[[], Iterable[str]],
                 refresh_ofports: Callable[[frozenset[str]], frozenset[str]],
                 workers: int = 4) -> None:
        self._d = drivers
        self._compile = compile_keys
        self._wanted = wanted_keys
        self._bridges = bridges
        self._refresh_ofports = refresh_ofports
        self._executor = ThreadPoolExecutor(max_workers=workers,
                                            thread_name_prefix="reconcile")
        self.flow_memory = FlowMemory()
        self._read_executor = ThreadPoolExecutor(max_workers=min(workers, READ_WORKERS),
                                                 thread_name_prefix="read")
        self._reader = ActualReader(drivers, self._executor, self.flow_memory,
                                    namespace_executor=self._read_executor)
        self._applier = Applier(drivers, self._executor)
        # the periodic comparison reads through a pool of its own: on the passes' pool,
        # an event's reads would queue behind a comparison's dozens of namespaces
        self._compare_executor = ThreadPoolExecutor(max_workers=COMPARE_WORKERS,
                                                    thread_name_prefix="compare")
        self._compare_reader = ActualReader(drivers, self._compare_executor)
        self._held: list[_Held] = []

    def close(self, wait: bool = True) -> None:
        for executor in (self._executor, self._read_executor, self._compare_executor):
            executor.shutdown(wait=wait)

    def run_pass(self, keys: Mapping[str, Aspect]) -> PassResult:
        """Make the host match the facts for ``keys`` (each limited to its aspects)."""
        started = time.monotonic()
        result = PassResult(keys=len(keys))
        if not keys:
            return result
        epoch = self.flow_memory.epoch()
        try:
            applied, flows_now, unread = self._pass(keys, result)
        except BaseException:  # flows may be half written: read them next time
            self.flow_memory.forget(keys)
            self._reader.forget_ahead(ns for k in keys for ns in namespaces_of(k))
            raise
        self._release_held(set(keys) - set(result.failed) - result.pending, result)
        self._remember_flows(flows_now, unread, result, epoch)
        result.seconds, result.phases = time.monotonic() - started, applied.seconds
        return result

    def _pass(self, keys: Mapping[str, Aspect], result: PassResult,
              ) -> tuple[ApplyResult, dict[str, frozenset[Flow]], set[str]]:
        """The pass itself; with the flows each key whose flows it read now has, and the
        keys whose flows it wrote without reading them (recompiled for new ports)."""
        applied = ApplyResult()
        with applied.timed("compile"):
            desired = self._desired(keys)
        with applied.timed("read"):
            actual, changing = self._differences(self._reader, desired, keys)
        flows_now = {k: actual[k].flows for k, aspect in keys.items() if aspect & Aspect.FLOWS}
        if not changing:
            return applied, flows_now, set()
        # what was read ahead of a namespace about to change no longer stands for it
        self._reader.forget_ahead(ns for diff in changing for ns in namespaces_of(diff.key))
        with_new_ports = self._applier.apply_before_flows(changing, desired, applied)
        flow_diffs = {d.key: (d.flows_add, d.flows_del) for d in changing}
        if with_new_ports:
            # ports just got their ofports: flows that name them can be compiled now,
            # also for a key of this pass that had nothing to change before (a VIF's
            # router, compiled before ovs-vswitchd numbered the VIF: one more pass
            # was a third of a VM port's latency); keys outside this pass that name
            # them are handed back as follow-ups
            flows_read = frozenset(k for k, aspect in keys.items() if aspect & Aspect.FLOWS)
            touched = self._refresh_ofports(flows_read)
            again = (touched | with_new_ports) & (set(flow_diffs) | flows_read)
            result.follow_up = frozenset(touched - again)
            changing += [KeyDiff(key=k) for k in sorted(again - set(flow_diffs))]
            with applied.timed("recompile"):
                self._recompile_flows(sorted(again), keys, actual, flow_diffs)
        self._applier.apply_flows(flow_diffs, applied)
        self._applier.settle(applied)
        for key, (add, delete) in flow_diffs.items():
            if key in flows_now and applied.ok(key):
                flows_now[key] = (flows_now[key] - delete) | add  # a frozenset still
        with applied.timed("removals"):
            self._applier.apply_removals(changing, applied)
        result.changes, result.pending, result.failed = (
            +applied.changes, applied.pending, applied.failed)
        for diff in changing:
            self._log(diff, flow_diffs.get(diff.key), result)
        self._announce(changing, desired, result)
        unread = {k for k, (add, delete) in flow_diffs.items()
                  if (add or delete) and k not in flows_now}
        return applied, flows_now, unread

    def _remember_flows(self, flows_now: dict[str, frozenset[Flow]], unread: set[str],
                        result: PassResult, epoch: int) -> None:
        """Remember what the keys whose flows the pass read now have on the bridges; a
        key that failed is forgotten (its bundle may have been cut short), and so is one
        whose flows were written from assumptions (``unread``)."""
        self.flow_memory.remember({k: f for k, f in flows_now.items()
                                   if k not in result.failed}, epoch, unknown=unread)
        if result.failed:
            self.flow_memory.forget(result.failed)

    def read_ahead(self) -> None:
        """Start reading every namespace of ours that exists, for the start-up passes:
        a restarted agent reads them while the server answers its full sync, not after.
        The passes use what was read for a namespace until its key changes; the caller
        stops that with ``stop_reading_ahead`` once they are done. A warm restart at 300
        routers, alternated: READY 2.8-3.4 s without it, 2.2-2.7 s with it
        (benchmarks/README.md fix 43)."""
        self._reader.read_ahead(sorted(name for name in self._d.namespaces.list()
                                       if names.is_owned_namespace(name)))

    def stop_reading_ahead(self) -> None:
        """From now on every pass reads what it compares: what was read ahead may be
        stale (an operator's change, a device gone)."""
        self._reader.stop_reading_ahead()

    def drifted(self, keys: Iterable[str]) -> dict[str, str]:
        """Keys whose host state differs from the facts, with what differs; reads only.

        The periodic comparison runs here, beside the passes rather than as one: a pass
        over 32 keys' namespaces and flows took 100-500 ms, and an event that came
        meanwhile waited for all of it (the ARP event's p99, benchmarks/README.md fix 17).
        A key that an event pass changes while it is compared may look drifted; it only
        gets one more pass, which finds nothing to do.
        """
        aspects = dict.fromkeys(keys, Aspect.ALL)
        if not aspects:
            return {}
        # one key at a time: compiling holds the facts' lock, which events need too
        desired = {k: self._compile([k]).get(k) or KeyState(key=k) for k in aspects}
        _actual, changing = self._differences(self._compare_reader, desired, aspects)
        return {diff.key: diff.summary() for diff in changing}

    def _differences(self, reader: ActualReader, desired: Mapping[str, KeyState],
                     aspects: Mapping[str, Aspect]) -> tuple[dict[str, ActualKey], list[KeyDiff]]:
        """What exists for these keys, and the diffs of those that differ (by key)."""
        actual = reader.read(desired, aspects, list(self._bridges()))
        host_links = reader.host_links(desired, aspects)
        diffs = (diff_key(desired[k], actual[k], host_links) for k in sorted(desired))
        return actual, [d for d in diffs if d.size()]

    def _announce(self, changing: list[KeyDiff], desired: Mapping[str, KeyState],
                  result: PassResult) -> None:
        """Gratuitous ARP for what the pass put on the wire, none for what it took off;
        held while the pass leaves follow-ups (see HOLD_FOR_FOLLOW_UP)."""
        applied = [d for d in changing if d.key not in result.failed]
        gone = [w for d in applied for w in withdrawals(d)]
        found: list[Announcement] = []
        for diff in applied:
            these = announcements(desired[diff.key], diff)
            if these:
                LOG.info("%s: gratuitous ARP for %s%s", diff.key,
                         ", ".join(f"{a.ip} on {a.device}" for a in these),
                         " once the new ports' follow-up pass is done" if result.follow_up
                         else "")
            found += these
        if gone:
            for held in self._held:
                held.items = [a for a in held.items if not any(
                    a.namespace == w.namespace and w.ip in (None, a.ip) for w in gone)]
            if self._d.announcer is not None:
                self._d.announcer.withdraw(gone)
        if found and result.follow_up:
            self._held.append(_Held(set(result.follow_up), found,
                                    time.monotonic() + HOLD_FOR_FOLLOW_UP))
        elif found:
            self._send(found, result)

    def _release_held(self, done: set[str], result: PassResult) -> None:
        """Send what waited for keys this pass has now done (or waited long enough)."""
        now, still = time.monotonic(), []
        for held in self._held:
            held.waiting -= done
            if held.waiting and now < held.until:
                still.append(held)
            elif held.items:
                LOG.info("gratuitous ARP, after the follow-up pass: %s",
                         ", ".join(f"{a.ip} on {a.device}" for a in held.items))
                self._send(held.items, result)
        self._held = still

    def _send(self, items: list[Announcement], result: PassResult) -> None:
        result.announced += items
        if self._d.announcer is not None:
            self._d.announcer.announce(items)

    def _recompile_flows(self, keys: list[str], aspects: Mapping[str, Aspect],
                         actual: Mapping[str, ActualKey],
                         flow_diffs: dict[str, tuple[set[Flow], set[Flow]]]) -> None:
        """The flow diffs of ``keys`` compiled again, RECOMPILE_SLICE keys at a time: each
        slice's states are dropped once their flows are diffed, and the facts' lock is
        let go between slices for the events waiting on it."""
        for start in range(0, len(keys), RECOMPILE_SLICE):
            part = keys[start:start + RECOMPILE_SLICE]
            recompiled = self._desired({k: aspects[k] for k in part})
            for key in part:
                flow_diffs[key] = diff_flows(recompiled[key].flows, actual[key].flows)

    def _desired(self, keys: Mapping[str, Aspect]) -> dict[str, KeyState]:
        """What each key should be; an unwanted key compiles to nothing (removal)."""
        compiled = self._compile(keys)
        return {k: compiled.get(k) or KeyState(key=k) for k in keys}

    def _log(self, diff: KeyDiff, flows, result: PassResult) -> None:
        if flows is not None:
            diff.flows_add, diff.flows_del = flows
        summary = diff.summary()
        if not summary:
            return
        result.changed_keys[diff.key] = summary
        state = ("failed" if diff.key in result.failed
                 else "pending" if diff.key in result.pending else "done")
        LOG.info("%s: %s (%s)", diff.key, summary, state)
        if LOG.isEnabledFor(logging.DEBUG):
            for flow in sorted(diff.flows_add, key=lambda f: f.render()):
                LOG.debug("%s: + flow %s %s", diff.key, flow.bridge, flow.render())
            for flow in sorted(diff.flows_del, key=lambda f: f.render()):
                LOG.debug("%s: - flow %s %s", diff.key, flow.bridge, flow.render())

    # ------------------------------------------------------------ what is ours but unwanted

    def stale_keys(self) -> set[str]:
        """Keys that own something on the host but are no longer wanted.

        Found from what exists: our namespaces (``qrouter-<uuid>``, ``snat-``, ``fip-``;
        ``qrouter-notauuid`` is somebody else's) and OVS ports tagged with our owner id.
        Only called after a successful full sync: never on a guess.
        """
        wanted = self._wanted()
        found = set()
        for name in self._d.namespaces.list():
            owned = names.owned_namespace_id(name)
            if owned is None:
                continue
            prefix, ident = owned
            found.add(fip_key(ident) if prefix == names.FIP_NS_PREFIX else router_key(ident))
        for port in self._d.ovsdb.ports().values():
            owner = port.external_ids.get(OWNER_EXTERNAL_ID)
            if owner:
                found.add(owner)
        return found - wanted

    def delete_stale_flows(self) -> int:
        """Remove flows with our cookie prefix whose key is not wanted (one cookie at a time,
        so flows of other owners, with other cookies, are never touched)."""
        live = {cookie_for(k) for k in (*self._wanted(), CANARY_KEY)}
        removed = 0
        existing = self._d.ovsdb.bridges()
        ours = run_all(self._executor, {
            bridge: functools.partial(self._d.openflow.cookies, bridge, COOKIE_PREFIX,
                                      COOKIE_PREFIX_MASK)
            for bridge in self._bridges() if bridge in existing})
        for bridge, cookies in ours.items():
            stale = cookies - live
            for cookie in sorted(stale):
                self._d.openflow.delete_cookie(bridge, cookie, COOKIE_MASK_ALL)
                removed += 1
            # a key is only remembered while wanted, yet a stale cookie's flows were
            # there: whoever remembers that cookie remembers wrong
            self.flow_memory.forget(k for k in self.flow_memory.remembered()
                                    if cookie_for(k) in stale)
        if removed:
            LOG.info("removed the flows of %d stale keys", removed)
        return removed
