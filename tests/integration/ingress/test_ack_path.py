"""What a webhook's ack costs in store round trips, and what the instance keeps (issue #14).

A warm instance keeps the org's settings and each verified source with its secret values
(service/ingress/recent): a new delivery is one atomic write of its claims, then the publish.
Settings never outlive FRESH_FOR, a kept source never outlives SOURCE_FRESH_FOR, a rotated secret
works at once, and a store another org released cannot be registered until no instance can
still hold it (RELEASE_HOLD).
"""

import copy
import json
import uuid
from datetime import timedelta

import pytest

from playbook_core.adapters.memory import MemoryBus, MemoryTaskQueue
from playbook_core.adapters.secrets import StoreSecrets
from playbook_core.domain.collections import WEBHOOK_CLAIMS, WEBHOOK_SOURCES
from playbook_core.domain.envelope import EventEnvelope
from playbook_core.domain.errors import Conflict
from playbook_core.domain.webhooks import signature
from playbook_core.runtime.cloudevents import PubsubMessage
from playbook_core.service.authoring.settings import patch_settings
from playbook_core.service.dispatch.dispatcher import dispatch_message
from playbook_core.service.execution.run_start import Runs, StepTarget
from playbook_core.service.ingress.event_log import Publishing
from playbook_core.service.ingress.recent import FRESH_FOR, SEEN_EVERY, SOURCE_FRESH_FOR, Recent
from playbook_core.service.ingress.sources import (
    RELEASE_HOLD,
    delete_source,
    register_source,
    rotate_secret,
)
from playbook_core.service.ingress.webhooks import receive_webhook
from playbook_core.testing import FrozenClock
from tests.bench.counting import CountingStore
from tests.integration.ingress.conftest import NOW, register_org
from tests.integration.ingress.test_webhook_replay import SHOP, encoded, fixture

ORG = "org_ack"
SECRET = "shpss_ack-path-secret"
SOURCE_ID = f"shopify_{SHOP}"
FALLBACK = "shpss_the-apps-global-secret"  # SHOPIFY_WEBHOOK_SECRET


@pytest.fixture
def world(new_store):
    return World(CountingStore(new_store()))


class World:
    def __init__(self, store):
        self.store, self.clock, self.bus = store, FrozenClock(NOW), MemoryBus()
        self.secrets = StoreSecrets(store)
        register_org(store, ORG)
        register_source(
            org_id=ORG, platform="shopify", address=SHOP, secret=SECRET,
            low_stock_threshold=None, store=store, secrets=self.secrets, clock=self.clock,
        )  # fmt: skip
        self.orders = 0

    def instance(self):
        """One function instance: what it keeps is its own."""
        return Publishing(
            store=self.store, bus=self.bus, topic="playbook-events", clock=self.clock,
            recent=Recent(),
        )  # fmt: skip

    def dispatched(self, message):
        """What on_event_published does with a published message (no listeners here)."""
        runs = Runs(
            store=self.store, queue=MemoryTaskQueue(), clock=self.clock,
            target=StepTarget(queue="playbook-steps", url="http://steps.invalid/"),
        )  # fmt: skip
        pushed = PubsubMessage("m1", dict(message.attributes), message.data)
        assert dispatch_message(pushed, runs=runs)["outcome"] == "no_listeners"

    def order(self):
        self.orders += 1
        body = copy.deepcopy(fixture("shopify_orders_create.json"))
        body["id"] = 820982911946154000 + self.orders
        return encoded(body)

    def deliver(
        self, publishing, body, *, key=None, secret=SECRET, fallback=None, topic="orders/create"
    ):
        key = key or uuid.uuid4().hex
        headers = {
            "X-Shopify-Hmac-Sha256": signature(fallback or secret, body), "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Event-Id": key,
            "X-Shopify-Webhook-Id": f"wh-{key}", "Content-Type": "application/json",
        }  # fmt: skip
        return receive_webhook(
            "shopify", headers=headers, body=body, remote_ip="127.0.0.1", query_org_id=None,
            publishing=publishing, secrets=self.secrets, fallback_secret=fallback,
        )  # fmt: skip


