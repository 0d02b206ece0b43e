"""Every Firestore collection the functions touch, and the paths below a document, named once.

Services, adapters, the local stack and the tests import these names instead of spelling them:
a misspelt collection is then an import error, not an empty query. infra/firestore.rules and
infra/firestore.indexes.json cannot import them; tests/unit/domain/test_collections.py holds
those files to this list.
"""

from __future__ import annotations

from typing import Final

# --- This product's collections (domain.md §2.1) -------------------------------------------------
PLAYBOOKS: Final = "playbooks"
EXECUTIONS: Final = "playbook_executions"
APPROVALS: Final = "playbook_approvals"
DELIVERIES: Final = "playbook_deliveries"
COMMUNICATIONS: Final = "customer_communications"  # the send ledger: dedup and frequency caps
SETTINGS: Final = "playbook_settings"
ASSIGNMENTS: Final = "playbook_assignments"
TEMPLATES: Final = "playbook_templates"
LISTENERS: Final = "playbook_event_listeners"
SCHEDULES: Final = "playbook_schedules"
EVENT_LOG: Final = "playbook_event_log"
SUMMARIES: Final = "playbook_summaries"
STATS: Final = "playbook_stats_daily"
ATTRIBUTIONS: Final = "playbook_attributions"
JOB_RUNS: Final = "playbook_job_runs"
PROVIDER_STATUS: Final = "playbook_provider_status"
# Each provider-using function's own report of which providers it has configured (booleans only),
# read by `GET /v1/health`: the provider secrets are mounted only into the functions that use them.
FUNCTION_STATUS: Final = "playbook_function_status"
CUSTOMER_DATES: Final = "customer_dates"
WEBHOOK_SOURCES: Final = "webhook_sources"
WEBHOOK_RECEIPTS: Final = "webhook_receipts"
# Claims on a delivery's content rather than its headers (same signed body; order created): they
# map a replay onto the delivery that came first, whose receipt alone says whether it published.
WEBHOOK_CLAIMS: Final = "webhook_claims"
# Consent evidence (consent.md §1): append-only, kept 4 years + 30 days; served by the API only.
CONSENT_RECORDS: Final = "consent_records"
# Each org's signing secret references for inbound SMS (consent.md §3); the secrets themselves
# live in the Secrets port.
SMS_WEBHOOKS: Final = "sms_webhooks"
SECRETS: Final = "_secrets"  # local secret store only; no client ever reads it

# --- Subcollections: the last segment of a path below one document -------------------------------
VERSIONS: Final = "versions"  # playbooks/{playbookId}/versions/{version}
STEPS: Final = "steps"  # playbook_executions/{executionId}/steps/{index:03d}
APPROVAL_CLAIMS: Final = "claims"  # playbook_approvals/{executionId}/claims/{decision}

# --- The existing app's collections: read; customers also created, notifications written --------
ORGANIZATIONS: Final = "organizations"
USERS: Final = "users"
CUSTOMERS: Final = "customers"
ORDERS: Final = "orders"
INVENTORY: Final = "inventory"
NOTIFICATIONS: Final = "notifications"

# What the dashboard may read directly (domain.md §2.5); everything else is server-only.
CLIENT_READABLE: Final = frozenset({PLAYBOOKS, EXECUTIONS, APPROVALS, SUMMARIES, STATS, DELIVERIES})
# Collection groups whose docs carry `expiresAt` for a TTL policy (domain.md §2.1, consent.md §5).
# Subcollections are listed apart from their parent: a TTL deletion never reaches below a doc.
RETAINED: Final = frozenset(
    {
        EXECUTIONS, STEPS, APPROVALS, APPROVAL_CLAIMS, DELIVERIES, COMMUNICATIONS, ATTRIBUTIONS,
        WEBHOOK_RECEIPTS, WEBHOOK_CLAIMS, EVENT_LOG, STATS, JOB_RUNS, CONSENT_RECORDS,
        FUNCTION_STATUS,
    }
)  # fmt: skip


def versions_path(playbook_id: str) -> str:
    return f"{PLAYBOOKS}/{playbook_id}/{VERSIONS}"


def steps_path(execution_id: str) -> str:
    return f"{EXECUTIONS}/{execution_id}/{STEPS}"


def step_doc_id(index: int) -> str:
    """Zero-padded, so the ids of an execution's steps sort in step order."""
    return f"{index:03d}"


def approval_claims_path(execution_id: str) -> str:
    return f"{APPROVALS}/{execution_id}/{APPROVAL_CLAIMS}"
