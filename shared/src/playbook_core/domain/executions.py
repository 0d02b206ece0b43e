"""Execution documents and their deterministic ids (domain.md §2.1, §2.2, §7.1–7.2)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from playbook_core.domain.ids import h
from playbook_core.domain.playbook import PlaybookDefinition
from playbook_core.domain.records import ExecutionRecord

PROGRESS_DEADLINE = timedelta(minutes=10)
MAX_EVENT_SNAPSHOT = 64 * 1024
TERMINAL = frozenset({"completed", "failed", "cancelled", "rejected", "expired"})


def event_execution_id(event_id: str, playbook_id: str) -> str:
    return "ev_" + h(event_id, playbook_id)


def schedule_execution_id(playbook_id: str, slot_utc: str) -> str:
    return "sch_" + h(playbook_id, slot_utc)


def calendar_execution_id(playbook_id: str, local_date: str, customer_id: str) -> str:
    return "cal_" + h(playbook_id, local_date, customer_id)


def manual_execution_id(playbook_id: str, idempotency_key: str) -> str:
    return "man_" + h(playbook_id, idempotency_key)


def step_task_name(execution_id: str, step_index: int, attempt: int) -> str:
    """Cloud Tasks name: hashed, so the queue's name dedup makes a second enqueue harmless."""
    return "t" + h(execution_id, step_index, attempt)


def step_task_body(execution: ExecutionRecord, step_index: int, attempt: int) -> dict[str, Any]:
    return {
        "executionId": execution["id"],
        "stepIndex": step_index,
        "attempt": attempt,
        "orgId": execution["orgId"],
    }


def new_execution(
    *,
    execution_id: str,
    playbook: Mapping[str, Any],
    definition: PlaybookDefinition,
    trigger: dict[str, Any],
    customer: dict[str, Any] | None,
    event: dict[str, Any] | None,
    causation: dict[str, Any] | None,
    user_id: str,
    dry_run: bool,
    now: datetime,
) -> ExecutionRecord:
    """A `queued` execution pinned to the playbook's current version."""
    snapshot: dict[str, Any] | None = event
    truncated = False
    if event is not None and len(json.dumps(event, default=str)) > MAX_EVENT_SNAPSHOT:
        snapshot = {k: v for k, v in event.items() if k != "data"}
        truncated = True
    step_ids = [step.id or f"step_{i + 1}" for i, step in enumerate(definition.steps)]
    return {
        "id": execution_id,
        "orgId": playbook["orgId"],
        "playbookId": playbook["id"],
        "playbookVersion": playbook["version"],
        "playbookName": playbook["name"],
        "requiresApproval": playbook["requiresApproval"],
        "trigger": trigger,
        "triggeredBy": trigger["type"],
        "userId": user_id,
        "dryRun": dry_run,
        "status": "queued",
        "statusReason": None,
        "customer": customer,
        "event": snapshot,
        "eventTruncated": truncated,
        "causation": causation or {"chain": [], "depth": 0},
        "createdAt": now,
        "updatedAt": now,
        "expectedProgressBy": now + PROGRESS_DEADLINE,
        "currentStep": step_ids[0] if step_ids else None,
        "currentStepIndex": 0,
        "stepsTotal": len(step_ids),
        "stepsCompleted": 0,
        "progress": 0.0,
        "stepStatuses": dict.fromkeys(step_ids, "pending"),
        "stepResults": [],
        "counts": {"sent": 0, "skipped": 0, "failed": 0, "held": 0},
        "reaperRecoveries": 0,
    }
