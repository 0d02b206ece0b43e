"""Running one send step end to end: gate, claim, one idempotent provider call (domain.md §7.4)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from playbook_core.domain.collections import COMMUNICATIONS, DELIVERIES
from playbook_core.domain.compliance import CheckResult, ConsentState
from playbook_core.domain.compliance.rules import TIME_KINDS
from playbook_core.domain.consent import identities
from playbook_core.domain.engine import StepOutcome
from playbook_core.domain.errors import PermanentProviderError, ProviderError
from playbook_core.domain.playbook import SendEmailStep, SendSmsStep
from playbook_core.domain.records import DeliveryRecord, SettingsRecord, SkipReason
from playbook_core.domain.sending import (
    Cap,
    Channel,
    Claim,
    consent_allows,
    contact_state_id,
    decide,
    too_late_for,
)
from playbook_core.domain.timezones import org_timezone_name
from playbook_core.ports import DocumentStore, EmailMessage, Mailer, SmsSender
from playbook_core.service.compliance.consent import consent_in_force
from playbook_core.service.compliance.guard import Guarded, guard, stored
from playbook_core.service.compliance.unsubscribe import UnsubscribeLinks
from playbook_core.service.execution import approvals
from playbook_core.service.execution.actions import ActionContext, provider_outcome
from playbook_core.service.execution.deliveries import (
    MAX_SMS,
    Message,
    Unsendable,
    delivery_document,
    idempotent_key,
    record_sent,
    render_message,
    settle_skip,
)
from playbook_core.service.execution.product_stock import (
    ProductCheck,
    check_product,
    guarded_product,
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
    compliance: Mapping[str, Any]  # the settings the guard reads (settings.compliance, zone)
    zone: str

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
            compliance={"compliance": settings.get("compliance")},
            zone=org_timezone_name(settings),
        )


@dataclass(frozen=True)
class Senders:
    mailer: Mailer | None
    sms: SmsSender | None
    alerts: Alerter | None = None
    # Signs the unsubscribe link of marketing email; without it CAN-SPAM blocks every one.
    unsubscribe: UnsubscribeLinks | None = None


# Asks a delegate step's agent to rewrite its output: (step index, findings) → new output.
Remediate = Callable[[int, str], Any | None]
_OUTPUT_OF = re.compile(r"steps\.([A-Za-z0-9_-]+)\.output")


@dataclass(frozen=True)
class Rewrite:
    """How a send whose wording is blocked gets it rewritten by the agent that wrote it."""

    source: int  # the delegate step whose output the message renders
    remediate: Remediate
    rounds: int  # how many rewrites: the delegate's retries
    render: Callable[[ActionContext], Message]


def run_send(
    step: SendEmailStep | SendSmsStep,
    ctx: ActionContext,
    *,
    store: DocumentStore,
    senders: Senders,
    policy: SendPolicy,
    attempts_allowed: int,
    remediate: Remediate | None = None,
    rewrites: Callable[[int], int] = lambda _index: 0,
) -> StepOutcome:
    channel: Channel = "email" if isinstance(step, SendEmailStep) else "sms"

    def render(context: ActionContext) -> Message:
        return render_message(channel, step.params, step.params.to, context, policy.default_country)

    try:
        message = render(ctx)
        product = guarded_product(step, ctx)
    except Unsendable as refused:
        return StepOutcome("failed", error_code=refused.code, error_message=str(refused))
    source = _written_by_agent(step, ctx.definition)
    rewrite = None
    if source is not None and remediate is not None:
        rewrite = Rewrite(source, remediate, rewrites(source), render)
    return deliver(
        message, ctx, store=store, senders=senders, policy=policy,
        attempts_allowed=attempts_allowed, rewrite=rewrite, product=product,
    )  # fmt: skip


def first_reads(
    step: SendEmailStep | SendSmsStep, ctx: ActionContext, default_country: str
) -> list[tuple[str, str]]:
    """The documents `deliver` reads first (delivery, contact state), for the claim to read.

    None when the message does not render: the step then fails before reading anything.
    """
    channel: Channel = "email" if isinstance(step, SendEmailStep) else "sms"
    try:
        message = render_message(channel, step.params, step.params.to, ctx, default_country)
    except (Unsendable, ValueError, LookupError):  # the step meets the same error itself
        return []
    document = delivery_document(
        ctx=ctx, message=message, key=idempotent_key(ctx, message), status="sending", now=ctx.now
    )
    reads = [(DELIVERIES, document["id"])]
    if message.customer_facing:
        state = contact_state_id(ctx.execution["orgId"], document["identityKey"])
        reads.append((COMMUNICATIONS, state))
    return reads


def _written_by_agent(step: SendEmailStep | SendSmsStep, definition: Any) -> int | None:
    """The delegate step whose output the message's text renders, if any (the last one named)."""
    texts = [step.params.body or ""]
    if isinstance(step, SendEmailStep):
        texts.append(step.params.subject)
    named = {match for text in texts for match in _OUTPUT_OF.findall(text)}
    delegates = [
        index for index, candidate in enumerate(definition.steps)
        if candidate.action == "delegate" and candidate.id in named
    ]  # fmt: skip
    return delegates[-1] if delegates else None


