"""webhook_shopify / webhook_woocommerce through the deployed entry point (domain.md §6, api.md §6)."""

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from playbook_core.domain.collections import EVENT_LOG, SECRETS, WEBHOOK_RECEIPTS, WEBHOOK_SOURCES
from playbook_core.domain.envelope import EventEnvelope
from playbook_core.domain.webhooks import signature
from playbook_core.logging import ALERT, JsonFormatter
from playbook_core.testing import RecordingServer, eventually
from tests.integration.ingress.conftest import dispatch_published, serving_webhooks

MAIN = str(Path(__file__).parents[3] / "functions" / "main.py")
DATA = Path(__file__).parents[2] / "data" / "webhooks"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

SHOP = "shop.myshopify.com"
FALLBACK_SHOP = "fallback.myshopify.com"
WOO_URL = "https://example.com/"
SHOP_SECRET = "shpss_per-source-secret-1"
WOO_SECRET = "woo&amp;per-source&lt;2"  # stored HTML-escaped, as WordPress keeps it
WOO_SIGNING_SECRET = "woo&per-source<2"  # what WooCommerce actually signs with
GLOBAL_SHOPIFY = "global-shopify-env-secret"
GLOBAL_WOO = "global-woo-env-secret"
KNOWN_SECRETS = (SHOP_SECRET, WOO_SECRET, WOO_SIGNING_SECRET, GLOBAL_SHOPIFY, GLOBAL_WOO)


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


class Hooks:
    """Both endpoints over one embedded app, remembering every answer to scan for secrets."""

    def __init__(self, app, clients):
        self.app, self.clients, self.answers = app, clients, []

    @property
    def published(self):
        return [message for _, message in self.app.bus.published]

    def receipts(self):
        return self.app.store.query(WEBHOOK_RECEIPTS).docs

    def post(self, platform, body, headers, query=""):
        response = self.clients[platform].post(f"/{query}", data=body, headers=headers)
        self.answers.append(response.get_data(as_text=True))
        return response

    def shopify(self, body, *, topic="orders/create", shop=SHOP, secret=SHOP_SECRET,
                event_id="evt-1", query="", drop=(), tamper=False):  # fmt: skip
        headers = {
            "X-Shopify-Hmac-Sha256": signature(secret, body),
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-Event-Id": event_id,
            "X-Shopify-Webhook-Id": f"wh-{event_id}",
            "X-Shopify-Triggered-At": "2026-11-24T11:59:58.000Z",
            "Content-Type": "application/json",
        }
        headers = {k: v for k, v in headers.items() if k not in drop}
        sent = body[:-2] + b" }" if tamper else body
        return self.post("shopify", sent, headers, query)

    def woo(self, body, *, topic="order.created", secret=WOO_SIGNING_SECRET, source=WOO_URL):
        headers = {
            "x-wc-webhook-signature": signature(
                secret, body
            ),  # lower case: names are case-insensitive
            "x-wc-webhook-topic": topic,
            "x-wc-webhook-source": source,
            "x-wc-webhook-id": "12",
            "x-wc-webhook-delivery-id": "abc",
            "Content-Type": "application/json",
        }
        return self.post("woocommerce", body, headers)

    def stored_text(self) -> str:
        """Every stored document except the local secret store itself, as one string."""
        with self.app.store._connection() as conn:
            rows = conn.execute("SELECT collection, id, data FROM documents").fetchall()
        return "\n".join(f"{c}/{i} {d}" for c, i, d in rows if c != SECRETS)


@pytest.fixture
def hooks(caplog):
    sources = [
        ("shopify", SHOP, SHOP_SECRET),
        ("woocommerce", WOO_URL, WOO_SECRET),
        ("shopify", FALLBACK_SHOP, None),
    ]
    env = {"SHOPIFY_WEBHOOK_SECRET": GLOBAL_SHOPIFY, "WOOCOMMERCE_WEBHOOK_SECRET": GLOBAL_WOO}
    with serving_webhooks(sources, env=env) as (app, clients):
        caplog.set_level(logging.DEBUG)
        yield Hooks(app, clients)


def alerts(caplog):
    return [r for r in caplog.records if r.levelno == ALERT]


# --- accepted deliveries ----------------------------------------------------------------------


