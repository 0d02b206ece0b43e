"""The catch-up pass (issue #16) against the Shopify and WooCommerce API stand-ins.

Orders exist only in the stores (no webhook ever came); one pass turns each into the events a
webhook stream would have produced, exactly once, and dispatch makes each execution once. A
webhook for the same order afterwards is a duplicate, a second pass publishes nothing, pages,
throttles and a pass that dies half-way lose and duplicate nothing, and a WooCommerce store whose
webhooks went silent raises one alert. Everything goes over HTTP through the production adapters.
"""

import copy
import json
import os
import time
from datetime import timedelta

import functions_framework
import httpx
import pytest

from emulators.standins import (
    SHOPIFY_ADMIN_TEST_TOKEN,
    WOOCOMMERCE_TEST_CONSUMER_KEY,
    WOOCOMMERCE_TEST_CONSUMER_SECRET,
    start_shopify_admin,
    start_woocommerce_api,
)
from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.adapters.secrets import StoreSecrets
from playbook_core.adapters.service_tokens import LocalServiceTokens, mint_unsigned
from playbook_core.adapters.store_apis import StoreApiOrders
from playbook_core.config import SHOPIFY_ADMIN_API_VERSION, load_settings
from playbook_core.domain.collections import WEBHOOK_SOURCES
from playbook_core.domain.errors import Unavailable
from playbook_core.ports import QueueConfig
from playbook_core.runtime import bootstrap
from playbook_core.service.ingress.sources import get_source, register_source
from playbook_core.testing import FrozenClock, RecordingServer
from tests.integration.ingress.conftest import register_org
from tests.integration.ingress.test_webhook_replay import (
    MAIN,
    NOW,
    ORG,
    SHOP,
    SHOP_SECRET,
    WOO_SECRET,
    WOO_URL,
    Replay,
    create_listeners,
    encoded,
    fixture,
)

SHOPIFY_ID = f"shopify_{SHOP}"
RECENT = (NOW - timedelta(hours=2)).isoformat().replace("+00:00", "Z")


def shopify_order(order_id, *, fulfilled=True, updated=RECENT):
    order = copy.deepcopy(fixture("shopify_orders_fulfilled.json"))
    order.update(id=order_id, updated_at=updated, created_at=updated, cancelled_at=None)
    order["fulfillment_status"] = "fulfilled" if fulfilled else None
    return order


