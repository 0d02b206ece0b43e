"""Firestore writes as canonical events (domain.md §5.1, §5.4, §9.1); pure, so unit-tested."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from playbook_core.domain.collections import CUSTOMERS, INVENTORY, ORDERS
from playbook_core.domain.doc_fields import instant, mapping, names, number, text
from playbook_core.domain.envelope import Consent, Customer, EventEnvelope, Source
from playbook_core.domain.ids import h, is_plain_id
from playbook_core.domain.normal_forms import (
    normalise_currency,
    normalise_email,
    normalise_phone,
    rfc3339,
    to_money,
)
from playbook_core.domain.timezones import DEFAULT_TIMEZONE

DEFAULT_LOW_STOCK = 5
ORDER_SOURCE = "app"
_ORG_FIELDS = ("orgId", "brandId", "retailerId")
_POS_PREFIX = "alleaves_"  # POS sync docs: the brand owns them (§9.1)
_TERMINAL = {"completed": "completed", "cancelled": "cancelled", "canceled": "cancelled"}
_PROFILE = frozenset({"email", "phone", "firstName", "lastName", "name", "birthday", "consent"})
_QUANTITY_FIELDS = ("quantity", "available", "stockQuantity", "stock")
_MAX_ORG_ID = 128
_STATE = re.compile(r"^[A-Z]{2}$")  # a US state code on a customer (compliance.md)


class ChangeLike(Protocol):
    """What a Firestore trigger delivers (runtime.cloudevents.DocumentChange has this shape)."""

    @property
    def path(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def before(self) -> dict[str, Any] | None: ...
    @property
    def after(self) -> dict[str, Any] | None: ...
    @property
    def changed(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class OrgFacts:
    """Per-org settings the mapping needs: local dates, the stock threshold, phone country."""

    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    low_stock_threshold: int = DEFAULT_LOW_STOCK
    default_country: str = "US"


def split_path(path: str) -> tuple[str, str]:
    """(collection, document id) of a top-level document path."""
    collection, _, doc_id = path.rpartition("/")
    return collection.rpartition("/")[2], doc_id


def orgs_of(doc_id: str, doc: Mapping[str, Any] | None) -> list[str]:
    """Each distinct non-empty org of a document, in orgId, brandId, retailerId order."""
    if not doc:
        return []
    fields = ("brandId",) if doc_id.startswith(_POS_PREFIX) and doc.get("brandId") else _ORG_FIELDS
    found: list[str] = []
    for name in fields:
        value = doc.get(name)
        if is_plain_id(value) and len(value) <= _MAX_ORG_ID:
            found += [] if value in found else [value]
    return found


def _customer(
    doc: Mapping[str, Any], *, customer_id: str | None, fallback: Mapping[str, Any], country: str
) -> Customer | None:
    first, last = names(doc)
    consent = mapping(doc.get("consent"))
    flags = {k: consent[k] for k in ("email", "sms") if isinstance(consent.get(k), bool)}
    email = normalise_email(doc.get("email")) or normalise_email(fallback.get("customerEmail"))
    phone = normalise_phone(doc.get("phone"), country) or normalise_phone(
        fallback.get("customerPhone"), country
    )
    state = doc.get("state")
    customer = Customer(
        id=customer_id if is_plain_id(customer_id) else None, email=email,
        phone=phone, first_name=first, last_name=last, consent=Consent(**flags) if flags else None,
        state=state if isinstance(state, str) and _STATE.match(state) else None,
        age_verified=doc.get("ageVerified") if isinstance(doc.get("ageVerified"), bool) else None,
    )  # fmt: skip
    return customer if customer.model_dump(exclude_none=True) else None


def customer_profile(customer_id: str, doc: Mapping[str, Any], country: str = "US") -> Customer:
    """A `customers` document as the envelope's customer (also a calendar run's context)."""
    found = _customer(doc, customer_id=customer_id, fallback={}, country=country)
    return found or Customer(id=customer_id)


def order_customer(doc: Mapping[str, Any], country: str = "US") -> Customer | None:
    """The existing app's `customer.{email, phone, name}`, with top-level fallbacks."""
    nested = mapping(doc.get("customer"))
    customer_id = text(doc.get("customerId")) or text(nested.get("id"))
    return _customer(nested, customer_id=customer_id, fallback=doc, country=country)


def _line_items(doc: Mapping[str, Any], currency: str) -> list[dict[str, Any]]:
    raw = doc.get("items") or doc.get("lineItems") or []
    items = []
    for item in raw if isinstance(raw, list) else []:
        entry = mapping(item)
        count = entry.get("quantity", entry.get("qty", 1))
        price = to_money(entry.get("price", entry.get("unitPrice")), currency)
        items.append(
            {
                "productId": text(entry.get("productId") or entry.get("id")),
                "variantId": text(entry.get("variantId")),
                "sku": text(entry.get("sku")),
                "name": text(entry.get("name") or entry.get("productName") or entry.get("title")),
                "quantity": count if isinstance(count, int) and not isinstance(count, bool) else 1,
                "price": price.text if price else None,
            }
        )
    return items


