"""Events from the existing app (domain.md §5.1 ingest) in, and the event log (§5.6) out.

Ingest dedup reuses the replay store of the webhooks (§6.4) under the derived eventId: `create()`
of the receipt decides "first or duplicate" atomically and at once, whereas the event log is only
written later by the dispatcher (so a quick retry would not see it); a receipt left `received`
by a crash between claim and publish is published again, which is safe because dispatch is
idempotent per eventId.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from playbook_core.domain.collections import EVENT_LOG, WEBHOOK_RECEIPTS
from playbook_core.domain.envelope import Consent, Customer, EventEnvelope, Source
from playbook_core.domain.errors import AlreadyExists, BadRequest, Forbidden, PayloadTooLarge
from playbook_core.domain.events import canonical_name
from playbook_core.domain.ids import h
from playbook_core.domain.normal_forms import normalise_email, parse_phone, rfc3339
from playbook_core.logging import event
from playbook_core.ports import DocumentStore, OrderBy, Where
from playbook_core.service.ingress.event_log import OUTCOMES, Publishing, publish_event
from playbook_core.service.records import read_settings

RECEIPT_TTL = timedelta(hours=72)
MAX_DATA_BYTES = 64 * 1024
MAX_PAGE = 100
_PUBLIC_FIELDS = (
    "eventId", "name", "originalName", "source", "occurredAt", "receivedAt", "customerId",
    "identityHash", "outcome", "matches", "orderSummary",
)  # fmt: skip
_log = logging.getLogger("playbooks.ingest")


class _Body(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, alias_generator=to_camel, validate_by_alias=True,
        validate_by_name=False,
    )  # fmt: skip


class IngestConsent(_Body):
    email: bool | None = None
    sms: bool | None = None


def _text_only(value: object) -> object:
    """Times arrive as RFC 3339 text; a bare number is refused rather than guessed at."""
    if not isinstance(value, str):
        raise ValueError("occurredAt is an RFC 3339 date-time")  # noqa: TRY004 - pydantic wants ValueError
    return value


class IngestCustomer(_Body):
    id: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    external_id: Annotated[str, Field(max_length=256)] | None = None
    email: Annotated[str, Field(max_length=320)] | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    first_name: Annotated[str, Field(max_length=200)] | None = None
    last_name: Annotated[str, Field(max_length=200)] | None = None
    consent: IngestConsent | None = None
    state: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None  # US state of the address
    age_verified: bool | None = None  # 21+ checked by the org


class IngestRequest(_Body):
    """`POST …/events`: the client's own eventId; orgId is accepted only to be checked."""

    event_id: Annotated[str, Field(min_length=1, max_length=256)]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    occurred_at: (
        Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_text_only)] | None
    ) = None
    customer: IngestCustomer | None = None
    dedupe_key: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    data: dict[str, Any]
    org_id: str | None = None


def ingest_event(
    *,
    publishing: Publishing,
    org_id: str,
    body: Any,
    actor: str,
) -> dict[str, Any]:
    """Validate, claim the derived eventId once, publish; a repeat answers `duplicate: true`."""
    store, bus, topic, clock = publishing.store, publishing.bus, publishing.topic, publishing.clock
    request = _parse(body)
    if request.org_id is not None and request.org_id != org_id:
        raise Forbidden("the body's orgId differs from the organization in the path")
    name = canonical_name(request.name)
    if name is None:
        raise BadRequest(f"unknown event name '{request.name}'", code="unknown-event")
    if len(json.dumps(request.data, default=str)) > MAX_DATA_BYTES:
        raise PayloadTooLarge("data is larger than 64 KiB")
    event_id = "api_" + h(org_id, request.event_id)
    now = clock.now()
    receipt = {
        "orgId": org_id, "platform": "api", "replayKey": request.event_id, "topic": name,
        "eventId": event_id, "status": "received", "receivedAt": now,
        "expiresAt": now + RECEIPT_TTL,
    }  # fmt: skip
    try:
        store.create(WEBHOOK_RECEIPTS, event_id, receipt)
    except AlreadyExists:
        existing = store.get(WEBHOOK_RECEIPTS, event_id)
        if existing is not None and existing.get("status") == "published":
            return {"eventId": event_id, "duplicate": True}
    customer = _customer(request.customer, store=store, org_id=org_id, event_id=event_id)
    envelope = EventEnvelope(
        event_id=event_id, org_id=org_id, name=name, original_name=request.name,
        occurred_at=request.occurred_at or now, received_at=now,
        source=Source(kind="api", ref=actor), customer=customer,
        dedupe_key=request.dedupe_key, data=request.data,
    )  # fmt: skip
    publish_event(envelope, bus=bus, topic=topic)
    store.update(WEBHOOK_RECEIPTS, event_id, {"status": "published", "publishedAt": clock.now()})
    return {"eventId": event_id, "duplicate": False}


