"""Registering a store's webhooks (api.md §5): the org binding plus a secret reference."""

from __future__ import annotations

import logging
from typing import Any, Literal

from playbook_core.domain.collections import WEBHOOK_SOURCES
from playbook_core.domain.errors import BadRequest, Conflict, Unavailable
from playbook_core.domain.secret_names import names_secret, webhook_secret_name
from playbook_core.domain.webhooks import (
    normalise_source_url,
    shop_domain,
    shopify_source_id,
    woocommerce_source_id,
)
from playbook_core.ports import Clock, DocumentStore, Secrets, Transaction

_log = logging.getLogger("playbooks.sources")
MIN_SECRET_LENGTH = 8


def register_source(
    *,
    org_id: str,
    platform: Literal["shopify", "woocommerce"],
    address: str,
    secret: str | None,
    low_stock_threshold: int | None,
    store: DocumentStore,
    secrets: Secrets,
    clock: Clock,
) -> dict[str, Any]:
    """Create or update the source for this org; a store bound to another org is refused.

    Nothing is written before every check has passed: the secret goes under a name derived from
    this org and source, so even a registration that loses a race cannot touch the owner's.
    """
    if platform == "shopify":
        source_id, key = shopify_source_id(address), {"shopDomain": shop_domain(address)}
    else:
        source_id, key = (
            woocommerce_source_id(address),
            {"sourceUrl": normalise_source_url(address)},
        )
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise BadRequest("a webhook secret has at least 8 characters")
    before = store.get(WEBHOOK_SOURCES, source_id)
    _refuse_if_taken(before, org_id)
    reference = secrets.put(webhook_secret_name(org_id, source_id), secret) if secret else None
    fresh = reference is not None and reference not in (before or {}).get("secretRefs", [])
    now = clock.now()

    def work(tx: Transaction) -> dict[str, Any]:
        current = tx.get(WEBHOOK_SOURCES, source_id)
        _refuse_if_taken(current, org_id)
        own = webhook_secret_name(org_id, source_id)
        refs = [r for r in (current or {}).get("secretRefs", []) if names_secret(r, own)]
        if reference is not None:
            refs = [reference, *[r for r in refs if r != reference]][:2]  # current, one previous
        previous = current or {}
        document = {
            "orgId": org_id, "platform": platform, **key, "secretRefs": refs, "status": "active",
            "lowStockThreshold": low_stock_threshold, "createdAt": previous.get("createdAt", now),
            "lastSeenAt": previous.get("lastSeenAt"), "updatedAt": now,
        }  # fmt: skip
        tx.set(WEBHOOK_SOURCES, source_id, document)
        return document

    try:
        document = store.transaction(work)
    except Exception:  # lost the race to another org, or the store failed: keep no stray version
        if fresh and reference is not None:
            secrets.discard(reference)
        raise
    kept = set(document["secretRefs"])
    retire_versions(secrets, [r for r in (before or {}).get("secretRefs", []) if r not in kept])
    return public_view(source_id, document)


def retire_versions(secrets: Secrets, references: list[str]) -> None:
    """Destroy versions no document lists any more (rotated out); best effort, never fatal."""
    for reference in references:
        try:
            secrets.discard(reference)
        except Unavailable:
            _log.warning("a rotated-out secret version was left to destroy later")


def _refuse_if_taken(current: dict[str, Any] | None, org_id: str) -> None:
    if current is not None and current.get("orgId") != org_id:
        raise Conflict("this store is registered to another organization", code="source-taken")


def public_view(source_id: str, document: dict[str, Any]) -> dict[str, Any]:
    """What a caller may see: never the secret, never the reference."""
    return {
        "id": source_id,
        "platform": document["platform"],
        "shopDomain": document.get("shopDomain"),
        "sourceUrl": document.get("sourceUrl"),
        "status": document["status"],
        "hasSecret": bool(document.get("secretRefs")),
        "lowStockThreshold": document.get("lowStockThreshold"),
    }
