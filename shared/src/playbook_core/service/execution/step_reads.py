"""What one instance keeps between steps, and what one step keeps from its claim (issue #14).

`VersionCache`: pinned playbook versions, read once per instance. A version document is created
once (authoring/playbooks.py: `tx.create`) and never updated or deleted, so a copy never goes
stale; the tenancy check still compares its orgId with every run's.

`Prefetched`: a store whose reads of a few documents are answered from the step claim's own
transaction, milliseconds earlier, instead of asking the store again. A document written through
it is forgotten, so a later read sees that write.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from playbook_core.domain.field_writes import copied
from playbook_core.domain.playbook import PlaybookDefinition
from playbook_core.ports import DocumentStore, Transaction

T = TypeVar("T")
Key = tuple[str, str]  # (collection, document id)


@dataclass(frozen=True)
class PinnedVersion:
    org_id: str | None
    definition: PlaybookDefinition


class VersionCache:
    """(playbookId, version) → the pinned version; small, least recently used out first."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._lock = threading.Lock()  # worker threads share an instance's engine
        self._versions: OrderedDict[tuple[str, int], PinnedVersion] = OrderedDict()

    def get(self, playbook_id: str, version: int) -> PinnedVersion | None:
        with self._lock:
            found = self._versions.get((playbook_id, version))
            if found is not None:
                self._versions.move_to_end((playbook_id, version))
            return found

    def put(self, playbook_id: str, version: int, pinned: PinnedVersion) -> None:
        with self._lock:
            self._versions[(playbook_id, version)] = pinned
            self._versions.move_to_end((playbook_id, version))
            while len(self._versions) > self._size:
                self._versions.popitem(last=False)


class Prefetched:
    """A DocumentStore: `known` answers its documents' reads (None: known to be missing)."""

    def __init__(self, store: DocumentStore, known: Mapping[Key, dict[str, Any] | None]) -> None:
        self.inner = store
        self._known = dict(known)
        self.query = store.query  # queries are never prefetched: the store's own

    def forget(self, collection: str, doc_id: str) -> None:
        self._known.pop((collection, doc_id), None)

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        if (collection, doc_id) in self._known:
            known: dict[str, Any] | None = copied(self._known[(collection, doc_id)])
            return known  # a copy: callers own what they get, as from a store
        return self.inner.get(collection, doc_id)

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self.inner.get_many(collection, doc_ids)

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self.forget(collection, doc_id)
        self.inner.create(collection, doc_id, data)

    def create_all(self, documents: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        for collection, doc_id, _ in documents:
            self.forget(collection, doc_id)
        self.inner.create_all(documents)

    def set(
        self, collection: str, doc_id: str, data: Mapping[str, Any], *, merge: bool = False
    ) -> None:
        self.forget(collection, doc_id)
        self.inner.set(collection, doc_id, data, merge=merge)

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        self.forget(collection, doc_id)
        self.inner.update(collection, doc_id, changes)

    def delete(self, collection: str, doc_id: str) -> None:
        self.forget(collection, doc_id)
        self.inner.delete(collection, doc_id)

    def transaction(self, work: Callable[[Transaction], T]) -> T:
        return self.inner.transaction(lambda tx: work(_Forgetting(self, tx)))

    def ping(self) -> None:
        self.inner.ping()


class _Forgetting:
    """A transaction whose writes make the Prefetched store forget what it knew of them."""

    def __init__(self, owner: Prefetched, tx: Transaction) -> None:
        self._owner, self._tx = owner, tx

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        return self._tx.get(collection, doc_id)  # a transaction reads the store itself

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self._tx.get_many(collection, doc_ids)

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self._owner.forget(collection, doc_id)
        self._tx.create(collection, doc_id, data)

    def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self._owner.forget(collection, doc_id)
        self._tx.set(collection, doc_id, data)

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        self._owner.forget(collection, doc_id)
        self._tx.update(collection, doc_id, changes)

    def delete(self, collection: str, doc_id: str) -> None:
        self._owner.forget(collection, doc_id)
        self._tx.delete(collection, doc_id)
