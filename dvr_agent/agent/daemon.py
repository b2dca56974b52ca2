"""dvr-agent's life: start without disturbing anything, converge, serve events, stop clean.

Start: connect to OVSDB, learn this host's DVR MAC (a clear fatal error if the server
never gives one: DVR cannot work without it), report as both of Neutron's agents, fetch
every router (``get_router_ids`` + ``sync_routers`` in chunks), then converge: read what
exists, apply only the difference. Nothing is flushed first, so a restart with
everything in place changes nothing and no packet is lost. Only after that first full
sync are namespaces, ports and flows of ours that the server no longer wants removed.

Threads: the fetcher (every server call), the reconciler (one pass at a time over the
queued keys), the rolling comparison with the host, the heartbeat, housekeeping
(canary, watchdog, status) and oslo.messaging's listeners. SIGTERM stops them within
seconds and leaves the data plane exactly as it is.
"""

from __future__ import annotations

import faulthandler
import ipaddress
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

import oslo_messaging
import tenacity
from oslo_config import cfg

from dvr_agent import models
from dvr_agent.agent import config as agent_config
from dvr_agent.agent import statefile
from dvr_agent.agent.announce_gate import AnnouncementGate
from dvr_agent.agent.comparison import RollingComparison
from dvr_agent.agent.core import AgentCore
from dvr_agent.agent.dataplane import NetlinkCache, build_drivers
from dvr_agent.agent.fetcher import Fetcher
from dvr_agent.agent.heartbeat import Heartbeat
from dvr_agent.agent.housekeeping import Housekeeping
from dvr_agent.agent.memory import release_free_memory
from dvr_agent.agent.metrics import Metrics
from dvr_agent.agent.notifications import (
    L3AgentNotifications,
    OvsAgentNotifications,
    rpc_servers,
)
from dvr_agent.agent.sdnotify import Notifier
from dvr_agent.agent.vifs import VifTracker
from dvr_agent.agent.workqueue import PRIORITY_VERIFY, WorkQueue
from dvr_agent.drivers.errors import DriverError
from dvr_agent.drivers.garp import GarpSender
from dvr_agent.drivers.mac_table import MacTable
from dvr_agent.drivers.ovsdb import Ovsdb
from dvr_agent.facts import AgentConfig, Allocations, Facts
from dvr_agent.models import PayloadError
from dvr_agent.reconcile.actual import Aspect
from dvr_agent.reconcile.reconciler import PassResult, Reconciler
from dvr_agent.rpc import broker_errors, protocol
from dvr_agent.rpc.agent_clients import ServerApi
from dvr_agent.rpc.transport import get_transport
from dvr_agent.state import KeyKind, split_key

LOG = logging.getLogger(__name__)
WITHOUT_NEIGHBOURS = Aspect.NETNS | Aspect.OVS | Aspect.FLOWS
INITIAL_PASSES = 5  # pending keys (a veth waiting for the other side) settle in 2-3


class FatalError(Exception):
    """The agent cannot run; the message says why, in one line."""


