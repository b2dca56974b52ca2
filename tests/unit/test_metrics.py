"""The agent's metrics: what an event's latency means, and what the endpoint exposes."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dvr_agent.agent.metrics import EventTrace, Metrics


def _samples(metrics: Metrics) -> dict[tuple[str, tuple], float]:
    text = generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class _Observed(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_an_event_is_observed_once_when_every_key_it_touched_is_done():
    observed = _Observed()
    trace = EventTrace("add_arp_entry", observed)
    trace.touch({"router:a", "router:b"})
    trace.release()
    trace.key_done("router:a")
    assert observed == []
    trace.key_done("router:b")
    trace.key_done("router:b")  # a second pass of the same key changes nothing
    assert len(observed) == 1 and observed[0] >= 0


def test_an_event_that_touched_no_key_is_done_when_released():
    observed = _Observed()
    trace = EventTrace("routers_updated", observed)
    trace.touch(set())
    trace.release()
    assert len(observed) == 1


def test_an_event_held_by_the_fetcher_waits_for_what_the_fetch_brings():
    observed = _Observed()
    trace = EventTrace("routers_updated", observed)
    trace.hold()  # the fetcher took it
    trace.release()  # the endpoint is done with it
    trace.touch({"router:a"})  # the server's answer changed a router
    trace.key_done("router:a")
    assert observed == []  # the fetch is not over: its ARP tables may still come
    trace.touch({"router:a"})
    trace.release()
    trace.key_done("router:a")
    assert len(observed) == 1


def test_passes_count_changes_per_area_and_failed_keys():
    metrics = Metrics(queue_depth=lambda: 7)
    metrics.pass_done(0.25, {"neighbours": 40, "flows": 5}, failed=2)
    metrics.pass_done(0.05, {"neighbours": 1}, failed=0)
    samples = _samples(metrics)
    assert samples[("dvr_agent_reconcile_passes_total", ())] == 2
    assert samples[("dvr_agent_changes_total", (("area", "neighbours"),))] == 41
    assert samples[("dvr_agent_changes_total", (("area", "flows"),))] == 5
    assert samples[("dvr_agent_errors_total", (("stage", "reconcile"),))] == 2
    assert samples[("dvr_agent_reconcile_pass_seconds_sum", ())] == 0.3
    assert samples[("dvr_agent_queue_depth", ())] == 7


def test_an_event_trace_feeds_the_latency_histogram_of_its_event():
    metrics = Metrics()
    trace = metrics.trace("del_arp_entry")
    trace.touch({"router:a"})
    trace.release()
    trace.key_done("router:a")
    samples = _samples(metrics)
    assert samples[("dvr_agent_event_latency_seconds_count", (("event", "del_arp_entry"),))] == 1


def test_two_daemons_in_one_process_keep_their_own_metrics():
    first, second = Metrics(), Metrics()
    first.error("server")
    assert ("dvr_agent_errors_total", (("stage", "server"),)) in _samples(first)
    assert ("dvr_agent_errors_total", (("stage", "server"),)) not in _samples(second)