def test_signed_orders_create_publishes_one_envelope_with_the_source_org(hooks):
    response = hooks.shopify(fixture("shopify_orders_create.json"), query="?orgId=org_a")
    assert response.status_code == 200
    body = response.get_json()
    assert body == {"received": True, "eventId": body["eventId"], "event": "order.created"}
    assert body["eventId"].startswith("shp_")
    [message] = hooks.published
    envelope = EventEnvelope.decode(message.data)
    assert (envelope.org_id, envelope.event_id, envelope.name) == (
        "org_a", body["eventId"], "order.created",
    )  # fmt: skip
    assert message.attributes == {
        "orgId": "org_a",
        "name": "order.created",
        "eventId": body["eventId"],
    }
    assert envelope.customer.email == "john@example.com"
    assert envelope.data["totalMinor"] == 40495
    [receipt] = hooks.receipts()
    assert receipt.id == body["eventId"]
    assert receipt.data["status"] == "received"  # never marked: the event log says it went out
    assert receipt.data["expiresAt"] == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    source = hooks.app.store.get(WEBHOOK_SOURCES, f"shopify_{SHOP}")
    assert source["lastSeenAt"] == NOW


def test_the_same_delivery_again_is_a_duplicate_and_publishes_nothing(hooks):
    first = hooks.shopify(fixture("shopify_orders_create.json")).get_json()
    dispatch_published(hooks.app)
    again = hooks.shopify(fixture("shopify_orders_create.json"))
    assert again.status_code == 200
    assert again.get_json() == {"received": True, "duplicate": True, "eventId": first["eventId"]}
    assert len(hooks.published) == 1
    assert len(hooks.receipts()) == 1


def test_a_delivery_whose_event_is_not_logged_yet_is_published_again(hooks):
    """Its first attempt may have died before its publish: only the event log tells."""
    first = hooks.shopify(fixture("shopify_orders_create.json")).get_json()
    again = hooks.shopify(fixture("shopify_orders_create.json"))
    assert again.get_json() == first
    assert len(hooks.published) == 2
    assert {EventEnvelope.decode(m.data).event_id for m in hooks.published} == {first["eventId"]}


def test_a_new_event_id_with_another_body_is_a_new_delivery(hooks):
    order = json.loads(fixture("shopify_orders_create.json"))
    hooks.shopify(json.dumps(order).encode(), event_id="evt-1")
    hooks.shopify(json.dumps({**order, "id": order["id"] + 1}).encode(), event_id="evt-2")
    assert len(hooks.published) == 2


def test_fulfilled_order_redelivered_under_new_ids_keeps_one_event_id(hooks):
    for event_id in ("evt-1", "evt-2"):
        hooks.shopify(
            fixture("shopify_orders_fulfilled.json"), topic="orders/fulfilled", event_id=event_id
        )
    ids = {EventEnvelope.decode(m.data).event_id for m in hooks.published}
    assert len(ids) == 1
    assert next(iter(ids)).startswith("ord_")


def test_global_env_secret_verifies_a_source_without_secret_refs(hooks):
    response = hooks.shopify(
        fixture("shopify_customers_create.json"), topic="customers/create", shop=FALLBACK_SHOP,
        secret=GLOBAL_SHOPIFY,
    )  # fmt: skip
    assert response.status_code == 200
    assert response.get_json()["event"] == "customer.signup"
    assert len(hooks.published) == 1


def test_global_env_secret_is_refused_for_a_source_with_its_own_secret(hooks, caplog):
    response = hooks.shopify(fixture("shopify_orders_create.json"), secret=GLOBAL_SHOPIFY)
    assert response.status_code == 401
    assert response.get_json() == {"error": "invalid_signature"}
    assert hooks.published == []
    assert len(alerts(caplog)) == 1


def test_low_inventory_is_published_as_low_stock(hooks):
    response = hooks.shopify(
        fixture("shopify_inventory_levels_update.json"), topic="inventory_levels/update"
    )
    assert response.get_json()["event"] == "inventory.low_stock"
    assert response.get_json()["eventId"].startswith("low_")
    assert EventEnvelope.decode(hooks.published[0].data).data["threshold"] == 5


def test_a_source_threshold_wins_over_the_org_setting(hooks):
    hooks.app.store.update(WEBHOOK_SOURCES, f"shopify_{SHOP}", {"lowStockThreshold": 1})
    response = hooks.shopify(
        fixture("shopify_inventory_levels_update.json"), topic="inventory_levels/update"
    )
    assert response.get_json() == {"received": True, "ignored": True, "reason": "above_threshold"}
    assert hooks.published == []


