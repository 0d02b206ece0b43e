"""service/paging.py: every matching document, one page read at a time, on the embedded store."""

import itertools

import pytest

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.ports import OrderBy, Where
from playbook_core.service.paging import iterate


class CountingStore:
    """The store, with each query's cursor recorded."""

    def __init__(self, inner):
        self.inner, self.cursors = inner, []

    def query(self, *args, **kwargs):
        self.cursors.append(kwargs.get("start_after"))
        return self.inner.query(*args, **kwargs)


@pytest.fixture
def store():
    inner = EmbeddedStore(":memory:")
    for n in range(7):
        inner.set("things", f"t{n}", {"orgId": "org_a", "n": n})
    inner.set("things", "other", {"orgId": "org_b", "n": 99})
    yield CountingStore(inner)
    inner.close()


def test_every_page_in_query_order_until_there_is_no_cursor(store):
    mine = [Where("orgId", "==", "org_a")]
    found = [
        d.data["n"] for d in iterate(store, "things", mine, [OrderBy("n", "desc")], page_size=3)
    ]
    assert found == [6, 5, 4, 3, 2, 1, 0]
    assert len(store.cursors) == 3
    assert store.cursors[0] is None
    assert all(store.cursors[1:])


def test_the_next_page_is_read_only_when_the_caller_wants_it(store):
    docs = iterate(store, "things", [Where("orgId", "==", "org_a")], page_size=3)
    assert [d.id for d in itertools.islice(docs, 3)] == ["t0", "t1", "t2"]
    assert len(store.cursors) == 1
    assert next(docs).id == "t3"
    assert len(store.cursors) == 2


def test_an_empty_result_is_one_query(store):
    assert list(iterate(store, "things", [Where("orgId", "==", "org_z")], page_size=3)) == []
    assert store.cursors == [None]
