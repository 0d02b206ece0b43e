"""Analytics counters (domain.md §10.1, §9.3 c–d): sharded increments, compaction, summaries."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from itertools import chain
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo

from playbook_core.domain import reports
from playbook_core.domain.collections import (
    APPROVALS,
    ATTRIBUTIONS,
    DELIVERIES,
    EXECUTIONS,
    ORGANIZATIONS,
    STATS,
    SUMMARIES,
)
from playbook_core.domain.errors import Unavailable
from playbook_core.domain.ids import h
from playbook_core.domain.timezones import org_timezone, stored_zone
from playbook_core.logging import event
from playbook_core.ports import Doc, DocumentStore, Increment, Transaction, Where
from playbook_core.service.paging import iterate
from playbook_core.service.records import read_settings
from playbook_core.service.reporting.coalesced import Coalesced

SHARDS = 5
ALL = "all"
RECOUNT = "recount"  # the shard that carries the daily recount's corrections
WINDOW_DAYS = 30
RETENTION = timedelta(days=400)
PAGE = 500
SETTLE_AT_ONCE = 100  # playbooks per compact_day transaction: 2 writes each, Firestore allows 500
IN_LIMIT = 30  # Firestore's cap on the values of one `in` filter
# Reports sum live shards for today, yesterday (rolled up at 03:00) and the day before (the
# reconciliation attributes orders of the last 48 h); older days read `all` docs.
LIVE_DAYS = 3
_log = logging.getLogger("playbooks.stats")


def shard_of(seed: str) -> str:
    """§10.1: int(h(executionId)[0], 16) % 5, so one run's counters land on one shard."""
    return str(int(h(seed)[0], 16) % SHARDS)


def iso_date(local_date: str) -> str:
    """The date as YYYY-MM-DD (given so, or as YYYYMMDD); ValueError for anything else."""
    return date.fromisoformat(local_date).isoformat()


def stats_id(org_id: str, playbook_id: str, local_date: str, shard: str) -> str:
    return f"{org_id}__{playbook_id}__{iso_date(local_date).replace('-', '')}__{shard}"


def _expires(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(), UTC) + RETENTION


def _is_store(target: DocumentStore | Transaction) -> TypeGuard[DocumentStore]:
    return hasattr(target, "query")  # a Transaction can only get and write single documents


def bump(
    store_or_tx: DocumentStore | Transaction,
    *,
    org_id: str,
    playbook_id: str,
    local_date: str,
    counters: Mapping[str, int],
    shard_seed: str = "",
    shard: str | None = None,
    fields: Mapping[str, Any] | None = None,
) -> None:
    """Add `counters` to the shard doc of (org, playbook, date); the doc is created if missing.

    On a store this is one blind set(merge=True) with Increment values. In a transaction (which
    cannot merge) it reads the shard first: call it before the transaction's first write, and at
    most once per shard document per transaction.
    """
    counters = {key: int(value) for key, value in counters.items() if value}
    if not counters and not fields:
        return
    day, shard = iso_date(local_date), shard or shard_of(shard_seed)
    doc_id = stats_id(org_id, playbook_id, day, shard)
    base = {"orgId": org_id, "playbookId": playbook_id, "date": day, "shard": shard,
            "expiresAt": _expires(day), **(fields or {})}  # fmt: skip
    if _is_store(store_or_tx):
        increments = {key: Increment(value) for key, value in counters.items()}
        store_or_tx.set(STATS, doc_id, {**base, **reports.nested(increments)}, merge=True)
        return
    tx = store_or_tx
    if tx.get(STATS, doc_id) is None:
        tx.set(STATS, doc_id, {**base, **reports.nested(counters)})
    else:
        changes = {key: Increment(value) for key, value in counters.items()}
        tx.update(STATS, doc_id, {**changes, **(fields or {})})


