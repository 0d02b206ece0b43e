"""The catch-up pass's pure rules (domain/catch_up.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from playbook_core.domain import catch_up as rules
from playbook_core.domain.webhooks import order_transition_id

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("platform", "order", "expected"),
    [
        ("shopify", {"id": 1}, [("orders/create", "created")]),
        ("shopify", {"id": 1, "fulfillment_status": "partial"}, [("orders/create", "created")]),
        ("shopify", {"id": 1, "fulfillment_status": "fulfilled"},
         [("orders/create", "created"), ("orders/fulfilled", "completed")]),
        ("shopify", {"id": 1, "fulfillment_status": "fulfilled", "cancelled_at": "2026-11-24T10:00:00Z"},
         [("orders/create", "created"), ("orders/cancelled", "cancelled")]),
        ("woocommerce", {"id": 1, "status": "processing"}, [("order.created", "created")]),
        ("woocommerce", {"id": 1, "status": "completed"},
         [("order.created", "created"), ("order.updated", "completed")]),
        ("woocommerce", {"id": 1, "status": "cancelled"},
         [("order.created", "created"), ("order.updated", "cancelled")]),
    ],
)  # fmt: skip
def test_an_order_stands_for_its_creation_and_the_transition_its_state_implies(
    platform, order, expected
):
    assert rules.order_deliveries(platform, order) == expected


def test_event_ids_are_the_transition_ids_a_webhook_would_share():
    order = {"id": 4242}
    for transition in ("created", "completed", "cancelled"):
        expected = order_transition_id("org_a", "shopify", "4242", transition)
        assert rules.delivery_event_id("org_a", "shopify", order, transition) == expected
    assert rules.delivery_event_id("org_a", "shopify", {"id": "4242"}, "created") == (
        rules.delivery_event_id("org_a", "shopify", {"id": 4242}, "created")
    )


@pytest.mark.parametrize("order_id", [None, "", True, 1.5, {"a": 1}])
def test_an_order_without_a_usable_id_stands_for_nothing(order_id):
    assert rules.delivery_event_id("org_a", "shopify", {"id": order_id}, "created") is None


def test_updated_at_is_the_platforms_own_clock():
    assert rules.updated_at("shopify", {"updated_at": "2026-11-24T07:00:00-05:00"}) == NOW
    woo = {"date_modified_gmt": "2026-11-24T12:00:00", "date_modified": "2026-11-24T07:00:00"}
    assert rules.updated_at("woocommerce", woo) == NOW  # GMT first; naive GMT is UTC
    assert rules.updated_at("shopify", {"updated_at": "not a time"}) is None


def test_a_pass_starts_an_overlap_before_the_cursor_or_a_day_back_the_first_time():
    assert rules.pass_since(NOW, NOW + timedelta(hours=1)) == NOW - rules.OVERLAP
    assert rules.pass_since(None, NOW) == NOW - rules.FIRST_LOOKBACK - rules.OVERLAP


def test_recoveries_are_kept_for_a_day_and_a_pass_that_found_nothing_adds_nothing():
    old = {"at": NOW - timedelta(hours=25), "count": 3}
    recent = {"at": NOW - timedelta(hours=2), "count": 2}
    assert rules.recent_recoveries([old, recent], NOW, 0) == [recent]
    assert rules.recent_recoveries([recent], NOW, 4) == [recent, {"at": NOW, "count": 4}]
