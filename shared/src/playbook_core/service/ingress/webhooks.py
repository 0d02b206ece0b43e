"""The webhook endpoints (domain.md §6.1): verify, dedupe, normalise, publish and answer at once."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from playbook_core.domain.catch_up import updated_at as order_updated_at
from playbook_core.domain.collections import (
    ORGANIZATIONS,
    WEBHOOK_CLAIMS,
    WEBHOOK_RECEIPTS,
    WEBHOOK_SOURCES,
)
from playbook_core.domain.envelope import EventEnvelope
from playbook_core.domain.errors import AlreadyExists, BadRequest, NotFound, Unavailable
from playbook_core.domain.ids import h
from playbook_core.domain.normal_forms import parse_timestamp
from playbook_core.domain.records import SourceRecord
from playbook_core.domain.secret_names import names_secret, webhook_secret_name
from playbook_core.domain.timezones import org_timezone, stored_zone
from playbook_core.domain.webhook_events import (
    Delivery,
    OrgContext,
    Routed,
    created_order_id,
    ignored_envelope,
    route,
    stale_age,
    woocommerce_delivery_event_id,
)
from playbook_core.domain.webhooks import (
    MAX_BODY_BYTES,
    ORDER_CREATED_TTL_DAYS,
    REPLAY_TTL_HOURS,
    Platform,
    body_digest,
    content_receipt_id,
    is_woo_ping,
    normalise_source_url,
    order_created_receipt_id,
    required_headers,
    shop_domain,
    shopify_event_id,
    shopify_header,
    shopify_source_id,
    signature_matches,
    woocommerce_source_id,
)
from playbook_core.logging import ALERT, bound, event
from playbook_core.ports import DocumentStore, Secrets, Transaction
from playbook_core.service.authoring.settings import get_settings
from playbook_core.service.ingress.event_log import (
    Publishing,
    logged,
    publish_event,
    record_outcome,
)
from playbook_core.service.ingress.sources import verifying_refs
from playbook_core.service.records import read_source

_LOGGED_TEXT = 200  # header values we log (topic, shop) are attacker-controlled: keep them short
_log = logging.getLogger("playbooks.webhooks")

Answer = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class _Source:
    id: str
    key: str  # shop domain or normalised store URL: scopes replay keys and event ids
    ref: str  # envelope `source.ref`: shop domain or store host
    document: SourceRecord

    @property
    def org_id(self) -> str:
        return str(self.document["orgId"])


def receive_webhook(
    platform: str, *, headers: dict[str, str], body: bytes, remote_ip: str | None,
    query_org_id: str | None, publishing: Publishing, secrets: Secrets,
    fallback_secret: str | None,
) -> Answer:  # fmt: skip
    """One delivery → (HTTP status, JSON body), in §6.1's order; never waits for an execution."""
    if platform not in {"shopify", "woocommerce"}:
        return 404, {"error": "unknown_platform"}
    chosen: Platform = "shopify" if platform == "shopify" else "woocommerce"
    if len(body) > MAX_BODY_BYTES:
        return 413, {"error": "too_large"}
    lowered = {name.lower(): value for name, value in headers.items()}
    signed, topic_name, address = required_headers(chosen, lowered)
    if chosen == "woocommerce" and not signed and is_woo_ping(body):
        return 200, {"received": True, "ping": True}
    if not (signed and topic_name and address):
        return 401, {"error": "missing_signature"}
    where = {"platform": chosen, "topic": topic_name[:_LOGGED_TEXT], "remoteIp": remote_ip}
    try:
        return _verified(
            chosen, lowered, body, signed=signed, topic_name=topic_name, address=address,
            where=where, query_org_id=query_org_id, publishing=publishing, secrets=secrets,
            fallback_secret=fallback_secret,
        )  # fmt: skip
    except Unavailable:
        event(_log, logging.WARNING, "webhook deferred: storage or bus unavailable", **where)
        return 503, {"error": "unavailable"}


