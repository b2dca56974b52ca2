"""A bridge's large flow change goes as a few bundles side by side, each key's flows
whole in one of them (ovs-vswitchd takes 50 messages of a connection per main-loop
round: one bundle of 10,000 flows took 3 s in a cold sync at 1,000 routers)."""

from __future__ import annotations

from dvr_agent.reconcile import apply as apply_module
from dvr_agent.reconcile.actual import Aspect
from dvr_agent.reconcile.apply import PARALLEL_BUNDLES, split_by_key
from dvr_agent.reconcile.reconciler import Reconciler
from dvr_agent.state import Flow, KeyState, cookie_for
from tests.unit.fake_dataplane import FakeHost


def _flows(key: str, count: int, bridge: str = "br-tun") -> list[Flow]:
    """``count`` flows of ``key`` (named ``router:N``), none with another key's match."""
    first = int(key.split(":")[1]) * 1000
    return [Flow(bridge, 4, 1, (f"tun_id={first + i:#x}",), f"resubmit(,{i % 5 + 2})",
                 cookie_for(key)) for i in range(count)]


def test_a_small_change_stays_one_bundle():
    by_key = {f"router:{i}": (_flows(f"router:{i}", 20), []) for i in range(10)}
    bundles = split_by_key(by_key)
    assert len(bundles) == 1
    assert set(bundles[0][0]) == {f for add, _ in by_key.values() for f in add}


def test_a_large_change_is_split_evenly_and_every_key_stays_whole():
    by_key = {f"router:{i}": (_flows(f"router:{i}", 20 + i % 7),
                              _flows(f"router:{i}", 3)[:i % 2]) for i in range(200)}
    bundles = split_by_key(by_key)
    assert len(bundles) == PARALLEL_BUNDLES
    cookies_seen: dict[int, int] = {}
    for n, (add, delete) in enumerate(bundles):
        for flow in (*add, *delete):
            assert cookies_seen.setdefault(flow.cookie, n) == n, "a key split over bundles"
    added = [f for add, _ in bundles for f in add]
    deleted = [f for _, delete in bundles for f in delete]
    assert len(added) == len(set(added)) and set(added) == \
        {f for add, _ in by_key.values() for f in add}
    assert len(deleted) == len(set(deleted)) and set(deleted) == \
        {f for _, delete in by_key.values() for f in delete}
    sizes = [len(a) + len(d) for a, d in bundles]
    assert max(sizes) - min(sizes) <= 30  # no key is larger than 30 flows


def test_a_pass_over_a_large_change_writes_every_flow_in_several_bundles(monkeypatch):
    monkeypatch.setattr(apply_module, "SPLIT_ABOVE_FLOWS", 100)
    host = FakeHost()
    keys = [f"router:{i:04d}" for i in range(40)]
    wanted = {k: frozenset(_flows(k, 10) + _flows(k, 2, "br-int")) for k in keys}
    rec = Reconciler(host.drivers(), lambda ks: {k: KeyState(key=k, flows=wanted[k]) for k in ks},
                     lambda: frozenset(keys), lambda: ["br-int", "br-tun"],
                     lambda _keys: frozenset(), workers=2)
    try:
        result = rec.run_pass(dict.fromkeys(keys, Aspect.ALL))
        assert not result.failed
        assert host.flows["br-tun"] | host.flows["br-int"] == frozenset().union(*wanted.values())
        # br-tun's 400 flows in PARALLEL_BUNDLES bundles, br-int's 80 in one
        assert host.ovs_calls.count("flows") == PARALLEL_BUNDLES + 1
    finally:
        rec.close()
