"""Playbook use cases (domain.md §3.10): every write validated, versioned and synced atomically."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from playbook_core.domain.collections import (
    APPROVALS,
    ASSIGNMENTS,
    DELIVERIES,
    EXECUTIONS,
    LISTENERS,
    PLAYBOOKS,
    SCHEDULES,
    versions_path,
)
from playbook_core.domain.documents import (
    PURGE_AFTER,
    definition_fields,
    definition_of,
    etag,
    new_playbook,
    status_fields,
    version_document,
)
from playbook_core.domain.engine import closed_run_changes
from playbook_core.domain.errors import AlreadyExists, Conflict, NotFound, PreconditionFailed
from playbook_core.domain.ids import next_copy_id
from playbook_core.domain.lifecycle import (
    Operation,
    SourceKind,
    Status,
    VersionReason,
    initial_status,
    transition,
    version_doc_id,
)
from playbook_core.domain.loading import SERVER_MANAGED, Validated, load_data
from playbook_core.domain.playbook import PlaybookDefinition
from playbook_core.domain.records import ExecutionRecord, PlaybookRecord
from playbook_core.domain.sync import listener_docs, schedule_docs
from playbook_core.domain.timezones import org_timezone_name
from playbook_core.ports import Clock, DocumentStore, IdFactory, Transaction, Where
from playbook_core.service.compliance import guard
from playbook_core.service.execution.approvals import close_held
from playbook_core.service.records import read_execution, read_playbook, read_settings, with_changes
from playbook_core.service.reporting import counters

_SYNCED: frozenset[Status] = frozenset({"active", "paused"})
MAX_COPY_ATTEMPTS = 1000
# Carried by answers, not authored: accepted on write and ignored with an `ignored_field` warning,
# like SERVER_MANAGED, so "load, change one field, save" works (api.md §5, round trip).


@dataclass(frozen=True)
class Authoring:
    """The ports that write playbooks: built once per instance (runtime/bootstrap.App.authoring)."""

    store: DocumentStore
    clock: Clock
    ids: IdFactory


READ_ONLY = frozenset({"pausedReason", "pausedAt", "archivedAt", "purgeAfter", "stats", "warnings"})
_DEFINITION_KEYS = frozenset(
    field.alias or name for name, field in PlaybookDefinition.model_fields.items()
)
ANSWERED = _DEFINITION_KEYS | SERVER_MANAGED | READ_ONLY


def public_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """A playbook as answers carry it: writable or ignored-on-write fields only.

    Storage helpers (`archived`, `searchTokens`, anything a later writer adds) stay inside: a
    client that saves back what it read must never be refused for a field it did not write.
    """
    return {key: value for key, value in document.items() if key in ANSWERED}


def read_only_part(data: Any) -> tuple[Any, list[str]]:
    """(data without READ_ONLY keys, the keys removed): a definition body before validation."""
    if not isinstance(data, dict):
        return data, []
    removed = sorted(key for key in data if key in READ_ONLY)
    return {key: value for key, value in data.items() if key not in READ_ONLY}, removed


def load_playbook(
    reader: DocumentStore | Transaction, org_id: str, playbook_id: str
) -> PlaybookRecord:
    """The playbook, or NotFound, also when it belongs to another org (never reveal it exists)."""
    document = read_playbook(reader, playbook_id)
    if document is None or document.get("orgId") != org_id:
        raise NotFound(f"no playbook '{playbook_id}' in this organization")
    return document


def org_timezone(reader: DocumentStore | Transaction, org_id: str) -> str:
    """The zone inherited by schedule and calendar docs (§8.1).

    Known gap (domain.md §8.1): organizations.timezone is not consulted here.
    """
    return org_timezone_name(read_settings(reader, org_id))


def sync_triggers(
    tx: Transaction,
    *,
    org_id: str,
    playbook_id: str,
    old: PlaybookDefinition | None,
    new: PlaybookDefinition,
    status: Status,
    version: int,
    timezone: str | None,
    clock: Clock,
) -> None:
    """Make listeners and schedules match the definition and status (none unless active/paused)."""
    now = clock.now()

    def implied(definition: PlaybookDefinition, active: bool) -> list[dict[str, Any]]:
        listeners = listener_docs(
            org_id=org_id, playbook_id=playbook_id, definition=definition, active=active, now=now
        )
        schedules = schedule_docs(
            org_id=org_id, playbook_id=playbook_id, version=version, definition=definition,
            active=active, org_timezone=timezone, now=now,
        )  # fmt: skip
        return [listeners, schedules]

    wanted = implied(new, status == "active") if status in _SYNCED else [{}, {}]
    previous = [implied(d, active=False) for d in (old, new) if d is not None]
    for index, collection in enumerate((LISTENERS, SCHEDULES)):
        stale = {doc_id for docs in previous for doc_id in docs[index]} - set(wanted[index])
        for doc_id in stale:
            tx.delete(collection, doc_id)
        for doc_id, doc in wanted[index].items():
            tx.set(collection, doc_id, doc)


def create_playbook(
    *,
    authoring: Authoring,
    org_id: str,
    validated: Validated,
    actor: str,
    source: dict[str, Any],
    reason: VersionReason,
    playbook_id: str | None = None,
    status: Status | None = None,
) -> PlaybookRecord:
    store, clock, ids = authoring.store, authoring.clock, authoring.ids
    kind: SourceKind = source["kind"]
    chosen = status or initial_status(kind)
    new_id = playbook_id or ids.random("pb_")
    now = clock.now()
    document = new_playbook(
        playbook_id=new_id, org_id=org_id, definition=validated.definition, status=chosen,
        source=source, actor=actor, now=now,
    )  # fmt: skip
    version = version_document(
        org_id=org_id, playbook_id=new_id, version=1, definition=validated.definition,
        reason=reason, actor=actor, now=now,
    )  # fmt: skip

    def work(tx: Transaction) -> None:
        timezone = org_timezone(tx, org_id) if chosen in _SYNCED else None
        tx.create(PLAYBOOKS, new_id, document)
        tx.create(versions_path(new_id), version_doc_id(1), version)
        if chosen in _SYNCED:
            sync_triggers(
                tx, org_id=org_id, playbook_id=new_id, old=None, new=validated.definition,
                status=chosen, version=1, timezone=timezone, clock=clock,
            )  # fmt: skip

    store.transaction(work)
    return document


def _check_activatable(definition: PlaybookDefinition) -> None:
    if not (definition.triggers and definition.steps):
        raise Conflict(
            "an active playbook needs at least one trigger and one step", code="not-activatable"
        )


def write_definition(
    *,
    org_id: str,
    playbook_id: str,
    validated: Validated,
    actor: str,
    reason: VersionReason,
    store: DocumentStore,
    clock: Clock,
    if_match: str | None = None,
    rolled_back_from: int | None = None,
) -> dict[str, Any]:
    """A new immutable version n+1 and the playbook updated to it, listeners re-synced, at once."""

    def work(tx: Transaction) -> dict[str, Any]:
        current = load_playbook(tx, org_id, playbook_id)
        timezone = org_timezone(tx, org_id)
        if if_match is not None and if_match != etag(current):
            raise PreconditionFailed("the playbook changed since it was read; reload and retry")
        if current["status"] == "archived":
            raise Conflict("restore the playbook before editing it", code="archived")
        if current["status"] == "active":
            _check_activatable(validated.definition)
            guard.refuse_blocked(validated, read_settings(tx, org_id))
        now, version = clock.now(), current["version"] + 1
        changes = {
            **definition_fields(validated.definition),
            "version": version,
            "revision": current["revision"] + 1,
            "updatedAt": now,
            "updatedBy": actor,
        }
        tx.create(
            versions_path(playbook_id),
            version_doc_id(version),
            version_document(
                org_id=org_id, playbook_id=playbook_id, version=version,
                definition=validated.definition, reason=reason, actor=actor, now=now,
                rolled_back_from=rolled_back_from,
            ),
        )  # fmt: skip
        tx.set(PLAYBOOKS, playbook_id, {**current, **changes})
        sync_triggers(
            tx, org_id=org_id, playbook_id=playbook_id, old=definition_of(current),
            new=validated.definition, status=current["status"], version=version,
            timezone=timezone, clock=clock,
        )  # fmt: skip
        return {**current, **changes}

    return store.transaction(work)


def change_status(
    *,
    org_id: str,
    playbook_id: str,
    operation: Operation,
    actor: str,
    store: DocumentStore,
    clock: Clock,
    extra: Callable[[Transaction, PlaybookRecord], None] | None = None,
) -> PlaybookRecord:
    """Toggle, tier pause, delete or restore: status, listeners and schedules in one transaction."""

    def work(tx: Transaction) -> PlaybookRecord:
        current = load_playbook(tx, org_id, playbook_id)
        timezone = org_timezone(tx, org_id)
        definition = definition_of(current)
        now = clock.now()
        status, paused_reason = transition(
            current["status"], operation,
            has_triggers_and_steps=bool(definition.triggers and definition.steps),
            archived_at=current.get("archivedAt"), now=now,
        )  # fmt: skip
        changes: dict[str, Any] = {
            **status_fields(status, paused_reason),
            "revision": current["revision"] + 1,
            "updatedAt": now,
            "updatedBy": actor,
        }
        if status == "archived":
            changes |= {"archivedAt": now, "purgeAfter": now + PURGE_AFTER}
        elif current["status"] == "archived":
            changes |= {"archivedAt": None, "purgeAfter": None}
        if status == "active" and operation == "toggle_on":
            as_saved = Validated(definition, [], requires_approval=current["requiresApproval"])
            guard.refuse_blocked(as_saved, read_settings(tx, org_id))
        if extra is not None:
            extra(tx, current)
        tx.set(PLAYBOOKS, playbook_id, {**current, **changes})
        sync_triggers(
            tx, org_id=org_id, playbook_id=playbook_id, old=definition, new=definition,
            status=status, version=current["version"], timezone=timezone, clock=clock,
        )  # fmt: skip
        return with_changes(current, changes)

    return store.transaction(work)


def duplicate_playbook(
    *, authoring: Authoring, org_id: str, playbook_id: str, actor: str
) -> PlaybookRecord:
    store = authoring.store
    source = load_playbook(store, org_id, playbook_id)
    definition = definition_of(source)
    copy = definition.model_copy(update={"name": f"{definition.name} (copy)"[:120]})
    validated = load_data(copy.to_document())
    version = source["version"]
    taken: set[str] = set()
    for _ in range(MAX_COPY_ATTEMPTS):
        candidate = next_copy_id(playbook_id, taken)
        try:
            return create_playbook(
                org_id=org_id, validated=validated, actor=actor, reason="duplicate",
                source={"kind": "duplicate", "playbookId": playbook_id, "version": version},
                authoring=authoring, playbook_id=candidate,
            )  # fmt: skip
        except AlreadyExists:
            taken.add(candidate)
    raise Conflict("too many copies of this playbook", code="too-many-copies")


WAITING_STATUSES = ("queued", "pending_approval")  # what archiving a playbook cancels


def delete_playbook(
    *, org_id: str, playbook_id: str, confirm: bool, actor: str, store: DocumentStore, clock: Clock
) -> tuple[PlaybookRecord, bool]:
    """Soft delete; (document, already_archived). Without confirm nothing changes."""
    current = load_playbook(store, org_id, playbook_id)
    if not confirm:
        raise Conflict("Deleting a playbook requires confirm=true", code="confirmation-required")
    if current["status"] == "archived":
        return current, True
    pending = store.query(
        EXECUTIONS,
        [Where("orgId", "==", org_id), Where("playbookId", "==", playbook_id),
         Where("status", "in", ["queued", "pending_approval"])],
        limit=500,
    ).docs  # fmt: skip
    held = store.query(
        DELIVERIES,
        [Where("orgId", "==", org_id), Where("playbookId", "==", playbook_id),
         Where("status", "==", "held")],
        limit=500,
    ).docs  # fmt: skip
    now = clock.now()
    closed: list[ExecutionRecord] = []
    skipped: Counter[str] = Counter()

    def cancel_runs_and_pause_assignment(tx: Transaction, document: PlaybookRecord) -> None:
        registry_id = document.get("source", {}).get("registryId")
        assignment = tx.get(ASSIGNMENTS, f"{org_id}_{registry_id}") if registry_id else None
        # Read again inside the transaction: a run decided or resumed since the query is left alone.
        runs = [read_execution(tx, doc.id) for doc in pending]
        open_runs = [
            r for r in runs if r is not None and r["status"] in ("queued", "pending_approval")
        ]
        ids = {run["id"] for run in open_runs}
        approvals = [tx.get(APPROVALS, run["id"]) for run in open_runs]
        mine = [doc for doc in held if doc.data.get("executionId") in ids]
        current = [tx.get(DELIVERIES, doc.id) for doc in mine]
        still_held = [
            doc for doc, fresh in zip(mine, current, strict=True)
            if fresh is not None and fresh.get("status") == "held"
        ]  # fmt: skip
        closed.clear()
        skipped.clear()
        for execution in open_runs:
            changes = closed_run_changes(execution, "cancelled", "playbook_archived", now)
            tx.update(EXECUTIONS, execution["id"], changes)
            closed.append(with_changes(execution, changes))
        # Their approvals and held sends close with them: nothing is left to decide or expire.
        for approval in approvals:
            if approval is not None and approval.get("status") == "pending":
                tx.update(APPROVALS, approval["id"], {"status": "cancelled", "decidedAt": now})
        close_held(tx, still_held, "cancelled", now)
        skipped.update(str(doc.data.get("executionId")) for doc in still_held)
        if assignment is not None:
            tx.update(
                ASSIGNMENTS,
                f"{org_id}_{registry_id}",
                {"status": "paused", "pausedReason": "user", "pausedAt": now, "updatedAt": now},
            )

    document = change_status(
        org_id=org_id, playbook_id=playbook_id, operation="delete", actor=actor,
        store=store, clock=clock, extra=cancel_runs_and_pause_assignment,
    )  # fmt: skip
    for execution in closed:
        counters.record_closed(store, execution, "cancelled", held=skipped[execution["id"]], at=now)
    return document, False
