"""Signatures, the topic table and replay/event ids of domain.md §2.1, §5.4, §6.2–6.5."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from playbook_core.domain.errors import BadRequest
from playbook_core.domain.ids import h
from playbook_core.domain.sending import TIME_SENSITIVE_EVENTS, too_late_for
from playbook_core.domain.webhook_events import (
    Delivery,
    event_name,
    stale_age,
    woocommerce_delivery_event_id,
)
from playbook_core.domain.webhooks import (
    SHOPIFY_TOPICS,
    STALE_AFTER_HOURS,
    WOOCOMMERCE_TOPICS,
    candidate_keys,
    decode_woo_entities,
    is_woo_ping,
    low_stock_id,
    normalise_source_url,
    order_transition_id,
    required_headers,
    shopify_event_id,
    shopify_header,
    shopify_receipt_id,
    shopify_source_id,
    signature,
    signature_matches,
    woocommerce_event_id,
    woocommerce_receipt_id,
    woocommerce_source_id,
)

SHOPIFY_BODY = (
    b'{"id":123,"email":"new@example.com","first_name":"New","last_name":"Customer",'
    b'"customer":{"id":999,"email":"new@example.com"}}'
)
SHOPIFY_HEADER = "PqHw/GLb7qj5NtgLs3rZR8DPElri1U5/EtpzHEXEEtA="
WOO_BODY = b'{"id":1,"billing":{"email":"a@b.com"}}'
WOO_HEADER = "2LR6FBpigSsPiga27Z1c3nAv8g1p6r0xcFkvJ7s4rvw="
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


# --- §6.2 test vectors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "secret", "header", "platform"),
    [
        (SHOPIFY_BODY, "shopify-secret", SHOPIFY_HEADER, "shopify"),
        (WOO_BODY, "woo-secret", WOO_HEADER, "woocommerce"),
    ],
)
def test_spec_vectors_are_reproduced_byte_exact(body, secret, header, platform):
    assert signature(secret, body) == header
    assert signature_matches(body, header, [secret], platform)


@pytest.mark.parametrize(("body", "secret", "header"), [
    (SHOPIFY_BODY, "shopify-secret", SHOPIFY_HEADER),
    (WOO_BODY, "woo-secret", WOO_HEADER),
])  # fmt: skip
def test_one_tampered_byte_fails(body, secret, header):
    for index in (0, len(body) // 2, len(body) - 1):
        tampered = bytearray(body)
        tampered[index] ^= 0x01
        assert not signature_matches(bytes(tampered), header, [secret], "shopify")


@pytest.mark.parametrize(
    "reserialise",
    [
        lambda v: json.dumps(v).encode(),  # the default adds spaces
        lambda v: json.dumps(v, separators=(",", ":"), sort_keys=True).encode(),
        lambda v: json.dumps(v, indent=2).encode(),
    ],
)
def test_reserialised_json_fails_even_when_equal_as_data(reserialise):
    again = reserialise(json.loads(SHOPIFY_BODY))
    assert json.loads(again) == json.loads(SHOPIFY_BODY)
    assert again != SHOPIFY_BODY
    assert not signature_matches(again, SHOPIFY_HEADER, ["shopify-secret"], "shopify")


def test_whitespace_only_change_fails():
    assert not signature_matches(
        SHOPIFY_BODY + b"\n", SHOPIFY_HEADER, ["shopify-secret"], "shopify"
    )


def test_wrong_secret_empty_list_and_garbage_headers_fail_without_raising():
    assert not signature_matches(SHOPIFY_BODY, SHOPIFY_HEADER, ["other-secret"], "shopify")
    assert not signature_matches(SHOPIFY_BODY, SHOPIFY_HEADER, [], "shopify")
    assert not signature_matches(SHOPIFY_BODY, "", ["shopify-secret"], "shopify")
    assert not signature_matches(SHOPIFY_BODY, "é☃ not base64", ["shopify-secret"], "shopify")


def test_surrounding_whitespace_in_the_header_is_tolerated():
    assert signature_matches(SHOPIFY_BODY, f" {SHOPIFY_HEADER} ", ["shopify-secret"], "shopify")


def test_rotation_any_secret_of_the_source_verifies():
    assert signature_matches(
        SHOPIFY_BODY, SHOPIFY_HEADER, ["new-secret", "shopify-secret"], "shopify"
    )


# --- WooCommerce entity-decoded secrets -------------------------------------------------------


def test_the_five_entities_are_decoded_in_one_pass():
    assert decode_woo_entities("a&amp;b&lt;c&gt;d&quot;e&#039;f") == "a&b<c>d\"e'f"
    assert decode_woo_entities("&amp;lt;") == "&lt;"  # not decoded twice
    # Only the five characters: &nbsp; stays; &#39; is one of them (the full table is in
    # test_woo_entities.py).
    assert decode_woo_entities("&nbsp;&#39;plain") == "&nbsp;'plain"


def test_woo_signature_made_with_the_decoded_secret_verifies_against_the_stored_form():
    stored = "s3cr&amp;t&lt;&gt;&quot;&#039;x"
    signed = signature("s3cr&t<>\"'x", WOO_BODY)
    assert signature_matches(WOO_BODY, signed, [stored], "woocommerce")
    assert signature_matches(WOO_BODY, signature(stored, WOO_BODY), [stored], "woocommerce")
    assert not signature_matches(WOO_BODY, signed, [stored], "shopify")


def test_candidate_keys_add_the_decoded_form_only_for_woo_and_only_when_different():
    assert candidate_keys("a&amp;b", "woocommerce") == ["a&amp;b", "a&b"]
    assert candidate_keys("plain", "woocommerce") == ["plain"]
    assert candidate_keys("a&amp;b", "shopify") == ["a&amp;b"]


# --- §6.3 ping --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "ping"),
    [
        (b"webhook_id=11", True),
        (b"webhook_id=0", True),
        (b"webhook_id=", False),
        (b"webhook_id=11\n", False),
        (b"webhook_id=11&x=1", False),
        (b"webhook_id=abc", False),
        (b'{"webhook_id":11}', False),
        (b"", False),
    ],
)
def test_woo_ping_is_exactly_a_webhook_id_form(body, ping):
    assert is_woo_ping(body) is ping


# --- §6.5 topic table -------------------------------------------------------------------------

SHOPIFY_TABLE = [
    ("orders/create", "order.created"),
    ("orders/paid", "order.updated"),
    ("orders/updated", "order.updated"),
    ("orders/fulfilled", "order.completed"),
    ("orders/cancelled", "order.cancelled"),
    ("refunds/create", "order.refunded"),
    ("customers/create", "customer.signup"),
    ("customers/update", "customer.updated"),
    ("checkouts/create", "checkout.started"),
    ("carts/create", "cart.created"),
    ("products/create", "inventory.new_product"),
    ("products/update", "product.updated"),
    ("inventory_levels/update", "inventory.low_stock"),
]
WOO_TABLE = [
    ("order.created", None, "order.created"),
    ("order.updated", "completed", "order.completed"),
    ("order.updated", "cancelled", "order.cancelled"),
    ("order.updated", "refunded", "order.refunded"),
    ("order.updated", "processing", "order.updated"),
    ("order.updated", "on-hold", "order.updated"),
    ("order.updated", None, "order.updated"),
    ("customer.created", None, "customer.signup"),
    ("customer.updated", None, "customer.updated"),
    ("product.created", None, "inventory.new_product"),
    ("product.updated", None, "product.updated"),
]


@pytest.mark.parametrize(("topic", "expected"), SHOPIFY_TABLE)
def test_shopify_topic_table(topic, expected):
    assert event_name("shopify", topic, {}) == expected


def test_shopify_table_has_exactly_the_spec_rows():
    assert dict(SHOPIFY_TABLE) == SHOPIFY_TOPICS


@pytest.mark.parametrize(("topic", "status", "expected"), WOO_TABLE)
def test_woocommerce_topic_table(topic, status, expected):
    body = {"status": status} if status else {}
    assert event_name("woocommerce", topic, body) == expected


def test_woocommerce_table_has_exactly_the_spec_rows():
    assert {t for t, _, _ in WOO_TABLE} == set(WOOCOMMERCE_TOPICS)


@pytest.mark.parametrize(
    ("platform", "topic"),
    [
        ("shopify", "carts/update"),
        ("shopify", "checkouts/update"),
        ("shopify", "orders/delete"),
        ("shopify", "order/create"),  # singular forms are not Shopify topics
        ("shopify", "ORDERS/CREATE"),  # topics match exactly
        ("shopify", "order.created"),  # a Woo topic on the Shopify endpoint
        ("woocommerce", "order.deleted"),
        ("woocommerce", "order.restored"),
        ("woocommerce", "coupon.created"),
        ("woocommerce", "coupon.updated"),
        ("woocommerce", "action.woocommerce_order_status_changed"),
        ("woocommerce", "orders/create"),
    ],
)
def test_other_topics_are_unmapped(platform, topic):
    assert event_name(platform, topic, {"status": "completed"}) is None


# --- ids: sources, receipts, events -----------------------------------------------------------


def test_source_ids():
    assert shopify_source_id("My-Shop.MyShopify.com ") == "shopify_my-shop.myshopify.com"
    assert woocommerce_source_id("HTTPS://Shop.Example.com:443/") == "woocommerce_" + h(
        "https://shop.example.com"
    )
    assert normalise_source_url("http://shop.example.com:8080/store/") == (
        "http://shop.example.com:8080/store"
    )
    with pytest.raises(BadRequest):
        normalise_source_url("ftp://shop.example.com")


def test_shopify_event_id_is_the_spec_hash_and_stable():
    expected = "shp_" + h("shop.myshopify.com", "orders/create", "evt-1")
    assert shopify_event_id("shop.myshopify.com", "orders/create", "evt-1") == expected
    assert shopify_event_id("shop.myshopify.com", "orders/create", "evt-1") == expected
    assert len(expected) == 36


def test_shopify_event_ids_differ_by_shop_topic_and_key():
    ids = {
        shopify_event_id("a.myshopify.com", "orders/create", "1"),
        shopify_event_id("b.myshopify.com", "orders/create", "1"),
        shopify_event_id("a.myshopify.com", "orders/paid", "1"),
        shopify_event_id("a.myshopify.com", "orders/create", "2"),
    }
    assert len(ids) == 4


def test_receipt_keys_equal_the_delivery_event_ids():
    assert shopify_receipt_id("s.myshopify.com", "orders/create", "k") == shopify_event_id(
        "s.myshopify.com", "orders/create", "k"
    )
    assert woocommerce_receipt_id("u", "1", "t", "2", "m") == woocommerce_event_id(
        "u", "1", "t", "2", "m"
    )
    assert woocommerce_event_id("u", "1", "t", "2", "m") == "woo_" + h("u", "1", "t", "2", "m")


def test_woo_key_uses_date_modified_gmt_else_the_body_digest():
    body = {"id": 727, "date_modified_gmt": "2017-03-22T19:28:08"}
    raw = json.dumps(body).encode()
    assert woocommerce_delivery_event_id("https://s", "5", "order.updated", body, raw) == (
        "woo_" + h("https://s", "5", "order.updated", "727", "2017-03-22T19:28:08")
    )
    # Same modification time, different bytes: the same delivery (a re-send of one change).
    assert woocommerce_delivery_event_id(
        "https://s", "5", "order.updated", body, raw + b" "
    ) == woocommerce_delivery_event_id("https://s", "5", "order.updated", body, raw)
    bare = {"id": 25}
    one, two = b'{"id":25,"a":1}', b'{"id":25,"a":2}'
    assert woocommerce_delivery_event_id("https://s", "5", "customer.created", bare, one) == (
        "woo_" + h("https://s", "5", "customer.created", "25", hashlib.sha256(one).hexdigest())
    )
    assert woocommerce_delivery_event_id(
        "https://s", "5", "customer.created", bare, one
    ) != woocommerce_delivery_event_id("https://s", "5", "customer.created", bare, two)


def test_order_transition_ids_are_once_per_order_and_transition():
    completed = order_transition_id("org_a", "shopify", "820", "completed")
    assert completed == "ord_" + h("org_a", "shopify", "820", "completed")
    assert completed == order_transition_id("org_a", "shopify", "820", "completed")
    others = {
        order_transition_id("org_a", "shopify", "820", "cancelled"),
        order_transition_id("org_a", "woocommerce", "820", "completed"),
        order_transition_id("org_b", "shopify", "820", "completed"),
        order_transition_id("org_a", "shopify", "821", "completed"),
    }
    assert completed not in others
    assert len(others) == 4


def test_low_stock_ids_are_once_per_item_location_and_day():
    base = low_stock_id("org_a", "271", None, "248", "2021-12-31")
    assert base == "low_" + h("org_a", "271", "", "248", "2021-12-31")
    assert base == low_stock_id("org_a", "271", None, "248", "2021-12-31")
    assert base != low_stock_id("org_a", "271", None, "248", "2022-01-01")
    assert base != low_stock_id("org_a", "271", None, "249", "2021-12-31")
    assert base != low_stock_id("org_a", "271", "7", "248", "2021-12-31")


# --- Shopify's two header families (§6.1 row 3) -----------------------------------------------


def test_a_shopify_header_is_read_by_either_name_the_x_form_first():
    assert shopify_header({"x-shopify-topic": "orders/create"}, "topic") == "orders/create"
    assert shopify_header({"shopify-topic": " orders/create "}, "topic") == "orders/create"
    both = {"x-shopify-topic": "orders/create", "shopify-topic": "orders/paid"}
    assert shopify_header(both, "topic") == "orders/create"
    blank_x = {"x-shopify-topic": "  ", "shopify-topic": "orders/paid"}
    assert shopify_header(blank_x, "topic") == "orders/paid"
    assert shopify_header({}, "topic") == ""
    assert shopify_header({"x-topic": "orders/create", "topic": "x"}, "topic") == ""


def test_required_headers_mix_shopify_families_header_by_header():
    mixed = {"x-shopify-hmac-sha256": "sig", "shopify-topic": "t", "shopify-shop-domain": "s"}
    assert required_headers("shopify", mixed) == ("sig", "t", "s")
    woo = {"x-wc-webhook-signature": " sig ", "x-wc-webhook-topic": "t"}
    assert required_headers("woocommerce", woo) == ("sig", "t", "")
    # WooCommerce has one family: a Shopify-style unprefixed name means nothing there.
    assert required_headers("woocommerce", {"wc-webhook-signature": "sig"}) == ("", "", "")


# --- stale deliveries and time-sensitive sends (§6.4 rule 6, §7.10) ---------------------------


def _delivery(triggered):
    return Delivery(
        platform="shopify", topic="checkouts/create", org_id="org_a", source_ref="s",
        event_id="shp_x", received_at=NOW, triggered_at=triggered,
    )  # fmt: skip


def test_stale_age_is_the_delay_beyond_stale_after_hours_else_none():
    assert STALE_AFTER_HOURS == 24
    assert stale_age(_delivery(None)) is None
    assert stale_age(_delivery(NOW - timedelta(hours=24))) is None  # exactly 24 h: not yet
    assert stale_age(_delivery(NOW - timedelta(hours=24, seconds=1))) == timedelta(
        hours=24, seconds=1
    )
    assert stale_age(_delivery(NOW - timedelta(days=3))) == timedelta(days=3)
    assert stale_age(_delivery(NOW + timedelta(hours=30))) is None  # a clock ahead of ours


@pytest.mark.parametrize(
    ("event", "late"),
    [
        ({"name": "checkout.started", "source": {"kind": "shopify", "stale": True}}, True),
        ({"name": "cart.created", "source": {"kind": "shopify", "stale": True}}, True),
        ({"name": "checkout.started", "source": {"kind": "shopify"}}, False),
        ({"name": "checkout.started", "source": {"kind": "shopify", "stale": False}}, False),
        ({"name": "order.created", "source": {"kind": "shopify", "stale": True}}, False),
        ({"name": "checkout.started"}, False),
        ({"name": "checkout.started", "source": "stale"}, False),
        ({"data": {"orderNumber": "#1"}}, False),  # a manual run's or a dry run's event
        ({}, False),
        (None, False),
    ],
)
def test_only_stale_time_sensitive_events_are_too_late_to_send(event, late):
    assert too_late_for(event) is late
    assert {"checkout.started", "cart.created"} == TIME_SENSITIVE_EVENTS
