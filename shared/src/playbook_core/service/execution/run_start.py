"""Starting runs: one deterministic execution document, then its first step task (§7.2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from playbook_core.domain.collections import EXECUTIONS
from playbook_core.domain.documents import definition_of
from playbook_core.domain.errors import AlreadyExists
from playbook_core.domain.executions import new_execution, step_task_body, step_task_name
from playbook_core.domain.records import ExecutionRecord
from playbook_core.ports import Clock, DocumentStore, TaskQueue, TaskRequest
from playbook_core.service.records import read_execution
from playbook_core.service.reporting import counters


@dataclass(frozen=True)
class StepTarget:
    """Where step tasks go: the queue and the execute_step URL (the gateway or the cloud)."""

    queue: str
    url: str


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
            queue=target.queue,
            name=name,
            url=target.url,
            body=step_task_body(execution, step_index, attempt),
            schedule_time=schedule_time,
        )
    )


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
) -> tuple[ExecutionRecord, bool]:
    """Create the execution and enqueue step 0; returns (execution, created).

    A duplicate id creates nothing; a queued run that never got its first task enqueued is
    healed by enqueueing it again (the task name makes that safe).
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
            enqueue_step(queue, target, existing, 0, 1)
            store.update(EXECUTIONS, execution_id, {"firstTaskEnqueuedAt": clock.now()})
        return existing, False
    enqueue_step(queue, target, execution, 0, 1)
    store.update(EXECUTIONS, execution_id, {"firstTaskEnqueuedAt": clock.now()})
    counters.record_execution(
        store, execution, at=now, counters={"dryRuns" if dry_run else "executions": 1}
    )
    return execution, True
