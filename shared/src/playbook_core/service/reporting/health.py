"""Dependency checks behind `GET /v1/health` and the dashboard's "Playbooks offline" banner.

Provider credentials are mounted only into the functions that use them, never into the API, so
the API's own environment cannot say whether they are set. Each function instance reports which
of its providers are configured (booleans only, never a value) to `playbook_function_status/
{function}`; health reads those reports.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from playbook_core.domain.collections import FUNCTION_STATUS, WEBHOOK_SOURCES
from playbook_core.domain.errors import PlaybooksError
from playbook_core.logging import event
from playbook_core.ports import DocumentStore, Where

# A report older than this no longer counts: the instance that wrote it may be long gone.
REPORT_FRESH_FOR = timedelta(hours=24)
# Kept past staleness so health can still say when a function last reported.
REPORT_KEPT_FOR = timedelta(days=7)

# What the catch-up pass concluded about a store's webhooks that needs someone (issue #16).
UNHEALTHY_SOURCES = ("missing_webhooks", "webhooks_silent")
# Health is public and polled: it counts at most this many such sources (reads cost), never
# naming one; an org sees its own on GET …/webhook-sources.
SOURCES_COUNTED_UP_TO = 20

_log = logging.getLogger("playbooks.health")


def report_configuration(
    store: DocumentStore,
    function: str,
    configured: Mapping[str, bool],
    *,
    now: datetime,
    revision: str | None = None,
) -> None:
    """Write one function's report. A failure is logged, never raised: health then says unknown."""
    report = {
        "function": function,
        "revision": revision,
        "configured": {provider: bool(value) for provider, value in configured.items()},
        "checkedAt": now,
        "expiresAt": now + REPORT_KEPT_FOR,
    }
    try:
        store.set(FUNCTION_STATUS, function, report)
    except PlaybooksError as exc:
        event(_log, logging.WARNING, "function status not reported", function=function,
              error=type(exc).__name__)  # fmt: skip


def check_health(
    *,
    probes: Mapping[str, Callable[[], None]],
    store: DocumentStore,
    provider_users: Mapping[str, Sequence[str]],
    now: datetime,
) -> dict[str, Any]:
    """Probe each dependency; storage down means offline.

    A provider is `configured` when a function that uses it reports so, `unconfigured` when one
    reports it missing (a function that needs it cannot use it), `unknown` when none has reported
    within REPORT_FRESH_FOR.
    """
    checks: dict[str, str] = {}
    for name, probe in probes.items():
        try:
            probe()
        except PlaybooksError:
            checks[name] = "down"
        else:
            checks[name] = "ok"
    offline = checks.get("firestore") == "down"
    uses: dict[str, list[str]] = {}
    for provider, users in provider_users.items():
        for function in users:
            uses.setdefault(function, []).append(provider)
    reports = {} if offline else _read_reports(store, sorted(uses))
    functions = {
        function: _function_section(reports.get(function), providers, now)
        for function, providers in sorted(uses.items())
    }
    for provider, users in provider_users.items():
        said = [
            functions[function]["configured"][provider]
            for function in users
            if functions[function]["status"] == "reported"
            and provider in functions[function]["configured"]
        ]
        checks[provider] = (
            "unconfigured" if False in said else "configured" if True in said else "unknown"
        )
    degraded = offline or any(value == "down" for value in checks.values())
    return {
        "status": "degraded" if degraded else "ok",
        "offline": offline,
        "checks": checks,
        "functions": functions,
        "webhookSources": None if offline else _unhealthy_sources(store),
    }


def _unhealthy_sources(store: DocumentStore) -> dict[str, Any] | None:
    """How many stores' webhooks are missing or silent; null when that cannot be read.

    A store's webhooks are not a dependency of ours, so they never make health degraded.
    """
    try:
        page = store.query(
            WEBHOOK_SOURCES,
            [Where("webhookHealth", "in", list(UNHEALTHY_SOURCES))],
            limit=SOURCES_COUNTED_UP_TO + 1,
        )
    except PlaybooksError:
        return None
    counted = page.docs[:SOURCES_COUNTED_UP_TO]
    kinds = Counter(str(doc.data.get("webhookHealth")) for doc in counted)
    return {
        "missingWebhooks": kinds["missing_webhooks"],
        "webhooksSilent": kinds["webhooks_silent"],
        "more": len(page.docs) > SOURCES_COUNTED_UP_TO,
    }


def _read_reports(store: DocumentStore, functions: Sequence[str]) -> dict[str, dict[str, Any]]:
    try:
        return store.get_many(FUNCTION_STATUS, functions)
    except PlaybooksError:  # health answers even when the reports cannot be read
        return {}


def _function_section(
    report: Mapping[str, Any] | None, providers: Sequence[str], now: datetime
) -> dict[str, Any]:
    """What one function last said about the providers it uses; stored keys beyond those drop."""
    checked = report.get("checkedAt") if report else None
    if report is None or not isinstance(checked, datetime):
        return {"status": "not_reported", "configured": {}}
    stored = report.get("configured")
    stored = stored if isinstance(stored, Mapping) else {}
    configured = {p: stored[p] for p in providers if isinstance(stored.get(p), bool)}
    fresh = now - checked <= REPORT_FRESH_FOR
    revision = report.get("revision")
    return {
        "status": "reported" if fresh else "stale",
        "checkedAt": checked,
        "configured": configured,
        **({"revision": revision} if isinstance(revision, str) else {}),  # deployed only
    }