def _verified(
    platform: Platform, headers: dict[str, str], body: bytes, *, signed: str, topic_name: str,
    address: str, where: dict[str, Any], query_org_id: str | None, publishing: Publishing,
    secrets: Secrets, fallback_secret: str | None,
) -> Answer:  # fmt: skip
    now = publishing.clock.now()
    verifying, matched = _checked_source(
        platform, address, body, signed, publishing=publishing, secrets=secrets,
        fallback_secret=fallback_secret, now=now,
    )  # fmt: skip
    if verifying is None:
        event(
            _log, logging.WARNING, "webhook from an unknown source",
            security_event="webhook_unknown_source", source=address[:_LOGGED_TEXT], **where,
        )  # fmt: skip
        return 401, {"error": "unknown_source"}
    source = verifying.source
    where = {**where, "sourceKey": source.key, "orgId": source.org_id}
    if not matched:
        if verifying.lookup_failed:  # a secret we could not read may be the right one: retry
            raise Unavailable("a webhook secret could not be read")
        event(
            _log, ALERT, "webhook signature invalid",
            security_event="webhook_signature_invalid", **where,
        )  # fmt: skip
        return 401, {"error": "invalid_signature"}
    if query_org_id is not None and query_org_id != source.org_id:
        event(
            _log, logging.WARNING, "webhook orgId does not match its source",
            security_event="webhook_source_org_mismatch", **where,
        )  # fmt: skip
        return 401, {"error": "source_org_mismatch"}
    parsed = _parse(body)
    if parsed is None:
        return 400, {"error": "malformed_json"}
    delivery = _delivery(
        platform, headers, body, parsed=parsed, topic_name=topic_name, source=source, now=now
    )
    with bound(orgId=source.org_id, eventId=delivery.event_id):
        return _dispatch(delivery, parsed, source, where, publishing=publishing, body=body)


@dataclass(frozen=True)
class _Verifying:
    """A registered, active source and the secret values that verify its deliveries."""

    source: _Source
    keys: list[str]
    lookup_failed: bool  # a secret could not be read: never kept, and a mismatch is retried


def _source_id(platform: Platform, address: str) -> str | None:
    """The source id the header's shop or store URL names; None when it names none."""
    try:
        if platform == "shopify":
            return shopify_source_id(shop_domain(address))
        return woocommerce_source_id(normalise_source_url(address))
    except BadRequest:
        return None


def _checked_source(
    platform: Platform, address: str, body: bytes, signed: str, *, publishing: Publishing,
    secrets: Secrets, fallback_secret: str | None, now: datetime,
) -> tuple[_Verifying | None, bool]:  # fmt: skip
    """The delivery's source (None: unknown) and whether the signature verifies.

    A source that verified is kept for SOURCE_FRESH_FOR (recent.py). A delivery its kept secrets
    do not verify reads it again: its secret rotated, or the store was registered again.
    """
    source_id = _source_id(platform, address)
    if source_id is None:
        return None, False
    kept = publishing.recent.sources
    verifying = kept.fresh(source_id, now)
    if verifying is not None and signature_matches(body, signed, verifying.keys, platform):
        return verifying, True
    verifying = _read_verifying(source_id, publishing, secrets, fallback_secret, now)
    matched = verifying is not None and signature_matches(body, signed, verifying.keys, platform)
    if verifying is not None and matched and not verifying.lookup_failed:
        kept.put(source_id, now, verifying)
    else:
        kept.forget(source_id)
    return verifying, matched


def _read_verifying(
    source_id: str, publishing: Publishing, secrets: Secrets, fallback_secret: str | None,
    now: datetime,
) -> _Verifying | None:  # fmt: skip
    """The source as stored now, with its secrets; None when it is unknown or not active."""
    document = read_source(publishing.store, source_id)
    if document is None or document.get("status") != "active" or not document.get("orgId"):
        return None
    source = source_of(source_id, document)
    keys, lookup_failed = _secrets_for(source, secrets, fallback_secret, now)
    return _Verifying(source, keys, lookup_failed)


def source_of(source_id: str, document: SourceRecord) -> _Source:
    """A registered source as deliveries address it: its key scopes replay keys and event ids."""
    if document["platform"] == "shopify":
        key = str(document.get("shopDomain") or "")
        return _Source(source_id, key, key, document)
    key = str(document.get("sourceUrl") or "")
    return _Source(source_id, key, key.split("://", 1)[-1].split("/", 1)[0], document)


