"""The stored shapes of a playbook and its versions (domain.md §2.2), built from a definition."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from playbook_core.domain.approval import requires_approval
from playbook_core.domain.ids import definition_hash
from playbook_core.domain.lifecycle import PausedReason, Status, VersionReason
from playbook_core.domain.playbook import PlaybookDefinition
from playbook_core.domain.records import PlaybookRecord

PURGE_AFTER = timedelta(days=30)
_WORD = re.compile(r"[a-z0-9]+")
MAX_SEARCH_TOKENS = 200


def search_tokens(definition: PlaybookDefinition) -> list[str]:
    """Lowercased whole words of name, description and tags: one array-contains-any query."""
    text = " ".join([definition.name, definition.description, *definition.tags]).lower()
    return sorted(set(_WORD.findall(text)))[:MAX_SEARCH_TOKENS]


def query_tokens(q: str) -> list[str]:
    return sorted(set(_WORD.findall(q.lower())))[:30]


def definition_fields(definition: PlaybookDefinition) -> dict[str, Any]:
    """Fields that change with the definition: written on create, update, rollback."""
    document = definition.to_document()
    return {
        **document,
        "requiresApproval": requires_approval(definition),
        "definitionHash": definition_hash(document),
        "searchTokens": search_tokens(definition),
    }


def status_fields(status: Status, paused_reason: PausedReason | None) -> dict[str, Any]:
    return {
        "status": status,
        "active": status == "active",
        "archived": status == "archived",  # lets lists exclude archived with an equality filter
        "pausedReason": paused_reason,
    }


def new_playbook(
    *,
    playbook_id: str,
    org_id: str,
    definition: PlaybookDefinition,
    status: Status,
    source: dict[str, Any],
    actor: str,
    now: datetime,
) -> PlaybookRecord:
    kind = source["kind"]
    template_id = source.get("templateId") or source.get("registryId")
    record: dict[str, Any] = {
        "id": playbook_id,
        "orgId": org_id,
        **definition_fields(definition),
        **status_fields(status, None),
        "version": 1,
        "revision": 1,
        "source": source,
        "templateId": template_id,
        "isCustom": kind != "registry",
        "createdBy": actor,
        "updatedBy": actor,
        "createdAt": now,
        "updatedAt": now,
    }
    return cast("PlaybookRecord", record)


def version_document(
    *,
    org_id: str,
    playbook_id: str,
    version: int,
    definition: PlaybookDefinition,
    reason: VersionReason,
    actor: str,
    now: datetime,
    rolled_back_from: int | None = None,
) -> dict[str, Any]:
    document = definition.to_document()
    return {
        "orgId": org_id,
        "playbookId": playbook_id,
        "version": version,
        "definition": document,
        "definitionHash": definition_hash(document),
        "requiresApproval": requires_approval(definition),
        "reason": reason,
        "rolledBackFrom": rolled_back_from,
        "createdAt": now,
        "createdBy": actor,
    }


def etag(document: Mapping[str, Any]) -> str:
    return f'"r{document["revision"]}"'


def definition_of(document: Mapping[str, Any]) -> PlaybookDefinition:
    """The definition stored on a playbook or version document (already validated on write)."""
    source = document.get("definition", document)
    fields = set(PlaybookDefinition.model_fields)
    aliases = {PlaybookDefinition.model_fields[f].alias or f for f in fields}
    return PlaybookDefinition.model_validate({k: v for k, v in source.items() if k in aliases})
