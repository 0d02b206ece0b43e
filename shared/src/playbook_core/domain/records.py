"""The stored documents the services read most, typed (domain.md §2.1): mypy checks the keys.

They are TypedDicts, so a document read from the store is the same dict at run time; what the type
adds is that `execution["stauts"]` or a field the document never has fails `make typecheck`.
Services get them at the store boundary through `service/records.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Required, TypedDict

ExecutionStatus = Literal[
    "queued", "running", "pending_approval", "completed", "failed", "cancelled", "rejected",
    "expired",
]  # fmt: skip
TriggerType = Literal["manual", "schedule", "event", "calendar"]
StepRecordStatus = Literal[
    "pending", "running", "completed", "skipped", "failed", "retry_scheduled"
]
# What `stepStatuses` may also say of a step a closed run never reached (approvals.py).
StepStatus = StepRecordStatus | Literal["not_run"]


class ExecutionRecord(TypedDict, total=False):
    """`playbook_executions/{id}`: one run, pinned to one playbook version (§2.1, §7)."""

    id: Required[str]
    orgId: Required[str]
    playbookId: Required[str]
    playbookVersion: Required[int]
    playbookName: Required[str]
    requiresApproval: Required[bool]
    trigger: Required[dict[str, Any]]
    triggeredBy: Required[TriggerType]
    userId: Required[str]
    dryRun: Required[bool]
    status: Required[ExecutionStatus]
    statusReason: Required[str | None]
    customer: Required[dict[str, Any] | None]
    event: Required[dict[str, Any] | None]
    eventTruncated: Required[bool]
    causation: Required[dict[str, Any]]
    createdAt: Required[datetime]
    updatedAt: Required[datetime]
    expectedProgressBy: Required[datetime | None]
    currentStep: Required[str | None]
    currentStepIndex: Required[int]
    stepsTotal: Required[int]
    stepsCompleted: Required[int]
    progress: Required[float]
    stepStatuses: Required[dict[str, str]]
    stepResults: Required[list[dict[str, Any]]]
    counts: Required[dict[str, int]]
    reaperRecoveries: Required[int]
    # Written as the run moves on.
    input: dict[str, Any]
    mockAgents: bool
    startedAt: datetime
    heartbeatAt: datetime
    firstTaskEnqueuedAt: datetime
    nextAttemptAt: datetime | None
    approvedAt: datetime
    approvedBy: str | None
    completedAt: datetime
    expiresAt: datetime
    error: dict[str, Any]
    trace: list[dict[str, Any]]


DeliveryStatus = Literal["sending", "retrying", "sent", "held", "skipped", "failed"]
# Why a delivery did not go (§7.7–7.12, compliance.md §7): listable as GET …/deliveries?reason=.
SkipReason = Literal[
    "deduped", "frequency_capped", "no_consent", "stale_event", "awaiting_approval", "dry_run",
    "approval_rejected", "approval_expired", "cancelled", "compliance_blocked", "age_unverified",
    "product_unavailable",
]  # fmt: skip


class DeliveryRecord(TypedDict, total=False):
    """`playbook_deliveries/{id}`: one message of one step to one recipient (§2.1, §7.6)."""

    id: Required[str]
    orgId: Required[str]
    playbookId: Required[str]
    playbookVersion: Required[int]
    executionId: Required[str]
    stepId: Required[str | None]
    stepIndex: Required[int]
    channel: Required[Literal["email", "sms"]]
    recipient: Required[str]
    recipientEmail: Required[str | None]
    recipientPhone: Required[str | None]
    customerId: Required[str | None]
    identityKey: Required[str]
    customerFacing: Required[bool]
    transactional: Required[bool]
    attributable: Required[bool]
    status: Required[DeliveryStatus]
    skipReason: Required[SkipReason | None]
    dryRun: Required[bool]
    provider: Required[Literal["mailjet", "blackleaf"]]
    attempts: Required[int]
    subject: Required[str | None]
    preview: Required[str]
    createdAt: Required[datetime]
    updatedAt: Required[datetime]
    expiresAt: Required[datetime]
    # Written as the send goes on.
    leaseUntil: datetime | None
    sentAt: datetime
    providerMessageId: str
    lastError: dict[str, Any]
    compliance: dict[str, Any]  # the check result (compliance.md), customer-facing sends
    consentRecordId: str | None  # the consent record a marketing send relied on
    product: dict[str, Any]  # a guarded send: {productId, availability} as judged at send time


class PlaybookRecord(TypedDict, total=False):
    """`playbooks/{id}`: the definition's fields beside the server's (§2.2, documents.py)."""

    id: Required[str]
    orgId: Required[str]
    # The definition (domain/playbook.PlaybookDefinition), camelCase.
    name: Required[str]
    description: Required[str]
    agent: Required[str]
    category: Required[str]
    tags: Required[list[str]]
    triggers: Required[list[dict[str, Any]]]
    steps: Required[list[dict[str, Any]]]
    retryOnFailure: Required[bool]
    maxRetries: Required[int]
    validationThreshold: Required[int]
    # What the server derives and manages.
    requiresApproval: Required[bool]
    definitionHash: Required[str]
    searchTokens: Required[list[str]]
    status: Required[Literal["draft", "active", "paused", "disabled", "archived"]]
    active: Required[bool]
    archived: Required[bool]
    pausedReason: Required[Literal["user", "tier", "system"] | None]
    version: Required[int]
    revision: Required[int]
    source: Required[dict[str, Any]]
    templateId: Required[str | None]
    isCustom: Required[bool]
    createdBy: Required[str]
    updatedBy: Required[str]
    createdAt: Required[datetime]
    updatedAt: Required[datetime]
    pausedAt: datetime | None
    archivedAt: datetime | None
    purgeAfter: datetime | None


class SourceRecord(TypedDict, total=False):
    """`webhook_sources/{id}`: a store whose deliveries an org receives (§2.1, api.md §5)."""

    orgId: Required[str]
    platform: Required[Literal["shopify", "woocommerce"]]
    shopDomain: str  # Shopify
    sourceUrl: str  # WooCommerce
    status: Required[Literal["active", "disabled"]]
    secretRefs: Required[list[str]]  # current first, then the previous one during its overlap
    previousSecretExpiresAt: Required[datetime | None]
    lowStockThreshold: Required[int | None]
    # The store API credentials (a JSON secret) the catch-up pass reads orders with.
    apiCredentialsRef: str | None
    createdAt: Required[datetime]
    lastSeenAt: Required[datetime | None]
    updatedAt: Required[datetime]


class StepRecord(TypedDict, total=False):
    """`playbook_executions/{id}/steps/{index}`: the latest attempt of one step (§2.1, §7.3).

    The engine plans it (domain/engine.py, without the ids the handler adds); the step handler
    writes it in the claim and in the finish transaction.
    """

    orgId: str
    executionId: str
    index: Required[int]
    stepId: Required[str]
    action: Required[str]
    attempt: Required[int]
    status: Required[StepRecordStatus]
    startedAt: datetime
    updatedAt: datetime
    expiresAt: datetime  # its own TTL: the parent's deletion does not cascade (§2.1)
    leaseUntil: datetime | None
    completedAt: datetime
    nextAttemptAt: datetime
    deferredUntil: datetime  # a send held back by a send window or frequency rule
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    skipReason: str
    # What an action adds (StepOutcome.extra).
    score: int
    validation: dict[str, Any]
    waitedSeconds: float
    renderedPreview: dict[str, Any]
    deliveryId: str
    compliance: dict[str, Any]  # the send's check result (compliance.md)
    trace: dict[str, Any]


class ChannelCapRecord(TypedDict):
    enabled: bool
    max: int
    windowHours: int


class SettingsRecord(TypedDict, total=False):
    """`playbook_settings/{orgId}`: sparse; a missing or null field means its default (§2.3)."""

    orgId: str
    timezone: str | None
    tier: str | None
    dedupWindowHours: int | None
    frequencyCaps: dict[str, ChannelCapRecord] | None
    approvalTtlHours: int | None
    attributionWindowDays: int | None
    costPerExecutionUsd: str | None
    lowStockThreshold: int | None
    adminEmail: str | None
    alertPhone: str | None
    slackWebhookSecretRef: str | None
    defaultCountry: str | None
    lastAlertAt: dict[str, datetime]
    updatedAt: datetime


EventOutcome = Literal[
    "dispatched", "not_dispatched", "execution_created", "duplicate_event", "no_listeners",
    "playbook_inactive", "filtered", "tenant_mismatch", "loop_blocked", "unknown_event",
    "unknown_org", "invalid_envelope", "ignored_topic", "dead_lettered", "out_of_order",
]  # fmt: skip


class EventLogRecord(TypedDict, total=False):
    """`playbook_event_log/evl_…`: what became of one event, latest outcome wins (§2.2, §5.6)."""

    orgId: Required[str]
    eventId: Required[str]
    name: Required[str]
    originalName: Required[str | None]
    source: Required[dict[str, Any]]
    occurredAt: Required[datetime]
    receivedAt: Required[datetime]
    customerId: Required[str | None]
    identityHash: Required[str | None]  # never the raw email or phone
    outcome: Required[EventOutcome]
    matches: Required[list[dict[str, Any]]]
    expiresAt: Required[datetime]
    orderSummary: dict[str, Any]