def publish_delivery(
    delivery: Delivery, parsed: dict[str, Any], source: _Source, *, publishing: Publishing
) -> Answer:
    """What a verified delivery does, for one that came another way (the catch-up pass).

    The same claims, receipts, events and answer: either path makes the other a duplicate.
    """
    where = {"platform": delivery.platform, "topic": delivery.topic, "sourceKey": source.key,
             "orgId": source.org_id, "via": "catch_up"}  # fmt: skip
    with bound(orgId=source.org_id, eventId=delivery.event_id):
        return _dispatch(delivery, parsed, source, where, publishing=publishing, body=None)


def _secrets_for(
    source: _Source, secrets: Secrets, fallback_secret: str | None, now: datetime
) -> tuple[list[str], bool]:
    """The source's own secrets (current first); the global one only when it has none (§2.2)."""
    listed = verifying_refs(source.document, now)  # the previous one only within its overlap
    if not listed:
        return ([fallback_secret] if fallback_secret else []), False
    own = webhook_secret_name(source.org_id, source.id)  # never another org's secret
    references = [r for r in listed if names_secret(r, own)]
    values, failed = [], False
    for reference in references:
        try:
            values.append(secrets.get(reference))  # Secret Manager's adapter keeps values 5 min
        except NotFound:
            event(_log, logging.WARNING, "webhook secret reference missing", sourceKey=source.key)
        except Unavailable:
            failed = True
    return values, failed


def _parse(body: bytes) -> dict[str, Any] | None:
    """JSON object or None; decimals stay Decimal so money never passes through a float."""
    try:
        parsed = json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting
        return None
    return parsed if isinstance(parsed, dict) else None


def _delivery(
    platform: Platform, headers: dict[str, str], body: bytes, *, parsed: dict[str, Any],
    topic_name: str, source: _Source, now: datetime,
) -> Delivery:  # fmt: skip
    if platform == "shopify":
        delivery_id = shopify_header(headers, "webhook-id") or None
        event_key = (
            shopify_header(headers, "event-id") or delivery_id
            or body_digest(body)  # neither header: the same bytes are still the same delivery
        )  # fmt: skip
        event_id = shopify_event_id(source.key, topic_name, event_key)
        triggered = parse_timestamp(shopify_header(headers, "triggered-at"))
    else:
        webhook_id = (headers.get("x-wc-webhook-id") or "").strip()
        event_id = woocommerce_delivery_event_id(source.key, webhook_id, topic_name, parsed, body)
        delivery_id, triggered = headers.get("x-wc-webhook-delivery-id"), None
    return Delivery(
        platform=platform, topic=topic_name, org_id=source.org_id, source_ref=source.ref,
        event_id=event_id, received_at=now, delivery_id=delivery_id, triggered_at=triggered,
    )  # fmt: skip


Claim = tuple[str, str, dict[str, Any]]  # (collection, id, document) to create


def _content_claim(body: bytes, delivery: Delivery, source: _Source) -> Claim:
    """These signed bytes, whatever headers they come with: a replay is the same delivery."""
    now = delivery.received_at
    claim = {
        "orgId": delivery.org_id, "platform": delivery.platform, "kind": "content",
        "topic": delivery.topic, "replayKey": delivery.event_id,
        "receivedAt": now, "expiresAt": now + timedelta(hours=REPLAY_TTL_HOURS),
    }  # fmt: skip
    claim_id = content_receipt_id(delivery.platform, source.key, delivery.topic, body)
    return WEBHOOK_CLAIMS, claim_id, claim


def _first_delivery_of(
    body: bytes, delivery: Delivery, source: _Source, store: DocumentStore
) -> Delivery:
    """The delivery these signed bytes first came as (same body, fresh headers: a replay of it)."""
    first = _create_or_get(*_content_claim(body, delivery, source), store)
    replay_key = first.get("replayKey") if first is not None else None
    if not isinstance(replay_key, str) or replay_key == delivery.event_id:
        return delivery
    # Its receipt decides: published means duplicate; still received means the first attempt
    # died before publishing, and publishing under its (deterministic) ids completes it.
    return replace(delivery, event_id=replay_key)


def _org_context(org_id: str, source: _Source, publishing: Publishing) -> OrgContext:
    store = publishing.store

    def load() -> tuple[int, str, Any]:
        settings = get_settings(org_id=org_id, store=store)
        organization = None if stored_zone(settings) else store.get(ORGANIZATIONS, org_id)
        country = str(settings["defaultCountry"] or "US")
        return int(settings["lowStockThreshold"]), country, org_timezone(settings, organization)

    threshold, country, zone = publishing.recent.orgs.get(org_id, publishing.clock.now(), load)
    own = source.document.get("lowStockThreshold")
    return OrgContext(
        low_stock_threshold=own if isinstance(own, int) else threshold,
        default_country=country, timezone=zone,
    )  # fmt: skip