def test_a_new_delivery_on_a_warm_instance_is_one_claim_write_then_the_publish(world):
    publishing = world.instance()
    assert world.deliver(publishing, world.order())[0] == 200  # warms the instance
    for _ in range(3):
        published = len(world.bus.published)
        with world.store.measure() as counts:
            status, answer = world.deliver(publishing, world.order())
        assert (status, answer["event"]) == (200, "order.created")
        assert len(world.bus.published) == published + 1
        # Claims (content, order, order state, receipt) in one write; nothing read, no mark.
        assert (counts.calls, counts.reads, counts.transactions, counts.writes) == (1, 0, 0, 4)


def test_a_cold_instance_reads_the_source_and_its_secret_once(world):
    publishing = world.instance()
    with world.store.measure() as cold:
        assert world.deliver(publishing, world.order())[0] == 200
    with world.store.measure() as warm:
        assert world.deliver(publishing, world.order())[0] == 200
    reads = ("read webhook_sources", "read _secrets")
    assert [cold.by_collection[r] for r in reads] == [1, 1]
    assert [warm.by_collection[r] for r in reads] == [0, 0]


def test_an_update_of_a_known_order_checks_its_state_then_claims_at_once(world):
    publishing, order = world.instance(), world.order()
    assert world.deliver(publishing, order)[0] == 200
    update = json.loads(order)
    update["updated_at"] = "2026-11-24T12:30:00Z"
    update["note"] = "gift wrap"
    with world.store.measure() as counts:
        status, answer = world.deliver(publishing, encoded(update), topic="orders/updated")
    assert (status, answer["event"]) == (200, "order.updated")
    # The order-state transaction; content claim + receipt at once.
    assert (counts.calls, counts.transactions) == (2, 1)


def test_the_same_delivery_again_publishes_again_until_its_event_is_logged(world):
    publishing, body = world.instance(), world.order()
    first = world.deliver(publishing, body, key="k1")
    event_id = first[1]["eventId"]
    published = len(world.bus.published)
    # Not yet dispatched: the first attempt may have died before its publish, so publish again.
    assert world.deliver(publishing, body, key="k1") == first
    assert len(world.bus.published) == published + 1
    world.dispatched(world.bus.published[-1][1])
    again = world.deliver(publishing, body, key="k1")
    assert again == (200, {"received": True, "duplicate": True, "eventId": event_id})
    replayed = world.deliver(publishing, body, key="k2")  # the same bytes under new headers
    assert replayed[1]["duplicate"] is True
    assert len(world.bus.published) == published + 1


def test_a_deleted_store_stops_within_source_fresh_for_on_a_warm_instance(world):
    kept = world.instance()
    assert world.deliver(kept, world.order())[0] == 200
    delete_source(
        org_id=ORG, source_id=SOURCE_ID, store=world.store, secrets=world.secrets,
        clock=world.clock,
    )  # fmt: skip
    assert world.deliver(world.instance(), world.order()) == (401, {"error": "unknown_source"})
    assert world.deliver(kept, world.order())[0] == 200  # kept, verified by what it kept
    world.clock.advance(seconds=SOURCE_FRESH_FOR.total_seconds())
    assert world.deliver(kept, world.order()) == (401, {"error": "unknown_source"})


