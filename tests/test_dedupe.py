"""The Bloom filter in front of the page keys: never a false "new", a bounded false "seen"."""

from __future__ import annotations

import os

from hypothesis import given, settings, strategies as st

from trawl import dedupe
from trawl.dedupe import SeenPages, bloom_for, expected_loss


def keys(n: int) -> list[str]:
    return [os.urandom(8).hex() for _ in range(n)]


def test_expected_loss_is_below_one_in_a_billion_for_every_job_size():
    for max_keys in (1, 1_000, 20_000, 1_010_000):
        bloom = bloom_for(max_keys)
        assert expected_loss(bloom, max_keys) < 1e-9


def test_the_arithmetic_of_the_docstring():
    # C = 4n, p = 1e-6: k = 20 slices; after n keys a new key is "seen" with ~1.1e-16.
    bloom = bloom_for(1_000_000)
    assert bloom.num_slices == 20 and bloom.error_rate == 1e-6
    assert 1e-10 < expected_loss(bloom, 1_000_000) < 2e-10


def test_remembered_keys_are_always_seen_and_new_ones_almost_never():
    seen = SeenPages(5_000)
    stored = keys(5_000)
    seen.remember(stored)
    assert all(k in seen for k in stored)
    fresh = keys(20_000)
    assert seen.unseen(fresh) == fresh  # expected false "seen": 20,000 x ~1e-16


def test_keys_stay_exact_after_they_leave_the_hot_sets(monkeypatch):
    monkeypatch.setattr(dedupe, "HOT_KEYS", 16)
    seen = SeenPages(1_000)
    stored = keys(200)
    seen.remember(stored)
    assert len(seen._young) + len(seen._old) <= 32
    assert all(k in seen for k in stored)  # the Bloom filter answers for the evicted ones


def test_a_filter_past_its_key_budget_stops_answering_instead_of_guessing():
    seen = SeenPages(10)
    seen.remember(keys(10))
    assert not seen.exhausted
    extra = keys(5)
    seen.remember(extra)
    assert seen.exhausted
    assert all(k in seen for k in extra)  # still exact through the hot sets
    assert seen.unseen(keys(3)) != []


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), max_size=200), st.lists(st.text(min_size=1), max_size=50))
def test_no_remembered_key_is_ever_reported_new(stored, others):
    seen = SeenPages(1_000)
    seen.remember(stored)
    assert not set(seen.unseen(stored))
    assert set(seen.unseen(others)) <= set(others)
