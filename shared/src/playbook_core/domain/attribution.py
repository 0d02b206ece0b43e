"""Last-touch and even-split attribution (domain.md §9.2) as pure rules, so F10 is unit-tested."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from playbook_core.domain.doc_fields import instant, text
from playbook_core.domain.ids import h
from playbook_core.domain.normal_forms import (
    normalise_currency,
    normalise_email,
    normalise_phone,
    to_money,
)

DEFAULT_WINDOW_DAYS = 7
MAX_TOUCHES = 10  # per identity query and in the even split (§9.2 steps 3 and 7)
ORDERS, REVENUE, EVEN = "attributedOrders", "attributedRevenueMinor", "evenSplitRevenueMinor"
Status = Literal["attributed", "unattributed"]
Counters = dict[str, dict[str, int]]  # playbookId → counter → delta


def attribution_id(org_id: str, order_source: str, order_id: str) -> str:
    """Per (org, source, order): WooCommerce ids are per-store integers that collide otherwise."""
    return "att_" + h(org_id, order_source, order_id)


@dataclass(frozen=True)
class Order:
    """The facts attribution needs of one order, whichever producer reported it."""

    org_id: str
    order_source: str
    order_id: str
    order_at: datetime | None
    total_minor: int | None
    currency: str | None
    customer_id: str | None = None
    email: str | None = None
    phone: str | None = None

    @property
    def id(self) -> str:
        return attribution_id(self.org_id, self.order_source, self.order_id)

    def customer(self) -> dict[str, str]:
        found = {"id": self.customer_id, "email": self.email, "phone": self.phone}
        return {k: v for k, v in found.items() if v}


def order_from(org_id: str, data: Mapping[str, Any], customer: Mapping[str, Any] | None,
               *, default_source: str, fallback_at: datetime | None) -> Order | None:  # fmt: skip
    """An order event's `data` (or an event-log orderSummary) as Order; None without an id."""
    order_id = text(data.get("orderId"))
    if order_id is None:
        return None
    currency, total = normalise_currency(data.get("currency")), data.get("totalMinor")
    if not isinstance(total, int) or isinstance(total, bool):
        money = to_money(data.get("total"), currency) if data.get("total") is not None else None
        total = money.minor if money else None  # producers send totalMinor; `total` is a fallback
    who = customer or {}
    return Order(
        org_id=org_id, order_source=text(data.get("orderSource")) or default_source,
        order_id=order_id, order_at=instant(data.get("orderAt")) or fallback_at,
        total_minor=total, currency=currency, customer_id=text(who.get("id")),
        email=normalise_email(who.get("email")), phone=normalise_phone(who.get("phone")),
    )  # fmt: skip


@dataclass(frozen=True)
class Touch:
    """One candidate delivery: a sent, customer-facing, non-dry-run email or SMS."""

    delivery_id: str
    playbook_id: str
    execution_id: str
    channel: str
    sent_at: datetime

    def as_last_touch(self) -> dict[str, Any]:
        return {
            "playbookId": self.playbook_id, "deliveryId": self.delivery_id,
            "executionId": self.execution_id, "channel": self.channel, "sentAt": self.sent_at,
        }  # fmt: skip


def touch_from(delivery_id: str, data: Mapping[str, Any]) -> Touch | None:
    """A delivery document as a candidate, or None when it may never count (§9.2 step 5).

    The query already asks for `attributable == true`; the status, dry-run and internal checks
    are repeated because a wrong flag on one document must not credit a playbook.
    """
    sent_at, playbook_id = data.get("sentAt"), data.get("playbookId")
    if (
        data.get("attributable") is not True
        or data.get("status") != "sent"
        or data.get("dryRun") is True
        or data.get("customerFacing") is False
        or not isinstance(sent_at, datetime)
        or not isinstance(playbook_id, str)
    ):
        return None
    return Touch(
        delivery_id=delivery_id, playbook_id=playbook_id,
        execution_id=str(data.get("executionId") or ""), channel=str(data.get("channel") or ""),
        sent_at=sent_at,
    )  # fmt: skip


def window(order_at: datetime, days: int) -> tuple[datetime, datetime]:
    """[orderAt − days×24 h, orderAt], both ends inclusive, anchored on the order's own time."""
    return order_at - timedelta(days=days), order_at


def rank(touches: Iterable[Touch], order_at: datetime, days: int) -> list[Touch]:
    """Merge the per-identity results: de-duplicated, in the window, (sentAt desc, id asc), ≤10."""
    start, end = window(order_at, days)
    unique = {t.delivery_id: t for t in touches if start <= t.sent_at <= end}
    ordered = sorted(unique.values(), key=lambda t: (-t.sent_at.timestamp(), t.delivery_id))
    return ordered[:MAX_TOUCHES]


