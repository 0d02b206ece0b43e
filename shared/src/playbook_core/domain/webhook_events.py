"""One verified delivery → the canonical events it stands for (domain.md §5.4, §6.5–6.6)."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from playbook_core.domain import normalise as n
from playbook_core.domain.envelope import Customer, EventEnvelope, Source
from playbook_core.domain.normal_forms import parse_timestamp, rfc3339
from playbook_core.domain.timezones import DEFAULT_TIMEZONE
from playbook_core.domain.webhooks import (
    SHOPIFY_TOPICS,
    STALE_AFTER_HOURS,
    WOOCOMMERCE_ORDER_STATUS,
    WOOCOMMERCE_TOPICS,
    Platform,
    body_digest,
    low_stock_id,
    order_transition_id,
    woocommerce_event_id,
)

Body = dict[str, Any]
IgnoredReason = Literal["unmapped_topic", "above_threshold"]

# Which body timestamps say when the thing happened, per topic (first present wins).
_SHOPIFY_TIMES: dict[str, tuple[str, ...]] = {
    "orders/create": ("created_at",),
    "orders/cancelled": ("cancelled_at", "updated_at"),
    "orders/fulfilled": ("closed_at", "updated_at"),
    "customers/create": ("created_at",),
    "checkouts/create": ("created_at",),
    "carts/create": ("created_at",),
    "products/create": ("created_at",),
    "refunds/create": ("processed_at", "created_at"),
}
_WOO_TIMES: dict[str, tuple[str, ...]] = {
    "order.created": ("date_created_gmt", "date_created"),
    "customer.created": ("date_created_gmt", "date_created"),
    "product.created": ("date_created_gmt", "date_created"),
}
_UPDATED = {
    "shopify": ("updated_at", "created_at"),
    "woocommerce": ("date_modified_gmt", "date_modified", "date_created_gmt", "date_created"),
}
_WOO_COMPLETED_TIMES = ("date_completed_gmt", "date_modified_gmt", "date_modified")
_TRANSITIONS: dict[str, Literal["completed", "cancelled"]] = {
    "order.completed": "completed",
    "order.cancelled": "cancelled",
}


@dataclass(frozen=True)
class Delivery:
    """What the verified headers and the registered source say about one delivery."""

    platform: Platform
    topic: str
    org_id: str
    source_ref: str  # the shop domain or the store's host
    event_id: str  # shp_/woo_ id of the delivery itself; also its replay key
    received_at: datetime
    delivery_id: str | None = None
    triggered_at: datetime | None = None  # X-Shopify-Triggered-At


@dataclass(frozen=True)
class OrgContext:
    """Per-org inputs of normalisation: low-stock threshold, phone country, local day."""

    low_stock_threshold: int = 5
    default_country: str = "US"
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))


@dataclass(frozen=True)
class Routed:
    events: list[EventEnvelope]
    ignored: IgnoredReason | None = None
    phone_dropped: str | None = None  # why the customer's phone given was left out, if it was


def stale_age(delivery: Delivery) -> timedelta | None:
    """§6.4 rule 6: how long ago the platform triggered a delivery it sends this late, else None.

    Stale means `X-Shopify-Triggered-At` lies more than STALE_AFTER_HOURS before receipt (Shopify
    retries for hours, and a store's backlog can be replayed days later). It is still processed;
    the envelope says so, and time-sensitive sends skip it (domain/sending.py `too_late_for`).
    """
    triggered = delivery.triggered_at
    if triggered is None:
        return None
    age = delivery.received_at - triggered
    return age if age > timedelta(hours=STALE_AFTER_HOURS) else None


def woocommerce_delivery_event_id(
    source_key: str, webhook_id: str, topic: str, body: Body, raw: bytes
) -> str:
    """§6.4: the body's id and `date_modified_gmt` (else the body's SHA-256) make the Woo key."""
    resource = n.text_value(body.get("id")) or ""
    modified = n.text_value(body.get("date_modified_gmt")) or body_digest(raw)
    return woocommerce_event_id(source_key, webhook_id, topic, resource, modified)


def created_order_id(routed: Routed) -> str | None:
    """The order an `order.created` among the events creates; None when there is none."""
    for envelope in routed.events:
        order_id = envelope.data.get("orderId")
        if envelope.name == "order.created" and isinstance(order_id, str):
            return order_id
    return None


def event_name(platform: Platform, topic: str, body: Body) -> str | None:
    """§6.5: the canonical event for a topic, or None when the topic is not mapped."""
    if platform == "shopify":
        return SHOPIFY_TOPICS.get(topic)
    name = WOOCOMMERCE_TOPICS.get(topic)
    if topic == "order.updated":
        status = body.get("status")
        return WOOCOMMERCE_ORDER_STATUS.get(status, name) if isinstance(status, str) else name
    return name


def occurred_at(delivery: Delivery, name: str | None, body: Body) -> datetime:
    """The platform's own time of the change, else when the platform sent it, else receipt."""
    if delivery.platform == "shopify":
        keys = _SHOPIFY_TIMES.get(delivery.topic, _UPDATED["shopify"])
    elif name == "order.completed":
        keys = _WOO_COMPLETED_TIMES
    else:
        keys = _WOO_TIMES.get(delivery.topic, _UPDATED["woocommerce"])
    for key in (*keys, *_UPDATED[delivery.platform]):
        moment = parse_timestamp(body.get(key))
        if moment is not None:
            return moment
    return delivery.triggered_at or delivery.received_at


