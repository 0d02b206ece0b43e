"""Calendar sweeps (domain.md §8.4): one task per playbook and local date, one run per customer."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from playbook_core.domain.changes import customer_profile, orgs_of
from playbook_core.domain.collections import CUSTOMER_DATES, CUSTOMERS, PLAYBOOKS
from playbook_core.domain.customer_dates import DATE_FIELDS, sweep_month_days
from playbook_core.domain.documents import definition_of
from playbook_core.domain.errors import BadRequest
from playbook_core.domain.executions import calendar_execution_id
from playbook_core.domain.ids import is_plain_id
from playbook_core.domain.playbook import CalendarTrigger
from playbook_core.logging import event
from playbook_core.ports import Where
from playbook_core.service.execution.run_start import Runs, start_run

PAGE = 500
_log = logging.getLogger("playbooks.calendar")


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not is_plain_id(value):
        raise BadRequest(f"the sweep task needs '{name}' as a document id")
    return value


def sweep(body: dict[str, Any], *, runs: Runs) -> dict[str, Any]:
    """Start a `cal_` run for each customer whose date matches a calendar trigger of the playbook.

    Every calendar trigger of the playbook is swept, because the task name (and the `cal_` id)
    is per playbook and local date: a second trigger's task on the same day is deduplicated.
    """
    store = runs.store
    org_id, playbook_id = _field(body, "orgId"), _field(body, "playbookId")
    timezone = body.get("timezone") if isinstance(body.get("timezone"), str) else None
    raw_date = body.get("localDate")
    try:
        local_date = date.fromisoformat(raw_date if isinstance(raw_date, str) else "")
    except ValueError as exc:
        raise BadRequest("the sweep task needs localDate as YYYY-MM-DD") from exc
    raw_date = local_date.isoformat()
    summary: dict[str, Any] = {"playbookId": playbook_id, "localDate": raw_date}
    playbook = store.get(PLAYBOOKS, playbook_id)
    if playbook is None or playbook.get("orgId") != org_id:
        event(_log, logging.ERROR, "calendar sweep for a playbook outside its org", **summary)
        return {**summary, "outcome": "tenant_mismatch"}
    if playbook.get("status") != "active":
        return {**summary, "outcome": "playbook_inactive"}
    started = duplicates = matched = 0
    seen: set[str] = set()
    for trigger in definition_of(playbook).triggers:
        if not isinstance(trigger, CalendarTrigger):
            continue
        where = [
            Where("orgId", "==", org_id),
            Where("field", "==", DATE_FIELDS[trigger.date_field]),
            Where("monthDay", "in", sweep_month_days(local_date, trigger.offset_days)),
        ]
        # Not service.paging.iterate: each page is one batch (one get_many of its customers).
        cursor: str | None = None
        while True:
            page = store.query(CUSTOMER_DATES, where, limit=PAGE, start_after=cursor)
            rows = [doc.data for doc in page.docs if _new(doc.data.get("customerId"), seen)]
            ids: list[str] = [row["customerId"] for row in rows]
            seen.update(ids)
            customers = store.get_many(CUSTOMERS, ids) if ids else {}
            for customer_id in ids:
                matched += 1
                context = _customer(customer_id, customers.get(customer_id), org_id, rows)
                _, created = start_run(
                    execution_id=calendar_execution_id(playbook_id, raw_date, customer_id),
                    playbook=playbook,
                    trigger={
                        "type": "calendar", "triggerId": trigger.id, "localDate": raw_date,
                        "timezone": timezone, "dateField": trigger.date_field,
                        "offsetDays": trigger.offset_days,
                    },
                    customer=context, event=None, causation=None, user_id="system",
                    dry_run=False, runs=runs,
                )  # fmt: skip
                started, duplicates = started + created, duplicates + (not created)
            cursor = page.next_cursor
            if cursor is None:
                break
    result = {**summary, "outcome": "swept", "matched": matched, "started": started}
    event(_log, logging.INFO, "calendar sweep", **result, duplicates=duplicates)
    return {**result, "duplicates": duplicates}


def _new(customer_id: Any, seen: set[str]) -> bool:
    """A usable id not swept yet (two triggers or 02-28/02-29 can match one customer twice)."""
    return isinstance(customer_id, str) and is_plain_id(customer_id) and customer_id not in seen


def _customer(
    customer_id: str, doc: dict[str, Any] | None, org_id: str, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """The run's customer context from `customers`; the index row stands in for a missing doc."""
    if doc is not None and org_id in orgs_of(customer_id, doc):
        return customer_profile(customer_id, doc).model_dump(mode="json", exclude_none=True)
    row = next((r for r in rows if r.get("customerId") == customer_id), {})
    contact = {"id": customer_id, "email": row.get("email"), "phone": row.get("phone")}
    return {k: v for k, v in contact.items() if v is not None}
