"""The catch-up pass's rules: the deliveries an order read back from its store stands for.

A webhook stream reports an order as it changes: created, then completed (Shopify
`orders/fulfilled`, WooCommerce `order.updated` with status completed) or cancelled. Read back
later through the store's API, an order shows only its current state; it stands for the creation
plus the transition that state implies, each under the event id that transition has whichever
way it arrives (`ord_…`), so a webhook for the same change before or after is a duplicate.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from playbook_core.domain.normal_forms import parse_timestamp
from playbook_core.domain.webhooks import Platform, order_transition_id

OVERLAP = timedelta(minutes=15)  # re-read this much before the cursor: clocks and commits lag
FIRST_LOOKBACK = timedelta(hours=24)  # a source's first pass
RECOVERY_WINDOW = timedelta(hours=24)  # source health counts what the pass found in this window
MISSED_ALERT_THRESHOLD = 3  # events in RECOVERY_WINDOW that only the pass found: webhooks failing
SILENT_AFTER = timedelta(hours=24)  # WooCommerce disables a webhook after 5 failed deliveries

Health = Literal["ok", "missing_webhooks", "webhooks_silent"]

Transition = Literal["created", "completed", "cancelled"]


def order_deliveries(platform: Platform, order: dict[str, Any]) -> list[tuple[str, Transition]]:
    """(topic, transition) of each delivery a webhook stream would have made for this order."""
    if platform == "shopify":
        found: list[tuple[str, Transition]] = [("orders/create", "created")]
        if order.get("cancelled_at"):
            found.append(("orders/cancelled", "cancelled"))
        elif order.get("fulfillment_status") == "fulfilled":
            found.append(("orders/fulfilled", "completed"))
        return found
    found = [("order.created", "created")]
    status = order.get("status")
    if status == "completed":
        found.append(("order.updated", "completed"))
    elif status == "cancelled":
        found.append(("order.updated", "cancelled"))
    return found


def delivery_event_id(
    org_id: str, platform: Platform, order: dict[str, Any], transition: Transition
) -> str | None:
    """The id the catch-up delivery of one transition goes under; None without an order id."""
    order_id = order.get("id")
    if isinstance(order_id, bool) or not isinstance(order_id, int | str) or order_id == "":
        return None
    return order_transition_id(org_id, platform, str(order_id), transition)


def updated_at(platform: Platform, order: dict[str, Any]) -> datetime | None:
    """The platform's own time of the order's last change (what the cursor follows)."""
    keys = ("updated_at",) if platform == "shopify" else ("date_modified_gmt", "date_modified")
    for key in keys:
        moment = parse_timestamp(order.get(key))
        if moment is not None:
            return moment
    return None


def pass_since(cursor: datetime | None, now: datetime) -> datetime:
    """Where a pass starts reading: the cursor less the overlap, or a day back the first time."""
    return (cursor or now - FIRST_LOOKBACK) - OVERLAP


def recent_recoveries(
    previous: list[dict[str, Any]], now: datetime, recovered: int
) -> list[dict[str, Any]]:
    """The per-pass counts of events no webhook had delivered, kept for RECOVERY_WINDOW."""
    kept = [
        entry
        for entry in previous
        if isinstance(entry.get("at"), datetime) and entry["at"] > now - RECOVERY_WINDOW
    ]
    return [*kept, {"at": now, "count": recovered}] if recovered else kept


def missed_in_window(recoveries: list[dict[str, Any]]) -> int:
    return sum(int(entry.get("count") or 0) for entry in recoveries)


def source_health(
    platform: Platform,
    last_webhook_at: datetime | None,
    recoveries: list[dict[str, Any]],
    recovered_now: int,
    now: datetime,
) -> Health:
    """Whether a source's webhooks can be trusted, from what its catch-up passes found.

    A WooCommerce store whose webhooks went quiet while its API shows orders they never brought
    has most likely had them disabled (WooCommerce does so after 5 failed deliveries).
    """
    quiet = last_webhook_at is None or last_webhook_at < now - SILENT_AFTER
    if platform == "woocommerce" and recovered_now > 0 and quiet:
        return "webhooks_silent"
    if missed_in_window(recoveries) >= MISSED_ALERT_THRESHOLD:
        return "missing_webhooks"
    return "ok"
