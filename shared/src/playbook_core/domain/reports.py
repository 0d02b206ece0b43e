"""Report formulas (domain.md §9.4) kept pure: sums of counters, never averages of rates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

# Fields of a stats document that are not counters; every other number (nested too) is summed.
META = frozenset(
    {
        "orgId", "playbookId", "date", "shard", "currency", "lastRunAt", "lastRunStatus",
        "updatedAt", "expiresAt", "throughDate",
    }
)  # fmt: skip
STATUS_COUNTERS = ("executions", "completed", "failed", "cancelled", "rejected", "expired")
CHANNELS = ("email", "sms")
DEFAULT_COST_PER_EXECUTION = Decimal("0.05")
_CENTS = Decimal("0.01")
_RATE = Decimal("0.0001")

Counters = dict[str, Any]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def add(total: Mapping[str, Any], more: Mapping[str, Any]) -> Counters:
    """The sum of two counter maps: numbers add, nested maps add per key, metadata is dropped."""
    out: Counters = {key: (dict(v) if isinstance(v, Mapping) else v) for key, v in total.items()}
    for key, value in more.items():
        if key in META:
            continue
        if _number(value):
            current = out.get(key, 0)
            out[key] = (current if _number(current) else 0) + value
        elif isinstance(value, Mapping):
            current = out.get(key)
            out[key] = add(current if isinstance(current, Mapping) else {}, value)
    return out


def total(documents: Iterable[Mapping[str, Any]]) -> Counters:
    summed: Counters = {}
    for document in documents:
        summed = add(summed, document)
    return summed


def _int(counters: Mapping[str, Any], key: str) -> int:
    value = counters.get(key, 0)
    return int(value) if _number(value) else 0


def _map(counters: Mapping[str, Any], key: str) -> dict[str, int]:
    value = counters.get(key)
    if not isinstance(value, Mapping):
        return {}
    return {str(k): int(v) for k, v in sorted(value.items()) if _number(v)}


def money(minor: int) -> str:
    """Minor units (cents) as a decimal string with two places: 1234 → "12.34"."""
    return amount(Decimal(minor) / 100)


def amount(value: Decimal) -> str:
    return str(value.quantize(_CENTS, rounding=ROUND_HALF_UP) + Decimal("0.00"))


def cost_per_execution(value: Any) -> Decimal:
    """The org setting (§2.3, a decimal string ≥ 0); anything unusable means the default."""
    if value is None or isinstance(value, bool):
        return DEFAULT_COST_PER_EXECUTION
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        return DEFAULT_COST_PER_EXECUTION
    return parsed if parsed.is_finite() and parsed >= 0 else DEFAULT_COST_PER_EXECUTION


def ratio(numerator: int, denominator: int) -> float | None:
    """The ratio to 4 places; None when there is nothing to divide by."""
    if denominator == 0:
        return None
    return float((Decimal(numerator) / Decimal(denominator)).quantize(_RATE, ROUND_HALF_UP))


def success_rate(counters: Mapping[str, Any]) -> float | None:
    """Completed / (completed + failed); None while nothing finished."""
    completed, failed = _int(counters, "completed"), _int(counters, "failed")
    return ratio(completed, completed + failed)


def metrics(counters: Mapping[str, Any], cost_per_execution_usd: Decimal) -> dict[str, Any]:
    """Every §9.4 field from summed counters (dry runs are a separate counter, never executions)."""
    statuses = {name: _int(counters, name) for name in STATUS_COUNTERS}
    sent = {channel: _map(counters, "sent").get(channel, 0) for channel in CHANNELS}
    skipped = _map(counters, "skipped")
    deliveries = sum(sent.values())
    orders = _int(counters, "attributedOrders")
    revenue = Decimal(_int(counters, "attributedRevenueMinor")) / 100
    cost = statuses["executions"] * cost_per_execution_usd
    roi = None if cost == 0 else (revenue - cost) / cost
    return {
        **statuses,
        "dryRuns": _int(counters, "dryRuns"),
        "successRate": success_rate(counters),
        "deliveries": deliveries,
        "sent": sent,
        "skipped": skipped,
        "skippedTotal": sum(skipped.values()),
        "attributedOrders": orders,
        "attributedRevenue": amount(revenue),
        "evenSplitRevenue": money(_int(counters, "evenSplitRevenueMinor")),
        "avgOrderValue": amount(revenue / orders) if orders else None,
        "conversionRate": ratio(orders, deliveries),
        "cost": amount(cost),
        "roi": None if roi is None else float(roi.quantize(_RATE, ROUND_HALF_UP)),
        "roiPercent": None if roi is None else float((roi * 100).quantize(_CENTS, ROUND_HALF_UP)),
    }


def daily_point(day: str, counters: Mapping[str, Any]) -> dict[str, Any]:
    """One day of a series: the counts a chart plots, from that day's summed counters."""
    statuses = {name: _int(counters, name) for name in STATUS_COUNTERS}
    sent = _map(counters, "sent")
    return {
        "date": day,
        **statuses,
        "successRate": success_rate(counters),
        "deliveries": sum(sent.get(channel, 0) for channel in CHANNELS),
        "skipped": sum(_map(counters, "skipped").values()),
        "attributedOrders": _int(counters, "attributedOrders"),
        "attributedRevenue": money(_int(counters, "attributedRevenueMinor")),
    }


def days(start: date, end: date) -> list[str]:
    """Every ISO date from start to end, both included."""
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def list_stats(summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """The list page's `stats` (§10.1) from a `playbook_summaries` document."""
    summary = summary or {}
    last30 = summary.get("last30") or {}
    sent = _map(last30, "sent")
    return {
        "runs30d": _int(last30, "executions"),
        "successRate30d": summary.get("successRate30"),
        "deliveries30d": sum(sent.get(channel, 0) for channel in CHANNELS),
        "skipped30d": sum(_map(last30, "skipped").values()),
        "revenue30d": money(_int(last30, "attributedRevenueMinor")),
        "lastRunAt": summary.get("lastRunAt"),
        "lastRunStatus": summary.get("lastRunStatus"),
        "pendingApprovals": int(summary.get("pendingApprovals") or 0),
    }