def bump_past_day(
    tx: Transaction,
    *,
    org_id: str,
    playbook_id: str,
    local_date: str,
    counters: Mapping[str, int],
    shard_seed: str,
    today: str,
) -> None:
    """`bump` for a change that may date a day before today (a late attribution, a refund).

    Such a day may already be rolled up, so its `all` doc (created when the playbook had none
    that day) and a summary whose 30 days hold it move with the shard, in the same transaction:
    every report agrees at once, not after the next recount. Reads first, as for `bump`.
    """
    bump(
        tx, org_id=org_id, playbook_id=playbook_id, local_date=local_date, counters=counters,
        shard_seed=shard_seed,
    )  # fmt: skip
    day = iso_date(local_date)
    counters = {key: int(value) for key, value in counters.items() if value}
    if day >= iso_date(today) or not counters:
        return
    all_id = stats_id(org_id, playbook_id, day, ALL)
    rolled_up, summary = tx.get(STATS, all_id), tx.get(SUMMARIES, playbook_id)
    increments = {key: Increment(value) for key, value in counters.items()}
    if rolled_up is None:
        tx.set(STATS, all_id, {
            "orgId": org_id, "playbookId": playbook_id, "date": day, "shard": ALL,
            "expiresAt": _expires(day), **reports.nested(counters),
        })  # fmt: skip
    else:
        tx.update(STATS, all_id, increments)
    through = (summary or {}).get("throughDate")
    if summary is None or summary.get("orgId") != org_id or not isinstance(through, str):
        return
    first = (date.fromisoformat(through) - timedelta(days=WINDOW_DAYS - 1)).isoformat()
    if first <= day <= through:
        tx.update(SUMMARIES, playbook_id, {f"last30.{k}": v for k, v in increments.items()})


def org_zone(
    store: DocumentStore, org_id: str, organization: Mapping[str, Any] | None = None
) -> ZoneInfo:
    """The org's zone (§8.1); the organization document is read only when settings name none.

    `organization`: the document when the caller has read it already.
    """
    settings = read_settings(store, org_id)
    if organization is None and not stored_zone(settings):
        organization = store.get(ORGANIZATIONS, org_id)
    return org_timezone(settings, organization)


def org_today(store: DocumentStore, org_id: str, now: datetime) -> date:
    return now.astimezone(org_zone(store, org_id)).date()


def record(
    store: DocumentStore,
    *,
    org_id: str,
    playbook_id: str,
    execution_id: str,
    dry_run: bool,
    at: datetime,
    counters: Mapping[str, int],
    fields: Mapping[str, Any] | None = None,
    zone: ZoneInfo | None = None,
) -> None:
    """One hot-path event, dated in the org's zone; a dry run counts only `dryRuns`.

    `zone`: the org's, when the caller knows it (dispatch reads it once per event).

    After the state change has committed: storage trouble here is logged, never raised, so a
    counter can never make a step run twice.
    """
    if dry_run:
        counters, fields = {k: v for k, v in counters.items() if k == "dryRuns"}, None
    if not any(counters.values()) and not fields:
        return
    try:
        day = at.astimezone(zone or org_zone(store, org_id)).date().isoformat()
        bump(
            store, org_id=org_id, playbook_id=playbook_id, local_date=day, counters=counters,
            shard_seed=execution_id, fields={**(fields or {}), "updatedAt": at},
        )  # fmt: skip
    except Unavailable:
        event(_log, logging.WARNING, "stats counter lost", orgId=org_id, executionId=execution_id)


def record_execution(
    store: DocumentStore,
    execution: Mapping[str, Any],
    *,
    at: datetime,
    counters: Mapping[str, int],
    fields: Mapping[str, Any] | None = None,
    zone: ZoneInfo | None = None,
) -> None:
    if not execution.get("playbookId"):
        return  # not a run this product wrote (a forged task's target, say): nothing to count
    record(
        store, org_id=execution["orgId"], playbook_id=execution["playbookId"],
        execution_id=execution["id"], dry_run=bool(execution.get("dryRun")), at=at,
        counters=counters, fields=fields, zone=zone,
    )  # fmt: skip


def record_finish(
    store: DocumentStore, execution: Mapping[str, Any], finished: str | None, *, at: datetime
) -> None:
    """§7.2: a run that just completed or failed (None: the step did not finish the run)."""
    if finished is not None:
        fields = {"lastRunAt": at, "lastRunStatus": finished}
        record_execution(store, execution, at=at, counters={finished: 1}, fields=fields)


_HELD_REASONS = {"rejected": "approval_rejected", "expired": "approval_expired"}


def record_closed(
    store: DocumentStore, execution: Mapping[str, Any], status: str, *, held: int, at: datetime
) -> None:
    """§7.2: a run rejected, expired or cancelled, with its held sends now skipped."""
    reason = _HELD_REASONS.get(status, status)
    record_execution(store, execution, at=at, counters={status: 1, f"skipped.{reason}": held})


