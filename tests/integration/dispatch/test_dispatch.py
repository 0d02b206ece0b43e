"""Dispatch (domain.md §5.5) over the embedded store and the in-process task queue."""

import json
import logging
from datetime import UTC, datetime

import pytest

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.ids import RandomIds
from playbook_core.adapters.inprocess import InProcessTaskQueue
from playbook_core.domain.collections import (
    CUSTOMERS,
    EVENT_LOG,
    EXECUTIONS,
    LISTENERS,
    ORGANIZATIONS,
    SETTINGS,
)
from playbook_core.domain.envelope import Causation, Customer, EventEnvelope, Source
from playbook_core.domain.errors import Unavailable
from playbook_core.domain.executions import event_execution_id
from playbook_core.domain.ids import h
from playbook_core.domain.loading import load_data
from playbook_core.domain.sync import listener_id
from playbook_core.ports import QueueConfig
from playbook_core.runtime.cloudevents import PubsubMessage
from playbook_core.service.authoring import playbooks
from playbook_core.service.authoring.playbooks import Authoring
from playbook_core.service.dispatch.dispatcher import dispatch_message
from playbook_core.service.execution.run_start import Runs, StepTarget
from playbook_core.testing import FrozenClock, RecordingServer
from tests.bench.counting import CountingStore

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ORG, OTHER = "org_a", "org_b"
NOTIFY = {
    "action": "notify",
    "params": {"channel": "dashboard", "to": "role:admin", "message": "hi"},
}


class World:
    def __init__(self, store, queue, target, clock):
        self.store, self.queue, self.target, self.clock = store, queue, target, clock
        self.deliveries = 0

    def playbook(self, playbook_id, *triggers, org=ORG, status="active"):
        definition = {
            "name": playbook_id,
            "agent": "craig",
            "triggers": list(triggers),
            "steps": [NOTIFY],
        }
        return playbooks.create_playbook(
            org_id=org, validated=load_data(definition), actor="uid_test", source={"kind": "user"},
            reason="create", authoring=Authoring(store=self.store, clock=self.clock, ids=RandomIds()),
            playbook_id=playbook_id, status=status,
        )  # fmt: skip

    def deliver(self, envelope, *, message_id=None, data=None, attributes=None):
        self.deliveries += 1
        message = PubsubMessage(
            message_id=message_id or f"m{self.deliveries}",
            attributes=envelope.attributes() if attributes is None else attributes,
            data=envelope.encode() if data is None else data,
        )
        return dispatch_message(
            message,
            runs=Runs(store=self.store, queue=self.queue, target=self.target, clock=self.clock),
        )

    def executions(self, org=ORG):
        return {
            d.id: d.data
            for d in self.store.query(EXECUTIONS, limit=1000).docs
            if d.data["orgId"] == org
        }

    def log(self, event_id, org=ORG):
        return self.store.get(EVENT_LOG, "evl_" + h(org, event_id))


def on(event_name, trigger_id="on_event", **filters):
    trigger = {"id": trigger_id, "type": "event", "eventName": event_name}
    return {**trigger, "filters": [filters]} if filters else trigger


