"""Reading every document a query matches, page by page: the cursor loop the use cases share.

Lazy: the next page is read only once the caller has taken every document of the one before, so
a caller that writes while it reads interleaves reads and writes exactly as a hand-written loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from playbook_core.ports import Doc, DocumentStore, OrderBy, Where


def iterate(
    store: DocumentStore,
    collection: str,
    where: Sequence[Where] = (),
    order_by: Sequence[OrderBy] = (),
    *,
    page_size: int,
) -> Iterator[Doc]:
    """Every matching document in query order, from the first page to the one without a cursor.

    Callers pass collection, filters and ordering straight in (tests/unit/test_indexes.py reads
    them at the call site to check the indexes).
    """
    cursor: str | None = None
    while True:
        page = store.query(collection, where, order_by, limit=page_size, start_after=cursor)
        yield from page.docs
        cursor = page.next_cursor
        if cursor is None:
            return
