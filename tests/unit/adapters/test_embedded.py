"""The embedded store beyond the shared contract: persistence, hooks, errors, Firestore corner cases."""

import math
import sqlite3
from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from playbook_core.adapters import embedded_query
from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.embedded_fields import dumps, loads
from playbook_core.domain.collections import ORDERS
from playbook_core.domain.errors import AlreadyExists, BadRequest, Unavailable
from playbook_core.ports import DELETE_FIELD, Increment, OrderBy, Where


@pytest.fixture
def store():
    s = EmbeddedStore(":memory:")
    yield s
    s.close()


def test_documents_survive_a_restart(tmp_path):
    path = str(tmp_path / "store.sqlite3")
    first = EmbeddedStore(path)
    first.create(ORDERS, "o1", {"at": datetime(2026, 1, 1, tzinfo=UTC)})
    first.close()

    second = EmbeddedStore(path)
    try:
        assert second.get(ORDERS, "o1") == {"at": datetime(2026, 1, 1, tzinfo=UTC)}
    finally:
        second.close()


def test_two_stores_on_one_file_see_each_others_writes(tmp_path):
    path = str(tmp_path / "store.sqlite3")
    a, b = EmbeddedStore(path), EmbeddedStore(path)
    try:
        a.create("claims", "k", {"by": "a"})
        with pytest.raises(AlreadyExists):
            b.create("claims", "k", {"by": "b"})
        assert b.get("claims", "k") == {"by": "a"}
    finally:
        a.close()
        b.close()


def test_a_write_lock_held_past_the_busy_timeout_is_unavailable(tmp_path):
    path = str(tmp_path / "store.sqlite3")
    store = EmbeddedStore(path, busy_timeout_s=0.1)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Unavailable):
            store.set("c", "d", {"a": 1})
        assert store.get("c", "d") is None  # readers are not blocked under WAL
    finally:
        other.execute("ROLLBACK")
        other.close()
        store.close()


def test_a_closed_store_is_unavailable(store):
    store.close()
    with pytest.raises(Unavailable):
        store.get("c", "d")
    with pytest.raises(Unavailable):
        store.ping()


def test_on_commit_sees_before_and_after_of_committed_writes_only():
    seen = []
    store = EmbeddedStore(":memory:", on_commit=lambda *event: seen.append(event))
    store.create(ORDERS, "o1", {"n": 1})
    store.update(ORDERS, "o1", {"n": Increment(1)})
    store.delete(ORDERS, "o1")
    store.delete(ORDERS, "o1")  # nothing there: no event

    def failing(tx):
        tx.set(ORDERS, "o2", {"n": 1})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.transaction(failing)

    assert seen == [
        (ORDERS, "o1", None, {"n": 1}),
        (ORDERS, "o1", {"n": 1}, {"n": 2}),
        (ORDERS, "o1", {"n": 2}, None),
    ]


def test_a_transaction_reports_each_document_once_with_first_before_and_last_after():
    seen = []
    store = EmbeddedStore(":memory:", on_commit=lambda *event: seen.append(event))
    store.create("c", "a", {"n": 0})

    def work(tx):
        tx.update("c", "a", {"n": 1})
        tx.update("c", "a", {"n": 2})
        tx.create("c", "b", {"m": 1})

    store.transaction(work)
    assert seen[1:] == [("c", "a", {"n": 0}, {"n": 2}), ("c", "b", None, {"m": 1})]


def test_a_failing_hook_does_not_fail_the_write(caplog):
    def hook(*_):
        raise RuntimeError("gateway down")

    store = EmbeddedStore(":memory:", on_commit=hook)
    store.create("c", "d", {"a": 1})
    assert store.get("c", "d") == {"a": 1}
    assert "on_commit failed" in caplog.text


def test_transactions_read_before_they_write(store):
    def work(tx):
        tx.set("c", "a", {"n": 1})
        tx.get("c", "b")

    with pytest.raises(ValueError, match="read before"):
        store.transaction(work)
    assert store.get("c", "a") is None


def test_write_rules_follow_the_firestore_client(store):
    with pytest.raises(ValueError, match="DELETE_FIELD"):
        store.set("c", "d", {"a": DELETE_FIELD})
    store.set("c", "d", {"a": {"b": 1}})
    with pytest.raises(ValueError, match="conflicting"):
        store.update("c", "d", {"a": 1, "a.b": 2})
    with pytest.raises(ValueError, match="naive"):
        store.set("c", "d", {"at": datetime(2026, 1, 1)})  # noqa: DTZ001 - the point of the test
    with pytest.raises(TypeError):
        store.set("c", "d", {"s": {1, 2}})
    with pytest.raises(ValueError, match="array"):
        store.set("c", "d", {"grid": [[1, 2], [3, 4]]})
    with pytest.raises(ValueError, match="64 bits"):
        store.set("c", "d", {"big": 2**64})
    with pytest.raises(ValueError, match="at most 10"):
        store.query("c", [Where("org", "not-in", list(range(11)))])
    with pytest.raises(ValueError, match="collection"):
        store.get("a/b", "d")


