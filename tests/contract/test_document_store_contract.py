"""DocumentStore contract: every adapter honours the same semantics, atomicity included."""

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from playbook_core.domain.errors import AlreadyExists, NotFound
from playbook_core.ports import DELETE_FIELD, Increment, OrderBy, Where


def test_create_then_get_and_a_second_create_conflicts(backend, unique):
    store, col = backend.store, f"contract_{unique}"
    assert store.ping() is None
    assert store.get(col, "d1") is None
    store.create(col, "d1", {"orgId": "org_a", "n": 1})

    with pytest.raises(AlreadyExists):
        store.create(col, "d1", {"orgId": "org_b"})

    assert store.get(col, "d1") == {"orgId": "org_a", "n": 1}


def test_create_all_writes_every_document_or_none(backend, unique):
    store, col, other = backend.store, f"contract_{unique}", f"contract_{unique}_b"
    store.create_all([(col, "a1", {"n": 1}), (other, "b1", {"n": 2})])
    assert (store.get(col, "a1"), store.get(other, "b1")) == ({"n": 1}, {"n": 2})
    # One taken id refuses them all: nothing of the batch is written, the taken one is unchanged.
    with pytest.raises(AlreadyExists):
        store.create_all([(col, "a2", {"n": 3}), (other, "b1", {"n": 4}), (col, "a3", {})])
    assert (store.get(col, "a2"), store.get(col, "a3")) == (None, None)
    assert store.get(other, "b1") == {"n": 2}


def test_set_replaces_and_merge_deep_merges_maps(backend, unique):
    store, col = backend.store, f"contract_{unique}"
    store.set(col, "d1", {"a": 1, "m": {"x": 1, "y": {"z": 1}}, "keep": True})
    store.set(col, "d1", {"m": {"y": {"w": 2}}, "b": 2}, merge=True)
    assert store.get(col, "d1") == {
        "a": 1,
        "m": {"x": 1, "y": {"z": 1, "w": 2}},
        "keep": True,
        "b": 2,
    }

    store.set(col, "d1", {"only": "this"})

    assert store.get(col, "d1") == {"only": "this"}


def test_update_changes_paths_and_needs_the_document(backend, unique):
    store, col = backend.store, f"contract_{unique}"
    with pytest.raises(NotFound):
        store.update(col, "missing", {"a": 1})
    assert store.get(col, "missing") is None
    store.create(col, "d1", {"a": 1, "m": {"x": 1, "y": 2}, "r": {"p": 1}})

    store.update(col, "d1", {"a": 2, "m.x": 10, "r": {"q": 2}})

    # a dotted path touches one field of the map; a plain key replaces the whole value
    assert store.get(col, "d1") == {"a": 2, "m": {"x": 10, "y": 2}, "r": {"q": 2}}


def test_delete_removes_and_deleting_a_missing_document_is_fine(backend, unique):
    store, col = backend.store, f"contract_{unique}"
    store.create(col, "d1", {"a": 1})

    store.delete(col, "d1")
    store.delete(col, "d1")

    assert store.get(col, "d1") is None
    store.create(col, "d1", {"a": 2})  # the id is free again
    assert store.get(col, "d1") == {"a": 2}


