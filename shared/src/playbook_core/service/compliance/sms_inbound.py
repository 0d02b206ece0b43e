"""`webhook_blackleaf` (consent.md §3): an inbound text, verified, and its keyword honoured at once.

Order: the org (`?orgId=`), the body's size, the signature under the org's own secret, and only
then the body. A refusal raises before anything is written (the boundary answers problem+json).
STOP records an sms `revoked` consent record and sends one confirmation per number per 24 h;
START records `granted`. Every write's id derives from the inbound message id, so a replay (or a
retry after a crash) writes nothing twice and texts nobody twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from playbook_core.domain import strict_json
from playbook_core.domain.collections import (
    CUSTOMERS,
    ORGANIZATIONS,
    SMS_WEBHOOKS,
    WEBHOOK_CLAIMS,
    WEBHOOK_RECEIPTS,
)
from playbook_core.domain.consent import derived_record_id
from playbook_core.domain.errors import (
    AlreadyExists,
    BadRequest,
    NotFound,
    PayloadTooLarge,
    PermanentProviderError,
    TransientProviderError,
    Unauthenticated,
    Unavailable,
)
from playbook_core.domain.ids import is_plain_id
from playbook_core.domain.matching import identity_key
from playbook_core.domain.sms_inbound import (
    CONFIRMATION_WINDOW_HOURS,
    MAX_BODY_BYTES,
    RECEIPT_TTL_HOURS,
    SIGNATURE_HEADER,
    InboundSms,
    Keyword,
    confirmation_claim_id,
    confirmation_reference,
    keyword,
    parse_inbound,
    receipt_id,
    signature_matches,
    stop_confirmation,
)
from playbook_core.logging import ALERT, bound, event
from playbook_core.ports import (
    Clock,
    DocumentStore,
    IdFactory,
    Secrets,
    SmsSender,
    Transaction,
    Where,
)
from playbook_core.service.authoring.settings import get_settings
from playbook_core.service.compliance.consent import record_consent
from playbook_core.service.compliance.sms_webhook import own_refs

_log = logging.getLogger("playbooks.sms_inbound")
Confirmation = Literal["sent", "suppressed", "not_configured", "refused"]
METHODS: dict[Keyword, str] = {"stop": "STOP keyword", "start": "START keyword"}


@dataclass(frozen=True)
class SmsInbound:
    """The ports the handler takes, bundled; `sms` is None when Blackleaf is not configured."""

    store: DocumentStore
    clock: Clock
    ids: IdFactory
    secrets: Secrets
    sms: SmsSender | None


def receive_sms(
    *, headers: Mapping[str, str], body: bytes, query_org_id: str | None, inbound: SmsInbound
) -> dict[str, Any]:
    """One inbound message → the JSON answer; refusals raise (401, 400, 413, 503)."""
    org_id = query_org_id or ""
    if not is_plain_id(org_id):
        raise Unauthenticated("name the org in the webhook URL: ?orgId=<org id>")
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge("an inbound message is at most 64 KiB")
    lowered = {name.lower(): value for name, value in headers.items()}
    presented = (lowered.get(SIGNATURE_HEADER.lower()) or "").strip()
    if not presented:
        raise Unauthenticated(f"send {SIGNATURE_HEADER}: hex HMAC-SHA256 of the raw body")
    with bound(orgId=org_id):
        _verify(org_id, body, presented, inbound)
        return _verified(org_id, body, inbound)


def _verify(org_id: str, body: bytes, presented: str, inbound: SmsInbound) -> None:
    document = inbound.store.get(SMS_WEBHOOKS, org_id) or {}
    values, failed = [], False
    for reference in own_refs(org_id, document, inbound.clock.now()):
        try:
            values.append(inbound.secrets.get(reference))
        except NotFound:
            event(_log, logging.WARNING, "sms webhook secret reference missing")
        except Unavailable:
            failed = True
    if signature_matches(body, presented, values):
        return
    if failed:  # a secret we could not read may be the right one: let Blackleaf retry
        raise Unavailable("an sms webhook secret could not be read")
    event(
        _log, ALERT, "sms webhook signature invalid",
        security_event="sms_webhook_signature_invalid", hasSecret=bool(document),
    )  # fmt: skip
    raise Unauthenticated("the signature does not match this org's inbound SMS secret")


def _verified(org_id: str, body: bytes, inbound: SmsInbound) -> dict[str, Any]:
    store, now = inbound.store, inbound.clock.now()
    settings = get_settings(org_id=org_id, store=store)
    message, sender, _ours = parse_inbound(
        strict_json.loads(body), str(settings.get("defaultCountry") or "US")
    )
    receipt = receipt_id(org_id, message.id)
    seen = _claim_receipt(store, receipt, org_id, message, now)
    if seen is not None and seen.get("status") == "processed":
        event(_log, logging.INFO, "inbound sms duplicate", receiptId=receipt)
        return {**_answer(seen), "duplicate": True}
    found = keyword(message.body)
    answer: dict[str, Any] = {"received": True, "messageId": message.id, "keyword": found}
    if found is not None:
        answer |= _honour(
            found, org_id=org_id, sender=sender, message=message, settings=settings,
            inbound=inbound,
        )  # fmt: skip
    _mark_processed(store, receipt, answer, now)
    event(
        _log, logging.INFO, "inbound sms accepted", keyword=found,
        confirmation=answer.get("confirmation"),
    )  # fmt: skip
    return answer


def _honour(
    found: Keyword, *, org_id: str, sender: str, message: InboundSms,
    settings: Mapping[str, Any], inbound: SmsInbound,
) -> dict[str, Any]:  # fmt: skip
    customer_id = _customer_with_phone(inbound.store, org_id, sender)
    identity = identity_key(customer_id=customer_id, phone=sender) or f"ph:{sender}"
    state = "revoked" if found == "stop" else "granted"
    record = record_consent(
        inbound.store, inbound.clock, inbound.ids, org_id=org_id, identity_key=identity,
        customer_id=customer_id, channel="sms", state=state, source="keyword",
        method=METHODS[found],
        record_id=derived_record_id("blackleaf-inbound", org_id, message.id),
    )  # fmt: skip
    answer: dict[str, Any] = {"state": state, "recordId": record["id"]}
    if found == "stop":
        answer["confirmation"] = _confirm(org_id, sender, message, settings, inbound)
    return answer


def _customer_with_phone(store: DocumentStore, org_id: str, phone: str) -> str | None:
    """The org's customer with this (E.164) phone, if any: its identity is the customer's."""
    page = store.query(
        CUSTOMERS, [Where("orgId", "==", org_id), Where("phone", "==", phone)], limit=1
    )
    return page.docs[0].id if page.docs else None


def _confirm(
    org_id: str, sender: str, message: InboundSms, settings: Mapping[str, Any],
    inbound: SmsInbound,
) -> Confirmation:  # fmt: skip
    """One confirmation per number per 24 h, sent at most once per inbound message."""
    if inbound.sms is None:
        event(_log, logging.WARNING, "stop confirmation not sent: sms is not configured")
        return "not_configured"
    store, now = inbound.store, inbound.clock.now()
    claim_id = confirmation_claim_id(org_id, sender)
    mine = receipt_id(org_id, message.id)

    def work(tx: Transaction) -> bool:
        current = tx.get(WEBHOOK_CLAIMS, claim_id)
        if current is not None and current.get("replayKey") == mine:
            return True  # our own claim: an earlier attempt died before or during the send
        claimed_at = (current or {}).get("receivedAt")
        window = timedelta(hours=CONFIRMATION_WINDOW_HOURS)
        if isinstance(claimed_at, datetime) and claimed_at > now - window:
            return False
        tx.set(WEBHOOK_CLAIMS, claim_id, {
            "orgId": org_id, "platform": "blackleaf", "kind": "stop_confirmation",
            "replayKey": mine, "receivedAt": now, "expiresAt": now + window,
        })  # fmt: skip
        return True

    if not store.transaction(work):
        return "suppressed"
    try:
        inbound.sms.send_sms(
            to=sender, body=stop_confirmation(_brand(org_id, settings, store)),
            client_reference=confirmation_reference(org_id, message.id), org_id=org_id,
        )  # fmt: skip
    except TransientProviderError as exc:  # 503: Blackleaf redelivers; our claim lets us resend
        raise Unavailable("the confirmation text could not be sent yet") from exc
    except PermanentProviderError as exc:
        event(_log, logging.ERROR, "stop confirmation refused", code=exc.code)
        return "refused"
    return "sent"


def _brand(org_id: str, settings: Mapping[str, Any], store: DocumentStore) -> str:
    compliance = settings.get("compliance")
    brand = compliance.get("smsBrandName") if isinstance(compliance, Mapping) else None
    if isinstance(brand, str) and brand.strip():
        return brand
    name = (store.get(ORGANIZATIONS, org_id) or {}).get("name")
    return name if isinstance(name, str) and name.strip() else "this sender"


def _claim_receipt(
    store: DocumentStore, receipt: str, org_id: str, message: InboundSms, now: datetime
) -> dict[str, Any] | None:
    """Create the message's receipt; the existing one when it was seen before, else None."""
    document = {
        "orgId": org_id, "platform": "blackleaf", "replayKey": message.id, "status": "received",
        "receivedAt": now, "expiresAt": now + timedelta(hours=RECEIPT_TTL_HOURS),
    }  # fmt: skip
    try:
        store.create(WEBHOOK_RECEIPTS, receipt, document)
    except AlreadyExists:
        existing = store.get(WEBHOOK_RECEIPTS, receipt)
        if existing is not None and existing.get("orgId") != org_id:
            raise BadRequest("this message id belongs to another receipt") from None
        return existing
    return None


def _mark_processed(
    store: DocumentStore, receipt: str, answer: dict[str, Any], now: datetime
) -> None:
    kept = {k: answer.get(k) for k in ("keyword", "state", "recordId", "confirmation")}
    store.update(WEBHOOK_RECEIPTS, receipt, {"status": "processed", "processedAt": now, **kept})


def _answer(receipt: Mapping[str, Any]) -> dict[str, Any]:
    kept = {k: receipt.get(k) for k in ("keyword", "state", "recordId", "confirmation")}
    return {"received": True, "messageId": receipt.get("replayKey"), **kept}