def even_split(amount_minor: int, parts: int) -> list[int]:
    """Equal shares; the remainder goes one minor unit at a time to the most recent first."""
    if parts <= 0:
        return []
    base, remainder = divmod(abs(amount_minor), parts)
    sign = -1 if amount_minor < 0 else 1
    return [sign * (base + (1 if i < remainder else 0)) for i in range(parts)]


@dataclass(frozen=True)
class Decision:
    status: Status
    last_touch: Touch | None
    touches: list[Touch]
    shares: list[int]
    currency_mismatch: bool

    def fields(self) -> dict[str, Any]:
        """The attribution document's decided fields (§2.2)."""
        split = [
            {"playbookId": t.playbook_id, "deliveryId": t.delivery_id, "shareMinor": share}
            for t, share in zip(self.touches, self.shares, strict=True)
        ]
        last = self.last_touch.as_last_touch() if self.last_touch else None
        return {
            "status": self.status, "lastTouch": last, "evenSplit": split,
            "currencyMismatch": self.currency_mismatch,
        }  # fmt: skip


def decide(
    touches: Iterable[Touch],
    *,
    order_at: datetime,
    window_days: int,
    total_minor: int,
    currency: str | None,
    org_currency: str | None,
) -> Decision:
    """Steps 4, 7 and 9: the first ranked candidate is the last touch; all share the total."""
    ranked = rank(touches, order_at, window_days)
    mismatch = bool(currency and org_currency and currency != org_currency)
    if not ranked:
        return Decision("unattributed", None, [], [], currency_mismatch=mismatch)
    return Decision(
        "attributed", ranked[0], ranked, even_split(total_minor, len(ranked)),
        currency_mismatch=mismatch,
    )  # fmt: skip


def _add(counters: Counters, playbook_id: str, name: str, delta: int) -> None:
    if delta:
        per = counters.setdefault(playbook_id, {})
        per[name] = per.get(name, 0) + delta


def _net_split(doc: Mapping[str, Any]) -> list[tuple[str, int]]:
    """Each even-split entry's share left after the recorded partial refunds."""
    split = [(str(e["playbookId"]), int(e["shareMinor"])) for e in doc.get("evenSplit") or []]
    for amount in (doc.get("refunds") or {}).values():
        refunded = even_split(int(amount), len(split))
        split = [(pb, share - back) for (pb, share), back in zip(split, refunded, strict=True)]
    return split


def credit(doc: Mapping[str, Any]) -> Counters:
    """The stats increments an `attributed` document stands for now (net of partial refunds).

    A currency mismatch keeps the order count but adds nothing to revenue sums (step 9).
    """
    counters: Counters = {}
    last = doc.get("lastTouch")
    if doc.get("status") != "attributed" or not isinstance(last, Mapping):
        return counters
    playbook_id = str(last["playbookId"])
    _add(counters, playbook_id, ORDERS, 1)
    if doc.get("currencyMismatch"):
        return counters
    _add(counters, playbook_id, REVENUE, int(doc.get("totalMinor") or 0) - refunded(doc))
    for split_playbook, share in _net_split(doc):
        _add(counters, split_playbook, EVEN, share)
    return counters


def negate(counters: Counters) -> Counters:
    return {pb: {name: -delta for name, delta in c.items()} for pb, c in counters.items()}


def refunded(doc: Mapping[str, Any]) -> int:
    return sum(int(v) for v in (doc.get("refunds") or {}).values())


@dataclass(frozen=True)
class Adjustment:
    """What a cancel or refund does to an attribution document, and to the stats, once."""

    outcome: Literal["voided", "refunded", "duplicate", "noop"]
    changes: dict[str, Any]
    counters: Counters


def cancel(doc: Mapping[str, Any], reason: str) -> Adjustment:
    """Cancelled, or refunded in full: `void`, and whatever it still credits is reversed."""
    if doc.get("status") == "void":
        return Adjustment("duplicate", {}, {})
    return Adjustment("voided", {"status": "void", "voidReason": reason}, negate(credit(doc)))


def refund(doc: Mapping[str, Any], refund_id: str | None, amount_minor: int | None) -> Adjustment:
    """A partial refund lowers the revenue once per refund id; one reaching the total voids."""
    if doc.get("status") == "void":
        return Adjustment("duplicate", {}, {})
    refunds = dict(doc.get("refunds") or {})
    if refund_id is not None and refund_id in refunds:
        return Adjustment("duplicate", {}, {})
    total = doc.get("totalMinor")  # None on a placeholder: the order has not arrived yet
    reaches = isinstance(total, int) and refunded(doc) + (amount_minor or 0) >= total
    if refund_id is None or amount_minor is None or reaches:
        return cancel(doc, "refunded")  # no id (a full-refund status) or the rest of the total
    if amount_minor <= 0:
        return Adjustment("noop", {}, {})
    refunds[refund_id] = amount_minor
    after = {**doc, "refunds": refunds}
    before_credit, after_credit = credit(doc), credit(after)
    delta: Counters = {}
    for playbook_id in {*before_credit, *after_credit}:
        was, now = before_credit.get(playbook_id, {}), after_credit.get(playbook_id, {})
        for name in {*was, *now}:
            _add(delta, playbook_id, name, now.get(name, 0) - was.get(name, 0))
    changes = {"refunds": refunds, "refundedMinor": refunded(after)}
    return Adjustment("refunded", changes, delta)


