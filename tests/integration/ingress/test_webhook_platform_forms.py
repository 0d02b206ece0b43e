"""What real platform clients send (domain.md §6.1, §6.4 rule 6, §7.10): Shopify's unprefixed
`shopify-*` headers, WooCommerce secrets stored with numeric entities, and stale deliveries, which
are processed but flagged, and whose time-sensitive sends are skipped as `stale_event`."""

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from playbook_core.adapters.ids import RandomIds
from playbook_core.adapters.memory import MemoryBus, MemoryTaskQueue
from playbook_core.adapters.secrets import StoreSecrets
from playbook_core.adapters.slack import SlackWebhook
from playbook_core.domain.collections import DELIVERIES, EVENT_LOG, SETTINGS, WEBHOOK_RECEIPTS
from playbook_core.domain.envelope import EventEnvelope
from playbook_core.domain.ids import h
from playbook_core.domain.loading import load_text
from playbook_core.domain.normal_forms import rfc3339
from playbook_core.domain.webhooks import signature
from playbook_core.ports import QueueConfig
from playbook_core.service.authoring import playbooks
from playbook_core.service.authoring.playbooks import Authoring
from playbook_core.service.dispatch.dispatcher import dispatch_message
from playbook_core.service.execution.run_control import SKIP_REASONS
from playbook_core.service.execution.run_start import Runs, StepTarget
from playbook_core.service.execution.send_step import Senders
from playbook_core.service.execution.step_handler import Engine, run_step
from playbook_core.service.execution.step_task import StepTask
from playbook_core.testing import FrozenClock
from tests.integration.execution.conftest import COMPLIANCE, UNSUBSCRIBE
from tests.integration.ingress.conftest import dispatch_published, serving_webhooks

MAIN = str(Path(__file__).parents[3] / "functions" / "main.py")
DATA = Path(__file__).parents[2] / "data" / "webhooks"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ORG = "org_a"
SHOP = "shop.myshopify.com"
SHOP_SECRET = "shpss_per-source-secret-1"
WOO_URL = "https://example.com/"
WOO_STORED = "abc&#038;def"  # WooCommerce's stored form of the secret the merchant typed
WOO_SIGNING = "abc&def"  # what WooCommerce signs with: wp_specialchars_decode(ENT_QUOTES)

REMINDER = """
name: Abandoned checkout reminder
agent: craig
triggers: [{type: event, eventName: checkout.started}]
steps:
  - id: remind
    action: send_email
    params: {to: "{{ customer.email }}", subject: "You left something behind", body: "Come back"}
"""


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def shopify_headers(body, *, family="X-Shopify-", topic="orders/create", event_id="evt-1",
                    triggered=NOW - timedelta(seconds=2), secret=SHOP_SECRET):  # fmt: skip
    """A signed Shopify delivery; `family` is `X-Shopify-` (webhooks) or `shopify-` (newer)."""
    return {
        f"{family}Hmac-Sha256": signature(secret, body),
        f"{family}Topic": topic,
        f"{family}Shop-Domain": SHOP,
        f"{family}Event-Id": event_id,
        f"{family}Webhook-Id": f"wh-{event_id}",
        f"{family}Triggered-At": rfc3339(triggered),
        "Content-Type": "application/json",
    }


class Hooks:
    def __init__(self, app, clients):
        self.app, self.clients = app, clients

    @property
    def published(self):
        return [message for _, message in self.app.bus.published]

    def envelopes(self):
        return [EventEnvelope.decode(message.data) for message in self.published]

    def post(self, platform, body, headers):
        return self.clients[platform].post("/", data=body, headers=headers)

    def woo(self, body, *, secret=WOO_SIGNING):
        headers = {
            "X-WC-Webhook-Signature": signature(secret, body),
            "X-WC-Webhook-Topic": "order.created",
            "X-WC-Webhook-Source": WOO_URL,
            "X-WC-Webhook-ID": "12",
            "Content-Type": "application/json",
        }
        return self.post("woocommerce", body, headers)


