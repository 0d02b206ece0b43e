"""Starting runs: one deterministic execution document, then its first step task (§7.2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from playbook_core.domain.collections import EXECUTIONS
from playbook_core.domain.documents import definition_of
from playbook_core.domain.errors import AlreadyExists
from playbook_core.domain.executions import (
    PROGRESS_DEADLINE,
    new_execution,
    step_task_body,
    step_task_name,
)
from playbook_core.domain.fairness import step_queue
from playbook_core.domain.records import ExecutionRecord
from playbook_core.ports import Clock, DocumentStore, TaskQueue, TaskRequest
from playbook_core.service.execution.pacing import OrgPacer
from playbook_core.service.records import read_execution
from playbook_core.service.reporting import counters


@dataclass(frozen=True)
class StepTarget:
    """Where step tasks go: the queue and the execute_step URL (the gateway or the cloud)."""

    queue: str
    url: str
    shards: int = 1  # the queue's org shards (domain/fairness.py); 1: the queue itself
    pacer: OrgPacer | None = field(default=None, compare=False, repr=False)  # None: no pacing

    def queue_for(self, org_id: str) -> str:
        return step_queue(self.queue, self.shards, org_id)


@dataclass(frozen=True)
class Runs:
    """The ports that start and move runs: built once per instance (runtime/bootstrap.App.runs)."""

    store: DocumentStore
    queue: TaskQueue
    target: StepTarget
    clock: Clock


def enqueue_step(
    queue: TaskQueue,
    target: StepTarget,
    execution: ExecutionRecord,
    step_index: int,
    attempt: int,
    *,
    schedule_time: datetime | None = None,
    nonce: str | None = None,
) -> bool:
    """A step task; `nonce` names a deliberate re-run of the same attempt (approval resume)."""
    name = step_task_name(execution["id"], step_index, attempt)
    if nonce is not None:
        name = step_task_name(f"{execution['id']}:{nonce}", step_index, attempt)
    return queue.enqueue(
        TaskRequest(
            queue=target.queue_for(execution["orgId"]),
            name=name,
            url=target.url,
            body=step_task_body(execution, step_index, attempt),
            schedule_time=schedule_time,
        )
    )


def enqueue_first_step(
    queue: TaskQueue,
    target: StepTarget,
    store: DocumentStore,
    execution: ExecutionRecord,
    now: datetime,
) -> None:
    """Step 0's task, paced per org, then the mark that heals a run whose enqueue was lost."""
    due = target.pacer.start_at(execution["orgId"], now) if target.pacer else None
    enqueue_step(queue, target, execution, 0, 1, schedule_time=due)
    changes: dict[str, Any] = {"firstTaskEnqueuedAt": now}
    if due is not None:  # a paced run is waiting, not stuck: the reaper leaves it alone
        changes["expectedProgressBy"] = due + PROGRESS_DEADLINE
    store.update(EXECUTIONS, execution["id"], changes)


def start_run(
    *,
    runs: Runs,
    execution_id: str,
    playbook: Mapping[str, Any],
    trigger: dict[str, Any],
    customer: dict[str, Any] | None,
    event: dict[str, Any] | None,
    causation: dict[str, Any] | None,
    user_id: str,
    dry_run: bool,
    zone: ZoneInfo | None = None,
) -> tuple[ExecutionRecord, bool]:
    """Create the execution and enqueue step 0; returns (execution, created).

    A duplicate id creates nothing; a queued run that never got its first task enqueued is
    healed by enqueueing it again (the task name makes that safe). `zone`: the org's, when the
    caller has it (the run's counters are dated in it).
    """
    store, queue, target, clock = runs.store, runs.queue, runs.target, runs.clock
    now = clock.now()
    execution = new_execution(
        execution_id=execution_id, playbook=playbook, definition=definition_of(playbook),
        trigger=trigger, customer=customer, event=event, causation=causation,
        user_id=user_id, dry_run=dry_run, now=now,
    )  # fmt: skip
    try:
        store.create(EXECUTIONS, execution_id, execution)
    except AlreadyExists:
        existing = read_execution(store, execution_id) or execution
        if existing.get("status") == "queued" and not existing.get("firstTaskEnqueuedAt"):
            enqueue_first_step(queue, target, store, existing, clock.now())
        return existing, False
    enqueue_first_step(queue, target, store, execution, clock.now())
    counters.record_execution(
        store, execution, at=now, counters={"dryRuns" if dry_run else "executions": 1}, zone=zone
    )
    return execution, True
