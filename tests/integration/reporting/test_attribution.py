"""Attribution (domain.md §9) through the deployed entry points, on the embedded store.

Order events reach `on_order_event` as Pub/Sub pushes through functions-framework's own app; the
daily jobs run through `cron_playbooks /attribution`. Stats increments are observed at the
agreed `counters.bump` seam (a spy that calls through to service/reporting/counters.py).
"""

import base64
import itertools
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import functions_framework
import pytest

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.adapters.service_tokens import OidcToken
from playbook_core.config import Settings
from playbook_core.domain.attribution import attribution_id
from playbook_core.domain.collections import (
    ATTRIBUTIONS,
    CUSTOMER_DATES,
    CUSTOMERS,
    DELIVERIES,
    EVENT_LOG,
    JOB_RUNS,
    ORDERS,
    ORGANIZATIONS,
    SETTINGS,
    STATS,
)
from playbook_core.domain.envelope import Customer, EventEnvelope, Source
from playbook_core.domain.ids import h
from playbook_core.runtime import bootstrap
from playbook_core.service.reporting import counters
from playbook_core.service.scheduling import daily_jobs
from playbook_core.testing import FrozenClock

MAIN = str(Path(__file__).parents[3] / "functions" / "main.py")
ORG = "org_a"
EMAIL, PHONE = "ann@example.com", "+14155550100"
SENT = datetime(2026, 11, 10, 14, 0, tzinfo=UTC)  # the email
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # processing time: far after every order
_messages = itertools.count(1)


@pytest.fixture
def stats_calls(monkeypatch):
    """Every stats call attribution makes, passed through to service/reporting/counters.py."""
    calls = []
    for name in ("bump", "compact_day", "summarise"):
        real = getattr(counters, name)

        def spy(store, *, _name=name, _real=real, **kwargs):
            calls.append((_name, kwargs))
            return _real(store, **kwargs)

        monkeypatch.setattr(counters, name, spy)
    return calls


@pytest.fixture
def app(stats_calls):
    store = EmbeddedStore(":memory:")
    installed = bootstrap.App(
        Settings(backend="embedded", local_oidc=True),
        store,
        InProcessBus(),
        InProcessTaskQueue(),
        FrozenClock(NOW),
    )
    bootstrap.use(installed)
    store.set(SETTINGS, ORG, {"orgId": ORG, "timezone": "America/New_York"})
    yield installed
    bootstrap.use(None)
    installed.bus.close()
    installed.queue.close()
    store.close()


def totals(calls):
    """Σ of bumped counters per (playbook, counter)."""
    found = Counter()
    for name, kwargs in calls:
        if name == "bump":
            for counter, delta in kwargs["counters"].items():
                found[(kwargs["playbook_id"], counter)] += delta
    return {key: value for key, value in found.items() if value}


def deliver(app, delivery_id, *, playbook_id="pb_winback", sent_at=SENT, **identity):
    """A sent delivery as the send step leaves it (service/execution/deliveries.py `record_sent`)."""
    app.store.set(DELIVERIES, delivery_id, {
        "id": delivery_id, "orgId": ORG, "playbookId": playbook_id, "executionId": "ev_1",
        "channel": "sms" if "recipientPhone" in identity else "email", "status": "sent",
        "attributable": True, "customerFacing": True, "dryRun": False, "sentAt": sent_at,
        "recipientEmail": None, "recipientPhone": None, "customerId": None, **identity,
    })  # fmt: skip


def order_event(name, order_id="1001", *, order_at, customer=None, total="80.00", **data):
    kind = "shopify"
    transition = {"order.created": "created", "order.cancelled": "cancelled"}.get(name, name)
    return EventEnvelope(
        event_id="ord_" + h(ORG, kind, order_id, transition), org_id=ORG, name=name,
        occurred_at=order_at, received_at=NOW, source=Source(kind=kind, ref="shop.example.com"),
        customer=Customer(**(customer or {"email": EMAIL})),
        data={"orderId": order_id, "orderSource": kind, "orderAt": order_at.isoformat(),
              "total": total, "totalMinor": round(float(total) * 100), "currency": "USD",
              **data},
    )  # fmt: skip


def oidc(function, caller):
    """The caller's (unsigned, local) ID token, as the emulators attach it."""
    settings = bootstrap.app().settings
    token = OidcToken(settings.invoker(caller), settings.function_url(function))
    return {"Authorization": token.authorization("", time.time())}


def push(envelope, *, message_id=None):
    message = {
        "data": base64.b64encode(envelope.encode()).decode(),
        "attributes": envelope.attributes(),
        "messageId": message_id or str(next(_messages)),
    }
    client = functions_framework.create_app("on_order_event", MAIN, "cloudevent").test_client()
    response = client.post(
        "/",
        json={"message": message, "subscription": "playbook-attribution"},
        headers=oidc("on_order_event", "pubsub_push"),
    )
    assert response.status_code == 200, response.data
    return response


