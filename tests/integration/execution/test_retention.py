"""Every retained doc can be deleted by its TTL policy (domain.md §2.1): it carries `expiresAt`.

Runs that close in the ordinary ways (completed, failed in a step, approved then completed,
rejected, cancelled) are driven through the real engine on a real store wrapped so that each
write is noted. The rule checked, per collection group in RETAINED:

- a write that makes a whole doc (`create`, `set` without merge) carries `expiresAt`: it may be
  the doc's first write, and a TTL policy ignores a doc without the field;
- an `update` or merge changes a doc that exists; that doc must hold `expiresAt` at the end;
- executions are the exception by design: `expiresAt` = completion + 180 d, so it is checked on
  every closed run instead of on every write;
- a step doc expires no earlier than its run (a TTL deletion never reaches a subcollection).

Runs closed by archive, the reaper or a tenancy failure are left out: they are a known gap
(domain.md §2.1) being closed separately.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import pytest

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.domain.collections import (
    APPROVAL_CLAIMS,
    APPROVALS,
    COMMUNICATIONS,
    DELIVERIES,
    EXECUTIONS,
    RETAINED,
    STATS,
    STEPS,
    steps_path,
)
from playbook_core.domain.engine import COMPLETION_TTL
from playbook_core.domain.executions import TERMINAL
from playbook_core.ports import DocumentStore, OrderBy, Page, Transaction, Where
from playbook_core.service.execution import approvals, run_control
from playbook_core.service.execution.run_start import Runs

from .conftest import _reset, _rig
from .test_execution_engine import CUSTOMER, INTERNAL, PROMO

T = TypeVar("T")
# Retained groups whose docs deliberately carry no `expiresAt` (domain.md §2.1), by id prefix.
NOT_EXPIRING = {COMMUNICATIONS: ("cst_",)}  # contact state: pruned on every write instead
WAITING = INTERNAL.replace(
    "  - id: email\n",
    "  - id: pause\n    action: wait\n    params: {duration: 30d}\n  - id: email\n",
)


@dataclass(frozen=True)
class Write:
    op: str  # create, set, merge, update, delete
    collection: str
    doc_id: str
    data: Mapping[str, Any]

    @property
    def group(self) -> str:
        return self.collection.rsplit("/", 1)[-1]


class _RecordingTransaction:
    def __init__(self, inner: Transaction, writes: list[Write]) -> None:
        self.inner, self.writes = inner, writes

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        return self.inner.get(collection, doc_id)

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self.writes.append(Write("create", collection, doc_id, dict(data)))
        self.inner.create(collection, doc_id, data)

    def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self.writes.append(Write("set", collection, doc_id, dict(data)))
        self.inner.set(collection, doc_id, data)

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        self.writes.append(Write("update", collection, doc_id, dict(changes)))
        self.inner.update(collection, doc_id, changes)

    def delete(self, collection: str, doc_id: str) -> None:
        self.writes.append(Write("delete", collection, doc_id, {}))
        self.inner.delete(collection, doc_id)


class RecordingStore:
    """The DocumentStore port over a real store, noting every write (in transactions too).

    A transaction the store retries notes its writes again; the rule holds for each copy.
    """

    def __init__(self, inner: DocumentStore) -> None:
        self.inner, self.writes = inner, []

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        return self.inner.get(collection, doc_id)

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self.inner.get_many(collection, doc_ids)

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self.writes.append(Write("create", collection, doc_id, dict(data)))
        self.inner.create(collection, doc_id, data)

    def set(
        self, collection: str, doc_id: str, data: Mapping[str, Any], *, merge: bool = False
    ) -> None:
        self.writes.append(Write("merge" if merge else "set", collection, doc_id, dict(data)))
        self.inner.set(collection, doc_id, data, merge=merge)

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        self.writes.append(Write("update", collection, doc_id, dict(changes)))
        self.inner.update(collection, doc_id, changes)

    def delete(self, collection: str, doc_id: str) -> None:
        self.writes.append(Write("delete", collection, doc_id, {}))
        self.inner.delete(collection, doc_id)

    def query(
        self,
        collection: str,
        where: Sequence[Where] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        start_after: str | None = None,
    ) -> Page:
        return self.inner.query(collection, where, order_by, limit, start_after)

    def transaction(self, work: Callable[[Transaction], T]) -> T:
        return self.inner.transaction(lambda tx: work(_RecordingTransaction(tx, self.writes)))

    def ping(self) -> None:
        self.inner.ping()


@pytest.fixture(params=["embedded", pytest.param("firestore", marks=pytest.mark.emulator)])
def recorded(request, standins):
    """(rig, its recording store) on each backend; the emulator's org id is fresh per test."""
    _reset(standins)
    if request.param == "embedded":
        inner = EmbeddedStore(":memory:")
        store = RecordingStore(inner)
        yield _rig(store, standins), store
        inner.close()
        return
    from playbook_core.adapters.firestore import FirestoreStore

    request.getfixturevalue("emulator_env")
    store = RecordingStore(FirestoreStore("demo-playbooks"))
    yield _rig(store, standins, org=f"org_{uuid.uuid4().hex[:10]}"), store


