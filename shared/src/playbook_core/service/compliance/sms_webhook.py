"""Each org's inbound SMS signing secret (consent.md §3): set, rotate, describe, never answer.

The secret goes to the Secrets port under a name derived from the org (domain/secret_names.py);
`sms_webhooks/{orgId}` keeps only references: the current one and, for 24 h after a rotation,
the previous one, as webhook sources do (service/ingress/sources.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from playbook_core.domain.collections import SMS_WEBHOOKS
from playbook_core.domain.errors import BadRequest
from playbook_core.domain.secret_names import names_secret, sms_webhook_secret_name
from playbook_core.ports import Clock, DocumentStore, Secrets, Transaction
from playbook_core.service.ingress.sources import (
    MIN_SECRET_LENGTH,
    ROTATION_OVERLAP,
    retire_versions,
    verifying_refs,
)


def set_secret(
    *, org_id: str, secret: str, store: DocumentStore, secrets: Secrets, clock: Clock
) -> dict[str, Any]:
    """The new secret becomes current; the previous one keeps verifying for 24 h."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise BadRequest(f"a webhook secret has at least {MIN_SECRET_LENGTH} characters")
    before = store.get(SMS_WEBHOOKS, org_id) or {}
    reference = secrets.put(sms_webhook_secret_name(org_id), secret)
    fresh = reference not in (before.get("secretRefs") or [])  # else a version in use: keep it
    now = clock.now()

    def work(tx: Transaction) -> dict[str, Any]:
        current = tx.get(SMS_WEBHOOKS, org_id) or {}
        listed = own_refs(org_id, current, now)
        if listed[:1] == [reference]:  # the same value again: nothing changes
            if listed == current.get("secretRefs"):
                return current
            refs, expires = listed, current.get("previousSecretExpiresAt")
        else:
            refs = [reference, *[r for r in listed if r != reference]][:2]
            expires = now + ROTATION_OVERLAP if len(refs) > 1 else None
        document = {
            "orgId": org_id, "secretRefs": refs, "previousSecretExpiresAt": expires,
            "createdAt": current.get("createdAt", now), "updatedAt": now,
        }  # fmt: skip
        tx.set(SMS_WEBHOOKS, org_id, document)
        return document

    try:
        document = store.transaction(work)
    except Exception:  # the store failed: the new version is listed nowhere
        if fresh:
            secrets.discard(reference)
        raise
    kept = set(document["secretRefs"])
    retire_versions(secrets, [r for r in before.get("secretRefs") or [] if r not in kept])
    return public_view(org_id, document)


def get_webhook(*, org_id: str, store: DocumentStore) -> dict[str, Any]:
    return public_view(org_id, store.get(SMS_WEBHOOKS, org_id) or {})


def own_refs(org_id: str, document: Mapping[str, Any], now: datetime) -> list[str]:
    """The references that verify at `now`, only ever this org's own secret's versions."""
    own = sms_webhook_secret_name(org_id)
    return [r for r in verifying_refs(document, now) if names_secret(r, own)]


def public_view(org_id: str, document: Mapping[str, Any]) -> dict[str, Any]:
    """Never the secret, never a reference."""
    refs = document.get("secretRefs") or []
    return {
        "orgId": org_id,
        "hasSecret": bool(refs),
        "previousSecretExpiresAt": document.get("previousSecretExpiresAt")
        if len(refs) > 1
        else None,
    }
