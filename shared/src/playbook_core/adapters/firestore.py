"""Firestore behind the DocumentStore port, so services never see google.cloud or api_core."""

from __future__ import annotations

import functools
import operator
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.api_core import gapic_v1
from google.api_core import retry as gretry
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from playbook_core.adapters.grpc_clients import retry_on
from playbook_core.domain import errors, page_tokens
from playbook_core.ports import DeleteField, Doc, Increment, OrderBy, Page, Transaction, Where

T = TypeVar("T")

# Requests Firestore will never accept as sent; every other client failure (contention, deadlines,
# exhausted retries, outages) counts as "storage unavailable" and callers retry later.
_PERMANENT: tuple[type[gexc.GoogleAPIError], ...] = (
    gexc.InvalidArgument,
    gexc.FailedPrecondition,
    gexc.PermissionDenied,
    gexc.Unauthenticated,
    gexc.OutOfRange,
)
_TRANSIENT = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError)
_OPS = {"array-contains": "array_contains", "array-contains-any": "array_contains_any"}
_DIRECTIONS = {"asc": firestore.Query.ASCENDING, "desc": firestore.Query.DESCENDING}
_INEQUALITY = {"<", "<=", ">", ">=", "!=", "not-in"}
_TX_ROUNDS = 3  # outer re-runs when a read inside the transaction is aborted by contention


def _translate(exc: BaseException, what: str) -> errors.PlaybooksError | None:
    """The domain error for a client failure (None: not a storage failure, re-raise as is)."""
    # Details name our document, never the backend's internals; the cause keeps those for logs.
    if isinstance(exc, gexc.AlreadyExists):
        return errors.AlreadyExists(f"{what} already exists")
    if isinstance(exc, gexc.NotFound):
        return errors.NotFound(f"{what} not found")
    if isinstance(exc, _PERMANENT):
        return errors.PlaybooksError(f"firestore refused the request ({type(exc).__name__})")
    if isinstance(exc, gexc.GoogleAPIError):
        # Anything else (deadline, cancelled, unavailable, gateway timeout…) may pass: retry later.
        # A storage failure must never look permanent, or a task would be acknowledged and lost.
        return errors.Unavailable(f"firestore unavailable ({type(exc).__name__})")
    return None


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except (gexc.GoogleAPIError, ValueError) as exc:
        origin: BaseException = exc
        # `transactional` raises ValueError after exhausting attempts (cause: Aborted) and when
        # its rollback follows a failed begin (context: the real failure); report the real one.
        chained = exc.__cause__ or exc.__context__
        if isinstance(exc, ValueError) and isinstance(chained, gexc.GoogleAPIError):
            origin = chained
        mapped = _translate(origin, what)
        if mapped is None:
            raise
        raise mapped from origin


