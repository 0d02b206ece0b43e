"""Real platform bodies (tests/data/webhooks) → canonical envelopes, field by field (§5.3–5.4, §6.6)."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from playbook_core.domain.envelope import EventEnvelope
from playbook_core.domain.ids import h
from playbook_core.domain.normal_forms import INVALID_PHONE, Phone
from playbook_core.domain.normalise import (
    first_phone,
    shopify_customer,
    shopify_phone,
    woocommerce_customer,
    woocommerce_phone,
)
from playbook_core.domain.webhook_events import Delivery, OrgContext, ignored_envelope, route

DATA = Path(__file__).parents[2] / "data" / "webhooks"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SHOP = "shop.myshopify.com"
DELIVERY_ID = "shp_" + h(SHOP, "topic", "evt-1")
CONTEXT = OrgContext()

SHOPIFY_LINES = [
    {"productId": "788032119674292922", "variantId": None, "sku": "SKU2006-001",
     "name": "Aviator sunglasses", "quantity": 1, "price": "89.99"},
    {"productId": None, "variantId": None, "sku": "LENS-PROTECT-2YR",
     "name": "Lens Protection Plan (2 Year)", "quantity": 1, "price": "19.99"},
    {"productId": None, "variantId": None, "sku": "CASE-LEATHER-PREM",
     "name": "Premium Leather Case", "quantity": 1, "price": "24.99"},
    {"productId": "788032119674292922", "variantId": None, "sku": "SKU2006-020",
     "name": "Mid-century lounger", "quantity": 1, "price": "159.99"},
    {"productId": "788032119674292922", "variantId": None, "sku": "SKU2006-035",
     "name": "Coffee table", "quantity": 1, "price": "119.99"},
]  # fmt: skip
SHOPIFY_ORDER = {
    "orderId": "820982911946154508", "orderNumber": "#9999", "orderSource": "shopify",
    "orderAt": "2022-01-01T00:00:00Z", "status": "cancelled",  # the sample has cancelled_at set
    "total": "404.95", "totalMinor": 40495, "currency": "USD", "lineItems": SHOPIFY_LINES,
    "itemCount": 5,
}  # fmt: skip
SHOPIFY_BUYER = {
    "externalId": "115310627314723954", "email": "john@example.com", "phone": "+16136120707",
    "firstName": "John", "lastName": "Smith", "state": "KY",  # the shipping address's state
}  # fmt: skip
WOO_LINES = [
    {"productId": "93", "variantId": None, "sku": None, "name": "Woo Single #1", "quantity": 2,
     "price": "3.00"},
    {"productId": "22", "variantId": "23", "sku": "Bar3",
     "name": "Ship Your Idea – Color: Black, Size: M Test", "quantity": 1, "price": "12.00"},
]  # fmt: skip
# The samples' billing phone "(555) 555-5555" is no assigned US number: dropped, never guessed.
WOO_BUYER = {
    "email": "john.doe@example.com", "firstName": "John", "lastName": "Doe", "state": "CA",
}  # fmt: skip


def body_of(name: str) -> dict:
    return json.loads((DATA / name).read_bytes(), parse_float=Decimal)


def deliver(platform, topic, *, event_id=DELIVERY_ID, org="org_a", triggered=None, ref=SHOP):
    return Delivery(platform, topic, org, ref, event_id, NOW, "d-1", triggered)


def wire(envelope: EventEnvelope) -> dict:
    """What subscribers receive: the encoded envelope, decoded again."""
    raw = envelope.encode()
    assert EventEnvelope.decode(raw) == envelope
    return json.loads(raw)


def only(routed) -> dict:
    assert routed.ignored is None
    assert len(routed.events) == 1
    return wire(routed.events[0])


# --- Shopify ----------------------------------------------------------------------------------


def test_shopify_orders_create():
    event = only(
        route(deliver("shopify", "orders/create"), body_of("shopify_orders_create.json"), CONTEXT)
    )
    assert event == {
        "specVersion": "1", "eventId": DELIVERY_ID, "orgId": "org_a", "name": "order.created",
        "originalName": "orders/create", "occurredAt": "2022-01-01T00:00:00Z",
        "receivedAt": "2026-11-24T12:00:00Z",
        "source": {"kind": "shopify", "ref": SHOP, "topic": "orders/create", "deliveryId": "d-1"},
        "customer": SHOPIFY_BUYER, "data": SHOPIFY_ORDER,
    }  # fmt: skip


def test_shopify_orders_paid_is_an_update_with_the_delivery_id():
    event = only(
        route(deliver("shopify", "orders/paid"), body_of("shopify_orders_create.json"), CONTEXT)
    )
    assert (event["name"], event["eventId"], event["originalName"]) == (
        "order.updated", DELIVERY_ID, "orders/paid",
    )  # fmt: skip
    assert event["occurredAt"] == "2022-01-01T00:00:00Z"  # updated_at
    assert event["data"] == SHOPIFY_ORDER
    assert event["customer"] == SHOPIFY_BUYER


def test_shopify_orders_fulfilled_is_completed_once_per_order():
    body = body_of("shopify_orders_fulfilled.json")
    event = only(route(deliver("shopify", "orders/fulfilled"), body, CONTEXT))
    expected_id = "ord_" + h("org_a", "shopify", "820982911946154508", "completed")
    assert (event["name"], event["eventId"]) == ("order.completed", expected_id)
    assert event["data"] == SHOPIFY_ORDER
    # This sample has no phone on the customer or the order and the address phones are not
    # numbers ("555-555-SHIP"): the phone is absent, the rest of the buyer stays.
    assert event["customer"] == {k: v for k, v in SHOPIFY_BUYER.items() if k != "phone"}
    redelivered = deliver("shopify", "orders/fulfilled", event_id="shp_" + h(SHOP, "x", "other"))
    assert only(route(redelivered, body, CONTEXT))["eventId"] == expected_id


def test_shopify_orders_cancelled():
    body = body_of("shopify_orders_create.json")
    event = only(route(deliver("shopify", "orders/cancelled"), body, CONTEXT))
    assert event["name"] == "order.cancelled"
    assert event["eventId"] == "ord_" + h("org_a", "shopify", "820982911946154508", "cancelled")
    assert event["occurredAt"] == "2022-01-01T00:00:00Z"  # cancelled_at
    assert event["data"]["status"] == "cancelled"


def test_shopify_customers_create_uses_the_top_level():
    body = body_of("shopify_customers_create.json")
    event = only(route(deliver("shopify", "customers/create"), body, CONTEXT))
    assert event["name"] == "customer.signup"
    assert event["eventId"] == DELIVERY_ID
    assert event["occurredAt"] == "2022-01-01T00:00:00Z"
    assert event["customer"] == {
        "externalId": "706405506930370084", "email": "bob@biller.com", "firstName": "Bob",
        "lastName": "Biller",
    }  # fmt: skip
    assert event["data"] == {}


def test_shopify_checkouts_create():
    body = body_of("shopify_checkouts_create.json")
    event = only(route(deliver("shopify", "checkouts/create"), body, CONTEXT))
    assert event["name"] == "checkout.started"
    assert event["occurredAt"] == "2022-01-01T00:00:00Z"
    # customer.email wins over the checkout's own email (§6.6 order: customer ‖ email).
    assert event["customer"] == {
        "externalId": "603851970716743426", "email": "john@example.com", "firstName": "John",
        "lastName": "Smith", "state": "KY",
    }  # fmt: skip
    line = {"productId": "632910392", "variantId": "808950810", "sku": "IPOD2008PINK",
            "name": "IPod Nano - 8GB", "quantity": 1, "price": "199.00"}  # fmt: skip
    assert event["data"] == {
        "checkoutId": "981820079255243537", "total": "421.88", "totalMinor": 42188,
        "currency": "USD", "lineItems": [line, line], "itemCount": 2,
        "recoveryUrl": body["abandoned_checkout_url"],
    }  # fmt: skip


def test_shopify_products_update():
    body = body_of("shopify_products_update.json")
    event = only(route(deliver("shopify", "products/update"), body, CONTEXT))
    assert (event["name"], event["eventId"]) == ("product.updated", DELIVERY_ID)
    assert event["occurredAt"] == "2022-01-01T00:00:00Z"
    assert "customer" not in event
    assert event["data"] == {
        "productId": "788032119674292922", "name": "Example T-Shirt", "status": "active",
    }  # fmt: skip


def test_shopify_inventory_at_2_is_low_stock_with_threshold_5():
    body = body_of("shopify_inventory_levels_update.json")
    event = only(route(deliver("shopify", "inventory_levels/update"), body, CONTEXT))
    assert event["name"] == "inventory.low_stock"
    assert event["occurredAt"] == "2022-01-01T00:00:00Z"
    assert event["data"] == {
        "productId": "271878346596884015", "locationId": "24826418", "available": 2,
        "threshold": 5,
    }  # fmt: skip
    # Local day in the org zone (New York): 2021-12-31 19:00, not the UTC date.
    assert event["eventId"] == "low_" + h(
        "org_a", "271878346596884015", "", "24826418", "2021-12-31"
    )


def test_low_stock_id_follows_the_org_local_day():
    body = body_of("shopify_inventory_levels_update.json")
    tokyo = OrgContext(timezone=ZoneInfo("Asia/Tokyo"))
    event = only(route(deliver("shopify", "inventory_levels/update"), body, tokyo))
    assert event["eventId"] == "low_" + h(
        "org_a", "271878346596884015", "", "24826418", "2022-01-01"
    )


@pytest.mark.parametrize(("available", "threshold", "low"), [
    (2, 5, True), (5, 5, True), (6, 5, False), (0, 0, True), (2, 1, False), (-3, 0, True),
])  # fmt: skip
def test_inventory_threshold_is_inclusive(available, threshold, low):
    body = {**body_of("shopify_inventory_levels_update.json"), "available": available}
    routed = route(deliver("shopify", "inventory_levels/update"), body, OrgContext(threshold))
    assert bool(routed.events) is low
    assert routed.ignored == (None if low else "above_threshold")


def test_email_is_lowercased_and_invalid_ones_fall_through():
    body = body_of("shopify_orders_create.json")
    body["customer"]["email"] = "  John@Example.COM "
    assert shopify_customer(body, customer_topic=False, default_country="US").email == (
        "john@example.com"
    )
    body["customer"]["email"] = "not an email"
    assert shopify_customer(body, customer_topic=False, default_country="US").email == (
        "jon@example.com"  # the order's own email is next
    )


def test_a_national_phone_is_read_in_the_orgs_country():
    body = body_of("shopify_orders_create.json")
    body["customer"]["phone"] = "07400 123456"
    uk = route(deliver("shopify", "orders/create"), body, OrgContext(default_country="GB"))
    assert only(uk)["customer"]["phone"] == "+447400123456"
    body["customer"]["phone"] = body["phone"] = "(613) 612-0707"
    us = route(deliver("shopify", "orders/create"), body, OrgContext(default_country="US"))
    assert only(us)["customer"]["phone"] == "+16136120707"


def test_an_invalid_phone_falls_through_to_the_next_and_says_why_when_none_is_left():
    body = body_of("shopify_orders_create.json")
    body["customer"]["phone"] = "(555) 555-5555"
    assert shopify_phone(body, customer_topic=False, default_country="US") == Phone(
        e164="+16136120707"  # the order's own phone is next
    )
    body["phone"] = "12345"
    assert shopify_phone(body, customer_topic=False, default_country="US") == Phone(
        dropped=INVALID_PHONE  # the address phones ("555-555-SHIP") are no numbers either
    )
    assert (
        "phone" not in only(route(deliver("shopify", "orders/create"), body, CONTEXT))["customer"]
    )


def test_woocommerce_phone_says_why_it_was_dropped():
    body = body_of("woocommerce_order_created.json")
    assert woocommerce_phone(body, default_country="US") == Phone(dropped=INVALID_PHONE)
    body["billing"]["phone"] = "07400 123456"
    assert woocommerce_phone(body, default_country="GB") == Phone(e164="+447400123456")
    body["billing"]["phone"] = ""
    assert woocommerce_phone(body, default_country="GB") == Phone()  # none given: none dropped


def test_first_phone_takes_the_first_valid_one():
    assert first_phone("US", None, "nope", "+44 7400 123456") == Phone(e164="+447400123456")
    assert first_phone("US", None, "") == Phone()
    assert first_phone("US") == Phone()


@pytest.mark.parametrize(("email_state", "sms_state", "consent"), [
    ("subscribed", "unsubscribed", {"email": True, "sms": False}),
    ("not_subscribed", "subscribed", {"sms": True}),
    ("pending", None, None),
])  # fmt: skip
def test_shopify_consent(email_state, sms_state, consent):
    body = body_of("shopify_orders_create.json")
    body["customer"]["email_marketing_consent"] = {"state": email_state}
    if sms_state:
        body["customer"]["sms_marketing_consent"] = {"state": sms_state}
    event = only(route(deliver("shopify", "orders/create"), body, CONTEXT))
    assert event["customer"].get("consent") == consent


@pytest.mark.parametrize(("shipping", "billing", "state"), [
    ({"province_code": "CA", "country_code": "US"}, {"province_code": "NY", "country_code": "US"},
     "CA"),  # where the goods land first
    ({"province_code": "ON", "country_code": "CA"}, {"province_code": "ny", "country_code": "us"},
     "NY"),  # a Canadian shipping address is no US state
    ({}, {"province_code": "Quebec", "country_code": "US"}, None),
])  # fmt: skip
def test_the_customers_us_state_comes_from_the_order_addresses(shipping, billing, state):
    body = body_of("shopify_orders_create.json")
    body["shipping_address"], body["billing_address"] = shipping, billing
    body["customer"].pop("default_address", None)
    assert shopify_customer(body, customer_topic=False, default_country="US").state == state


def test_woocommerce_state_and_a_guest_with_only_an_address_is_nobody():
    order = {"billing": {"email": "a@example.com", "state": "WA", "country": "US"}}
    assert woocommerce_customer(order, customer_topic=False, default_country="US").state == "WA"
    nobody = {"billing": {"state": "WA", "country": "US"}}
    assert woocommerce_customer(nobody, customer_topic=False, default_country="US") is None


def test_an_order_without_anyone_still_routes():
    body = {"id": 1, "total_price": "1.00", "currency": "USD", "created_at": "2022-01-01T00:00:00Z"}
    event = only(route(deliver("shopify", "orders/create"), body, CONTEXT))
    assert "customer" not in event
    assert event["data"]["totalMinor"] == 100
    assert event["data"]["lineItems"] == []


def test_shopify_refund_totals_its_refund_transactions():
    body = {
        "id": 509562969, "order_id": 450789469, "created_at": "2022-01-02T10:00:00-05:00",
        "processed_at": "2022-01-02T10:00:00-05:00",
        "transactions": [
            {"id": 1, "kind": "refund", "status": "success", "amount": "41.94", "currency": "USD"},
            {"id": 2, "kind": "refund", "status": "success", "amount": "10.00", "currency": "USD"},
            {"id": 3, "kind": "refund", "status": "failure", "amount": "99.00", "currency": "USD"},
        ],
    }  # fmt: skip
    event = only(route(deliver("shopify", "refunds/create"), body, CONTEXT))
    assert event["name"] == "order.refunded"
    assert event["occurredAt"] == "2022-01-02T15:00:00Z"
    assert event["data"] == {
        "orderId": "450789469", "orderSource": "shopify", "refundId": "509562969",
        "refundTotal": "51.94", "refundTotalMinor": 5194, "currency": "USD",
    }  # fmt: skip


def test_shopify_cart_sums_its_line_prices():
    body = {
        "id": "eeafa272cebfd4b22385bc4b645e762c", "token": "eeafa272cebfd4b22385bc4b645e762c",
        "line_items": [{
            "id": 704912205188288575, "quantity": 3, "variant_id": 704912205188288575,
            "product_id": 788032119674292922, "sku": "", "title": "Example T-Shirt",
            "price": "19.99", "line_price": "59.97",
            "price_set": {"shop_money": {"amount": "19.99", "currency_code": "USD"}},
        }],
        "created_at": "2022-01-01T00:00:00.000Z", "updated_at": "2022-01-01T00:00:00.000Z",
    }  # fmt: skip
    event = only(route(deliver("shopify", "carts/create"), body, CONTEXT))
    assert event["name"] == "cart.created"
    assert event["data"] == {
        "cartId": "eeafa272cebfd4b22385bc4b645e762c", "total": "59.97", "totalMinor": 5997,
        "currency": "USD", "itemCount": 3,
        "lineItems": [{"productId": "788032119674292922", "variantId": "704912205188288575",
                       "sku": None, "name": "Example T-Shirt", "quantity": 3, "price": "19.99"}],
    }  # fmt: skip


def test_triggered_at_is_recorded_and_old_deliveries_marked_stale():
    body = body_of("shopify_products_update.json")
    fresh = deliver("shopify", "products/update", triggered=NOW - timedelta(hours=1))
    assert only(route(fresh, body, CONTEXT))["source"]["triggeredAt"] == "2026-11-24T11:00:00Z"
    assert "stale" not in only(route(fresh, body, CONTEXT))["source"]
    old = deliver("shopify", "products/update", triggered=NOW - timedelta(hours=25))
    assert only(route(old, body, CONTEXT))["source"]["stale"] is True


def test_occurred_at_falls_back_to_triggered_at_then_receipt():
    triggered = NOW - timedelta(minutes=5)
    body = {"id": 1}
    assert (
        route(deliver("shopify", "products/update", triggered=triggered), body, CONTEXT)
        .events[0]
        .occurred_at
        == triggered
    )
    assert route(deliver("shopify", "products/update"), body, CONTEXT).events[0].occurred_at == NOW


def test_unmapped_topics_route_nothing_and_log_under_their_topic():
    body = body_of("shopify_checkouts_create.json")
    delivery = deliver("shopify", "checkouts/update")
    assert route(delivery, body, CONTEXT).events == []
    assert route(delivery, body, CONTEXT).ignored == "unmapped_topic"
    logged = ignored_envelope(delivery, body)
    assert (logged.name, logged.event_id, logged.org_id) == (
        "checkouts/update",
        DELIVERY_ID,
        "org_a",
    )
    assert logged.occurred_at == datetime(2022, 1, 1, tzinfo=UTC)


# --- WooCommerce ------------------------------------------------------------------------------

WOO_ID = "woo_" + h("https://example.com", "12", "order.created", "727", "2017-03-22T19:28:08")
WOO_REF = "example.com"


def woo(topic, **kwargs):
    return deliver("woocommerce", topic, ref=WOO_REF, **kwargs)


def test_woocommerce_order_created_guest():
    body = body_of("woocommerce_order_created.json")
    event = only(route(woo("order.created", event_id=WOO_ID), body, CONTEXT))
    assert event == {
        "specVersion": "1", "eventId": WOO_ID, "orgId": "org_a", "name": "order.created",
        "originalName": "order.created", "occurredAt": "2017-03-22T19:28:02Z",
        "receivedAt": "2026-11-24T12:00:00Z",
        "source": {"kind": "woocommerce", "ref": WOO_REF, "topic": "order.created",
                   "deliveryId": "d-1"},
        "customer": WOO_BUYER,  # customer_id 0: a guest, so no externalId
        "data": {
            "orderId": "727", "orderNumber": "727", "orderSource": "woocommerce",
            "orderAt": "2017-03-22T19:28:02Z", "status": "processing", "total": "29.35",
            "totalMinor": 2935, "currency": "USD", "lineItems": WOO_LINES, "itemCount": 3,
        },
    }  # fmt: skip
    assert route(woo("order.created"), body, CONTEXT).events[0].customer.external_id is None


def test_woocommerce_order_updated_to_completed():
    body = body_of("woocommerce_order_updated.json")
    event = only(route(woo("order.updated"), body, CONTEXT))
    assert event["name"] == "order.completed"
    assert event["originalName"] == "order.updated"
    assert event["eventId"] == "ord_" + h("org_a", "woocommerce", "727", "completed")
    assert event["occurredAt"] == "2017-03-22T19:30:35Z"  # date_completed_gmt
    assert event["customer"] == WOO_BUYER
    assert event["data"]["status"] == "completed"
    assert event["data"]["orderAt"] == "2017-03-22T19:28:02Z"
    assert event["data"]["total"] == "29.35"
    assert event["data"]["lineItems"] == WOO_LINES


@pytest.mark.parametrize(("status", "name", "transition"), [
    ("cancelled", "order.cancelled", "cancelled"),
    ("refunded", "order.refunded", None),
    ("on-hold", "order.updated", None),
])  # fmt: skip
def test_woocommerce_order_updated_by_status(status, name, transition):
    body = {**body_of("woocommerce_order_updated.json"), "status": status}
    event = only(route(woo("order.updated"), body, CONTEXT))
    assert event["name"] == name
    expected = "ord_" + h("org_a", "woocommerce", "727", transition) if transition else DELIVERY_ID
    assert event["eventId"] == expected
    assert event["occurredAt"] == "2017-03-22T19:30:35Z"  # date_modified_gmt


def test_woocommerce_customer_created():
    body = body_of("woocommerce_customer_created.json")
    event = only(route(woo("customer.created"), body, CONTEXT))
    assert event["name"] == "customer.signup"
    assert event["occurredAt"] == "2017-03-21T19:09:28Z"
    assert event["customer"] == {"externalId": "25", **WOO_BUYER}
    assert event["data"] == {}


def test_woocommerce_product_updated_without_managed_stock():
    body = body_of("woocommerce_product_updated.json")
    event = only(route(woo("product.updated"), body, CONTEXT))
    assert event["name"] == "product.updated"
    assert event["occurredAt"] == "2017-03-23T20:01:14Z"
    assert event["data"] == {"productId": "794", "name": "Premium Quality", "status": "publish"}


def test_woocommerce_low_stock_is_a_second_event_with_its_own_id():
    body = {**body_of("woocommerce_product_updated.json"), "manage_stock": True,
            "stock_quantity": 3, "sku": "PQ-1"}  # fmt: skip
    routed = route(woo("product.updated"), body, CONTEXT)
    product, low = (wire(e) for e in routed.events)
    assert product["name"] == "product.updated"
    assert product["eventId"] == DELIVERY_ID
    assert low["name"] == "inventory.low_stock"
    assert low["originalName"] == "product.updated"
    assert low["eventId"] == "low_" + h("org_a", "794", "", "", "2017-03-23")
    assert low["data"] == {
        "productId": "794", "sku": "PQ-1", "name": "Premium Quality", "available": 3,
        "threshold": 5,
    }  # fmt: skip
    above = {**body, "stock_quantity": 6}
    assert [e.name for e in route(woo("product.updated"), above, CONTEXT).events] == [
        "product.updated"
    ]


def test_woocommerce_customer_id_zero_is_a_guest_and_a_real_id_is_kept():
    body = body_of("woocommerce_order_created.json")
    assert (
        woocommerce_customer(body, customer_topic=False, default_country="US").external_id is None
    )
    body["customer_id"] = 12
    assert (
        woocommerce_customer(body, customer_topic=False, default_country="US").external_id == "12"
    )


def test_the_routing_says_why_a_phone_was_dropped_and_nothing_when_none_was():
    body = body_of("shopify_orders_create.json")
    body["customer"]["phone"] = "07400 123456"
    assert route(deliver("shopify", "orders/create"), body, OrgContext(default_country="GB")) \
        .phone_dropped is None  # fmt: skip
    body["customer"]["phone"] = body["phone"] = "07700 900123"  # Ofcom's drama range
    for address in ("billing_address", "shipping_address"):
        (body.get(address) or {})["phone"] = None
    routed = route(deliver("shopify", "orders/create"), body, OrgContext(default_country="GB"))
    assert routed.phone_dropped == "invalid_phone"
    assert only(routed)["customer"].get("phone") is None
    product = route(deliver("shopify", "products/update"), body, OrgContext(default_country="GB"))
    assert product.phone_dropped is None  # no customer on that topic
    woo = body_of("woocommerce_order_created.json")  # its billing phone: (555) 555-5555
    assert route(deliver("woocommerce", "order.created"), woo, CONTEXT).phone_dropped == (
        "invalid_phone"
    )
