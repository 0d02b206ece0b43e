"""`on_order_event` (domain.md §9.2): each order credited once to its last touch, reversed once."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from playbook_core.domain import attribution as rules
from playbook_core.domain.attribution import MAX_TOUCHES, Order, Touch, order_from
from playbook_core.domain.collections import (
    ATTRIBUTIONS,
    CUSTOMERS,
    DELIVERIES,
    ORGANIZATIONS,
    STATS,
    SUMMARIES,
)
from playbook_core.domain.doc_fields import text
from playbook_core.domain.envelope import EventEnvelope
from playbook_core.domain.normal_forms import normalise_currency, to_money
from playbook_core.domain.timezones import DEFAULT_TIMEZONE, org_timezone, stored_zone
from playbook_core.logging import event
from playbook_core.ports import (
    Clock,
    DocumentStore,
    OrderBy,
    Transaction,
    Where,
)
from playbook_core.service.dispatch.dispatcher import PushedMessage
from playbook_core.service.paging import iterate
from playbook_core.service.records import read_settings
from playbook_core.service.reporting import counters
from playbook_core.service.reporting.coalesced import Coalesced

ACTED_ON = frozenset({"order.created", "order.cancelled", "order.refunded"})
TTL = timedelta(days=400)
MAX_WRITES = 500  # per transaction: Firestore's long-standing cap on one commit
SCAN_PAGE = 5_000  # pages of a reconcile scan: few calls, each well within a call's deadline
IN_LIMIT = 30  # Firestore's cap on the values of one `in` filter
_log = logging.getLogger("playbooks.attribution")


@dataclass(frozen=True)
class OrgRules:
    """Per-org inputs: the window (§2.3), the zone of the stats date, the org's currency."""

    window_days: int = rules.DEFAULT_WINDOW_DAYS
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    currency: str | None = None


def org_rules(
    store: DocumentStore, org_id: str, settings: Mapping[str, Any] | None = None
) -> OrgRules:
    if settings is None:
        settings = read_settings(store, org_id)
    currency = normalise_currency(settings.get("currency"))
    organization: Mapping[str, Any] = {}
    if stored_zone(settings) is None or currency is None:  # the organizations doc fills the gaps
        organization = store.get(ORGANIZATIONS, org_id) or {}
        currency = currency or normalise_currency(organization.get("currency"))
    days = settings.get("attributionWindowDays")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 30:
        days = rules.DEFAULT_WINDOW_DAYS
    # A bad stored zone means the default: it must not stop attribution.
    return OrgRules(days, org_timezone(settings, organization), currency)


def handle_order_message(
    message: PushedMessage, *, store: DocumentStore, clock: Clock
) -> dict[str, Any]:
    """Act on order.created / cancelled / refunded; ack anything else.

    The emulator ignores the subscription filter, hence the name check. Storage errors propagate
    so that Pub/Sub redelivers; the deterministic attribution id makes that safe.
    """
    name = message.attributes.get("name")
    if name is not None and name not in ACTED_ON:  # cheap: no decode for the other 21 names
        return {"outcome": "ignored", "eventName": name}
    try:
        envelope = EventEnvelope.decode(message.data)
    except ValidationError:
        event(_log, logging.WARNING, "invalid order envelope acknowledged", eventName=name)
        return {"outcome": "invalid_envelope", "eventName": name}
    customer = envelope.customer.model_dump(exclude_none=True) if envelope.customer else None
    order = order_from(
        envelope.org_id, envelope.data, customer, default_source=envelope.source.kind,
        fallback_at=envelope.occurred_at if envelope.name == "order.created" else None,
    )  # fmt: skip
    if order is None or envelope.name not in ACTED_ON:
        return {"outcome": "not_an_order", "eventName": envelope.name, "eventId": envelope.event_id}
    if envelope.name == "order.created":
        result = attribute_order(order, store=store, clock=clock)
    else:
        data = envelope.data
        refund_id = text(data.get("refundId")) if envelope.name == "order.refunded" else None
        amount = data.get("refundTotalMinor")
        if not isinstance(amount, int) and data.get("refundTotal") is not None:
            money = to_money(data.get("refundTotal"), order.currency)
            amount = money.minor if money else None
        result = adjust_order(
            order, kind=envelope.name, refund_id=refund_id,
            amount_minor=amount if isinstance(amount, int) else None, store=store, clock=clock,
        )  # fmt: skip
    event(_log, logging.INFO, "order attributed", eventId=envelope.event_id, **result)
    return {"eventId": envelope.event_id, "eventName": envelope.name, **result}


def settled(doc: Mapping[str, Any] | None) -> bool:
    """Attributed, void and final unattributed documents are never evaluated again (step 1)."""
    if doc is None:
        return False
    return doc.get("status") != "unattributed" or doc.get("finalAt") is not None


