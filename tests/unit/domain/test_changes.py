"""Firestore writes → events (domain.md §5.1, §5.4, §9.1), customer_dates rows (§8.4), the due-slot plan (§8.3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from playbook_core.domain.changes import (
    OrgFacts,
    crossed_low_stock,
    events_for,
    order_customer,
    order_data,
    orgs_of,
)
from playbook_core.domain.customer_dates import (
    customer_rows,
    parse_birthday,
    row_id,
    sweep_month_days,
)
from playbook_core.domain.ids import h
from playbook_core.service.scheduling.tick import plan

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")
FACTS = {"org_a": OrgFacts(timezone=NEW_YORK, low_stock_threshold=5)}


@dataclass(frozen=True)
class Change:
    path: str
    before: dict | None
    after: dict | None
    event_id: str = "ce-1"

    @property
    def changed(self) -> frozenset[str]:
        keys = set(self.before or {}) | set(self.after or {})
        return frozenset(k for k in keys if (self.before or {}).get(k) != (self.after or {}).get(k))


def events(change, facts=FACTS, now=NOW):
    return events_for(change, facts=facts, received_at=now)


# --- orgs ---------------------------------------------------------------------------------------


def test_each_distinct_org_field_is_an_org():
    doc = {"orgId": "org_a", "brandId": "brand_b", "retailerId": "org_a"}
    assert orgs_of("o1", doc) == ["org_a", "brand_b"]


def test_pos_documents_belong_to_their_brand():
    doc = {"orgId": "org_a", "brandId": "brand_b", "retailerId": "ret_c"}
    assert orgs_of("alleaves_123", doc) == ["brand_b"]
    assert orgs_of("alleaves_123", {"orgId": "org_a"}) == ["org_a"]


def test_org_values_that_are_not_ids_are_ignored():
    assert orgs_of("o1", {"orgId": "", "brandId": "a/b", "retailerId": 7}) == []


# --- orders -------------------------------------------------------------------------------------


APP_ORDER = {
    "brandId": "org_a",
    "retailerId": "ret_r",
    "createdAt": datetime(2026, 11, 24, 14, 30, tzinfo=UTC),
    "status": "pending",
    "totals": {"total": 42.5, "subtotal": 40},
    "totalAmount": 99,
    "customer": {"email": " Jane@Example.COM ", "phone": "(415) 555-0123", "name": "Jane Q Doe"},
    "items": [{"productId": "p1", "name": "Gummies", "quantity": 2, "price": "12.25"}],
}


def test_existing_app_order_shape_is_normalised():
    data = order_data("o1", APP_ORDER, received_at=NOW)
    assert data["total"] == "42.50"
    assert data["totalMinor"] == 4250
    assert data["orderAt"] == "2026-11-24T14:30:00Z"
    assert data["orderSource"] == "app"
    assert data["lineItems"][0]["price"] == "12.25"
    assert data["itemCount"] == 2
    customer = order_customer(APP_ORDER)
    assert (customer.email, customer.phone) == ("jane@example.com", "+14155550123")
    assert (customer.first_name, customer.last_name) == ("Jane", "Q Doe")


@pytest.mark.parametrize(
    ("fields", "total"),
    [({"totalAmount": "19.999"}, "20.00"), ({"total": 7}, "7.00"), ({}, "0.00")],
)
def test_total_falls_back_from_totals_to_total_amount_to_total(fields, total):
    assert order_data("o1", fields, received_at=NOW)["total"] == total


def test_created_order_is_one_order_created_per_org_with_ord_ids():
    found = events(Change("orders/o1", None, APP_ORDER))
    assert [(e.org_id, e.name) for e in found] == [
        ("org_a", "order.created"),
        ("ret_r", "order.created"),
    ]
    assert found[0].event_id == "ord_" + h("org_a", "app", "o1", "created")
    assert found[0].occurred_at == APP_ORDER["createdAt"]
    assert found[0].source.kind == "firestore"
    assert found[0].source.ref == "orders/o1"


@pytest.mark.parametrize(
    ("status", "name", "transition"),
    [
        ("completed", "order.completed", "completed"),
        ("cancelled", "order.cancelled", "cancelled"),
        ("canceled", "order.cancelled", "cancelled"),
        ("shipped", "order.updated", None),
    ],
)
def test_status_change_maps_to_its_event(status, name, transition):
    [found] = events(
        Change(
            "orders/o1",
            {"orgId": "org_a", "status": "pending"},
            {"orgId": "org_a", "status": status},
        )
    )
    assert found.name == name
    expected = (
        "ord_" + h("org_a", "app", "o1", transition) if transition else "fs_" + h("ce-1", "org_a")
    )
    assert found.event_id == expected


def test_completed_id_is_the_same_however_often_the_transition_repeats():
    before, after = (
        {"orgId": "org_a", "status": "processing"},
        {"orgId": "org_a", "status": "completed"},
    )
    first = events(Change("orders/o1", before, after, event_id="ce-1"))
    again = events(Change("orders/o1", before, after, event_id="ce-2"))
    assert first[0].event_id == again[0].event_id


def test_updates_that_keep_the_status_produce_nothing():
    before = {"orgId": "org_a", "status": "completed", "note": "a"}
    assert events(Change("orders/o1", before, {**before, "note": "b"})) == []
    assert events(Change("orders/o1", before, {**before, "status": "Completed"})) == []


def test_order_created_already_completed_also_completes_once():
    names = [
        e.name
        for e in events(
            Change("orders/alleaves_9", None, {"brandId": "org_a", "status": "completed"})
        )
    ]
    assert names == ["order.created", "order.completed"]


def test_deleted_documents_produce_no_event():
    assert events(Change("orders/o1", APP_ORDER, None)) == []


# --- customers ----------------------------------------------------------------------------------


def test_created_customer_is_a_signup_with_its_profile():
    after = {
        "orgId": "org_a",
        "email": "Jane@Example.com",
        "firstName": "Jane",
        "consent": {"email": True},
    }
    [found] = events(Change("customers/cus_1", None, after))
    assert found.name == "customer.signup"
    assert found.event_id == "fs_" + h("ce-1", "org_a")
    assert found.customer.id == "cus_1"
    assert found.customer.email == "jane@example.com"
    assert found.customer.consent.email is True


def test_customers_the_dispatcher_creates_are_not_signups():
    assert (
        events(Change("customers/cus_1", None, {"orgId": "org_a", "createdBy": "playbooks"})) == []
    )


@pytest.mark.parametrize(
    "field", ["email", "phone", "firstName", "lastName", "name", "birthday", "consent"]
)
def test_profile_changes_are_customer_updated(field):
    before = {"orgId": "org_a", field: None}
    [found] = events(Change("customers/cus_1", before, {"orgId": "org_a", field: "x"}))
    assert found.name == "customer.updated"
    assert found.data["changed"] == [field]


def test_other_customer_updates_are_not_events():
    before = {"orgId": "org_a", "email": "a@b.co", "visits": 1}
    assert events(Change("customers/cus_1", before, {**before, "visits": 2})) == []


# --- inventory ----------------------------------------------------------------------------------


def stock(qty, **extra):
    return {"orgId": "org_a", "productId": "p1", "name": "Gummies", "quantity": qty, **extra}


def test_new_inventory_doc_is_a_new_product():
    [found] = events(Change("inventory/i1", None, stock(10)))
    assert found.name == "inventory.new_product"
    assert found.data == {"productId": "p1", "name": "Gummies"}


@pytest.mark.parametrize(
    ("before", "after", "fires"),
    [
        (9, 3, True),
        (6, 5, True),
        (5, 4, False),
        (3, 2, False),
        (2, 8, False),
        (None, 1, False),
        (9, None, False),
    ],
)
def test_low_stock_only_when_crossing_the_threshold(before, after, fires):
    assert crossed_low_stock(before, after, 5) is fires


def test_low_stock_event_id_is_per_item_location_and_local_day():
    change = Change("inventory/i1", stock(9), stock(3, locationId="loc1"))
    [found] = events(change)
    assert found.name == "inventory.low_stock"
    # 15:00Z is 10:00 in New York on the 24th; the id carries the org's local date.
    assert found.event_id == "low_" + h("org_a", "p1", "", "loc1", "2026-11-24")
    assert found.data["available"] == 3
    assert found.data["threshold"] == 5
    late = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # still the 24th in New York
    assert events(change, now=late)[0].event_id == found.event_id


def test_item_threshold_wins_over_the_org_setting():
    assert events(
        Change("inventory/i1", stock(9, lowStockThreshold=8), stock(7, lowStockThreshold=8))
    )
    assert events(Change("inventory/i1", stock("9"), stock("3")))  # numeric strings from POS syncs


# --- customer_dates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1990-05-17", date(1990, 5, 17)),
        ("05/17/1990", date(1990, 5, 17)),
        ("05-17", (5, 17)),
        ("--02-29", (2, 29)),
        (datetime(1990, 5, 17, tzinfo=UTC), date(1990, 5, 17)),
        ({"month": 5, "day": 17}, (5, 17)),
        ("1990-02-30", None),
        ("someday", None),
        (None, None),
    ],
)
def test_birthdays_are_read_in_the_forms_the_app_stores(value, expected):
    assert parse_birthday(value) == expected


def test_customer_rows_index_birthday_and_signup_date_per_org():
    after = {"orgId": "org_a", "birthday": "1990-05-17", "email": "J@x.io", "createdAt": NOW}
    rows = customer_rows(
        "cus_1", None, after, changed=frozenset(after), facts=FACTS, received_at=NOW
    )
    birthday = rows.put[row_id("org_a", "cus_1", "birthday")]
    assert birthday == {
        "orgId": "org_a", "customerId": "cus_1", "field": "birthday", "monthDay": "05-17",
        "date": "1990-05-17", "email": "j@x.io",
    }  # fmt: skip
    assert rows.put[row_id("org_a", "cus_1", "signupDate")]["date"] == "2026-11-24"


def test_removed_birthday_and_deleted_customer_remove_rows():
    before = {"orgId": "org_a", "birthday": "05-17"}
    rows = customer_rows(
        "cus_1",
        before,
        {"orgId": "org_a"},
        changed=frozenset({"birthday"}),
        facts=FACTS,
        received_at=NOW,
    )
    assert rows.remove == [row_id("org_a", "cus_1", "birthday")]
    gone = customer_rows(
        "cus_1", before, None, changed=frozenset(before), facts=FACTS, received_at=NOW
    )
    assert set(gone.remove) == {
        row_id("org_a", "cus_1", f) for f in ("birthday", "signupDate", "lastOrder")
    }


def test_unrelated_customer_updates_leave_the_index_alone():
    before = {"orgId": "org_a", "birthday": "05-17", "visits": 1}
    rows = customer_rows(
        "cus_1",
        before,
        {**before, "visits": 2},
        changed=frozenset({"visits"}),
        facts=FACTS,
        received_at=NOW,
    )
    assert (rows.put, rows.remove) == ({}, [])


@pytest.mark.parametrize(
    ("local_date", "offset", "expected"),
    [
        (date(2027, 2, 28), 0, ["02-28", "02-29"]),
        (date(2028, 2, 28), 0, ["02-28"]),
        (date(2028, 2, 29), 0, ["02-29"]),
        (date(2027, 2, 25), -3, ["02-28", "02-29"]),
        (date(2026, 11, 24), 3, ["11-21"]),
    ],
)
def test_sweep_month_days_include_leap_birthdays_on_28_february(local_date, offset, expected):
    assert sweep_month_days(local_date, offset) == expected


# --- due-slot plan (§8.3 step 2) ---------------------------------------------------------------


def ny(text):
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK).astimezone(UTC)


def test_plan_runs_the_due_slot_and_schedules_the_next():
    chosen = plan("0 7 * * *", NEW_YORK, ny("2026-11-24T07:00"), ny("2026-11-24T07:00"))
    assert (chosen.slot, chosen.missed, chosen.next_run) == (
        ny("2026-11-24T07:00"),
        None,
        ny("2026-11-25T07:00"),
    )


def test_plan_runs_only_the_latest_of_several_missed_slots():
    chosen = plan("0 7 * * *", NEW_YORK, ny("2026-11-21T07:00"), ny("2026-11-24T08:00"))
    assert (chosen.slot, chosen.missed) == (ny("2026-11-24T07:00"), ny("2026-11-23T07:00"))


def test_plan_misses_a_latest_slot_older_than_a_day():
    chosen = plan("0 9 * * 1", NEW_YORK, ny("2026-11-16T09:00"), ny("2026-11-20T09:00"))
    assert (chosen.slot, chosen.missed, chosen.next_run) == (
        None,
        ny("2026-11-16T09:00"),
        ny("2026-11-23T09:00"),
    )


def test_plan_fast_forwards_a_long_outage_of_a_frequent_schedule():
    chosen = plan("*/15 * * * *", NEW_YORK, ny("2025-11-24T07:00"), ny("2026-11-24T07:20"))
    assert (chosen.slot, chosen.missed) == (ny("2026-11-24T07:15"), ny("2026-11-24T07:00"))