def test_update_of_a_map_holding_only_transforms_replaces_the_map(store):
    # What the emulator does: the key is in the update mask, so the old map goes first.
    store.set("c", "d", {"a": {"b": 5, "c": 1}, "s": "text"})
    store.update("c", "d", {"a": {"b": Increment(1)}, "s": Increment(2)})
    assert store.get("c", "d") == {"a": {"b": 1}, "s": 2}


def test_update_through_a_non_map_replaces_it(store):
    store.set("c", "d", {"j": {"k": 2}})
    store.update("c", "d", {"j.k.z": 3, "zz.y": DELETE_FIELD})
    assert store.get("c", "d") == {"j": {"k": {"z": 3}}}


def test_non_finite_floats_and_dollar_keys_round_trip_and_still_query(store):
    store.set("c", "d", {"nan": math.nan, "inf": -math.inf, "m": {"$t": "x"}, "org": "a"})
    got = store.get("c", "d")
    assert math.isnan(got["nan"])
    assert got["inf"] == -math.inf
    assert got["m"] == {"$t": "x"}
    assert [d.id for d in store.query("c", [Where("org", "==", "a")]).docs] == ["d"]
    assert [d.id for d in store.query("c", [Where("m.$t", "==", "x")]).docs] == ["d"]


def test_values_compare_in_firestore_type_order(store):
    values = [None, True, 1, 1.0, 2, datetime(2026, 1, 1, tzinfo=UTC), "x", [1], {"k": 1}]
    for i, value in enumerate(values):
        store.set("c", f"d{i}", {"v": value})
    store.set("c", "nov", {"other": 1})

    page = store.query("c", order_by=[OrderBy("v")])

    assert [d.id for d in page.docs] == [f"d{i}" for i in range(len(values))]
    assert [d.id for d in store.query("c", [Where("v", "==", 1)]).docs] == ["d2", "d3"]
    assert [d.id for d in store.query("c", [Where("v", ">", 0)]).docs] == ["d2", "d3", "d4"]
    assert store.query("c", [Where("v", "!=", None)]).docs[0].id == "d1"


def test_a_cursor_is_opaque_url_safe_and_checked(store):
    cursor = embedded_query.encode_cursor(([datetime(2026, 1, 1, tzinfo=UTC), {"a": [1]}], "d/1"))
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert embedded_query.decode_cursor(cursor, 2) == (
        [datetime(2026, 1, 1, tzinfo=UTC), {"a": [1]}],
        "d/1",
    )
    with pytest.raises(BadRequest):
        embedded_query.decode_cursor(cursor, 1)
    with pytest.raises(BadRequest):
        store.query("c", start_after="not a cursor!")
    with pytest.raises(BadRequest):
        store.query("c", limit=0)


def test_stored_text_is_plain_json(store):
    # Readable with sqlite3 and jq when debugging the local stack.
    assert loads(dumps({"a": [1, "é"], "at": datetime(2026, 1, 1, tzinfo=UTC)})) == {
        "a": [1, "é"],
        "at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    assert dumps({"a": "é"}) == '{"a":"é"}'


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=4),
    st.datetimes(timezones=st.just(UTC)),
)  # fmt: skip
_KEYS = st.sampled_from(["a", "$t", "$f", "$m", "$x"]) | st.text(min_size=1, max_size=3)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.dictionaries(_KEYS, inner, max_size=3) | st.lists(_SCALARS, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(_KEYS, _VALUES, max_size=4))
@example({"$f": "1", "a": 1})  # top-level fields that read like tags stay fields
@example({"$t": "2026-01-01T00:00:00+00:00"})
@example({"$t": 1, "m": {"$t": "x"}})
@example({"$t": "0001-01-01T00:00:00+01:00"})  # no datetime can hold it: was OverflowError
@example({"$t": "9999-12-31T23:59:59", "x": 1})
def test_every_storable_document_reads_back_as_written(document):
    # `loads` decodes most documents in the JSON parser; tag-like keys at any depth must not fool it.
    text = dumps(document)
    assert dumps(loads(text)) == text  # NaN != NaN, so compare the stored form
    assert loads(text).keys() == document.keys()