@pytest.fixture
def hooks(caplog):
    sources = [("shopify", SHOP, SHOP_SECRET), ("woocommerce", WOO_URL, WOO_STORED)]
    with serving_webhooks(sources, org=ORG) as (app, clients):
        caplog.set_level(logging.DEBUG)
        yield Hooks(app, clients)


# --- 5. Shopify's unprefixed header family ---------------------------------------------------


def test_a_delivery_with_only_unprefixed_shopify_headers_is_accepted(hooks):
    body = fixture("shopify_orders_create.json")
    response = hooks.post("shopify", body, shopify_headers(body, family="shopify-"))
    assert response.status_code == 200
    assert response.get_json()["event"] == "order.created"
    (envelope,) = hooks.envelopes()
    assert (envelope.org_id, envelope.source.ref, envelope.source.topic) == (
        ORG, SHOP, "orders/create",
    )  # fmt: skip
    assert envelope.source.delivery_id == "wh-evt-1"
    assert envelope.source.triggered_at == rfc3339(NOW - timedelta(seconds=2))


def test_the_same_delivery_in_either_family_has_one_event_id_and_dedupes(hooks):
    body = fixture("shopify_products_update.json")
    first = hooks.post("shopify", body, shopify_headers(body, topic="products/update"))
    dispatch_published(hooks.app)
    again = hooks.post(
        "shopify", body, shopify_headers(body, family="shopify-", topic="products/update")
    )
    assert first.get_json()["eventId"] == again.get_json()["eventId"]
    assert again.get_json()["duplicate"] is True
    assert len(hooks.published) == 1


def test_a_delivery_mixing_both_families_verifies(hooks):
    body = fixture("shopify_customers_create.json")
    mixed = {
        "X-Shopify-Hmac-Sha256": signature(SHOP_SECRET, body),
        "shopify-topic": "customers/create",
        "X-Shopify-Shop-Domain": SHOP,
        "shopify-shop-domain": SHOP,
        "shopify-event-id": "evt-mixed",
    }
    response = hooks.post("shopify", body, mixed)
    assert response.status_code == 200
    assert response.get_json()["event"] == "customer.signup"


def test_the_x_shopify_form_wins_when_both_are_present(hooks):
    body = fixture("shopify_customers_create.json")
    good, bad = signature(SHOP_SECRET, body), signature("not-the-secret", body)
    base = shopify_headers(body, topic="customers/create", event_id="evt-a")
    x_good = {**base, "X-Shopify-Hmac-Sha256": good, "shopify-hmac-sha256": bad}
    assert hooks.post("shopify", body, x_good).status_code == 200
    x_bad = {**base, "X-Shopify-Hmac-Sha256": bad, "shopify-hmac-sha256": good}
    assert hooks.post("shopify", body, x_bad).status_code == 401
    # An empty X- value counts as absent: the unprefixed one is read.
    blank = {**base, "X-Shopify-Event-Id": "", "X-Shopify-Hmac-Sha256": " ",
             "shopify-hmac-sha256": good, "shopify-event-id": "evt-b"}  # fmt: skip
    assert hooks.post("shopify", body, blank).status_code == 200


def test_missing_headers_in_both_families_are_still_refused(hooks):
    body = fixture("shopify_orders_create.json")
    headers = shopify_headers(body, family="shopify-")
    del headers["shopify-Topic"]
    response = hooks.post("shopify", body, headers)
    assert (response.status_code, response.get_json()) == (401, {"error": "missing_signature"})


# --- 6. WooCommerce secrets stored with numeric entities --------------------------------------


def test_a_woo_secret_stored_with_a_numeric_entity_verifies_the_decoded_signature(hooks):
    body = fixture("woocommerce_order_created.json")
    response = hooks.woo(body)
    assert response.status_code == 200
    assert response.get_json()["event"] == "order.created"


def test_the_stored_form_itself_still_verifies_and_other_keys_do_not(hooks):
    body = fixture("woocommerce_order_created.json")
    assert hooks.woo(body, secret=WOO_STORED).status_code == 200
    assert hooks.woo(body, secret="abc&amp;def").status_code == 401


# --- 7. stale deliveries ----------------------------------------------------------------------


