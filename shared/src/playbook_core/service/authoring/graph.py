"""Loads what the dependency graph (domain.md §10.2) is drawn from: playbooks and stores."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from playbook_core.domain.collections import ORGANIZATIONS, PLAYBOOKS, WEBHOOK_SOURCES
from playbook_core.domain.documents import definition_of
from playbook_core.domain.graph import Graph, GraphPlaybook, build_graph
from playbook_core.domain.timezones import org_timezone_name, stored_zone
from playbook_core.ports import DocumentStore, Where
from playbook_core.service.paging import iterate
from playbook_core.service.records import read_settings

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
    found = (
        _playbook(doc.id, doc.data) for doc in iterate(store, PLAYBOOKS, where, page_size=PAGE)
    )
    return [p for p in found if p is not None]


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
    page = store.query(WEBHOOK_SOURCES, [Where("orgId", "==", org_id)], limit=MAX_SOURCES)
    return {
        str(doc.data.get("platform"))
        for doc in page.docs
        if doc.data.get("status", "active") == "active"
    }


def _timezone(org_id: str, store: DocumentStore) -> str:
    """§8.1: the org's settings, then the organization doc, then the default."""
    settings = read_settings(store, org_id)
    organization = None if stored_zone(settings) else store.get(ORGANIZATIONS, org_id)
    return org_timezone_name(settings, organization)