def _dispatch(
    delivery: Delivery, parsed: dict[str, Any], source: _Source, where: dict[str, Any], *,
    publishing: Publishing, body: bytes | None,
) -> Answer:  # fmt: skip
    """Claim, publish, answer. `body` is the signed bytes of a webhook; None for the catch-up pass.

    A delivery nothing has claimed yet (the common case) claims everything in one atomic write;
    anything already claimed takes the step-by-step path, which decides what it is.
    """
    context = _org_context(delivery.org_id, source, publishing)
    routed = route(delivery, parsed, context)
    primary = routed.events[0] if routed.events else ignored_envelope(delivery, parsed)
    # An update's order state exists once the order was seen: a read-compare-write, done first.
    # A creation's is new: it joins the other claims (and is never held back).
    update = primary.name != "order.created"
    if update and _older_than_seen(delivery, primary, parsed, source, publishing.store):
        return _held_back(delivery, primary, source, where, publishing=publishing, body=body)
    if _claimed_at_once(
        delivery, routed=routed, primary=primary, parsed=parsed, source=source, body=body,
        store=publishing.store,
    ):  # fmt: skip
        return _published(
            delivery, routed=routed, primary=primary, source=source, where=where,
            publishing=publishing, body=body,
        )  # fmt: skip
    if body is not None:
        first = _first_delivery_of(body, delivery, source, publishing.store)
        if first.event_id != delivery.event_id:  # a replay of an earlier delivery: its ids
            delivery = first
            routed = route(delivery, parsed, context)
            primary = routed.events[0] if routed.events else ignored_envelope(delivery, parsed)
    return _step_by_step(
        delivery, parsed=parsed, routed=routed, primary=primary, source=source, where=where,
        publishing=publishing, body=body, state_checked=update,
    )  # fmt: skip


def _claimed_at_once(
    delivery: Delivery, *, routed: Routed, primary: EventEnvelope, parsed: dict[str, Any],
    source: _Source, body: bytes | None, store: DocumentStore,
) -> bool:  # fmt: skip
    """Create every claim this delivery needs in one write; False when any exists (or failed)."""
    claims = [_order_creator_claim(delivery, routed, primary, source)]
    if primary.name == "order.created":  # an update's order state exists: it was checked first
        claims.append(_order_state_claim(delivery, primary, parsed, source))
    if body is not None:
        claims.append(_content_claim(body, delivery, source))
    claims.append((WEBHOOK_RECEIPTS, delivery.event_id, _receipt(delivery, primary)))
    try:
        store.create_all([claim for claim in claims if claim is not None])
    except (AlreadyExists, Unavailable):
        return False
    return True


def _held_back(
    delivery: Delivery, primary: EventEnvelope, source: _Source, where: dict[str, Any], *,
    publishing: Publishing, body: bytes | None,
) -> Answer:  # fmt: skip
    """An update older than one already seen: recorded, nothing published."""
    # Under the delivery's own id: a transition's shared `ord_` entry keeps its outcome.
    held = primary.model_copy(update={"event_id": delivery.event_id})
    record_outcome(store=publishing.store, envelope=held, outcome="out_of_order")
    _touch(source, delivery.received_at, publishing, body is not None)
    event(_log, logging.INFO, "webhook accepted", outcome="out_of_order", **where)
    return 200, {"received": True, "ignored": True, "reason": "out_of_order"}


def _step_by_step(
    delivery: Delivery, *, parsed: dict[str, Any], routed: Routed, primary: EventEnvelope,
    source: _Source, where: dict[str, Any], publishing: Publishing, body: bytes | None,
    state_checked: bool,
) -> Answer:  # fmt: skip
    store, via_webhook = publishing.store, body is not None
    if not state_checked and _older_than_seen(delivery, primary, parsed, source, store):
        return _held_back(delivery, primary, source, where, publishing=publishing, body=body)
    creator = _order_creator(delivery, routed, primary, source, store)
    if creator is not None:
        reason = (
            "order_already_created" if creator.get("kind") == "order_created"
            else "order_transition_already_published"
        )  # fmt: skip
        return _duplicate(
            creator, reason, delivery=delivery, source=source, where=where,
            publishing=publishing, via_webhook=via_webhook,
        )  # fmt: skip
    claimed = _claim(delivery, primary, store)
    if claimed is not None and _went_out(claimed, routed, primary, store):
        return _duplicate(
            claimed, "delivery_published", delivery=delivery, source=source, where=where,
            publishing=publishing, via_webhook=via_webhook,
        )  # fmt: skip
    return _published(
        delivery, routed=routed, primary=primary, source=source, where=where,
        publishing=publishing, body=body,
    )  # fmt: skip


