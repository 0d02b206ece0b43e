"""The execution state machine (domain.md §7.2–7.5): (execution, outcome, now) → writes, commands.

Pure: the service performs what this returns, in the order it returns it (result first, then
the next task), so a crash between the two is healed by redelivery, never by a double send.

`plan()` dispatches on the outcome's status to one function per transition of §7.2: schedule a
retry or fail the run (`_retry`), fail the run (`_fail`), hold for approval
(`_hold_for_approval`), and for a completed or skipped step either enqueue the next step
(`_next_step`) or complete the run (`_complete_run`). What they share is computed once, in
`_Attempt`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from playbook_core.domain.executions import PROGRESS_DEADLINE
from playbook_core.domain.playbook import PlaybookDefinition, WaitStep, minutes_of
from playbook_core.domain.records import ExecutionRecord
from playbook_core.domain.retry import ErrorClass, retry_delay_s

StepStatus = Literal["completed", "skipped", "failed", "retry", "pending_approval", "deferred"]
COMPLETION_TTL = timedelta(days=180)
MIN_DEFERRAL = timedelta(seconds=1)
# A run waits for its approval at most once, for at most approvalTtlHours' upper bound (§2.3).
LONGEST_APPROVAL_HOLD = timedelta(hours=720)
# What one step may keep its run open besides a wait: ≤10 retries ≤1 h apart, and compliance
# deferrals (a frequency cap moves a send ≤168 h, a send window ≤1 d), with room for a second one.
STEP_OPEN_ALLOWANCE = timedelta(days=14)
_UNFINISHED = frozenset({"pending", "retry_scheduled", "running"})


def step_expires_at(definition: PlaybookDefinition, index: int, now: datetime) -> datetime:
    """`expiresAt` of step `index`'s doc written at `now` (§2.1): after its run's own TTL.

    A TTL deletion never reaches subcollections, so each step doc carries its own. The run may
    stay open after this write for the rest of its steps (their waits, an allowance each, one
    approval hold); its TTL then starts at completion, so the step doc goes only after that.
    """
    rest = definition.steps[index:]
    waits = sum(
        (timedelta(minutes=minutes_of(s.params.duration)) for s in rest if isinstance(s, WaitStep)),
        timedelta(),
    )
    open_at_most = waits + STEP_OPEN_ALLOWANCE * len(rest) + LONGEST_APPROVAL_HOLD
    return now + open_at_most + COMPLETION_TTL


def closed_run_changes(
    execution: ExecutionRecord, status: str, reason: str, now: datetime
) -> dict[str, Any]:
    """A run closed from outside its steps (cancel, reject, expiry); unfinished steps: not_run."""
    statuses = {
        step_id: "not_run" if value in _UNFINISHED else value
        for step_id, value in (execution.get("stepStatuses") or {}).items()
    }
    return {
        "status": status,
        "statusReason": reason,
        "stepStatuses": statuses,
        "completedAt": now,
        "updatedAt": now,
        "expiresAt": now + COMPLETION_TTL,
    }


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
    deferred_until: datetime | None = None  # "deferred": run this attempt again then
    extra: dict[str, Any] = field(default_factory=dict)  # step-doc fields (score, preview, ...)
    counts: dict[str, int] = field(default_factory=dict)  # deliveries of this step by status


@dataclass(frozen=True)
class EnqueueStep:
    step_index: int
    attempt: int
    at: datetime
    nonce: str | None = None  # names a deliberate re-run of the same attempt (a deferral)


@dataclass(frozen=True)
class Plan:
    step_doc: dict[str, Any]
    execution_changes: dict[str, Any]
    command: EnqueueStep | None
    finished: Literal["completed", "failed"] | None = None


def plan(
    *,
    execution: ExecutionRecord,
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
    finished = _Attempt(execution, step_ids, actions, index, attempt, outcome, now)
    match outcome.status:
        case "retry":
            return _retry(finished, attempts_allowed=attempts_allowed, jitter=jitter)
        case "failed":
            return _fail(finished)
        case "pending_approval":
            return _hold_for_approval(finished)
        case "deferred":
            return _defer(finished)
        case "skipped":
            return _advance(finished, "skipped")
        case _:
            return _advance(finished, "completed")


@dataclass(frozen=True)
class _Attempt:
    """One finished attempt within its run: the inputs every transition reads."""

    execution: ExecutionRecord
    step_ids: list[str]
    actions: list[str]
    index: int
    attempt: int
    outcome: StepOutcome
    now: datetime

    @property
    def step_id(self) -> str:
        return self.step_ids[self.index]

    @property
    def is_last_step(self) -> bool:
        return self.index + 1 >= len(self.step_ids)

    @property
    def error(self) -> dict[str, Any] | None:
        code = self.outcome.error_code
        return {"code": code, "message": self.outcome.error_message or code} if code else None

    def step_doc(self, status: str, **fields: Any) -> dict[str, Any]:
        """The step document: identity, this attempt, the action's extra fields, then `fields`."""
        return {
            "index": self.index,
            "stepId": self.step_id,
            "action": self.actions[self.index],
            "attempt": self.attempt,
            **self.outcome.extra,
            "status": status,
            **fields,
        }

    def changes(self, statuses: dict[str, str], **fields: Any) -> dict[str, Any]:
        """Execution changes every transition writes (§7.3 step 7), `stepStatuses` updated."""
        counts = dict(self.execution.get("counts") or {})
        for key, value in self.outcome.counts.items():
            counts[key] = counts.get(key, 0) + value
        return {
            "updatedAt": self.now,
            "heartbeatAt": self.now,
            "counts": counts,
            "stepStatuses": {**(self.execution.get("stepStatuses") or {}), **statuses},
            **fields,
        }

    def step_results(self, status: str, error: dict[str, Any] | None) -> list[dict[str, Any]]:
        """`stepResults` in the existing app's shape: one entry per step, in step order."""
        entry: dict[str, Any] = {
            "stepIndex": self.index,
            "stepId": self.step_id,
            "action": self.actions[self.index],
            "status": status,
        }
        if error is not None:
            entry["error"] = error
        others = [
            r for r in self.execution.get("stepResults", []) if r.get("stepIndex") != self.index
        ]
        return sorted([*others, entry], key=lambda r: r["stepIndex"])


