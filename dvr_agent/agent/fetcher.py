"""Everything the agent asks the server, on one thread: coalesced, retried, never destructive.

Notifications mostly say "router R changed": the facts come from ``sync_routers``, as
with Neutron's agents. Requests are sets, so ten ``routers_updated`` for one router
before the fetch make one call. After routers change, what they imply is fetched too:
the ARP table of a new subnet (``get_ports_by_subnet``), how a network is carried
(``get_devices_details_list_and_failed_devices`` for one of its ports), our floating-IP
gateway port on an external network (``get_agent_gateway_port``).

When the server or the broker cannot be reached, the work stays queued and is retried
with a growing wait. Nothing is ever removed from the host because a call failed: a
router goes only when the server answers without it (Neutron bug 1871850).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import oslo_messaging

from dvr_agent import models
from dvr_agent.agent.core import AgentCore
from dvr_agent.agent.metrics import EventTrace, Metrics
from dvr_agent.agent.workqueue import PRIORITY_RESYNC
from dvr_agent.facts import Facts
from dvr_agent.models import PayloadError
from dvr_agent.reconcile.actual import Aspect
from dvr_agent.rpc import broker_errors
from dvr_agent.rpc.agent_clients import BulkUnsupported, ServerApi

LOG = logging.getLogger(__name__)

MIN_CHUNK = 32
ARP_CALLS_IN_FLIGHT = 8
BULK_SUBNETS = 100  # ARP tables per get_ports_by_subnets call (~2,100 ports, ~0.5 MB)
RETRY_FIRST, RETRY_MAX = 0.5, 5.0  # back within seconds of the server's return
# get_router_ids is a query of milliseconds. Its first try times out this soon: a request
# published while the server's consumer was away (its broker just restarted, say) is lost,
# and waiting rpc_timeout for it held everything behind it, VIF details included, for a
# minute. Each retry doubles it, up to rpc_timeout, so a slow server still gets its time.
PROBE_TIMEOUT = 5.0


class ServerUnavailable(Exception):
    """The server or the broker did not answer; the work is kept for later."""


@dataclass
class _Work:
    full_sync: bool = False
    routers: set[str] = field(default_factory=set)
    devices: dict[str, str] = field(default_factory=dict)  # port id -> port name on br-int
    devices_up: set[str] = field(default_factory=set)
    devices_down: set[str] = field(default_factory=set)
    fip_statuses: dict[str, dict[str, str]] = field(default_factory=dict)  # router -> fip -> s
    traces: list[EventTrace] = field(default_factory=list)  # events waiting for this work

    def __bool__(self) -> bool:
        return bool(self.full_sync or self.routers or self.devices or self.devices_up
                    or self.devices_down or self.fip_statuses)


class Fetcher:
    def __init__(self, core: AgentCore, api: ServerApi, chunk_size: int,
                 on_vif_details: Callable[[models.DeviceDetails, str, models.Segment], None],
                 metrics: Metrics, rpc_timeout: float = 60.0) -> None:
        self._core = core
        self._rpc_timeout = rpc_timeout
        self._api = api
        self._metrics = metrics
        self._chunk = chunk_size
        self._on_vif_details = on_vif_details
        self._work = _Work()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False
        self._failures = 0
        self._calls = ThreadPoolExecutor(ARP_CALLS_IN_FLIGHT, thread_name_prefix="fetch")
        self._bulk_arp_tables = True  # until the server says it has no such call
        self.full_syncs = 0
        # set once a full sync's routers, VIF details, segments and gateway ports are in
        # (what all but neighbours depend on); their ARP tables may still be arriving
        self.structure_synced = threading.Event()
        self.last_full_sync: float | None = None  # monotonic time of the last success
        self.last_full_sync_seconds: float | None = None

    # ------------------------------------------------------------ requests (any thread)

    def request_full_sync(self) -> None:
        self._add(lambda w: setattr(w, "full_sync", True))

    def request_routers(self, router_ids, trace: EventTrace | None = None) -> None:
        """Fetch these routers; ``trace`` (the event asking) waits for what follows."""
        def add(w: _Work) -> None:
            w.routers.update(router_ids)
            if trace is not None:
                trace.hold()
                w.traces.append(trace)
        self._add(add)

    def request_device(self, port_id: str, port_name: str) -> None:
        self._add(lambda w: w.devices.__setitem__(port_id, port_name))

    def report_devices(self, up=(), down=()) -> None:
        def add(w: _Work) -> None:
            w.devices_up.update(up)
            w.devices_up.difference_update(down)
            w.devices_down.update(down)
            w.devices_down.difference_update(up)
        self._add(add)

    def report_fip_statuses(self, router_id: str, statuses: dict[str, str]) -> None:
        self._add(lambda w: w.fip_statuses.setdefault(router_id, {}).update(statuses))

    def _add(self, change: Callable[[_Work], None]) -> None:
        with self._cond:
            change(self._work)
            self._cond.notify()

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued or in progress (the facts are as complete as the
        server makes them: routers, their ARP tables, segments, VIF details)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._stopping or (not self._busy and not self._work), timeout)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._calls.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ the thread

    def run(self) -> None:
        while True:
            with self._cond:
                while not self._work and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                work, self._work = self._work, _Work()
                self._busy = True
            try:
                self.process(work)
                self._failures = 0
                for trace in work.traces:
                    trace.release()
            except ServerUnavailable as exc:
                self._metrics.error("server")
                self._requeue(work)
                delay = min(RETRY_FIRST * 2 ** self._failures, RETRY_MAX)
                self._failures += 1
                LOG.warning("server unreachable (%s); keeping the data plane as it is and "
                            "retrying in %.1f s", exc, delay)
                with self._cond:
                    self._cond.wait_for(lambda: self._stopping, timeout=delay)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def process(self, work: _Work) -> None:
        """Do one batch of work; on ServerUnavailable what is left is put back by run()."""
        if work.full_sync:
            self._full_sync()
            work.full_sync = False
            work.routers.clear()
        if work.routers:
            self._fetch_routers(sorted(work.routers), work.traces)
            work.routers.clear()
        if work.devices:
            self._fetch_devices(dict(work.devices), work.traces)
            work.devices.clear()
        self._fill_what_routers_imply(work.traces)
        if work.devices_up or work.devices_down:
            self._call(self._api.update_device_list, sorted(work.devices_up),
                       sorted(work.devices_down))
            work.devices_up.clear()
            work.devices_down.clear()
        for router_id in sorted(work.fip_statuses):
            self._call(self._api.update_floatingip_statuses, router_id,
                       work.fip_statuses[router_id])
            del work.fip_statuses[router_id]

    def _requeue(self, work: _Work) -> None:
        def merge(w: _Work) -> None:
            w.full_sync |= work.full_sync
            w.routers |= work.routers
            w.devices = {**work.devices, **w.devices}
            w.devices_up |= work.devices_up - w.devices_down
            w.devices_down |= work.devices_down - w.devices_up
            for router_id, statuses in work.fip_statuses.items():
                w.fip_statuses[router_id] = {**statuses, **w.fip_statuses.get(router_id, {})}
            w.traces = work.traces + w.traces
        self._add(merge)

    @staticmethod
    def _call(method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except broker_errors.RPC_FAILURES as exc:
            raise ServerUnavailable(f"{method.__name__}: {exc.__class__.__name__}: {exc}") \
                from exc

    def _probe_timeout(self) -> float:
        """get_router_ids' timeout: PROBE_TIMEOUT, doubled by each failure in a row."""
        return min(PROBE_TIMEOUT * 2 ** self._failures, self._rpc_timeout)

    # ------------------------------------------------------------ routers

    def _full_sync(self) -> None:
        """get_router_ids, then sync_routers in chunks (halved on timeout, Neutron bug 1516260)."""
        started = time.monotonic()
        ids = self._call(self._api.get_router_ids, timeout=self._probe_timeout())
        try:
            router_ids = sorted(set(models.router_ids({"routers": ids})))
        except PayloadError as exc:
            LOG.error("get_router_ids answered something unusable (%s); full sync skipped", exc)
            return
        routers: list[models.Router] = []
        chunk, i = self._chunk, 0
        while i < len(router_ids):
            part = router_ids[i:i + chunk]
            try:
                reply = self._api.sync_routers(part)
            except oslo_messaging.MessagingTimeout:
                if chunk <= MIN_CHUNK:
                    raise ServerUnavailable("sync_routers timed out at the smallest chunk")\
                        from None
                chunk = max(chunk // 2, MIN_CHUNK)
                LOG.warning("sync_routers of %d routers timed out: chunks of %d now",
                            len(part), chunk)
                continue
            except broker_errors.RPC_FAILURES as exc:
                raise ServerUnavailable(f"sync_routers: {exc}") from exc
            parsed, keep = self._parse_routers(reply, part)
            routers += parsed + self._core.read(
                lambda f, k=keep: [f.routers[r] for r in sorted(k) if r in f.routers])
            i += len(part)
        def resync(facts: Facts):
            facts.arp.expire_all()  # add/del_arp_entry may have been lost meanwhile
            return facts.set_routers(routers)
        keys = self._core.change(resync, priority=PRIORITY_RESYNC)
        self.full_syncs += 1
        self.last_full_sync = time.monotonic()
        self.last_full_sync_seconds = self.last_full_sync - started
        self._metrics.full_sync.observe(self.last_full_sync_seconds)
        LOG.info("full sync: %d routers from the server, %d keys touched, %.2f s",
                 len(routers), len(keys), self.last_full_sync_seconds)

    def _fetch_routers(self, router_ids: list[str], traces: list[EventTrace]) -> None:
        reply = self._call(self._api.sync_routers, router_ids)
        routers, keep = self._parse_routers(reply, router_ids)
        gone = set(router_ids) - {r.id for r in routers} - keep  # the server says: not here

        def update(facts: Facts) -> set[str]:
            keys: set[str] = set()
            for router in routers:
                keys |= facts.update_router(router)
            for router_id in sorted(gone):
                keys |= facts.remove_router(router_id)
            return keys
        self._core.change(update, traces=traces)

    @staticmethod
    def _parse_routers(reply, requested: list[str]) -> tuple[list[models.Router], set[str]]:
        """(routers that parse, ids to leave as they are on the host).

        A router whose payload is rejected is logged and left untouched, neither updated
        nor removed: a bad answer must not take a working router down. Which router that
        was is known only from an ``id`` among those asked for; any other (``""``, a
        stranger's, none) leaves every router asked for as it is, or a reply such as
        ``[{"id": ""}]`` would read as "none of them is here" and remove them all.
        """
        if not isinstance(reply, list):
            LOG.error("sync_routers answered %s, not a list: ignored", type(reply).__name__)
            return [], set(requested)
        asked = set(requested)
        routers, keep = [], set()
        for i, item in enumerate(reply):
            try:
                routers.append(models.Router.from_dict(item))
            except PayloadError as exc:
                router_id = item.get("id") if isinstance(item, dict) else None
                if isinstance(router_id, str) and router_id in asked:
                    LOG.error("sync_routers: routers[%d] (%s) rejected, the router stays "
                              "as it is: %s", i, router_id, exc)
                    keep.add(router_id)
                else:
                    LOG.error("sync_routers: routers[%d] rejected and not one of the %d "
                              "asked for by id: all of them stay as they are: %s",
                              i, len(asked), exc)
                    keep |= asked
        return routers, keep

    # ------------------------------------------------------------ what routers imply

    def _fill_what_routers_imply(self, traces: list[EventTrace]) -> None:
        subnets, segments, gateways = self._core.read(
            lambda f: (sorted(f.subnets_without_arp_table()), _ports_without_segment(f),
                       _fip_networks_without_gateway(f)))
        if segments:
            self._fetch_devices({port_id: "" for port_id in segments}, traces)
        for network_id in gateways:
            reply = self._call(self._api.get_agent_gateway_port, network_id)
            try:
                port = models.Port.from_dict(reply) if reply else None
            except PayloadError as exc:
                LOG.error("get_agent_gateway_port(%s) answer rejected: %s", network_id, exc)
                continue
            if port is None:
                LOG.warning("the server has no floating-IP gateway port for this host on "
                            "%s: its floating IPs wait", network_id)
            self._core.change(lambda f, n=network_id, p=port: f.set_fip_gateway_port(n, p),
                              traces=traces)
        if self.full_syncs:
            self.structure_synced.set()
        self.fetch_arp_tables(subnets, traces)

    def fetch_arp_tables(self, subnets: list[str], traces: list[EventTrace]) -> None:
        """The ARP tables of ``subnets``: BULK_SUBNETS per call where the server can, else
        one ``get_ports_by_subnet`` each (Neutron's API), ARP_CALLS_IN_FLIGHT at a time.

        A host with 1,000 routers has 2,000 subnets: one call each, one after the other,
        waited out a broker round trip and the server's query each (37 s in all;
        benchmarks/README.md, profile 3); in flight together, 17 s; in bulk, fix 13.
        """
        if not subnets:
            return
        started, count = time.monotonic(), len(subnets)
        if self._bulk_arp_tables:
            try:
                self._in_flight(self._fetch_arp_tables_in_bulk, traces,
                                [subnets[i:i + BULK_SUBNETS]
                                 for i in range(0, len(subnets), BULK_SUBNETS)])
                subnets = []
            except BulkUnsupported as exc:
                self._bulk_arp_tables = False
                LOG.info("the server has no get_ports_by_subnets (%s): asking for ARP "
                         "tables one subnet per call, as Neutron's agents do", exc)
        self._in_flight(self._fetch_arp_table, traces, subnets)
        if count > 1:  # (a start, a resync, a router with several subnets)
            LOG.info("ARP tables of %d subnets in %.2f s", count, time.monotonic() - started)

    def _in_flight(self, fetch: Callable[[Any, list[EventTrace]], None],
                   traces: list[EventTrace], items: list) -> None:
        """``fetch(item, traces)`` for each item, ARP_CALLS_IN_FLIGHT at a time (the
        server builds one answer while the agent parses another)."""
        if len(items) <= 1:
            for item in items:
                fetch(item, traces)
            return
        futures = [self._calls.submit(fetch, item, traces) for item in items]
        failures = [exc for exc in (f.exception() for f in futures) if exc is not None]
        if failures:  # the tables still missing are asked for again with the retry
            raise failures[0]

    def _fetch_arp_table(self, subnet_id: str, traces: list[EventTrace]) -> None:
        reply = self._call(self._api.get_ports_by_subnet, subnet_id)
        self._take_arp_table(subnet_id, reply, f"get_ports_by_subnet({subnet_id})", traces)

    def _fetch_arp_tables_in_bulk(self, subnets: list[str], traces: list[EventTrace]) -> None:
        reply = self._call(self._api.get_ports_by_subnets, subnets)
        if not isinstance(reply, dict):
            LOG.error("get_ports_by_subnets answered %s, not a mapping: ignored (asked again "
                      "with the next change)", type(reply).__name__)
            return
        for subnet_id in subnets:
            if subnet_id not in reply:
                LOG.error("get_ports_by_subnets left out subnet %s: its ARP table is asked "
                          "for again with the next change", subnet_id)
                continue
            self._take_arp_table(subnet_id, reply[subnet_id],
                                 f"get_ports_by_subnets[{subnet_id}]", traces)

    def _take_arp_table(self, subnet_id: str, reply: Any, what: str,
                        traces: list[EventTrace]) -> None:
        ports = _parse_list(reply, models.Port.from_dict, what)
        if ports is not None:
            self._core.change(lambda f: f.set_subnet_ports(subnet_id, ports),
                              aspect=Aspect.NEIGH, traces=traces)

    def _fetch_devices(self, devices: dict[str, str], traces: list[EventTrace]) -> None:
        """Device details: the segment of each port's network; VIFs also become facts."""
        reply = self._call(self._api.get_devices_details, sorted(devices))
        try:
            details = models.DevicesDetails.from_dict(reply)
        except PayloadError as exc:
            LOG.error("device details rejected: %s", exc)
            return
        for device in details.devices:
            segment = models.Segment(network_type=device.network_type,
                                     segmentation_id=device.segmentation_id,
                                     physical_network=device.physical_network, mtu=device.mtu)
            if devices.get(device.port_id):
                # learnt with the VIF, in one change: learnt apart, the segment's pass
                # started at once and the VIF's flows needed one more (a VM port's latency)
                self._on_vif_details(device, devices[device.port_id], segment)
            else:
                self._core.change(lambda f, d=device, s=segment: f.set_segment(d.network_id, s),
                                  traces=traces)
        for port_id in (*details.unknown, *details.failed):
            LOG.warning("the server knows no port %s on this host: left alone", port_id)


def _parse_list(reply, parse, what: str):
    if not isinstance(reply, list):
        LOG.error("%s answered %s, not a list: ignored", what, type(reply).__name__)
        return None
    try:
        return [parse(item) for item in reply]
    except PayloadError as exc:
        LOG.error("%s answer rejected: %s", what, exc)
        return None


def _ports_without_segment(facts: Facts) -> list[str]:
    """One port id per network of our routers whose segment we do not know yet."""
    wanted: dict[str, str] = {}
    for router in facts.routers.values():
        ports = [*router.interfaces, *router.snat_interfaces]
        if router.gw_port is not None and facts.hosts_gateway(router):
            ports.append(router.gw_port)
        ports += router.fip_agent_interfaces
        for port in ports:
            if facts.segment(port.network_id) is None:
                wanted.setdefault(port.network_id, port.id)
    return sorted(wanted.values())


def _fip_networks_without_gateway(facts: Facts) -> list[str]:
    return sorted({r.external_network_id for r in facts.routers.values()
                   if r.external_network_id and facts.local_fips(r)
                   and facts.fip_gateway_port(r.external_network_id) is None})