def runs(rig) -> Runs:
    return Runs(store=rig.store, queue=rig.queue, target=rig.target, clock=rig.clock)


def decide(rig, execution_id: str, *, approve: bool) -> None:
    approvals.decide(
        org_id=rig.org, execution_id=execution_id, approve=approve,
        reviewer={"uid": "boss"}, notes=None, runs=runs(rig),
    )  # fmt: skip


def drive_ordinary_runs(rig) -> list[str]:
    """One run per ordinary way to close, each touching the retained collections it can."""
    rig.behave("agents", mode="error_5xx", times=1)  # a retry before the delegate completes
    completed = rig.start(rig.playbook(WAITING), customer=CUSTOMER)
    rig.run_all()
    assert rig.execution(completed)["status"] == "completed"

    promo = rig.playbook(PROMO)
    approved = rig.start(promo, customer=CUSTOMER)
    rig.run_all()
    decide(rig, approved, approve=True)
    rig.run_all()
    assert rig.execution(approved)["status"] == "completed"

    rejected = rig.start(promo, customer={"id": "cus_2", "email": "joe@example.com"})
    rig.run_all()
    decide(rig, rejected, approve=False)
    assert rig.execution(rejected)["status"] == "rejected"

    cancelled = rig.start(rig.playbook(INTERNAL))
    rig.step()  # the delegate step ran; the send is queued
    run_control.cancel_execution(
        org_id=rig.org, execution_id=cancelled, actor="u1", store=rig.store, clock=rig.clock
    )
    rig.run_all()
    assert rig.execution(cancelled)["status"] == "cancelled"

    rig.behave("agents", mode="error_4xx")
    failed = rig.start(rig.playbook(INTERNAL))
    rig.run_all()
    assert rig.execution(failed)["status"] == "failed"
    return [completed, approved, rejected, cancelled, failed]


def exempt(write: Write) -> bool:
    return write.doc_id.startswith(NOT_EXPIRING.get(write.group, ()))


def test_every_retained_doc_written_by_ordinary_runs_carries_expires_at(recorded):
    rig, store = recorded
    executions = drive_ordinary_runs(rig)
    retained = [w for w in store.writes if w.group in RETAINED and w.group != EXECUTIONS]
    whole = [w for w in retained if w.op in ("create", "set")]
    # The scenario reached every retained group the execution path writes.
    assert {w.group for w in retained} >= {
        STEPS, APPROVAL_CLAIMS, APPROVALS, DELIVERIES, COMMUNICATIONS, STATS,
    }  # fmt: skip

    missing = sorted(
        {(w.op, w.collection, w.doc_id) for w in whole if "expiresAt" not in w.data}
        - {(w.op, w.collection, w.doc_id) for w in whole if exempt(w)}
    )
    assert not missing, f"whole-doc writes without expiresAt: {missing}"
    assert all(isinstance(w.data["expiresAt"], datetime) for w in whole if not exempt(w))

    changed = {(w.collection, w.doc_id) for w in retained if w.op in ("update", "merge")}
    for collection, doc_id in sorted(changed):
        doc = store.get(collection, doc_id)
        if doc is not None and not doc_id.startswith(NOT_EXPIRING.get(collection, ())):
            assert "expiresAt" in doc, f"{collection}/{doc_id} was changed and has no expiresAt"

    for execution_id in executions:
        execution = rig.execution(execution_id)
        assert execution["status"] in TERMINAL
        assert execution["expiresAt"] == execution["completedAt"] + COMPLETION_TTL
        steps = store.query(steps_path(execution_id), limit=50).docs
        assert steps, execution_id
        for step in steps:
            # never before its run's TTL, though the parent's deletion will not take it along
            assert step.data["expiresAt"] >= execution["expiresAt"], (execution_id, step.id)


def test_a_decision_claim_may_expire_once_its_lease_is_over(recorded):
    rig, store = recorded
    execution_id = rig.start(rig.playbook(PROMO), customer=CUSTOMER)
    rig.run_all()
    decide(rig, execution_id, approve=False)
    [claim] = [w for w in store.writes if w.group == APPROVAL_CLAIMS and w.op == "create"]
    assert claim.data["expiresAt"] == claim.data["at"] + approvals.DECISION_LEASE
    assert store.get(APPROVALS, execution_id)["status"] == "rejected"
