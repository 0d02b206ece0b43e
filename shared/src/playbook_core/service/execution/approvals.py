"""The approval gate (domain.md §7.11): hold the first customer-facing send, decide exactly once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from playbook_core.domain import templating
from playbook_core.domain.collections import (
    APPROVALS,
    DELIVERIES,
    EXECUTIONS,
    NOTIFICATIONS,
    approval_claims_path,
)
from playbook_core.domain.engine import StepOutcome, closed_run_changes
from playbook_core.domain.errors import AlreadyExists, Conflict, NotFound, Unavailable
from playbook_core.domain.playbook import SendEmailStep, SendSmsStep
from playbook_core.domain.records import DeliveryRecord, ExecutionRecord
from playbook_core.domain.text import one_line
from playbook_core.ports import Clock, Doc, DocumentStore, OrderBy, TaskQueue, Transaction, Where
from playbook_core.service.execution.run_start import Runs, StepTarget, enqueue_step
from playbook_core.service.records import read_execution, read_step, with_changes
from playbook_core.service.reporting import counters

if TYPE_CHECKING:
    from playbook_core.service.execution.actions import ActionContext
    from playbook_core.service.execution.deliveries import Message

DECISION_LEASE = timedelta(minutes=1)  # a decider that crashed after claiming blocks no longer
_log = logging.getLogger("playbooks.approvals")


def _preview(ctx: ActionContext) -> list[dict[str, Any]]:
    """Every remaining send step that can be rendered now; the rest marked not renderable."""
    items = []
    for step in ctx.definition.steps[ctx.index :]:
        if not isinstance(step, (SendEmailStep, SendSmsStep)):
            continue
        channel = "email" if isinstance(step, SendEmailStep) else "sms"
        try:
            to = str(templating.render(step.params.to, ctx.render))
            subject = (  # the approver sees the subject exactly as it will be sent
                one_line(str(templating.render(step.params.subject, ctx.render)))
                if isinstance(step, SendEmailStep)
                else None
            )
            body = str(templating.render(step.params.body or "", ctx.render))
            items.append(
                {
                    "stepId": step.id,
                    "channel": channel,
                    "to": to,
                    "subject": subject,
                    "bodyPreview": body[:2000],
                    "renderable": True,
                }
            )
        except templating.UnresolvedVariable:
            items.append({"stepId": step.id, "channel": channel, "renderable": False})
    return items


def hold_for_approval(
    *,
    store: DocumentStore,
    ctx: ActionContext,
    document: DeliveryRecord,
    message: Message,
    ttl: timedelta,
) -> StepOutcome:
    execution, now = ctx.execution, ctx.now
    step = ctx.definition.steps[ctx.index]
    approval = {
        "id": execution["id"],
        "orgId": execution["orgId"],
        "executionId": execution["id"],
        "playbookId": execution["playbookId"],
        "playbookVersion": execution["playbookVersion"],
        "playbookName": execution.get("playbookName"),
        "status": "pending",
        "requestedAt": now,
        "expiresAt": now + ttl,
        "gateStepId": step.id,
        "gateStepIndex": ctx.index,
        "preview": _preview(ctx),
        "customer": execution.get("customer") or {},
    }

    def work(tx: Transaction) -> None:
        if tx.get(APPROVALS, execution["id"]) is None:
            tx.create(APPROVALS, execution["id"], approval)
        tx.set(
            DELIVERIES,
            document["id"],
            {**document, "status": "held", "skipReason": "awaiting_approval"},
        )
        tx.set(
            NOTIFICATIONS,
            f"apr_{execution['id']}",
            {
                "orgId": execution["orgId"],
                "channels": ["dashboard"],
                "to": "role:admin",
                "subject": "Approval needed",
                "body": f"{execution.get('playbookName')} is waiting for approval.",
                "sentAt": now,
                "source": "playbook",
                "playbookId": execution["playbookId"],
                "executionId": execution["id"],
            },
        )

    store.transaction(work)
    return StepOutcome(
        "pending_approval",
        output=None,
        extra={"renderedPreview": message.preview()},
        counts={"held": 1},
    )


def held_deliveries(store: DocumentStore, org_id: str, execution_id: str) -> list[Doc]:
    """The run's sends waiting for its approval (at most one per send step)."""
    where = [
        Where("orgId", "==", org_id),
        Where("executionId", "==", execution_id),
        Where("status", "==", "held"),
    ]
    return store.query(DELIVERIES, where, limit=50).docs


