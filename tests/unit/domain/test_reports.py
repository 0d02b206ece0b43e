"""Report formulas (domain.md §9.4): sums of counters, rates from sums, money as strings."""

from datetime import date
from decimal import Decimal

import pytest

from playbook_core.domain import reports

COST = Decimal("0.05")


def test_nothing_at_all_gives_zeros_and_nulls_never_a_division_by_zero():
    m = reports.metrics({}, COST)
    assert (m["executions"], m["deliveries"], m["attributedOrders"]) == (0, 0, 0)
    assert m["successRate"] is None
    assert m["avgOrderValue"] is None
    assert m["conversionRate"] is None
    assert m["roi"] is None
    assert m["roiPercent"] is None
    assert (m["cost"], m["attributedRevenue"], m["evenSplitRevenue"]) == ("0.00", "0.00", "0.00")
    assert m["skipped"] == {}


def test_success_rate_is_null_until_something_finished():
    assert reports.metrics({"executions": 3, "cancelled": 3}, COST)["successRate"] is None
    assert reports.metrics({"completed": 3, "failed": 1}, COST)["successRate"] == 0.75
    assert reports.metrics({"completed": 2, "failed": 1}, COST)["successRate"] == 0.6667


def test_every_field_from_one_set_of_counters():
    counters = {
        "executions": 40, "completed": 30, "failed": 6, "cancelled": 1, "rejected": 2,
        "expired": 1, "dryRuns": 5, "sent": {"email": 25, "sms": 5},
        "skipped": {"deduped": 4, "no_consent": 1},
        "attributedOrders": 3, "attributedRevenueMinor": 12000, "evenSplitRevenueMinor": 9001,
    }  # fmt: skip
    m = reports.metrics(counters, COST)
    assert {k: m[k] for k in ("executions", "completed", "failed", "cancelled")} == {
        "executions": 40, "completed": 30, "failed": 6, "cancelled": 1,
    }  # fmt: skip
    assert (m["rejected"], m["expired"], m["dryRuns"]) == (2, 1, 5)
    assert m["successRate"] == 0.8333  # 30 / 36
    assert (m["deliveries"], m["sent"]) == (30, {"email": 25, "sms": 5})
    assert (m["skipped"], m["skippedTotal"]) == ({"deduped": 4, "no_consent": 1}, 5)
    assert (m["attributedRevenue"], m["evenSplitRevenue"]) == ("120.00", "90.01")
    assert m["avgOrderValue"] == "40.00"
    assert m["conversionRate"] == 0.1  # 3 orders / 30 deliveries
    assert m["cost"] == "2.00"  # 40 × 0.05
    assert m["roi"] == 59.0  # (120 − 2) / 2
    assert m["roiPercent"] == 5900.0


def test_roi_is_null_when_executions_cost_nothing():
    counters = {"executions": 10, "attributedRevenueMinor": 5000}
    assert reports.metrics(counters, Decimal(0))["roi"] is None
    assert reports.metrics(counters, Decimal(0))["cost"] == "0.00"
    assert reports.metrics(counters, Decimal("0.5"))["roi"] == 9.0  # (50 − 5) / 5


def test_roi_can_be_negative_and_percent_is_the_ratio_times_100():
    m = reports.metrics({"executions": 3, "attributedRevenueMinor": 10}, Decimal("0.05"))
    assert m["cost"] == "0.15"
    assert m["roi"] == pytest.approx(-0.3333)
    assert m["roiPercent"] == pytest.approx(-33.33)


@pytest.mark.parametrize(
    ("minor", "text"),
    [(0, "0.00"), (1, "0.01"), (1234, "12.34"), (100000, "1000.00"), (-250, "-2.50")],
)
def test_money_is_a_decimal_string_with_two_places(minor, text):
    assert reports.money(minor) == text


def test_average_order_value_rounds_half_up_to_cents():
    m = reports.metrics({"attributedOrders": 3, "attributedRevenueMinor": 1000}, COST)
    assert m["avgOrderValue"] == "3.33"
    assert reports.amount(Decimal("0.005")) == "0.01"


@pytest.mark.parametrize(
    ("stored", "cost"),
    [
        (None, Decimal("0.05")),
        ("0.10", Decimal("0.10")),
        ("0", Decimal(0)),
        (1, Decimal(1)),
        ("-1", Decimal("0.05")),
        ("NaN", Decimal("0.05")),
        ("lots", Decimal("0.05")),
        (True, Decimal("0.05")),
    ],
)
def test_cost_per_execution_setting_falls_back_to_the_default(stored, cost):
    assert reports.cost_per_execution(stored) == cost


def test_sums_add_nested_maps_and_ignore_metadata():
    a = {"orgId": "o", "shard": "1", "executions": 2, "sent": {"email": 1}, "skipped": {"x": 1}}
    b = {"orgId": "o", "shard": "3", "executions": 1, "sent": {"email": 2, "sms": 1}}
    c = {"skipped": {"x": 2, "y": 1}, "lastRunStatus": "completed", "attributedOrders": -1}
    assert reports.total([a, b, c]) == {
        "executions": 3,
        "sent": {"email": 3, "sms": 1},
        "skipped": {"x": 3, "y": 1},
        "attributedOrders": -1,
    }


def test_rates_of_a_sum_are_not_averages_of_rates():
    day1 = {"completed": 1, "failed": 0}  # 100 %
    day2 = {"completed": 1, "failed": 3}  # 25 %
    assert reports.metrics(reports.total([day1, day2]), COST)["successRate"] == 0.4  # not 0.625


def test_daily_points_and_the_days_of_a_range():
    assert reports.days(date(2026, 2, 27), date(2026, 3, 2)) == [
        "2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02",
    ]  # fmt: skip
    point = reports.daily_point(
        "2026-03-01",
        {"executions": 2, "completed": 1, "sent": {"sms": 2}, "skipped": {"deduped": 3},
         "attributedRevenueMinor": 995},
    )  # fmt: skip
    assert point == {
        "date": "2026-03-01", "executions": 2, "completed": 1, "failed": 0, "cancelled": 0,
        "rejected": 0, "expired": 0, "successRate": 1.0, "deliveries": 2, "skipped": 3,
        "attributedOrders": 0, "attributedRevenue": "9.95",
    }  # fmt: skip


def test_list_stats_from_a_summary():
    summary = {
        "last30": {"executions": 7, "sent": {"email": 4, "sms": 1}, "skipped": {"deduped": 2},
                   "attributedRevenueMinor": 4599},
        "successRate30": 0.8, "lastRunStatus": "completed", "pendingApprovals": 1,
    }  # fmt: skip
    assert reports.list_stats(summary) == {
        "runs30d": 7, "successRate30d": 0.8, "deliveries30d": 5, "skipped30d": 2,
        "revenue30d": "45.99", "lastRunAt": None, "lastRunStatus": "completed",
        "pendingApprovals": 1,
    }  # fmt: skip
    assert reports.list_stats(None)["runs30d"] == 0