def _parse(body: Any) -> IngestRequest:
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object {eventId, name, occurredAt?, customer?, data}")
    try:
        return IngestRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadRequest(f"invalid body at '{where}': {first['msg']}") from exc


def _phone_country(store: DocumentStore, org_id: str) -> str:
    """The org's `defaultCountry` (ISO 3166 alpha-2): national numbers are read as its own."""
    country = read_settings(store, org_id).get("defaultCountry")
    return country if isinstance(country, str) and country else "US"


def _customer(
    given: IngestCustomer | None, *, store: DocumentStore, org_id: str, event_id: str
) -> Customer | None:
    """Normalised contact fields; a customer with nothing left is no customer.

    A phone that is no valid number for the org's country is dropped, and the log says why (never
    the number itself: it is personal data).
    """
    if given is None:
        return None
    phone = parse_phone(given.phone, _phone_country(store, org_id)) if given.phone else None
    if phone is not None and phone.dropped:
        event(
            _log, logging.INFO, "ingest phone dropped", orgId=org_id, eventId=event_id,
            field="customer.phone", reason=phone.dropped,
        )  # fmt: skip
    customer = Customer(
        id=given.id, external_id=given.external_id, email=normalise_email(given.email),
        phone=phone.e164 if phone else None, first_name=given.first_name,
        last_name=given.last_name,
        consent=Consent(**given.consent.model_dump()) if given.consent else None,
        state=given.state, age_verified=given.age_verified,
    )  # fmt: skip
    return customer if customer.model_dump(exclude_none=True) else None


def list_events(
    *,
    org_id: str,
    name: str | None,
    outcome: str | None,
    since: str | None,
    page_size: int,
    page_token: str | None,
    store: DocumentStore,
) -> dict[str, Any]:
    """The org's event log, newest first, by one indexed query (§2.4); no raw contact data."""
    if not 1 <= page_size <= MAX_PAGE:
        raise BadRequest(f"pageSize must be between 1 and {MAX_PAGE}")
    where = [Where("orgId", "==", org_id)]
    if name:
        where.append(Where("name", "==", canonical_name(name) or name))
    if outcome:
        if outcome not in OUTCOMES:
            raise BadRequest(f"unknown outcome '{outcome}'")
        where.append(Where("outcome", "==", outcome))
    if since:
        where.append(Where("receivedAt", ">=", _instant(since, "from")))
    page = store.query(
        EVENT_LOG, where, [OrderBy("receivedAt", "desc")], limit=page_size, start_after=page_token
    )
    events = [_public(doc.id, doc.data) for doc in page.docs]
    return {"events": events, "nextPageToken": page.next_cursor}


def _instant(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"{field} is an RFC 3339 date-time, e.g. 2026-01-31T00:00:00Z") from exc
    if moment.utcoffset() is None:
        raise BadRequest(f"{field} needs a time zone offset or Z")
    return moment.astimezone(UTC)


def _public(log_id: str, document: dict[str, Any]) -> dict[str, Any]:
    """Known fields only (the log never holds raw emails or phones); times as RFC 3339 with Z."""
    visible = {key: document.get(key) for key in _PUBLIC_FIELDS if key in document}
    return {"id": log_id, **_rfc3339(visible)}


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, dict):
        return {key: _rfc3339(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rfc3339(item) for item in value]
    return value