def deliver(
    message: Message,
    ctx: ActionContext,
    *,
    store: DocumentStore,
    senders: Senders,
    policy: SendPolicy,
    attempts_allowed: int,
    rewrite: Rewrite | None = None,
    product: str | None = None,
) -> StepOutcome:
    """`product`: the id a send's guard names; its stock is read on every pass (domain.md §7.4)."""
    document = delivery_document(
        ctx=ctx, message=message, key=idempotent_key(ctx, message), status="sending", now=ctx.now
    )
    existing = read_delivery(store, document["id"])
    if existing is not None and existing.get("status") in ("sent", "skipped"):
        return _already(document, existing["status"])
    contact = None  # an internal send takes no dedup or cap: its contact state goes unread
    if message.customer_facing:
        contact = store.get(
            COMMUNICATIONS, contact_state_id(ctx.execution["orgId"], document["identityKey"])
        )
    checked = None
    if message.customer_facing:
        # A reviewer approved this very delivery (held for approval): its wording is theirs.
        reviewed = (
            existing is not None
            and existing.get("status") == "held"
            and bool(ctx.execution.get("approvedAt"))
        )
        guarded = _guard(
            message, ctx, document, contact, store=store, senders=senders, policy=policy,
            rewrite=rewrite, reviewed=reviewed,
        )  # fmt: skip
        if isinstance(guarded, StepOutcome):
            return guarded
        ctx, message, document, checked = guarded
    stocked = None
    if product is not None:
        # Read now, after any rewrite, on every attempt: an approved or deferred send looks again.
        stocked = check_product(store, org_id=ctx.execution["orgId"], product_id=product)
        document = {**document, "product": stocked.stored()}
    gated = _gate(
        message, ctx, document, contact, checked, stocked=stocked, store=store, policy=policy
    )
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


def _guard(
    message: Message,
    ctx: ActionContext,
    document: DeliveryRecord,
    contact: Mapping[str, Any] | None,
    *,
    store: DocumentStore,
    senders: Senders,
    policy: SendPolicy,
    rewrite: Rewrite | None,
    reviewed: bool,
) -> tuple[ActionContext, Message, DeliveryRecord, Checked] | StepOutcome:
    """The compliance guard on a customer-facing send (compliance.md §7).

    Returns the message as it would go (footer appended, rewritten by its agent if the wording
    was blocked) with the check on its delivery, or the step's outcome when it stops here.
    """

    def guarded(candidate: Message) -> Checked:
        return _compliance(
            candidate, ctx, document, contact, store=store, policy=policy,
            links=senders.unsubscribe,
        )  # fmt: skip

    checked = guarded(message)
    wording = _wording_blocked(checked.guarded.result) and not reviewed
    rewritable = wording and rewrite is not None and not ctx.dry_run
    if rewritable and rewrite is not None:
        ctx, message, checked = _rewritten(ctx, message, checked, rewrite, guarded)
    written = message.body  # the preview stops before the footer and its signed link
    message = replace(message, body=checked.guarded.body)
    if message.channel == "sms" and len(message.body) > MAX_SMS:
        # The footer the rules ask for made it too long: shorten the text, not the footer.
        detail = f"the SMS with its compliance footer is {len(message.body)} characters"
        return StepOutcome(
            "failed", error_code="sms_too_long", error_message=f"{detail}; at most {MAX_SMS}"
        )
    document = {
        **document,
        "preview": written[:200],
        "compliance": stored(checked.guarded.result),
        "consentRecordId": checked.consent_record_id,
    }
    if rewritable and _wording_blocked(checked.guarded.result):
        # The agent could not write it clean: a person decides instead (compliance.md).
        return approvals.hold_for_approval(
            store=store, ctx=ctx, document=document, message=message, ttl=policy.approval_ttl
        )
    return ctx, message, document, replace(checked, reviewed=reviewed)


def _already(document: DeliveryRecord, status: str) -> StepOutcome:
    """A redelivered task after the send happened: complete without calling the provider."""
    return StepOutcome("completed", output={"deliveryId": document["id"], "status": status})


@dataclass(frozen=True)
class Checked:
    guarded: Guarded
    consent: ConsentState | None
    consent_record_id: str | None
    reviewed: bool = False  # a reviewer approved this held delivery's wording