def test_values_round_trip(backend, unique):
    store, col = backend.store, f"contract_{unique}"
    moment = datetime(2026, 11, 24, 12, 30, 15, 123456, tzinfo=UTC)
    paris = datetime(2026, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    data = {
        "none": None,
        "yes": True,
        "no": False,
        "zero": 0,
        "int": -(2**53),
        "float": 2.5,
        "text": "héllo ✓ 😀",
        "empty": "",
        "when": moment,
        "paris": paris,
        "list": [1, "two", None, {"k": moment, "inner": [3]}],
        "map": {"nested": {"deep": [True]}, "emptyMap": {}, "emptyList": []},
        "$dollar": {"$t": "not a timestamp"},
    }

    store.set(col, "d1", data)
    got = store.get(col, "d1")

    assert got == data
    assert got["when"].tzinfo is not None
    assert got["when"].utcoffset() == timedelta(0)
    assert got["paris"].utcoffset() == timedelta(0)
    assert type(got["int"]) is int
    assert type(got["float"]) is float
    assert type(got["yes"]) is bool


def test_increment_and_delete_field(backend, unique):
    store, col = backend.store, f"contract_{unique}"
    store.set(col, "d1", {"counts": {"sent": 1, "failed": 0}, "total": 1.5, "gone": "x"})

    store.update(
        col, "d1", {"counts.sent": Increment(1), "total": Increment(1), "gone": DELETE_FIELD}
    )
    store.update(col, "d1", {"counts.sent": Increment(1), "counts.new": Increment(5)})
    store.set(col, "d1", {"counts": {"failed": Increment(2), "sent": DELETE_FIELD}}, merge=True)
    store.set(col, "d2", {"hits": Increment(3)}, merge=True)

    assert store.get(col, "d1") == {"counts": {"failed": 2, "new": 5}, "total": 2.5}
    assert store.get(col, "d2") == {"hits": 3}


def test_get_many_returns_only_existing_documents(backend, unique):
    store, col = backend.store, f"contract_{unique}"
    store.create(col, "a", {"n": 1})
    store.create(col, "b", {"n": 2})

    found = store.get_many(col, ["a", "missing", "b"])

    assert found == {"a": {"n": 1}, "b": {"n": 2}}
    assert store.get_many(col, []) == {}


def test_subcollections_are_separate_from_their_parent(backend, unique):
    store = backend.store
    store.create(f"playbooks_{unique}", "pb_1", {"name": "parent"})
    store.create(f"playbooks_{unique}/pb_1/versions", "v1", {"n": 1})

    assert store.get(f"playbooks_{unique}/pb_1/versions", "v1") == {"n": 1}
    page = store.query(f"playbooks_{unique}")
    assert [doc.id for doc in page.docs] == ["pb_1"]


@pytest.fixture
def people(backend, unique):
    col = f"people_{unique}"
    rows = {
        "p1": {"org": "a", "age": 30, "tags": ["vip", "new"], "addr": {"city": "Oslo"}},
        "p2": {"org": "a", "age": 25, "tags": ["new"], "addr": {"city": "Rome"}},
        "p3": {"org": "b", "age": 41, "tags": [], "addr": {"city": "Oslo"}},
        "p4": {"org": "a", "age": 30, "tags": ["vip"], "addr": {"city": "Lima"}},
        "p5": {"org": "c", "age": None, "tags": ["vip"]},
    }
    for doc_id, data in rows.items():
        backend.store.create(col, doc_id, data)
    return col


def ids(page):
    return [doc.id for doc in page.docs]


def test_queries_filter_with_every_operator(backend, people):
    def q(*where):
        return ids(backend.store.query(people, [Where(*w) for w in where]))

    assert q(("org", "==", "a")) == ["p1", "p2", "p4"]
    assert q(("org", "==", "a"), ("age", ">=", 30)) == ["p1", "p4"]
    assert q(("age", "<", 30)) == ["p2"]
    assert q(("age", "<=", 30)) == ["p2", "p1", "p4"]  # implicit order on the inequality field
    assert q(("age", ">", 30)) == ["p3"]
    assert q(("org", "in", ["b", "c"])) == ["p3", "p5"]
    assert q(("tags", "array-contains", "vip")) == ["p1", "p4", "p5"]
    assert q(("tags", "array-contains-any", ["new", "nope"])) == ["p1", "p2"]
    assert q(("addr.city", "==", "Oslo")) == ["p1", "p3"]
    assert q(("org", "!=", "a")) == ["p3", "p5"]
    assert q(("org", "not-in", ["a", "b"])) == ["p5"]
    assert q(("age", "==", None)) == ["p5"]
    assert q(("org", "==", "zzz")) == []


def test_queries_order_by_several_fields_with_limit(backend, people):
    store = backend.store

    desc = store.query(people, [Where("org", "==", "a")], [OrderBy("age", "desc")], limit=2)
    both = store.query(people, order_by=[OrderBy("age", "desc"), OrderBy("org")], limit=10)

    assert ids(desc) == ["p1", "p4"]  # the tie at age 30 breaks by id ascending
    assert desc.next_cursor is not None
    # ordering by a field skips documents without it; null sorts first, so last when descending
    assert ids(both) == ["p3", "p1", "p4", "p2", "p5"]
    assert both.next_cursor is None


def test_pagination_gives_every_document_once_in_order(backend, unique):
    store, col = backend.store, f"pages_{unique}"
    for i in range(25):
        store.create(col, f"d{i:02d}", {"rank": i % 7, "group": "g"})
    expected = sorted((f"d{i:02d}" for i in range(25)), key=lambda d: (-(int(d[1:]) % 7), d))

    seen, cursor, pages = [], None, 0
    while True:
        page = store.query(
            col,
            [Where("group", "==", "g")],
            [OrderBy("rank", "desc")],
            limit=10,
            start_after=cursor,
        )
        seen += ids(page)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break

    assert seen == expected
    assert pages == 3


def test_transaction_reads_then_writes_atomically(backend, unique):
    store, col = backend.store, f"tx_{unique}"
    store.create(col, "counter", {"n": 1})

    def work(tx):
        current = tx.get(col, "counter")
        tx.update(col, "counter", {"n": current["n"] + 1})
        tx.set(col, "log", {"saw": current["n"]})
        return current["n"]

    assert store.transaction(work) == 1
    assert store.get(col, "counter") == {"n": 2}
    assert store.get(col, "log") == {"saw": 1}


def test_transaction_get_many_reads_what_exists_and_guards_creates(backend, unique):
    store, col = backend.store, f"tx_{unique}"
    store.create(col, "a", {"n": 1})
    store.create(col, "b", {"n": 2})

    def work(tx):
        found = tx.get_many(col, ["a", "missing", "b", "a"])
        tx.create(col, "missing", {"n": sum(d["n"] for d in found.values())})
        return found

    assert store.transaction(work) == {"a": {"n": 1}, "b": {"n": 2}}
    assert store.get(col, "missing") == {"n": 3}

    def again(tx):
        tx.get_many(col, ["a", "missing"])
        tx.create(col, "missing", {"n": 0})  # what get_many saw decides at once

    with pytest.raises(AlreadyExists):
        store.transaction(again)
    assert store.get(col, "missing") == {"n": 3}


def test_transaction_create_conflict_writes_nothing(backend, unique):
    store, col = backend.store, f"tx_{unique}"
    store.create(col, "claim", {"owner": "first"})

    def work(tx):
        tx.get(col, "claim")
        tx.set(col, "side", {"written": True})
        tx.create(col, "claim", {"owner": "second"})

    with pytest.raises(AlreadyExists):
        store.transaction(work)

    assert store.get(col, "claim") == {"owner": "first"}
    assert store.get(col, "side") is None


def test_a_failing_transaction_rolls_back(backend, unique):
    store, col = backend.store, f"tx_{unique}"

    def work(tx):
        tx.get(col, "a")
        tx.set(col, "a", {"n": 1})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.transaction(work)

    assert store.get(col, "a") is None


def run_all(threads):
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


def test_twenty_concurrent_creates_of_one_key_have_one_winner(backend, unique):
    store, col = backend.store, f"claims_{unique}"
    start = threading.Barrier(20)
    outcomes = []

    def claim(n):
        start.wait()
        try:
            store.create(col, "the-key", {"owner": n})
            outcomes.append(("won", n))
        except AlreadyExists:
            outcomes.append(("lost", n))

    run_all([threading.Thread(target=claim, args=(n,)) for n in range(20)])

    winners = [n for result, n in outcomes if result == "won"]
    assert len(outcomes) == 20
    assert len(winners) == 1
    assert store.get(col, "the-key") == {"owner": winners[0]}


@pytest.mark.slow
def test_concurrent_transactional_increments_are_not_lost(backend, unique):
    store, col = backend.store, f"tx_{unique}"
    store.create(col, "counter", {"n": 0})
    errors = []

    def bump():
        try:
            for _ in range(2):
                store.transaction(
                    lambda tx: tx.update(col, "counter", {"n": tx.get(col, "counter")["n"] + 1})
                )
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    run_all([threading.Thread(target=bump) for _ in range(2)])

    assert errors == []
    assert store.get(col, "counter") == {"n": 4}