def attribution(order_id="1001", source="shopify"):
    return bootstrap.app().store.get(ATTRIBUTIONS, attribution_id(ORG, source, order_id))


# --- on_order_event ------------------------------------------------------------------------------


def test_an_order_three_days_after_the_email_is_attributed_once_even_when_redelivered(
    app, stats_calls
):
    deliver(app, "dlv_email", recipientEmail=EMAIL)
    created = order_event("order.created", order_at=SENT + timedelta(days=3))
    push(created, message_id="m1")
    push(created, message_id="m1")  # a Pub/Sub redelivery
    push(created, message_id="m2")  # the same order published twice
    doc = attribution()
    assert doc["status"] == "attributed"
    assert doc["lastTouch"]["playbookId"] == "pb_winback"
    assert doc["lastTouch"]["deliveryId"] == "dlv_email"
    assert doc["evenSplit"] == [
        {"playbookId": "pb_winback", "deliveryId": "dlv_email", "shareMinor": 8000}
    ]
    assert (doc["windowDays"], doc["localDate"]) == (7, "2026-11-13")
    assert totals(stats_calls) == {
        ("pb_winback", "attributedOrders"): 1,
        ("pb_winback", "attributedRevenueMinor"): 8000,
        ("pb_winback", "evenSplitRevenueMinor"): 8000,
    }
    [bump] = [kwargs for name, kwargs in stats_calls if name == "bump"]
    assert (bump["org_id"], bump["local_date"]) == (ORG, "2026-11-13")
    shard = counters.stats_id(
        ORG, "pb_winback", "2026-11-13", counters.shard_of(bump["shard_seed"])
    )
    stored = app.store.get(STATS, shard)
    assert (stored["attributedOrders"], stored["attributedRevenueMinor"]) == (1, 8000)


def test_an_order_eight_days_after_the_email_is_not_attributed(app, stats_calls):
    deliver(app, "dlv_email", recipientEmail=EMAIL)
    push(order_event("order.created", order_at=SENT + timedelta(days=8)))
    assert attribution()["status"] == "unattributed"
    assert totals(stats_calls) == {}


def test_the_window_is_the_orgs_setting(app):
    app.store.set(SETTINGS, ORG, {"orgId": ORG, "attributionWindowDays": 10})
    deliver(app, "dlv_email", recipientEmail=EMAIL)
    push(order_event("order.created", order_at=SENT + timedelta(days=8)))
    assert (attribution()["status"], attribution()["windowDays"]) == ("attributed", 10)


@pytest.mark.parametrize(
    ("identity", "customer"),
    [
        ({"recipientEmail": EMAIL}, {"email": EMAIL.upper()}),
        ({"recipientPhone": PHONE}, {"phone": PHONE}),
        ({"customerId": "cus_1", "recipientEmail": "other@example.com"}, {"id": "cus_1"}),
    ],
    ids=["email", "phone", "customer-id"],
)
def test_identity_by_email_phone_or_customer_id(app, identity, customer):
    deliver(app, "dlv_1", **identity)
    deliver(app, "dlv_stranger", recipientEmail="someone@example.com", sent_at=SENT)
    push(order_event("order.created", order_at=SENT + timedelta(days=1), customer=customer))
    assert attribution()["lastTouch"]["deliveryId"] == "dlv_1"


def test_a_webhook_order_finds_the_customer_id_from_its_email(app):
    app.store.set(CUSTOMERS, "cus_9", {"orgId": ORG, "email": EMAIL})
    deliver(app, "dlv_sms", customerId="cus_9", recipientPhone="+14155550199")
    push(order_event("order.created", order_at=SENT + timedelta(hours=5)))
    assert attribution()["lastTouch"]["deliveryId"] == "dlv_sms"
    assert attribution()["customer"] == {"id": "cus_9", "email": EMAIL}


def test_order_updates_and_other_events_are_acknowledged_without_effect(app, stats_calls):
    deliver(app, "dlv_email", recipientEmail=EMAIL)
    push(order_event("order.updated", order_at=SENT + timedelta(days=1)))
    push(order_event("order.completed", order_at=SENT + timedelta(days=1)))
    assert attribution() is None
    assert stats_calls == []


