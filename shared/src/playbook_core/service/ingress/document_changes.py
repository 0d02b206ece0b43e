"""Firestore triggers on orders, customers and inventory become events; dates feed calendar runs."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from playbook_core.domain.changes import (
    DEFAULT_LOW_STOCK,
    ChangeLike,
    OrgFacts,
    events_for,
    order_at,
    order_customer,
    orgs_of,
    split_path,
)
from playbook_core.domain.collections import (
    CUSTOMER_DATES,
    CUSTOMERS,
    INVENTORY,
    ORDERS,
    ORGANIZATIONS,
)
from playbook_core.domain.customer_dates import customer_rows, last_order_row
from playbook_core.domain.doc_fields import mapping
from playbook_core.domain.normalise import first_phone
from playbook_core.domain.timezones import org_timezone, stored_zone
from playbook_core.logging import event
from playbook_core.ports import DocumentStore, Transaction, Where
from playbook_core.service.ingress.event_log import Publishing, publish_event
from playbook_core.service.records import read_settings

_FUNCTIONS = {
    ORDERS: "on_order_written",
    CUSTOMERS: "on_customer_written",
    INVENTORY: "on_inventory_written",
}
_MAX_THRESHOLD = 100_000
_log = logging.getLogger("playbooks.changes")


def org_facts(store: DocumentStore, org_id: str) -> OrgFacts:
    """Timezone (settings, then organizations, then the default), threshold and phone country."""
    settings = read_settings(store, org_id)
    organization = None if stored_zone(settings) else store.get(ORGANIZATIONS, org_id)
    timezone = org_timezone(settings, organization)  # a bad stored zone means the default
    own = settings.get("lowStockThreshold")
    threshold = DEFAULT_LOW_STOCK
    if isinstance(own, int) and not isinstance(own, bool) and 0 <= own <= _MAX_THRESHOLD:
        threshold = own
    country = settings.get("defaultCountry")
    return OrgFacts(
        timezone=timezone,
        low_stock_threshold=threshold,
        default_country=country if isinstance(country, str) and country else "US",
    )


def document_changed(change: ChangeLike, *, publishing: Publishing) -> dict[str, Any]:
    """Map one write to its events, publish each, and keep the calendar index current.

    Only `customer_dates` is written, never the triggering document, so no write re-triggers.
    """
    store, bus, topic, clock = publishing.store, publishing.bus, publishing.topic, publishing.clock
    collection, doc_id = split_path(change.path)
    kind = "created" if change.before is None else "deleted" if change.after is None else "updated"
    summary: dict[str, Any] = {
        "function": _FUNCTIONS.get(collection, "unknown"),
        "document": change.path,
        "kind": kind,
        "changed": sorted(change.changed),
        "ceId": change.event_id,
    }
    event(_log, logging.INFO, "document change received", **summary)
    if collection not in _FUNCTIONS:
        return {**summary, "published": []}
    now = clock.now()
    orgs = dict.fromkeys(orgs_of(doc_id, change.before) + orgs_of(doc_id, change.after))
    facts = {org: org_facts(store, org) for org in orgs}
    published = []
    for envelope in events_for(change, facts=facts, received_at=now):
        publish_event(envelope, bus=bus, topic=topic)
        published.append(
            {"name": envelope.name, "eventId": envelope.event_id, "orgId": envelope.org_id}
        )
    if collection == CUSTOMERS:
        rows = customer_rows(
            doc_id, change.before, change.after, changed=change.changed, facts=facts,
            received_at=now,
        )  # fmt: skip
        for row_id, row in rows.put.items():
            store.set(CUSTOMER_DATES, row_id, row)
        for row_id in rows.remove:
            store.delete(CUSTOMER_DATES, row_id)
    elif collection == ORDERS and change.before is None and change.after is not None:
        for org in orgs_of(doc_id, change.after):
            _index_last_order(store, org, change.after, facts[org], now)
    if published:
        event(
            _log, logging.INFO, "document change published", document=change.path, events=published
        )
    dropped = _dropped_phones(collection, doc_id, change.after, facts)
    for org, reason in dropped.items():  # never the number: it is personal data
        event(
            _log, logging.INFO, "document phone dropped", document=change.path, orgId=org,
            reason=reason,
        )  # fmt: skip
    return {**summary, "published": published, **({"phoneDropped": dropped} if dropped else {})}


def _dropped_phones(
    collection: str, doc_id: str, after: dict[str, Any] | None, facts: dict[str, OrgFacts]
) -> dict[str, str]:
    """{org: reason} where the document gives a phone and none is a valid number in its country.

    The fields are those the event and calendar mappings read (domain/changes.py and
    domain/customer_dates.py): `phone`, `customer.phone` and, on orders, `customerPhone`.
    """
    if after is None or collection not in {CUSTOMERS, ORDERS}:
        return {}
    given = [after.get("phone"), mapping(after.get("customer")).get("phone")]
    if collection == ORDERS:
        given.append(after.get("customerPhone"))
    dropped = {}
    for org in orgs_of(doc_id, after):
        reason = first_phone(facts[org].default_country, *given).dropped
        if reason is not None:
            dropped[org] = reason
    return dropped


def _customer_id(store: DocumentStore, org_id: str, order: dict[str, Any]) -> str | None:
    """The order's customer doc: its own customerId, else the org's customer with that email."""
    customer = order_customer(order)
    if customer is not None and customer.id:
        return customer.id
    if customer is None or customer.email is None:
        return None
    # Existing customer docs may keep the email as typed; try the normalised one and that one.
    raw = mapping(order.get("customer")).get("email")
    emails = list(dict.fromkeys([customer.email, *([raw] if isinstance(raw, str) else [])]))
    found = store.query(
        CUSTOMERS, [Where("orgId", "==", org_id), Where("email", "in", emails)], limit=1
    ).docs
    return found[0].id if found else None


def _index_last_order(
    store: DocumentStore, org_id: str, order: dict[str, Any], facts: OrgFacts, now: datetime
) -> None:
    customer_id = _customer_id(store, org_id, order)
    if customer_id is None:
        return  # no customer doc yet: the 30-day-inactive sweep cannot name one anyway
    row_id, row = last_order_row(org_id, customer_id, order, order_at(order, now), facts)

    def keep_newest(tx: Transaction) -> None:
        # Orders can arrive out of order (POS back-fills): an older one never moves the date back.
        current = tx.get(CUSTOMER_DATES, row_id)
        if current is None or str(current.get("date", "")) < row["date"]:
            tx.set(CUSTOMER_DATES, row_id, row)

    store.transaction(keep_newest)