def _published(
    delivery: Delivery, *, routed: Routed, primary: EventEnvelope, source: _Source,
    where: dict[str, Any], publishing: Publishing, body: bytes | None,
) -> Answer:  # fmt: skip
    """Publish a claimed delivery's events, mark its receipt and answer."""
    store = publishing.store
    if routed.ignored is not None:
        record_outcome(store=store, envelope=primary, outcome="ignored_topic")
    for envelope in routed.events:  # bus errors propagate: 503, and the retry publishes again
        publish_event(envelope, bus=publishing.bus, topic=publishing.topic)
    _touch(source, delivery.received_at, publishing, body is not None)
    outcome = "ignored" if routed.ignored else "published"
    age = stale_age(delivery)
    if age is not None:  # processed all the same; the envelope carries `source.stale` (§6.4)
        where = {**where, "stale": True, "ageSeconds": int(age.total_seconds())}
    if routed.phone_dropped is not None:  # the reason only: a phone number is personal data
        where = {**where, "phoneDropped": routed.phone_dropped}
    event(_log, logging.INFO, "webhook accepted", outcome=outcome, **where)
    if routed.ignored is not None:
        return 200, {"received": True, "ignored": True, "reason": routed.ignored}
    return 200, {"received": True, "eventId": primary.event_id, "event": primary.name}


def _duplicate(
    claim: dict[str, Any], reason: str, *, delivery: Delivery, source: _Source,
    where: dict[str, Any], publishing: Publishing, via_webhook: bool,
) -> Answer:  # fmt: skip
    _touch(source, delivery.received_at, publishing, via_webhook)
    event(_log, logging.INFO, "webhook duplicate", outcome="duplicate", reason=reason, **where)
    return 200, {"received": True, "duplicate": True, "eventId": claim.get("eventId")}


def _order_state_claim(
    delivery: Delivery, primary: EventEnvelope, parsed: dict[str, Any], source: _Source
) -> Claim | None:
    """The newest platform `updated_at` seen of this order; None for events of no order."""
    order_id = primary.data.get("orderId")
    moment = order_updated_at(delivery.platform, parsed)
    if not primary.name.startswith("order.") or not isinstance(order_id, str) or moment is None:
        return None
    now = delivery.received_at
    claim_id = "ost_" + h(delivery.platform, source.key, order_id)
    return WEBHOOK_CLAIMS, claim_id, {
        "orgId": delivery.org_id, "platform": delivery.platform, "kind": "order_state",
        "orderId": order_id, "updatedAt": moment, "receivedAt": now,
        "expiresAt": now + timedelta(days=ORDER_CREATED_TTL_DAYS),
    }  # fmt: skip


def _older_than_seen(
    delivery: Delivery, primary: EventEnvelope, parsed: dict[str, Any], source: _Source,
    store: DocumentStore,
) -> bool:  # fmt: skip
    """True for an order update older (by the platform's `updated_at`) than one already seen.

    It is recorded and publishes nothing, so an order's state never moves backwards. Creation is
    never held back: the order was created, and its claim already makes it once.
    """
    claim = _order_state_claim(delivery, primary, parsed, source)
    if claim is None:
        return False
    collection, claim_id, state = claim

    def work(tx: Transaction) -> bool:
        seen = (tx.get(collection, claim_id) or {}).get("updatedAt")
        if isinstance(seen, datetime) and seen > state["updatedAt"]:
            return primary.name != "order.created"
        tx.set(collection, claim_id, state)
        return False

    try:
        return store.transaction(work)
    except Unavailable:  # fail open, as the receipts do: never drop a genuine delivery
        event(_log, logging.WARNING, "order state unavailable", outcome="order_state_unavailable")
        return False