def _compliance(
    message: Message,
    ctx: ActionContext,
    document: DeliveryRecord,
    contact: Mapping[str, Any] | None,
    *,
    store: DocumentStore,
    policy: SendPolicy,
    links: UnsubscribeLinks | None,
) -> Checked:
    """The guard on the rendered text (agent-written copy too), for this recipient, now."""
    execution = ctx.execution
    customer = execution.get("customer") or {}
    marketing = not message.transactional
    consent, record_id = None, None
    if marketing:
        consent, record_id = _consent_state(store, execution, document, message.channel)
    recent: list[datetime] = [
        sent["at"] for sent in ((contact or {}).get("recentSends") or {}).get(message.channel, [])
        if sent.get("deliveryId") != document["id"]
    ]  # fmt: skip
    guarded = guard(
        settings=policy.compliance,
        org_zone=policy.zone,
        channel=message.channel,
        subject=message.subject,
        body=message.body,
        marketing=marketing,
        address_state=customer.get("state"),
        phone=message.recipient if message.channel == "sms" else customer.get("phone"),
        consent=consent,
        age_verified=customer.get("ageVerified"),
        recent_sends=recent,
        send_at=ctx.now,
        unsubscribe_link=_link(links, document)
        if marketing and message.channel == "email"
        else None,
    )
    return Checked(guarded, consent, record_id)


def _link(links: UnsubscribeLinks | None, document: DeliveryRecord) -> str | None:
    if links is None:
        return None
    # Filed under the address: a revocation then reaches every later send to it (consent.md).
    return links.link(
        org_id=document["orgId"], identity_key="em:" + document["recipient"],
        delivery_id=document["id"],
    )  # fmt: skip


def _consent_state(
    store: DocumentStore, execution: Mapping[str, Any], document: DeliveryRecord, channel: Channel
) -> tuple[ConsentState | None, str | None]:
    """The latest consent record; without one, the customer's flag (granted but not recorded)."""
    keys = [document["identityKey"], *identities(execution.get("customer"), document["recipient"])]
    record = consent_in_force(
        store, org_id=execution["orgId"], identities=list(dict.fromkeys(keys)), channel=channel
    )
    if record is not None:
        return ConsentState(record["state"], record["id"]), record["id"]
    flag = ((execution.get("customer") or {}).get("consent") or {}).get(channel)
    if flag is None:
        return None, None
    return ConsentState("granted" if flag else "revoked", None), None


def _wording_blocked(result: CheckResult) -> bool:
    """Blocked, and only by wording: what an agent can rewrite or a reviewer can take on."""
    blocking = {f.kind for f in result.findings if f.severity == "block"} - TIME_KINDS
    timed = any(f.kind in TIME_KINDS for f in result.findings)
    never = timed and result.defer_until is None  # windows and caps that never allow a send
    return result.verdict == "block" and blocking == {"forbidden_terms"} and not never


def _rewritten(
    ctx: ActionContext,
    message: Message,
    checked: Checked,
    rewrite: Rewrite,
    guarded: Callable[[Message], Checked],
) -> tuple[ActionContext, Message, Checked]:
    """The findings go back to the agent, up to its retries, until the wording passes."""
    source_id = ctx.definition.steps[rewrite.source].id
    for _ in range(rewrite.rounds):
        findings = "; ".join(
            f"{f.rule_id}: {f.message} [{f.citation}]"
            for f in checked.guarded.result.findings
            if f.kind == "forbidden_terms"
        )
        output = rewrite.remediate(rewrite.source, "Rewrite without breaking: " + findings)
        if output is None:
            break
        steps = {
            **ctx.render.get("steps", {}),
            source_id: {"output": output, "status": "completed"},
        }
        ctx = replace(ctx, render={**ctx.render, "steps": steps})
        try:
            message = rewrite.render(ctx)
        except Unsendable:
            break
        checked = guarded(message)
        if not _wording_blocked(checked.guarded.result):
            break
    return ctx, message, checked


def _refusal(message: Message, ctx: ActionContext, checked: Checked) -> SkipReason | None:
    """Why this send must not go at all (a skipped delivery), else None."""
    execution = ctx.execution
    result = checked.guarded.result
    if too_late_for(execution.get("event")):  # its moment has passed: no reminder days late
        return "stale_event"
    if not _consented(message, execution, checked.consent):
        return "no_consent"
    if result.verdict == "block" and not ctx.dry_run:
        # A reviewer who approved the run has taken on its wording; nothing else is waived.
        overridden = _wording_blocked(result) and checked.reviewed
        return None if overridden else _blocked_reason(result)
    return None


