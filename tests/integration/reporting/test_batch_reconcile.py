"""The batch reconcile (domain.md §9.3) against the per-order path, on both backends.

The reference is the reconcile as it was: `attribute_order` per order, with its own queries and
transaction. The batch must leave the same attribution, stats and summary documents, make the
same number of queries for 10 orders as for 200, and change nothing when it runs again.
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

import pytest

from playbook_core.domain.attribution import Order, attribution_id
from playbook_core.domain.collections import (
    ATTRIBUTIONS,
    CUSTOMERS,
    DELIVERIES,
    EVENT_LOG,
    ORDERS,
    SETTINGS,
    STATS,
    SUMMARIES,
)
from playbook_core.domain.errors import Unavailable
from playbook_core.ports import OrderBy, Where
from playbook_core.service.paging import iterate
from playbook_core.service.reporting import attribution, counters
from playbook_core.service.scheduling import daily_jobs
from playbook_core.testing import FrozenClock
from tests.bench.counting import CountingStore

ORG, OTHER = "org_batch", "org_other"
NOW = datetime(2026, 11, 24, 8, 5, tzinfo=UTC)  # 03:05 in New York: the reconcile's hour
PEOPLE = [
    ("cus_ann", "ann@example.com", "+14155550101"),
    ("cus_bob", "bob@example.com", "+14155550102"),
    ("cus_cy", "cy@example.com", "+14155550103"),
    ("cus_di", "di@example.com", "+14155550104"),
    ("cus_ed", "ed@example.com", "+14155550105"),  # touched only 8-9 days ago: never attributed
]
PLAYBOOKS = ("pb_a", "pb_b", "pb_c")


# --- the scenario ---------------------------------------------------------------------------------


def delivery(n, person, playbook, sent_at, shape, **extra):
    customer_id, email, phone = person
    sms = shape == "phone"
    return f"dlv_{n:04d}", {
        "orgId": ORG, "playbookId": playbook, "executionId": f"ev_{n}",
        "channel": "sms" if sms else "email", "status": "sent", "attributable": True,
        "customerFacing": True, "dryRun": False, "sentAt": sent_at,
        "customerId": customer_id if shape == "id" else None,
        "recipientEmail": None if sms else email, "recipientPhone": phone if sms else None,
        **extra,
    }  # fmt: skip


def seed(store, orders):  # noqa: C901, PLR0915 - one scenario, read top to bottom
    """Several customers' deliveries, `orders` recent orders in every state, older ones to
    finalise, webhook orders only the event log knows, and rolled-up stats to move."""
    store.set(SETTINGS, ORG, {"orgId": ORG, "timezone": "America/New_York", "currency": "USD"})
    store.set(CUSTOMERS, "cus_ann", {"orgId": ORG, "email": "ann@example.com"})
    store.set(CUSTOMERS, "cus_ann_dup", {"orgId": ORG, "email": "ann@example.com"})
    store.set(CUSTOMERS, "cus_bob", {"orgId": ORG, "email": "bob@example.com"})
    store.set(CUSTOMERS, "cus_aaa", {"orgId": OTHER, "email": "cy@example.com"})
    n = 0
    for p, person in enumerate(PEOPLE):
        for b, playbook in enumerate(PLAYBOOKS):
            for k in range(12):  # more than MAX_TOUCHES per identity
                if person[0] == "cus_ed":
                    sent = NOW - timedelta(days=8, hours=k + b)
                else:
                    sent = NOW - timedelta(hours=7 * k + 2 * b + p, minutes=13 * b)
                shape = ("email", "phone", "id")[(k + b) % 3]
                store.set(DELIVERIES, *delivery(n, person, playbook, sent, shape))
                n += 1
    ann, bob = PEOPLE[0], PEOPLE[1]
    tie = NOW - timedelta(hours=3)
    store.set(DELIVERIES, *delivery(900, ann, "pb_c", tie, "email"))  # a tie: the lower id wins
    store.set(DELIVERIES, *delivery(901, ann, "pb_b", tie, "email"))
    # Matched by the per-identity query but refused after it: each takes one of its 10 places.
    store.set(DELIVERIES, *delivery(902, bob, "pb_a", NOW - timedelta(hours=20), "email",
                                    status="failed"))  # fmt: skip
    store.set(DELIVERIES, *delivery(903, bob, "pb_a", NOW - timedelta(hours=21), "phone",
                                    dryRun=True))  # fmt: skip
    store.set(DELIVERIES, *delivery(904, bob, "pb_a", NOW - timedelta(hours=22), "id",
                                    attributable=False))  # fmt: skip
    other = delivery(905, bob, "pb_x", NOW - timedelta(minutes=90), "email")
    store.set(DELIVERIES, other[0], {**other[1], "orgId": OTHER})
    for i in range(orders):
        customer_id, email, phone = PEOPLE[i % len(PEOPLE)]
        at = NOW - timedelta(minutes=(97 * i) % (47 * 60) + 5)
        who = [{"email": email}, {"phone": phone}, {"id": customer_id, "email": email}][i % 3]
        order_id = f"ord_{i:04d}"
        store.set(ORDERS, order_id, {
            "brandId": ORG, "status": "paid", "currency": "USD", "createdAt": at,
            "total": f"{10 + i}.{i % 100:02d}", "customerId": who.get("id"),
            "customer": {k: v for k, v in who.items() if k != "id"},
        })  # fmt: skip
        doc_id = attribution_id(ORG, "app", order_id)
        base = {
            "id": doc_id, "orgId": ORG, "orderId": order_id, "orderSource": "app",
            "orderAt": at, "totalMinor": (10 + i) * 100 + i % 100, "currency": "USD",
            "customer": who, "finalAt": None, "windowDays": 7, "evenSplit": [],
            "createdAt": at, "refunds": {}, "refundedMinor": 0,
        }  # fmt: skip
        state = i % 6
        if state == 0:  # attributed live: never touched again
            store.set(ATTRIBUTIONS, doc_id, {**base, "status": "attributed", "localDate": "x"})
        elif state == 1:  # unattributed when it came: re-evaluated
            store.set(ATTRIBUTIONS, doc_id, {**base, "status": "unattributed"})
        elif state == 2:  # a partial refund came before the order: netted on re-evaluation
            refunds = {"r1": 300}
            store.set(ATTRIBUTIONS, doc_id, {**base, "status": "unattributed", "refunds": refunds,
                                             "refundedMinor": 300})  # fmt: skip
        elif state == 3 and i % 4 == 3:  # refunded in full before the order: void on arrival
            refunds = {"r1": 99_999}
            store.set(ATTRIBUTIONS, doc_id, {**base, "status": "unattributed", "refunds": refunds,
                                             "refundedMinor": 99_999})  # fmt: skip
        # else: the order.created event was lost: the reconcile finds the order missing
    # A partial refund came first with no order time: the scan by orderAt misses its document,
    # yet the order is known, so the reconcile leaves it to its order.created as before.
    store.set(ORDERS, "ord_placeholder", {
        "brandId": ORG, "currency": "USD", "createdAt": NOW - timedelta(hours=2), "total": "50",
        "customer": {"email": "ann@example.com"},
    })  # fmt: skip
    doc_id = attribution_id(ORG, "app", "ord_placeholder")
    store.set(ATTRIBUTIONS, doc_id, {
        "id": doc_id, "orgId": ORG, "orderId": "ord_placeholder", "orderSource": "app",
        "orderAt": None, "status": "unattributed", "finalAt": None, "refunds": {"r1": 100},
        "refundedMinor": 100, "evenSplit": [],
    })  # fmt: skip
    for i, who in enumerate([{"id": "cus_cy"}, {"email": "BOB@example.com"}]):
        at = NOW - timedelta(hours=4 + i)
        store.set(EVENT_LOG, f"evl_{i}", {
            "orgId": ORG, "eventId": f"shp_{i}", "name": "order.created", "receivedAt": at,
            "orderSummary": {"orderId": f"w{i}", "orderSource": "shopify",
                             "orderAt": at.isoformat(), "totalMinor": 4200 + i,
                             "currency": "USD", "customer": who},
        })  # fmt: skip
    for i in range(3):  # unattributed 50-60 h ago: made final; one of 8 days ago stays final
        at = NOW - timedelta(hours=50 + 4 * i)
        doc_id = attribution_id(ORG, "app", f"old_{i}")
        store.set(ATTRIBUTIONS, doc_id, {
            "id": doc_id, "orgId": ORG, "orderId": f"old_{i}", "orderSource": "app",
            "orderAt": at, "totalMinor": 1000, "currency": "USD", "status": "unattributed",
            "customer": {"email": "ann@example.com"}, "finalAt": None, "localDate": "y",
        })  # fmt: skip
    store.set(SUMMARIES, "pb_a", {
        "orgId": ORG, "playbookId": "pb_a", "throughDate": "2026-11-22",
        "last30": {"attributedOrders": 4, "attributedRevenueMinor": 9000},
    })  # fmt: skip
    store.set(STATS, counters.stats_id(ORG, "pb_b", "2026-11-22", counters.ALL), {
        "orgId": ORG, "playbookId": "pb_b", "date": "2026-11-22", "shard": counters.ALL,
        "attributedOrders": 1,
    })  # fmt: skip


def per_order_reconcile(store, clock):
    """The reconcile as it was before the batch: `attribute_order` per order."""
    org = attribution.org_rules(store, ORG)
    since = clock.now() - daily_jobs.RECENT
    recent = [
        Order(**{**daily_jobs._stored_order(doc.data), "org_id": ORG})
        for doc in iterate(store, ATTRIBUTIONS, [
            Where("orgId", "==", ORG), Where("status", "==", "unattributed"),
            Where("orderAt", ">=", since),
        ], [OrderBy("orderAt", "desc")], page_size=500)
        if doc.data.get("finalAt") is None
    ]  # fmt: skip
    outcomes = [attribution.attribute_order(o, store=store, clock=clock, org=org) for o in recent]
    for doc in list(iterate(store, ATTRIBUTIONS, [
        Where("orgId", "==", ORG), Where("status", "==", "unattributed"),
        Where("finalAt", "==", None), Where("orderAt", "<", since),
    ], page_size=500)):  # fmt: skip
        store.update(ATTRIBUTIONS, doc.id, {"finalAt": clock.now(), "updatedAt": clock.now()})
    orders = {o.id: o for o in daily_jobs._recent_orders(ORG, since, store)}
    known = store.get_many(ATTRIBUTIONS, list(orders))
    missing = [o for o in orders.values() if o.id not in known]
    late = [attribution.attribute_order(o, store=store, clock=clock, org=org) for o in missing]
    yesterday = "2026-11-23"
    counters.compact_day(store, org_id=ORG, local_date=yesterday, now=clock.now())
    counters.summarise(store, org_id=ORG, through_date=yesterday)
    return {
        "recentOrders": len(orders), "missing": len(missing),
        "attributedLate": sum(r["outcome"] == "attributed" for r in late),
        "reevaluated": len(recent),
        "attributedOnReevaluation": sum(r["outcome"] == "attributed" for r in outcomes),
        "compacted": yesterday,
    }  # fmt: skip


def snapshot(store):
    return {
        collection: {
            d.id: d.data
            for d in iterate(store, collection, [Where("orgId", "==", ORG)], page_size=500)
        }
        for collection in (ATTRIBUTIONS, STATS, SUMMARIES)
    }


def batch_reconcile(store):
    org = attribution.org_rules(store, ORG)
    return daily_jobs.reconcile(ORG, org, store=store, clock=FrozenClock(NOW))


# --- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_writes", [attribution.MAX_WRITES, 9], ids=["one-commit", "many"])
def test_the_batch_leaves_what_the_per_order_path_leaves(new_store, monkeypatch, max_writes):
    monkeypatch.setattr(attribution, "MAX_WRITES", max_writes)  # 9: several transactions
    reference, batch = new_store(), new_store()
    seed(reference, 40)
    seed(batch, 40)
    expected = per_order_reconcile(reference, FrozenClock(NOW))

    result = batch_reconcile(batch)

    assert {k: v for k, v in result.items() if k != "finalised"} == expected
    assert result["finalised"] == 3
    after = snapshot(batch)
    assert after == snapshot(reference)
    # The scenario reaches every branch: attributed late and on re-evaluation, left
    # unattributed (8 days), voided by an earlier full refund, netted by a partial one.
    statuses = [d["status"] for d in after[ATTRIBUTIONS].values()]
    assert expected["attributedLate"] > 3
    assert expected["attributedOnReevaluation"] > 3
    assert statuses.count("void") >= 1
    assert any(d["status"] == "unattributed" and d.get("customer", {}).get("id") == "cus_ed"
               for d in after[ATTRIBUTIONS].values())  # fmt: skip
    netted = [d for d in after[ATTRIBUTIONS].values() if d.get("refunds") == {"r1": 300}]
    assert any(d["status"] == "attributed" for d in netted)
    assert after[ATTRIBUTIONS][attribution_id(ORG, "app", "ord_placeholder")]["orderAt"] is None
    webhook = after[ATTRIBUTIONS][attribution_id(ORG, "shopify", "w1")]
    assert webhook["customer"]["id"] == "cus_bob"  # looked up by email, lowest id of the org
    shards = [d for d in after[STATS].values() if d["shard"] not in (counters.ALL, "recount")]
    assert any(d.get("attributedOrders", 0) >= 2 for d in shards)  # orders shared a shard


def test_the_queries_do_not_grow_with_the_orders_and_a_rerun_changes_nothing(new_store):
    made = {}
    for orders in (10, 200):
        store = CountingStore(new_store())
        seed(store.inner, orders)
        store.reset()
        result = batch_reconcile(store)
        made[orders] = store.totals.queries
        assert result["attributedLate"] + result["attributedOnReevaluation"] > orders // 4
    assert made[10] == made[200]

    before = snapshot(store.inner)
    again = batch_reconcile(store)
    assert (again["attributedLate"], again["attributedOnReevaluation"], again["finalised"]) == (
        0,
        0,
        0,
    )
    assert snapshot(store.inner) == before


class _Observing:
    """Records whether the cyclic collector ran at each query; fails queries once told to."""

    def __init__(self, inner):
        self.inner, self.collecting, self.fail = inner, [], False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def query(self, *args, **kwargs):
        self.collecting.append(gc.isenabled())
        if self.fail:
            raise Unavailable("the store went away")
        return self.inner.query(*args, **kwargs)


def test_the_collector_pauses_for_the_batch_and_resumes_however_it_ends(new_store):
    store = _Observing(new_store())
    seed(store.inner, 10)
    assert gc.isenabled()

    batch_reconcile(store)
    assert store.collecting
    assert not any(store.collecting)
    assert gc.isenabled()

    store.fail = True
    with pytest.raises(Unavailable):
        batch_reconcile(store)
    assert gc.isenabled()

    gc.disable()  # a caller's own choice stands
    try:
        store.fail = False
        batch_reconcile(store)
        assert not gc.isenabled()
    finally:
        gc.enable()
