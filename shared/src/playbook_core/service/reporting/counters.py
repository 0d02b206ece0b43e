"""Analytics counters (domain.md §10.1, §9.3 c–d): sharded increments, compaction, summaries."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo

from playbook_core.domain import reports
from playbook_core.domain.collections import APPROVALS, ORGANIZATIONS, STATS, SUMMARIES
from playbook_core.domain.errors import Unavailable
from playbook_core.domain.ids import h
from playbook_core.domain.timezones import org_timezone, stored_zone
from playbook_core.logging import event
from playbook_core.ports import DocumentStore, Increment, Transaction, Where
from playbook_core.service.paging import iterate
from playbook_core.service.records import read_settings

SHARDS = 5
ALL = "all"
WINDOW_DAYS = 30
RETENTION = timedelta(days=400)
PAGE = 500
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


def _nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted names (`sent.email`) as the nested maps that set(merge=True) writes leaf by leaf."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        *parents, leaf = key.split(".")
        target = out
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return out


def _is_store(target: DocumentStore | Transaction) -> TypeGuard[DocumentStore]:
    return hasattr(target, "query")  # a Transaction can only get and write single documents


def bump(
    store_or_tx: DocumentStore | Transaction,
    *,
    org_id: str,
    playbook_id: str,
    local_date: str,
    counters: Mapping[str, int],
    shard_seed: str,
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
    day, shard = iso_date(local_date), shard_of(shard_seed)
    doc_id = stats_id(org_id, playbook_id, day, shard)
    base = {"orgId": org_id, "playbookId": playbook_id, "date": day, "shard": shard,
            "expiresAt": _expires(day), **(fields or {})}  # fmt: skip
    if _is_store(store_or_tx):
        increments = {key: Increment(value) for key, value in counters.items()}
        store_or_tx.set(STATS, doc_id, {**base, **_nested(increments)}, merge=True)
        return
    tx = store_or_tx
    if tx.get(STATS, doc_id) is None:
        tx.set(STATS, doc_id, {**base, **_nested(counters)})
    else:
        changes = {key: Increment(value) for key, value in counters.items()}
        tx.update(STATS, doc_id, {**changes, **(fields or {})})


def org_zone(store: DocumentStore, org_id: str) -> ZoneInfo:
    """The org's zone (§8.1); the organization document is read only when settings name none."""
    settings = read_settings(store, org_id)
    organization = None if stored_zone(settings) else store.get(ORGANIZATIONS, org_id)
    return org_timezone(settings, organization)


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
) -> None:
    """One hot-path event, dated in the org's zone; a dry run counts only `dryRuns`.

    After the state change has committed: storage trouble here is logged, never raised, so a
    counter can never make a step run twice.
    """
    if dry_run:
        counters, fields = {k: v for k, v in counters.items() if k == "dryRuns"}, None
    if not any(counters.values()) and not fields:
        return
    try:
        day = at.astimezone(org_zone(store, org_id)).date().isoformat()
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
) -> None:
    record(
        store, org_id=execution["orgId"], playbook_id=execution["playbookId"],
        execution_id=execution["id"], dry_run=bool(execution.get("dryRun")), at=at,
        counters=counters, fields=fields,
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
    """§9.3 c: each playbook's shards of that date summed into its `all` doc (overwritten)."""
    day = iso_date(local_date)
    shards: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for doc in iterate(
        store, STATS, [Where("orgId", "==", org_id), Where("date", "==", day)], page_size=PAGE
    ):
        if doc.data.get("shard") != ALL:
            shards[str(doc.data["playbookId"])].append(doc.data)
    for playbook_id, docs in shards.items():
        latest = _latest(docs)
        currency = next((d["currency"] for d in docs if d.get("currency")), None)
        stamps = [d["updatedAt"] for d in docs if isinstance(d.get("updatedAt"), datetime)]
        store.set(STATS, stats_id(org_id, playbook_id, day, ALL), {
            **reports.total(docs), "orgId": org_id, "playbookId": playbook_id, "date": day,
            "shard": ALL, "currency": currency, "lastRunAt": latest.get("lastRunAt"),
            "lastRunStatus": latest.get("lastRunStatus"), "expiresAt": _expires(day),
            "updatedAt": now or max(stamps, default=None),
        })  # fmt: skip
    return len(shards)


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
