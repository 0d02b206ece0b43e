"""Registering a store's webhooks (api.md §5): the org binding plus a secret reference."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from playbook_core.domain.catch_up import missed_in_window
from playbook_core.domain.collections import WEBHOOK_CLAIMS, WEBHOOK_SOURCES
from playbook_core.domain.errors import BadRequest, Conflict, NotFound, Unavailable
from playbook_core.domain.records import SourceRecord
from playbook_core.domain.secret_names import (
    names_secret,
    store_api_secret_name,
    webhook_secret_name,
)
from playbook_core.domain.webhooks import (
    normalise_source_url,
    shop_domain,
    shopify_source_id,
    woocommerce_source_id,
)
from playbook_core.ports import Clock, DocumentStore, Secrets, Transaction, Where
from playbook_core.service.ingress.recent import SOURCE_FRESH_FOR
from playbook_core.service.records import read_source

_log = logging.getLogger("playbooks.sources")
MIN_SECRET_LENGTH = 8
ROTATION_OVERLAP = timedelta(hours=24)  # the previous secret keeps verifying this long
# A deleted store stays its org's this long: webhook instances keep a verified source up to
# SOURCE_FRESH_FOR, so another org registering it sooner could get its deliveries routed to the
# old org. Twice that: instances' clocks differ a little.
RELEASE_HOLD = 2 * SOURCE_FRESH_FOR


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
    api_credentials: dict[str, str] | None = None,
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
    now = clock.now()
    before = read_source(store, source_id)
    _refuse_if_taken(before, org_id)
    _refuse_if_just_released(store, source_id, org_id, now)
    reference = secrets.put(webhook_secret_name(org_id, source_id), secret) if secret else None
    fresh = reference is not None and reference not in (
        before.get("secretRefs", []) if before else []
    )
    api_name = store_api_secret_name(org_id, source_id)
    api_before = before.get("apiCredentialsRef") if before else None
    api_reference = (
        secrets.put(api_name, json.dumps(api_credentials, sort_keys=True))
        if api_credentials
        else None
    )
    api_fresh = api_reference is not None and api_reference != api_before

    def work(tx: Transaction) -> SourceRecord:
        current = read_source(tx, source_id)
        _refuse_if_taken(current, org_id)
        _refuse_if_just_released(tx, source_id, org_id, now)
        previous: Mapping[str, Any] = current or {}
        refs, expires = _rotated(org_id, source_id, previous, reference, now)
        kept_api = previous.get("apiCredentialsRef")
        document = cast("SourceRecord", {
            **previous,  # what this call does not set (catch-up cursor, health) is kept
            "orgId": org_id, "platform": platform, **key, "secretRefs": refs, "status": "active",
            "previousSecretExpiresAt": expires,
            "lowStockThreshold": low_stock_threshold, "createdAt": previous.get("createdAt", now),
            "lastSeenAt": previous.get("lastSeenAt"), "updatedAt": now,
            "apiCredentialsRef": api_reference or (
                kept_api if names_secret(kept_api, api_name) else None
            ),
        })  # fmt: skip
        tx.set(WEBHOOK_SOURCES, source_id, document)
        return document

    try:
        document = store.transaction(work)
    except Exception:  # lost the race to another org, or the store failed: keep no stray version
        if fresh and reference is not None:
            secrets.discard(reference)
        if api_fresh and api_reference is not None:
            secrets.discard(api_reference)
        raise
    kept = set(document["secretRefs"])
    retire_versions(
        secrets, [r for r in (before.get("secretRefs", []) if before else []) if r not in kept]
    )
    if api_fresh and names_secret(api_before, api_name):
        retire_versions(secrets, [str(api_before)])  # replaced: the old credentials go
    return public_view(source_id, document)


def api_credentials(
    platform: str, token: str | None, key: str | None, secret: str | None
) -> dict[str, str] | None:
    """The store API credentials a registration carries, checked against its platform."""
    if platform == "shopify":
        if key is not None or secret is not None:
            raise BadRequest("consumerKey and consumerSecret are for WooCommerce sources")
        return {"adminAccessToken": token} if token is not None else None
    if token is not None:
        raise BadRequest("adminAccessToken is for Shopify sources")
    if (key is None) != (secret is None):
        raise BadRequest("consumerKey and consumerSecret go together")
    return {"consumerKey": key, "consumerSecret": secret} if key and secret else None


def read_api_credentials(
    document: Mapping[str, Any], org_id: str, source_id: str, secrets: Secrets
) -> dict[str, str] | None:
    """The source's store API credentials; None without any (or a reference not its own)."""
    reference = document.get("apiCredentialsRef")
    if not names_secret(reference, store_api_secret_name(org_id, source_id)):
        return None
    try:
        value = json.loads(secrets.get(str(reference)))
    except (ValueError, NotFound):
        return None
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else None