def record_delivery(
    store: DocumentStore, delivery: Mapping[str, Any], *, counters: Mapping[str, int]
) -> None:
    at = delivery.get("sentAt") or delivery.get("updatedAt") or delivery["createdAt"]
    record(
        store, org_id=delivery["orgId"], playbook_id=delivery["playbookId"],
        execution_id=delivery["executionId"], dry_run=bool(delivery.get("dryRun")), at=at,
        counters=counters,
    )  # fmt: skip


def _latest(documents: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The document with the newest lastRunAt (empty when none ran)."""
    ran = [d for d in documents if isinstance(d.get("lastRunAt"), datetime)]
    return max(ran, key=lambda d: d["lastRunAt"]) if ran else {}


def compact_day(
    store: DocumentStore, *, org_id: str, local_date: str, now: datetime | None = None
) -> int:
    """§9.3 c: the day recounted from its documents overwrites each playbook's `all` doc.

    The recount is the authority for what the hot path counts: a counter it lost, or counted
    twice, is made good here, and a correction on the `recount` shard makes the shards sum to
    the same figures, so the reports that read shards agree too. Returns how many playbooks
    were written.
    """
    day = iso_date(local_date)
    zone = org_zone(store, org_id)
    truth = {
        playbook_id: counted
        for (playbook_id, counted_day), counted in _recount(store, org_id, day, zone).items()
        if counted_day == day
    }
    shards: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for doc in iterate(
        store, STATS, [Where("orgId", "==", org_id), Where("date", "==", day)], page_size=PAGE
    ):
        if doc.data.get("shard") != ALL:
            shards[str(doc.data["playbookId"])].append(doc.data)
    playbook_ids = sorted(set(truth) | set(shards))
    for first in range(0, len(playbook_ids), SETTLE_AT_ONCE):
        chunk = playbook_ids[first : first + SETTLE_AT_ONCE]
        _settle_days(
            store, org_id=org_id, day=day, counted={p: truth.get(p, {}) for p in chunk}, now=now
        )
    return len(playbook_ids)


# Attribution counters move only inside the attribution's own transaction, so their shards are
# exact; taking them from the shards (not the recount's earlier read) keeps an attribution that
# commits while the day is being recounted.
_TRANSACTIONAL = frozenset({"attributedOrders", "attributedRevenueMinor", "evenSplitRevenueMinor"})
_SHARD_IDS = (*(str(n) for n in range(SHARDS)), RECOUNT)


def _settle_days(
    store: DocumentStore,
    *,
    org_id: str,
    day: str,
    counted: Mapping[str, Mapping[str, Any]],
    now: datetime | None,
) -> None:
    """Each playbook's day: its correction and `all` doc, in one transaction over their shards.

    Every shard and `all` document is read in one round trip, and the writes go in one commit.
    """

    def work(tx: Transaction) -> dict[str, list[str]]:
        buffer = Coalesced(tx)
        buffer.prefetch(
            (STATS, stats_id(org_id, playbook_id, day, shard))
            for playbook_id in counted
            for shard in (*_SHARD_IDS, ALL)
        )
        corrected = {
            playbook_id: _settle_day(buffer, org_id, playbook_id, day, counts, now)
            for playbook_id, counts in counted.items()
        }
        buffer.flush()
        return corrected

    for playbook_id, corrected in store.transaction(work).items():
        if corrected:
            event(_log, logging.WARNING, "stats corrected by the recount", orgId=org_id,
                  playbookId=playbook_id, date=day, counters=corrected)  # fmt: skip


def _settle_day(  # noqa: PLR0917 - one playbook's day, each fact needed once
    tx: Transaction,
    org_id: str,
    playbook_id: str,
    day: str,
    counted: Mapping[str, Any],
    now: datetime | None,
) -> list[str]:
    """One playbook's day; returns the counters the recount corrected."""
    found = tx.get_many(STATS, [stats_id(org_id, playbook_id, day, s) for s in _SHARD_IDS])
    shards = list(found.values())
    live = reports.total(shards)
    wanted = {k: v for k, v in reports.flat(counted).items() if k not in _TRANSACTIONAL}
    wanted |= {k: v for k, v in reports.flat(live).items() if k in _TRANSACTIONAL}
    correction = reports.difference(wanted, live)
    if correction:
        bump(
            tx, org_id=org_id, playbook_id=playbook_id, local_date=day, counters=correction,
            shard=RECOUNT,
        )  # fmt: skip
    currency = next((d["currency"] for d in shards if d and d.get("currency")), None)
    tx.set(STATS, stats_id(org_id, playbook_id, day, ALL), {
        **reports.nested(wanted), "orgId": org_id, "playbookId": playbook_id, "date": day,
        "shard": ALL, "currency": currency, "lastRunAt": counted.get("lastRunAt"),
        "lastRunStatus": counted.get("lastRunStatus"), "expiresAt": _expires(day),
        "updatedAt": now,
    })  # fmt: skip
    return sorted(correction)


def _recount(
    store: DocumentStore, org_id: str, day: str, zone: ZoneInfo
) -> dict[reports.DayKey, reports.Counters]:
    """Every document that counts on `day`: five bounded queries, however many orders there are."""
    start, end = reports.day_bounds(day, zone)
    mine = Where("orgId", "==", org_id)
    created = [mine, Where("createdAt", ">=", start), Where("createdAt", "<", end)]
    closed = [mine, Where("completedAt", ">=", start), Where("completedAt", "<", end)]
    executions = {
        d.id: d.data
        for d in chain(
            iterate(store, EXECUTIONS, created, page_size=PAGE),
            iterate(store, EXECUTIONS, closed, page_size=PAGE),
        )
    }
    sent = [mine, Where("sentAt", ">=", start), Where("sentAt", "<", end)]
    skipped = [
        mine, Where("status", "==", "skipped"),
        Where("updatedAt", ">=", start), Where("updatedAt", "<", end),
    ]  # fmt: skip
    deliveries = {
        d.id: d.data
        for d in chain(
            iterate(store, DELIVERIES, sent, page_size=PAGE),
            iterate(store, DELIVERIES, skipped, page_size=PAGE),
        )
    }
    credited = [mine, Where("localDate", "==", day)]
    attributions = [d.data for d in iterate(store, ATTRIBUTIONS, credited, page_size=PAGE)]
    return reports.recount(
        executions=executions.values(), deliveries=deliveries.values(),
        attributions=attributions, zone=zone,
    )  # fmt: skip


def summarise(
    store: DocumentStore, *, org_id: str, through_date: str, now: datetime | None = None
) -> int:
    """§9.3 d: the org's summaries from its `all` docs of the 30 days ending through_date.

    One query for the window, one for pending approvals and one for the org's current summaries
    (so a playbook that went quiet drops to zero, keeping its last run). Returns how many were
    written; a summary already at zero is left alone.
    """
    end = date.fromisoformat(iso_date(through_date))
    start = (end - timedelta(days=WINDOW_DAYS - 1)).isoformat()
    window: dict[str, list[dict[str, Any]]] = defaultdict(list)
    in_window = [
        Where("orgId", "==", org_id), Where("shard", "==", ALL),
        Where("date", ">=", start), Where("date", "<=", end.isoformat()),
    ]  # fmt: skip
    for doc in iterate(store, STATS, in_window, page_size=PAGE):
        window[str(doc.data["playbookId"])].append(doc.data)
    waiting = [Where("orgId", "==", org_id), Where("status", "==", "pending")]
    pending = Counter(
        str(d.data.get("playbookId")) for d in iterate(store, APPROVALS, waiting, page_size=PAGE)
    )
    mine = [Where("orgId", "==", org_id)]
    existing = {doc.id: doc.data for doc in iterate(store, SUMMARIES, mine, page_size=PAGE)}
    written = 0
    for playbook_id in sorted(set(window) | set(pending) | set(existing)):
        last30 = reports.total(window.get(playbook_id, []))
        before = existing.get(playbook_id, {})
        shown = before.get("last30") or before.get("pendingApprovals")
        if not last30 and not pending[playbook_id] and not shown:
            continue  # quiet, and already shown as quiet: no write
        latest = _latest(window.get(playbook_id, [])) or before
        written += 1
        store.set(SUMMARIES, playbook_id, {
            "orgId": org_id, "playbookId": playbook_id, "throughDate": end.isoformat(),
            "last30": last30,
            "successRate30": reports.success_rate(last30),
            "lastRunAt": latest.get("lastRunAt"), "lastRunStatus": latest.get("lastRunStatus"),
            "pendingApprovals": pending[playbook_id], "updatedAt": now,
        })  # fmt: skip
    return written


def _in_chunks(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[n : n + IN_LIMIT]) for n in range(0, len(ids), IN_LIMIT)]