def event(name, event_id="e1", org=ORG, *, kind="api", data=None, customer=None, **extra):
    return EventEnvelope(
        event_id=event_id, org_id=org, name=name, occurred_at=NOW, received_at=NOW,
        source=Source(kind=kind, ref="shop.example.com" if kind != "api" else "system"),
        data=data or {}, customer=customer, **extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def step_server():
    """Stands in for execute_step: the queue pushes each enqueued task here over HTTP."""
    server = RecordingServer().start()
    yield server
    server.stop()


@pytest.fixture
def world(step_server):
    step_server.requests.clear()
    store = EmbeddedStore(":memory:")
    for org in (ORG, OTHER):  # the existing app's org registry (§5.5 step 2)
        store.set(ORGANIZATIONS, org, {"name": org})
    queue = InProcessTaskQueue()
    queue.create_queue(QueueConfig("playbook-steps"))
    target = StepTarget(queue="playbook-steps", url=f"{step_server.url}/execute_step/")
    yield World(store, queue, target, FrozenClock(NOW))
    queue.drain()
    queue.close()
    store.close()


def outcomes(result):
    return {m["playbookId"]: m["outcome"] for m in result["matches"]}


# --- executions and tasks ------------------------------------------------------------------------


def test_signup_creates_one_queued_execution_per_listening_playbook_and_enqueues_step_0(
    world, step_server
):
    world.playbook("pb_welcome", on("customer.signup"))
    world.playbook("pb_alias", on("customer.created", "signup_alias"))
    world.playbook("pb_orders", on("order.created"))

    result = world.deliver(event("customer.created"))

    assert result["outcome"] == "dispatched"
    assert outcomes(result) == {"pb_welcome": "execution_created", "pb_alias": "execution_created"}
    executions = world.executions()
    assert set(executions) == {
        event_execution_id("e1", "pb_welcome"),
        event_execution_id("e1", "pb_alias"),
    }
    run = executions[event_execution_id("e1", "pb_alias")]
    assert run["status"] == "queued"
    assert run["playbookVersion"] == 1
    assert run["trigger"] == {
        "type": "event",
        "triggerId": "signup_alias",
        "eventId": "e1",
        "eventName": "customer.signup",
    }
    assert run["causation"] == {"eventId": "e1", "chain": [], "depth": 0}
    assert run["firstTaskEnqueuedAt"] == NOW
    assert run["event"]["name"] == "customer.signup"
    assert run["event"]["originalName"] == "customer.created"
    bodies = sorted(
        (t.body["executionId"], t.body["stepIndex"], t.body["attempt"])
        for t in world.queue.enqueued
    )
    assert bodies == sorted((execution_id, 0, 1) for execution_id in executions)
    assert {t.url for t in world.queue.enqueued} == {world.target.url}
    world.queue.drain()
    pushed = sorted(json.loads(r.body)["executionId"] for r in step_server.requests)
    assert pushed == sorted(executions)
    log = world.log("e1")
    assert log["outcome"] == "dispatched"
    assert log["name"] == "customer.signup"
    assert log["originalName"] == "customer.created"


def test_order_created_reaches_only_order_created_listeners(world):
    world.playbook("pb_welcome", on("customer.signup"))
    world.playbook("pb_orders", on("order.created"))

    result = world.deliver(event("order.created", data={"orderId": "1001", "total": "25.00"}))

    assert outcomes(result) == {"pb_orders": "execution_created"}
    assert list(world.executions()) == [event_execution_id("e1", "pb_orders")]
    assert len(world.queue.enqueued) == 1


def test_a_redelivered_message_or_a_republished_event_creates_and_enqueues_nothing(world):
    world.playbook("pb_orders", on("order.created"))
    envelope = event("order.created")
    world.deliver(envelope, message_id="m-1")

    redelivered = world.deliver(envelope, message_id="m-1")
    republished = world.deliver(envelope, message_id="m-2")

    for result in (redelivered, republished):
        assert result["outcome"] == "not_dispatched"
        assert result["matches"] == [
            {
                "playbookId": "pb_orders",
                "outcome": "duplicate_event",
                "executionId": event_execution_id("e1", "pb_orders"),
            }
        ]
    assert len(world.executions()) == 1
    assert len(world.queue.enqueued) == 1
    # The log keeps what the first dispatch did: "why did it run" is answered by that one.
    assert world.log("e1")["outcome"] == "dispatched"
    assert world.log("e1")["matches"][0]["outcome"] == "execution_created"


@pytest.mark.parametrize("listening", [1, 5])
def test_org_facts_are_read_once_per_event_however_many_playbooks_match(world, listening):
    for n in range(listening):
        world.playbook(f"pb_{n}", on("order.created"))
    counted = CountingStore(world.store)
    with counted.measure() as counts:
        result = dispatch_message(
            PubsubMessage("m1", event("order.created").attributes(), event("order.created").encode()),
            runs=Runs(store=counted, queue=world.queue, target=world.target, clock=world.clock),
        )  # fmt: skip
    assert [m["outcome"] for m in result["matches"]] == ["execution_created"] * listening
    # The organization (registry and zone) and the settings: once each, not once per run.
    assert counts.by_collection["read organizations"] == 1
    assert counts.by_collection["read playbook_settings"] == 1


def test_order_completed_runs_a_playbook_listening_to_both_names_exactly_once(world):
    world.playbook("pb_both", on("order.completed", "done"), on("order.post_purchase", "after"))
    world.playbook("pb_post", on("order.post_purchase"))
    world.playbook("pb_done", on("order.completed"))

    result = world.deliver(event("order.completed"))

    assert [m["playbookId"] for m in result["matches"]].count("pb_both") == 1
    assert outcomes(result) == {
        "pb_both": "execution_created",
        "pb_post": "execution_created",
        "pb_done": "execution_created",
    }
    assert len(world.executions()) == 3
    assert len(world.queue.enqueued) == 3
    assert world.executions()[event_execution_id("e1", "pb_both")]["trigger"]["triggerId"] == "done"


def test_order_post_purchase_does_not_reach_order_completed_listeners(world):
    world.playbook("pb_post", on("order.post_purchase"))
    world.playbook("pb_done", on("order.completed"))

    result = world.deliver(event("order.post_purchase"))

    assert outcomes(result) == {"pb_post": "execution_created"}


def test_filters_decide_per_event(world):
    world.playbook("pb_big", on("order.completed", path="data.total", op="gte", value=20))

    small = world.deliver(event("order.completed", "e_small", data={"total": "19.99"}))
    big = world.deliver(event("order.completed", "e_big", data={"total": "20.00"}))

    assert small["outcome"] == "not_dispatched"
    assert outcomes(small) == {"pb_big": "filtered"}
    assert world.log("e_small")["matches"] == [{"playbookId": "pb_big", "outcome": "filtered"}]
    assert outcomes(big) == {"pb_big": "execution_created"}
    assert list(world.executions()) == [event_execution_id("e_big", "pb_big")]


# --- what does not run ---------------------------------------------------------------------------


def test_paused_playbooks_do_not_run(world):
    world.playbook("pb_orders", on("order.created"))
    playbooks.change_status(
        org_id=ORG, playbook_id="pb_orders", operation="toggle_off", actor="uid_test",
        store=world.store, clock=world.clock,
    )  # fmt: skip

    result = world.deliver(event("order.created"))

    assert result["outcome"] == "no_listeners"
    assert world.log("e1")["outcome"] == "no_listeners"
    assert world.executions() == {}


def test_a_stale_active_listener_of_a_paused_playbook_is_logged_inactive(world):
    world.playbook("pb_orders", on("order.created"), status="paused")
    world.store.update(LISTENERS, listener_id("pb_orders", "order.created"), {"status": "active"})

    result = world.deliver(event("order.created"))

    assert result["outcome"] == "not_dispatched"
    assert result["matches"] == [
        {"playbookId": "pb_orders", "outcome": "playbook_inactive", "reason": "paused"}
    ]
    assert world.executions() == {}


def test_another_orgs_listener_is_never_matched(world):
    world.playbook("pb_theirs", on("order.created"), org=OTHER)

    result = world.deliver(event("order.created"))

    assert result["outcome"] == "no_listeners"
    assert world.executions(OTHER) == {}
    assert world.log("e1", org=OTHER) is None


def test_a_listener_pointing_at_another_orgs_playbook_is_refused_and_alerted(world, caplog):
    world.playbook("pb_theirs", on("order.created"), org=OTHER)
    world.store.set(
        LISTENERS, "forged",
        {"orgId": ORG, "playbookId": "pb_theirs", "eventName": "order.created", "triggerIds": ["on_event"], "status": "active"},
    )  # fmt: skip

    with caplog.at_level(logging.INFO, logger="playbooks.dispatch"):
        result = world.deliver(event("order.created"))

    assert result["matches"] == [{"playbookId": "pb_theirs", "outcome": "tenant_mismatch"}]
    assert world.executions(OTHER) == {}
    assert len(world.queue.enqueued) == 0
    alerts = [r for r in caplog.records if r.levelname == "ALERT"]
    assert alerts
    assert alerts[0].fields["security_event"] == "dispatch_tenant_mismatch"


@pytest.mark.parametrize(
    ("chain", "depth", "expected"),
    [
        (["pb_emitter"], 1, "execution_created"),
        (["pb_x", "pb_loop"], 2, "loop_blocked"),
        (["pb_a", "pb_b", "pb_c"], 3, "loop_blocked"),
    ],
)
def test_loop_guard_blocks_chains_that_revisit_a_playbook_or_go_three_deep(
    world, chain, depth, expected
):
    world.playbook("pb_loop", on("menu.import_complete"))

    result = world.deliver(
        event(
            "menu.import_complete", kind="playbook", causation=Causation(chain=chain, depth=depth)
        )
    )

    assert outcomes(result) == {"pb_loop": expected}
    if expected == "execution_created":
        run = world.executions()[event_execution_id("e1", "pb_loop")]
        assert run["causation"] == {"eventId": "e1", "chain": chain, "depth": depth}
    else:
        assert world.executions() == {}


# --- customers -----------------------------------------------------------------------------------


def test_a_webhook_event_with_an_email_creates_the_customer_once_and_carries_its_id(world):
    world.playbook("pb_orders", on("order.created"))
    shopper = Customer(
        email="new@example.com", external_id="999", first_name="New", phone="+14155550100"
    )

    world.deliver(event("order.created", "e1", kind="shopify", customer=shopper))
    world.deliver(event("order.created", "e2", kind="shopify", customer=shopper))

    customer_id = "cus_" + h(ORG, "new@example.com")
    customers = world.store.query(CUSTOMERS, limit=10).docs
    assert [d.id for d in customers] == [customer_id]
    stored = customers[0].data
    assert stored["orgId"] == ORG
    assert stored["email"] == "new@example.com"
    assert stored["source"] == "ecommerce"
    assert stored["ecommerceIds"] == {"shopify": "999"}
    assert stored["createdBy"] == "playbooks"
    runs = world.executions()
    assert {r["customer"]["id"] for r in runs.values()} == {customer_id}
    assert {r["customer"]["identityKey"] for r in runs.values()} == {f"cid:{customer_id}"}
    log = world.log("e2")
    assert log["customerId"] == customer_id
    assert log["identityHash"] == h(f"cid:{customer_id}")
    assert "new@example.com" not in str(log)


def test_an_api_event_never_creates_a_customer_and_keys_on_the_email(world):
    world.playbook("pb_signup", on("customer.signup"))

    world.deliver(event("customer.signup", customer=Customer(email="who@example.com")))

    assert world.store.query(CUSTOMERS, limit=10).docs == []
    (run,) = world.executions().values()
    assert run["customer"] == {"email": "who@example.com", "identityKey": "em:who@example.com"}


def test_stored_names_and_consent_are_merged_and_platform_consent_is_written_back(world):
    world.playbook(
        "pb_orders", on("order.created", path="customer.consent.email", op="eq", value=True)
    )
    world.store.set(
        CUSTOMERS, "cus_existing",
        {"orgId": ORG, "email": "avery@example.com", "name": "Avery Johnson", "birthday": "1990-05-01",
         "consent": {"email": False, "sms": True}},
    )  # fmt: skip
    shopper = Customer(email="avery@example.com", consent={"email": True})

    result = world.deliver(
        event("order.created", kind="shopify", customer=shopper, dedupe_key="order-1001")
    )

    assert outcomes(result) == {"pb_orders": "execution_created"}
    (run,) = world.executions().values()
    assert run["customer"] == {
        "id": "cus_existing", "email": "avery@example.com", "firstName": "Avery", "lastName": "Johnson",
        "birthday": "1990-05-01", "consent": {"email": True, "sms": True}, "dedupeKey": "order-1001",
        "identityKey": "dk:order-1001",
    }  # fmt: skip
    assert run["event"]["customer"]["id"] == "cus_existing"
    assert world.store.get(CUSTOMERS, "cus_existing")["consent"] == {"email": True, "sms": True}
    assert len(world.store.query(CUSTOMERS, limit=10).docs) == 1


def test_a_customer_of_another_org_with_the_same_email_is_not_used(world):
    world.playbook("pb_orders", on("order.created"))
    world.store.set(
        CUSTOMERS, "cus_theirs", {"orgId": OTHER, "email": "same@example.com", "firstName": "Them"}
    )

    world.deliver(
        event("order.created", kind="woocommerce", customer=Customer(email="same@example.com"))
    )

    (run,) = world.executions().values()
    assert run["customer"]["id"] == "cus_" + h(ORG, "same@example.com")
    assert "firstName" not in run["customer"]


# --- event log -----------------------------------------------------------------------------------


def test_an_unknown_event_name_is_logged_and_acknowledged(world):
    result = world.deliver(event("order.exploded"))

    assert result["outcome"] == "unknown_event"
    assert world.log("e1")["outcome"] == "unknown_event"


def test_an_event_of_an_org_that_no_longer_exists_is_logged_unknown_org_and_runs_nothing(
    world, caplog
):
    world.playbook("pb_orders", on("order.created"))
    world.store.delete(ORGANIZATIONS, ORG)  # deleted in the existing app; its playbooks remain
    shopper = Customer(email="late@example.com", external_id="7")

    with caplog.at_level(logging.INFO, logger="playbooks.dispatch"):
        result = world.deliver(event("order.created", kind="shopify", customer=shopper))

    assert (result["outcome"], result["matches"]) == ("unknown_org", [])
    log = world.log("e1")
    assert (log["outcome"], log["matches"], log["orgId"]) == ("unknown_org", [], ORG)
    assert world.executions() == {}
    assert len(world.queue.enqueued) == 0
    assert world.store.query(CUSTOMERS, limit=10).docs == []  # nor is its customer created
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.getMessage() == "event for an unknown org acknowledged"
    assert (warning.fields["orgId"], warning.fields["eventId"]) == (ORG, "e1")


def test_an_org_known_only_by_its_playbook_settings_is_unknown(world):
    # Settings outlive an org deleted in the existing app: only `organizations` says it exists.
    world.store.set(SETTINGS, "org_gone", {"orgId": "org_gone", "timezone": "UTC"})
    world.playbook("pb_gone", on("order.created"), org="org_gone")

    result = world.deliver(event("order.created", org="org_gone"))

    assert result["outcome"] == "unknown_org"
    assert world.executions("org_gone") == {}


def test_an_invalid_envelope_is_logged_under_the_attribute_org_and_acknowledged(world):
    attributes = {"orgId": ORG, "eventId": "bad_1", "name": "order.created"}

    result = world.deliver(
        event("order.created"), data=b'{"specVersion": "1"}', attributes=attributes
    )
    unfiled = world.deliver(event("order.created"), data=b"not json", attributes={})

    assert result["outcome"] == "invalid_envelope"
    assert world.log("bad_1")["outcome"] == "invalid_envelope"
    assert unfiled["outcome"] == "invalid_envelope"
    assert len(world.store.query(EVENT_LOG, limit=10).docs) == 1


def test_order_events_keep_an_order_summary_without_contact_details(world):
    data = {
        "orderId": "1001",
        "orderSource": "shopify",
        "orderAt": "2026-11-24T11:00:00Z",
        "totalMinor": 2500,
        "currency": "USD",
    }

    world.deliver(
        event("order.created", kind="shopify", data=data, customer=Customer(email="o@example.com"))
    )

    summary = world.log("e1")["orderSummary"]
    assert summary == {
        "orderId": "1001", "orderSource": "shopify", "orderAt": "2026-11-24T11:00:00Z", "totalMinor": 2500,
        "currency": "USD", "customer": {"id": "cus_" + h(ORG, "o@example.com")},
    }  # fmt: skip


def test_the_received_message_is_logged_with_its_ids(world, caplog):
    with caplog.at_level(logging.INFO, logger="playbooks.dispatch"):
        world.deliver(event("order.created"), message_id="msg-42")

    (line,) = [r for r in caplog.records if r.getMessage() == "event message received"]
    assert line.fields == {
        "messageId": "msg-42",
        "eventId": "e1",
        "eventName": "order.created",
        "orgId": ORG,
    }


# --- failures make Pub/Sub redeliver -------------------------------------------------------------


class FailingStore:
    """The store, except that one operation fails as Firestore does when it is unavailable."""

    def __init__(self, store, operation):
        self._store, self._operation = store, operation

    def __getattr__(self, name):
        if name == self._operation:
            raise Unavailable("firestore is down")
        return getattr(self._store, name)


@pytest.mark.parametrize("operation", ["query", "get_many", "create", "set"])
def test_a_storage_failure_raises_so_pub_sub_redelivers(world, operation):
    world.playbook("pb_orders", on("order.created"))
    real = world.store
    world.store = FailingStore(real, operation)

    with pytest.raises(Unavailable):
        world.deliver(event("order.created"))

    world.store = real
    assert world.log("e1") is None
    if operation != "set":  # `set` is the event log itself: the run and its task came first
        assert world.executions() == {}
        assert len(world.queue.enqueued) == 0


def test_a_queue_failure_raises_and_the_redelivery_heals_the_run(world):
    world.playbook("pb_orders", on("order.created"))
    working = world.queue
    world.queue = InProcessTaskQueue()
    world.queue.create_queue(QueueConfig("playbook-steps"))
    world.queue.close()

    with pytest.raises(Unavailable):
        world.deliver(event("order.created"))
    stuck = world.executions()[event_execution_id("e1", "pb_orders")]
    assert "firstTaskEnqueuedAt" not in stuck
    assert world.log("e1") is None

    world.queue = working
    result = world.deliver(event("order.created"))

    assert outcomes(result) == {"pb_orders": "duplicate_event"}
    assert [t.body["executionId"] for t in working.enqueued] == [
        event_execution_id("e1", "pb_orders")
    ]
    assert world.executions()[event_execution_id("e1", "pb_orders")]["firstTaskEnqueuedAt"] == NOW
