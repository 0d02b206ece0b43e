"""The embedded store answers queries through SQLite indexes built from firestore.indexes.json.

Two halves: the planner picks, for a query shaped like each declared composite, the index built
from that very entry (so an entry the store failed to build fails here); and whatever SQL narrows
and orders, pages equal the pure Python evaluator's (`embedded_query.run`) on every value type.
"""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from playbook_core.adapters import embedded_query
from playbook_core.adapters.embedded import INDEXES_PATH, EmbeddedStore, index_statements
from playbook_core.adapters.embedded_fields import dumps, loads
from playbook_core.adapters.embedded_query import Index, IndexField
from playbook_core.domain.collections import ATTRIBUTIONS, DELIVERIES, PLAYBOOKS
from playbook_core.ports import Doc, OrderBy, Where

ROOT = Path(__file__).resolve().parents[2]
DECLARED = json.loads((ROOT / "infra" / "firestore.indexes.json").read_text(encoding="utf-8"))
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_store_reads_the_index_file_firebase_deploys():
    assert INDEXES_PATH == ROOT / "infra" / "firestore.indexes.json"


def _sample(path: str) -> object:
    return NOW if path.endswith("At") else "v"


def _shaped_like(entry: dict) -> tuple[list[Where], list[OrderBy]]:
    """A query this entry alone serves: `==` on every field but the last, ordered by the last."""
    fields = [f for f in entry["fields"] if f["fieldPath"] != "__name__"]
    *equal, last = fields
    where = [
        Where(f["fieldPath"], "array-contains", "t")
        if f.get("arrayConfig") == "CONTAINS"
        else Where(f["fieldPath"], "==", _sample(f["fieldPath"]))
        for f in equal
    ]
    direction = "desc" if last.get("order") == "DESCENDING" else "asc"
    return where, [OrderBy(last["fieldPath"], direction)]


def _name_of(entry: dict) -> str:
    (index,) = embedded_query.parse_indexes({"indexes": [entry]})
    return next(iter(index_statements([index])))  # composites come before single-field ones


@pytest.fixture(scope="module")
def store():
    opened = EmbeddedStore(":memory:")
    yield opened
    opened.close()