# --- the batch core: every order of an org against every delivery, as the benchmark compares ---


@dataclass(frozen=True)
class Timeline:
    """Deliveries per identity value, in sentAt order, for bisecting (reconciliation at scale)."""

    times: dict[str, list[float]]
    touches: dict[str, list[tuple[float, str, str]]]  # (sentAt epoch, deliveryId, playbookId)


def timeline(deliveries: Iterable[tuple[str, float, str, Sequence[str]]]) -> Timeline:
    """(deliveryId, sentAt epoch, playbookId, identity values) → a bisectable index."""
    grouped: dict[str, list[tuple[float, str, str]]] = {}
    for delivery_id, sent_at, playbook_id, identities in deliveries:
        for identity in identities:
            grouped.setdefault(identity, []).append((sent_at, delivery_id, playbook_id))
    for rows in grouped.values():
        rows.sort()
    return Timeline({k: [r[0] for r in rows] for k, rows in grouped.items()}, grouped)


def last_touch_at(
    index: Timeline, identities: Sequence[str], order_at: float, window_s: float
) -> tuple[float, str, str] | None:
    """The last touch of one order: latest sentAt in [orderAt − window, orderAt], then lowest id."""
    best: tuple[float, str, str] | None = None
    for identity in identities:
        times = index.times.get(identity)
        if not times:
            continue
        end = bisect.bisect_right(times, order_at)
        if end == 0 or times[end - 1] < order_at - window_s:
            continue
        latest = times[end - 1]
        # Rows are sorted by (time, id): the first row at `latest` has the lowest id.
        row = index.touches[identity][bisect.bisect_left(times, latest, 0, end)]
        if best is None or row[0] > best[0] or (row[0] == best[0] and row[1] < best[1]):
            best = row
    return best


# --- candidates for many orders from one load of the org's deliveries (§9.3 batch reconcile) ---

# (Order attribute, delivery field) per identity, as `candidates` queries them one by one.
IDENTITY_FIELDS = (("customer_id", "customerId"), ("email", "recipientEmail"),
                   ("phone", "recipientPhone"))  # fmt: skip
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DeliveryIndex:
    """Attributable deliveries per (field, value), in the per-identity query's own order.

    That is sentAt desc, then id asc. Rows keep the documents `touch_from` refuses: the query's
    limit counts them.
    """

    offsets: dict[tuple[str, str], list[timedelta]]  # _EPOCH − sentAt: ascending is newest first
    rows: dict[tuple[str, str], list[Touch | None]]


def delivery_index(deliveries: Iterable[tuple[str, Mapping[str, Any]]]) -> DeliveryIndex:
    """(deliveryId, document) pairs → the index; only what `attributable == true` would match."""
    grouped: dict[tuple[str, str], list[tuple[timedelta, str, Touch | None]]] = {}
    for delivery_id, data in deliveries:
        sent_at = data.get("sentAt")
        if data.get("attributable") is not True or not isinstance(sent_at, datetime):
            continue
        touch = touch_from(delivery_id, data)
        for _, field in IDENTITY_FIELDS:
            value = data.get(field)
            if isinstance(value, str):
                grouped.setdefault((field, value), []).append(
                    (_EPOCH - sent_at, delivery_id, touch)
                )
    offsets, rows = {}, {}
    for key, found in grouped.items():
        found.sort(key=lambda row: (row[0], row[1]))
        offsets[key] = [row[0] for row in found]
        rows[key] = [row[2] for row in found]
    return DeliveryIndex(offsets, rows)


def indexed_candidates(index: DeliveryIndex, order: Order, order_at: datetime,
                       days: int) -> list[Touch]:  # fmt: skip
    """What `candidates` finds for the order: per identity, the ≤ MAX_TOUCHES newest in window."""
    start, end = window(order_at, days)
    found: list[Touch] = []
    for attribute, field in IDENTITY_FIELDS:
        value = getattr(order, attribute)
        offsets = index.offsets.get((field, value)) if value else None
        if not offsets:
            continue
        first = bisect.bisect_left(offsets, _EPOCH - end)
        last = bisect.bisect_right(offsets, _EPOCH - start, lo=first)
        rows = index.rows[(field, value)][first : min(last, first + MAX_TOUCHES)]
        found += [touch for touch in rows if touch is not None]
    return found
