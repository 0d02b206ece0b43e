"""The playbooks list page (domain.md §10.1): one indexed query, reads proportional to the page."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from playbook_core.domain import reports
from playbook_core.domain.collections import PLAYBOOKS, SUMMARIES
from playbook_core.domain.documents import query_tokens
from playbook_core.domain.errors import BadRequest
from playbook_core.ports import DocumentStore, OrderBy, Where
from playbook_core.service.authoring.playbooks import public_view
from playbook_core.service.reporting import counters

MAX_PAGE = 100
View = Literal["brand", "dispensary", "all"]
STATUSES = frozenset({"draft", "active", "paused", "disabled", "archived"})


def list_playbooks(
    *,
    org_id: str,
    view: View,
    status: str | None,
    category: str | None,
    agent: str | None,
    q: str | None,
    page_size: int,
    page_token: str | None,
    store: DocumentStore,
    now: datetime,
) -> dict[str, Any]:
    """One page; each playbook's stats are its last 30 days through the org's today."""
    if not 1 <= page_size <= MAX_PAGE:
        raise BadRequest(f"pageSize must be between 1 and {MAX_PAGE}")
    if status is not None and status not in STATUSES:
        raise BadRequest(f"unknown status '{status}'")
    where = [Where("orgId", "==", org_id)]
    # Archived playbooks only appear when asked for by status.
    where.append(Where("status", "==", status) if status else Where("archived", "==", False))  # noqa: FBT003
    if view != "all":
        where.append(Where("isCustom", "==", view == "brand"))
    if category:
        where.append(Where("category", "==", category))
    if agent:
        where.append(Where("agent", "==", agent))
    tokens = query_tokens(q or "")
    if tokens:
        where.append(Where("searchTokens", "array-contains-any", tokens))
    page = store.query(
        PLAYBOOKS, where, [OrderBy("updatedAt", "desc")], limit=page_size, start_after=page_token
    )
    ids = [doc.id for doc in page.docs]
    summaries = {} if not ids else counters.summaries_through(
        store, org_id=org_id, summaries=store.get_many(SUMMARIES, ids), playbook_ids=ids,
        today=counters.org_today(store, org_id, now),
    )  # fmt: skip
    playbooks = [
        {**public_view(doc.data), "stats": reports.list_stats(summaries.get(doc.id))}
        for doc in page.docs
    ]
    return {"playbooks": playbooks, "nextPageToken": page.next_cursor}
