"""Publishing canonical events and recording what became of each (the "why didn't it run" log)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, get_args

from playbook_core.domain.collections import EVENT_LOG
from playbook_core.domain.envelope import EventEnvelope
from playbook_core.domain.errors import AlreadyExists
from playbook_core.domain.ids import h
from playbook_core.domain.records import EventLogRecord, EventOutcome
from playbook_core.ports import Clock, DocumentStore, EventBus
from playbook_core.service.ingress.recent import Recent

EVENT_LOG_TTL = timedelta(days=30)
OUTCOMES: frozenset[str] = frozenset(get_args(EventOutcome))


@dataclass(frozen=True)
class Publishing:
    """The ports that turn facts into events: receipts and logs in the store, the bus and its topic.

    Built once per instance (runtime/bootstrap.App.publishing).
    """

    store: DocumentStore
    bus: EventBus
    topic: str
    clock: Clock
    recent: Recent = field(default_factory=Recent, compare=False)  # this instance's reads


def publish_event(envelope: EventEnvelope, *, bus: EventBus, topic: str) -> str:
    return bus.publish(topic, envelope.encode(), envelope.attributes())


def identity_hash(identity_key: str | None) -> str | None:
    """Event logs never keep a raw email or phone: only a hash of the identity key."""
    return h(identity_key) if identity_key else None


def record_outcome(
    *,
    store: DocumentStore,
    envelope: EventEnvelope,
    outcome: EventOutcome,
    matches: list[dict[str, Any]] | None = None,
    identity_key: str | None = None,
    order_summary: dict[str, Any] | None = None,
) -> str:
    """Upsert `playbook_event_log/evl_…` (domain.md §2.2, §5.6); the latest outcome wins."""
    log_id, document = _entry(envelope, outcome, matches, identity_key, order_summary)
    store.set(EVENT_LOG, log_id, document)
    return log_id


def record_first_outcome(
    *,
    store: DocumentStore,
    envelope: EventEnvelope,
    outcome: EventOutcome,
    matches: list[dict[str, Any]] | None = None,
    identity_key: str | None = None,
    order_summary: dict[str, Any] | None = None,
) -> bool:
    """Create the entry only if the event has none yet (one `create()`); True if it did.

    For outcomes that must not hide what an earlier delivery recorded (`dead_lettered`, and a
    dispatch that found an execution and created none).
    """
    log_id, document = _entry(envelope, outcome, matches, identity_key, order_summary)
    try:
        store.create(EVENT_LOG, log_id, document)
    except AlreadyExists:
        return False
    return True


def logged(store: DocumentStore, envelope: EventEnvelope) -> bool:
    """Whether the event has an event-log entry: the dispatcher (or the ack) recorded it."""
    return store.get(EVENT_LOG, log_id_of(envelope)) is not None


def log_id_of(envelope: EventEnvelope) -> str:
    return "evl_" + h(envelope.org_id, envelope.event_id)


def _entry(
    envelope: EventEnvelope,
    outcome: EventOutcome,
    matches: list[dict[str, Any]] | None,
    identity_key: str | None,
    order_summary: dict[str, Any] | None,
) -> tuple[str, EventLogRecord]:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown event-log outcome {outcome!r}")
    log_id = log_id_of(envelope)
    source: dict[str, Any] = {"kind": envelope.source.kind, "ref": envelope.source.ref}
    if envelope.source.stale:  # §6.4 rule 6: processed late, and how late
        source.update(stale=True, ageSeconds=envelope.source.age_seconds)
    document: EventLogRecord = {
        "orgId": envelope.org_id,
        "eventId": envelope.event_id,
        "name": envelope.name,
        "originalName": envelope.original_name,
        "source": source,
        "occurredAt": envelope.occurred_at,
        "receivedAt": envelope.received_at,
        "customerId": envelope.customer.id if envelope.customer else None,
        "identityHash": identity_hash(identity_key),
        "outcome": outcome,
        "matches": matches or [],
        "expiresAt": envelope.received_at + EVENT_LOG_TTL,
    }
    if order_summary is not None:
        document["orderSummary"] = order_summary
    return log_id, document
