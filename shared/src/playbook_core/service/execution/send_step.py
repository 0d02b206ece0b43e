"""Running one send step end to end: gate, claim, one idempotent provider call (domain.md §7.4)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from playbook_core.domain.collections import COMMUNICATIONS, DELIVERIES
from playbook_core.domain.engine import StepOutcome
from playbook_core.domain.errors import PermanentProviderError, ProviderError
from playbook_core.domain.playbook import SendEmailStep, SendSmsStep
from playbook_core.domain.records import DeliveryRecord, SettingsRecord
from playbook_core.domain.sending import (
    Cap,
    Channel,
    consent_allows,
    contact_state_id,
    decide,
    too_late_for,
)
from playbook_core.ports import DocumentStore, EmailMessage, Mailer, SmsSender
from playbook_core.service.execution import approvals
from playbook_core.service.execution.actions import ActionContext, provider_outcome
from playbook_core.service.execution.deliveries import (
    Message,
    Unsendable,
    delivery_document,
    idempotent_key,
    record_sent,
    render_message,
    settle_skip,
)
from playbook_core.service.execution.provider_alerts import Alerter
from playbook_core.service.execution.send_claims import claim, release_claim
from playbook_core.service.records import read_delivery


@dataclass(frozen=True)
class SendPolicy:
    """The org's send settings (domain.md §2.3)."""

    dedup_window: timedelta
    caps: dict[str, Cap]
    approval_ttl: timedelta
    default_country: str

    @classmethod
    def of(cls, settings: SettingsRecord) -> SendPolicy:
        caps = {
            channel: Cap(max=int(cap.get("max", 1)), window_hours=int(cap.get("windowHours", 24)))
            for channel, cap in (settings.get("frequencyCaps") or {}).items()
            if cap.get("enabled")
        }
        return cls(
            dedup_window=timedelta(hours=int(settings.get("dedupWindowHours") or 24)),
            caps=caps,
            approval_ttl=timedelta(hours=int(settings.get("approvalTtlHours") or 72)),
            default_country=str(settings.get("defaultCountry") or "US"),
        )


@dataclass(frozen=True)
class Senders:
    mailer: Mailer | None
    sms: SmsSender | None
    alerts: Alerter | None = None


def run_send(
    step: SendEmailStep | SendSmsStep,
    ctx: ActionContext,
    *,
    store: DocumentStore,
    senders: Senders,
    policy: SendPolicy,
    attempts_allowed: int,
) -> StepOutcome:
    channel: Channel = "email" if isinstance(step, SendEmailStep) else "sms"
    try:
        message = render_message(channel, step.params, step.params.to, ctx, policy.default_country)
    except Unsendable as refused:
        return StepOutcome("failed", error_code=refused.code, error_message=str(refused))
    return deliver(
        message, ctx, store=store, senders=senders, policy=policy, attempts_allowed=attempts_allowed
    )


def deliver(
    message: Message,
    ctx: ActionContext,
    *,
    store: DocumentStore,
    senders: Senders,
    policy: SendPolicy,
    attempts_allowed: int,
) -> StepOutcome:
    document = delivery_document(
        ctx=ctx, message=message, key=idempotent_key(ctx, message), status="sending", now=ctx.now
    )
    existing = read_delivery(store, document["id"])
    if existing is not None and existing.get("status") in ("sent", "skipped"):
        return _already(document, existing["status"])
    gated = _gate(message, ctx, document, store=store, policy=policy)
    if gated is not None:
        return gated
    outcome = claim(
        store=store,
        ctx=ctx,
        message=message,
        document=document,
        dedup_window=policy.dedup_window,
        cap=policy.caps.get(message.channel),
        now=ctx.now,
    )
    if outcome == "done":
        return _already(document, "sent")
    if outcome != "send":
        return settle_skip(store, document, outcome)
    return _call_provider(
        message, ctx, document, store=store, senders=senders, attempts_allowed=attempts_allowed
    )


def _already(document: DeliveryRecord, status: str) -> StepOutcome:
    """A redelivered task after the send happened: complete without calling the provider."""
    return StepOutcome("completed", output={"deliveryId": document["id"], "status": status})


