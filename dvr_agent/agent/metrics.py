"""The agent's Prometheus metrics: how long it takes to converge and to follow events.

Kept in memory always (a few counters cost nothing) and served over HTTP only when
``[agent] metrics_port`` is set (off by default: an open port is an operator's choice).
Each daemon has a registry of its own, so nothing leaks between instances in one process.

What an operator graphs:
- ``dvr_agent_full_sync_seconds`` (histogram): get_router_ids + sync_routers, each time;
- ``dvr_agent_startup_seconds``: from start to READY (first full sync and convergence);
- ``dvr_agent_event_latency_seconds{event}`` (histogram): from the moment a notification
  (or an OVSDB port event) reached the agent to the moment every key it touched was
  applied to the data plane; for ``vif_plugged``, until the port was reported up;
- ``dvr_agent_queue_depth``: keys waiting for a reconcile pass;
- ``dvr_agent_reconcile_passes_total``, ``dvr_agent_reconcile_pass_seconds``;
- ``dvr_agent_changes_total{area}``: changes applied, per driver area (namespaces, links,
  addresses, routes, rules, neighbours, sysctls, nat, ovsdb, flows);
- ``dvr_agent_errors_total{stage}``: keys whose pass failed (``reconcile``), server or
  broker unreachable (``server``), notifications rejected or failed (``notification``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

EVENT_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
SYNC_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    def __init__(self, queue_depth: Callable[[], int] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.full_sync = Histogram("dvr_agent_full_sync_seconds",
                                   "Duration of a full sync with the server",
                                   buckets=SYNC_BUCKETS, registry=r)
        self.startup = Gauge("dvr_agent_startup_seconds",
                             "From start to READY: first full sync and convergence", registry=r)
        self.event_latency = Histogram(
            "dvr_agent_event_latency_seconds",
            "From a notification or port event received to the data plane done",
            ["event"], buckets=EVENT_BUCKETS, registry=r)
        self.queue_depth = Gauge("dvr_agent_queue_depth",
                                 "Keys waiting for a reconcile pass", registry=r)
        if queue_depth is not None:
            self.queue_depth.set_function(queue_depth)
        self.passes = Counter("dvr_agent_reconcile_passes", "Reconcile passes", registry=r)
        self.pass_seconds = Histogram("dvr_agent_reconcile_pass_seconds",
                                      "Duration of a reconcile pass", buckets=EVENT_BUCKETS,
                                      registry=r)
        self.changes = Counter("dvr_agent_changes", "Changes applied, per driver area",
                               ["area"], registry=r)
        self.errors = Counter("dvr_agent_errors", "Errors, per stage", ["stage"], registry=r)
        self._http = None

    # ------------------------------------------------------------ hooks

    def pass_done(self, seconds: float, changes: Mapping[str, int], failed: int) -> None:
        self.passes.inc()
        self.pass_seconds.observe(seconds)
        for area, count in changes.items():
            self.changes.labels(area=area).inc(count)
        if failed:
            self.errors.labels(stage="reconcile").inc(failed)

    def error(self, stage: str) -> None:
        self.errors.labels(stage=stage).inc()

    def trace(self, event: str) -> EventTrace:
        """A trace of one event received now (see EventTrace)."""
        return EventTrace(event, self.event_latency.labels(event=event).observe)

    # ------------------------------------------------------------ the endpoint

    def serve(self, port: int, address: str) -> None:
        """Serve /metrics on ``address:port`` from a thread of prometheus_client's."""
        self._http, _thread = start_http_server(port, address, registry=self.registry)

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


class EventTrace:
    """One event on its way to the data plane, done when every key it touched is.

    Whoever receives the event makes the trace and *holds* it while it turns the event
    into facts (directly, or through the fetcher and the server's answers); every facts
    change made for it adds the keys it touched, and each key's successful pass removes
    its key. Once released with nothing left to wait for, the latency is observed once.
    An event that touched no key (nothing to change here) is done when released.
    """

    __slots__ = ("_holds", "_lock", "_observe", "_waiting", "event", "received")

    def __init__(self, event: str, observe: Callable[[float], None]) -> None:
        self.event = event
        self.received = time.monotonic()
        self._observe = observe
        self._waiting: set[str] = set()
        self._holds = 1
        self._lock = threading.Lock()

    def touch(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._waiting.update(keys)

    def hold(self) -> None:
        with self._lock:
            self._holds += 1

    def release(self) -> None:
        with self._lock:
            self._holds -= 1
            done = self._holds == 0 and not self._waiting
        if done:
            self._observe(time.monotonic() - self.received)

    def key_done(self, key: str) -> None:
        with self._lock:
            if key not in self._waiting:
                return
            self._waiting.discard(key)
            done = self._holds == 0 and not self._waiting
        if done:
            self._observe(time.monotonic() - self.received)
