"""Report formulas (domain.md §9.4) kept pure: sums of counters, never averages of rates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from playbook_core.domain.attribution import credit

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


def flat(counters: Mapping[str, Any], prefix: str = "") -> dict[str, int]:
    """The counters as dotted names (`sent.email`), metadata dropped."""
    out: dict[str, int] = {}
    for key, value in counters.items():
        if key in META:
            continue
        if _number(value):
            out[prefix + key] = int(value)
        elif isinstance(value, Mapping):
            out |= flat(value, f"{prefix}{key}.")
    return out


def difference(wanted: Mapping[str, Any], have: Mapping[str, Any]) -> dict[str, int]:
    """What to add to `have` so it counts what `wanted` counts (dotted names, zeros left out)."""
    wanted_flat, have_flat = flat(wanted), flat(have)
    names = sorted(set(wanted_flat) | set(have_flat))
    changes = {name: wanted_flat.get(name, 0) - have_flat.get(name, 0) for name in names}
    return {name: delta for name, delta in changes.items() if delta}


def nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted names (`sent.email`) as nested maps."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        *parents, leaf = key.split(".")
        target = out
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return out


def negated(counters: Mapping[str, Any]) -> Counters:
    return {k: negated(v) if isinstance(v, Mapping) else -v for k, v in add({}, counters).items()}


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


# --- The recount (§9.3 c): what the documents themselves say each day's counters are -------------
CLOSED_STATUSES = ("completed", "failed", "cancelled", "rejected", "expired")
LAST_RUN_STATUSES = ("completed", "failed")

DayKey = tuple[str, str]  # (playbookId, org-local date)


def day_bounds(day: str, zone: tzinfo) -> tuple[datetime, datetime]:
    """The instants an org-local day starts and ends at (end excluded), in UTC."""
    first = date.fromisoformat(day)
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    return start, datetime.combine(first + timedelta(days=1), time(), zone).astimezone(UTC)


def _local_day(at: Any, zone: tzinfo) -> str | None:
    return at.astimezone(zone).date().isoformat() if isinstance(at, datetime) else None


class _Tally:
    """Counters by (playbook, day), built the way `recount` describes."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.counted: dict[DayKey, Counters] = defaultdict(dict)
        self.last_run: dict[DayKey, tuple[datetime, str]] = {}

    def bump(self, playbook_id: Any, at: Any, path: tuple[str, ...], delta: int = 1) -> None:
        """`at` is an instant (dated in the org's zone) or already a local date."""
        day = at if isinstance(at, str) else _local_day(at, self.zone)
        if not isinstance(playbook_id, str) or day is None or not delta:
            return
        target = self.counted[(playbook_id, day)]
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = target.get(path[-1], 0) + delta

    def run(self, run: Mapping[str, Any]) -> None:
        playbook_id, created = run.get("playbookId"), run.get("createdAt")
        if run.get("dryRun"):
            self.bump(playbook_id, created, ("dryRuns",))
            return
        self.bump(playbook_id, created, ("executions",))
        status, closed_at = run.get("status"), run.get("completedAt")
        if status not in CLOSED_STATUSES or not isinstance(closed_at, datetime):
            return
        self.bump(playbook_id, closed_at, (str(status),))
        closed = _local_day(closed_at, self.zone)
        if status in LAST_RUN_STATUSES and isinstance(playbook_id, str) and closed is not None:
            key = (playbook_id, closed)
            if key not in self.last_run or closed_at >= self.last_run[key][0]:
                self.last_run[key] = (closed_at, str(status))

    def delivery(self, delivery: Mapping[str, Any]) -> None:
        playbook_id, status = delivery.get("playbookId"), delivery.get("status")
        if delivery.get("dryRun"):
            return
        if status == "sent":
            self.bump(playbook_id, delivery.get("sentAt"), ("sent", str(delivery.get("channel"))))
        elif status == "skipped" and delivery.get("skipReason"):
            reason = str(delivery["skipReason"])
            self.bump(playbook_id, delivery.get("updatedAt"), ("skipped", reason))

    def attribution(self, attribution: Mapping[str, Any]) -> None:
        day = attribution.get("localDate")
        for playbook_id, deltas in credit(attribution).items():
            for name, delta in deltas.items():
                self.bump(playbook_id, day if isinstance(day, str) else None, (name,), delta)

    def result(self) -> dict[DayKey, Counters]:
        for key, (at, status) in self.last_run.items():
            self.counted[key] |= {"lastRunAt": at, "lastRunStatus": status}
        return dict(self.counted)


def recount(
    *,
    executions: Iterable[Mapping[str, Any]],
    deliveries: Iterable[Mapping[str, Any]],
    attributions: Iterable[Mapping[str, Any]],
    zone: tzinfo,
) -> dict[DayKey, Counters]:
    """(playbook, day) → the counters the documents stand for, dated as the hot path dates them.

    A run counts `executions` (a dry run `dryRuns`, and nothing else) on its creation day and its
    closing status on its `completedAt` day; a send counts `sent.<channel>` on its `sentAt` day, a
    skip `skipped.<reason>` on the day it was skipped (its `updatedAt`); an attribution credits its
    order's `localDate`, net of refunds (§9.2). Completed and failed runs also give each day its
    `lastRunAt`/`lastRunStatus`. A day's figures are complete only when every document dated that
    day is in the input.
    """
    tally = _Tally(zone)
    for run in executions:
        tally.run(run)
    for delivery in deliveries:
        tally.delivery(delivery)
    for attribution in attributions:
        tally.attribution(attribution)
    return tally.result()