def _order_creator_claim(
    delivery: Delivery, routed: Routed, primary: EventEnvelope, source: _Source
) -> Claim | None:
    """The claim on this order's creation or on this transition; None for other events.

    An order is created once per source and order id, and completed or cancelled once (its
    `ord_` event id), whichever delivery reports it first: a webhook, a retry with other
    headers, or the catch-up pass.
    """
    order_id = created_order_id(routed)
    if order_id is not None:
        kind = "order_created"
        claim_id = order_created_receipt_id(delivery.platform, source.key, order_id)
    elif primary.event_id.startswith("ord_"):
        kind, claim_id = "order_transition", "otc_" + primary.event_id.removeprefix("ord_")
    else:
        return None
    now = delivery.received_at
    return WEBHOOK_CLAIMS, claim_id, {
        "orgId": delivery.org_id, "platform": delivery.platform, "kind": kind,
        "topic": delivery.topic, "replayKey": delivery.event_id, "eventId": primary.event_id,
        "receivedAt": now, "expiresAt": now + timedelta(days=ORDER_CREATED_TTL_DAYS),
    }  # fmt: skip


def _order_creator(
    delivery: Delivery, routed: Routed, primary: EventEnvelope, source: _Source,
    store: DocumentStore,
) -> dict[str, Any] | None:  # fmt: skip
    """Another delivery's claim on this order's creation or on this transition, else None."""
    claim = _order_creator_claim(delivery, routed, primary, source)
    first = None if claim is None else _create_or_get(*claim, store)
    # The same delivery again (a retry after a crash) keeps its claim; its receipt decides.
    if first is None or first.get("replayKey") == delivery.event_id:
        return None
    return first


def _receipt(delivery: Delivery, primary: EventEnvelope) -> dict[str, Any]:
    now = delivery.received_at
    return {
        "orgId": delivery.org_id, "platform": delivery.platform, "replayKey": delivery.event_id,
        "topic": delivery.topic, "eventId": primary.event_id, "status": "received",
        "receivedAt": now, "expiresAt": now + timedelta(hours=REPLAY_TTL_HOURS),
    }  # fmt: skip


def _claim(
    delivery: Delivery, primary: EventEnvelope, store: DocumentStore
) -> dict[str, Any] | None:
    """§6.4: create the receipt; the existing one when this delivery was seen before, else None."""
    # Still `received` when found: an earlier attempt died before publishing; publishing again is
    # safe because every event id is deterministic.
    return _create_or_get(WEBHOOK_RECEIPTS, delivery.event_id, _receipt(delivery, primary), store)


def _create_or_get(
    collection: str, doc_id: str, document: dict[str, Any], store: DocumentStore
) -> dict[str, Any] | None:
    """Create the document; the existing one when it was there already, else None."""
    try:
        store.create(collection, doc_id, document)
    except AlreadyExists:
        return store.get(collection, doc_id)
    except Unavailable:  # fail open, as the receipt always has: never drop a genuine delivery
        event(_log, logging.WARNING, "replay store unavailable", outcome="replay_store_unavailable")
    return None


def _went_out(
    receipt: dict[str, Any], routed: Routed, primary: EventEnvelope, store: DocumentStore
) -> bool:
    """Whether the receipt's delivery was published: the dispatcher logged its last event.

    The ack path never marks its receipt (a third round trip): events go out in order, so the
    last one's event-log entry proves them all published. Until the dispatcher has logged it, a
    duplicate publishes again, which is safe: every event id is deterministic (§5.5).
    """
    if receipt.get("status") == "published":  # marked by the ack path before issue #14
        return True
    return logged(store, routed.events[-1] if routed.events else primary)


def _touch(source: _Source, now: datetime, publishing: Publishing, via_webhook: bool) -> None:
    """`lastSeenAt`: when the store last sent a webhook (the catch-up pass is no webhook).

    Written at most every SEEN_EVERY per source and instance: it says whether webhooks arrive.
    """
    stored = source.document.get("lastSeenAt")
    if not via_webhook or not publishing.recent.seen.due(source.id, stored, now):
        return
    try:
        publishing.store.update(WEBHOOK_SOURCES, source.id, {"lastSeenAt": now})
    except (Unavailable, NotFound):  # bookkeeping only: the delivery itself succeeded
        event(_log, logging.WARNING, "webhook source lastSeenAt not updated", sourceKey=source.key)