def _retry(finished: _Attempt, *, attempts_allowed: int, jitter: float) -> Plan:
    """§7.5: a retryable failure with attempts left is scheduled; otherwise the step fails."""
    outcome = finished.outcome
    delay = retry_delay_s(
        outcome.error_class, finished.attempt, retry_after_s=outcome.retry_after_s, jitter=jitter
    )
    if delay is None or finished.attempt >= attempts_allowed:
        return _fail(finished)
    return _schedule_retry(finished, finished.now + timedelta(seconds=delay))


def _schedule_retry(finished: _Attempt, due: datetime) -> Plan:
    """Retry scheduled (running → running): the step waits in `retry_scheduled` until `due`."""
    error = finished.error
    changes = finished.changes(
        {finished.step_id: "retry_scheduled"},
        nextAttemptAt=due,
        expectedProgressBy=due + PROGRESS_DEADLINE,
        stepResults=finished.step_results("retry_scheduled", error),
    )
    step_doc = finished.step_doc("retry_scheduled", nextAttemptAt=due, error=error)
    return Plan(step_doc, changes, EnqueueStep(finished.index, finished.attempt + 1, due))


def _fail(finished: _Attempt) -> Plan:
    """Step failed (running → failed): the steps after it do not run (§7.2)."""
    now, error = finished.now, finished.error
    later = dict.fromkeys(finished.step_ids[finished.index + 1 :], "not_run")
    changes = finished.changes(
        {**later, finished.step_id: "failed"},
        status="failed",
        statusReason="step_failed",
        error={**(error or {}), "stepId": finished.step_id},
        completedAt=now,
        expiresAt=now + COMPLETION_TTL,
        nextAttemptAt=None,
        stepResults=finished.step_results("failed", error),
    )
    step_doc = finished.step_doc("failed", error=error, completedAt=now)
    return Plan(step_doc, changes, None, "failed")


def _hold_for_approval(finished: _Attempt) -> Plan:
    """Approval hold (running → pending_approval): no task until a decision (§7.11)."""
    changes = finished.changes(
        {finished.step_id: "pending"}, status="pending_approval", expectedProgressBy=None
    )
    return Plan(finished.step_doc("pending", leaseUntil=None), changes, None)


def _defer(finished: _Attempt) -> Plan:
    """Deferred (running → running): the same attempt runs again at the next allowed instant.

    A send held back by a send window or a frequency limit (compliance.md) is never dropped and
    spends no retry; the step waits `pending` with `deferredUntil`.
    """
    due = finished.outcome.deferred_until
    if due is None:
        raise ValueError("a deferred outcome needs its deferred_until")
    # The guard judged at the step's start; by the time it is recorded that may have passed.
    due = max(due, finished.now + MIN_DEFERRAL)
    changes = finished.changes(
        {finished.step_id: "pending"},
        nextAttemptAt=due,
        expectedProgressBy=due + PROGRESS_DEADLINE,
    )
    step_doc = finished.step_doc("pending", deferredUntil=due, leaseUntil=None)
    nonce = "deferred-" + due.isoformat()
    return Plan(step_doc, changes, EnqueueStep(finished.index, finished.attempt, due, nonce))


def _advance(finished: _Attempt, final: Literal["completed", "skipped"]) -> Plan:
    """A completed or skipped step: record it, then complete the run or go to the next step."""
    done = int(finished.execution.get("stepsCompleted", 0)) + 1
    total = len(finished.step_ids)
    step_doc = finished.step_doc(final, completedAt=finished.now, output=finished.outcome.output)
    if finished.outcome.skip_reason:
        step_doc["skipReason"] = finished.outcome.skip_reason
    changes = finished.changes(
        {finished.step_id: final},
        stepsCompleted=done,
        progress=done / total if total else 1.0,
        nextAttemptAt=None,
        stepResults=finished.step_results(final, None),
    )
    if finished.is_last_step:
        return _complete_run(finished, step_doc, changes)
    return _next_step(finished, step_doc, changes)


def _complete_run(finished: _Attempt, step_doc: dict[str, Any], changes: dict[str, Any]) -> Plan:
    """Last step done (running → completed): no step failed, or the run would have stopped."""
    now = finished.now
    changes |= {
        "status": "completed",
        "completedAt": now,
        "expiresAt": now + COMPLETION_TTL,
        "currentStep": None,
    }
    return Plan(step_doc, changes, None, "completed")


def _next_step(finished: _Attempt, step_doc: dict[str, Any], changes: dict[str, Any]) -> Plan:
    """Step done, more left (running → running): enqueue the next step, after any wait."""
    due = finished.now + timedelta(seconds=finished.outcome.next_delay_s)
    following = finished.index + 1
    changes |= {
        "currentStep": finished.step_ids[following],
        "currentStepIndex": following,
        "expectedProgressBy": due + PROGRESS_DEADLINE,
    }
    return Plan(step_doc, changes, EnqueueStep(following, 1, due))
