"""`cron_playbooks /attribution` (domain.md §8.5): each org's daily jobs, once per local date."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from playbook_core.domain.attribution import Order, order_from
from playbook_core.domain.changes import order_customer, order_data, orgs_of
from playbook_core.domain.collections import (
    ATTRIBUTIONS,
    CUSTOMER_DATES,
    EVENT_LOG,
    JOB_RUNS,
    ORDERS,
    ORGANIZATIONS,
    SETTINGS,
)
from playbook_core.domain.customer_dates import sweep_month_days
from playbook_core.domain.doc_fields import instant
from playbook_core.domain.envelope import Customer, EventEnvelope, Source
from playbook_core.domain.errors import AlreadyExists
from playbook_core.domain.ids import h
from playbook_core.logging import event
from playbook_core.ports import Clock, DocumentStore, OrderBy, Transaction, Where
from playbook_core.service.ingress.event_log import Publishing, publish_event
from playbook_core.service.paging import iterate
from playbook_core.service.reporting import counters
from playbook_core.service.reporting.attribution import SCAN_PAGE, OrgRules, attribute_orders
from playbook_core.service.reporting.attribution import org_rules as read_org_rules

JOBS = (("attribution", 3), ("lifecycle", 6))  # (job, local hour it is due from)
RECENT = timedelta(hours=48)  # §9.3: late orders and late deliveries are looked at this far back
PAGE = 500
BUDGET_S = 480.0  # stop starting jobs; the next hourly tick picks up the remaining orgs
JOB_RUN_TTL = timedelta(days=30)
_log = logging.getLogger("playbooks.daily")


def hourly(*, publishing: Publishing) -> dict[str, Any]:
    """Run every org's due jobs: at the first tick at or after the hour, once per local date."""
    store, clock = publishing.store, publishing.clock
    deadline, now = time.monotonic() + BUDGET_S, clock.now()
    summary: dict[str, Any] = {"orgs": 0, "ran": [], "alreadyRan": 0, "failed": [], "deferred": 0}
    for doc in iterate(store, SETTINGS, page_size=PAGE):
        org_id, settings = doc.id, doc.data
        summary["orgs"] += 1
        org = read_org_rules(store, org_id, settings)
        local = now.astimezone(org.timezone)
        for job, hour in JOBS:
            if local.hour < hour:
                continue
            if time.monotonic() > deadline:
                summary["deferred"] += 1
                continue
            work = (
                functools.partial(reconcile, org_id, org, store=store, clock=clock)
                if job == "attribution"
                else functools.partial(lifecycle_sweep, org_id, org, publishing=publishing)
            )
            outcome = _guarded(store, org_id, job, local.date(), now=now, work=work)
            if outcome == "already_ran":
                summary["alreadyRan"] += 1
            else:
                summary["failed" if outcome == "failed" else "ran"].append(f"{org_id}:{job}")
    event(_log, logging.INFO, "hourly jobs", **summary)
    return summary


def _guarded(
    store: DocumentStore, org_id: str, job: str, local_date: date, *, now: datetime,
    work: Callable[[], dict[str, Any]],
) -> str:  # fmt: skip
    """`create()` on h(orgId, job, localDate) first: overlapping or repeated ticks run it once.

    A job that raises releases its key so the next tick retries it: every step is idempotent.
    """
    run_id = h(org_id, job, local_date.isoformat())
    try:
        store.create(JOB_RUNS, run_id, {
            "orgId": org_id, "job": job, "localDate": local_date.isoformat(),
            "status": "running", "startedAt": now, "expiresAt": now + JOB_RUN_TTL,
        })  # fmt: skip
    except AlreadyExists:
        return "already_ran"
    started = time.perf_counter()
    try:
        result = work()
    except Exception:  # noqa: BLE001 - one org's failure must not stop the other orgs' jobs
        _log.exception("daily job failed: orgId=%s job=%s", org_id, job)
        store.delete(JOB_RUNS, run_id)
        return "failed"
    seconds = round(time.perf_counter() - started, 3)
    store.update(JOB_RUNS, run_id, {"status": "done", "seconds": seconds, "result": result})
    event(_log, logging.INFO, "daily job done", orgId=org_id, job=job, seconds=seconds, **result)
    return "ran"