def order_data(order_id: str, doc: Mapping[str, Any], *, received_at: datetime) -> dict[str, Any]:
    """The §5.3 order family from an `orders` doc: totals.total ?? totalAmount ?? total (§9.1)."""
    currency = normalise_currency(doc.get("currency")) or "USD"
    candidates = (mapping(doc.get("totals")).get("total"), doc.get("totalAmount"), doc.get("total"))
    total = to_money(next((v for v in candidates if v is not None), 0), currency)
    items = _line_items(doc, currency)
    return {
        "orderId": order_id,
        "orderNumber": text(doc.get("orderNumber") or doc.get("number")),
        "orderSource": ORDER_SOURCE,
        "orderAt": rfc3339(order_at(doc, received_at)),
        "status": text(doc.get("status")),
        "total": total.text if total else "0.00",
        "totalMinor": total.minor if total else 0,
        "currency": currency,
        "lineItems": items,
        "itemCount": sum(item["quantity"] for item in items),
    }


def order_at(doc: Mapping[str, Any], received_at: datetime) -> datetime:
    """The order's own timestamp (`createdAt`); the attribution window is anchored on it."""
    return instant(doc.get("createdAt")) or received_at


def _status(doc: Mapping[str, Any] | None) -> str | None:
    value = text((doc or {}).get("status"))
    return _TERMINAL.get(value.lower(), value.lower()) if value else None


def order_transitions(
    before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> list[tuple[str, str | None]]:
    """(event name, transition for an `ord_` id, or None for an `fs_` id)."""
    status = _status(after)
    terminal = status in _TERMINAL.values()
    if before is None:
        # A doc created already completed (POS sync) has made that transition too, once.
        return [("order.created", "created")] + ([(f"order.{status}", status)] if terminal else [])
    if status is None or status == _status(before):
        return []
    return [(f"order.{status}", status)] if terminal else [("order.updated", None)]


def quantity(doc: Mapping[str, Any] | None) -> float | None:
    """The stock level, from whichever field name the syncing system uses."""
    values = (number((doc or {}).get(name)) for name in _QUANTITY_FIELDS)
    return next((value for value in values if value is not None), None)


def crossed_low_stock(before: float | None, after: float | None, threshold: int) -> bool:
    """Only a crossing from above to at-or-below counts, never every update below it."""
    return before is not None and after is not None and before > threshold >= after


def _inventory_events(
    change: ChangeLike, after: Mapping[str, Any], facts: OrgFacts, now: datetime, org: str
) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, event id, data) for an `inventory` write."""
    _, doc_id = split_path(change.path)
    product: dict[str, Any] = {
        "productId": text(after.get("productId")) or doc_id,
        "variantId": text(after.get("variantId")),
        "sku": text(after.get("sku")),
        "name": text(after.get("name") or after.get("productName")),
    }
    if change.before is None:
        data = {**product, "status": text(after.get("status"))}
        return [("inventory.new_product", "fs_" + h(change.event_id, org), data)]
    own = after.get("lowStockThreshold")
    threshold = facts.low_stock_threshold
    if isinstance(own, int) and not isinstance(own, bool) and own >= 0:
        threshold = own  # an item's own threshold beats the org setting
    available = quantity(after)
    if available is None or not crossed_low_stock(quantity(change.before), available, threshold):
        return []
    location = text(after.get("locationId"))
    local_date = now.astimezone(facts.timezone).date().isoformat()
    event_id = "low_" + h(
        org, product["productId"], product["variantId"] or "", location or "", local_date
    )
    level = int(available) if available.is_integer() else available
    data = {**product, "locationId": location, "available": level, "threshold": threshold}
    return [("inventory.low_stock", event_id, data)]


def _customer_events(change: ChangeLike, after: Mapping[str, Any]) -> list[str]:
    if change.before is None:
        # The dispatcher creates customers for webhook events that already carried the signup.
        return [] if after.get("createdBy") == "playbooks" else ["customer.signup"]
    return ["customer.updated"] if change.changed & _PROFILE else []


def events_for(
    change: ChangeLike, *, facts: Mapping[str, OrgFacts], received_at: datetime
) -> list[EventEnvelope]:
    """Every event a write produces, for each org of the document; deletes produce none."""
    collection, doc_id = split_path(change.path)
    after = change.after
    if after is None:
        return []
    source = Source(kind="firestore", ref=change.path)
    stamp = after.get("createdAt") if change.before is None else after.get("updatedAt")
    occurred = instant(stamp) or received_at
    events: list[EventEnvelope] = []

    def add(
        org: str, name: str, event_id: str, data: dict[str, Any], customer: Customer | None = None
    ) -> None:
        events.append(
            EventEnvelope(
                event_id=event_id, org_id=org, name=name, occurred_at=occurred,
                received_at=received_at, source=source, customer=customer,
                data={k: v for k, v in data.items() if v is not None},
            )
        )  # fmt: skip

    for org in orgs_of(doc_id, after):
        org_facts = facts.get(org) or OrgFacts()
        country = org_facts.default_country
        if collection == ORDERS:
            data = order_data(doc_id, after, received_at=received_at)
            for name, transition in order_transitions(change.before, after):
                event_id = (
                    "ord_" + h(org, ORDER_SOURCE, doc_id, transition)
                    if transition
                    else "fs_" + h(change.event_id, org)
                )
                add(org, name, event_id, data, order_customer(after, country))
        elif collection == CUSTOMERS:
            profile = customer_profile(doc_id, after, country)
            changed = sorted(change.changed & _PROFILE) if change.before else None
            for name in _customer_events(change, after):
                data = {"customerId": doc_id, "changed": changed}
                add(org, name, "fs_" + h(change.event_id, org), data, profile)
        elif collection == INVENTORY:
            for name, event_id, data in _inventory_events(
                change, after, org_facts, received_at, org
            ):
                add(org, name, event_id, data)
    return events
