"""The render context a step sees (domain.md §3.5 roots), built from stored facts only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from playbook_core.domain.collections import ORGANIZATIONS, steps_path
from playbook_core.domain.records import ExecutionRecord
from playbook_core.domain.secret_names import org_slack_reference
from playbook_core.domain.timezones import org_timezone_name
from playbook_core.ports import DocumentStore, OrderBy
from playbook_core.service.records import read_settings


def org_context(store: DocumentStore, org_id: str) -> dict[str, Any]:
    """`org.*`: settings first, then the existing app's organization document."""
    return org_fields(org_id, read_settings(store, org_id), store.get(ORGANIZATIONS, org_id))


def org_fields(
    org_id: str, settings: Mapping[str, Any], organization: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`org.*` from documents already read (the step claim reads them in its transaction)."""
    organization = organization or {}
    owner_email = organization.get("ownerEmail")
    return {
        "id": org_id,
        "name": organization.get("name", org_id),
        "timezone": org_timezone_name(settings, organization),
        "tier": settings.get("tier"),
        "admin_email": settings.get("adminEmail") or owner_email,
        "owner_email": owner_email,
        "alert_phone": settings.get("alertPhone"),
        "slackConfigured": org_slack_reference(org_id, settings) is not None,
    }


def step_outputs(store: DocumentStore, execution_id: str) -> dict[str, Any]:
    """`steps.<id>.output` for every finished earlier step of this execution."""
    page = store.query(steps_path(execution_id), order_by=[OrderBy("index")], limit=50)
    return outputs_of(doc.data for doc in page.docs)


def outputs_of(step_docs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`steps.<id>` of the finished ones among step documents given in index order."""
    return {
        doc["stepId"]: {"output": doc.get("output"), "status": doc.get("status")}
        for doc in step_docs
        if doc.get("status") in ("completed", "skipped")
    }


def build_context(
    store: DocumentStore, execution: ExecutionRecord, playbook: Mapping[str, Any]
) -> dict[str, Any]:
    return context_of(
        execution,
        playbook,
        org=org_context(store, execution["orgId"]),
        steps=step_outputs(store, execution["id"]),
    )


def context_of(
    execution: ExecutionRecord,
    playbook: Mapping[str, Any],
    *,
    org: dict[str, Any],
    steps: dict[str, Any],
) -> dict[str, Any]:
    """The context from its parts: `org` as org_fields answers, `steps` as outputs_of does."""
    trigger = execution.get("trigger") or {}
    return {
        "event": execution.get("event") or {},
        "customer": execution.get("customer") or {},
        "org": org,
        "user": {"id": playbook.get("createdBy")},
        "current_user": {"id": execution.get("userId")},
        "steps": steps,
        "execution": {
            "id": execution["id"],
            "triggeredBy": execution.get("triggeredBy"),
            "slotLocal": trigger.get("slotLocal"),
            "localDate": trigger.get("localDate"),
            "dryRun": bool(execution.get("dryRun")),
        },
        "playbook": {
            "id": execution["playbookId"],
            "name": execution.get("playbookName"),
            "version": execution.get("playbookVersion"),
        },
    }
