"""The batch candidates (domain.md §9.3) are exactly what the per-identity queries return."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from playbook_core.domain import attribution as rules
from playbook_core.domain.attribution import Order

AT = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
EMAILS, PHONES, IDS = ["a@x.com", "b@x.com"], ["+14155550101", "+14155550102"], ["c1", "c2"]


def query(deliveries, field, value, start, end):
    """`_touches` as the stores run it: attributable, equal, in range, sentAt desc, id asc, ≤10."""
    matched = [
        (doc_id, d) for doc_id, d in deliveries
        if d.get("attributable") is True and d.get(field) == value
        and isinstance(d.get("sentAt"), datetime) and start <= d["sentAt"] <= end
    ]  # fmt: skip
    matched.sort(key=lambda pair: (-pair[1]["sentAt"].timestamp(), pair[0]))
    found = [rules.touch_from(doc_id, d) for doc_id, d in matched[: rules.MAX_TOUCHES]]
    return [t for t in found if t is not None]


def per_order(deliveries, order, days):
    start, end = rules.window(order.order_at, days)
    found = []
    for attribute, field in rules.IDENTITY_FIELDS:
        if getattr(order, attribute):
            found += query(deliveries, field, getattr(order, attribute), start, end)
    return found


def random_deliveries(rng, n):
    out = []
    for i in range(n):
        # Whole hours over 10 days: many ties, many at the window's very ends.
        sent = AT - timedelta(hours=rng.randrange(0, 240))
        out.append((f"d{rng.randrange(10**6):06d}_{i}", {
            "playbookId": f"pb_{rng.randrange(4)}", "status": rng.choice(["sent"] * 5 + ["failed"]),
            "attributable": rng.choice([True] * 6 + [False, None]),
            "dryRun": rng.random() < 0.1, "customerFacing": rng.random() > 0.05,
            "sentAt": sent if rng.random() > 0.03 else "not a time",
            "customerId": rng.choice([*IDS, None]), "recipientEmail": rng.choice([*EMAILS, None]),
            "recipientPhone": rng.choice([*PHONES, None]),
        }))  # fmt: skip
    return out


@pytest.mark.parametrize("seed", range(25))
def test_indexed_candidates_equal_the_per_identity_queries(seed):
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    deliveries = random_deliveries(rng, rng.randrange(0, 120))
    index = rules.delivery_index(deliveries)
    for _ in range(20):
        order = Order(
            org_id="org", order_source="app", order_id="o", total_minor=1000, currency="USD",
            order_at=AT - timedelta(hours=rng.randrange(0, 72)),
            customer_id=rng.choice([*IDS, None]), email=rng.choice([*EMAILS, None]),
            phone=rng.choice([*PHONES, None]),
        )  # fmt: skip
        days = rng.choice([1, 3, 7])
        expected = per_order(deliveries, order, days)
        found = rules.indexed_candidates(index, order, order.order_at, days)
        assert found == expected
        assert rules.decide(found, order_at=order.order_at, window_days=days, total_minor=999,
                            currency="USD", org_currency="USD") == rules.decide(
            expected, order_at=order.order_at, window_days=days, total_minor=999,
            currency="USD", org_currency="USD")  # fmt: skip


def test_a_refused_delivery_still_takes_one_of_the_ten_places():
    older = [(f"d{i:02d}", {"playbookId": "pb_old", "status": "sent", "attributable": True,
                            "sentAt": AT - timedelta(hours=10 + i), "recipientEmail": EMAILS[0]})
             for i in range(10)]  # fmt: skip
    failed = ("d99", {"playbookId": "pb_x", "status": "failed", "attributable": True,
                      "sentAt": AT - timedelta(hours=1), "recipientEmail": EMAILS[0]})  # fmt: skip
    order = Order("org", "app", "o", AT, 100, "USD", email=EMAILS[0])
    found = rules.indexed_candidates(rules.delivery_index([failed, *older]), order, AT, 7)
    assert [t.delivery_id for t in found] == [f"d{i:02d}" for i in range(9)]
