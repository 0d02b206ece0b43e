"""A transaction's writes held until `flush`, one write per document (issue #14).

Many changes that read and move the same documents then go in one commit, each read seeing the
writes before it, as if each change had its own transaction: Firestore wants every read before
the first write, and one commit should write a document once. Reads can be fetched ahead, one
round trip per collection (`prefetch`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from playbook_core.domain.errors import NotFound
from playbook_core.domain.field_writes import copied, updated
from playbook_core.ports import Increment, Transaction


class Coalesced:
    """A Transaction that holds every write until `flush`, one write per document.

    The daily reconcile uses it for many orders' stats (shard, `all` and summary documents) and
    for every playbook's day in `compact_day`: the commit carries their sum.
    """

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self._seen: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._writes: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        key = (collection, doc_id)
        if key not in self._seen:
            self._seen[key] = self._tx.get(collection, doc_id)
        return copied(self._seen[key])

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.prefetch((collection, doc_id) for doc_id in doc_ids)
        docs = {doc_id: self.get(collection, doc_id) for doc_id in dict.fromkeys(doc_ids)}
        return {doc_id: doc for doc_id, doc in docs.items() if doc is not None}

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Read these documents now, one round trip per collection, instead of one by one."""
        unseen: dict[str, list[str]] = defaultdict(list)
        for collection, doc_id in dict.fromkeys(keys):
            if (collection, doc_id) not in self._seen:
                unseen[collection].append(doc_id)
        for collection, doc_ids in unseen.items():
            found = self._tx.get_many(collection, doc_ids)
            self._seen.update({(collection, doc_id): found.get(doc_id) for doc_id in doc_ids})

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self._put(collection, doc_id, "create", dict(data))

    def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        kind = "create" if self._writes.get((collection, doc_id), ("",))[0] == "create" else "set"
        self._put(collection, doc_id, kind, dict(data))

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        before = self.get(collection, doc_id)
        if before is None:
            raise NotFound(f"{collection}/{doc_id} does not exist")
        after = updated(before, changes)
        key = (collection, doc_id)
        kind, pending = self._writes.get(key, ("update", {}))
        if kind == "update" and _mergeable(pending, changes):
            self._writes[key] = ("update", _merged(pending, changes))
        else:  # the whole document as it now stands: this transaction read it
            self._writes[key] = ("create" if kind == "create" else "set", after)
        self._seen[key] = after

    def delete(self, collection: str, doc_id: str) -> None:
        raise NotImplementedError("attribution never deletes")  # keeps the buffer simple

    def _put(self, collection: str, doc_id: str, kind: str, data: dict[str, Any]) -> None:
        self.get(collection, doc_id)  # read before any write, as Firestore wants
        self._writes[(collection, doc_id)] = (kind, data)
        self._seen[(collection, doc_id)] = copied(data)

    def flush(self) -> None:
        for (collection, doc_id), (kind, data) in self._writes.items():
            getattr(self._tx, kind)(collection, doc_id, data)


def _mergeable(pending: Mapping[str, Any], changes: Mapping[str, Any]) -> bool:
    """Two updates fold into one when they share no path but as increments of the same field."""
    for path, value in changes.items():
        for other in pending:
            if (
                other == path
                and isinstance(value, Increment)
                and isinstance(pending[other], Increment)
            ):
                continue
            if other == path or other.startswith(path + ".") or path.startswith(other + "."):
                return False
    return True


def _merged(pending: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(pending)
    for path, value in changes.items():
        before = out.get(path)
        out[path] = (
            Increment(before.amount + value.amount) if isinstance(before, Increment) else value
        )
    return out
