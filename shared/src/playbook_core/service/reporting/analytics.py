"""Playbook analytics (domain.md §9.4) from roll-ups only: O(playbooks × days) reads, no runs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from playbook_core.domain import reports
from playbook_core.domain.collections import ORGANIZATIONS, PLAYBOOKS, STATS
from playbook_core.domain.errors import BadRequest
from playbook_core.domain.timezones import org_timezone, stored_zone
from playbook_core.ports import Clock, DocumentStore, Where
from playbook_core.service.authoring.playbooks import load_playbook
from playbook_core.service.paging import iterate
from playbook_core.service.records import read_settings
from playbook_core.service.reporting.counters import ALL, LIVE_DAYS, PAGE

MAX_DAYS = 366
DEFAULT_DAYS = 30
DEFAULT_CURRENCY = "USD"
_Key = tuple[str, str]  # (playbookId, date)


@dataclass(frozen=True)
class _Org:
    today: date
    timezone: str
    cost: Decimal
    currency: str


def _org(store: DocumentStore, org_id: str, clock: Clock) -> _Org:
    settings = read_settings(store, org_id)
    currency = settings.get("currency")
    organization: Mapping[str, Any] = {}
    if stored_zone(settings) is None or not isinstance(currency, str):  # the org doc fills gaps
        organization = store.get(ORGANIZATIONS, org_id) or {}
        currency = currency if isinstance(currency, str) else organization.get("currency")
    zone_info = org_timezone(settings, organization)
    return _Org(
        today=clock.now().astimezone(zone_info).date(),
        timezone=str(zone_info.key),
        cost=reports.cost_per_execution(settings.get("costPerExecutionUsd")),
        currency=currency.upper() if isinstance(currency, str) and currency else DEFAULT_CURRENCY,
    )


def window(date_from: str | None, date_to: str | None, today: date) -> tuple[date, date]:
    """`from`/`to` (YYYY-MM-DD, both included); by default the 30 days ending today."""

    def parse(value: str | None, name: str) -> date | None:
        if not value:
            return None
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is None or parsed.isoformat() != value:  # exactly YYYY-MM-DD, nothing looser
            raise BadRequest(f"{name} must be a date written YYYY-MM-DD")
        return parsed

    end = parse(date_to, "to")
    start = parse(date_from, "from")
    end = end or (max(today, start) if start else today)
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise BadRequest("from must not be after to")
    if (end - start).days + 1 > MAX_DAYS:
        raise BadRequest(f"the range spans at most {MAX_DAYS} days")
    return start, end


def _counters(
    store: DocumentStore, org_id: str, playbook_id: str | None, span: tuple[date, date], today: date
) -> dict[_Key, dict[str, Any]]:
    """(playbook, date) → counters: `all` docs for compacted days, summed shards for live ones."""
    start, end = span
    live_from = today - timedelta(days=LIVE_DAYS - 1)
    found: dict[_Key, dict[str, Any]] = defaultdict(dict)
    compacted_end = min(end, live_from - timedelta(days=1))
    if start <= compacted_end:
        where = [Where("orgId", "==", org_id)]
        if playbook_id is not None:
            where.append(Where("playbookId", "==", playbook_id))
        where += [
            Where("shard", "==", ALL),
            Where("date", ">=", start.isoformat()),
            Where("date", "<=", compacted_end.isoformat()),
        ]
        for doc in iterate(store, STATS, where, page_size=PAGE):
            found[(doc.data["playbookId"], doc.data["date"])] = reports.add({}, doc.data)
    live_start = max(start, live_from)
    if live_start <= end:
        live = [Where("orgId", "==", org_id)]
        if playbook_id is not None:
            live.append(Where("playbookId", "==", playbook_id))
        live += [Where("date", ">=", live_start.isoformat()), Where("date", "<=", end.isoformat())]
        for doc in iterate(store, STATS, live, page_size=PAGE):
            if doc.data.get("shard") != ALL:
                key = (doc.data["playbookId"], doc.data["date"])
                found[key] = reports.add(found[key], doc.data)
    return found


def _series(by_day: Mapping[str, Mapping[str, Any]], start: date, end: date) -> list[Any]:
    return [reports.daily_point(day, by_day.get(day, {})) for day in reports.days(start, end)]


def _report(
    by_day: Mapping[str, Mapping[str, Any]], org: _Org, start: date, end: date
) -> dict[str, Any]:
    return {
        **reports.metrics(reports.total(by_day.values()), org.cost),
        "daily": _series(by_day, start, end),
    }


def _header(org_id: str, org: _Org, start: date, end: date) -> dict[str, Any]:
    return {
        "orgId": org_id,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "timezone": org.timezone,
        "currency": org.currency,
        "costPerExecutionUsd": reports.amount(org.cost),
    }


def org_analytics(
    *, org_id: str, date_from: str | None, date_to: str | None, store: DocumentStore, clock: Clock
) -> dict[str, Any]:
    """Each playbook with activity in the range, and the org totals (the sums of theirs)."""
    org = _org(store, org_id, clock)
    start, end = window(date_from, date_to, org.today)
    per_playbook: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    org_days: dict[str, dict[str, Any]] = {}
    for (playbook_id, day), counters in _counters(
        store, org_id, None, (start, end), org.today
    ).items():
        per_playbook[playbook_id][day] = counters
        org_days[day] = reports.add(org_days.get(day, {}), counters)
    documents = store.get_many(PLAYBOOKS, sorted(per_playbook))
    playbooks = []
    for playbook_id, by_day in per_playbook.items():
        document = documents.get(playbook_id) or {}
        mine = document.get("orgId") == org_id
        playbooks.append({
            "playbookId": playbook_id,
            "name": document.get("name") if mine else None,
            "status": document.get("status") if mine else None,
            **_report(by_day, org, start, end),
        })  # fmt: skip
    playbooks.sort(key=lambda p: (-p["executions"], p["playbookId"]))
    return {
        **_header(org_id, org, start, end),
        "totals": _report(org_days, org, start, end),
        "playbooks": playbooks,
    }


def playbook_analytics(
    *,
    org_id: str,
    playbook_id: str,
    date_from: str | None,
    date_to: str | None,
    store: DocumentStore,
    clock: Clock,
) -> dict[str, Any]:
    """One playbook of this org (404 otherwise), with its daily series."""
    playbook = load_playbook(store, org_id, playbook_id)
    org = _org(store, org_id, clock)
    start, end = window(date_from, date_to, org.today)
    by_day = {
        day: counters
        for (_, day), counters in _counters(
            store, org_id, playbook_id, (start, end), org.today
        ).items()
    }
    return {
        **_header(org_id, org, start, end),
        "playbookId": playbook_id,
        "name": playbook.get("name"),
        "status": playbook.get("status"),
        **_report(by_day, org, start, end),
    }
