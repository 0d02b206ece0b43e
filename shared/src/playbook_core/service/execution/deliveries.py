"""Send pipeline pieces (domain.md §7.7–7.9): rendering, delivery docs, the atomic claim.

Order of a send: render → recipient → consent → dedup/cap peek → the guarded product's stock →
approval gate → claim → one idempotent provider call; every outcome lands on a delivery document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from playbook_core.domain import templating
from playbook_core.domain.approval import provably_internal
from playbook_core.domain.collections import COMMUNICATIONS, DELIVERIES
from playbook_core.domain.engine import StepOutcome
from playbook_core.domain.normal_forms import normalise_email, normalise_phone
from playbook_core.domain.records import DeliveryRecord, DeliveryStatus, SkipReason
from playbook_core.domain.sending import (
    Channel,
    delivery_id,
    idempotency_key,
    identity_key,
    send_log_id,
)
from playbook_core.domain.text import one_line
from playbook_core.ports import DocumentStore, Transaction
from playbook_core.service.execution.actions import ActionContext
from playbook_core.service.reporting import counters

OPT_OUT = "\nReply STOP to opt out."
MAX_SMS = 480
DELIVERY_TTL = timedelta(days=400)
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")  # SMS keeps LF only


@dataclass(frozen=True)
class Message:
    """One rendered send: who, over which channel, with what content."""

    channel: Channel
    recipient: str
    subject: str | None
    body: str
    customer_facing: bool
    transactional: bool
    reply_to: str | None = None
    template_id: int | None = None
    variables: dict[str, Any] | None = None

    def preview(self) -> dict[str, Any]:
        return {"to": self.recipient, "subject": self.subject, "bodyPreview": self.body[:500]}


class Unsendable(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def render_message(
    channel: Channel, params: Any, to_template: str, ctx: ActionContext, default_country: str
) -> Message:
    """Strict rendering: a missing variable fails the step instead of sending it literally."""
    try:
        raw_to = templating.render(to_template, ctx.render)
        if channel == "email":
            # One header line: customer data (a name with U+2028) cannot break it.
            subject = one_line(str(templating.render(params.subject, ctx.render)))
            body = str(templating.render(params.body, ctx.render)) if params.body else ""
            variables = (
                templating.render_value(params.template.variables, ctx.render, strict=True)
                if params.template
                else None
            )
        else:
            subject, variables = None, None
            body = _CONTROL.sub("", str(templating.render(params.body, ctx.render)))
    except templating.UnresolvedVariable as missing:
        raise Unsendable("unresolved_variable", f"no value for {{{{ {missing.path} }}}}") from None
    recipient = (
        normalise_email(raw_to) if channel == "email" else normalise_phone(raw_to, default_country)
    )
    if recipient is None:
        raise Unsendable("invalid_recipient", f"'{raw_to}' is not a valid {channel} recipient")
    customer_facing = not provably_internal(to_template)
    transactional = bool(getattr(params, "transactional", False))
    if channel == "sms" and customer_facing and not transactional and "stop" not in body.lower():
        body += OPT_OUT
    if channel == "sms" and len(body) > MAX_SMS:
        raise Unsendable("sms_too_long", f"the SMS is {len(body)} characters; at most {MAX_SMS}")
    return Message(
        channel=channel,
        recipient=recipient,
        subject=subject,
        body=body,
        customer_facing=customer_facing,
        transactional=transactional,
        reply_to=getattr(params, "reply_to", None),
        template_id=params.template.id if channel == "email" and params.template else None,
        variables=variables,
    )


def delivery_document(
    *,
    ctx: ActionContext,
    message: Message,
    key: str,
    status: DeliveryStatus,
    now: datetime,
    skip_reason: SkipReason | None = None,
) -> DeliveryRecord:
    execution = ctx.execution
    customer = execution.get("customer") or {}
    step = ctx.definition.steps[ctx.index]
    return {
        "id": delivery_id(key),
        "orgId": execution["orgId"],
        "playbookId": execution["playbookId"],
        "playbookVersion": execution["playbookVersion"],
        "executionId": execution["id"],
        "stepId": step.id,
        "stepIndex": ctx.index,
        "channel": message.channel,
        "recipient": message.recipient,
        "recipientEmail": message.recipient if message.channel == "email" else None,
        "recipientPhone": message.recipient if message.channel == "sms" else None,
        "customerId": customer.get("id"),
        "identityKey": identity_key(customer, message.recipient),
        "customerFacing": message.customer_facing,
        "transactional": message.transactional,
        "attributable": False,
        "status": status,
        "skipReason": skip_reason,
        "dryRun": bool(execution.get("dryRun")),
        "provider": "mailjet" if message.channel == "email" else "blackleaf",
        "attempts": ctx.attempt,
        "subject": message.subject,
        "preview": message.body[:200],
        "createdAt": now,
        "updatedAt": now,
        "expiresAt": now + DELIVERY_TTL,
    }


def settle_skip(store: DocumentStore, document: DeliveryRecord, reason: SkipReason) -> StepOutcome:
    """A deliberate non-send: recorded with its reason; the run goes on."""
    store.set(DELIVERIES, document["id"], {**document, "status": "skipped", "skipReason": reason})
    counters.record_delivery(store, document, counters={f"skipped.{reason}": 1})
    return StepOutcome(
        "completed",
        output={"skipped": reason, "deliveryId": document["id"]},
        extra={"skipReason": reason, "renderedPreview": None},
        counts={"skipped": 1},
    )


def record_sent(
    store: DocumentStore,
    ctx: ActionContext,
    document: DeliveryRecord,
    provider_id: str,
    now: datetime,
) -> None:
    """The delivery sent and its send log, in one write right after the provider call."""
    execution = ctx.execution
    attributable = bool(document["customerFacing"]) and not execution.get("dryRun")
    sent = {
        **document,
        "status": "sent",
        "sentAt": now,
        "providerMessageId": provider_id,
        "attributable": attributable,
        "leaseUntil": None,
        "updatedAt": now,
    }
    key = document["id"].removeprefix("dlv_")
    log = {
        "orgId": execution["orgId"],
        "kind": "send",
        "customerEmail": document.get("recipientEmail"),
        "customerPhone": document.get("recipientPhone"),
        "customerId": document.get("customerId"),
        "channel": document["channel"],
        "direction": "outbound",
        "type": "transactional" if document["transactional"] else "campaign",
        "subject": document.get("subject"),
        "preview": document.get("preview"),
        "status": "sent",
        "sentAt": now,
        "agentName": ctx.definition.agent,
        "playbookId": execution["playbookId"],
        "executionId": execution["id"],
        "deliveryId": document["id"],
        "provider": document["provider"],
        "providerMessageId": provider_id,
        "createdAt": now,
        "updatedAt": now,
        "expiresAt": now + DELIVERY_TTL,
    }

    def work(tx: Transaction) -> None:
        tx.set(DELIVERIES, document["id"], sent)
        tx.set(COMMUNICATIONS, send_log_id(key), log)

    store.transaction(work)
    counters.record_delivery(
        store, {**document, "sentAt": now}, counters={f"sent.{document['channel']}": 1}
    )


def idempotent_key(ctx: ActionContext, message: Message) -> str:
    return idempotency_key(ctx.execution["id"], ctx.index, message.recipient)