@pytest.mark.parametrize(
    "entry",
    DECLARED["indexes"],
    ids=lambda e: e["collectionGroup"] + ":" + ",".join(f["fieldPath"] for f in e["fields"]),
)
def test_each_declared_composite_serves_its_query_through_its_own_index(store, entry):
    where, order_by = _shaped_like(entry)
    plan = store.explain(entry["collectionGroup"], where, order_by)
    assert any(f"USING INDEX {_name_of(entry)} " in step for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan


REPRESENTATIVE = {
    "deliveries by org, identity and a sentAt window": (
        DELIVERIES,
        [
            Where("orgId", "==", "o"),
            Where("attributable", "==", True),  # noqa: FBT003
            Where("recipientEmail", "==", "a@example.com"),
            Where("sentAt", ">=", NOW - timedelta(days=7)),
            Where("sentAt", "<=", NOW),
        ],
        [OrderBy("sentAt", "desc")],
    ),
    "attributions by org and status, newest order first": (
        ATTRIBUTIONS,
        [Where("orgId", "==", "o"), Where("status", "==", "final")],
        [OrderBy("orderAt", "desc")],
    ),
    "playbook search by org, archived and tokens": (
        PLAYBOOKS,
        [
            Where("orgId", "==", "o"),
            Where("archived", "==", False),  # noqa: FBT003
            Where("searchTokens", "array-contains-any", ["win", "back"]),
        ],
        [OrderBy("updatedAt", "desc")],
    ),
    "a field only a later column names (single-field index)": (
        "playbook_executions",
        [Where("playbookId", "==", "pb")],
        [],
    ),
    "a subcollection path": ("playbooks/pb_1/versions", [], [OrderBy("version", "desc")]),
}


@pytest.mark.parametrize("case", REPRESENTATIVE, ids=list(REPRESENTATIVE))
def test_representative_queries_search_an_index_and_need_no_sort(store, case):
    collection, where, order_by = REPRESENTATIVE[case]
    plan = store.explain(collection, where, order_by)
    assert plan[0].startswith("SEARCH documents USING INDEX fs_"), plan
    if order_by:  # the index hands rows over in page order, so a query stops at its limit
        assert not any("TEMP B-TREE" in step for step in plan), plan


def test_without_the_declared_index_the_same_query_loses_it():
    entry = next(e for e in DECLARED["indexes"] if e["collectionGroup"] == ATTRIBUTIONS)
    others = [
        i
        for i in embedded_query.parse_indexes(DECLARED)
        if i != embedded_query.parse_indexes({"indexes": [entry]})[0]
    ]
    store = EmbeddedStore(":memory:", indexes=others)
    try:
        plan = store.explain(ATTRIBUTIONS, *_shaped_like(entry))
    finally:
        store.close()
    assert not any(_name_of(entry) in step for step in plan), plan


def test_an_older_file_gains_the_indexes_when_opened(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE documents (collection TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,"
        " PRIMARY KEY (collection, id)) WITHOUT ROWID"
    )
    for i in range(30):
        data = {"orgId": "o", "status": "final" if i % 2 else "open", "orderAt": NOW + timedelta(i)}
        conn.execute(
            "INSERT INTO documents VALUES (?, ?, ?)", (ATTRIBUTIONS, f"a{i:02}", dumps(data))
        )
    conn.commit()
    conn.close()

    store = EmbeddedStore(str(path))
    try:
        where = [Where("orgId", "==", "o"), Where("status", "==", "final")]
        page = store.query(ATTRIBUTIONS, where, [OrderBy("orderAt", "desc")], limit=3)
        plan = store.explain(ATTRIBUTIONS, where, [OrderBy("orderAt", "desc")])
    finally:
        store.close()
    assert [d.id for d in page.docs] == ["a29", "a27", "a25"]
    assert plan[0].startswith("SEARCH documents USING INDEX fs_"), plan
    reopened = sqlite3.connect(path)
    try:
        names = {
            n for (n,) in reopened.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
    finally:
        reopened.close()
    assert len({n for n in names if n.startswith("fs_")}) == len(index_statements(
        embedded_query.parse_indexes(DECLARED)
    ))  # fmt: skip


# --- SQL narrowing and order agree with the Python evaluator ------------------------------------

# A small pool, so documents and clauses meet on the same values (and the edge ones) often.
POOL = [
    None, False, True, 0, 1, 1.0, -0.0, 2.5, 2**53 + 1, float(2**53), math.nan, math.inf, -math.inf,
    "", "a", "a\0", "a\0b", "ab", "b", "é", "{", "[", "2026", NOW, NOW + timedelta(microseconds=1),
]  # fmt: skip
PICKED = st.sampled_from(POOL)
SCALARS = st.one_of(
    PICKED,
    PICKED,
    PICKED,
    st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.floats(),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=3),
        st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.just(UTC)),  # noqa: DTZ001 - bounds are naive by API
    ),
)
MAPS = st.dictionaries(st.sampled_from(["x", "y", "$t", "$f", "$m"]), SCALARS, max_size=2)
VALUES = st.one_of(SCALARS, SCALARS, SCALARS, st.lists(SCALARS, max_size=3), MAPS)
FIELDS = ["a", "b", "m.x"]
DOC = st.fixed_dictionaries(
    {}, optional={"a": VALUES, "b": VALUES, "m": MAPS | SCALARS, "n": st.just(1)}
)


@st.composite
def clauses(draw: st.DrawFn) -> Where:
    op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not-in", "array-contains", "array-contains-any"]))  # fmt: skip
    field = draw(st.sampled_from(FIELDS))
    if op in {"in", "array-contains-any"}:
        return Where(field, op, draw(st.lists(SCALARS, min_size=1, max_size=4)))
    if op == "not-in":
        return Where(field, op, draw(st.lists(SCALARS, min_size=1, max_size=3)))
    return Where(field, op, draw(VALUES if op in {"==", "!="} else SCALARS))


INDEXES = [
    Index("c", (IndexField("a"), IndexField("b", descending=True))),
    Index("c", (IndexField("b"), IndexField("m.x"))),
    Index("c", (IndexField("a", contains=True), IndexField("m.x", descending=True))),
]


ORDERS = st.lists(
    st.builds(OrderBy, st.sampled_from(FIELDS), st.sampled_from(["asc", "desc"])),
    max_size=2,
    unique_by=lambda o: o.field,
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=st.lists(DOC, min_size=1, max_size=12),
    where=st.lists(clauses(), max_size=3),
    order_by=ORDERS,
    limit=st.integers(1, 4),
    collection=st.sampled_from(["c", "p/x/c", "plain"]),
)
@example(  # an infinity matches a range on numbers though its key is no number
    docs=[{"a": math.inf}], where=[Where("a", ">", 1)], order_by=[], limit=2, collection="c"
)
@example(  # a stored "a\0b" reads "a" in SQL yet is greater than "a"
    docs=[{"a": "a\0b"}], where=[Where("a", ">", "a")], order_by=[], limit=2, collection="c"
)
@example(  # a map holding a "$" key is stored wrapped: m.x is then at $.m."$m".x
    docs=[{"m": {"x": 1, "$t": 2}}],
    where=[Where("m.x", "==", 1)],
    order_by=[],
    limit=2,
    collection="c",
)
@example(  # three strings SQL ties on "a", the least one last by id
    docs=[{"a": "a\0b"}, {"a": "a\0a"}, {"a": "a"}],
    where=[],
    order_by=[OrderBy("a")],
    limit=1,
    collection="c",
)
@example(  # `in` over two ranks narrows by rank alone: "b" still has to be told from "a"
    docs=[{"a": "b"}, {"a": True}, {"a": "a"}],
    where=[Where("a", "in", [False, "a"])],
    order_by=[],
    limit=3,
    collection="c",
)
def test_pages_equal_the_python_evaluator(docs, where, order_by, limit, collection):
    assert_pages_equal_the_python_evaluator(docs, where, order_by, limit, collection)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=st.lists(DOC | st.fixed_dictionaries({"a": PICKED}), min_size=6, max_size=30),
    where=st.lists(clauses(), max_size=1),
    order_by=ORDERS,
    limit=st.integers(1, 3),
)
def test_long_walks_of_small_pages_equal_the_python_evaluator(docs, where, order_by, limit):
    # Each page after the first starts its SQL at the token's place (`_after_sql`).
    assert_pages_equal_the_python_evaluator(docs, where, order_by, limit, "c")