def _rotated(
    org_id: str, source_id: str, current: Mapping[str, Any], reference: str | None, now: datetime
) -> tuple[list[str], datetime | None]:
    """(secretRefs, previousSecretExpiresAt) after an optional new version `reference`.

    References are [current, previous]: only this org's own secret name, a previous one only
    while it is within ROTATION_OVERLAP of the rotation that replaced it.
    """
    own = webhook_secret_name(org_id, source_id)
    listed = [r for r in verifying_refs(current, now) if names_secret(r, own)]
    expires = current.get("previousSecretExpiresAt") if len(listed) > 1 else None
    if reference is None or listed[:1] == [reference]:  # the same value is the same version
        return listed, expires
    refs = [reference, *[r for r in listed if r != reference]][:2]  # current, one previous
    return refs, (now + ROTATION_OVERLAP if len(refs) > 1 else None)


def verifying_refs(document: Mapping[str, Any], now: datetime) -> list[str]:
    """The references whose secrets verify a delivery at `now` (api.md §5, §6 check 5).

    Current first, then the previous one until `previousSecretExpiresAt`.
    """
    refs = [str(r) for r in document.get("secretRefs") or []]
    expires = document.get("previousSecretExpiresAt")
    if len(refs) > 1 and isinstance(expires, datetime) and expires <= now:
        return refs[:1]
    return refs


def load_source(store: DocumentStore | Transaction, org_id: str, source_id: str) -> SourceRecord:
    """The source, or NotFound, also when another org owns it (never reveal that it exists)."""
    document = read_source(store, source_id)
    if document is None or document.get("orgId") != org_id:
        raise NotFound(f"no webhook source '{source_id}' in this organization")
    return document


def list_sources(
    *, org_id: str, page_size: int, page_token: str | None, store: DocumentStore
) -> dict[str, Any]:
    """The org's sources, by id; never a secret or a reference."""
    page = store.query(
        WEBHOOK_SOURCES, [Where("orgId", "==", org_id)], limit=page_size, start_after=page_token
    )
    return {
        "webhookSources": [public_view(doc.id, doc.data) for doc in page.docs],
        "nextPageToken": page.next_cursor,
    }


def get_source(*, org_id: str, source_id: str, store: DocumentStore) -> dict[str, Any]:
    return public_view(source_id, load_source(store, org_id, source_id))


def rotate_secret(
    *, org_id: str, source_id: str, secret: str, store: DocumentStore, secrets: Secrets,
    clock: Clock,
) -> dict[str, Any]:  # fmt: skip
    """A new current secret; the previous one keeps verifying for ROTATION_OVERLAP.

    Every check passes before a version is written; one older than the previous is destroyed.
    """
    if len(secret) < MIN_SECRET_LENGTH:
        raise BadRequest("a webhook secret has at least 8 characters")
    before = load_source(store, org_id, source_id)
    reference = secrets.put(webhook_secret_name(org_id, source_id), secret)
    fresh = reference not in before.get("secretRefs", [])  # else a version in use: never discard
    now = clock.now()

    def work(tx: Transaction) -> dict[str, Any]:
        current = load_source(tx, org_id, source_id)  # deleted meanwhile: 404
        refs, expires = _rotated(org_id, source_id, current, reference, now)
        changes = {"secretRefs": refs, "previousSecretExpiresAt": expires, "updatedAt": now}
        tx.update(WEBHOOK_SOURCES, source_id, changes)
        return {**current, **changes}

    try:
        document = store.transaction(work)
    except Exception:  # refused or failed: the new version is listed nowhere
        if fresh:
            secrets.discard(reference)
        raise
    kept = set(document["secretRefs"])
    retire_versions(secrets, [r for r in before.get("secretRefs", []) if r not in kept])
    return public_view(source_id, document)