class Daemon:
    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        self.host = conf.host
        self.notifier = Notifier()
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.broker_complaints = broker_errors.watch()
        try:
            self.transport = get_transport(conf)
        except oslo_messaging.InvalidTransportURL as exc:
            raise FatalError(f"[DEFAULT] transport_url is not usable: {exc}") from None
        self.api = ServerApi(self.transport, self.host, conf.agent.rpc_timeout)
        self.ovsdb = Ovsdb(conf.ovs.ovsdb_connection)
        self.netlink = NetlinkCache()
        self.garp = GarpSender(conf.agent.send_arp_for_ha, conf.agent.send_arp_interval)
        self.announcer = AnnouncementGate(
            self.garp, lambda net, ip: self.core.read(lambda f: f.floating_ip_port(net, ip)))
        self.drivers = build_drivers(self.ovsdb, conf.ovs.ovs_rundir, self.netlink,
                                     self.announcer)
        self.queue = WorkQueue()
        self.metrics = Metrics(queue_depth=lambda: len(self.queue))
        self.loop_alive = time.monotonic()
        self._between_passes = threading.Event()
        self._between_passes.set()
        self.last_pass: PassResult | None = None
        self.passes = 0
        self._threads: list[threading.Thread] = []
        self._servers: list[oslo_messaging.MessageHandlingServer] = []
        self._fip_status: dict[str, dict[str, str]] = {}
        self._stopped = False
        self.failure: str | None = None
        self.initial_changes: Counter = Counter()

    # ------------------------------------------------------------ start

    def start(self) -> None:
        started = time.monotonic()
        self._serve_metrics()
        self.notifier.status("connecting to OVSDB")
        try:
            self.ovsdb.start()
        except DriverError as exc:
            raise FatalError(f"cannot use OVSDB: {exc}") from None
        saved = self._saved_allocations()
        self.facts = Facts(self._agent_config(), saved)
        self._saved = saved
        self._saved_version = -1  # no version compared yet: the first call compares all
        self.core = AgentCore(self.facts, self.queue)
        self.fetcher = Fetcher(self.core, self.api, self.conf.agent.sync_chunk_size,
                               on_vif_details=lambda d, n, s: self.vifs.on_details(d, n, s),
                               metrics=self.metrics, rpc_timeout=self.conf.agent.rpc_timeout)
        self.vifs = VifTracker(self.core, self.fetcher, self.ovsdb,
                               self.conf.ovs.integration_bridge, self.metrics, self.announcer,
                               MacTable(self.conf.ovs.ovs_rundir))
        self.reconciler = Reconciler(self.drivers, self.core.compile, self.core.wanted,
                                     self.bridges, self._refresh_ofports,
                                     workers=self.conf.agent.workers)
        self.garp.start()
        self.notifier.status("asking the server for this host's DVR MAC")
        self._learn_dvr_macs_and_tunnels()
        self._serve_notifications()
        self.heartbeat = Heartbeat(self)
        self._spawn("heartbeat", self.heartbeat.run)
        self._spawn("fetcher", self.fetcher.run)
        self.vifs.start()
        self.notifier.status("full sync with the server")
        self.fetcher.request_full_sync()
        self.reconciler.read_ahead()  # the host, while the server answers
        # converge on complete facts only: a VIF or segment learnt a moment later would
        # mean its flows are removed by the first pass and added by the next one. The
        # ARP tables are the exception: only neighbours depend on them, and asking for
        # them (one call per subnet, 2,000 at 1,000 routers) is most of a full sync. So
        # everything but neighbours is built while they arrive, the neighbours after.
        if not self._wait_for(lambda: self.fetcher.structure_synced.wait(0.1)):
            return
        self.notifier.status("converging while the ARP tables arrive")
        keys = dict.fromkeys(self.core.wanted(), WITHOUT_NEIGHBOURS)
        keys.update(dict.fromkeys(self._take_queued(), WITHOUT_NEIGHBOURS))
        self.initial_changes = self._initial_passes(keys, report=False)
        # the flows are in place now: the canaries go beside the neighbours' pass (an
        # ovs-ofctl process a bridge, ~70 ms at 300 routers, that READY waited for)
        self.housekeeping = Housekeeping(self)
        planting = threading.Thread(target=self.housekeeping.plant_canary,
                                    name="canary-planting", daemon=True)
        planting.start()
        # (wait first: checking full_syncs first spun a core for the whole full sync)
        if not self._wait_for(lambda: self.fetcher.wait_idle(0.1) and self.fetcher.full_syncs):
            return
        self._converge()
        release_free_memory()
        self._spawn("reconciler", self._reconcile_loop)
        planting.join()
        self._spawn("housekeeping", self.housekeeping.run)
        if self.conf.agent.resync_interval:
            self._spawn("comparison", RollingComparison(self).run)
        self.ready.set()
        self.metrics.startup.set(time.monotonic() - started)
        status = self.status_line(f"ready in {time.monotonic() - started:.1f} s with "
                                  f"{sum(self.initial_changes.values())} changes")
        LOG.info("dvr-agent on %s: %s", self.host, status)
        self.notifier.ready(status)

    def _serve_metrics(self) -> None:
        port, address = self.conf.agent.metrics_port, self.conf.agent.metrics_address
        if not port:
            return
        try:
            self.metrics.serve(port, address)
        except OSError as exc:
            raise FatalError(f"[agent] metrics_port {port} on {address}: "
                             f"{exc.strerror or exc}") from None
        LOG.info("Prometheus metrics on http://%s:%d/metrics", address, port)

    def _agent_config(self) -> AgentConfig:
        ovs = self.conf.ovs
        return AgentConfig(
            host=self.host, agent_mode=self.conf.agent.agent_mode,
            local_ip=ipaddress.IPv4Address(ovs.local_ip),
            integration_bridge=ovs.integration_bridge, tunnel_bridge=ovs.tunnel_bridge,
            bridge_mappings=tuple(agent_config.bridge_mappings(self.conf).items()),
            datapath_type=ovs.datapath_type, ovs_use_veth=ovs.ovs_use_veth,
            vxlan_udp_port=ovs.vxlan_udp_port)

    def _saved_allocations(self) -> Allocations:
        """What the last run handed out; local VLANs also from OVSDB if the file is gone
        (ports carry Neutron's ``other_config:net_uuid`` beside their tag)."""
        data = statefile.load(self.conf.state_path)
        vlans = {str(k): int(v) for k, v in data.get("local_vlans", {}).items()}
        if not vlans:
            for port in self.ovsdb.ports(self.conf.ovs.integration_bridge).values():
                net = port.other_config.get("net_uuid")
                if net and port.tag:
                    vlans.setdefault(net, port.tag)
        return Allocations(local_vlans=vlans,
                           link_local={str(k): str(v)
                                       for k, v in data.get("link_local", {}).items()},
                           fip_priorities={str(k): int(v)
                                           for k, v in data.get("fip_priorities", {}).items()})

    def _learn_dvr_macs_and_tunnels(self) -> None:
        retry = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.conf.agent.dvr_mac_attempts),
            wait=tenacity.wait_exponential(multiplier=0.5, max=10),
            retry=tenacity.retry_if_exception_type(oslo_messaging.MessagingException),
            before_sleep=lambda s: LOG.warning("server not answering yet (%s): retrying",
                                               s.outcome.exception()),
            reraise=True)
        def ask() -> tuple:
            return (retry(self.api.get_dvr_mac_address_by_host),
                    retry(self.api.get_dvr_mac_address_list),
                    retry(self.api.tunnel_sync, self.conf.ovs.local_ip))
        # oslo.messaging retries a connection that cannot be made (broker down, refused, a
        # certificate not trusted) forever inside a call: bound the whole exchange
        attempts, timeout = self.conf.agent.dvr_mac_attempts, self.conf.agent.rpc_timeout
        try:
            own, macs, peers = _within(ask, attempts * timeout)
        except (*broker_errors.RPC_FAILURES, TimeoutError) as exc:
            said = self.broker_complaints.message or (
                None if isinstance(exc, oslo_messaging.MessagingException | TimeoutError)
                else str(exc))
            raise FatalError(
                f"no DVR MAC for {self.host} from the server after {attempts} attempts "
                f"({exc.__class__.__name__}"
                f"{'; the broker connection failed: ' + said if said else ''}); "
                "distributed routing cannot work without one") from None
        try:
            own_mac = models.HostMac.from_dict(own)
            all_macs = models.dvr_macs({"dvr_macs": macs})
            tunnels = models.tunnel_sync_reply(peers)
        except PayloadError as exc:
            raise FatalError(f"the server's DVR MAC or tunnel answer is unusable: {exc}") \
                from None
        LOG.info("DVR MAC of %s: %s; %d other hosts, %d tunnel peers", self.host,
                 own_mac.mac, len(all_macs) - 1, len(tunnels))
        self.core.change(lambda f: f.set_own_dvr_mac(own_mac.mac) | f.set_dvr_macs(all_macs)
                         | f.set_tunnel_peers(tunnels))

    def _serve_notifications(self) -> None:
        l3 = L3AgentNotifications(self.core, self.fetcher, self.metrics)
        ovs = OvsAgentNotifications(self.core, self.fetcher, self.vifs, self.host,
                                    self.metrics)
        self._servers = rpc_servers(self.transport, self.host, l3, ovs)
        for server in self._servers:
            server.start()

    def _wait_for(self, done: Callable[[], bool]) -> bool:
        """Poll ``done`` (it waits a little itself) until true; False if stopping."""
        while not done():
            if self.stopping.is_set():
                return False
        return True

    def _initial_passes(self, keys: dict[str, Aspect], report: bool = True) -> Counter:
        """Passes over ``keys`` until nothing is pending or failed (or INITIAL_PASSES)."""
        changes: Counter = Counter()
        for _ in range(INITIAL_PASSES):
            result = self._run_pass(keys, report)
            LOG.info("start-up pass over %d keys: %d changes in %.2f s (%s)", len(keys),
                     sum(result.changes.values()), result.seconds, result.phases_text())
            changes += result.changes
            keys = {k: a for k, a in keys.items() if k in result.pending or k in result.failed}
            if not keys:
                break
        return changes

    def _take_queued(self) -> dict[str, Aspect]:
        """What learning the facts queued, to take along into an initial pass: left in
        the queue, every key got a second, useless pass right after READY (at 1,000
        routers, seconds of reads while the first events wait)."""
        return dict(self.queue.take(len(self.queue) + 1, timeout=0))

    def _converge(self) -> None:
        """After the pass without neighbours, once every fact is in: the neighbours of
        everything wanted and whatever changed meanwhile, then what is ours but no
        longer wanted."""
        self.notifier.status("converging")
        keys = dict.fromkeys(self.core.wanted(), Aspect.NEIGH)
        for key, aspect in self._take_queued().items():
            keys[key] = keys.get(key, aspect) | aspect
        changes = self.initial_changes + self._initial_passes(keys)
        stale = self.reconciler.stale_keys()
        if stale:
            LOG.info("removing what the server no longer wants here: %s", ", ".join(sorted(stale)))
            changes += self._run_pass(dict.fromkeys(stale, Aspect.ALL)).changes
        stale_flows = self.reconciler.delete_stale_flows()
        if stale_flows:
            changes["flows"] += stale_flows
        self.initial_changes = changes
        self.reconciler.stop_reading_ahead()
        LOG.info("converged: %d changes (%s)", sum(changes.values()),
                 ", ".join(f"{k} {v}" for k, v in sorted(changes.items())) or "none")
        self.core.change_quietly(lambda f: f.forget_unclaimed_allocations() or ())
        self._persist_allocations()

    # ------------------------------------------------------------ passes

    def _reconcile_loop(self) -> None:
        while not self.stopping.is_set():
            self.loop_alive = time.monotonic()
            keys = self.queue.take(self.conf.agent.pass_max_keys, timeout=1.0)
            if keys:
                self._between_passes.clear()
                try:
                    self._run_pass(keys)
                finally:
                    self._between_passes.set()

    def yield_to_passes(self, until: float) -> None:
        """For the duties: wait until no pass is in flight, but not past ``until`` (a
        time.monotonic() deadline: a pass retried again and again must not starve them)."""
        self._between_passes.wait(max(0.0, until - time.monotonic()))

    def _run_pass(self, keys: dict[str, Aspect], report: bool = True) -> PassResult:
        """One pass; ``report`` False: neither VIFs up nor floating IPs' statuses are
        reported after it. The first pass of a start builds no neighbours yet, and a VIF
        or a floating IP is not usable before them; the pass with the neighbours reports
        them all. (Reported after the first pass, the statuses of a warm restart's 60
        floating IPs at 300 routers, one call a router, kept the fetcher busy 0.2 s that
        the neighbours' pass, and READY, waited for.)"""
        try:
            result = self.reconciler.run_pass(keys)
        except Exception as exc:  # a bug or a driver that broke mid-read: retry later
            LOG.exception("reconcile pass over %d keys failed", len(keys))
            result = PassResult(keys=len(keys), failed=dict.fromkeys(keys, exc))
        priorities = getattr(keys, "priorities", {})
        for key, summary in result.changed_keys.items():
            if priorities.get(key) == PRIORITY_VERIFY:
                LOG.warning("drift repaired on %s: %s", key, summary)
        for key, aspect in keys.items():
            if key in result.failed or key in result.pending:
                self.queue.retry(key, aspect)
            else:
                self.queue.succeeded(key)
        if result.follow_up:
            self.queue.put_many(result.follow_up, Aspect.FLOWS)
        self.metrics.pass_done(result.seconds, result.changes, len(result.failed))
        LOG.debug("pass over %d keys: %d changes in %.3f s (%s)", len(keys),
                  result.total_changes, result.seconds, result.phases_text())
        self.passes += 1
        self.last_pass = result
        if report:
            self.vifs.after_pass(self.queue.keys() | set(result.failed) | set(result.pending))
            self._report_fip_statuses(keys, result)
        self._persist_allocations()
        return result

    def _refresh_ofports(self, flows_read: frozenset[str]) -> frozenset[str]:
        """Keys whose flows new ofports change: learnt from the replica now, or learnt by
        the OVSDB thread while the pass waited for ovs-vswitchd and queued since; those
        of the pass's keys whose flows it read (``flows_read``) are taken back into it."""
        ports = self.ovsdb.ports()
        touched = self.core.change_quietly(
            lambda f: frozenset().union(*(f.set_ofport(n, p.ofport) for n, p in ports.items())))
        return touched | self.queue.take_into_pass(flows_read, Aspect.FLOWS)

    def bridges(self) -> list[str]:
        """The bridges this agent programs: br-int, br-tun and each physical bridge."""
        return [self.conf.ovs.integration_bridge, self.conf.ovs.tunnel_bridge,
                *agent_config.bridge_mappings(self.conf).values()]

    def _report_fip_statuses(self, keys, result: PassResult) -> None:
        """ACTIVE for the floating IPs a router routes here, DOWN for those it no longer
        does; only changes are sent (update_floatingip_statuses)."""
        for key in keys:
            kind, router_id = split_key(key)
            if kind is not KeyKind.ROUTER or key in result.failed or key in result.pending:
                continue
            now = self.core.read(lambda f, r=router_id: _active_fips(f, r))
            before = self._fip_status.get(router_id, {})
            changed = {fid: protocol.FLOATINGIP_STATUS_ACTIVE for fid in now
                       if before.get(fid) != protocol.FLOATINGIP_STATUS_ACTIVE}
            changed |= {fid: protocol.FLOATINGIP_STATUS_DOWN for fid in before if fid not in now}
            if changed:
                self.fetcher.report_fip_statuses(router_id, changed)
            if now:
                self._fip_status[router_id] = dict.fromkeys(now, protocol.FLOATINGIP_STATUS_ACTIVE)
            else:
                self._fip_status.pop(router_id, None)

    def _persist_allocations(self) -> None:
        """Save the pools when they changed. Most passes allocate nothing, and building
        the snapshot to compare was 8 % of an ARP event's pass at N = 300 (py-spy)."""
        version = self.core.read(lambda f: f.allocations_version())
        if version == self._saved_version:
            return
        current = self.core.read(lambda f: f.allocations())
        if current != self._saved:
            statefile.save(self.conf.state_path,
                           {"local_vlans": dict(current.local_vlans),
                            "link_local": dict(current.link_local),
                            "fip_priorities": dict(current.fip_priorities)})
            self._saved = current
        self._saved_version = version

    # ------------------------------------------------------------ status and stop

    def status_line(self, prefix: str = "") -> str:
        routers = self.core.read(lambda f: len(f.routers))
        last = self.fetcher.last_full_sync
        age = f"last full sync {time.monotonic() - last:.0f} s ago" if last else "no full sync"
        parts = [prefix] if prefix else []
        parts += [f"{routers} routers", f"{self.vifs.count()} VIFs", age,
                  f"{len(self.queue)} queued"]
        return ", ".join(parts)

    def _spawn(self, name: str, target) -> None:
        """A thread of the daemon. Each catches what it expects; anything else is a bug, and
        the agent then stops with an error rather than running on without that duty: its
        supervisor restarts it, and a restart never disturbs the data plane."""
        def guarded() -> None:
            try:
                target()
            except Exception as exc:
                LOG.critical("the %s thread failed: stopping so that a restart recovers",
                             name, exc_info=True)
                self.failure = f"the {name} thread failed: {exc.__class__.__name__}: {exc}"
                self.stopping.set()
        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _stop_rpc(self) -> None:
        stoppers = [threading.Thread(target=server.stop, daemon=True)
                    for server in self._servers]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        for server in self._servers:
            server.wait()
        self.transport.cleanup()

    def stop(self) -> None:
        """Stop serving; leave every namespace, port and flow exactly as it is."""
        if self._stopped:
            return
        self._stopped = True
        LOG.info("stopping; the data plane stays as it is")
        # a stop that hangs says where: every thread's stack goes to stderr after 4 s
        faulthandler.dump_traceback_later(4, exit=False)
        self.stopping.set()
        self.notifier.stopping()
        self.queue.close()
        if hasattr(self, "fetcher"):
            self.fetcher.stop()
        # oslo.messaging listeners notice a stop only at their next poll (up to 5 s each):
        # stop them all at once, and give them 2 s; the process exits regardless
        rpc_down = threading.Thread(target=self._stop_rpc, name="rpc-stop", daemon=True)
        rpc_down.start()
        deadline = time.monotonic() + 2
        for thread in [rpc_down, *self._threads]:
            thread.join(max(0.0, deadline - time.monotonic()))
        if hasattr(self, "reconciler"):
            self.reconciler.close(wait=False)
        self.garp.stop()
        self.ovsdb.stop()
        self.netlink.close()
        self.metrics.stop()
        faulthandler.cancel_dump_traceback_later()


def _within(work, seconds: float):
    """``work()`` on a thread of its own; TimeoutError if it is not done in time."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="startup-rpc", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _active_fips(facts: Facts, router_id: str) -> set[str]:
    """Floating IPs set up here: on the router's qg-, or routed through fip-E."""
    router = facts.routers.get(router_id)
    if router is None:
        return set()
    active = {fip.id for fip in facts.central_fips(router)}
    if router.external_network_id in facts.fip_networks():
        active |= {fip.id for fip in facts.local_fips(router)
                   if facts.fip_priority(fip) is not None}
    return active