@pytest.mark.parametrize("secret", [SECRET, None], ids=["same own secret", "global fallback"])
def test_another_org_cannot_take_a_released_store_while_an_instance_may_keep_it(world, secret):
    """The store's deliveries verify for either org alike here: only the hold keeps them apart."""
    if secret is None:  # registering again without a secret would keep the one it has
        delete_source(
            org_id=ORG, source_id=SOURCE_ID, store=world.store, secrets=world.secrets,
            clock=world.clock,
        )  # fmt: skip
        _register(world, ORG, None)
    fallback = FALLBACK if secret is None else None
    kept = world.instance()
    assert world.deliver(kept, world.order(), fallback=fallback)[0] == 200
    delete_source(
        org_id=ORG, source_id=SOURCE_ID, store=world.store, secrets=world.secrets,
        clock=world.clock,
    )  # fmt: skip
    register_org(world.store, "org_next")
    before = world.store.query(WEBHOOK_CLAIMS).docs, len(world.store.query("_secrets").docs)
    for wait in (0, RELEASE_HOLD.total_seconds() - 1):
        world.clock.advance(seconds=wait)
        with pytest.raises(Conflict):
            _register(world, "org_next", secret)
        after = world.store.query(WEBHOOK_CLAIMS).docs, len(world.store.query("_secrets").docs)
        assert after == before  # refused: no source, no secret version
        assert world.store.get(WEBHOOK_SOURCES, SOURCE_ID) is None
    world.clock.advance(seconds=1)
    _register(world, "org_next", secret)
    assert world.deliver(kept, world.order(), fallback=fallback)[0] == 200
    assert EventEnvelope.decode(world.bus.published[-1][1].data).org_id == "org_next"


def test_the_releasing_org_may_register_its_store_again_at_once(world):
    delete_source(
        org_id=ORG, source_id=SOURCE_ID, store=world.store, secrets=world.secrets,
        clock=world.clock,
    )  # fmt: skip
    _register(world, ORG, SECRET)
    assert world.deliver(world.instance(), world.order())[0] == 200


def _register(world, org_id, secret):
    register_source(
        org_id=org_id, platform="shopify", address=SHOP, secret=secret,
        low_stock_threshold=None, store=world.store, secrets=world.secrets, clock=world.clock,
    )  # fmt: skip


def test_a_rotated_secret_verifies_at_once_on_an_instance_that_kept_the_old_one(world):
    kept = world.instance()
    assert world.deliver(kept, world.order())[0] == 200
    rotate_secret(
        org_id=ORG, source_id=SOURCE_ID, secret="shpss_rotated-secret", store=world.store,
        secrets=world.secrets, clock=world.clock,
    )  # fmt: skip
    status, answer = world.deliver(kept, world.order(), secret="shpss_rotated-secret")
    assert (status, answer.get("event")) == (200, "order.created")
    wrong = world.deliver(kept, world.order(), secret="shpss_never-registered")
    assert wrong == (401, {"error": "invalid_signature"})


def test_changed_settings_reach_a_warm_instance_within_fresh_for(world):
    kept = world.instance()
    assert world.deliver(kept, world.order())[0] == 200
    org = kept.recent.orgs.get(ORG, world.clock.now(), lambda: None)
    assert org[1] == "US"  # the default country the first delivery read
    patch_settings(
        org_id=ORG, changes={"defaultCountry": "GB"}, store=world.store, secrets=world.secrets,
        clock=world.clock,
    )  # fmt: skip
    world.clock.advance(seconds=FRESH_FOR.total_seconds())
    assert world.deliver(kept, world.order())[0] == 200
    assert kept.recent.orgs.get(ORG, world.clock.now(), lambda: None)[1] == "GB"


def test_last_seen_is_written_once_per_interval_not_per_delivery(world):
    publishing = world.instance()
    world.deliver(publishing, world.order())
    assert world.store.get(WEBHOOK_SOURCES, SOURCE_ID)["lastSeenAt"] == NOW
    world.clock.advance(seconds=SEEN_EVERY.total_seconds() - 1)
    world.deliver(publishing, world.order())
    assert world.store.get(WEBHOOK_SOURCES, SOURCE_ID)["lastSeenAt"] == NOW
    world.clock.advance(seconds=1)
    world.deliver(publishing, world.order())
    later = NOW + SEEN_EVERY
    assert world.store.get(WEBHOOK_SOURCES, SOURCE_ID)["lastSeenAt"] == later
    # Another instance reads the stored mark: it does not write again within the interval.
    world.clock.advance(seconds=60)
    world.deliver(world.instance(), world.order())
    assert world.store.get(WEBHOOK_SOURCES, SOURCE_ID)["lastSeenAt"] == later
    assert timedelta(seconds=60) < SEEN_EVERY
