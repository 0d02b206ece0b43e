"""What each non-send action does (domain.md §7.4): delegate, wait, emit, notify dashboard/slack."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from playbook_core.domain import templating
from playbook_core.domain.collections import NOTIFICATIONS
from playbook_core.domain.engine import StepOutcome
from playbook_core.domain.envelope import Causation, EventEnvelope, Source
from playbook_core.domain.errors import NotFound, ProviderError
from playbook_core.domain.ids import h
from playbook_core.domain.playbook import (
    DelegateStep,
    EmitStep,
    NotifyStep,
    PlaybookDefinition,
    WaitStep,
    minutes_of,
)
from playbook_core.domain.records import ExecutionRecord, StepRecord
from playbook_core.domain.secret_names import org_slack_reference
from playbook_core.ports import AgentHarness, DocumentStore, EventBus, Secrets, SlackNotifier
from playbook_core.service.ingress.event_log import publish_event
from playbook_core.service.records import read_settings

DEFAULT_TIMEOUT_S = 20
MAX_OUTPUT_CHARS = 64 * 1024
MOCK_OUTPUT = {
    "title": "[dry run]",
    "body": "[dry run]",
    "summary": "[dry run]",
    "sms": "[dry run]",
}
_log = logging.getLogger("playbooks.actions")


@dataclass(frozen=True)
class ActionContext:
    execution: ExecutionRecord
    definition: PlaybookDefinition
    index: int
    attempt: int
    render: dict[str, Any]  # the §3.5 context
    previous: StepRecord | None  # this step's stored doc from an earlier attempt
    now: datetime
    # Documents (collection, id, data) the step handler writes with the step's result, in its
    # transaction; None: write them at once. Deterministic ids, so a re-run writes the same.
    writes: list[tuple[str, str, dict[str, Any]]] | None = None

    @property
    def dry_run(self) -> bool:
        return bool(self.execution.get("dryRun"))


def provider_outcome(error: ProviderError, extra: dict[str, Any] | None = None) -> StepOutcome:
    """Transient errors retry with their class; permanent ones fail the step at once."""
    if not error.transient:
        return StepOutcome(
            "failed", error_code=error.code, error_message=error.detail, extra=extra or {}
        )
    kind = "rate_limited" if error.code == "rate_limited" else "transient"
    if error.code == "mailjet_outage":
        kind = "mailjet_outage"
    return StepOutcome(
        "retry",
        error_code=error.code,
        error_message=error.detail,
        error_class=kind,  # type: ignore[arg-type]
        retry_after_s=error.retry_after_s,
        extra=extra or {},
    )


def delegate(step: DelegateStep, ctx: ActionContext, harness: AgentHarness | None) -> StepOutcome:
    threshold = (
        step.validation_threshold
        if step.validation_threshold is not None
        else ctx.definition.validation_threshold
    )
    payload = templating.render_value(step.params.input, ctx.render, strict=False)
    execution = ctx.execution
    context: dict[str, Any] = {
        "orgId": execution["orgId"],
        "playbookId": execution["playbookId"],
        "playbookVersion": execution["playbookVersion"],
        "executionId": execution["id"],
        "stepId": step.id,
        "attempt": ctx.attempt,
        "dryRun": ctx.dry_run,
        "idempotencyKey": h(execution["id"], ctx.index, ctx.attempt),
    }
    previous = ctx.previous
    validation = previous.get("validation") if previous is not None else None
    if previous is not None and validation and validation.get("remediation"):
        context |= {
            "remediation": validation["remediation"],
            "previousOutput": previous.get("output"),
        }
    if ctx.dry_run and execution.get("mockAgents"):
        return StepOutcome("completed", output=MOCK_OUTPUT, extra={"score": 100})
    if harness is None:
        return StepOutcome(
            "failed", error_code="harness_not_configured", error_message="no agent harness"
        )
    try:
        reply = harness.run(
            agent=step.params.agent,
            task=step.params.task,
            payload=payload,
            context=context,
            timeout_s=float(step.timeout_seconds or DEFAULT_TIMEOUT_S),
        )
    except ProviderError as error:
        return provider_outcome(error)
    check = {"score": reply.score, "issues": reply.issues, "remediation": reply.remediation}
    if reply.score < threshold:
        return StepOutcome(
            "retry",
            output=reply.output,
            error_code="validation_below_threshold",
            error_message=f"score {reply.score} is below the threshold {threshold}",
            error_class="below_threshold",
            extra={"validation": check, "output": reply.output},
        )
    return StepOutcome("completed", output=reply.output, extra={"validation": check})


def wait(step: WaitStep, ctx: ActionContext) -> StepOutcome:
    seconds = 0.0 if ctx.dry_run else minutes_of(step.params.duration) * 60.0
    return StepOutcome("completed", next_delay_s=seconds, extra={"waitedSeconds": seconds})


def emit(step: EmitStep, ctx: ActionContext, bus: EventBus, topic: str) -> StepOutcome:
    execution = ctx.execution
    causation = execution.get("causation") or {}
    envelope = EventEnvelope(
        event_id="emt_" + h(execution["id"], ctx.index),
        org_id=execution["orgId"],
        name=step.params.event_name,
        occurred_at=ctx.now,
        received_at=ctx.now,
        source=Source(kind="playbook", ref=execution["playbookId"]),
        customer=None,
        data=templating.render_value(step.params.data, ctx.render, strict=False),
        causation=Causation(
            chain=[*causation.get("chain", []), execution["playbookId"]],
            depth=int(causation.get("depth", 0)) + 1,
        ),
    )
    if ctx.dry_run:
        return StepOutcome(
            "completed", extra={"trace": {"decision": "would_emit", "eventId": envelope.event_id}}
        )
    publish_event(envelope, bus=bus, topic=topic)
    return StepOutcome("completed", output={"eventId": envelope.event_id})


def notify(
    step: NotifyStep,
    ctx: ActionContext,
    *,
    store: DocumentStore,
    secrets: Secrets,
    slack: SlackNotifier,
) -> StepOutcome:
    """Dashboard and Slack notices; `email_internal` goes through the send pipeline instead."""
    params = step.params
    try:
        message = str(templating.render(params.message, ctx.render))
        title = str(templating.render(params.title, ctx.render)) if params.title else None
    except templating.UnresolvedVariable as missing:
        return StepOutcome("failed", error_code="unresolved_variable", error_message=missing.path)
    if ctx.dry_run:
        trace = {"decision": "would_notify", "channel": params.channel}
        return StepOutcome("completed", extra={"trace": trace})
    if params.channel == "dashboard":
        _dashboard_notice(store, ctx, to=params.to, title=title, message=message)
        return StepOutcome("completed", output={"notified": "dashboard"})
    return _slack_notice(store, ctx, secrets, slack, f"*{title}*\n{message}" if title else message)


def _dashboard_notice(
    store: DocumentStore, ctx: ActionContext, *, to: str | None, title: str | None, message: str
) -> None:
    execution = ctx.execution
    notice_id = "ntf_" + h(execution["id"], ctx.index)
    notice = {
        "orgId": execution["orgId"],
        "channels": ["dashboard"],
        "to": to,
        "subject": title,
        "body": message,
        "sentAt": ctx.now,
        "source": "playbook",
        "playbookId": execution["playbookId"],
        "executionId": execution["id"],
    }
    if ctx.writes is not None:
        ctx.writes.append((NOTIFICATIONS, notice_id, notice))
    else:
        store.set(NOTIFICATIONS, notice_id, notice)


def _slack_notice(
    store: DocumentStore, ctx: ActionContext, secrets: Secrets, slack: SlackNotifier, text: str
) -> StepOutcome:
    org_id = ctx.execution["orgId"]
    reference = org_slack_reference(org_id, read_settings(store, org_id))
    not_configured = StepOutcome(
        "failed", error_code="slack_not_configured", error_message="no Slack webhook is configured"
    )
    if not reference:
        return not_configured
    try:
        slack.post(secrets.get(reference), text)
    except NotFound:
        return not_configured
    except ProviderError as error:
        return provider_outcome(error)
    return StepOutcome("completed", output={"notified": "slack"})


def run_failed_notice(store: DocumentStore, execution: ExecutionRecord, now: datetime) -> None:
    """§7.2: a failed run tells the org's admins on the dashboard."""
    store.set(
        NOTIFICATIONS,
        "ntf_" + h(execution["id"], "failed"),
        {
            "orgId": execution["orgId"],
            "channels": ["dashboard"],
            "to": "role:admin",
            "subject": "Playbook run failed",
            "body": f"{execution.get('playbookName') or execution['playbookId']} failed.",
            "sentAt": now,
            "source": "playbook",
            "playbookId": execution["playbookId"],
            "executionId": execution["id"],
        },
    )