def test_a_cancelled_order_voids_and_reverses_once(app, stats_calls):
    deliver(app, "dlv_email", recipientEmail=EMAIL)
    order_at = SENT + timedelta(days=2)
    push(order_event("order.created", order_at=order_at))
    push(order_event("order.cancelled", order_at=order_at))
    push(order_event("order.cancelled", order_at=order_at), message_id="again")
    assert attribution()["status"] == "void"
    assert attribution()["voidReason"] == "cancelled"
    assert totals(stats_calls) == {}  # +1 and −1: reversed exactly once
    assert sum(1 for name, _ in stats_calls if name == "bump") == 2


def test_a_cancel_before_the_order_arrives_keeps_the_late_creation_from_counting(app, stats_calls):
    deliver(app, "dlv_email", recipientEmail=EMAIL)
    order_at = SENT + timedelta(days=2)
    push(order_event("order.cancelled", order_at=order_at))
    push(order_event("order.created", order_at=order_at))
    assert attribution()["status"] == "void"
    assert stats_calls == []


def test_a_partial_refund_lowers_revenue_once_per_refund_id(app, stats_calls):
    deliver(app, "dlv_email", recipientEmail=EMAIL)
    order_at = SENT + timedelta(days=2)
    push(order_event("order.created", order_at=order_at))
    refund = EventEnvelope(
        event_id="shp_refund_1", org_id=ORG, name="order.refunded", occurred_at=NOW,
        received_at=NOW, source=Source(kind="shopify", ref="shop.example.com"),
        data={"orderId": "1001", "orderSource": "shopify", "refundId": "r1",
              "refundTotal": "30.00", "refundTotalMinor": 3000, "currency": "USD"},
    )  # fmt: skip
    push(refund)
    push(refund, message_id="again")
    doc = attribution()
    assert (doc["status"], doc["refunds"], doc["refundedMinor"]) == (
        "attributed",
        {"r1": 3000},
        3000,
    )
    assert totals(stats_calls)[("pb_winback", "attributedRevenueMinor")] == 5000
    assert totals(stats_calls)[("pb_winback", "attributedOrders")] == 1


# --- the daily jobs --------------------------------------------------------------------------------


def cron(path="/attribution"):
    client = functions_framework.create_app("cron_playbooks", MAIN, "http").test_client()
    response = client.post(path, headers=oidc("cron_playbooks", "cloud_scheduler"))
    assert response.status_code == 200, response.data
    return response.get_json()


def at_local(app, hour):
    """Move the clock to `hour`:05 New York time on 24 Nov 2026 (EST, UTC−5)."""
    app.clock.current = datetime(2026, 11, 24, hour + 5, 5, tzinfo=UTC)
    return app.clock.current


def test_reconcile_attributes_late_orders_and_deliveries_and_finalises_old_ones(app, stats_calls):
    now = at_local(app, 3)
    recent = now - timedelta(hours=5)
    # 1) processed before its delivery was committed: unattributed, then the delivery lands.
    push(order_event("order.created", "late_delivery", order_at=recent))
    assert attribution("late_delivery")["status"] == "unattributed"
    deliver(app, "dlv_late", recipientEmail=EMAIL, sent_at=recent - timedelta(hours=1))
    # 2) an app order whose event never arrived (back-filled by a POS sync, say).
    app.store.set(ORDERS, "pos_77", {
        "brandId": ORG, "createdAt": recent, "total": 25, "customer": {"email": EMAIL},
    })  # fmt: skip
    # 3) a webhook order known only from the event log's orderSummary (customer id only).
    deliver(app, "dlv_cid", customerId="cus_5", sent_at=recent - timedelta(hours=2))
    app.store.set(EVENT_LOG, "evl_1", {
        "orgId": ORG, "eventId": "shp_9", "name": "order.created", "receivedAt": recent,
        "orderSummary": {"orderId": "9", "orderSource": "woocommerce",
                         "orderAt": recent.isoformat(), "totalMinor": 1200, "currency": "USD",
                         "customer": {"id": "cus_5"}},
    })  # fmt: skip
    # 4) an unattributed order from four days ago becomes final.
    push(order_event("order.created", "old", order_at=now - timedelta(days=4)))
    assert attribution("old")["finalAt"] is None

    result = cron()

    assert result["ran"] == [f"{ORG}:attribution"]
    assert attribution("late_delivery")["status"] == "attributed"
    assert attribution("pos_77", "app")["lastTouch"]["deliveryId"] == "dlv_late"
    assert attribution("pos_77", "app")["totalMinor"] == 2500
    assert attribution("9", "woocommerce")["lastTouch"]["deliveryId"] == "dlv_cid"
    assert attribution("old")["finalAt"] == now
    run = app.store.get(JOB_RUNS, h(ORG, "attribution", "2026-11-24"))
    assert run["status"] == "done"
    assert run["result"]["finalised"] == 1
    assert run["result"]["missing"] == 2
    rollups = [(n, k) for n, k in stats_calls if n in ("compact_day", "summarise")]
    assert rollups == [
        ("compact_day", {"org_id": ORG, "local_date": "2026-11-23", "now": now}),
        ("summarise", {"org_id": ORG, "through_date": "2026-11-23"}),
    ]
    # A final unattributed order is never evaluated again, even by a redelivered event.
    deliver(app, "dlv_old", recipientEmail=EMAIL, sent_at=now - timedelta(days=5))
    push(order_event("order.created", "old", order_at=now - timedelta(days=4)))
    assert attribution("old")["status"] == "unattributed"