# --- 03:00: attribution reconciliation and roll-up (§9.3) ----------------------------------------


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch builds its working set.

    The reconcile holds ~150k documents of plain maps and tuples that reference counting frees;
    the collector re-walked them every few thousand allocations, a third of the run (bench:
    9.9 s against 6.3 s at 100k orders). Turned back on after, however the batch ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def reconcile(org_id: str, org: OrgRules, *, store: DocumentStore, clock: Clock) -> dict[str, Any]:
    """(b) re-evaluate recent unattributed, finalise older; (a) attribute missing; (c, d) stats.

    In batch (§9.3): the recent attributions, the recent orders and the deliveries their windows
    span are each read once, in pages; the decisions are the per-order path's own.
    """
    with _collection_paused():
        return _reconcile(org_id, org, store=store, clock=clock)


def _reconcile(org_id: str, org: OrgRules, *, store: DocumentStore, clock: Clock) -> dict[str, Any]:
    now = clock.now()
    since = now - RECENT
    known: set[str] = set()
    recent: list[Order] = []
    for doc in iterate(store, ATTRIBUTIONS, [
        Where("orgId", "==", org_id), Where("status", "in", list(_STATUSES)),
        Where("orderAt", ">=", since),
    ], [OrderBy("orderAt", "desc")], page_size=SCAN_PAGE):  # fmt: skip
        known.add(doc.id)
        if doc.data.get("status") == "unattributed" and doc.data.get("finalAt") is None:
            recent.append(Order(**{**_stored_order(doc.data), "org_id": org_id}))
    finalised = _finalise(org_id, since, store=store, now=now)
    orders = {order.id: order for order in _recent_orders(org_id, since, store)}
    missing = [order for order_id, order in orders.items() if order_id not in known]
    # A document the scan did not see (a placeholder without orderAt, say) still makes an order
    # known: `absent_only` leaves it alone, as the per-order reconcile's get_many did.
    outcomes = attribute_orders(
        [*recent, *missing], store=store, clock=clock, org=org,
        absent_only={order.id for order in missing},
    )  # fmt: skip
    missing = [order for order in missing if outcomes.get(order.id) != "known"]
    missing_ids = {order.id for order in missing}
    attributed = sum(1 for i, o in outcomes.items() if o == "attributed" and i in missing_ids)
    reevaluated = sum(1 for i, o in outcomes.items() if o == "attributed" and i not in missing_ids)
    yesterday = (now.astimezone(org.timezone).date() - timedelta(days=1)).isoformat()
    counters.compact_day(store, org_id=org_id, local_date=yesterday, now=now)
    counters.summarise(store, org_id=org_id, through_date=yesterday)
    return {
        "recentOrders": len(orders), "missing": len(missing), "attributedLate": attributed,
        "reevaluated": len(recent), "attributedOnReevaluation": reevaluated,
        "finalised": finalised, "compacted": yesterday,
    }  # fmt: skip


_STATUSES = ("attributed", "unattributed", "void")  # every status an attribution document has


def _stored_order(doc: Mapping[str, Any]) -> dict[str, Any]:
    customer = doc.get("customer") or {}
    return {
        "order_source": doc["orderSource"], "order_id": doc["orderId"],
        "order_at": doc.get("orderAt"), "total_minor": doc.get("totalMinor"),
        "currency": doc.get("currency"), "customer_id": customer.get("id"),
        "email": customer.get("email"), "phone": customer.get("phone"),
    }  # fmt: skip


def _finalise(org_id: str, before: datetime, *, store: DocumentStore, now: datetime) -> int:
    """Unattributed orders older than 48 h become final; `finalAt == null` keeps this bounded.

    Always the first page again, not a cursor walk (service.paging.iterate): every update drops
    its document out of the query. A page's updates are one transaction, so one commit.
    """
    count = 0
    while True:
        where = [
            Where("orgId", "==", org_id), Where("status", "==", "unattributed"),
            Where("finalAt", "==", None), Where("orderAt", "<", before),
        ]  # fmt: skip
        page = store.query(ATTRIBUTIONS, where, [OrderBy("orderAt", "desc")], limit=PAGE)
        if page.docs:
            store.transaction(
                functools.partial(_make_final, ids=[d.id for d in page.docs], now=now)
            )
        count += len(page.docs)
        if page.next_cursor is None:
            return count


def _make_final(tx: Transaction, *, ids: list[str], now: datetime) -> None:
    for doc_id in ids:
        tx.update(ATTRIBUTIONS, doc_id, {"finalAt": now, "updatedAt": now})


