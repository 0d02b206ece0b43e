"""Consent records (consent.md §1–2): append one, read the one in force, list a customer's.

Records are created, never updated or deleted by code (the TTL policy removes them after
`expiresAt`). The consent in force for an identity and channel is its latest record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from playbook_core.domain.collections import CONSENT_RECORDS, CUSTOMERS
from playbook_core.domain.consent import (
    RECORD_PREFIX,
    ConsentRecord,
    consent_record,
    customer_of,
    latest,
)
from playbook_core.domain.errors import AlreadyExists, Conflict, NotFound
from playbook_core.logging import event
from playbook_core.ports import Clock, DocumentStore, IdFactory, OrderBy, Page, Where

_log = logging.getLogger("playbooks.consent")
# Records of one identity and channel read per lookup: the latest and any sharing its instant.
_LATEST_WINDOW = 10


class Reader(Protocol):
    """What `current_consent` needs of a store: one query."""

    def query(
        self,
        collection: str,
        where: Sequence[Where] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        start_after: str | None = None,
    ) -> Page: ...


def record_consent(
    store: DocumentStore,
    clock: Clock,
    ids: IdFactory,
    *,
    org_id: str,
    identity_key: str,
    customer_id: str | None,
    channel: str,
    state: str,
    source: str,
    method: str,
    disclosure: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    record_id: str | None = None,
) -> dict[str, Any]:
    """Append one record (write-once `create()`); returns it.

    `record_id`: an id derived from the record's cause (an inbound message, an event), so a retry
    answers the record its first attempt wrote instead of writing a second; None draws a random
    `cns_` id from `ids`. BadRequest for a value no record may hold (domain/consent.py).
    """
    document = consent_record(
        record_id=record_id or ids.random(RECORD_PREFIX), org_id=org_id,
        identity_key=identity_key, customer_id=customer_id or customer_of(identity_key),
        channel=channel, state=state, at=clock.now(), source=source, method=method,
        disclosure=disclosure, ip=ip, user_agent=user_agent,
    )  # fmt: skip
    return append_record(store, document)


def append_record(store: DocumentStore, document: ConsentRecord) -> dict[str, Any]:
    """Create the record; the one already there when its (derived) id was written before."""
    try:
        store.create(CONSENT_RECORDS, document["id"], document)
    except AlreadyExists:
        existing = store.get(CONSENT_RECORDS, document["id"])
        if existing is None or existing.get("orgId") != document["orgId"]:
            raise Conflict("a consent record with this id belongs elsewhere") from None
        return existing
    event(
        _log, logging.INFO, "consent recorded", orgId=document["orgId"],
        recordId=document["id"], channel=document["channel"], state=document["state"],
        source=document["source"],
    )  # fmt: skip
    return dict(document)


def current_consent(
    reader: Reader, *, org_id: str, identity_key: str, channel: str
) -> dict[str, Any] | None:
    """The identity's latest record for the channel (by `at`, ties by id), or None: no record.

    One indexed query (consent_records: orgId, identityKey, channel, at ↓).
    """
    page = reader.query(
        CONSENT_RECORDS,
        [
            Where("orgId", "==", org_id),
            Where("identityKey", "==", identity_key),
            Where("channel", "==", channel),
        ],
        [OrderBy("at", "desc")],
        limit=_LATEST_WINDOW,
    )
    found = latest(doc.data for doc in page.docs)
    return dict(found) if found is not None else None


def consent_in_force(
    reader: Reader, *, org_id: str, identities: Sequence[str], channel: str
) -> dict[str, Any] | None:
    """The latest record of any of the recipient's identities (domain/consent.identities)."""
    found = [
        record for key in identities
        if (record := current_consent(reader, org_id=org_id, identity_key=key, channel=channel))
    ]  # fmt: skip
    chosen = latest(found)
    return dict(chosen) if chosen is not None else None


def consent_history(
    store: DocumentStore,
    *,
    org_id: str,
    customer_id: str,
    page_size: int,
    page_token: str | None,
) -> dict[str, Any]:
    """The customer's records, newest first.

    NotFound for another org's customer, and for one that neither exists nor has records (a
    deleted customer's evidence stays readable).
    """
    customer = store.get(CUSTOMERS, customer_id)
    if customer is not None and customer.get("orgId") != org_id:
        raise NotFound(f"no customer '{customer_id}' in this organization")
    page = store.query(
        CONSENT_RECORDS,
        [Where("orgId", "==", org_id), Where("customerId", "==", customer_id)],
        [OrderBy("at", "desc")],
        limit=page_size,
        start_after=page_token,
    )
    if customer is None and not page.docs and page_token is None:
        raise NotFound(f"no customer '{customer_id}' in this organization")
    return {
        "consentRecords": [public_view(doc.data) for doc in page.docs],
        "nextPageToken": page.next_cursor,
    }


def customer_for_identity(store: DocumentStore, *, org_id: str, identity_key: str) -> str | None:
    """The org's customer an identity key names: `cid:` directly, `em:`/`ph:` by address."""
    prefix, _, value = identity_key.partition(":")
    if prefix == "cid":
        return customer_of(identity_key)
    if prefix == "em":
        where = [Where("orgId", "==", org_id), Where("email", "==", value)]
    elif prefix == "ph":
        where = [Where("orgId", "==", org_id), Where("phone", "==", value)]
    else:
        return None
    page = store.query(CUSTOMERS, where, limit=1)
    return page.docs[0].id if page.docs else None


PUBLIC_FIELDS = (
    "id", "orgId", "identityKey", "customerId", "channel", "state", "at", "source", "method",
    "disclosure", "disclosureHash", "ip", "userAgent", "expiresAt",
)  # fmt: skip


def public_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """Every field of the record, nulls included; nothing a record does not describe."""
    return {name: document.get(name) for name in PUBLIC_FIELDS}
