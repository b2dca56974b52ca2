"""The periodic comparison's flow dumps: a slice of keys is dumped with one cookie mask
that covers all of its keys and, ordered by cookie, few others."""

from __future__ import annotations

import uuid

from dvr_agent.reconcile.actual import cookie_slices, covering_cookie, selective_bits
from dvr_agent.state import COOKIE_MASK_ALL, COOKIE_PREFIX_MASK, cookie_for, router_key

KEYS = [router_key(str(uuid.UUID(int=i))) for i in range(1000)]


def _matches(cookie: int, mask: int, keys) -> set[str]:
    return {k for k in keys if cookie_for(k) & mask == cookie}


def test_one_key_is_its_own_cookie_exactly():
    assert covering_cookie([cookie_for(KEYS[0])]) == (cookie_for(KEYS[0]), COOKIE_MASK_ALL)


def test_the_covering_mask_matches_every_key_of_the_batch_and_only_ours():
    for batch in (KEYS[:2], KEYS[:5], KEYS[100:132], KEYS):
        cookie, mask = covering_cookie(map(cookie_for, batch))
        assert set(batch) <= _matches(cookie, mask, KEYS)
        assert mask & COOKIE_PREFIX_MASK == COOKIE_PREFIX_MASK, "never somebody else's flows"


def test_two_random_keys_select_almost_nothing_else():
    cookie, mask = covering_cookie(map(cookie_for, KEYS[:2]))
    assert selective_bits(mask) >= 12
    assert _matches(cookie, mask, KEYS) == set(KEYS[:2])


def test_slices_by_cookie_dump_a_small_share_of_the_flows():
    slices = cookie_slices(KEYS, 32)
    assert sorted(k for s in slices for k in s) == sorted(KEYS)
    assert max(map(len, slices)) <= 32
    shares = []
    for batch in slices:
        cookie, mask = covering_cookie(map(cookie_for, batch))
        assert _matches(cookie, mask, KEYS) == set(batch), "a slice is all keys sharing bits"
        shares.append(len(batch) / len(KEYS))
    # 32 keys sorted by name instead: their mask fixes nothing, every dump is all flows
    assert selective_bits(covering_cookie(map(cookie_for, sorted(KEYS)[:32]))[1]) == 0
    assert max(shares) <= 32 / 1000 and len(slices) <= 2 * 1000 / 32
