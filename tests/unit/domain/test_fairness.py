"""Fair dispatch rules (domain/fairness.py): org shards and the pace of one org's run starts."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from playbook_core.domain.fairness import paced_start, shard_of, shard_queue_name, step_queue

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
org_ids = st.text(min_size=1, max_size=40)


@given(org_ids, st.integers(min_value=1, max_value=32))
def test_an_org_always_lands_on_the_same_existing_shard(org, shards):
    index = shard_of(org, shards)
    assert 0 <= index < shards
    assert shard_of(org, shards) == index
    assert step_queue("playbook-steps", shards, org) == shard_queue_name("playbook-steps", index)


@given(org_ids)
def test_one_shard_is_the_unsharded_queue(org):
    assert step_queue("playbook-steps", 1, org) == "playbook-steps"


def test_shard_names_keep_the_base_name_for_shard_zero_and_are_distinct():
    names = [shard_queue_name("playbook-steps", i) for i in range(8)]
    assert names[0] == "playbook-steps"
    assert names[1:3] == ["playbook-steps-1", "playbook-steps-2"]
    assert len(set(names)) == 8


def test_orgs_spread_over_every_shard():
    counts = Counter(shard_of(f"org_{n}", 8) for n in range(4000))
    assert set(counts) == set(range(8))
    assert all(350 <= c <= 650 for c in counts.values()), counts  # 500 each, give or take


def _schedule(offsets_ms, per_second):
    next_free, dues = None, []
    for offset in sorted(offsets_ms):
        now = T0 + timedelta(milliseconds=offset)
        due, next_free = paced_start(next_free, now, per_second=per_second)
        dues.append((now, due))
    return dues


@given(
    st.lists(st.integers(min_value=0, max_value=20_000), min_size=1, max_size=300),
    st.sampled_from([1.0, 5.0, 20.0, 50.0]),
)
def test_every_start_is_kept_never_early_and_in_order(offsets, per_second):
    dues = _schedule(offsets, per_second)
    assert len(dues) == len(offsets)  # the excess is re-scheduled, never dropped
    assert all(due >= now for now, due in dues)
    starts = [due for _, due in dues]
    assert starts == sorted(starts)


@given(
    st.lists(st.integers(min_value=0, max_value=20_000), min_size=1, max_size=300),
    st.sampled_from([1.0, 5.0, 20.0]),
    st.integers(min_value=0, max_value=25_000),
    st.integers(min_value=1, max_value=5),
)
def test_no_window_starts_more_than_its_pace_plus_one_burst(offsets, per_second, at_ms, seconds):
    starts = [due for _, due in _schedule(offsets, per_second)]
    start = T0 + timedelta(milliseconds=at_ms)
    inside = [s for s in starts if start <= s < start + timedelta(seconds=seconds)]
    assert len(inside) <= per_second * (seconds + 1) + 1


def test_a_burst_starts_one_seconds_worth_at_once_then_keeps_the_pace():
    dues = [due for _, due in _schedule([0] * 100, 20.0)]
    assert dues[:21] == [T0] * 21
    assert dues[21] == T0 + timedelta(seconds=0.05)
    assert dues[-1] == T0 + timedelta(seconds=0.05 * 79)


def test_an_org_within_its_pace_starts_at_once():
    dues = _schedule(range(0, 10_000, 100), 20.0)  # 10 a second against a pace of 20
    assert all(due == now for now, due in dues)
