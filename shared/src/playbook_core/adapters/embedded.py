"""DocumentStore on one SQLite file, so the local stack and unit tests need neither Java nor cloud.

One connection serves every thread behind a lock (`:memory:` has no other way to be shared);
other processes on the same file are kept consistent by WAL and the busy timeout. Every write,
transactional or not, runs under `BEGIN IMMEDIATE`: the write lock is taken before the first read,
so check-and-claim never races and never needs Firestore's retry loop.

Queries run on SQLite indexes built from infra/firestore.indexes.json, the list Firestore deploys:
each composite becomes a partial index of its collection group, and every field it names gets a
single-field index, as Firestore gives every field one. They are created when a store opens, so an
older file gains them; `embedded_query` says how SQL narrows and orders, and Python decides.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from playbook_core.adapters import embedded_query
from playbook_core.adapters.embedded_fields import dumps, loads
from playbook_core.domain.errors import AlreadyExists, NotFound, Unavailable
from playbook_core.domain.field_writes import merged, replaced, updated
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
_INDEX_PREFIX = "fs_"  # indexes this module owns: dropped at open when no longer declared
_log = logging.getLogger(__name__)


def _indexes_path() -> Path:
    """infra/ of the repo (recognised by its layout), else beside the package in an artifact."""
    package = Path(__file__).resolve().parents[1]
    if package.parent.name == "src" and package.parents[1].name == "shared":
        return package.parents[2] / "infra" / "firestore.indexes.json"
    return package.parent / "firestore.indexes.json"


INDEXES_PATH = _indexes_path()


def declared_indexes(path: Path = INDEXES_PATH) -> list[embedded_query.Index]:
    if not path.exists():  # a deploy artifact runs on Firestore; this store then scans
        _log.warning("no %s: the embedded store runs without indexes", path)
        return []
    return embedded_query.parse_indexes(json.loads(path.read_text(encoding="utf-8")))


def index_statements(indexes: Sequence[embedded_query.Index]) -> dict[str, tuple[str, str]]:
    """(CREATE INDEX, planner statistics) per index name.

    The name hashes the definition, so a changed definition is a new index and the old is dropped.
    """
    statements = {}
    for index in [*indexes, *embedded_query.single_field_indexes(indexes)]:
        columns, scope = embedded_query.index_columns(index), embedded_query.group_sql(index.group)
        if columns is None or scope is None:
            _log.warning("index on %s %s has no SQL form: skipped", index.group, index.fields)
            continue
        body = f"documents ({', '.join(columns)}) WHERE {scope}"
        name = _INDEX_PREFIX + hashlib.sha256(body.encode()).hexdigest()[:16]
        statements[name] = (f'CREATE INDEX IF NOT EXISTS "{name}" ON {body}', _stat(columns))
    return statements


# Fixed statistics, so plans depend on the query's shape as Firestore's do, not on the data: a
# collection is large and each field's key divides it by ten. Without them SQLite takes
# `collection = ?` on the primary key for ten rows and skips every index.
_ROWS, _PER_COLLECTION = 1_000_000, 100_000


def _stat(columns: Sequence[str]) -> str:
    counts, rows = [_ROWS, _PER_COLLECTION], _PER_COLLECTION
    for _ in range((len(columns) - 2) // 2):  # a (rank, key) pair per field
        counts += [rows, max(rows // 10, 1)]
        rows = counts[-1]
    return " ".join(str(count) for count in [*counts, 1])


def _create_indexes(conn: sqlite3.Connection, statements: Mapping[str, tuple[str, str]]) -> None:
    conn.execute("BEGIN IMMEDIATE")  # one process builds them; the others then find them
    try:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'documents'"
        )
        ours = {name for (name,) in rows if name.startswith(_INDEX_PREFIX)}
        for name in ours - statements.keys():
            conn.execute(f'DROP INDEX "{name}"')
        for name, (statement, _) in statements.items():
            if name not in ours:
                conn.execute(statement)
        # Only ANALYZE may create sqlite_stat1; the limit keeps it cheap on a large old file.
        conn.execute("PRAGMA analysis_limit = 100")
        conn.execute("ANALYZE documents")
        conn.execute("DELETE FROM sqlite_stat1 WHERE tbl = 'documents'")
        conn.executemany(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('documents', ?, ?)",
            [("documents", f"{_ROWS} {_PER_COLLECTION} 1")]
            + [(name, stat) for name, (_, stat) in statements.items()],
        )
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    conn.execute("ANALYZE sqlite_schema")  # loads the statistics just written


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

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        found = {doc_id: self.get(collection, doc_id) for doc_id in dict.fromkeys(doc_ids)}
        return {doc_id: doc for doc_id, doc in found.items() if doc is not None}

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
        self,
        path: str,
        on_commit: OnCommit | None = None,
        *,
        busy_timeout_s: float = 10.0,
        indexes: Sequence[embedded_query.Index] | None = None,
    ) -> None:
        """`indexes` defaults to infra/firestore.indexes.json's."""
        self._lock = threading.RLock()
        self._on_commit = on_commit
        self._closed = False
        chosen = declared_indexes() if indexes is None else list(indexes)
        statements = index_statements(chosen)
        self._indexed = {index.group for index in chosen}
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
                _create_indexes(self._conn, statements)
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
        after = embedded_query.decode_after(where, order_by, start_after)
        statement, params, ordered = self._select(collection, where, order_by, after)
        with self._connection() as conn:
            rows = conn.execute(statement, params)
            try:
                if ordered:
                    return embedded_query.run_ordered(rows, where, order_by, limit, after)
                found = rows.fetchall()
            finally:
                rows.close()  # an unfinished statement would pin its read snapshot
        docs = [Doc(doc_id, loads(data)) for doc_id, data in found]
        return embedded_query.evaluate(docs, where, order_by, limit, after)

    def explain(
        self, collection: str, where: Sequence[Where] = (), order_by: Sequence[OrderBy] = ()
    ) -> list[str]:
        """SQLite's plan for `query` (EXPLAIN QUERY PLAN details), to check an index serves it."""
        statement, params, _ = self._select(collection, where, order_by)
        with self._connection() as conn:
            return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement, params)]

    def _select(
        self,
        collection: str,
        where: Sequence[Where],
        order_by: Sequence[OrderBy],
        after: embedded_query.SortKey | None = None,
    ) -> tuple[str, tuple[Any, ...], bool]:
        """(statement, parameters, whether rows come in `to_sql`'s order) for a query."""
        sql = embedded_query.to_sql(where, order_by, after)
        # The partial indexes serve a query only when it repeats their condition verbatim.
        group = collection.rsplit("/", 1)[-1]
        scope = f" AND {embedded_query.group_sql(group)}" if group in self._indexed else ""
        # Only SQL built here from checked paths and group names is spliced in; values are bound.
        statement = "SELECT id, data FROM documents WHERE collection = ?" + scope + sql.where  # noqa: S608
        return statement + sql.order_by, (collection, *sql.params), bool(sql.order_by)

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
