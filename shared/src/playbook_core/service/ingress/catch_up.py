"""The catch-up pass (issue #16): orders the webhooks never delivered, read back from the store.

Per source with store API credentials: read the orders updated since its cursor (less an
overlap) page by page, and put each through the webhook path (`webhooks.publish_delivery`) as
the deliveries it stands for (`domain.catch_up`), so the claims and receipts that make a repeated
webhook a duplicate make a repeated catch-up one too, both ways. The cursor moves after each page
is published, never before: a pass that dies half-way repeats work on the next run, and loses
and duplicates nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from playbook_core.domain import catch_up as rules
from playbook_core.domain.collections import WEBHOOK_SOURCES
from playbook_core.domain.errors import NotFound
from playbook_core.domain.ids import h
from playbook_core.domain.records import SourceRecord
from playbook_core.domain.webhook_events import Delivery
from playbook_core.logging import event
from playbook_core.ports import (
    Clock,
    DocumentStore,
    OrdersPage,
    Secrets,
    StoreOrders,
    TaskQueue,
    TaskRequest,
    Where,
)
from playbook_core.service.execution.provider_alerts import Alerter
from playbook_core.service.ingress import webhooks
from playbook_core.service.ingress.event_log import Publishing
from playbook_core.service.ingress.sources import read_api_credentials
from playbook_core.service.records import read_source

MAX_WAIT_S = 30.0  # a longer throttle ends this source's pass; the next one resumes at the cursor
BUDGET_S = 240.0  # per source and pass, inside the function's own deadline
SOURCES_PAGE = 200
_log = logging.getLogger("playbooks.catch_up")


@dataclass(frozen=True)
class CatchUp:
    """The ports one pass needs; built once per instance (runtime/bootstrap)."""

    publishing: Publishing
    secrets: Secrets
    orders: StoreOrders
    alerts: Alerter | None = None
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


def fan_out(
    *, store: DocumentStore, clock: Clock, queue: TaskQueue, queue_name: str, url: str
) -> dict[str, Any]:
    """One task per source that has API access, named per source and quarter hour (deduped)."""
    now = clock.now()
    slot = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    queued, after = 0, None
    while True:
        page = store.query(
            WEBHOOK_SOURCES, [Where("status", "==", "active")], limit=SOURCES_PAGE,
            start_after=after,
        )  # fmt: skip
        for doc in page.docs:
            if doc.data.get("apiCredentialsRef"):
                name = h("catch-up", doc.id, slot.isoformat())
                queue.enqueue(TaskRequest(queue_name, name, url, {"sourceId": doc.id}))
                queued += 1
        if page.next_cursor is None:
            return {"queued": queued}
        after = page.next_cursor


def run_pass(source_id: str, *, ports: CatchUp) -> dict[str, Any]:
    """One source's pass; what it found, published and left (`outcome`)."""
    store, clock = ports.publishing.store, ports.publishing.clock
    document = read_source(store, source_id)
    if document is None or document.get("status") != "active":
        raise NotFound(f"no active webhook source '{source_id}'")
    org_id = str(document["orgId"])
    credentials = read_api_credentials(document, org_id, source_id, ports.secrets)
    if credentials is None:
        return {"sourceId": source_id, "outcome": "no_api_access"}
    source = webhooks.source_of(source_id, document)
    platform = document["platform"]
    now = clock.now()
    cursor = document.get("catchUpCursor")
    cursor = cursor if isinstance(cursor, datetime) else None
    since = rules.pass_since(cursor, now)
    counts = {"orders": 0, "published": 0, "duplicates": 0, "pages": 0, "throttled": 0}
    deadline = ports.monotonic() + BUDGET_S
    pages = _pages(
        ports, platform=platform, address=source.key, credentials=credentials, since=since,
        deadline=deadline, counts=counts,
    )  # fmt: skip
    outcome = "done"
    for page in pages:
        if page is None:
            outcome = "throttled"
            break
        for order in page.orders:
            _publish_order(order, source, document, counts, ports=ports, now=now)
            moment = rules.updated_at(platform, order)
            if moment is not None and (cursor is None or moment > cursor):
                cursor = moment
        if cursor is not None:  # everything up to here is published: the cursor may move
            store.update(WEBHOOK_SOURCES, source_id, {"catchUpCursor": cursor})
        if page.next_cursor is not None and ports.monotonic() > deadline:
            outcome = "budget"
            break
    health = _record(source_id, document, now, counts["published"], ports=ports)
    summary = {"sourceId": source_id, "outcome": outcome, "health": health, **counts}
    event(_log, logging.INFO, "catch-up pass", orgId=org_id, platform=platform, **summary)
    return summary


def _pages(
    ports: CatchUp,
    *, platform: Any, address: str, credentials: dict[str, str], since: datetime,
    deadline: float, counts: dict[str, int],
) -> Iterator[OrdersPage | None]:  # fmt: skip
    """The pass's pages in order, waiting out short throttles; None when one is too long."""
    cursor: str | None = None
    while True:
        page = ports.orders.orders_since(platform, address, credentials, since, cursor)
        if page.wait_s is not None:
            counts["throttled"] += 1
            if page.wait_s > MAX_WAIT_S or ports.monotonic() + page.wait_s > deadline:
                yield None
                return
            ports.sleep(page.wait_s)
            continue
        counts["pages"] += 1
        yield page
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _publish_order(
    order: dict[str, Any], source: Any, document: SourceRecord, counts: dict[str, int], *,
    ports: CatchUp, now: datetime,
) -> None:  # fmt: skip
    platform, org_id = document["platform"], str(document["orgId"])
    # Money as Decimal, as a webhook body is parsed: never through a float.
    body = json.loads(json.dumps(order), parse_float=Decimal)
    counts["orders"] += 1
    for topic, transition in rules.order_deliveries(platform, body):
        event_id = rules.delivery_event_id(org_id, platform, body, transition)
        if event_id is None:
            continue
        delivery = Delivery(
            platform=platform, topic=topic, org_id=org_id, source_ref=source.ref,
            event_id=event_id, received_at=now,
        )  # fmt: skip
        _status, answer = webhooks.publish_delivery(
            delivery, body, source, publishing=ports.publishing
        )
        if answer.get("duplicate"):
            counts["duplicates"] += 1
        elif answer.get("eventId"):
            counts["published"] += 1


def _record(
    source_id: str, document: SourceRecord, now: datetime, recovered: int, *, ports: CatchUp
) -> str:
    """The pass's bookkeeping on the source, and one throttled alert when webhooks are failing."""
    previous = document.get("catchUpRecoveries")
    recoveries = rules.recent_recoveries(
        previous if isinstance(previous, list) else [], now, recovered
    )
    last_webhook = document.get("lastSeenAt")
    health = rules.source_health(
        document["platform"], last_webhook if isinstance(last_webhook, datetime) else None,
        recoveries, recovered, now,
    )  # fmt: skip
    ports.publishing.store.update(WEBHOOK_SOURCES, source_id, {
        "lastCatchUpAt": now, "catchUpRecoveries": recoveries, "webhookHealth": health,
    })  # fmt: skip
    if health != "ok" and ports.alerts is not None:
        org_id = str(document["orgId"])
        missed = rules.missed_in_window(recoveries)
        text = (
            f"[Playbooks] webhooks from {webhooks.source_of(source_id, document).ref} are not "
            f"arriving ({health}): the catch-up pass found {missed} events in 24 h no webhook "
            "delivered. Check the store's webhook settings."
        )
        ports.alerts.source_alert(
            org_id=org_id, source_id=source_id, subject=health, text=text, now=now
        )
    return health
