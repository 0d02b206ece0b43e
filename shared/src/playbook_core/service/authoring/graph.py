"""Loads what the dependency graph (domain.md §10.2) is drawn from: playbooks and stores."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from playbook_core.domain.documents import PLAYBOOKS, definition_of
from playbook_core.domain.graph import DEFAULT_TIMEZONE, Graph, GraphPlaybook, build_graph
from playbook_core.ports import DocumentStore, Where
from playbook_core.service.ingress.sources import SOURCES

SETTINGS = "playbook_settings"
ORGANIZATIONS = "organizations"
PAGE = 100
MAX_SOURCES = 100
_log = logging.getLogger("playbooks.graph")


def org_graph(*, org_id: str, include_inactive: bool, store: DocumentStore) -> Graph:
    """Active playbooks (all but archived ones with `include_inactive`), with live sources."""
    return build_graph(
        _playbooks(org_id, include_inactive, store),
        _platforms(org_id, store),
        _timezone(org_id, store),
    )


def _playbooks(org_id: str, include_inactive: bool, store: DocumentStore) -> list[GraphPlaybook]:
    where = [
        Where("orgId", "==", org_id),
        Where("archived", "==", False) if include_inactive else Where("status", "==", "active"),  # noqa: FBT003
    ]
    found: list[GraphPlaybook] = []
    cursor: str | None = None
    while True:
        page = store.query(PLAYBOOKS, where, limit=PAGE, start_after=cursor)
        found += [p for p in (_playbook(doc.id, doc.data) for doc in page.docs) if p is not None]
        cursor = page.next_cursor
        if cursor is None:
            return found


def _playbook(playbook_id: str, document: dict[str, Any]) -> GraphPlaybook | None:
    try:
        definition = definition_of(document)
    except ValidationError:  # validated on every write; an unreadable doc must not hide the rest
        _log.warning("graph: skipping playbook %s, its stored definition is invalid", playbook_id)
        return None
    status = document.get("status")
    return GraphPlaybook(
        playbook_id, definition.name, status if isinstance(status, str) else "draft", definition
    )


def _platforms(org_id: str, store: DocumentStore) -> set[str]:
    page = store.query(SOURCES, [Where("orgId", "==", org_id)], limit=MAX_SOURCES)
    return {
        str(doc.data.get("platform"))
        for doc in page.docs
        if doc.data.get("status", "active") == "active"
    }


def _timezone(org_id: str, store: DocumentStore) -> str:
    """§8.1: the org's settings, then the organization doc, then the default."""
    for collection in (SETTINGS, ORGANIZATIONS):
        name = (store.get(collection, org_id) or {}).get("timezone")
        if isinstance(name, str) and name:
            return name
    return DEFAULT_TIMEZONE
