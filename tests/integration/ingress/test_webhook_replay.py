"""Replays under fresh delivery headers (hardening issue, defect 4; domain.md §6.4).

Both platforms sign the body only, so whoever holds one signed body can re-send it with new
X-Shopify-Event-Id / X-Shopify-Webhook-Id or X-WC-Webhook-ID / -Delivery-ID headers. Each test
posts through the deployed webhook entry points, hands every published message to the dispatcher
(what on_event_published runs once the push is authenticated) and counts published events and
executions in the store.
"""

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import functions_framework
import pytest

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.ids import RandomIds
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.adapters.secrets import StoreSecrets
from playbook_core.config import load_settings
from playbook_core.domain.collections import EVENT_LOG, EXECUTIONS
from playbook_core.domain.envelope import EventEnvelope
from playbook_core.domain.loading import load_data
from playbook_core.domain.webhooks import signature
from playbook_core.ports import QueueConfig
from playbook_core.runtime import bootstrap
from playbook_core.runtime.cloudevents import PubsubMessage
from playbook_core.service.authoring import playbooks
from playbook_core.service.authoring.playbooks import Authoring
from playbook_core.service.ingress.event_log import log_id_of
from playbook_core.service.ingress.sources import register_source
from playbook_core.testing import FrozenClock, RecordingServer
from tests.integration.ingress.conftest import register_org

MAIN = str(Path(__file__).parents[3] / "functions" / "main.py")
DATA = Path(__file__).parents[2] / "data" / "webhooks"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ORG = "org_a"
SHOP = "shop.myshopify.com"
SHOP_SECRET = "shpss_replay-secret"
WOO_URL = "https://example.com/"
WOO_SECRET = "woo-replay-secret"
LISTENED = ("order.created", "order.updated", "order.completed")


def fixture(name: str) -> dict:
    return json.loads((DATA / name).read_bytes())


def encoded(body: dict) -> bytes:
    return json.dumps(body).encode()