def close_held(tx: Transaction, held: list[Doc], reason: str, now: datetime) -> None:
    for doc in held:
        tx.update(DELIVERIES, doc.id, {"status": "skipped", "skipReason": reason, "updatedAt": now})


def _close_if_not_decidable(
    tx: Transaction,
    approval: dict[str, Any],
    execution: ExecutionRecord,
    held: list[Doc],
    now: datetime,
) -> str | None:
    """'withdrawn' or 'expired' after closing what the approval left open; None when decidable."""
    if execution.get("status") != "pending_approval":
        # The run ended while it waited (its playbook archived, say): approving must not
        # resume it, and rejecting has nothing left to stop.
        tx.update(APPROVALS, execution["id"], {"status": "cancelled", "decidedAt": now})
        close_held(tx, held, "cancelled", now)
        return "withdrawn"
    if approval["expiresAt"] <= now:
        _expire(tx, approval, execution, held, now)
        return "expired"
    return None


def decide(
    *,
    runs: Runs,
    org_id: str,
    execution_id: str,
    approve: bool,
    reviewer: dict[str, Any],
    notes: str | None,
) -> dict[str, Any]:
    """Approve (resume the gated step once) or reject; a second decision is 409."""
    store, queue, target, clock = runs.store, runs.queue, runs.target, runs.clock
    now = clock.now()
    seen = store.get(APPROVALS, execution_id)
    if seen is None or seen.get("orgId") != org_id:
        raise NotFound("no such approval in this organization")
    if seen["status"] != "pending":
        raise Conflict("this approval was already decided", code="approval-not-pending")
    if not _take_decision_claim(store, execution_id, reviewer, now):
        if seen["expiresAt"] <= now:
            raise Conflict("this approval has expired", code="approval-expired")
        raise Conflict("this approval was already decided", code="approval-not-pending")
    try:
        return _decide_claimed(
            org_id=org_id,
            execution_id=execution_id,
            approve=approve,
            reviewer=reviewer,
            notes=notes,
            store=store,
            queue=queue,
            target=target,
            now=now,
        )
    finally:
        _release_decision_claim(store, execution_id)


def _take_decision_claim(
    store: DocumentStore, execution_id: str, reviewer: dict[str, Any], now: datetime
) -> bool:
    """One `create()` picks the decider, so concurrent decisions never contend in a transaction.

    Transactions that all read one approval abort each other's commits (read locks) and retry
    in step: twenty of them held the losers ~60 s, then 503. The transaction still decides
    exactly once; a claim left by a crashed decider is a hint, ignored after DECISION_LEASE.
    """
    # TTL may delete the claim once it is void: a subcollection outlives its approval otherwise.
    mine = {"reviewerId": reviewer.get("uid"), "at": now, "expiresAt": now + DECISION_LEASE}
    for _ in range(2):  # a claim released meanwhile: its decider is done, try once more
        try:
            store.create(approval_claims_path(execution_id), "decision", mine)
        except AlreadyExists:
            claim = store.get(approval_claims_path(execution_id), "decision")
            if claim is not None:
                return bool(now - claim["at"] >= DECISION_LEASE)
        else:
            return True
    return False


def _release_decision_claim(store: DocumentStore, execution_id: str) -> None:
    # Once decided, the approval's status refuses later deciders; the claim is not needed.
    try:
        store.delete(approval_claims_path(execution_id), "decision")
    except Unavailable:
        _log.warning("decision claim on %s left for its lease to expire", execution_id)


