"""Out-of-order safety (issue #16 item 4): an older update that arrives after a newer one.

Shopify delivers out of order and up to a day late; WooCommerce order.updated carries whatever
status the order had when it fired. By the platform's own `updated_at` (`date_modified_gmt`), an
update older than one already seen is recorded in the event log as `out_of_order` and publishes
nothing: the order's state never moves backwards and no status event fires twice. Creation is
never held back.
"""

import json
from pathlib import Path

import pytest

from playbook_core.domain.collections import EVENT_LOG
from playbook_core.domain.webhooks import signature
from tests.integration.ingress.conftest import dispatch_published, serving_webhooks

DATA = Path(__file__).parents[2] / "data" / "webhooks"
SHOP, SHOP_SECRET = "order-shop.myshopify.com", "shpss_out-of-order-1"
WOO_URL, WOO_SECRET = "https://order-store.example.com/", "woo-out-of-order-1"


def body(name, **changes):
    data = json.loads((DATA / name).read_bytes())
    data.update(changes)
    return json.dumps(data).encode()


@pytest.fixture
def hooks():
    with serving_webhooks(
        [("shopify", SHOP, SHOP_SECRET), ("woocommerce", WOO_URL, WOO_SECRET)]
    ) as (
        app,
        clients,
    ):
        yield app, clients


def shopify(clients, sent, topic, key):
    return clients["shopify"].post("/", data=sent, headers={
        "X-Shopify-Hmac-Sha256": signature(SHOP_SECRET, sent), "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Event-Id": key,
        "Content-Type": "application/json",
    }).get_json()  # fmt: skip


def woo(clients, sent, topic="order.updated"):
    return clients["woocommerce"].post("/", data=sent, headers={
        "x-wc-webhook-signature": signature(WOO_SECRET, sent), "x-wc-webhook-topic": topic,
        "x-wc-webhook-source": WOO_URL, "x-wc-webhook-id": "7",
        "Content-Type": "application/json",
    }).get_json()  # fmt: skip


def published(app):
    return [message for _, message in app.bus.published]


def outcomes(app):
    return [doc.data["outcome"] for doc in app.store.query(EVENT_LOG).docs]


def test_an_older_shopify_update_after_a_newer_one_publishes_nothing(hooks):
    app, clients = hooks
    newer = body("shopify_orders_create.json", id=501, updated_at="2026-11-24T11:00:00Z")
    older = body("shopify_orders_create.json", id=501, updated_at="2026-11-24T10:00:00Z",
                 note="an edit made before the newer one")  # fmt: skip
    assert shopify(clients, newer, "orders/updated", "e-new")["event"] == "order.updated"
    before = len(published(app))
    late = shopify(clients, older, "orders/updated", "e-old")
    assert late == {"received": True, "ignored": True, "reason": "out_of_order"}
    assert len(published(app)) == before
    assert "out_of_order" in outcomes(app)
    # The same late delivery again is answered the same way, and still publishes nothing.
    assert shopify(clients, older, "orders/updated", "e-old")["reason"] == "out_of_order"
    assert len(published(app)) == before


def test_a_stale_woocommerce_status_never_moves_a_completed_order_back(hooks):
    app, clients = hooks
    completed = body("woocommerce_order_updated.json", id=77, status="completed",
                     date_modified_gmt="2026-11-24T11:00:00")  # fmt: skip
    processing = body("woocommerce_order_updated.json", id=77, status="processing",
                      date_modified_gmt="2026-11-24T09:00:00")  # fmt: skip
    assert woo(clients, completed)["event"] == "order.completed"
    before = len(published(app))
    assert woo(clients, processing)["reason"] == "out_of_order"
    assert len(published(app)) == before


def test_a_late_creation_is_still_published_once(hooks):
    _app, clients = hooks
    fulfilled = body("shopify_orders_fulfilled.json", id=902, updated_at="2026-11-24T11:00:00Z")
    created = body("shopify_orders_create.json", id=902, updated_at="2026-11-24T08:00:00Z")
    assert shopify(clients, fulfilled, "orders/fulfilled", "f-1")["event"] == "order.completed"
    assert shopify(clients, created, "orders/create", "c-1")["event"] == "order.created"
    dispatch_published(_app)
    assert shopify(clients, created, "orders/create", "c-2")["duplicate"] is True


def test_the_same_update_under_two_topics_is_not_out_of_order(hooks):
    _app, clients = hooks
    same = body("shopify_orders_fulfilled.json", id=903, updated_at="2026-11-24T11:00:00Z")
    assert shopify(clients, same, "orders/updated", "u-1")["event"] == "order.updated"
    assert shopify(clients, same, "orders/fulfilled", "u-2")["event"] == "order.completed"


def test_a_completion_reported_twice_fires_once(hooks):
    app, clients = hooks
    first = body("woocommerce_order_updated.json", id=78, status="completed",
                 date_modified_gmt="2026-11-24T11:00:00")  # fmt: skip
    again = body("woocommerce_order_updated.json", id=78, status="completed",
                 date_modified_gmt="2026-11-24T11:05:00", customer_note="edited after")  # fmt: skip
    assert woo(clients, first)["event"] == "order.completed"
    count = len(published(app))
    assert woo(clients, again)["duplicate"] is True
    assert len(published(app)) == count