def route(delivery: Delivery, body: Body, context: OrgContext) -> Routed:
    """The envelopes to publish, or why there are none (the caller logs `ignored_topic`)."""
    name = event_name(delivery.platform, delivery.topic, body)
    if name is None:
        return Routed([], "unmapped_topic")
    when = occurred_at(delivery, name, body)
    if delivery.platform == "shopify":
        routed = _shopify(delivery, name, body, context, when)
    else:
        routed = _woocommerce(delivery, name, body, context, when)
    return dataclasses.replace(routed, phone_dropped=_phone_dropped(delivery, body, context))


def _phone_dropped(delivery: Delivery, body: Body, context: OrgContext) -> str | None:
    """The reason a customer-bearing topic's phone was dropped (never the number itself)."""
    topic, country = delivery.topic, context.default_country
    if delivery.platform == "shopify":
        if topic.startswith(("orders/", "customers/", "checkouts/", "carts/")):
            customer_topic = topic.startswith("customers/")
            return n.shopify_phone(
                body, customer_topic=customer_topic, default_country=country
            ).dropped
        return None
    if topic.startswith(("order.", "customer.")):
        return n.woocommerce_phone(body, default_country=country).dropped
    return None


def ignored_envelope(delivery: Delivery, body: Body) -> EventEnvelope:
    """The event-log entry of a delivery that dispatched nothing: named after its topic."""
    return _envelope(delivery, delivery.topic, occurred_at(delivery, None, body), None, {})


def _shopify(
    delivery: Delivery, name: str, body: Body, context: OrgContext, when: datetime
) -> Routed:
    topic, country = delivery.topic, context.default_country
    event = functools.partial(_envelope, delivery, name, when)
    if topic.startswith("orders/"):
        data = n.shopify_order(body)
        customer = n.shopify_customer(body, customer_topic=False, default_country=country)
        return Routed([event(customer, data, event_id=_order_id(delivery, name, data))])
    if topic == "refunds/create":
        return Routed([event(None, n.shopify_refund(body))])
    if topic.startswith("customers/"):
        return Routed(
            [event(n.shopify_customer(body, customer_topic=True, default_country=country), {})]
        )
    if topic in {"checkouts/create", "carts/create"}:
        data = n.shopify_checkout(body, kind="checkout" if topic == "checkouts/create" else "cart")
        return Routed(
            [event(n.shopify_customer(body, customer_topic=False, default_country=country), data)]
        )
    if topic.startswith("products/"):
        return Routed([event(None, n.shopify_product(body))])
    stock = n.shopify_stock(body, context.low_stock_threshold)
    low = _is_low(stock)
    events = [event(None, stock, event_id=_low_id(delivery, stock, when, context))] if low else []
    return Routed(events, None if low else "above_threshold")


def _woocommerce(
    delivery: Delivery, name: str, body: Body, context: OrgContext, when: datetime
) -> Routed:
    topic, country = delivery.topic, context.default_country
    event = functools.partial(_envelope, delivery, name, when)
    if topic.startswith("order."):
        data = n.woocommerce_order(body)
        customer = n.woocommerce_customer(body, customer_topic=False, default_country=country)
        return Routed([event(customer, data, event_id=_order_id(delivery, name, data))])
    if topic.startswith("customer."):
        customer = n.woocommerce_customer(body, customer_topic=True, default_country=country)
        return Routed([event(customer, {})])
    events = [event(None, n.woocommerce_product(body))]
    stock = n.woocommerce_stock(body, context.low_stock_threshold)
    if topic == "product.updated" and stock is not None and _is_low(stock):
        low_id = _low_id(delivery, stock, when, context)
        events.append(
            _envelope(delivery, "inventory.low_stock", when, None, stock, event_id=low_id)
        )
    return Routed(events)


def _is_low(stock: Body) -> bool:
    available = stock.get("available")
    return isinstance(available, int) and available <= stock["threshold"]


def _order_id(delivery: Delivery, name: str, data: Body) -> str:
    """Completion and cancellation are once per order, whichever topic or retry reports them."""
    transition = _TRANSITIONS.get(name)
    order_id = data.get("orderId")
    if transition is None or not isinstance(order_id, str):
        return delivery.event_id
    return order_transition_id(delivery.org_id, delivery.platform, order_id, transition)


def _low_id(delivery: Delivery, stock: Body, when: datetime, context: OrgContext) -> str:
    local_date = when.astimezone(context.timezone).date().isoformat()
    return low_stock_id(
        delivery.org_id, str(stock.get("productId") or ""), stock.get("variantId"),
        stock.get("locationId"), local_date,
    )  # fmt: skip


def _envelope(
    delivery: Delivery, name: str, when: datetime, customer: Customer | None, data: Body, *,
    event_id: str | None = None,
) -> EventEnvelope:  # fmt: skip
    triggered = delivery.triggered_at
    age = stale_age(delivery)
    return EventEnvelope(
        event_id=event_id or delivery.event_id,
        org_id=delivery.org_id,
        name=name,
        original_name=delivery.topic,
        occurred_at=when,
        received_at=delivery.received_at,
        source=Source(
            kind=delivery.platform,
            ref=delivery.source_ref,
            topic=delivery.topic,
            delivery_id=delivery.delivery_id,
            triggered_at=rfc3339(triggered) if triggered else None,
            stale=True if age is not None else None,
            age_seconds=int(age.total_seconds()) if age is not None else None,
        ),
        customer=customer,
        data=data,
    )