def _consented(
    message: Message, execution: Mapping[str, Any], consent: ConsentState | None
) -> bool:
    """A consent record decides when there is one; else the customer's flags (§7.9)."""
    if consent is not None and consent.record_id is not None:
        return message.transactional or consent.status == "granted"
    flags = (execution.get("customer") or {}).get("consent")
    return consent_allows(message.channel, flags, transactional=message.transactional)


def _would(
    peek: Claim, result: CheckResult, stocked: ProductCheck | None, *, needs_approval: bool
) -> dict[str, Any]:
    """A dry run's trace of one send: what would happen, and why."""
    decision = "would_pause_for_approval" if needs_approval else "would_send"
    if peek.outcome != "send":
        decision = "would_skip"
    if result.verdict in ("block", "defer"):
        decision = "would_skip" if result.verdict == "block" else "would_defer"
    reason: str | None = None if peek.outcome == "send" else peek.outcome
    if result.verdict == "block":
        reason = _blocked_reason(result)
    if reason is None and stocked is not None and stocked.unavailable:
        decision, reason = "would_skip", "product_unavailable"  # before approval and deferral
    return {
        "decision": decision,
        "reason": reason,
        "compliance": stored(result),
        "dedup": {"wouldDedup": peek.outcome == "deduped", "lastSentAt": peek.last_sent_at},
        "cap": {"wouldCap": peek.outcome == "frequency_capped", "count": peek.recent_count},
        **_product_trace(stocked),
    }


def _product_trace(stocked: ProductCheck | None) -> dict[str, Any]:
    return {"product": stocked.stored()} if stocked is not None else {}


def _blocked_reason(result: CheckResult) -> SkipReason:
    kinds = {finding.kind for finding in result.findings if finding.severity == "block"}
    if "age" in kinds:
        return "age_unverified"
    if kinds == {"consent"}:
        return "no_consent"
    return "compliance_blocked"


def _gate(
    message: Message,
    ctx: ActionContext,
    document: DeliveryRecord,
    contact: Mapping[str, Any] | None,
    checked: Checked | None,
    *,
    stocked: ProductCheck | None,
    store: DocumentStore,
    policy: SendPolicy,
) -> StepOutcome | None:
    """Staleness, consent, compliance, dedup/cap peek, stock, approval, deferral and dry run.

    In that order: the first skip is the one recorded. None: go ahead and claim.
    """
    sold_out = stocked is not None and stocked.unavailable
    if not message.customer_facing or checked is None:
        return _gate_internal(message, ctx, document, stocked, store=store)
    execution = ctx.execution
    result = checked.guarded.result
    refused = _refusal(message, ctx, checked)
    peek = decide(
        dict(contact) if contact is not None else None,
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
    if ctx.dry_run and refused is None:
        trace = _would(peek, result, stocked, needs_approval=needs_approval)
        return _dry_run(store, document, message, trace)
    skip = refused or (None if peek.outcome == "send" else peek.outcome)
    if skip is None and sold_out:
        # No approval is asked and no deferral waits for a product that is not there.
        skip = "product_unavailable"
    if skip is not None:
        return settle_skip(store, document, skip)
    if needs_approval:
        return approvals.hold_for_approval(
            store=store, ctx=ctx, document=document, message=message, ttl=policy.approval_ttl
        )
    if result.defer_until is not None:
        # Quiet hours or a frequency limit: the same attempt runs again when allowed.
        return StepOutcome(
            "deferred", deferred_until=result.defer_until, extra={"compliance": stored(result)}
        )
    return None


def _gate_internal(
    message: Message,
    ctx: ActionContext,
    document: DeliveryRecord,
    stocked: ProductCheck | None,
    *,
    store: DocumentStore,
) -> StepOutcome | None:
    """An internal send: only the dry run and the product guard, the author's own rule."""
    sold_out = stocked is not None and stocked.unavailable
    if ctx.dry_run:
        trace: dict[str, Any] = {"decision": "would_send", **_product_trace(stocked)}
        if sold_out:
            trace |= {"decision": "would_skip", "reason": "product_unavailable"}
        return _dry_run(store, document, message, trace)
    return settle_skip(store, document, "product_unavailable") if sold_out else None


def _unsubscribe_headers(
    links: UnsubscribeLinks | None, message: Message, document: DeliveryRecord
) -> dict[str, str] | None:
    """RFC 8058 one-click headers on marketing email (Gmail and Yahoo require them in bulk)."""
    if links is None or not message.customer_facing or message.transactional:
        return None
    return links.headers(
        org_id=document["orgId"], identity_key="em:" + document["recipient"],
        delivery_id=document["id"],
    )  # fmt: skip


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
                    headers=_unsubscribe_headers(senders.unsubscribe, message, document),
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