def delete_source(
    *, org_id: str, source_id: str, store: DocumentStore, secrets: Secrets, clock: Clock
) -> None:
    """Remove the source, then destroy its own secret versions: its deliveries stop verifying.

    Webhook instances that kept it accept its deliveries for SOURCE_FRESH_FOR more; a release
    mark keeps other orgs from registering the store for RELEASE_HOLD.
    """
    now = clock.now()

    def work(tx: Transaction) -> SourceRecord:
        current = load_source(tx, org_id, source_id)
        tx.delete(WEBHOOK_SOURCES, source_id)
        tx.set(WEBHOOK_CLAIMS, _release_id(source_id), {
            "orgId": org_id, "kind": "source_released", "sourceId": source_id,
            "releasedAt": now, "expiresAt": now + RELEASE_HOLD,
        })  # fmt: skip
        return current

    document = store.transaction(work)
    own = webhook_secret_name(org_id, source_id)  # never another org's, even if one were listed
    retire_versions(secrets, [r for r in document.get("secretRefs", []) if names_secret(r, own)])
    api = document.get("apiCredentialsRef")
    if names_secret(api, store_api_secret_name(org_id, source_id)):
        retire_versions(secrets, [str(api)])


def retire_versions(secrets: Secrets, references: list[str]) -> None:
    """Destroy versions no document lists any more (rotated out); best effort, never fatal."""
    for reference in references:
        try:
            secrets.discard(reference)
        except Unavailable:
            _log.warning("a rotated-out secret version was left to destroy later")


def _refuse_if_taken(current: Mapping[str, Any] | None, org_id: str) -> None:
    if current is not None and current.get("orgId") != org_id:
        raise Conflict("this store is registered to another organization", code="source-taken")


def _release_id(source_id: str) -> str:
    return f"rel_{source_id}"


def _refuse_if_just_released(
    reader: DocumentStore | Transaction, source_id: str, org_id: str, now: datetime
) -> None:
    released = reader.get(WEBHOOK_CLAIMS, _release_id(source_id))
    if released is None or released.get("orgId") == org_id:
        return
    at = released.get("releasedAt")
    if isinstance(at, datetime) and timedelta(0) <= now - at < RELEASE_HOLD:
        raise Conflict(
            "this store was just removed from another organization: try again in a minute",
            code="source-taken",
        )


def public_view(source_id: str, document: Mapping[str, Any]) -> dict[str, Any]:
    """What a caller may see: never the secret, never the reference."""
    return {
        "id": source_id,
        "platform": document["platform"],
        "shopDomain": document.get("shopDomain"),
        "sourceUrl": document.get("sourceUrl"),
        "status": document["status"],
        "hasSecret": bool(document.get("secretRefs")),
        "previousSecretExpiresAt": (
            document.get("previousSecretExpiresAt")
            if len(document.get("secretRefs") or []) > 1
            else None
        ),
        "lowStockThreshold": document.get("lowStockThreshold"),
        "hasApiAccess": bool(document.get("apiCredentialsRef")),
        **source_health_view(document),
    }


def source_health_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """Whether the store's webhooks arrive, from its catch-up passes (issue #16 item 5)."""
    recoveries = document.get("catchUpRecoveries")
    return {
        "lastWebhookAt": document.get("lastSeenAt"),
        "lastCatchUpAt": document.get("lastCatchUpAt"),
        "catchUpCursor": document.get("catchUpCursor"),
        "missedEvents24h": missed_in_window(recoveries if isinstance(recoveries, list) else []),
        "webhookHealth": document.get("webhookHealth") or "unknown",
    }
