"""The execution state machine (domain.md §7.2–7.5): (execution, outcome, now) → writes, commands.

Pure: the service performs what this returns, in the order it returns it (result first, then
the next task), so a crash between the two is healed by redelivery, never by a double send.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from playbook_core.domain.retry import ErrorClass, retry_delay_s

StepStatus = Literal["completed", "skipped", "failed", "retry", "pending_approval"]
COMPLETION_TTL = timedelta(days=180)


@dataclass(frozen=True)
class StepOutcome:
    status: StepStatus
    output: Any = None
    error_code: str | None = None
    error_message: str | None = None
    error_class: ErrorClass = "permanent"
    retry_after_s: float | None = None
    skip_reason: str | None = None
    next_delay_s: float = 0.0  # a wait step delays the next task
    extra: dict[str, Any] = field(default_factory=dict)  # step-doc fields (score, preview, ...)
    counts: dict[str, int] = field(default_factory=dict)  # deliveries of this step by status


@dataclass(frozen=True)
class EnqueueStep:
    step_index: int
    attempt: int
    at: datetime


@dataclass(frozen=True)
class Plan:
    step_doc: dict[str, Any]
    execution_changes: dict[str, Any]
    command: EnqueueStep | None
    finished: Literal["completed", "failed"] | None = None


def _summary(
    execution: dict[str, Any], entry: dict[str, Any], error: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """`stepResults` in the existing app's shape: one entry per step, in step order."""
    index = entry["stepIndex"]
    results = [r for r in execution.get("stepResults", []) if r.get("stepIndex") != index]
    if error is not None:
        entry = {**entry, "error": error}
    return sorted([*results, entry], key=lambda r: r["stepIndex"])


def plan(
    *,
    execution: dict[str, Any],
    step_ids: list[str],
    actions: list[str],
    index: int,
    attempt: int,
    attempts_allowed: int,
    outcome: StepOutcome,
    now: datetime,
    jitter: float = 1.0,
) -> Plan:
    """Decide what a finished attempt means for the step and the run."""
    step_id, action = step_ids[index], actions[index]
    total = len(step_ids)
    error = (
        {"code": outcome.error_code, "message": outcome.error_message or outcome.error_code}
        if outcome.error_code
        else None
    )
    counts = dict(execution.get("counts") or {})
    for key, value in outcome.counts.items():
        counts[key] = counts.get(key, 0) + value
    statuses = dict(execution.get("stepStatuses") or {})
    base_step = {
        "index": index,
        "stepId": step_id,
        "action": action,
        "attempt": attempt,
        **outcome.extra,
    }
    entry: dict[str, Any] = {"stepIndex": index, "stepId": step_id, "action": action}
    changes: dict[str, Any] = {"updatedAt": now, "heartbeatAt": now, "counts": counts}

    if outcome.status == "retry":
        delay = retry_delay_s(
            outcome.error_class, attempt, retry_after_s=outcome.retry_after_s, jitter=jitter
        )
        if delay is not None and attempt < attempts_allowed:
            due = now + timedelta(seconds=delay)
            statuses[step_id] = "retry_scheduled"
            step_doc = {
                **base_step,
                "status": "retry_scheduled",
                "nextAttemptAt": due,
                "error": error,
            }
            changes |= {
                "stepStatuses": statuses,
                "nextAttemptAt": due,
                "expectedProgressBy": due + timedelta(minutes=10),
                "stepResults": _summary(execution, {**entry, "status": "retry_scheduled"}, error),
            }
            return Plan(step_doc, changes, EnqueueStep(index, attempt + 1, due))
        outcome = StepOutcome(
            status="failed",
            error_code=outcome.error_code,
            error_message=outcome.error_message,
            extra=outcome.extra,
            counts={},
        )

    if outcome.status == "failed":
        for later in step_ids[index + 1 :]:
            statuses[later] = "not_run"
        statuses[step_id] = "failed"
        changes |= {
            "status": "failed",
            "statusReason": "step_failed",
            "error": {**(error or {}), "stepId": step_id},
            "stepStatuses": statuses,
            "completedAt": now,
            "expiresAt": now + COMPLETION_TTL,
            "nextAttemptAt": None,
            "stepResults": _summary(execution, {**entry, "status": "failed"}, error),
        }
        return Plan(
            {**base_step, "status": "failed", "error": error, "completedAt": now},
            changes,
            None,
            "failed",
        )

    if outcome.status == "pending_approval":
        statuses[step_id] = "pending"
        changes |= {
            "status": "pending_approval",
            "stepStatuses": statuses,
            "expectedProgressBy": None,
        }
        return Plan({**base_step, "status": "pending", "leaseUntil": None}, changes, None)

    final = "skipped" if outcome.status == "skipped" else "completed"
    statuses[step_id] = final
    done = int(execution.get("stepsCompleted", 0)) + 1
    step_doc = {**base_step, "status": final, "completedAt": now, "output": outcome.output}
    if outcome.skip_reason:
        step_doc["skipReason"] = outcome.skip_reason
    changes |= {
        "stepStatuses": statuses,
        "stepsCompleted": done,
        "progress": done / total if total else 1.0,
        "nextAttemptAt": None,
        "stepResults": _summary(execution, {**entry, "status": final}, None),
    }
    if index + 1 >= total:
        changes |= {
            "status": "completed",
            "completedAt": now,
            "expiresAt": now + COMPLETION_TTL,
            "currentStep": None,
        }
        return Plan(step_doc, changes, None, "completed")
    due = now + timedelta(seconds=outcome.next_delay_s)
    changes |= {
        "currentStep": step_ids[index + 1],
        "currentStepIndex": index + 1,
        "expectedProgressBy": due + timedelta(minutes=10),
    }
    return Plan(step_doc, changes, EnqueueStep(index + 1, 1, due))