def test_a_stale_delivery_is_processed_and_flagged_on_the_envelope(hooks, caplog):
    body = fixture("shopify_checkouts_create.json")
    triggered = NOW - timedelta(days=3)
    headers = shopify_headers(body, topic="checkouts/create", triggered=triggered)
    response = hooks.post("shopify", body, headers)
    assert response.status_code == 200
    assert response.get_json()["event"] == "checkout.started"
    (envelope,) = hooks.envelopes()
    assert envelope.source.stale is True
    assert envelope.source.age_seconds == 3 * 24 * 3600
    assert envelope.source.triggered_at == rfc3339(triggered)
    (accepted,) = [r for r in caplog.records if r.getMessage() == "webhook accepted"]
    assert accepted.fields["stale"] is True
    assert accepted.fields["ageSeconds"] == 3 * 24 * 3600  # received_at − triggered_at
    receipt = hooks.app.store.get(WEBHOOK_RECEIPTS, response.get_json()["eventId"])
    assert receipt["status"] == "received"


def test_a_fresh_delivery_is_not_flagged(hooks):
    body = fixture("shopify_checkouts_create.json")
    headers = shopify_headers(body, topic="checkouts/create", triggered=NOW - timedelta(hours=2))
    assert hooks.post("shopify", body, headers).status_code == 200
    (envelope,) = hooks.envelopes()
    assert (envelope.source.stale, envelope.source.age_seconds) == (None, None)


def _run_reminder(hooks, triggered):
    """Deliver a checkout, dispatch it to an active reminder playbook and run its steps."""
    store, clock = hooks.app.store, FrozenClock(NOW)
    store.set(SETTINGS, ORG, {"compliance": COMPLIANCE}, merge=True)  # the guard lets it through
    playbooks.create_playbook(
        org_id=ORG, validated=load_text(REMINDER), actor="uid_test", source={"kind": "user"},
        reason="create", authoring=Authoring(store=store, clock=clock, ids=RandomIds()), status="active",
    )  # fmt: skip
    body = fixture("shopify_checkouts_create.json")
    headers = shopify_headers(body, topic="checkouts/create", triggered=triggered)
    assert hooks.post("shopify", body, headers).status_code == 200
    queue = MemoryTaskQueue()
    queue.create_queue(QueueConfig("playbook-steps"))
    target = StepTarget(queue="playbook-steps", url="http://127.0.0.1:9/execute_step/")
    (message,) = hooks.published
    result = dispatch_message(
        message, runs=Runs(store=store, queue=queue, target=target, clock=clock)
    )
    assert result["outcome"] == "dispatched"
    engine = Engine(
        store=store, queue=queue, target=target, clock=clock, bus=MemoryBus(),
        topic="playbook-events", secrets=StoreSecrets(store), slack=SlackWebhook(),
        senders=Senders(mailer=None, sms=None, unsubscribe=UNSUBSCRIBE), harness=None,
    )  # fmt: skip
    while (task := queue.take()) is not None:
        run_step(StepTask.model_validate(task.body), engine)
    (delivery,) = store.query(DELIVERIES).docs
    hooks.logged = store.get(EVENT_LOG, "evl_" + h(ORG, result["eventId"]))
    return delivery.data


def test_a_stale_checkout_reminder_is_skipped_as_stale_event(hooks):
    delivery = _run_reminder(hooks, NOW - timedelta(hours=30))
    assert (delivery["status"], delivery["skipReason"]) == ("skipped", "stale_event")
    assert hooks.logged["outcome"] == "dispatched"
    assert hooks.logged["source"] == {
        "kind": "shopify", "ref": SHOP, "stale": True, "ageSeconds": 30 * 3600,
    }  # fmt: skip
    assert "stale_event" in SKIP_REASONS  # listable: GET …/deliveries?reason=stale_event


def test_a_fresh_checkout_reminder_goes_on_to_the_usual_gates(hooks):
    delivery = _run_reminder(hooks, NOW - timedelta(minutes=5))
    # Not stale: it reaches the approval gate a customer-facing send of a new playbook has.
    assert (delivery["status"], delivery["skipReason"]) == ("held", "awaiting_approval")
    assert hooks.logged["source"] == {"kind": "shopify", "ref": SHOP}