def _gate(
    message: Message,
    ctx: ActionContext,
    document: DeliveryRecord,
    *,
    store: DocumentStore,
    policy: SendPolicy,
) -> StepOutcome | None:
    """Staleness, consent, the dedup/cap peek, the approval gate and dry run; None: go ahead."""
    if not message.customer_facing:
        return (
            _dry_run(store, document, message, {"decision": "would_send"}) if ctx.dry_run else None
        )
    execution = ctx.execution
    consent = (execution.get("customer") or {}).get("consent")
    refused = None
    if too_late_for(execution.get("event")):  # its moment has passed: no reminder days late
        refused = "stale_event"
    elif not consent_allows(message.channel, consent, transactional=message.transactional):
        refused = "no_consent"
    if refused is not None:
        return settle_skip(store, document, refused)
    peek = decide(
        store.get(COMMUNICATIONS, contact_state_id(execution["orgId"], document["identityKey"])),
        playbook_id=execution["playbookId"],
        execution_id=execution["id"],
        delivery=document["id"],
        channel=message.channel,
        transactional=message.transactional,
        now=ctx.now,
        dedup_window=policy.dedup_window,
        cap=policy.caps.get(message.channel),
    )
    needs_approval = bool(execution.get("requiresApproval")) and not execution.get("approvedAt")
    if ctx.dry_run:
        decision = "would_send"
        if needs_approval:
            decision = "would_pause_for_approval"
        if peek.outcome != "send":
            decision = "would_skip"
        trace: dict[str, Any] = {
            "decision": decision,
            "reason": None if peek.outcome == "send" else peek.outcome,
            "dedup": {"wouldDedup": peek.outcome == "deduped", "lastSentAt": peek.last_sent_at},
            "cap": {"wouldCap": peek.outcome == "frequency_capped", "count": peek.recent_count},
        }
        return _dry_run(store, document, message, trace)
    if peek.outcome != "send":
        return settle_skip(store, document, peek.outcome)
    if needs_approval:
        return approvals.hold_for_approval(
            store=store, ctx=ctx, document=document, message=message, ttl=policy.approval_ttl
        )
    return None


def _dry_run(
    store: DocumentStore, document: DeliveryRecord, message: Message, trace: dict[str, Any]
) -> StepOutcome:
    store.set(
        DELIVERIES,
        document["id"],
        {**document, "status": "skipped", "skipReason": "dry_run", "dryRun": True},
    )
    return StepOutcome(
        "completed",
        output={"deliveryId": document["id"], "dryRun": True},
        extra={
            "trace": {**trace, "rendered": message.preview()},
            "renderedPreview": message.preview(),
        },
        counts={"skipped": 1},
    )


def _call_provider(
    message: Message,
    ctx: ActionContext,
    document: DeliveryRecord,
    *,
    store: DocumentStore,
    senders: Senders,
    attempts_allowed: int,
) -> StepOutcome:
    now = ctx.now
    try:
        if message.channel == "email":
            if senders.mailer is None:
                raise PermanentProviderError(
                    "email is not configured", code="provider_not_configured"
                )
            previous = senders.mailer.find_sent(document["id"]) if ctx.attempt > 1 else None
            sent = previous or senders.mailer.send(
                EmailMessage(
                    to=message.recipient,
                    subject=message.subject or "",
                    text=message.body or None,
                    html=None,
                    custom_id=document["id"],
                    reply_to=message.reply_to,
                    # Mailjet's EventPayload: which execution a provider event belongs to.
                    event_payload=json.dumps(
                        {
                            "orgId": ctx.execution["orgId"],
                            "executionId": ctx.execution["id"],
                            "playbookId": ctx.execution["playbookId"],
                        },
                        separators=(",", ":"),
                    ),
                    template_id=message.template_id,
                    variables=message.variables,
                )
            )
        else:
            if senders.sms is None:
                raise PermanentProviderError(
                    "SMS is not configured", code="provider_not_configured"
                )
            sent = senders.sms.send_sms(
                to=message.recipient,
                body=message.body,
                client_reference=document["id"].removeprefix("dlv_"),
                org_id=ctx.execution["orgId"],
            )
    except ProviderError as error:
        if (
            error.code in ("mailjet_outage", "provider_auth", "provider_not_configured")
            and senders.alerts
        ):
            provider = "mailjet" if message.channel == "email" else "blackleaf"
            senders.alerts.provider_failing(
                org_id=ctx.execution["orgId"], provider=provider, error_code=error.code, now=now
            )
        final = not error.transient or ctx.attempt >= attempts_allowed
        status = "failed" if final else "retrying"
        last_error = {"code": error.code, "message": error.detail, "httpStatus": error.http_status}
        store.set(
            DELIVERIES,
            document["id"],
            {
                **document,
                "status": status,
                "lastError": last_error,
                "leaseUntil": None,
                "updatedAt": now,
            },
        )
        if final and message.customer_facing:
            release_claim(store, ctx.execution, document["identityKey"])
        outcome = provider_outcome(error, extra={"deliveryId": document["id"]})
        return (
            outcome
            if not final
            else StepOutcome(
                "failed",
                error_code=error.code,
                error_message=error.detail,
                counts={"failed": 1},
            )
        )
    record_sent(store, ctx, document, sent.provider_message_id, now)
    return StepOutcome(
        "completed",
        output={"deliveryId": document["id"], "providerMessageId": sent.provider_message_id},
        extra={"renderedPreview": message.preview()},
        counts={"sent": 1},
    )