class Replay:
    """Both webhook endpoints and the dispatcher over one embedded app."""

    def __init__(self, app):
        self.app = app
        self.clients = {
            p: functions_framework.create_app(f"webhook_{p}", MAIN, "http").test_client()
            for p in ("shopify", "woocommerce")
        }
        self.pushed = 0

    def shopify(self, body: bytes, *, key: str, topic="orders/create"):
        headers = {
            "X-Shopify-Hmac-Sha256": signature(SHOP_SECRET, body),
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Event-Id": key,
            "X-Shopify-Webhook-Id": f"wh-{key}",
            "X-Shopify-Triggered-At": "2026-11-24T11:59:58.000Z",
            "Content-Type": "application/json",
        }
        return self._post("shopify", body, headers)

    def woo(self, body: bytes, *, webhook_id: str, delivery_id: str, topic="order.created"):
        headers = {
            "X-WC-Webhook-Signature": signature(WOO_SECRET, body),
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Source": WOO_URL,
            "X-WC-Webhook-ID": webhook_id,
            "X-WC-Webhook-Delivery-ID": delivery_id,
            "Content-Type": "application/json",
        }
        return self._post("woocommerce", body, headers)

    def _post(self, platform, body, headers):
        response = self.clients[platform].post("/", data=body, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        self._dispatch_new_messages()
        return response.get_json()

    def _dispatch_new_messages(self):
        for _, message in list(self.published)[self.pushed :]:
            self.pushed += 1
            pushed = PubsubMessage(f"m{self.pushed}", dict(message.attributes), message.data)
            self.app.event_published(pushed)

    @property
    def published(self):
        return self.app.bus.published

    def events(self, name=None):
        """(name, eventId) of every published envelope, in publish order."""
        decoded = [EventEnvelope.decode(message.data) for _, message in self.published]
        return [(e.name, e.event_id) for e in decoded if name is None or e.name == name]

    def executions(self):
        return self.app.store.query(EXECUTIONS, limit=1000).docs


def create_listeners(store, clock):
    """One active playbook per LISTENED event: a dashboard notify, so each run is counted."""
    for name in LISTENED:
        definition = {
            "name": f"On {name}", "agent": "craig",
            "triggers": [{"id": "on_event", "type": "event", "eventName": name}],
            "steps": [{"action": "notify",
                       "params": {"channel": "dashboard", "to": "role:admin", "message": "hi"}}],
        }  # fmt: skip
        playbooks.create_playbook(
            org_id=ORG, validated=load_data(definition), actor="uid_test", source={"kind": "user"},
            reason="create", authoring=Authoring(store=store, clock=clock, ids=RandomIds()),
            playbook_id=f"pb_{name.replace('.', '_')}", status="active",
        )  # fmt: skip


@pytest.fixture
def replay():
    steps = RecordingServer().start()  # stands in for execute_step; the runs are not followed
    os.environ.update({
        "PLAYBOOKS_BACKEND": "embedded", "GOOGLE_CLOUD_PROJECT": "demo-playbooks",
        "PLAYBOOKS_FUNCTIONS_BASE_URL": steps.url,
    })  # fmt: skip
    settings = load_settings()
    store = EmbeddedStore(":memory:")
    bus, queue = InProcessBus(), InProcessTaskQueue()
    queue.create_queue(QueueConfig(settings.steps_queue))
    clock = FrozenClock(NOW)
    app = bootstrap.App(settings, store, bus, queue, clock, vault=StoreSecrets(store))
    register_org(store, ORG)
    for platform, address, secret in (("shopify", SHOP, SHOP_SECRET), ("woocommerce", WOO_URL, WOO_SECRET)):  # fmt: skip
        register_source(
            org_id=ORG, platform=platform, address=address, secret=secret,
            low_stock_threshold=None, store=store, secrets=app.secrets(), clock=clock,
        )  # fmt: skip
    create_listeners(store, clock)
    bootstrap.use(app)
    yield Replay(app)
    bootstrap.use(None)
    queue.drain()
    bus.close()
    queue.close()
    store.close()
    steps.stop()


# --- the same signed body under fresh delivery headers ---------------------------------------


def test_shopify_body_resent_with_fresh_event_and_webhook_ids_is_a_duplicate(replay):
    body = encoded(fixture("shopify_orders_create.json"))
    first = replay.shopify(body, key="evt-1")
    again = replay.shopify(body, key="evt-replayed")
    assert first["event"] == "order.created"
    assert again == {"received": True, "duplicate": True, "eventId": first["eventId"]}
    assert replay.events() == [("order.created", first["eventId"])]
    assert len(replay.executions()) == 1


def test_shopifys_own_retry_is_still_a_duplicate(replay):
    body = encoded(fixture("shopify_orders_create.json"))
    first = replay.shopify(body, key="evt-1")
    again = replay.shopify(body, key="evt-1")
    assert again == {"received": True, "duplicate": True, "eventId": first["eventId"]}
    assert len(replay.published) == 1


@pytest.mark.parametrize(
    ("webhook_id", "delivery_id"), [("12", "new-delivery"), ("99", "new-delivery")],
    ids=["new delivery id", "new webhook and delivery ids"],
)  # fmt: skip
def test_woocommerce_body_resent_with_fresh_delivery_headers_is_a_duplicate(
    replay, webhook_id, delivery_id
):
    body = encoded(fixture("woocommerce_order_created.json"))
    first = replay.woo(body, webhook_id="12", delivery_id="d-1")
    again = replay.woo(body, webhook_id=webhook_id, delivery_id=delivery_id)
    assert first["event"] == "order.created"
    assert again == {"received": True, "duplicate": True, "eventId": first["eventId"]}
    assert replay.events() == [("order.created", first["eventId"])]
    assert len(replay.executions()) == 1


# --- order.created once per (source, order id) -----------------------------------------------


def test_shopify_orders_create_for_the_same_order_with_another_body_fires_once(replay):
    order = fixture("shopify_orders_create.json")
    first = replay.shopify(encoded(order), key="evt-1")
    changed = encoded({**order, "note": "another signed body of the same order"})
    again = replay.shopify(changed, key="evt-2")
    assert again == {"received": True, "duplicate": True, "eventId": first["eventId"]}
    assert replay.events("order.created") == [("order.created", first["eventId"])]
    assert len(replay.executions()) == 1


def test_woocommerce_order_created_for_the_same_order_with_another_body_fires_once(replay):
    order = fixture("woocommerce_order_created.json")
    first = replay.woo(encoded(order), webhook_id="12", delivery_id="d-1")
    changed = encoded({**order, "customer_note": "leave at the door"})
    again = replay.woo(changed, webhook_id="13", delivery_id="d-2")
    assert again == {"received": True, "duplicate": True, "eventId": first["eventId"]}
    assert replay.events("order.created") == [("order.created", first["eventId"])]
    assert len(replay.executions()) == 1


def test_another_order_is_created_as_usual(replay):
    order = fixture("shopify_orders_create.json")
    replay.shopify(encoded(order), key="evt-1")
    other = replay.shopify(encoded({**order, "id": order["id"] + 1}), key="evt-2")
    assert other["event"] == "order.created"
    assert len(replay.events("order.created")) == 2
    assert len(replay.executions()) == 2


# --- genuinely different deliveries still go through -----------------------------------------


def test_orders_updated_with_a_changed_body_still_publishes(replay):
    order = fixture("shopify_orders_create.json")
    order = {**order, "cancelled_at": None, "cancel_reason": None}  # still open: order.updated
    replay.shopify(encoded(order), key="evt-1")
    first = replay.shopify(encoded(order), key="evt-2", topic="orders/updated")
    changed = {**order, "note": "gift wrap", "updated_at": "2022-01-01T10:00:00-05:00"}
    second = replay.shopify(encoded(changed), key="evt-3", topic="orders/updated")
    assert (first["event"], second["event"]) == ("order.updated", "order.updated")
    assert first["eventId"] != second["eventId"]
    assert [name for name, _ in replay.events()] == [
        "order.created", "order.updated", "order.updated",
    ]  # fmt: skip
    assert len(replay.executions()) == 3


def test_the_same_bytes_under_another_topic_are_another_delivery(replay):
    """Shopify sends orders/create and orders/updated with identical bodies: both count."""
    order = fixture("shopify_orders_create.json")
    body = encoded({**order, "cancelled_at": None, "cancel_reason": None})
    replay.shopify(body, key="evt-1")
    updated = replay.shopify(body, key="evt-2", topic="orders/updated")
    assert updated["event"] == "order.updated"
    assert [name for name, _ in replay.events()] == ["order.created", "order.updated"]


# --- a delivery that died before publishing stays retriable ----------------------------------


def _died_before_publishing(replay, event_id):
    """As if the first attempt had claimed everything, then crashed before its publish."""
    envelope = EventEnvelope.decode(replay.published[-1][1].data)
    assert envelope.event_id == event_id
    replay.app.store.delete(EVENT_LOG, log_id_of(envelope))  # so nothing dispatched it
    replay.app.bus.published.clear()
    replay.pushed = 0


def test_a_replay_while_the_first_delivery_is_unpublished_publishes_it_under_its_own_id(replay):
    body = encoded(fixture("shopify_orders_create.json"))
    first = replay.shopify(body, key="evt-1")
    _died_before_publishing(replay, first["eventId"])
    again = replay.shopify(body, key="evt-replayed")  # completes the first delivery, nothing new
    assert again == first
    retried = replay.shopify(body, key="evt-1")  # Shopify's own retry of the first delivery
    assert retried == {"received": True, "duplicate": True, "eventId": first["eventId"]}
    assert replay.events() == [("order.created", first["eventId"])]
    assert len(replay.executions()) == 1


def test_an_order_claimed_by_a_delivery_that_died_is_published_by_its_retry_only(replay):
    order = fixture("shopify_orders_create.json")
    first = replay.shopify(encoded(order), key="evt-1")
    _died_before_publishing(replay, first["eventId"])
    other = replay.shopify(encoded({**order, "note": "another body"}), key="evt-2")
    assert other == {"received": True, "duplicate": True, "eventId": first["eventId"]}
    assert not replay.published
    retried = replay.shopify(encoded(order), key="evt-1")
    assert retried == first
    assert replay.events() == [("order.created", first["eventId"])]
    assert len(replay.executions()) == 1
