"""DocumentStore on one SQLite file, so the local stack and unit tests need neither Java nor cloud.

One connection serves every thread behind a lock (`:memory:` has no other way to be shared);
other processes on the same file are kept consistent by WAL and the busy timeout. Every write,
transactional or not, runs under `BEGIN IMMEDIATE`: the write lock is taken before the first read,
so check-and-claim never races and never needs Firestore's retry loop.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from playbook_core.adapters import embedded_query
from playbook_core.adapters.embedded_fields import dumps, loads, merged, replaced, updated
from playbook_core.domain.errors import AlreadyExists, NotFound, Unavailable
from playbook_core.domain.ids import is_document_id
from playbook_core.ports import Doc, OrderBy, Page, Transaction, Where

T = TypeVar("T")
OnCommit = Callable[[str, str, dict[str, Any] | None, dict[str, Any] | None], None]
_Key = tuple[str, str]
_Change = tuple[dict[str, Any] | None, dict[str, Any] | None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (collection, id)
) WITHOUT ROWID
"""
_BATCH = 500  # ids per `IN (...)`, well under SQLite's bound-parameter limit
_log = logging.getLogger(__name__)


@contextlib.contextmanager
def _unavailable_on_error() -> Iterator[None]:
    """Locked past the busy timeout, unreadable or full: storage is down, callers may retry."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise Unavailable(f"embedded store: {exc}") from exc


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # a failed COMMIT may already have ended it
        conn.execute("ROLLBACK")


def _check_collection(collection: str) -> None:
    segments = collection.split("/")  # `name` or `name/id/sub…`: an odd count, none empty
    if not all(segments) or len(segments) % 2 == 0:
        raise ValueError(f"invalid collection path {collection!r}")


def _check_path(collection: str, doc_id: str) -> None:
    _check_collection(collection)
    if not is_document_id(doc_id):  # Firestore's rule, so embedded tests meet its refusals
        raise ValueError(f"invalid document id {doc_id!r}")


def _load(conn: sqlite3.Connection, collection: str, doc_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT data FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)
    ).fetchone()
    return None if row is None else loads(row[0])


def _save(
    conn: sqlite3.Connection, collection: str, doc_id: str, data: dict[str, Any] | None
) -> None:
    if data is None:
        conn.execute("DELETE FROM documents WHERE collection = ? AND id = ?", (collection, doc_id))
    else:
        conn.execute(
            "INSERT OR REPLACE INTO documents (collection, id, data) VALUES (?, ?, ?)",
            (collection, doc_id, dumps(data)),
        )


class _Writes:
    """Reads and writes inside one open SQLite transaction, remembering what changed."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.changes: dict[_Key, _Change] = {}  # first `before`, last `after` per document

    def read(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        _check_path(collection, doc_id)
        return _load(self.conn, collection, doc_id)

    def write(
        self,
        collection: str,
        doc_id: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    ) -> None:
        before = self.read(collection, doc_id)
        after = change(before)
        if before is None and after is None:
            return  # deleting nothing changes nothing, and no trigger fires
        _save(self.conn, collection, doc_id, after)
        first = self.changes.get((collection, doc_id), (before, after))[0]
        self.changes[(collection, doc_id)] = (first, after)

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        def change(before: dict[str, Any] | None) -> dict[str, Any]:
            if before is not None:
                raise AlreadyExists(f"{collection}/{doc_id} already exists")
            return replaced(data)

        self.write(collection, doc_id, change)

    def set(
        self, collection: str, doc_id: str, data: Mapping[str, Any], *, merge: bool = False
    ) -> None:
        self.write(collection, doc_id, lambda b: merged(b, data) if merge else replaced(data))

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        def change(before: dict[str, Any] | None) -> dict[str, Any]:
            if before is None:
                raise NotFound(f"{collection}/{doc_id} does not exist")
            return updated(before, changes)

        self.write(collection, doc_id, change)

    def delete(self, collection: str, doc_id: str) -> None:
        self.write(collection, doc_id, lambda _: None)


class _Transaction:
    """The `Transaction` port: Firestore's rule that every read comes before the first write."""

    def __init__(self, writes: _Writes) -> None:
        self._writes = writes

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        if self._writes.changes:
            raise ValueError("transactions must read before they write")
        return self._writes.read(collection, doc_id)

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self._writes.create(collection, doc_id, data)

    def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self._writes.set(collection, doc_id, data)

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        self._writes.update(collection, doc_id, changes)

    def delete(self, collection: str, doc_id: str) -> None:
        self._writes.delete(collection, doc_id)


class EmbeddedStore:
    def __init__(
        self, path: str, on_commit: OnCommit | None = None, *, busy_timeout_s: float = 10.0
    ) -> None:
        self._lock = threading.RLock()
        self._on_commit = on_commit
        self._closed = False
        with _unavailable_on_error():
            # Autocommit mode: we issue BEGIN IMMEDIATE/COMMIT ourselves.
            self._conn = sqlite3.connect(
                path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            try:
                self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
                self._conn.execute("PRAGMA journal_mode = WAL")  # readers never block the writer
                self._conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: no corruption
                self._conn.execute(_SCHEMA)
            except sqlite3.Error:
                self._conn.close()
                raise

    # --- reads -----------------------------------------------------------------------------

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        _check_path(collection, doc_id)
        with self._connection() as conn:
            return _load(conn, collection, doc_id)

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        for doc_id in doc_ids:
            _check_path(collection, doc_id)
        wanted, found = list(dict.fromkeys(doc_ids)), {}
        with self._connection() as conn:
            for start in range(0, len(wanted), _BATCH):
                batch = wanted[start : start + _BATCH]
                marks = ",".join("?" * len(batch))
                rows = conn.execute(
                    f"SELECT id, data FROM documents WHERE collection = ? AND id IN ({marks})",  # noqa: S608 - only placeholders are interpolated
                    (collection, *batch),
                )
                found.update({doc_id: loads(data) for doc_id, data in rows})
        return found

    def query(
        self,
        collection: str,
        where: Sequence[Where] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        start_after: str | None = None,
    ) -> Page:
        _check_collection(collection)
        embedded_query.validate(where, limit)
        narrowing, params = embedded_query.prefilter(where)
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT id, data FROM documents WHERE collection = ?" + narrowing,  # noqa: S608 - placeholders only
                (collection, *params),
            ).fetchall()
        docs = [Doc(doc_id, loads(data)) for doc_id, data in rows]
        return embedded_query.run(docs, where, order_by, limit, start_after)

    def ping(self) -> None:
        with self._connection() as conn:
            conn.execute("SELECT 1").fetchone()

    # --- writes ----------------------------------------------------------------------------

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self._atomically(lambda writes: writes.create(collection, doc_id, data))

    def create_all(self, documents: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        def work(writes: _Writes) -> None:
            for collection, doc_id, data in documents:  # one raising rolls all of them back
                writes.create(collection, doc_id, data)

        self._atomically(work)

    def set(
        self, collection: str, doc_id: str, data: Mapping[str, Any], *, merge: bool = False
    ) -> None:
        self._atomically(lambda writes: writes.set(collection, doc_id, data, merge=merge))

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        self._atomically(lambda writes: writes.update(collection, doc_id, changes))

    def delete(self, collection: str, doc_id: str) -> None:
        self._atomically(lambda writes: writes.delete(collection, doc_id))

    def transaction(self, work: Callable[[Transaction], T]) -> T:
        return self._atomically(lambda writes: work(_Transaction(writes)))

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    # --- plumbing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _unavailable_on_error():
            if self._closed:
                raise Unavailable("embedded store is closed")
            yield self._conn

    def _atomically(self, work: Callable[[_Writes], T]) -> T:
        with self._connection() as conn:
            if conn.in_transaction:
                raise RuntimeError("the embedded store does not nest transactions")
            conn.execute("BEGIN IMMEDIATE")
            writes = _Writes(conn)
            try:
                result = work(writes)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        self._notify(writes.changes)  # outside the lock: the hook may post to a server that writes
        return result

    def _notify(self, changes: Mapping[_Key, _Change]) -> None:
        if self._on_commit is None:
            return
        for (collection, doc_id), (before, after) in changes.items():
            try:
                self._on_commit(collection, doc_id, before, after)
            except Exception:  # noqa: BLE001 - the write is committed; a hook must not undo it
                _log.exception("on_commit failed for %s/%s", collection, doc_id)