def _dates(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _window_change(
    summary: Mapping[str, Any], today: date
) -> tuple[list[date], list[date], Mapping[str, Any]]:
    """(days to add, days to take away, what to start from) for the 30 days ending today."""
    first_kept = today - timedelta(days=WINDOW_DAYS - 1)
    stated = summary.get("throughDate")
    if not summary.get("last30") or not isinstance(stated, str):
        return _dates(first_kept, today), [], {}
    through = min(date.fromisoformat(stated), today)
    added = _dates(max(through + timedelta(days=1), first_kept), today)
    dropped = _dates(
        through - timedelta(days=WINDOW_DAYS - 1), min(through, first_kept - timedelta(days=1))
    )
    return added, dropped, summary["last30"]


def summaries_through(
    store: DocumentStore,
    *,
    org_id: str,
    summaries: Mapping[str, Mapping[str, Any]],
    playbook_ids: Sequence[str],
    today: date,
) -> dict[str, dict[str, Any]]:
    """The summaries moved on to the 30 days ending today, as the reports count them (§10.1).

    A summary with figures holds the 30 days through its roll-up date: the days since are added
    (live shards for the last LIVE_DAYS, `all` docs before) and the days that fell out are taken
    away. A playbook with no summary, or a quiet one (not rewritten by later roll-ups), is summed
    from its day documents: it had no activity up to its roll-up, so there is little to read.
    Per 30 playbooks: one query for the `all` docs it needs, one for the live days' shards.
    """
    if not playbook_ids:
        return {}
    live_from = today - timedelta(days=LIVE_DAYS - 1)
    plus: dict[str, list[date]] = {}
    minus: dict[str, list[date]] = {}
    base: dict[str, Mapping[str, Any]] = {}
    for playbook_id in playbook_ids:
        summary = summaries.get(playbook_id) or {}
        plus[playbook_id], minus[playbook_id], base[playbook_id] = _window_change(
            summary if summary.get("orgId") == org_id else {}, today
        )
    by_day: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for chunk in _in_chunks(playbook_ids):
        rolled = [d for p in chunk for d in plus[p] + minus[p] if d < live_from]
        live = [d for p in chunk for d in plus[p] if d >= live_from]
        found: list[Doc] = []
        if rolled:
            found += iterate(store, STATS, [
                Where("orgId", "==", org_id), Where("playbookId", "in", chunk),
                Where("shard", "==", ALL), Where("date", ">=", min(rolled).isoformat()),
                Where("date", "<=", max(rolled).isoformat()),
            ], page_size=PAGE)  # fmt: skip
        if live:
            found += iterate(store, STATS, [
                Where("orgId", "==", org_id), Where("playbookId", "in", chunk),
                Where("date", ">=", min(live).isoformat()), Where("date", "<=", today.isoformat()),
            ], page_size=PAGE)  # fmt: skip
        for doc in found:
            by_day[(str(doc.data["playbookId"]), str(doc.data["date"]))].append(doc.data)

    def day_figures(playbook_id: str, day: date) -> list[dict[str, Any]]:
        docs = by_day.get((playbook_id, day.isoformat()), [])
        return [d for d in docs if (d.get("shard") != ALL) == (day >= live_from)]

    out: dict[str, dict[str, Any]] = {}
    for playbook_id in playbook_ids:
        summary = dict(summaries.get(playbook_id) or {})
        gained = [doc for day in plus[playbook_id] for doc in day_figures(playbook_id, day)]
        lost = [doc for day in minus[playbook_id] for doc in day_figures(playbook_id, day)]
        last30 = reports.add(base[playbook_id], reports.total(gained))
        last30 = reports.add(last30, reports.negated(reports.total(lost)))
        latest = _latest([*gained, summary])
        out[playbook_id] = {
            **summary, "last30": last30, "successRate30": reports.success_rate(last30),
            "lastRunAt": latest.get("lastRunAt"), "lastRunStatus": latest.get("lastRunStatus"),
        }  # fmt: skip
    return out
