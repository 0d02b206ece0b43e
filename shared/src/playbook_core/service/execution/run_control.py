"""Reading and steering runs for the dashboard: executions, cancel, deliveries, dry runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from playbook_core.domain.collections import (
    APPROVALS,
    DELIVERIES,
    EXECUTIONS,
    steps_path,
    versions_path,
)
from playbook_core.domain.documents import definition_of
from playbook_core.domain.engine import closed_run_changes
from playbook_core.domain.errors import BadRequest, Conflict, NotFound
from playbook_core.domain.executions import TERMINAL
from playbook_core.domain.lifecycle import version_doc_id
from playbook_core.domain.records import ExecutionRecord, SkipReason
from playbook_core.domain.tagged_values import unstorable
from playbook_core.ports import (
    Clock,
    DocumentStore,
    IdFactory,
    OrderBy,
    Transaction,
    Where,
)
from playbook_core.service.authoring.playbooks import load_playbook
from playbook_core.service.execution.approvals import close_held, held_deliveries
from playbook_core.service.execution.run_start import Runs, start_run
from playbook_core.service.records import read_execution
from playbook_core.service.reporting import counters

SKIP_REASONS: frozenset[str] = frozenset(get_args(SkipReason))


def load_execution(store: DocumentStore, org_id: str, execution_id: str) -> ExecutionRecord:
    execution = read_execution(store, execution_id)
    if execution is None or execution.get("orgId") != org_id:
        raise NotFound(f"no execution '{execution_id}' in this organization")
    return execution


def list_executions(
    *,
    org_id: str,
    playbook_id: str | None,
    status: str | None,
    page_size: int,
    page_token: str | None,
    store: DocumentStore,
) -> dict[str, Any]:
    where = [Where("orgId", "==", org_id)]
    if playbook_id:
        where.append(Where("playbookId", "==", playbook_id))
    if status:
        where.append(Where("status", "==", status))
    page = store.query(
        EXECUTIONS, where, [OrderBy("createdAt", "desc")], limit=page_size, start_after=page_token
    )
    return {"executions": [d.data for d in page.docs], "nextPageToken": page.next_cursor}


def execution_with_steps(*, org_id: str, execution_id: str, store: DocumentStore) -> dict[str, Any]:
    execution = load_execution(store, org_id, execution_id)
    steps = store.query(steps_path(execution_id), order_by=[OrderBy("index")], limit=50).docs
    return {**execution, "steps": [d.data for d in steps]}


def cancel_execution(
    *, org_id: str, execution_id: str, actor: str, store: DocumentStore, clock: Clock
) -> dict[str, Any]:
    now = clock.now()
    held = held_deliveries(store, org_id, execution_id)

    def work(tx: Transaction) -> dict[str, Any]:
        execution = read_execution(tx, execution_id)
        approval = tx.get(APPROVALS, execution_id)
        if execution is None or execution.get("orgId") != org_id:
            raise NotFound(f"no execution '{execution_id}' in this organization")
        if execution["status"] in TERMINAL:
            raise Conflict(f"the run is already {execution['status']}", code="not-cancellable")
        changes = {
            **closed_run_changes(execution, "cancelled", "cancelled_by_user", now),
            "cancelledBy": actor,
        }
        tx.update(EXECUTIONS, execution_id, changes)
        if approval is not None and approval.get("status") == "pending":
            tx.update(APPROVALS, execution_id, {"status": "cancelled", "decidedAt": now})
        close_held(tx, held, "cancelled", now)
        return {**execution, **changes}

    cancelled = store.transaction(work)
    counters.record_closed(store, cancelled, "cancelled", held=len(held), at=now)
    return cancelled


def list_deliveries(
    *,
    org_id: str,
    status: str | None,
    reason: str | None,
    playbook_id: str | None,
    page_size: int,
    page_token: str | None,
    store: DocumentStore,
) -> dict[str, Any]:
    if reason is not None and reason not in SKIP_REASONS:
        raise BadRequest(f"unknown skip reason '{reason}'")
    where = [Where("orgId", "==", org_id)]
    if playbook_id:
        where.append(Where("playbookId", "==", playbook_id))
    if status:
        where.append(Where("status", "==", status))
    if reason:
        where.append(Where("skipReason", "==", reason))
    page = store.query(
        DELIVERIES, where, [OrderBy("createdAt", "desc")], limit=page_size, start_after=page_token
    )
    return {"deliveries": [d.data for d in page.docs], "nextPageToken": page.next_cursor}


def start_dry_run(
    *,
    runs: Runs,
    org_id: str,
    playbook_id: str,
    body: dict[str, Any],
    actor: str,
    ids: IdFactory,
) -> ExecutionRecord:
    """§7.12: the whole pipeline with every send replaced by a recorded would-send."""
    store = runs.store
    playbook: Mapping[str, Any] = load_playbook(store, org_id, playbook_id)
    if playbook["status"] == "archived":
        raise Conflict("an archived playbook cannot be dry-run", code="archived")
    version = body.get("version")
    if version is not None:
        if not isinstance(version, int) or isinstance(version, bool):
            raise BadRequest("version is a number")
        pinned = store.get(versions_path(playbook_id), version_doc_id(version))
        if pinned is None:
            raise NotFound(f"playbook '{playbook_id}' has no version {version}")
        definition = definition_of(pinned)
        playbook = {  # the run pins the chosen version, as a trigger would pin the current one
            **playbook,
            "version": version,
            "requiresApproval": pinned["requiresApproval"],
            **definition.to_document(),
        }
    event = body.get("event") if isinstance(body.get("event"), dict) else None
    customer = (
        body.get("customer")
        if isinstance(body.get("customer"), dict)
        else (event or {}).get("customer")
    )
    for name, value in (("event", event), ("customer", customer)):
        if isinstance(value, dict) and (problem := unstorable(value)) is not None:
            raise BadRequest(f"{name}: {problem}")  # stored on the execution: a 400, not a 500
    execution, _ = start_run(
        execution_id=ids.random("dry_"),
        playbook=playbook,
        trigger={"type": "manual", "triggerId": "dry_run", "eventName": (event or {}).get("name")},
        customer=customer,
        event=event,
        causation=None,
        user_id=actor,
        dry_run=True,
        runs=runs,
    )
    store.update(
        EXECUTIONS, execution["id"], {"mockAgents": bool(body.get("mockAgents")), "trace": []}
    )
    return execution