def attribute_order(
    order: Order, *, store: DocumentStore, clock: Clock, org: OrgRules | None = None
) -> dict[str, Any]:
    """§9.2: one query per present identity, then one transaction (create + stats).

    Whether the order is settled is read once, in the transaction: a first delivery, the usual
    case, pays no read ahead of it; a redelivery pays the queries and changes nothing.
    """
    summary = {"attributionId": order.id, "orderId": order.order_id}
    order_at = order.order_at
    if order_at is None:
        return {**summary, "outcome": "no_order_time"}
    org = org or org_rules(store, order.org_id)
    order = _with_customer_id(order, store)
    touches = candidates(store, order, order_at, org.window_days)
    decision = rules.decide(
        touches, order_at=order_at, window_days=org.window_days,
        total_minor=order.total_minor or 0, currency=order.currency, org_currency=org.currency,
    )  # fmt: skip
    now = clock.now()

    def work(tx: Transaction) -> str:
        current = tx.get(ATTRIBUTIONS, order.id)
        if settled(current):
            return "duplicate"
        doc = _document(order, org, current, now) | decision.fields()
        if order.total_minor and rules.refunded(doc) >= order.total_minor:
            doc |= {"status": "void", "voidReason": "refunded"}  # refunds came first, in full
        today = now.astimezone(org.timezone).date().isoformat()
        _bump(tx, order.org_id, doc["localDate"], rules.credit(doc), order.id, today)
        if current is None:
            tx.create(ATTRIBUTIONS, order.id, doc)
        else:
            tx.set(ATTRIBUTIONS, order.id, doc)
        return str(doc["status"])

    outcome = store.transaction(work)
    last = decision.last_touch if outcome != "duplicate" else None
    return {**summary, "outcome": outcome, "playbookId": last.playbook_id if last else None}


def adjust_order(
    order: Order, *, kind: str, refund_id: str | None, amount_minor: int | None,
    store: DocumentStore, clock: Clock,
) -> dict[str, Any]:  # fmt: skip
    """Step 8: cancel or full refund → void and reversed; a partial refund once per refund id."""
    org = org_rules(store, order.org_id)
    now = clock.now()

    def work(tx: Transaction) -> str:
        current = tx.get(ATTRIBUTIONS, order.id)
        full = kind == "order.cancelled" or refund_id is None or amount_minor is None
        if current is None:
            # Before its order.created: remember it, so the late creation finds the order settled
            # (void) or nets the refund (a non-final placeholder that creation re-evaluates).
            doc = _document(order, org, None, now) | {"status": "unattributed", "evenSplit": []}
            if full:
                reason = "cancelled" if kind == "order.cancelled" else "refunded"
                doc |= {"status": "void", "voidReason": reason, "voidedAt": now}
            elif refund_id is not None and amount_minor is not None:
                doc |= {"refunds": {refund_id: amount_minor}, "refundedMinor": amount_minor}
            tx.create(ATTRIBUTIONS, order.id, doc)
            return "recorded_before_order"
        if kind == "order.cancelled":
            change = rules.cancel(current, "cancelled")
        else:
            change = rules.refund(current, refund_id, amount_minor)
        if change.outcome in ("duplicate", "noop"):
            return change.outcome
        today = now.astimezone(org.timezone).date().isoformat()
        _bump(tx, order.org_id, current.get("localDate"), change.counters, order.id, today)
        stamp = {"voidedAt": now} if change.outcome == "voided" else {}
        tx.update(ATTRIBUTIONS, order.id, {**change.changes, **stamp, "updatedAt": now})
        return change.outcome

    return {
        "attributionId": order.id,
        "orderId": order.order_id,
        "outcome": store.transaction(work),
    }


def candidates(store: DocumentStore, order: Order, order_at: datetime, days: int) -> list[Touch]:
    """One indexed query per identity the order has (§9.2 step 3), merged by the domain."""
    start, end = rules.window(order_at, days)
    found: list[Touch] = []
    if order.customer_id:
        found += _touches(store, order.org_id, "customerId", order.customer_id, start, end)
    if order.email:
        found += _touches(store, order.org_id, "recipientEmail", order.email, start, end)
    if order.phone:
        found += _touches(store, order.org_id, "recipientPhone", order.phone, start, end)
    return found


def _touches(  # noqa: PLR0917 - one call per identity field, each with literal names
    store: DocumentStore, org_id: str, identity: str, value: str, start: datetime, end: datetime
) -> list[Touch]:
    page = store.query(
        DELIVERIES,
        [
            Where("orgId", "==", org_id), Where("attributable", "==", True),  # noqa: FBT003
            Where(identity, "==", value), Where("sentAt", ">=", start), Where("sentAt", "<=", end),
        ],
        [OrderBy("sentAt", "desc")],
        limit=MAX_TOUCHES,
    )  # fmt: skip
    return [t for t in (rules.touch_from(d.id, d.data) for d in page.docs) if t is not None]


