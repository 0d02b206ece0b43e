"""`on_event_published` (domain.md §5.5): one listener query → one execution per playbook.

Storage and queue errors propagate on purpose: the function then fails, Pub/Sub redelivers, and
the deterministic execution and task ids make the second delivery a no-op.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from playbook_core.domain.collections import CUSTOMERS, LISTENERS, ORGANIZATIONS, PLAYBOOKS
from playbook_core.domain.consent import consent_record, derived_record_id
from playbook_core.domain.documents import definition_of
from playbook_core.domain.envelope import Consent, Customer, EventEnvelope, Source
from playbook_core.domain.errors import AlreadyExists
from playbook_core.domain.events import canonical_name, listener_names
from playbook_core.domain.executions import event_execution_id
from playbook_core.domain.ids import h
from playbook_core.domain.matching import (
    filter_context,
    identity_key,
    loop_blocked,
    matching_trigger,
)
from playbook_core.domain.records import EventOutcome
from playbook_core.logging import ALERT, bound, event
from playbook_core.ports import Clock, Doc, DocumentStore, Where
from playbook_core.service.compliance.consent import append_record
from playbook_core.service.execution.run_start import Runs, start_run
from playbook_core.service.ingress.event_log import record_first_outcome, record_outcome
from playbook_core.service.paging import iterate
from playbook_core.service.reporting.counters import org_zone

WEBHOOK_PLATFORMS = frozenset({"shopify", "woocommerce"})
ORDER_SUMMARY_EVENTS = frozenset({"order.created", "order.cancelled", "order.refunded"})
_EVENT_ID = re.compile(r"[A-Za-z0-9_:.-]{1,128}")
_log = logging.getLogger("playbooks.dispatch")


class PushedMessage(Protocol):
    """The decoded Pub/Sub push message (runtime's PubsubMessage), without importing runtime."""

    @property
    def message_id(self) -> str: ...
    @property
    def attributes(self) -> dict[str, str]: ...
    @property
    def data(self) -> bytes: ...


def dispatch_message(message: PushedMessage, *, runs: Runs) -> dict[str, Any]:
    """Steps 1–8 of §5.5; returns what happened (also written to the event log)."""
    store, clock = runs.store, runs.clock
    envelope = decode_envelope(message)
    ids = message_ids(message, envelope)
    event(_log, logging.INFO, "event message received", **ids)
    with bound(eventId=ids["eventId"], orgId=ids["orgId"]):
        if envelope is None:
            event(_log, logging.WARNING, "invalid envelope acknowledged", **ids)
            record_unreadable(message, "invalid_envelope", store=store, clock=clock)
            return {**ids, "outcome": "invalid_envelope"}
        name = canonical_name(envelope.name)
        if name is None:
            record_outcome(store=store, envelope=envelope, outcome="unknown_event")
            return {**ids, "outcome": "unknown_event", "matches": []}
        envelope = with_canonical_name(envelope, name)
        # The existing app's registry: an org whose `organizations` document is gone (deleted,
        # or never there) runs nothing and creates no customer.
        organization = store.get(ORGANIZATIONS, envelope.org_id)
        if organization is None:
            event(_log, logging.WARNING, "event for an unknown org acknowledged", **ids)
            record_outcome(store=store, envelope=envelope, outcome="unknown_org")
            return {**ids, "eventName": envelope.name, "outcome": "unknown_org", "matches": []}
        envelope, customer = _enrich_customer(envelope, store=store, clock=clock)
        outcome, matches = _dispatch(envelope, customer, organization, runs=runs)
        # An execution existed and none was created: a redelivery, or a duplicate webhook
        # published again before this event was logged (webhooks._went_out). The first stands.
        keep_first = outcome != "dispatched" and any(
            m["outcome"] == "duplicate_event" for m in matches
        )
        record = record_first_outcome if keep_first else record_outcome
        record(
            store=store, envelope=envelope, outcome=outcome, matches=matches,
            identity_key=customer.get("identityKey"), order_summary=_order_summary(envelope),
        )  # fmt: skip
        event(_log, logging.INFO, "event dispatched", outcome=outcome, matches=len(matches))
        return {**ids, "eventName": envelope.name, "outcome": outcome, "matches": matches}


def _dispatch(
    envelope: EventEnvelope,
    customer: dict[str, Any],
    organization: dict[str, Any],
    *,
    runs: Runs,
) -> tuple[EventOutcome, list[dict[str, Any]]]:
    store = runs.store
    zone: ZoneInfo | None = None  # read once per event, at its first run
    names = listener_names(envelope.name)
    playbook_ids = _listening_playbooks(envelope.org_id, names, store)
    if not playbook_ids:
        return "no_listeners", []
    playbooks = store.get_many(PLAYBOOKS, playbook_ids)
    causation = envelope.causation
    chain, depth = (list(causation.chain), causation.depth) if causation else ([], 0)
    context = filter_context(envelope, customer)
    snapshot = envelope.model_dump(mode="json", exclude_none=True)
    matches: list[dict[str, Any]] = []
    for playbook_id in playbook_ids:
        playbook = playbooks.get(playbook_id)
        match: dict[str, Any] = {"playbookId": playbook_id}
        if playbook is not None and playbook.get("orgId") != envelope.org_id:
            # Checked before status: a cross-org listener is a security event whatever its state.
            event(
                _log, ALERT, "listener points at another org's playbook", playbookId=playbook_id,
                security_event="dispatch_tenant_mismatch",
            )  # fmt: skip
            matches.append({**match, "outcome": "tenant_mismatch"})
            continue
        if playbook is None or playbook.get("status") != "active":
            reason = "missing" if playbook is None else str(playbook.get("status"))
            matches.append({**match, "outcome": "playbook_inactive", "reason": reason})
            continue
        if loop_blocked(playbook_id, chain, depth):
            reason = "in_chain" if playbook_id in chain else "max_depth"
            matches.append({**match, "outcome": "loop_blocked", "reason": reason})
            continue
        trigger_id = matching_trigger(definition_of(playbook), names, context)
        if trigger_id is None:
            matches.append({**match, "outcome": "filtered"})
            continue
        execution_id = event_execution_id(envelope.event_id, playbook_id)
        zone = zone or org_zone(store, envelope.org_id, organization)
        _, created = start_run(
            execution_id=execution_id, playbook=playbook,
            trigger={"type": "event", "triggerId": trigger_id, "eventId": envelope.event_id,
                     "eventName": envelope.name},
            customer=customer or None, event=snapshot,
            causation={"eventId": envelope.event_id, "chain": chain, "depth": depth},
            user_id="system", dry_run=False, runs=runs, zone=zone,
        )  # fmt: skip
        outcome = "execution_created" if created else "duplicate_event"
        matches.append({**match, "outcome": outcome, "executionId": execution_id})
    if any(m["outcome"] == "execution_created" for m in matches):
        return "dispatched", matches
    return "not_dispatched", matches


def _listening_playbooks(org_id: str, names: tuple[str, ...], store: DocumentStore) -> list[str]:
    """Active listeners of the org for these names, one entry per playbook (alias fan-in)."""
    where = [
        Where("orgId", "==", org_id),
        Where("status", "==", "active"),
        Where("eventName", "in", list(names)),
    ]
    listeners = iterate(store, LISTENERS, where, page_size=100)
    return list(dict.fromkeys(str(doc.data["playbookId"]) for doc in listeners))


def _enrich_customer(
    envelope: EventEnvelope, *, store: DocumentStore, clock: Clock
) -> tuple[EventEnvelope, dict[str, Any]]:
    """§5.5 step 3: the stored customer's id, names, birthday and consent, and the identity key."""
    given = envelope.customer
    stored: dict[str, Any] | None = None
    customer_id = given.id if given else None
    if given is not None and given.id:
        found = store.get(CUSTOMERS, given.id)
        stored = found if found and found.get("orgId") == envelope.org_id else None
    elif given is not None and given.email:
        customer_id, stored = _customer_by_email(envelope, given, store=store, clock=clock)
    context: dict[str, Any] = given.model_dump(mode="json", exclude_none=True) if given else {}
    if stored is not None:
        _fill_from_stored(context, stored)
        # Platform consent is fresher than the stored one; the stored fills what it leaves unknown.
        consent = {**(stored.get("consent") or {}), **context.get("consent", {})}
        context["consent"] = {
            k: v for k, v in consent.items() if k in ("email", "sms") and isinstance(v, bool)
        }
    if customer_id:
        context["id"] = customer_id
    if envelope.dedupe_key:
        context["dedupeKey"] = envelope.dedupe_key
    key = identity_key(
        dedupe_key=envelope.dedupe_key, customer_id=customer_id,
        email=context.get("email"), phone=context.get("phone"),
    )  # fmt: skip
    if key:
        context["identityKey"] = key
    context = {k: v for k, v in context.items() if v not in (None, {})}
    if given is None:
        return envelope, context
    enriched = given.model_copy(
        update={
            "id": customer_id, "first_name": context.get("firstName"),
            "last_name": context.get("lastName"),
            "consent": Consent(**context["consent"]) if "consent" in context else None,
        }
    )  # fmt: skip
    return envelope.model_copy(update={"customer": enriched}), context


def _fill_from_stored(context: dict[str, Any], stored: Mapping[str, Any]) -> None:
    """What the platform left out: names, birthday, and the state and age check (compliance.md)."""
    first, _, last = str(stored.get("name") or "").partition(" ")
    context.setdefault("firstName", stored.get("firstName") or first or None)
    context.setdefault("lastName", stored.get("lastName") or last or None)
    if stored.get("birthday"):
        context.setdefault("birthday", stored["birthday"])
    if isinstance(stored.get("state"), str) and len(stored["state"]) == 2:
        context.setdefault("state", stored["state"])
    if isinstance(stored.get("ageVerified"), bool):
        context.setdefault("ageVerified", stored["ageVerified"])


def _customer_by_email(
    envelope: EventEnvelope, given: Customer, *, store: DocumentStore, clock: Clock
) -> tuple[str | None, dict[str, Any] | None]:
    """Look up (orgId, email); a webhook creates the customer once (`cus_`+h), others do not."""
    where = [Where("orgId", "==", envelope.org_id), Where("email", "==", given.email)]
    page = store.query(CUSTOMERS, where, limit=1)
    if page.docs:
        doc = page.docs[0]
        _write_back_consent(doc, given, envelope, store=store, clock=clock)
        return doc.id, doc.data
    if envelope.source.kind not in WEBHOOK_PLATFORMS:
        return None, None
    doc_id = "cus_" + h(envelope.org_id, given.email)
    now = clock.now()
    created: dict[str, Any] = {
        "orgId": envelope.org_id, "email": given.email, "source": "ecommerce",
        "ecommerceIds": {envelope.source.kind: given.external_id} if given.external_id else {},
        "createdBy": "playbooks", "createdAt": now, "updatedAt": now,
    }  # fmt: skip
    names = {"phone": given.phone, "firstName": given.first_name, "lastName": given.last_name}
    created |= {field: value for field, value in names.items() if value}
    if given.consent is not None:
        created["consent"] = given.consent.model_dump(exclude_none=True)
        for channel, value in created["consent"].items():  # evidence first, as on a change
            _record_platform_consent(doc_id, channel, value, envelope, store=store, now=now)
    try:
        store.create(CUSTOMERS, doc_id, created)
    except AlreadyExists:
        # A concurrent delivery created it first: use what it stored.
        return doc_id, store.get(CUSTOMERS, doc_id) or created
    return doc_id, created


def _write_back_consent(
    doc: Doc, given: Customer, envelope: EventEnvelope, *, store: DocumentStore, clock: Clock
) -> None:
    """§7.9: consent the platform reports is written onto the customer, only when it changed."""
    if envelope.source.kind not in WEBHOOK_PLATFORMS or given.consent is None:
        return
    current = dict(doc.data.get("consent") or {})
    reported = given.consent.model_dump(exclude_none=True)
    if reported and {**current, **reported} != current:
        now = clock.now()
        # Evidence first (consent.md §1): a crash before the update repeats both, and the
        # record's id, derived from the event, makes the repeat write the same record.
        for channel, value in reported.items():
            if current.get(channel) != value:
                _record_platform_consent(doc.id, channel, value, envelope, store=store, now=now)
        store.update(CUSTOMERS, doc.id, {"consent": {**current, **reported}, "updatedAt": now})


def _record_platform_consent(
    customer_id: str, channel: str, value: bool, envelope: EventEnvelope, *,
    store: DocumentStore, now: datetime,
) -> None:  # fmt: skip
    platform = envelope.source.kind
    append_record(store, consent_record(
        record_id=derived_record_id("webhook", envelope.org_id, envelope.event_id, customer_id,
                                    channel),
        org_id=envelope.org_id, identity_key=str(identity_key(customer_id=customer_id)),
        customer_id=customer_id,
        channel=channel, state="granted" if value else "revoked", at=now, source="webhook",
        method=f"{platform} {channel}_marketing_consent",
    ))  # fmt: skip


def _order_summary(envelope: EventEnvelope) -> dict[str, Any] | None:
    """What reconciliation needs of a webhook order (§9.3), with no raw email or phone."""
    data = envelope.data
    if envelope.name not in ORDER_SUMMARY_EVENTS or "orderId" not in data:
        return None
    customer = envelope.customer
    return {
        "orderId": str(data["orderId"]),
        "orderSource": data.get("orderSource", envelope.source.kind),
        "orderAt": data.get("orderAt"),
        "totalMinor": data.get("totalMinor"),
        "currency": data.get("currency"),
        "customer": {"id": customer.id} if customer and customer.id else {},
    }


def decode_envelope(message: PushedMessage) -> EventEnvelope | None:
    """The message's envelope, or None when it is not a valid one."""
    try:
        return EventEnvelope.decode(message.data)
    except ValidationError:
        return None


def message_ids(message: PushedMessage, envelope: EventEnvelope | None) -> dict[str, str | None]:
    """What logs name a message by: the envelope's ids, else the attributes'."""
    attributes = message.attributes
    return {
        "messageId": message.message_id,
        "eventId": envelope.event_id if envelope else attributes.get("eventId"),
        "eventName": envelope.name if envelope else attributes.get("name"),
        "orgId": envelope.org_id if envelope else attributes.get("orgId"),
    }


def with_canonical_name(envelope: EventEnvelope, name: str) -> EventEnvelope:
    """The envelope under its canonical name; an alias it arrived as is kept as `originalName`."""
    if name == envelope.name:
        return envelope
    return envelope.model_copy(
        update={"name": name, "original_name": envelope.original_name or envelope.name}
    )


def record_unreadable(
    message: PushedMessage, outcome: EventOutcome, *, store: DocumentStore, clock: Clock,
    keep_existing: bool = False,
) -> bool:  # fmt: skip
    """Log a message without a valid envelope under the org its attributes name (if any).

    The entry is the attributes' `eventId`, else `msg_`+h(messageId). False when there is no org
    to file it under (the caller's log line is then the only record) or, with `keep_existing`,
    when the event already has an entry.
    """
    org_id, event_id = message.attributes.get("orgId"), message.attributes.get("eventId") or ""
    if not _EVENT_ID.fullmatch(event_id):
        event_id = "msg_" + h(message.message_id)
    now = clock.now()
    try:
        placeholder = EventEnvelope(
            event_id=event_id, org_id=org_id or "", name=message.attributes.get("name") or "?",
            occurred_at=now, received_at=now,
            source=Source(kind="system", ref=f"pubsub:{message.message_id}"),
        )  # fmt: skip
    except ValidationError:
        return False
    if keep_existing:
        return record_first_outcome(store=store, envelope=placeholder, outcome=outcome)
    record_outcome(store=store, envelope=placeholder, outcome=outcome)
    return True