def test_unmapped_topic_is_ignored_with_an_event_log_entry(hooks):
    response = hooks.shopify(fixture("shopify_checkouts_create.json"), topic="checkouts/update")
    assert response.status_code == 200
    assert response.get_json() == {"received": True, "ignored": True, "reason": "unmapped_topic"}
    assert hooks.published == []
    [entry] = hooks.app.store.query(EVENT_LOG).docs
    assert entry.data["outcome"] == "ignored_topic"
    assert entry.data["orgId"] == "org_a"
    assert entry.data["name"] == "checkouts/update"


def test_the_response_does_not_wait_for_subscribers(hooks):
    subscriber = RecordingServer().start()
    try:
        hooks.app.bus.subscribe("playbook-events", subscriber.url + "/push")
        response = hooks.shopify(fixture("shopify_orders_create.json"))
        assert response.status_code == 200
        pushed = eventually(lambda: subscriber.requests)
        assert (
            json.loads(pushed[0].body)["message"]["attributes"]["eventId"]
            == (response.get_json()["eventId"])
        )
    finally:
        hooks.app.bus.close()
        subscriber.stop()


# --- WooCommerce ------------------------------------------------------------------------------


def test_woo_order_created_verifies_with_the_entity_decoded_secret(hooks):
    response = hooks.woo(fixture("woocommerce_order_created.json"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["event"] == "order.created"
    assert body["eventId"].startswith("woo_")
    envelope = EventEnvelope.decode(hooks.published[0].data)
    assert envelope.org_id == "org_a"
    assert envelope.customer.email == "john.doe@example.com"
    assert envelope.customer.phone is None  # the sample's (555) 555-5555 is no assigned number
    assert envelope.source.ref == "example.com"


def test_woo_order_completed_and_duplicate(hooks):
    first = hooks.woo(fixture("woocommerce_order_updated.json"), topic="order.updated").get_json()
    assert first["event"] == "order.completed"
    assert first["eventId"].startswith("ord_")
    dispatch_published(hooks.app)
    again = hooks.woo(fixture("woocommerce_order_updated.json"), topic="order.updated")
    assert again.get_json() == {"received": True, "duplicate": True, "eventId": first["eventId"]}
    assert len(hooks.published) == 1


def test_woo_ping_is_answered_and_nothing_is_stored_or_dispatched(hooks):
    response = hooks.post(
        "woocommerce", fixture("woocommerce_ping.txt"),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert response.status_code == 200
    assert response.get_json() == {"received": True, "ping": True}
    assert hooks.published == []
    assert hooks.receipts() == []


def test_other_unsigned_woo_requests_are_refused(hooks):
    response = hooks.post("woocommerce", b"webhook_id=11&x=1", {})
    assert response.status_code == 401
    assert response.get_json() == {"error": "missing_signature"}


# --- refused deliveries -----------------------------------------------------------------------

REFUSALS = {
    "tampered body": ({"tamper": True}, "invalid_signature"),
    "wrong secret": ({"secret": "some-other-secret"}, "invalid_signature"),
    "missing signature": ({"drop": ("X-Shopify-Hmac-Sha256",)}, "missing_signature"),
    "missing topic": ({"drop": ("X-Shopify-Topic",)}, "missing_signature"),
    "missing shop": ({"drop": ("X-Shopify-Shop-Domain",)}, "missing_signature"),
    "unknown shop": ({"shop": "stranger.myshopify.com"}, "unknown_source"),
    "not a shop domain": ({"shop": "../../etc"}, "unknown_source"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_deliveries_dispatch_and_store_nothing(hooks, caplog, case):
    changes, error = REFUSALS[case]
    response = hooks.shopify(fixture("shopify_orders_create.json"), **changes)
    assert response.status_code == 401
    assert response.get_json() == {"error": error}
    assert hooks.published == []
    assert hooks.receipts() == []
    assert len(alerts(caplog)) == (1 if error == "invalid_signature" else 0)


def test_bad_signature_alert_names_the_delivery_but_never_the_secret_or_signature(hooks, caplog):
    body = fixture("shopify_orders_create.json")
    hooks.shopify(body, secret="some-other-secret", topic="orders/create")
    [alert] = alerts(caplog)
    line = json.loads(JsonFormatter().format(alert))
    assert line["severity"] == "ALERT"
    assert line["security_event"] == "webhook_signature_invalid"
    assert (line["platform"], line["sourceKey"], line["topic"]) == (
        "shopify",
        SHOP,
        "orders/create",
    )
    assert line["remoteIp"] == "127.0.0.1"
    text = json.dumps(line)
    assert signature("some-other-secret", body) not in text
    assert "jon@example.com" not in text


def test_unknown_source_is_logged_as_a_security_event(hooks, caplog):
    hooks.shopify(fixture("shopify_orders_create.json"), shop="stranger.myshopify.com")
    events = [getattr(r, "fields", {}).get("security_event") for r in caplog.records]
    assert "webhook_unknown_source" in events


def test_a_disabled_source_is_unknown(hooks):
    hooks.app.store.update(WEBHOOK_SOURCES, f"shopify_{SHOP}", {"status": "disabled"})
    response = hooks.shopify(fixture("shopify_orders_create.json"))
    assert (response.status_code, response.get_json()) == (401, {"error": "unknown_source"})


def test_a_query_org_id_other_than_the_sources_org_is_refused(hooks):
    response = hooks.shopify(fixture("shopify_orders_create.json"), query="?orgId=org_b")
    assert response.status_code == 401
    assert response.get_json() == {"error": "source_org_mismatch"}
    assert hooks.published == []
    assert hooks.receipts() == []


def test_malformed_json_after_a_valid_signature_is_400_without_a_receipt(hooks):
    for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        response = hooks.shopify(body)
        assert (response.status_code, response.get_json()) == (400, {"error": "malformed_json"})
    assert hooks.published == []
    assert hooks.receipts() == []


def test_oversized_body_is_413(hooks):
    response = hooks.shopify(b"{" + b" " * (5 * 1024 * 1024) + b"}")
    assert (response.status_code, response.get_json()) == (413, {"error": "too_large"})
    assert hooks.published == []


def test_storage_down_answers_503_so_shopify_retries(hooks):
    hooks.app.store.close()
    response = hooks.shopify(fixture("shopify_orders_create.json"))
    assert (response.status_code, response.get_json()) == (503, {"error": "unavailable"})
    assert hooks.published == []


# --- secrets never leak -----------------------------------------------------------------------


def test_known_secrets_appear_in_no_answer_log_line_document_or_message(hooks, caplog):
    hooks.shopify(fixture("shopify_orders_create.json"))
    dispatch_published(hooks.app)  # the next is then a duplicate; dispatch's writes get scanned
    hooks.shopify(fixture("shopify_orders_create.json"))
    hooks.shopify(fixture("shopify_orders_create.json"), tamper=True)
    hooks.shopify(fixture("shopify_orders_create.json"), secret="wrong-secret-value")
    hooks.shopify(fixture("shopify_orders_create.json"), query="?orgId=org_b")
    hooks.shopify(fixture("shopify_checkouts_create.json"), topic="carts/update")
    hooks.shopify(fixture("shopify_customers_create.json"), topic="customers/create",
                  shop=FALLBACK_SHOP, secret=GLOBAL_SHOPIFY)  # fmt: skip
    hooks.shopify(fixture("shopify_orders_create.json"), shop=FALLBACK_SHOP, secret=SHOP_SECRET)
    hooks.woo(fixture("woocommerce_order_created.json"))
    hooks.woo(fixture("woocommerce_order_created.json"), secret="wrong-woo-secret")
    hooks.woo(fixture("woocommerce_customer_created.json"), topic="customer.created")
    assert len(hooks.published) == 4
    formatter = JsonFormatter()
    logs = "\n".join(formatter.format(r) for r in caplog.records) + caplog.text
    messages = "\n".join(m.data.decode() + json.dumps(m.attributes) for m in hooks.published)
    haystacks = {"answers": "\n".join(hooks.answers), "logs": logs,
                 "documents": hooks.stored_text(), "messages": messages}  # fmt: skip
    assert "webhook_signature_invalid" in logs  # the scan covers the security lines too
    assert "webhook_receipts/" in haystacks["documents"]
    assert "playbook_event_log/" in haystacks["documents"]
    for where, text in haystacks.items():
        for secret in KNOWN_SECRETS:
            assert secret not in text, f"a secret leaked into {where}"