def _with_customer_id(order: Order, store: DocumentStore) -> Order:
    """§5.5 step 3: the org's customer with the order's email (webhook orders carry no id)."""
    if order.customer_id or not order.email:
        return order
    where = [Where("orgId", "==", order.org_id), Where("email", "==", order.email)]
    found = store.query(CUSTOMERS, where, limit=1).docs
    return dataclasses.replace(order, customer_id=found[0].id) if found else order


def _document(
    order: Order, org: OrgRules, current: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """The §2.2 fields every attribution document has; a placeholder's refunds are kept."""
    created = (current or {}).get("createdAt", now)
    local = order.order_at.astimezone(org.timezone).date().isoformat() if order.order_at else None
    refunds = dict((current or {}).get("refunds") or {})
    return {
        "id": order.id, "orgId": order.org_id, "orderId": order.order_id,
        "orderSource": order.order_source, "orderAt": order.order_at,
        "totalMinor": order.total_minor, "currency": order.currency,
        "customer": order.customer(), "windowDays": org.window_days, "localDate": local,
        "refunds": refunds, "refundedMinor": sum(refunds.values()),
        "finalAt": None,  # stored as null so reconciliation finds non-final ones by index
        "evaluatedAt": now, "createdAt": created, "updatedAt": now, "expiresAt": created + TTL,
    }  # fmt: skip


class _ReadsFirst:
    """A Transaction whose writes wait for `flush`.

    Each `counters.bump` may then read its shard even after another bump wrote: Firestore refuses a
    read after a write inside one transaction.
    """

    def __init__(self, tx: Transaction) -> None:
        self._tx, self._writes = tx, list[tuple[str, tuple[Any, ...]]]()

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        return self._tx.get(collection, doc_id)

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self._tx.get_many(collection, doc_ids)

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self._writes.append(("create", (collection, doc_id, data)))

    def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self._writes.append(("set", (collection, doc_id, data)))

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        self._writes.append(("update", (collection, doc_id, changes)))

    def delete(self, collection: str, doc_id: str) -> None:
        self._writes.append(("delete", (collection, doc_id)))

    def flush(self) -> None:
        for method, arguments in self._writes:
            getattr(self._tx, method)(*arguments)


def _bump(  # noqa: PLR0917 - the attribution's facts, each needed once
    tx: Transaction,
    org_id: str,
    local_date: Any,
    credited: rules.Counters,
    seed: str,
    today: str,
) -> None:
    """Stats in the attribution's own transaction (§9.2 step 6), dated by the order's day."""
    if not credited or not isinstance(local_date, str):
        return
    deferred = _ReadsFirst(tx)
    for playbook_id, deltas in sorted(credited.items()):
        counters.bump_past_day(
            deferred, org_id=org_id, playbook_id=playbook_id, local_date=local_date,
            counters=deltas, shard_seed=seed, today=today,
        )  # fmt: skip
    deferred.flush()


# --- many orders at once: the daily reconcile (§9.3) ---------------------------------------------


@dataclass(frozen=True)
class _Plan:
    order: Order
    decision: rules.Decision
    writes: frozenset[tuple[str, str]]  # every document its transaction may write


def attribute_orders(
    orders: Sequence[Order], *, store: DocumentStore, clock: Clock, org: OrgRules,
    absent_only: Collection[str] = (),
) -> dict[str, str]:  # fmt: skip
    """`attribute_order` for many orders of one org, with the same results, in bounded queries.

    One paged scan of the org's deliveries over the union of the windows, ⌈emails/30⌉ customer
    lookups for orders without a customer id, then transactions of ≤ MAX_WRITES writes, each
    re-reading its attribution documents (so a concurrent live attribution is never counted
    twice). Orders in `absent_only` are attributed only while they have no document at all
    (else "known").
    Returns the outcome per attribution id.
    """
    outcomes: dict[str, str] = {}
    timed: dict[str, Order] = {}
    for order in orders:
        if order.order_at is None:
            outcomes[order.id] = "no_order_time"
        else:
            timed.setdefault(order.id, order)
    if not timed:
        return outcomes
    found = _with_customer_ids(list(timed.values()), store)
    days = org.window_days
    start = min(o.order_at for o in found if o.order_at) - timedelta(days=days)
    end = max(o.order_at for o in found if o.order_at)
    index = rules.delivery_index((doc.id, doc.data) for doc in iterate(store, DELIVERIES, [
        Where("orgId", "==", _one_org(found)), Where("sentAt", ">=", start),
        Where("sentAt", "<=", end),
    ], page_size=SCAN_PAGE))  # fmt: skip
    now = clock.now()
    today = now.astimezone(org.timezone).date().isoformat()
    plans = [_plan(o, index, org, today) for o in found]
    for chunk in _chunks(plans):
        work = functools.partial(
            _commit, chunk=chunk, org=org, now=now, today=today, absent_only=absent_only
        )
        outcomes |= store.transaction(work)
    return outcomes


def _one_org(orders: Sequence[Order]) -> str:
    """The one org every order belongs to: the scan and the counters are per org."""
    org_ids = {o.org_id for o in orders}
    if len(org_ids) != 1:
        raise ValueError(f"attribute_orders takes one org's orders, not {sorted(org_ids)}")
    return org_ids.pop()


def _with_customer_ids(orders: list[Order], store: DocumentStore) -> list[Order]:
    """`_with_customer_id` for many: the lowest customer id per email, 30 emails a query."""
    emails = sorted({o.email for o in orders if o.email and not o.customer_id})
    if not emails:
        return orders
    org_id, lowest = _one_org(orders), dict[str, str]()
    for first in range(0, len(emails), IN_LIMIT):
        chunk = emails[first : first + IN_LIMIT]
        where = [Where("orgId", "==", org_id), Where("email", "in", chunk)]
        for doc in iterate(store, CUSTOMERS, where, page_size=SCAN_PAGE):
            email = doc.data.get("email")
            if isinstance(email, str) and (email not in lowest or doc.id < lowest[email]):
                lowest[email] = doc.id
    return [
        dataclasses.replace(o, customer_id=lowest[o.email])
        if not o.customer_id and o.email in lowest
        else o
        for o in orders
    ]


def _plan(order: Order, index: rules.DeliveryIndex, org: OrgRules, today: str) -> _Plan:
    order_at = order.order_at
    assert order_at is not None  # noqa: S101 - attribute_orders kept only timed orders
    touches = rules.indexed_candidates(index, order, order_at, org.window_days)
    decision = rules.decide(
        touches, order_at=order_at, window_days=org.window_days,
        total_minor=order.total_minor or 0, currency=order.currency, org_currency=org.currency,
    )  # fmt: skip
    writes = {(ATTRIBUTIONS, order.id)}
    local = order_at.astimezone(org.timezone).date().isoformat()
    playbooks = {t.playbook_id for t in decision.touches}
    for playbook_id in playbooks if decision.status == "attributed" else ():
        shard = counters.shard_of(order.id)
        writes.add((STATS, counters.stats_id(order.org_id, playbook_id, local, shard)))
        if local < today:  # bump_past_day: the day's `all` doc and the summary may move too
            writes |= {(STATS, counters.stats_id(order.org_id, playbook_id, local, counters.ALL)),
                       (SUMMARIES, playbook_id)}  # fmt: skip
    return _Plan(order, decision, frozenset(writes))


def _chunks(plans: Iterable[_Plan]) -> Iterable[list[_Plan]]:
    """Consecutive plans whose documents together stay within one commit's writes."""
    chunk: list[_Plan] = []
    writes: set[tuple[str, str]] = set()
    for plan in plans:
        if chunk and len(writes | plan.writes) > MAX_WRITES:
            yield chunk
            chunk, writes = [], set()
        chunk.append(plan)
        writes |= plan.writes
    if chunk:
        yield chunk


def _commit(
    tx: Transaction, *, chunk: list[_Plan], org: OrgRules, now: datetime, today: str,
    absent_only: Collection[str],
) -> dict[str, str]:  # fmt: skip
    """`attribute_order`'s transaction for each order of the chunk, coalesced into one commit."""
    buffer, outcomes = Coalesced(tx), dict[str, str]()
    buffer.prefetch(key for plan in chunk for key in plan.writes)
    for plan in chunk:
        order = plan.order
        current = buffer.get(ATTRIBUTIONS, order.id)
        if current is not None and order.id in absent_only:
            outcomes[order.id] = "known"  # a document the caller's scan did not see
            continue
        if settled(current):
            outcomes[order.id] = "duplicate"
            continue
        doc = _document(order, org, current, now) | plan.decision.fields()
        if order.total_minor and rules.refunded(doc) >= order.total_minor:
            doc |= {"status": "void", "voidReason": "refunded"}  # refunds came first, in full
        _bump(buffer, order.org_id, doc["localDate"], rules.credit(doc), order.id, today)
        if current is None:
            buffer.create(ATTRIBUTIONS, order.id, doc)
        else:
            buffer.set(ATTRIBUTIONS, order.id, doc)
        outcomes[order.id] = str(doc["status"])
    buffer.flush()
    return outcomes