def test_a_late_page_costs_what_the_first_does():
    # The token bounds the SQL, so page 25 neither re-reads pages 1-24 nor filters its way past
    # them in the index (SQLite seeks on the first lower bound it is given: the token's).
    index = Index("c", (IndexField("orgId"), IndexField("sentAt")))
    store = EmbeddedStore(":memory:", indexes=[index])
    try:
        store.create_all([
            ("c", f"d{i:04}", {"orgId": "o", "sentAt": NOW + timedelta(seconds=i)})
            for i in range(3000)
        ])  # fmt: skip
        where = [Where("orgId", "==", "o"), Where("sentAt", ">=", NOW)]
        steps, cursor = [0], None
        with store._connection() as conn:  # every 100 SQLite VM instructions: one step
            conn.set_progress_handler(lambda: steps.__setitem__(-1, steps[-1] + 1), 100)
        for _ in range(25):
            page = store.query("c", where, limit=100, start_after=cursor)
            steps.append(0)
            cursor = page.next_cursor
        steps.pop()
        assert [d.id for d in page.docs] == [f"d{i:04}" for i in range(2400, 2500)]
        assert steps[-1] < 2 * steps[0], steps  # page 25 against page 1
    finally:
        store.close()


def test_small_pages_under_a_range_on_their_order_field_agree():
    # The range pins the field's rank, so each token bounds the key column alone; every value of
    # the pool as target, every direction, pages of one and two.
    docs = [{"a": value} for value in POOL] + [{"a": value} for value in POOL[::3]]
    for value in POOL:
        for op in ("<", "<=", ">", ">="):
            for order_by in ([], [OrderBy("a", "asc")], [OrderBy("a", "desc")]):
                for limit in (1, 2):
                    where = [Where("a", op, value)]
                    assert_pages_equal_the_python_evaluator(docs, where, order_by, limit, "c")


def assert_pages_equal_the_python_evaluator(docs, where, order_by, limit, collection):
    store = EmbeddedStore(":memory:", indexes=INDEXES)
    try:
        for i, data in enumerate(docs):
            store.set(collection, f"d{i}", data)
        stored = [Doc(f"d{i}", loads(dumps(data))) for i, data in enumerate(docs)]
        cursor, pages = None, 0
        while True:
            got = store.query(collection, where, order_by, limit, cursor)
            want = embedded_query.run(stored, where, order_by, limit, cursor)
            assert [d.id for d in got.docs] == [d.id for d in want.docs]
            assert got.next_cursor == want.next_cursor
            cursor, pages = got.next_cursor, pages + 1
            if cursor is None or pages > len(docs) + 1:
                break
    finally:
        store.close()


def test_the_cases_sql_orders_by_rank_alone_still_agree():
    # NaN first among numbers, infinities at the ends, NUL-cut strings sorted among their ties.
    store = EmbeddedStore(":memory:", indexes=INDEXES)
    values = [math.inf, 3, math.nan, -math.inf, 2.5, "a\0b", "a", "a\0a", "a\x01", NOW, True]
    try:
        for i, value in enumerate(values):
            store.set("c", f"d{i:02}", {"a": value, "b": 1})
        for direction in ("asc", "desc"):
            ids = []
            cursor = None
            while True:
                page = store.query("c", [Where("b", "==", 1)], [OrderBy("a", direction)], 2, cursor)
                ids += [d.id for d in page.docs]
                cursor = page.next_cursor
                if cursor is None:
                    break
            stored = [Doc(f"d{i:02}", loads(dumps({"a": v, "b": 1}))) for i, v in enumerate(values)]
            want = embedded_query.run(stored, [], [OrderBy("a", direction)], 100, None)
            assert ids == [d.id for d in want.docs]
            assert len(ids) == len(values)
    finally:
        store.close()
