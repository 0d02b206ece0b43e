"""A DocumentStore proxy that counts reads and writes as Firestore bills them, around any store.

Reads: one per `get`, one per distinct id of a `get_many`, one per document a query returns and at
least one per query (a missing document is still a read); transaction reads count the same (a
retried transaction counts again, as it is billed again). Writes: one per create/set/update/delete
that succeeded (a create refused with AlreadyExists is none), inside a transaction or not.

`measure()` collects what the calling thread does while it is open, so concurrent workers can
each attribute their own operations; `totals` keeps everything since the last `reset()`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from playbook_core.ports import DocumentStore, OrderBy, Page, Transaction, Where

T = TypeVar("T")


def collection_key(collection: str) -> str:
    """`playbook_executions/ex_1/steps` → `playbook_executions/*/steps`: ids out of the way."""
    parts = collection.split("/")
    return "/".join(part if index % 2 == 0 else "*" for index, part in enumerate(parts))


@dataclass
class Counts:
    reads: int = 0
    writes: int = 0
    queries: int = 0
    transactions: int = 0
    calls: int = 0
    store_s: float = 0.0  # time spent inside the store (network + backend), transactions included
    by_collection: Counter[str] = field(default_factory=Counter)  # "read playbooks" → n

    def add(self, kind: str, collection: str, n: int) -> None:
        if kind == "read":
            self.reads += n
        else:
            self.writes += n
        self.by_collection[f"{kind} {collection_key(collection)}"] += n

    def as_row(self) -> dict[str, float]:
        return {
            "reads": float(self.reads),
            "writes": float(self.writes),
            "queries": float(self.queries),
            "transactions": float(self.transactions),
            "store_ms": self.store_s * 1000,
        }


class CountingStore:
    """Wraps a DocumentStore; every port method passes through, counted."""

    def __init__(self, inner: DocumentStore) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._local = threading.local()
        self.totals = Counts()

    # --- counting -----------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.totals = Counts()

    @contextmanager
    def measure(self) -> Iterator[Counts]:
        """Counts of this thread's calls while the block runs (nesting is allowed)."""
        counts = Counts()
        active: list[Counts] = self._active()
        active.append(counts)
        try:
            yield counts
        finally:
            active.remove(counts)

    def _active(self) -> list[Counts]:
        if not hasattr(self._local, "active"):
            self._local.active = []
        return self._local.active  # type: ignore[no-any-return]

    def _record(self, kind: str, collection: str, n: int) -> None:
        with self._lock:
            self.totals.add(kind, collection, n)
        for counts in self._active():
            counts.add(kind, collection, n)

    def _bump(self, name: str, amount: float = 1) -> None:
        with self._lock:
            setattr(self.totals, name, getattr(self.totals, name) + amount)
        for counts in self._active():
            setattr(counts, name, getattr(counts, name) + amount)

    @contextmanager
    def _call(self) -> Iterator[None]:
        outermost = not getattr(self._local, "inside", False)
        self._local.inside = True
        started = time.perf_counter()
        try:
            yield
        finally:
            if outermost:
                self._local.inside = False
                self._bump("calls")
                self._bump("store_s", time.perf_counter() - started)

    # --- the port -----------------------------------------------------------------------------

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        with self._call():
            try:
                return self.inner.get(collection, doc_id)
            finally:
                self._record("read", collection, 1)

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._call():
            try:
                return self.inner.get_many(collection, doc_ids)
            finally:
                self._record("read", collection, len(set(doc_ids)))

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        with self._call():
            self.inner.create(collection, doc_id, data)
            self._record("write", collection, 1)

    def create_all(self, documents: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        with self._call():
            self.inner.create_all(documents)
            for collection, _, _ in documents:
                self._record("write", collection, 1)

    def set(
        self, collection: str, doc_id: str, data: Mapping[str, Any], *, merge: bool = False
    ) -> None:
        with self._call():
            self.inner.set(collection, doc_id, data, merge=merge)
            self._record("write", collection, 1)

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        with self._call():
            self.inner.update(collection, doc_id, changes)
            self._record("write", collection, 1)

    def delete(self, collection: str, doc_id: str) -> None:
        with self._call():
            self.inner.delete(collection, doc_id)
            self._record("write", collection, 1)

    def query(
        self,
        collection: str,
        where: Sequence[Where] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        start_after: str | None = None,
    ) -> Page:
        with self._call():
            page = self.inner.query(collection, where, order_by, limit, start_after)
            self._record("read", collection, max(1, len(page.docs)))
            self._bump("queries")
            return page

    def transaction(self, work: Callable[[Transaction], T]) -> T:
        def counted(tx: Transaction) -> T:
            self._bump("transactions")  # once per attempt: a retry is billed again
            return work(_CountingTx(self, tx))

        with self._call():
            return self.inner.transaction(counted)

    def ping(self) -> None:
        self.inner.ping()

    def __getattr__(self, name: str) -> Any:
        # client(), close() and the like of the wrapped adapter
        return getattr(self.inner, name)


class _CountingTx:
    def __init__(self, owner: CountingStore, inner: Transaction) -> None:
        self._owner, self._inner = owner, inner

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        try:
            return self._inner.get(collection, doc_id)
        finally:
            self._owner._record("read", collection, 1)

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        try:
            return self._inner.get_many(collection, doc_ids)
        finally:
            self._owner._record("read", collection, len(set(doc_ids)))

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self._inner.create(collection, doc_id, data)
        self._owner._record("write", collection, 1)

    def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self._inner.set(collection, doc_id, data)
        self._owner._record("write", collection, 1)

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        self._inner.update(collection, doc_id, changes)
        self._owner._record("write", collection, 1)

    def delete(self, collection: str, doc_id: str) -> None:
        self._inner.delete(collection, doc_id)
        self._owner._record("write", collection, 1)
