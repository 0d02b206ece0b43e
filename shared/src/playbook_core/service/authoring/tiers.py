"""Tier activation and tier changes (domain.md §4.2): idempotent; a user's pause always stands."""

from __future__ import annotations

from typing import Any

from playbook_core import catalog
from playbook_core.domain.collections import ASSIGNMENTS, PLAYBOOKS, SETTINGS
from playbook_core.domain.documents import definition_of, status_fields
from playbook_core.domain.errors import BadRequest, PlaybooksError
from playbook_core.domain.records import PlaybookRecord
from playbook_core.domain.tiers import Tier, ids_for_tier, parse_tier, tier_change
from playbook_core.ports import Clock, DocumentStore, Transaction
from playbook_core.service.authoring.playbooks import (
    Authoring,
    change_status,
    create_playbook,
    org_timezone,
    sync_triggers,
)
from playbook_core.service.records import read_settings


def _tier(value: str) -> Tier | None:
    if value == "none":
        return None
    tier = parse_tier(value)
    if tier is None:
        raise BadRequest(f"unknown tier '{value}'; use scout, pro, growth, empire or none")
    return tier


def _activate_one(*, org_id: str, registry_id: str, tier: Tier, authoring: Authoring) -> str:
    """'activated' or 'skipped' for one registry entry."""
    store, clock = authoring.store, authoring.clock
    playbook_id = f"{org_id}_{registry_id}"
    assignment_id = playbook_id
    existing = store.get(PLAYBOOKS, playbook_id)
    if existing is None:
        create_playbook(
            org_id=org_id, validated=catalog.system_playbook(registry_id), actor="system",
            reason="registry", source={"kind": "registry", "registryId": registry_id},
            authoring=authoring, playbook_id=playbook_id, status="active",
        )  # fmt: skip
        now = clock.now()
        store.set(ASSIGNMENTS, assignment_id, {
            "orgId": org_id, "registryId": registry_id, "playbookId": playbook_id, "tier": tier,
            "status": "active", "activatedAt": now, "updatedAt": now,
        })  # fmt: skip
        return "activated"
    if existing.get("status") == "paused" and existing.get("pausedReason") == "tier":

        def mark_assignment(tx: Transaction, _current: PlaybookRecord) -> None:
            now = clock.now()
            tx.set(ASSIGNMENTS, assignment_id, {
                "orgId": org_id, "registryId": registry_id, "playbookId": playbook_id,
                "tier": tier, "status": "active", "activatedAt": now, "updatedAt": now,
            })  # fmt: skip

        change_status(
            org_id=org_id, playbook_id=playbook_id, operation="registry_activation",
            actor="system", store=store, clock=clock, extra=mark_assignment,
        )  # fmt: skip
        return "activated"
    return "skipped"  # active already, or paused by a user (never overridden), or archived


def _pause_for_tier(*, org_id: str, registry_id: str, store: DocumentStore, clock: Clock) -> bool:
    playbook_id = f"{org_id}_{registry_id}"

    def work(tx: Transaction) -> bool:
        current = tx.get(PLAYBOOKS, playbook_id)
        if current is None or current.get("orgId") != org_id or current["status"] != "active":
            return False
        timezone = org_timezone(tx, org_id)
        now = clock.now()
        definition = definition_of(current)
        tx.set(PLAYBOOKS, playbook_id, {
            **current, **status_fields("paused", "tier"),
            "revision": current["revision"] + 1, "updatedAt": now, "updatedBy": "system",
        })  # fmt: skip
        tx.set(ASSIGNMENTS, playbook_id, {
            "orgId": org_id, "registryId": registry_id, "playbookId": playbook_id,
            "status": "paused", "pausedReason": "tier", "pausedAt": now, "updatedAt": now,
        })  # fmt: skip
        sync_triggers(
            tx, org_id=org_id, playbook_id=playbook_id, old=definition, new=definition,
            status="paused", version=current["version"], timezone=timezone, clock=clock,
        )  # fmt: skip
        return True

    return store.transaction(work)


def _store_tier(org_id: str, tier: Tier | None, store: DocumentStore, clock: Clock) -> None:
    store.set(
        SETTINGS,
        org_id,
        {"orgId": org_id, "tier": tier or "none", "updatedAt": clock.now()},
        merge=True,
    )


def activate_tier(*, authoring: Authoring, org_id: str, tier_name: str) -> dict[str, Any]:
    store, clock = authoring.store, authoring.clock
    tier = _tier(tier_name)
    activated: list[str] = []
    skipped: list[str] = []
    failed: list[dict[str, str]] = []
    for registry_id in ids_for_tier(list(catalog.registry()), tier):
        try:
            outcome = _activate_one(
                org_id=org_id, registry_id=registry_id, tier=tier or "scout",
                authoring=authoring,
            )  # fmt: skip
        except PlaybooksError as error:
            failed.append({"id": registry_id, "error": error.code})
            continue
        (activated if outcome == "activated" else skipped).append(registry_id)
    _store_tier(org_id, tier, store, clock)
    return {"activated": activated, "skipped": skipped, "failed": failed}


def change_tier(*, authoring: Authoring, org_id: str, to_tier: str) -> dict[str, Any]:
    store, clock = authoring.store, authoring.clock
    new = _tier(to_tier)
    stored = read_settings(store, org_id).get("tier")
    old = _tier(stored) if isinstance(stored, str) else None
    to_activate, to_pause, unchanged = tier_change(list(catalog.registry()), old, new)
    activated = [
        rid
        for rid in to_activate
        if _activate_one(org_id=org_id, registry_id=rid, tier=new or "scout", authoring=authoring)
        == "activated"
    ]
    paused = [
        rid
        for rid in to_pause
        if _pause_for_tier(org_id=org_id, registry_id=rid, store=store, clock=clock)
    ]
    _store_tier(org_id, new, store, clock)
    return {"activated": activated, "paused": paused, "unchanged": unchanged}