def _to_store(value: Any) -> Any:
    if isinstance(value, Increment):
        return firestore.Increment(value.amount)
    if isinstance(value, DeleteField):
        return firestore.DELETE_FIELD
    if isinstance(value, Mapping):
        return {key: _to_store(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_store(item) for item in value]
    return value


def _from_store(value: Any) -> Any:
    if isinstance(value, datetime):  # DatetimeWithNanoseconds → plain aware UTC datetime
        v = value.astimezone(UTC)
        return datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, UTC)
    if isinstance(value, dict):
        return {key: _from_store(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_store(item) for item in value]
    return value


def _path(dotted: str) -> str:
    """A dotted port path as Firestore's quoted field path (components like `2024-01-01`)."""
    return str(FieldPath(*dotted.split(".")).to_api_repr())


def _lookup(data: Mapping[str, Any], dotted: str) -> Any:
    return functools.reduce(operator.getitem, dotted.split("."), data)


def _cursor(values: list[Any], doc_id: str) -> str:
    """Opaque next-page token: the last document's order values and its id."""
    return page_tokens.encode([_from_store(value) for value in values], doc_id)


class _Tx:
    """The port's Transaction on a Firestore one; what it read lets create/update fail early."""

    def __init__(self, store: FirestoreStore, tx: firestore.Transaction) -> None:
        self._store, self._tx = store, tx
        self._exists: dict[str, bool] = {}
        self._wrote = False

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        ref = self._store.ref(collection, doc_id)
        snap = ref.get(transaction=self._tx, **self._store.call_options())
        self._exists[ref.path] = snap.exists
        return _from_store(snap.to_dict()) if snap.exists else None

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not doc_ids:
            return {}
        refs = [self._store.ref(collection, doc_id) for doc_id in dict.fromkeys(doc_ids)]
        snaps = list(self._tx.get_all(refs, **self._store.call_options()))
        for snap in snaps:
            self._exists[snap.reference.path] = snap.exists
        return {snap.id: _from_store(snap.to_dict()) for snap in snaps if snap.exists}

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        exists = self._exists.get(self._store.ref(collection, doc_id).path)
        if exists is None and not self._wrote:  # reads must precede writes; else commit decides
            exists = self.get(collection, doc_id) is not None
        if exists:
            raise errors.AlreadyExists(f"{collection}/{doc_id} already exists")
        self._tx.create(self._written(collection, doc_id, exists=True), _to_store(data))

    def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self._tx.set(self._written(collection, doc_id, exists=True), _to_store(data))

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        if self._exists.get(self._store.ref(collection, doc_id).path) is False:
            raise errors.NotFound(f"{collection}/{doc_id} not found")
        changes = {_path(key): _to_store(value) for key, value in changes.items()}
        self._tx.update(self._written(collection, doc_id, exists=True), changes)

    def delete(self, collection: str, doc_id: str) -> None:
        self._tx.delete(self._written(collection, doc_id, exists=False))

    def _written(self, collection: str, doc_id: str, *, exists: bool) -> Any:
        ref = self._store.ref(collection, doc_id)
        self._wrote, self._exists[ref.path] = True, exists
        return ref


class FirestoreStore:
    """DocumentStore on Firestore (or its emulator, via FIRESTORE_EMULATOR_HOST).

    Every call has a bounded deadline (`timeout`, seconds, retries included) so a dead backend
    surfaces as Unavailable quickly instead of hanging a request.
    """

    def __init__(self, project: str, database: str = "(default)", *, timeout: float = 10.0) -> None:
        self._project, self._database, self._timeout = project, database, timeout
        self._lock = threading.Lock()
        self._built: firestore.Client | None = None
        self._retry = retry_on(*_TRANSIENT, timeout=timeout)
        # A write that reached the server and then timed out must not be retried into a false
        # AlreadyExists (a claim lost to ourselves), so creates and commits retry only refusals.
        self._write_retry = self._retry.with_predicate(gretry.if_exception_type(_TRANSIENT[0]))

    def client(self) -> firestore.Client:
        with self._lock:  # built on first use: importing the adapter needs no credentials
            if self._built is None:
                built = firestore.Client(project=self._project, database=self._database)
                # `transactional` calls begin/commit/rollback without retry or timeout, so the
                # generated 60 s of retries would apply; its transport's method table is the one
                # place to bound them.
                transport = built._firestore_api._transport  # noqa: SLF001
                for name in ("begin_transaction", "commit", "rollback"):
                    rpc = getattr(transport, name)
                    retry = self._write_retry if name == "commit" else self._retry
                    transport._wrapped_methods[rpc] = gapic_v1.method.wrap_method(  # type: ignore[no-untyped-call]  # noqa: SLF001
                        rpc, default_retry=retry, default_timeout=self._timeout
                    )
                self._built = built
            return self._built

    def ref(self, collection: str, doc_id: str) -> firestore.DocumentReference:
        return self.client().collection(collection).document(doc_id)

    def call_options(self) -> dict[str, Any]:
        return {"retry": self._retry, "timeout": self._timeout}

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        with _translated(f"{collection}/{doc_id}"):
            snap = self.ref(collection, doc_id).get(**self.call_options())
        return _from_store(snap.to_dict()) if snap.exists else None

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not doc_ids:
            return {}
        refs = [self.ref(collection, doc_id) for doc_id in dict.fromkeys(doc_ids)]
        with _translated(collection):
            snaps = list(self.client().get_all(refs, **self.call_options()))
        return {snap.id: _from_store(snap.to_dict()) for snap in snaps if snap.exists}

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        # One round trip: a taken id fails fast with ALREADY_EXISTS, which is what keeps
        # 20 concurrent claims of one key cheap (no transaction to retry under contention).
        with _translated(f"{collection}/{doc_id}"):
            ref = self.ref(collection, doc_id)
            ref.create(_to_store(data), retry=self._write_retry, timeout=self._timeout)

    def create_all(self, documents: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        # One commit of `exists: false` preconditions: atomic, and ALREADY_EXISTS if any is taken.
        batch = self.client().batch()
        for collection, doc_id, data in documents:
            batch.create(self.ref(collection, doc_id), _to_store(data))
        with _translated(f"{len(documents)} documents"):
            batch.commit(retry=self._write_retry, timeout=self._timeout)

    def set(
        self, collection: str, doc_id: str, data: Mapping[str, Any], *, merge: bool = False
    ) -> None:
        with _translated(f"{collection}/{doc_id}"):
            self.ref(collection, doc_id).set(_to_store(data), merge=merge, **self.call_options())

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        changes = {_path(key): _to_store(value) for key, value in changes.items()}
        with _translated(f"{collection}/{doc_id}"):
            self.ref(collection, doc_id).update(changes, **self.call_options())

    def delete(self, collection: str, doc_id: str) -> None:
        with _translated(f"{collection}/{doc_id}"):
            self.ref(collection, doc_id).delete(**self.call_options())

    def query(
        self,
        collection: str,
        where: Sequence[Where] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        start_after: str | None = None,
    ) -> Page:
        if limit < 1:
            raise errors.BadRequest("limit must be at least 1")
        query: Any = self.client().collection(collection)
        for clause in where:
            if clause.op in {"in", "array-contains-any"} and not clause.value:
                return Page([], None)  # Firestore rejects empty lists; nothing can match
            if clause.op != "not-in" or clause.value:  # not-in [] excludes nothing
                op = _OPS.get(clause.op, clause.op)
                query = query.where(filter=FieldFilter(_path(clause.field), op, clause.value))
        orders = [(o.field, o.direction) for o in order_by if o.field != "__name__"]
        # Firestore orders by inequality fields implicitly; naming them before the id tie-break
        # keeps the order (and so the cursor) explicit. Ties then break by document id ascending.
        last = orders[-1][1] if orders else "asc"
        implicit = {w.field for w in where if w.op in _INEQUALITY} - {f for f, _ in orders}
        orders += [(field, last) for field in sorted(implicit)]
        for field, direction in orders:
            query = query.order_by(_path(field), direction=_DIRECTIONS[direction])
        query = query.order_by("__name__")
        if start_after is not None:
            values, last_id = page_tokens.decode(start_after, len(orders))
            query = query.start_after([*values, last_id])  # an id string means that document
        with _translated(collection):
            snaps = list(query.limit(limit + 1).stream(**self.call_options()))
        docs = [Doc(snap.id, _from_store(snap.to_dict())) for snap in snaps[:limit]]
        if len(snaps) <= limit:  # the extra document tells whether another page exists
            return Page(docs, None)
        tail = snaps[limit - 1].to_dict() or {}
        return Page(docs, _cursor([_lookup(tail, f) for f, _ in orders], snaps[limit - 1].id))

    def transaction(self, work: Callable[[Transaction], T]) -> T:
        def attempt(tx: firestore.Transaction) -> T:
            return work(_Tx(self, tx))

        for round_ in range(1, _TX_ROUNDS + 1):
            tx = self.client().transaction(max_attempts=10)
            try:
                with _translated("transaction document"):
                    return firestore.transactional(attempt)(tx)  # type: ignore[no-any-return]
            except errors.Unavailable as exc:
                # transactional re-runs `work` only when the commit aborts; an aborted read
                # ends it, so contention there re-runs the whole function here.
                if round_ == _TX_ROUNDS or not isinstance(exc.__cause__, gexc.Aborted):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def ping(self) -> None:
        with _translated("health document"):
            self.ref("_health", "ping").get(retry=None, timeout=min(self._timeout, 2.0))
