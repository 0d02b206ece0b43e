"""The step handler (domain.md §7.3): claim one step, run it, record it, then enqueue the next."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

from playbook_core.domain.collections import (
    EXECUTIONS,
    ORGANIZATIONS,
    SETTINGS,
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
from playbook_core.domain.records import ExecutionRecord, SettingsRecord, StepRecord
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
from playbook_core.service.execution.render_context import context_of, org_fields, outputs_of
from playbook_core.service.execution.run_start import StepTarget, enqueue_step
from playbook_core.service.execution.send_step import Senders, SendPolicy, first_reads, run_send
from playbook_core.service.execution.step_reads import Key, PinnedVersion, Prefetched, VersionCache
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
    # The instance's pinned versions: `dataclasses.replace` (a new jitter per step) shares it.
    versions: VersionCache = field(default_factory=VersionCache, compare=False, repr=False)


@dataclass(frozen=True)
class _Claim:
    """What the claim's transaction decided: an answer, a tenant mismatch or a claimed step."""

    answer: dict[str, Any] | None = None
    mismatch: tuple[ExecutionRecord, str] | None = None  # (the run, which check failed)
    ctx: actions.ActionContext | None = None  # the claimed step, ready to run
    known: dict[Key, dict[str, Any] | None] = field(default_factory=dict)
    # ((playbookId, version), the version) when this claim read it, for the instance to keep
    read_version: tuple[tuple[str, int], PinnedVersion] | None = None


_NOT_CLAIMED = {"acknowledged": True, "outcome": "not_claimed"}


def run_step(task: StepTask, engine: Engine) -> dict[str, Any]:
    now = engine.clock.now()
    claim = engine.store.transaction(partial(_claim, engine=engine, task=task, now=now))
    if claim.read_version is not None:
        engine.versions.put(*claim.read_version[0], claim.read_version[1])
    if claim.mismatch is not None:
        return _tenant_mismatch(engine, *claim.mismatch, now)
    if claim.ctx is None:
        answer = dict(claim.answer or _NOT_CLAIMED)
        if answer["outcome"] == "missing_execution":
            event(_log, logging.WARNING, "task for a missing execution acknowledged",
                  executionId=task.execution_id, stepIndex=task.step_index)  # fmt: skip
        return answer
    # The step's own reads of what the claim just read are answered from the claim.
    engine = replace(engine, store=Prefetched(engine.store, claim.known))
    ctx = replace(claim.ctx, writes=[])
    outcome = _run(engine, ctx)
    previous = ctx.previous
    started = previous.get("startedAt", now) if previous is not None else now
    return _record(
        engine, ctx.execution, ctx.definition, task, outcome, started_at=started,
        writes=ctx.writes or [],
    )  # fmt: skip


def _refusal(execution: ExecutionRecord | None, task: StepTask) -> _Claim | None:
    """§7.3 steps 1–2: deliveries that are acknowledged without running anything."""
    if execution is None:
        return _Claim(answer={"acknowledged": True, "outcome": "missing_execution"})
    if execution.get("orgId") != task.org_id:
        return _Claim(mismatch=(execution, "task"))
    if execution.get("status") in TERMINAL:
        return _Claim(answer={"acknowledged": True, "outcome": "execution_terminal"})
    if task.step_index < int(execution.get("currentStepIndex", 0)):
        return _Claim(answer={"acknowledged": True, "outcome": "step_already_done"})
    return None


def _claim(tx: Transaction, *, engine: Engine, task: StepTask, now: datetime) -> _Claim:
    """One transaction: the checks, the lease, and every document the step reads before acting.

    Reads come first (the run, its pinned version unless this instance holds it, this step's
    document, the earlier steps' documents, settings and organization, and a send's delivery
    and contact state), then the two writes of the claim.
    """
    current = read_execution(tx, task.execution_id)
    refused = _refusal(current, task)
    if refused is not None:
        return refused
    assert current is not None  # noqa: S101 - _refusal answered for a missing execution
    execution_id, org_id = current["id"], current["orgId"]
    pinned_as = (current["playbookId"], int(current["playbookVersion"]))
    pinned = engine.versions.get(*pinned_as)
    read_version = None
    if pinned is None:
        version = tx.get(versions_path(pinned_as[0]), version_doc_id(pinned_as[1]))
        if version is not None:
            pinned = PinnedVersion(version.get("orgId"), definition_of(version))
            read_version = (pinned_as, pinned)
    if pinned is None or pinned.org_id != org_id:
        return _Claim(mismatch=(current, "version"))
    definition = pinned.definition
    step = definition.steps[task.step_index]
    doc = read_step(tx, execution_id, task.step_index)
    if not _claimable(doc, task, now):
        return _Claim(answer=_NOT_CLAIMED, read_version=read_version)
    path = steps_path(execution_id)
    earlier = [read_step(tx, execution_id, index) for index in range(task.step_index)]
    settings, organization = tx.get(SETTINGS, org_id), tx.get(ORGANIZATIONS, org_id)
    known: dict[Key, dict[str, Any] | None] = {
        (SETTINGS, org_id): settings,
        (ORGANIZATIONS, org_id): organization,
        **{(path, step_doc_id(i)): dict(d) if d else None for i, d in enumerate(earlier)},
    }
    timeout = getattr(step, "timeout_seconds", None) or actions.DEFAULT_TIMEOUT_S
    lease = now + timedelta(seconds=timeout) + LEASE_MARGIN
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
    running = with_changes(current, changes)
    render = context_of(
        running, {"createdBy": running.get("userId")},
        org=org_fields(org_id, settings or {}, organization),
        steps=outputs_of(d for d in earlier if d is not None),
    )  # fmt: skip
    ctx = actions.ActionContext(
        running, definition, task.step_index, task.attempt, render, doc, now
    )
    if isinstance(step, (SendEmailStep, SendSmsStep)):
        country = SendPolicy.of(cast("SettingsRecord", settings or {})).default_country
        for key in first_reads(step, ctx, country):
            known[key] = tx.get(*key)
    tx.update(EXECUTIONS, execution_id, changes)
    claimed: StepRecord = {
        "orgId": org_id,
        "executionId": execution_id,
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
        path,
        step_doc_id(task.step_index),
        {**whole, "expiresAt": step_expires_at(definition, task.step_index, now)},
    )
    return _Claim(ctx=ctx, known=known, read_version=read_version)


def _claimable(doc: StepRecord | None, task: StepTask, now: datetime) -> bool:
    """Not finished, not an older attempt, not under another worker's live lease."""
    if doc is None:
        return True
    if doc.get("status") in _FINISHED_STEPS or task.attempt < int(doc.get("attempt", 1)):
        return False
    lease_until = doc.get("leaseUntil")
    return not (doc["status"] == "running" and lease_until is not None and lease_until > now)


def _run(engine: Engine, ctx: actions.ActionContext) -> StepOutcome:
    definition = ctx.definition
    step = definition.steps[ctx.index]
    if step.condition is not None and not evaluate(step.condition, ctx.render):
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
    writes: list[tuple[str, str, dict[str, Any]]],
) -> dict[str, Any]:
    """Write the step result and the execution summary first, then enqueue what comes next.

    `writes`: documents the action left to write with its result (a dashboard notice), written
    even when the run was closed meanwhile, as the action would have written them itself.
    """
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
        for collection, doc_id, data in writes:
            tx.set(collection, doc_id, data)
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