def test_the_job_run_guard_makes_a_second_hourly_call_a_no_op(app, stats_calls):
    at_local(app, 2)
    assert cron()["ran"] == []  # before 03:00 local: nothing is due
    at_local(app, 3)
    assert cron()["ran"] == [f"{ORG}:attribution"]
    calls = len(stats_calls)
    second = cron()
    assert (second["ran"], second["alreadyRan"]) == ([], 1)
    assert len(stats_calls) == calls


def test_the_lifecycle_sweep_publishes_the_three_events_once_per_day(app):
    app.store.set(ORGANIZATIONS, ORG, {"createdAt": datetime(2026, 11, 21, 15, tzinfo=UTC)})
    app.store.set(CUSTOMER_DATES, "b1", {
        "orgId": ORG, "customerId": "cus_b", "field": "birthday", "monthDay": "11-24",
        "email": EMAIL,
    })  # fmt: skip
    app.store.set(CUSTOMER_DATES, "i1", {
        "orgId": ORG, "customerId": "cus_i", "field": "lastOrder", "monthDay": "10-25",
        "date": "2026-10-25",
    })  # fmt: skip
    app.store.set(CUSTOMER_DATES, "x1", {
        "orgId": "org_other", "customerId": "cus_x", "field": "birthday", "monthDay": "11-24",
    })  # fmt: skip
    at_local(app, 5)
    assert cron()["ran"] == [f"{ORG}:attribution"]
    assert not app.bus.published
    at_local(app, 6)
    assert cron()["ran"] == [f"{ORG}:lifecycle"]
    at_local(app, 9)
    assert cron()["ran"] == []
    published = [json.loads(m.data) for _, m in app.bus.published]
    assert sorted(e["name"] for e in published) == [
        "customer.30_day_inactive", "customer.birthday", "owner.day3",
    ]  # fmt: skip
    ids = {e["name"]: e["eventId"] for e in published}
    assert ids["owner.day3"] == "swp_" + h("owner.day3", ORG, "", "2026-11-24")
    assert ids["customer.birthday"] == "swp_" + h("customer.birthday", ORG, "cus_b", "2026")
    assert ids["customer.30_day_inactive"] == "swp_" + h(
        "customer.30_day_inactive", ORG, "cus_i", "2026-10-25"
    )
    birthday = next(e for e in published if e["name"] == "customer.birthday")
    assert birthday["customer"] == {"id": "cus_b", "email": EMAIL}
    assert {e["orgId"] for e in published} == {ORG}


def test_a_failing_job_releases_its_guard_for_the_next_tick(app, monkeypatch):
    at_local(app, 3)

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(daily_jobs, "reconcile", broken)
    assert cron()["failed"] == [f"{ORG}:attribution"]
    assert app.store.get(JOB_RUNS, h(ORG, "attribution", "2026-11-24")) is None


def test_two_playbooks_share_the_even_split_in_one_transaction(app, stats_calls):
    deliver(app, "dlv_old", playbook_id="pb_welcome", recipientEmail=EMAIL)
    deliver(app, "dlv_new", playbook_id="pb_winback", recipientPhone=PHONE,
            sent_at=SENT + timedelta(hours=1))  # fmt: skip
    customer = {"email": EMAIL, "phone": PHONE}
    push(order_event("order.created", order_at=SENT + timedelta(days=1), customer=customer,
                     total="80.01"))  # fmt: skip
    assert totals(stats_calls) == {
        ("pb_winback", "attributedOrders"): 1,
        ("pb_winback", "attributedRevenueMinor"): 8001,
        ("pb_winback", "evenSplitRevenueMinor"): 4001,
        ("pb_welcome", "evenSplitRevenueMinor"): 4000,
    }
    day = "2026-11-11"
    seed = attribution_id(ORG, "shopify", "1001")
    for playbook_id, share in (("pb_winback", 4001), ("pb_welcome", 4000)):
        shard = counters.stats_id(ORG, playbook_id, day, counters.shard_of(seed))
        assert app.store.get(STATS, shard)["evenSplitRevenueMinor"] == share