def _recent_orders(org_id: str, since: datetime, store: DocumentStore) -> Iterator[Order]:
    """Orders placed in the last 48 h: app orders by org field, webhook ones from the event log."""
    for field in _ORDER_ORG_FIELDS:
        for doc in _orders_by(store, field, org_id, since):
            if org_id not in orgs_of(doc.id, doc.data):
                continue  # a POS doc belongs to its brand only (§9.1)
            data = order_data(doc.id, doc.data, received_at=since)
            customer = order_customer(doc.data)
            who = customer.model_dump(exclude_none=True) if customer else None
            found = order_from(org_id, data, who, default_source="app", fallback_at=None)
            if found is not None:
                yield found
    logged = iterate(store, EVENT_LOG, [
        Where("orgId", "==", org_id), Where("name", "==", "order.created"),
        Where("receivedAt", ">=", since),
    ], [OrderBy("receivedAt", "desc")], page_size=SCAN_PAGE)  # fmt: skip
    for doc in logged:
        summary = doc.data.get("orderSummary")
        if not isinstance(summary, Mapping):
            continue
        found = order_from(org_id, summary, summary.get("customer"), default_source="api",
                           fallback_at=None)  # fmt: skip
        if found is not None and found.order_at is not None and found.order_at >= since:
            yield found


_ORDER_ORG_FIELDS = ("brandId", "retailerId", "orgId")


def _orders_by(store: DocumentStore, field: str, org_id: str, since: datetime) -> Iterator[Any]:
    if field == "brandId":
        where = [Where("brandId", "==", org_id), Where("createdAt", ">=", since)]
    elif field == "retailerId":
        where = [Where("retailerId", "==", org_id), Where("createdAt", ">=", since)]
    else:
        where = [Where("orgId", "==", org_id), Where("createdAt", ">=", since)]
    return iterate(store, ORDERS, where, [OrderBy("createdAt", "desc")], page_size=SCAN_PAGE)


# --- 06:00: lifecycle sweep (§5.1, §5.4) ---------------------------------------------------------

INACTIVE_DAYS = 30


def lifecycle_sweep(org_id: str, org: OrgRules, *, publishing: Publishing) -> dict[str, Any]:
    """owner.day3, customer.birthday and customer.30_day_inactive, with `swp_` ids (once each)."""
    store, bus, topic, clock = publishing.store, publishing.bus, publishing.topic, publishing.clock
    now = clock.now()
    today = now.astimezone(org.timezone).date()
    published = {"owner.day3": 0, "customer.birthday": 0, "customer.30_day_inactive": 0}

    def publish(name: str, key: str, customer: Customer | None, data: dict[str, Any]) -> None:
        customer_id = customer.id if customer else ""
        envelope = EventEnvelope(
            event_id="swp_" + h(name, org_id, customer_id or "", key), org_id=org_id, name=name,
            occurred_at=now, received_at=now, source=Source(kind="system", ref="sweep:lifecycle"),
            customer=customer, data=data,
        )  # fmt: skip
        publish_event(envelope, bus=bus, topic=topic)
        published[name] += 1

    created = instant((store.get(ORGANIZATIONS, org_id) or {}).get("createdAt"))
    if created is not None and created.astimezone(org.timezone).date() + timedelta(days=3) == today:
        publish("owner.day3", today.isoformat(), None, {"orgCreatedAt": created.isoformat()})
    birthdays = iterate(store, CUSTOMER_DATES, [
        Where("orgId", "==", org_id), Where("field", "==", "birthday"),
        Where("monthDay", "in", sweep_month_days(today, 0)),
    ], page_size=PAGE)  # fmt: skip
    for row in (doc.data for doc in birthdays):
        data = {"customerId": row["customerId"], "monthDay": row.get("monthDay")}
        publish("customer.birthday", str(today.year), _row_customer(row), data)
    last_order = (today - timedelta(days=INACTIVE_DAYS)).isoformat()
    inactive = iterate(store, CUSTOMER_DATES, [
        Where("orgId", "==", org_id), Where("field", "==", "lastOrder"),
        Where("date", "==", last_order),
    ], page_size=PAGE)  # fmt: skip
    for row in (doc.data for doc in inactive):
        data = {"customerId": row["customerId"], "lastOrderDate": last_order}
        publish("customer.30_day_inactive", last_order, _row_customer(row), data)
    return {"localDate": today.isoformat(), "published": published}


def _row_customer(row: Mapping[str, Any]) -> Customer:
    return Customer(id=row["customerId"], email=row.get("email"), phone=row.get("phone"))
