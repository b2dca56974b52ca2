"""A bridge's large flow change goes as a few bundles side by side, each key's flows
whole in one of them (ovs-vswitchd takes 50 messages of a connection per main-loop
round: one bundle of 10,000 flows took 3 s in a cold sync at 1,000 routers)."""

from __future__ import annotations

import pytest

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


def _shared(key: str) -> Flow:
    """A flow whose ident every key names (as two routers' ARP-reply flow on a network)."""
    return Flow("br-tun", 3, 5, ("dl_vlan=1", "dl_dst=fa:16:3f:00:00:01"),
                f"mod_dl_dst:fa:16:3e:00:00:{int(key.split(':')[1]):02x},output:1",
                cookie_for(key))


def test_a_small_change_stays_one_bundle():
    by_key = {f"router:{i}": (_flows(f"router:{i}", 20), []) for i in range(10)}
    bundles = split_by_key(by_key)
    assert len(bundles) == 1
    assert set(bundles[0].add) == {f for add, _ in by_key.values() for f in add}
    assert sorted(bundles[0].keys) == sorted(by_key)


def test_a_large_change_is_split_evenly_and_every_key_stays_whole():
    by_key = {f"router:{i}": (_flows(f"router:{i}", 20 + i % 7),
                              _flows(f"router:{i}", 3)[:i % 2]) for i in range(200)}
    bundles = split_by_key(by_key)
    assert len(bundles) == PARALLEL_BUNDLES
    for bundle in bundles:
        assert {f.cookie for f in (*bundle.add, *bundle.delete)} == \
            {cookie_for(k) for k in bundle.keys}, "a key split over bundles"
    added = [f for b in bundles for f in b.add]
    deleted = [f for b in bundles for f in b.delete]
    assert len(added) == len(set(added)) and set(added) == \
        {f for add, _ in by_key.values() for f in add}
    assert len(deleted) == len(set(deleted)) and set(deleted) == \
        {f for _, delete in by_key.values() for f in delete}
    sizes = [b.size for b in bundles]
    assert max(sizes) - min(sizes) <= 30  # no key is larger than 30 flows


def test_keys_naming_one_ident_share_a_bundle():
    """Apart, the last bundle committed would win; together, the bundle is refused as
    one bundle always was, and the keys are retried one by one."""
    by_key = {f"router:{i}": (_flows(f"router:{i}", 30), []) for i in range(200)}
    for key in ("router:3", "router:150"):
        by_key[key][0].append(_shared(key))
    bundles = split_by_key(by_key)
    assert len(bundles) == PARALLEL_BUNDLES
    assert [b for b in bundles if "router:3" in b.keys] == \
        [b for b in bundles if "router:150" in b.keys]


def _reconciler(host, wanted):
    return Reconciler(host.drivers(),
                      lambda ks: {k: KeyState(key=k, flows=wanted[k]) for k in ks},
                      lambda: frozenset(wanted), lambda: ["br-int", "br-tun"],
                      lambda _keys: frozenset(), workers=2)


@pytest.fixture
def small_split(monkeypatch):
    monkeypatch.setattr(apply_module, "SPLIT_ABOVE_FLOWS", 100)


def test_a_pass_over_a_large_change_writes_every_flow_in_several_bundles(small_split):
    host = FakeHost()
    keys = [f"router:{i:04d}" for i in range(40)]
    wanted = {k: frozenset(_flows(k, 10) + _flows(k, 2, "br-int")) for k in keys}
    rec = _reconciler(host, wanted)
    try:
        result = rec.run_pass(dict.fromkeys(keys, Aspect.ALL))
        assert not result.failed
        assert host.flows["br-tun"] | host.flows["br-int"] == frozenset().union(*wanted.values())
        # br-tun's 400 flows in PARALLEL_BUNDLES bundles, br-int's 80 in one
        assert host.ovs_calls.count("flows") == PARALLEL_BUNDLES + 1
    finally:
        rec.close()


def test_only_the_keys_of_a_failed_bundle_are_retried_and_only_the_bad_one_fails(small_split):
    host = FakeHost()
    keys = [f"router:{i:04d}" for i in range(40)]
    wanted = {k: frozenset(_flows(k, 10)) for k in keys}
    bad = keys[7]
    wanted[bad] |= {Flow("br-tun", 4, 1, ("tun_id=0xffff",), "resubmit(,99)", cookie_for(bad))}
    host.fail_on.add("resubmit(,99)")  # the switch refuses this one flow of the bad key
    rec = _reconciler(host, wanted)
    try:
        result = rec.run_pass(dict.fromkeys(keys, Aspect.ALL))
        assert set(result.failed) == {bad}
        assert host.flows["br-tun"] == frozenset().union(
            *(wanted[k] for k in keys if k != bad))
        first = host.bundles[:PARALLEL_BUNDLES]
        failed_keys = next(cookies for _, cookies in first if cookie_for(bad) in cookies)
        retried = host.bundles[PARALLEL_BUNDLES:]
        # one bundle a key of the failed bundle, none for the bundles that committed
        assert sorted(c for _, (c,) in retried) == sorted(failed_keys)
    finally:
        rec.close()