def woo_order(order_id, *, status="completed", modified=None):
    order = copy.deepcopy(fixture("woocommerce_order_updated.json"))
    stamp = (modified or NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    order.update(id=order_id, status=status, date_modified_gmt=stamp, date_created_gmt=stamp)
    return order


class Stores:
    def __init__(self, replay, shopify, woo, slack):
        self.replay, self.app = replay, replay.app
        self.shopify, self.woo, self.slack = shopify, woo, slack
        self.woo_id = next(
            doc.id for doc in self.app.store.query(WEBHOOK_SOURCES).docs
            if doc.data["platform"] == "woocommerce"
        )  # fmt: skip

    def add(self, platform, *orders):
        for order in orders:
            if platform == "shopify":
                body = {"shop": SHOP, "order": order}
                answer = httpx.post(f"{self.shopify.url}/__orders", json=body, timeout=10)
            else:
                body = {"store": WOO_URL, "order": order}
                answer = httpx.post(f"{self.woo.url}/__orders", json=body, timeout=10)
            assert answer.status_code in (200, 201), answer.text

    def catch_up(self, source_id):
        summary = self.app.catch_up(source_id)
        self.replay._dispatch_new_messages()
        return summary

    def events(self, name):
        return self.replay.events(name)


@pytest.fixture
def stores():
    steps, slack = RecordingServer().start(), RecordingServer().start()
    shopify, woo = start_shopify_admin(), start_woocommerce_api()
    os.environ.update({
        "PLAYBOOKS_BACKEND": "embedded", "GOOGLE_CLOUD_PROJECT": "demo-playbooks",
        "PLAYBOOKS_FUNCTIONS_BASE_URL": steps.url,
        "SLACK_ALERT_WEBHOOK_URL": f"{slack.url}/services/T0/B0/catch-up-alerts",
    })  # fmt: skip
    settings = load_settings()
    store = EmbeddedStore(":memory:")
    bus, queue = InProcessBus(), InProcessTaskQueue()
    queue.create_queue(QueueConfig(settings.steps_queue))
    clock = FrozenClock(NOW)
    app = bootstrap.App(settings, store, bus, queue, clock, vault=StoreSecrets(store))
    app.orders_reader = StoreApiOrders(
        shopify_base=shopify.url, shopify_version=SHOPIFY_ADMIN_API_VERSION,
        woocommerce_base=woo.url,
    )  # fmt: skip
    register_org(store, ORG)
    credentials = {
        "shopify": {"adminAccessToken": SHOPIFY_ADMIN_TEST_TOKEN},
        "woocommerce": {"consumerKey": WOOCOMMERCE_TEST_CONSUMER_KEY,
                        "consumerSecret": WOOCOMMERCE_TEST_CONSUMER_SECRET},
    }  # fmt: skip
    for platform, address, secret in (("shopify", SHOP, SHOP_SECRET), ("woocommerce", WOO_URL, WOO_SECRET)):  # fmt: skip
        register_source(
            org_id=ORG, platform=platform, address=address, secret=secret,
            low_stock_threshold=None, store=store, secrets=app.secrets(), clock=clock,
            api_credentials=credentials[platform],
        )  # fmt: skip
    create_listeners(store, clock)
    bootstrap.use(app)
    yield Stores(Replay(app), shopify, woo, slack)
    bootstrap.use(None)
    queue.drain()
    bus.close()
    queue.close()
    store.close()
    for server in (steps, slack, shopify, woo):
        server.stop()


def runs_by_playbook(app):
    counts = {}
    for doc in app.store.query("playbook_executions", limit=1000).docs:
        counts[doc.data["playbookId"]] = counts.get(doc.data["playbookId"], 0) + 1
    return counts


def test_orders_only_in_the_stores_become_events_and_runs_once_and_webhooks_after_are_duplicates(
    stores,
):
    stores.add("shopify", shopify_order(7001))
    stores.add("woocommerce", woo_order(8001))
    shopify_pass = stores.catch_up(SHOPIFY_ID)
    woo_pass = stores.catch_up(stores.woo_id)
    assert (shopify_pass["published"], woo_pass["published"]) == (2, 2)  # created + completed
    assert len(stores.events("order.created")) == 2
    assert len(stores.events("order.completed")) == 2
    assert runs_by_playbook(stores.app) == {"pb_order_created": 2, "pb_order_completed": 2}
    # A second pass publishes nothing.
    before = len(stores.replay.published)
    assert stores.catch_up(SHOPIFY_ID)["published"] == 0
    assert stores.catch_up(stores.woo_id)["duplicates"] == 2
    assert len(stores.replay.published) == before
    # The webhooks that never came, arriving late: duplicates, whatever their delivery ids.
    late = encoded(shopify_order(7001))
    assert stores.replay.shopify(late, key="late-1", topic="orders/create")["duplicate"] is True
    assert stores.replay.shopify(late, key="late-2", topic="orders/fulfilled")["duplicate"] is True
    assert len(stores.replay.published) == before
    assert runs_by_playbook(stores.app) == {"pb_order_created": 2, "pb_order_completed": 2}
    source = stores.app.store.get(WEBHOOK_SOURCES, SHOPIFY_ID)
    assert source["catchUpCursor"] == NOW - timedelta(hours=2)
    assert source["lastCatchUpAt"] == NOW


def test_a_webhook_first_makes_the_pass_find_nothing_new(stores):
    body = shopify_order(7002, fulfilled=False)
    assert stores.replay.shopify(encoded(body), key="w-1", topic="orders/create")["event"] == (
        "order.created"
    )
    stores.add("shopify", body)
    summary = stores.catch_up(SHOPIFY_ID)
    assert (summary["published"], summary["duplicates"]) == (0, 1)
    assert len(stores.events("order.created")) == 1


def test_pages_and_a_throttled_shopify_and_a_rate_limited_woocommerce_lose_nothing(stores):
    stores.add("shopify", *[
        shopify_order(7100 + n, updated=(NOW - timedelta(minutes=90 - n)).isoformat())
        for n in range(25)
    ])  # fmt: skip
    stores.add("woocommerce", *[
        woo_order(8100 + n, status="processing", modified=NOW - timedelta(minutes=90 - n))
        for n in range(55)
    ])  # fmt: skip
    # An empty cost bucket that refills fast: the first query is THROTTLED, then it goes on.
    bucket = {"shop": SHOP, "currentlyAvailable": 0, "restoreRate": 2000}
    assert httpx.post(f"{stores.shopify.url}/__bucket", json=bucket, timeout=10).is_success
    busy = {"mode": "error_4xx", "status": 429, "times": 1}
    assert httpx.post(f"{stores.woo.url}/__behaviour", json=busy, timeout=10).is_success
    shopify_pass = stores.catch_up(SHOPIFY_ID)
    woo_pass = stores.catch_up(stores.woo_id)
    assert shopify_pass["pages"] >= 3
    assert shopify_pass["throttled"] >= 1
    assert woo_pass["pages"] == 2
    assert woo_pass["throttled"] == 1
    assert (shopify_pass["outcome"], woo_pass["outcome"]) == ("done", "done")
    created = [event_id for _, event_id in stores.events("order.created")]
    assert len(created) == len(set(created)) == 80
    assert len(stores.events("order.completed")) == 25


class DiesAfterOnePage:
    """The real adapter, but the pass's process dies when it asks for the second page."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def orders_since(self, *args):
        self.calls += 1
        if self.calls == 2:
            raise Unavailable("the instance was stopped")
        return self.inner.orders_since(*args)


def test_a_pass_that_dies_half_way_and_runs_again_loses_and_duplicates_nothing(stores):
    stores.add("shopify", *[
        shopify_order(7200 + n, updated=(NOW - timedelta(minutes=60 - 2 * n)).isoformat())
        for n in range(25)
    ])  # fmt: skip
    real = stores.app.orders_reader
    stores.app.orders_reader = DiesAfterOnePage(real)
    with pytest.raises(Unavailable):
        stores.catch_up(SHOPIFY_ID)
    stores.replay._dispatch_new_messages()
    half = len(stores.events("order.created"))
    assert 0 < half < 25
    cursor = stores.app.store.get(WEBHOOK_SOURCES, SHOPIFY_ID)["catchUpCursor"]
    assert NOW - timedelta(minutes=60) <= cursor < NOW - timedelta(minutes=12)
    stores.app.orders_reader = real
    stores.catch_up(SHOPIFY_ID)
    created = [event_id for _, event_id in stores.events("order.created")]
    assert len(created) == len(set(created)) == 25
    assert runs_by_playbook(stores.app)["pb_order_created"] == 25


class ChangesAnOrderAfterTheFirstPage:
    """The real adapter; after the first page, the store changes that page's first order."""

    def __init__(self, inner, stores, order):
        self.inner, self.stores, self.order, self.calls = inner, stores, order, 0

    def orders_since(self, *args):
        page = self.inner.orders_since(*args)
        self.calls += 1
        if self.calls == 1:
            self.stores.add("woocommerce", self.order)
        return page


def test_an_order_changed_during_a_woocommerce_pass_skips_no_other(stores):
    """Page by number, the change moves order 8400 to the end and page 2 starts at 8403."""
    orders = [
        woo_order(8400 + n, status="processing", modified=NOW - timedelta(minutes=90 - n))
        for n in range(6)
    ]
    stores.add("woocommerce", *orders)
    small_pages = StoreApiOrders(
        shopify_base=None, shopify_version=SHOPIFY_ADMIN_API_VERSION,
        woocommerce_base=stores.woo.url, woocommerce_page=2,
    )  # fmt: skip
    changed = woo_order(8400, status="completed", modified=NOW - timedelta(minutes=1))
    stores.app.orders_reader = ChangesAnOrderAfterTheFirstPage(small_pages, stores, changed)
    summary = stores.catch_up(stores.woo_id)
    created = {event_id for _, event_id in stores.events("order.created")}
    assert len(created) == 6  # 8402 too, which page numbers skip
    assert len(stores.events("order.completed")) == 1  # 8400's change, read at the end
    assert runs_by_playbook(stores.app)["pb_order_created"] == 6  # one run per order
    assert summary["outcome"] == "done"


def test_a_silent_woocommerce_store_raises_one_alert_and_shows_it(stores):
    stores.add("woocommerce", woo_order(8301, status="processing"))
    first = stores.catch_up(stores.woo_id)
    assert first["health"] == "webhooks_silent"
    stores.add("woocommerce", woo_order(8302, status="processing", modified=NOW))
    assert stores.catch_up(stores.woo_id)["health"] == "webhooks_silent"
    alerts = [r for r in stores.slack.requests if r.path.startswith("/services/")]
    assert len(alerts) == 1  # throttled: one per source and kind per hour
    assert "webhooks_silent" in json.loads(alerts[0].body)["text"]
    view = stores.app.store.get(WEBHOOK_SOURCES, stores.woo_id)
    assert view["webhookHealth"] == "webhooks_silent"
    shown = get_source(org_id=ORG, source_id=stores.woo_id, store=stores.app.store)
    assert shown["webhookHealth"] == "webhooks_silent"
    assert shown["missedEvents24h"] == 2
    assert shown["lastCatchUpAt"] == NOW
    # The public health endpoint counts it without naming it.
    assert stores.app.health()["webhookSources"] == {
        "missingWebhooks": 0, "webhooksSilent": 1, "more": False,
    }  # fmt: skip


def test_a_source_without_api_access_is_left_alone(stores):
    register_source(
        org_id=ORG, platform="shopify", address="plain.myshopify.com", secret="whsec_12345678",
        low_stock_threshold=None, store=stores.app.store, secrets=stores.app.secrets(),
        clock=stores.app.clock,
    )  # fmt: skip
    summary = stores.catch_up("shopify_plain.myshopify.com")
    assert summary == {"sourceId": "shopify_plain.myshopify.com", "outcome": "no_api_access"}
    fanned = stores.app.catch_up(None)
    assert fanned == {"queued": 2}  # the two sources with credentials, not this one


def test_the_cron_route_runs_a_pass_for_its_callers_only(stores):
    stores.add("shopify", shopify_order(7301))
    app = stores.app
    app.caller_tokens = LocalServiceTokens()  # the emulators' unsigned tokens, claims checked
    client = functions_framework.create_app("cron_playbooks", MAIN, "http").test_client()
    audience = app.settings.function_url("cron_playbooks")
    token = mint_unsigned(app.settings.invoker("cloud_scheduler"), audience, time.time())
    headers = {"Authorization": f"Bearer {token}"}
    refused = client.post("/catchup", json={"sourceId": SHOPIFY_ID})
    assert refused.status_code == 401
    assert stores.app.store.get(WEBHOOK_SOURCES, SHOPIFY_ID).get("lastCatchUpAt") is None
    answer = client.post("/catchup", json={"sourceId": SHOPIFY_ID}, headers=headers)
    assert answer.status_code == 200
    assert answer.get_json()["published"] == 2
    # A task that can never succeed is acknowledged with its error (no retries): task_boundary.
    for hostile in (5, "", "a/b", "..", "__x__", "x" * 300, "\ud800"):
        bad = client.post("/catchup", json={"sourceId": hostile}, headers=headers)
        assert (bad.status_code, bad.get_json()["error"]) == (200, "bad-request"), hostile
    unknown = client.post("/catchup", json={"sourceId": "shopify_nope"}, headers=headers)
    assert (unknown.status_code, unknown.get_json()["error"]) == (200, "not-found")
