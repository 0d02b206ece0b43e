"""The step handler (domain.md §7.3): claim one step, run it, record it, then enqueue the next."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from playbook_core.domain.collections import (
    EXECUTIONS,
    step_doc_id,
    steps_path,
    versions_path,
)
from playbook_core.domain.documents import definition_of
from playbook_core.domain.engine import StepOutcome, closed_run_changes, plan, step_expires_at
from playbook_core.domain.executions import TERMINAL
from playbook_core.domain.lifecycle import version_doc_id
from playbook_core.domain.matching import evaluate
from playbook_core.domain.playbook import (
    DelegateStep,
    EmitStep,
    PlaybookDefinition,
    SendEmailStep,
    SendSmsStep,
    WaitStep,
)
from playbook_core.domain.records import ExecutionRecord, StepRecord
from playbook_core.domain.retry import attempts_allowed
from playbook_core.logging import ALERT, event
from playbook_core.ports import (
    AgentHarness,
    Clock,
    DocumentStore,
    EventBus,
    Secrets,
    SlackNotifier,
    TaskQueue,
    Transaction,
)
from playbook_core.service.execution import actions
from playbook_core.service.execution.internal_notices import run_internal_email
from playbook_core.service.execution.render_context import build_context
from playbook_core.service.execution.run_start import StepTarget, enqueue_step
from playbook_core.service.execution.send_step import Senders, SendPolicy, run_send
from playbook_core.service.execution.step_task import StepTask
from playbook_core.service.records import read_execution, read_settings, read_step, with_changes
from playbook_core.service.reporting import counters

LEASE_MARGIN = timedelta(seconds=60)
_log = logging.getLogger("playbooks.engine")
_FINISHED_STEPS = frozenset({"completed", "skipped", "failed", "not_run"})


@dataclass(frozen=True)
class Engine:
    """Everything a step may touch, as ports."""

    store: DocumentStore
    queue: TaskQueue
    target: StepTarget
    clock: Clock
    bus: EventBus
    topic: str
    secrets: Secrets
    slack: SlackNotifier
    senders: Senders
    harness: AgentHarness | None
    jitter: float = 1.0


def run_step(task: StepTask, engine: Engine) -> dict[str, Any]:
    now = engine.clock.now()
    execution = read_execution(engine.store, task.execution_id)
    refused = _refusal(engine, execution, task, now)
    if refused is not None:
        return refused
    assert execution is not None  # noqa: S101 - _refusal answered for a missing execution
    version = engine.store.get(
        versions_path(execution["playbookId"]), version_doc_id(execution["playbookVersion"])
    )
    if version is None or version.get("orgId") != execution["orgId"]:
        return _tenant_mismatch(engine, execution, "version", now)
    definition = definition_of(version)
    claimed = _claim(engine, execution, definition, task, now)
    if claimed is None:
        return {"acknowledged": True, "outcome": "not_claimed"}
    running, previous = claimed
    outcome = _run(engine, running, definition, task, previous=previous, now=now)
    started = previous.get("startedAt", now) if previous is not None else now
    return _record(engine, running, definition, task, outcome, started_at=started)


def _refusal(
    engine: Engine, execution: ExecutionRecord | None, task: StepTask, now: datetime
) -> dict[str, Any] | None:
    """§7.3 steps 1–2: deliveries that are acknowledged without running anything."""
    if execution is None:
        event(
            _log,
            logging.WARNING,
            "task for a missing execution acknowledged",
            executionId=task.execution_id,
            stepIndex=task.step_index,
        )
        return {"acknowledged": True, "outcome": "missing_execution"}
    if execution.get("orgId") != task.org_id:
        return _tenant_mismatch(engine, execution, "task", now)
    if execution.get("status") in TERMINAL:
        return {"acknowledged": True, "outcome": "execution_terminal"}
    if task.step_index < int(execution.get("currentStepIndex", 0)):
        return {"acknowledged": True, "outcome": "step_already_done"}
    return None


def _claim(
    engine: Engine,
    execution: ExecutionRecord,
    definition: PlaybookDefinition,
    task: StepTask,
    now: datetime,
) -> tuple[ExecutionRecord, StepRecord | None] | None:
    step = definition.steps[task.step_index]
    timeout = getattr(step, "timeout_seconds", None) or actions.DEFAULT_TIMEOUT_S
    lease = now + timedelta(seconds=timeout) + LEASE_MARGIN
    path, doc_id = steps_path(execution["id"]), step_doc_id(task.step_index)

    def work(tx: Transaction) -> tuple[ExecutionRecord, StepRecord | None] | None:
        current = read_execution(tx, execution["id"])
        doc = read_step(tx, execution["id"], task.step_index)
        if current is None or current.get("status") in TERMINAL:
            return None
        if doc is not None:
            if doc.get("status") in _FINISHED_STEPS or task.attempt < int(doc.get("attempt", 1)):
                return None
            lease_until = doc.get("leaseUntil")
            if doc["status"] == "running" and lease_until is not None and lease_until > now:
                return None
        step_id = step.id or f"step_{task.step_index + 1}"  # as new_execution names it
        statuses: dict[str, str] = {**current.get("stepStatuses", {}), step_id: "running"}
        changes: dict[str, Any] = {
            "status": "running" if current["status"] == "queued" else current["status"],
            "startedAt": current.get("startedAt") or now,
            "currentStepIndex": task.step_index,
            "currentStep": step.id,
            "heartbeatAt": now,
            "expectedProgressBy": lease,
            "stepStatuses": statuses,
            "updatedAt": now,
        }
        if current["status"] == "pending_approval":
            changes["status"] = "pending_approval"
        tx.update(EXECUTIONS, execution["id"], changes)
        claimed: StepRecord = {
            "orgId": current["orgId"],
            "executionId": current["id"],
            "index": task.step_index,
            "stepId": step_id,
            "action": step.action,
            "status": "running",
            "attempt": task.attempt,
            "leaseUntil": lease,
            "startedAt": doc.get("startedAt", now) if doc is not None else now,
        }
        whole = {**doc, **claimed} if doc is not None else claimed
        tx.set(
            path, doc_id, {**whole, "expiresAt": step_expires_at(definition, task.step_index, now)}
        )
        return with_changes(current, changes), doc

    return engine.store.transaction(work)


def _run(
    engine: Engine,
    execution: ExecutionRecord,
    definition: PlaybookDefinition,
    task: StepTask,
    *,
    previous: StepRecord | None,
    now: datetime,
) -> StepOutcome:
    step = definition.steps[task.step_index]
    context = build_context(engine.store, execution, {"createdBy": execution.get("userId")})
    ctx = actions.ActionContext(
        execution, definition, task.step_index, task.attempt, context, previous, now
    )
    if step.condition is not None and not evaluate(step.condition, context):
        trace = {"decision": "skipped_condition"}
        return StepOutcome("skipped", skip_reason="condition_false", extra={"trace": trace})
    if isinstance(step, DelegateStep):
        return actions.delegate(step, ctx, engine.harness)
    if isinstance(step, WaitStep):
        return actions.wait(step, ctx)
    if isinstance(step, EmitStep):
        return actions.emit(step, ctx, engine.bus, engine.topic)
    if isinstance(step, (SendEmailStep, SendSmsStep)) or step.params.channel == "email_internal":
        return _send(engine, step, ctx, definition)
    return actions.notify(step, ctx, store=engine.store, secrets=engine.secrets, slack=engine.slack)


def _send(
    engine: Engine, step: Any, ctx: actions.ActionContext, definition: PlaybookDefinition
) -> StepOutcome:
    policy = SendPolicy.of(read_settings(engine.store, ctx.execution["orgId"]))
    allowed = _attempts(step, definition)
    if isinstance(step, (SendEmailStep, SendSmsStep)):
        return run_send(
            step,
            ctx,
            store=engine.store,
            senders=engine.senders,
            policy=policy,
            attempts_allowed=allowed,
            remediate=_remediator(engine, ctx, definition),
            rewrites=lambda index: _attempts(definition.steps[index], definition) - 1,
        )
    return run_internal_email(
        step,
        ctx,
        store=engine.store,
        senders=engine.senders,
        policy=policy,
        attempts_allowed=allowed,
    )


def _remediator(
    engine: Engine, ctx: actions.ActionContext, definition: PlaybookDefinition
) -> Callable[[int, str], Any | None]:
    """Runs a delegate step again with compliance findings as its remediation (compliance.md).

    The rewrite becomes that step's output, so the run shows the copy that went out.
    """
    rewrites = 0

    def remediate(index: int, findings: str) -> Any | None:
        nonlocal rewrites
        rewrites += 1
        step = definition.steps[index]
        if not isinstance(step, DelegateStep):
            return None
        execution_id = ctx.execution["id"]
        stored = read_step(engine.store, execution_id, index)
        previous: StepRecord = {
            "index": index, "stepId": step.id or "", "action": "delegate", "status": "completed",
            "attempt": stored["attempt"] if stored else 1,
            "output": stored.get("output") if stored else None,
            "validation": {"remediation": findings},
        }  # fmt: skip
        attempt = previous["attempt"] + rewrites  # a new idempotency key per rewrite
        sub = actions.ActionContext(
            ctx.execution, definition, index, attempt, ctx.render, previous, ctx.now
        )
        outcome = actions.delegate(step, sub, engine.harness)
        if outcome.status != "completed":
            return None
        engine.store.update(
            steps_path(execution_id),
            step_doc_id(index),
            {
                "output": outcome.output,
                "remediatedAt": ctx.now,
                "updatedAt": ctx.now,
                "expiresAt": step_expires_at(definition, index, ctx.now),
            },
        )
        return outcome.output

    return remediate


def _attempts(step: Any, definition: PlaybookDefinition) -> int:
    retry = (
        step.retry_on_failure if step.retry_on_failure is not None else definition.retry_on_failure
    )
    return attempts_allowed(
        retry_on_failure=retry,
        step_max_retries=step.max_retries,
        playbook_max_retries=definition.max_retries,
    )


def _record(
    engine: Engine,
    execution: ExecutionRecord,
    definition: PlaybookDefinition,
    task: StepTask,
    outcome: StepOutcome,
    *,
    started_at: datetime,
) -> dict[str, Any]:
    """Write the step result and the execution summary first, then enqueue what comes next."""
    now = engine.clock.now()
    step = definition.steps[task.step_index]
    result = plan(
        execution=execution,
        step_ids=[s.id or "" for s in definition.steps],
        actions=[s.action for s in definition.steps],
        index=task.step_index,
        attempt=task.attempt,
        attempts_allowed=_attempts(step, definition),
        outcome=outcome,
        now=now,
        jitter=engine.jitter,
    )
    changes = dict(result.execution_changes)
    trace = outcome.extra.get("trace")
    if execution.get("dryRun") and trace is not None:
        changes["trace"] = [
            *execution.get("trace", []),
            {"stepId": step.id, "action": step.action, **trace},
        ]
    step_doc = {
        **result.step_doc,
        "startedAt": started_at,
        "leaseUntil": None,
        "updatedAt": now,
        "expiresAt": step_expires_at(definition, task.step_index, now),
    }
    step_doc.pop("trace", None)

    def work(tx: Transaction) -> bool:
        """Whether the run is still open; one closed meanwhile keeps its ending."""
        current = read_execution(tx, execution["id"])
        still_open = current is not None and current["status"] not in TERMINAL
        tx.set(
            steps_path(execution["id"]),
            step_doc_id(task.step_index),
            {
                "orgId": execution["orgId"],
                "executionId": execution["id"],
                **step_doc,
            },
        )
        if still_open:
            tx.update(EXECUTIONS, execution["id"], changes)
        return still_open

    if not engine.store.transaction(work):
        # Cancelled, archived or given up by the reaper while this step ran: its result is kept
        # on the step, but the run is neither reopened nor counted again, and nothing follows.
        event(_log, logging.WARNING, "step finished after its run was closed",
              executionId=execution["id"], stepIndex=task.step_index)  # fmt: skip
        return {"acknowledged": True, "outcome": outcome.status, "finished": None}
    counters.record_finish(engine.store, execution, result.finished, at=now)
    if result.command is not None:
        enqueue_step(
            engine.queue,
            engine.target,
            execution,
            result.command.step_index,
            result.command.attempt,
            schedule_time=result.command.at if result.command.at > now else None,
            nonce=result.command.nonce,
        )
    if result.finished == "failed" and not execution.get("dryRun"):
        actions.run_failed_notice(engine.store, execution, now)
    event(
        _log,
        logging.INFO,
        "step finished",
        executionId=execution["id"],
        stepIndex=task.step_index,
        status=outcome.status,
        finished=result.finished,
    )
    return {"acknowledged": True, "outcome": outcome.status, "finished": result.finished}


def _tenant_mismatch(
    engine: Engine, execution: ExecutionRecord, where: str, now: datetime
) -> dict[str, Any]:
    """§7.13 check 3: refuse before any side effect, fail the run, leave a security record."""
    event(
        _log,
        ALERT,
        "tenant mismatch in step handler",
        security_event="tenant_mismatch",
        executionId=execution["id"],
        orgId=execution.get("orgId"),
        where=where,
    )
    if execution.get("status") not in TERMINAL:
        changes = {
            **closed_run_changes(execution, "failed", "tenant_mismatch", now),
            "error": {"code": "tenant_mismatch", "message": "the task does not belong to this run"},
        }
        engine.store.update(EXECUTIONS, execution["id"], changes)
        counters.record_finish(engine.store, with_changes(execution, changes), "failed", at=now)
    return {"acknowledged": True, "outcome": "tenant_mismatch"}