def _decide_claimed(
    *,
    org_id: str,
    execution_id: str,
    approve: bool,
    reviewer: dict[str, Any],
    notes: str | None,
    store: DocumentStore,
    queue: TaskQueue,
    target: StepTarget,
    now: datetime,
) -> dict[str, Any]:
    held = held_deliveries(store, org_id, execution_id)

    ended: list[tuple[str, ExecutionRecord]] = []

    def work(tx: Transaction) -> tuple[dict[str, Any], ExecutionRecord] | None:
        ended.clear()
        approval = tx.get(APPROVALS, execution_id)
        execution = read_execution(tx, execution_id)
        if approval is None or approval.get("orgId") != org_id or execution is None:
            raise NotFound("no such approval in this organization")
        if approval["status"] != "pending":
            raise Conflict("this approval was already decided", code="approval-not-pending")
        closed = _close_if_not_decidable(tx, approval, execution, held, now)
        if closed is not None:
            ended.append((closed, execution))
            return None  # committed, then refused below: the closing must stick
        decision = {
            "status": "approved" if approve else "rejected",
            "reviewerId": reviewer.get("uid"),
            "reviewerEmail": reviewer.get("email"),
            "notes": (notes or "")[:2000] or None,
            "decidedAt": now,
        }
        tx.update(APPROVALS, execution_id, decision)
        if approve:
            changes = {
                "status": "running",
                "approvedBy": reviewer.get("uid"),
                "approvedAt": now,
                "updatedAt": now,
            }
        else:
            changes = closed_run_changes(execution, "rejected", "approval_rejected", now)
            close_held(tx, held, "approval_rejected", now)
        tx.update(EXECUTIONS, execution_id, changes)
        return {**approval, **decision}, with_changes(execution, changes)

    decided = store.transaction(work)
    if decided is None:
        closed, execution = ended[0]
        if closed == "withdrawn":  # the run was counted when it closed; its held sends are now
            counters.record_execution(
                store, execution, at=now, counters={"skipped.cancelled": len(held)}
            )
            raise Conflict(
                "this run is no longer waiting for approval", code="approval-not-pending"
            )
        counters.record_closed(store, execution, "expired", held=len(held), at=now)
        raise Conflict("this approval has expired", code="approval-expired")
    approval, execution = decided
    if not approve:
        counters.record_closed(store, execution, "rejected", held=len(held), at=now)
    if approve:
        index = int(approval["gateStepIndex"])
        step = read_step(store, execution_id, index)
        attempt = step["attempt"] if step is not None else 1
        enqueue_step(queue, target, execution, index, attempt, nonce="approved")
    return approval


def _expire(
    tx: Transaction,
    approval: dict[str, Any],
    execution: ExecutionRecord,
    held: list[Doc],
    now: datetime,
) -> None:
    tx.update(APPROVALS, approval["id"], {"status": "expired", "decidedAt": now})
    tx.update(
        EXECUTIONS,
        execution["id"],
        closed_run_changes(execution, "expired", "approval_expired", now),
    )
    close_held(tx, held, "approval_expired", now)


def expire_due(*, store: DocumentStore, clock: Clock, limit: int = 200) -> int:
    """The tick's sweep: pending approvals past `expiresAt` become expired (§7.11)."""
    now = clock.now()
    due = store.query(
        APPROVALS,
        [Where("status", "==", "pending"), Where("expiresAt", "<=", now)],
        [OrderBy("expiresAt")],
        limit=limit,
    ).docs
    for doc in due:
        org_id = doc.data["orgId"]
        held = held_deliveries(store, org_id, doc.id)

        def work(
            tx: Transaction, approval_id: str = doc.id, held: list[Doc] = held
        ) -> tuple[str, ExecutionRecord] | None:
            approval = tx.get(APPROVALS, approval_id)
            execution = read_execution(tx, approval_id)
            if approval is None or execution is None or approval["status"] != "pending":
                return None
            # A run that already ended (failed a tenancy check, say) is not expired a second time.
            return _close_if_not_decidable(tx, approval, execution, held, now) or "", execution

        closed = store.transaction(work)
        if closed is None:
            continue
        outcome, execution = closed
        if outcome == "expired":
            counters.record_closed(store, execution, "expired", held=len(held), at=now)
        else:
            counters.record_execution(
                store, execution, at=now, counters={"skipped.cancelled": len(held)}
            )
    return len(due)


def list_approvals(
    *, org_id: str, status: str | None, store: DocumentStore, page_size: int, page_token: str | None
) -> dict[str, Any]:
    where = [Where("orgId", "==", org_id)]
    if status:
        where.append(Where("status", "==", status))
    page = store.query(
        APPROVALS, where, [OrderBy("requestedAt", "desc")], limit=page_size, start_after=page_token
    )
    return {"approvals": [d.data for d in page.docs], "nextPageToken": page.next_cursor}
