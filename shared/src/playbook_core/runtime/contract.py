"""The dashboard API's bodies as models: the OpenAPI schemas, the request checks, the answers.

Each route names its request and answer model (`route(..., body=, answer=)`). `runtime/openapi.py`
turns them into the document a client is generated from; `read_body` checks a request against its
model; `shape` cuts a stored document down to its answer model's fields, so an answer never
carries a storage field the document does not describe. Field names are the wire names.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from playbook_core.domain.compliance.org import ComplianceSettings
from playbook_core.domain.errors import BadRequest
from playbook_core.domain.lifecycle import PausedReason, SourceKind, Status, VersionReason
from playbook_core.domain.playbook import Agent, PlaybookDefinition
from playbook_core.domain.records import (
    DeliveryStatus,
    EventOutcome,
    ExecutionStatus,
    SkipReason,
    StepRecordStatus,
    TriggerType,
)
from playbook_core.service.ingress.sources import MIN_SECRET_LENGTH

# ruff: noqa: N815 - field names are the camelCase wire names

M = TypeVar("M", bound=BaseModel)

Instant = Annotated[
    str,
    Field(
        json_schema_extra={"format": "date-time"},
        description="An instant, RFC 3339 in UTC with Z",
        examples=["2026-11-24T12:00:00Z"],
    ),
]
Money = Annotated[
    str,
    Field(
        pattern=r"^-?\d+\.\d{2}$", description="A decimal amount, two places", examples=["404.95"]
    ),
]
Rate = Annotated[float, Field(description="A ratio from 0 to 1", examples=[0.75])]
Count = Annotated[int, Field(ge=0, examples=[3])]
PageToken = Annotated[
    str | None,
    Field(
        description="Pass as pageToken for the next page; null on the last page",
        examples=[None],
    ),
]
ApprovalStatus = Literal["pending", "approved", "rejected", "expired", "cancelled"]
Tier = Literal["scout", "pro", "growth", "empire", "enterprise"]
Platform = Literal["shopify", "woocommerce"]
Freeform = Annotated[
    dict[str, Any], Field(description="Free-form JSON: its keys depend on the event or step")
]


class Body(BaseModel):
    """A closed JSON object: a field the contract does not name is refused (request) or absent."""

    model_config = ConfigDict(extra="forbid")


def read_body(model: type[M], data: Any) -> M:
    """The request body checked against its model: 400 `bad-request` naming the first problem."""
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])[:100] or "the body"  # keys may be long
        raise BadRequest(f"{where}: {first['msg']}") from None


def shape(model: type[BaseModel], document: dict[str, Any]) -> dict[str, Any]:
    """The document's fields the answer model names, values untouched (the store's own types)."""
    names = {field.alias or name for name, field in model.model_fields.items()}
    return {key: value for key, value in document.items() if key in names}


# --- Requests --------------------------------------------------------------------------------


class ToggleBody(Body):
    enabled: bool = Field(
        description="true enables (draft/paused/disabled → active)", examples=[True]
    )


class RollbackBody(Body):
    version: int = Field(ge=1, description="The version to copy as a new version", examples=[2])


class CloneBody(Body):
    templateId: str = Field(
        min_length=1, max_length=128, description="A clone template id from GET /v1/templates",
        examples=["lead_followup"],
    )  # fmt: skip


class ActivateTierBody(Body):
    tier: Tier = Field(description="The org's stored tier (editors) or any tier (super users)")


class ChangeTierBody(Body):
    toTier: Tier | Literal["none"] = Field(
        description="The new tier; `none` pauses every tier playbook", examples=["growth"]
    )


class GenerateBody(Body):
    prompt: str = Field(
        min_length=1, max_length=4000, description="What the playbook should do, in plain words",
        examples=["Email customers a thank-you two days after their first order"],
    )  # fmt: skip
    agent: Agent = Field(
        default="leo", description="The agent that drafts it (not `system`)", examples=["leo"]
    )


class DecisionBody(Body):
    notes: str | None = Field(
        default=None, max_length=2000, description="The reviewer's note, kept with the decision",
        examples=["Checked the copy"],
    )  # fmt: skip


class BatchApproveBody(Body):
    ids: list[str] = Field(
        min_length=1, max_length=100, description="Execution ids of pending approvals",
        examples=[["ev_3f2a9c"]],
    )  # fmt: skip


class SourceBody(Body):
    platform: Platform = Field(description="The store platform", examples=["shopify"])
    shopDomain: str | None = Field(
        default=None, max_length=255, description="Shopify: the shop's myshopify.com domain",
        examples=["demo-shop.myshopify.com"],
    )  # fmt: skip
    sourceUrl: str | None = Field(
        default=None, max_length=2048, description="WooCommerce: the store URL",
        examples=["https://shop.example.com/"],
    )  # fmt: skip
    secret: str | None = Field(
        default=None, min_length=MIN_SECRET_LENGTH, max_length=1024,
        json_schema_extra={"writeOnly": True},
        description="The webhook signing secret; stored as a secret, never answered",
        examples=["whsec_0123456789abcdef"],
    )  # fmt: skip
    lowStockThreshold: int | None = Field(
        default=None, ge=0, le=100000, description="WooCommerce: stock level that raises low stock",
        examples=[5],
    )  # fmt: skip
    adminAccessToken: str | None = Field(
        default=None, min_length=8, max_length=1024, json_schema_extra={"writeOnly": True},
        description="Shopify: an Admin API access token (read_orders) for the catch-up pass; "
        "stored as a secret, never answered",
        examples=["shpat_0123456789abcdef"],
    )  # fmt: skip
    consumerKey: str | None = Field(
        default=None, min_length=8, max_length=1024, json_schema_extra={"writeOnly": True},
        description="WooCommerce: a REST API consumer key (read) for the catch-up pass; "
        "stored as a secret, never answered",
        examples=["ck_0123456789abcdef"],
    )  # fmt: skip
    consumerSecret: str | None = Field(
        default=None, min_length=8, max_length=1024, json_schema_extra={"writeOnly": True},
        description="WooCommerce: the consumer key's secret; stored as a secret, never answered",
        examples=["cs_0123456789abcdef"],
    )  # fmt: skip


class RotateSecretBody(Body):
    secret: str = Field(
        min_length=MIN_SECRET_LENGTH, max_length=1024, json_schema_extra={"writeOnly": True},
        description="The new signing secret; the previous one verifies for 24 h more",
        examples=["whsec_fedcba9876543210"],
    )  # fmt: skip


class RunBody(BaseModel):
    """A manual run's input; `dryRun` runs the whole pipeline and sends nothing."""

    model_config = ConfigDict(extra="allow")

    customer: Freeform | None = Field(default=None, description="The customer the run is for")
    input: Freeform | None = Field(default=None, description="Values the steps may template")
    dryRun: bool = Field(default=False, description="Send nothing", examples=[False])


class IngestBody(BaseModel):
    """An event from the existing app, in the envelope shape of docs/domain.md §6.1."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="A canonical event name", examples=["order.created"])
    eventId: str | None = Field(default=None, description="Idempotency key", examples=["evt_1"])
    occurredAt: Instant | None = None
    data: Freeform = Field(default_factory=dict)
    customer: Freeform | None = Field(default=None, description="Who the event is about")


# --- Answers ---------------------------------------------------------------------------------


class FunctionReport(Body):
    status: Literal["reported", "stale", "not_reported"] = Field(
        description="stale: the last report is over 24 h old and no longer counts"
    )
    checkedAt: Instant | None = Field(default=None, description="When the function last reported")
    revision: str | None = Field(
        default=None, description="The deployed revision that reported (K_REVISION); null locally"
    )
    configured: dict[str, bool] = Field(
        description="Provider it uses → whether its credentials are set there (never a value)",
        examples=[{"mailjet": True, "blackleaf": False}],
    )


class UnhealthySources(Body):
    missingWebhooks: Count = Field(
        description="Stores whose catch-up pass found 3 or more orders no webhook delivered in 24 h"
    )
    webhooksSilent: Count = Field(
        description="WooCommerce stores whose webhooks went quiet while their API shows new orders"
    )
    more: bool = Field(
        description="true: more than 20 such stores; the counts cover the first 20 only"
    )


class Health(Body):
    status: Literal["ok", "degraded"] = Field(description="degraded: some check failed")
    offline: bool = Field(description="true: the dashboard shows its offline banner")
    checks: dict[str, str] = Field(
        description=(
            "Firestore, Pub/Sub, Tasks → ok or down. Provider → configured or unconfigured as "
            "the functions that use it report (unconfigured if any reports it missing), unknown "
            "when none has reported within 24 h"
        ),
        examples=[{"firestore": "ok", "mailjet": "configured", "slack": "unknown"}],
    )
    functions: dict[str, FunctionReport] = Field(
        description="Function that uses a provider → its last report"
    )
    webhookSources: UnhealthySources | None = Field(
        description=(
            "Stores whose webhooks need attention, counted over every org and never named (each "
            "org sees its own on GET /v1/orgs/{orgId}/webhook-sources); null while offline or "
            "unreadable. Never makes status degraded"
        )
    )


class PlaybookSource(Body):
    kind: SourceKind = Field(description="Where the playbook came from")
    registryId: str | None = Field(default=None, examples=["tier_pro_winback"])
    templateId: str | None = Field(default=None, examples=["lead_followup"])
    playbookId: str | None = Field(default=None, description="duplicate: the original")
    version: int | None = Field(default=None, ge=1, examples=[1])


class PlaybookStats(Body):
    runs30d: Count
    successRate30d: Rate | None
    deliveries30d: Count
    skipped30d: Count
    revenue30d: Money
    pendingApprovals: Count
    lastRunAt: Instant | None
    lastRunStatus: ExecutionStatus | None


class Issue(Body):
    """One validation error or warning (docs/api.md §4)."""

    code: str = Field(description="What is wrong", examples=["missing_field"])
    path: str = Field(description="Where, as a dotted path", examples=["steps[0].params.subject"])
    line: int | None = Field(description="1-based line in YAML input", examples=[4])
    column: int | None = Field(description="1-based column in YAML input", examples=[5])
    message: str = Field(examples=["subject is required"])


class Playbook(PlaybookDefinition):
    """A stored playbook: its definition and the fields the server manages.

    Every field may be sent back on PUT: server-managed ones are ignored there.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(examples=["pb_7d1c2e"])
    orgId: str = Field(examples=["org_demo"])
    status: Status = Field(description="Lifecycle (docs/domain.md §3.10)")
    active: bool = Field(description="status == active")
    version: int = Field(ge=1, description="The current immutable version", examples=[3])
    revision: int = Field(ge=1, description="Every write; ETag", examples=[5])
    requiresApproval: bool = Field(description="Derived: a customer-facing send without a gate")
    source: PlaybookSource
    templateId: str | None = Field(examples=[None])
    isCustom: bool
    definitionHash: str | None = Field(default=None, examples=["9b0c…"])
    createdBy: str = Field(examples=["uid_42"])
    updatedBy: str = Field(examples=["uid_42"])
    createdAt: Instant
    updatedAt: Instant
    pausedReason: PausedReason | None = Field(default=None, description="Read-only")
    pausedAt: Instant | None = Field(default=None, description="Read-only")
    archivedAt: Instant | None = Field(default=None, description="Read-only: deleted at")
    purgeAfter: Instant | None = Field(default=None, description="Read-only: restorable until")
    stats: PlaybookStats | None = Field(default=None, description="Read-only; lists only")
    warnings: list[Issue] | None = Field(
        default=None, description="Read-only: create and update answers"
    )


class PlaybookInput(PlaybookDefinition):
    """A definition to save; what a GET answered may be sent back whole.

    The server's fields (`id`, `status`, `version`, …) are ignored; `stats`, `warnings`,
    `pausedReason`, `pausedAt`, `archivedAt` and `purgeAfter` come back as `ignored_field`
    warnings.
    """

    model_config = ConfigDict(extra="allow")


class PlaybookPage(Body):
    playbooks: list[Playbook]
    nextPageToken: PageToken


class Validation(Body):
    valid: Literal[True]
    errors: list[Issue] = Field(description="Always empty: an invalid one answers 422")
    warnings: list[Issue]
    requiresApproval: bool
    normalized: PlaybookDefinition = Field(description="The definition with defaults filled")


class Version(Body):
    playbookId: str = Field(examples=["pb_7d1c2e"])
    orgId: str = Field(examples=["org_demo"])
    version: int = Field(ge=1, examples=[2])
    reason: VersionReason
    rolledBackFrom: int | None = Field(default=None, description="rollback: the copied version")
    requiresApproval: bool
    createdBy: str = Field(examples=["uid_42"])
    createdAt: Instant
    definition: PlaybookDefinition = Field(description="The definition as it was saved")
    definitionHash: str | None = Field(default=None, examples=["9b0c…"])


class VersionList(Body):
    versions: list[Version]


class Template(Body):
    id: str = Field(examples=["lead_followup"])
    kind: Literal["clone", "tier_template"]
    name: str = Field(examples=["Lead follow-up"])
    description: str = Field(examples=["Follow up a new lead within a day"])
    agent: Agent
    category: str = Field(examples=["marketing"])
    tier: Tier | None
    requiresApproval: bool
    definition: PlaybookDefinition


class TemplateList(Body):
    templates: list[Template]


class ItemError(Body):
    id: str = Field(examples=["tier_pro_winback"])
    error: str = Field(description="The problem code", examples=["conflict"])


class SeedResult(Body):
    seeded: list[str] = Field(examples=[["lead_followup"]])
    skipped: list[str] = Field(description="Already present", examples=[[]])
    failed: list[ItemError]


class ActivateResult(Body):
    activated: list[str] = Field(examples=[["tier_pro_winback"]])
    skipped: list[str] = Field(description="Already there", examples=[[]])
    failed: list[ItemError]


class ChangeTierResult(Body):
    activated: list[str] = Field(examples=[["tier_growth_vip"]])
    paused: list[str] = Field(examples=[[]])
    unchanged: list[str] = Field(examples=[["tier_pro_winback"]])


class Imported(Body):
    index: int = Field(ge=0, description="The document's place in the body", examples=[0])
    id: str = Field(examples=["pb_7d1c2e"])
    name: str = Field(examples=["Thank-you email"])


class ImportFailure(Body):
    index: int = Field(ge=0, examples=[1])
    errors: list[Issue]


class ImportResult(Body):
    imported: list[Imported]
    errors: list[ImportFailure] = Field(description="Documents refused; the others were imported")


class Generated(Body):
    playbook: Playbook
    yaml: str = Field(description="The draft as YAML", examples=["name: Thank you\nagent: leo\n"])
    warnings: list[Issue]


class ChannelCapModel(Body):
    enabled: bool
    max: int = Field(ge=1, le=20, examples=[2])
    windowHours: int = Field(ge=1, le=168, examples=[24])


class Settings(Body):
    orgId: str = Field(examples=["org_demo"])
    timezone: str | None = Field(
        description="IANA zone; null: the default", examples=["America/Denver"]
    )
    effectiveTimezone: str = Field(description="The zone in force", examples=["America/Denver"])
    tier: Tier | None = Field(description="Changed only by :activateTier / :changeTier")
    dedupWindowHours: int = Field(ge=1, le=168, examples=[24])
    frequencyCaps: dict[Literal["email", "sms"], ChannelCapModel]
    approvalTtlHours: int = Field(ge=1, le=720, examples=[72])
    attributionWindowDays: int = Field(ge=1, le=30, examples=[7])
    costPerExecutionUsd: str = Field(description="Decimal string", examples=["0.05"])
    lowStockThreshold: int = Field(ge=0, le=100000, examples=[5])
    adminEmail: str | None = Field(examples=["ops@example.com"])
    alertPhone: str | None = Field(description="E.164", examples=["+14155550100"])
    slackWebhookSecretRef: str | None = Field(
        description="The org's own Slack secret; set slackWebhookUrl to change it", examples=[None]
    )
    defaultCountry: str = Field(pattern=r"^[A-Z]{2}$", examples=["US"])
    compliance: ComplianceSettings = Field(
        description="Licences and brand facts the compliance rules need, and the org's own "
        "stricter rules (docs/compliance.md)"
    )


Verdict = Literal["allow", "warn", "block", "defer"]


class ComplianceFinding(Body):
    ruleId: str = Field(examples=["ca.no-free-goods"])
    jurisdiction: str = Field(description="US, a state code or ORG", examples=["CA"])
    kind: str = Field(examples=["forbidden_terms"])
    severity: Literal["block", "warn"]
    message: str = Field(examples=["free goods and giveaways may not be advertised"])
    citation: str = Field(examples=["Cal. Bus. & Prof. Code 26153"])
    field: str | None = Field(default=None, examples=["body"])
    start: int | None = Field(default=None, ge=0, description="Offset of the term in `field`")
    end: int | None = Field(default=None, ge=0, examples=[24])


class ComplianceResult(Body):
    verdict: Verdict
    findings: list[ComplianceFinding]
    deferUntil: Instant | None = Field(default=None, description="verdict defer: when it may go")
    rulePack: str = Field(
        description="The rule-pack versions that applied", examples=["CA@2026.12.1+US@2026.12.0"]
    )


class WebhookSource(Body):
    id: str = Field(examples=["src_4b1e"])
    platform: Platform
    shopDomain: str | None = Field(examples=["demo-shop.myshopify.com"])
    sourceUrl: str | None = Field(examples=[None])
    status: Literal["active", "disabled"]
    hasSecret: bool = Field(description="A signing secret is stored (never answered)")
    previousSecretExpiresAt: Instant | None = Field(
        description="After a rotation: until when the previous secret still verifies"
    )
    lowStockThreshold: int | None = Field(examples=[None])
    hasApiAccess: bool = Field(
        description="Store API credentials for the catch-up pass are stored (never answered)"
    )
    lastWebhookAt: Instant | None = Field(description="When the last webhook from it arrived")
    lastCatchUpAt: Instant | None = Field(description="When the catch-up pass last read it")
    catchUpCursor: Instant | None = Field(
        description="The store's own update time the catch-up pass has read up to"
    )
    missedEvents24h: int = Field(
        ge=0, description="Events in the last 24 h that only the catch-up pass found"
    )
    webhookHealth: Literal["unknown", "ok", "missing_webhooks", "webhooks_silent"] = Field(
        description="From the last catch-up pass: unknown until one ran; missing_webhooks when "
        "it keeps finding orders no webhook brought; webhooks_silent when a WooCommerce store "
        "sends none while its API shows new orders"
    )


class WebhookSourcePage(Body):
    webhookSources: list[WebhookSource]
    nextPageToken: PageToken


class StepError(Body):
    code: str = Field(examples=["provider_unavailable"])
    message: str = Field(examples=["Mailjet answered 503"])
    stepId: str | None = Field(default=None, examples=["email"])


class Causation(Body):
    chain: list[str] = Field(description="Playbooks that emitted the events leading here")
    depth: int = Field(ge=0, examples=[0])
    eventId: str | None = Field(default=None, examples=["evt_1"])


class Trigger(Body):
    type: TriggerType
    triggerId: str | None = Field(default=None, examples=["trigger_1"])
    eventId: str | None = Field(default=None, examples=["evt_1"])
    eventName: str | None = Field(default=None, examples=["order.created"])
    slot: Instant | None = Field(default=None, description="schedule: the slot")
    date: str | None = Field(default=None, description="calendar: the local date")


class Execution(Body):
    id: str = Field(examples=["ev_3f2a9c"])
    orgId: str = Field(examples=["org_demo"])
    playbookId: str = Field(examples=["pb_7d1c2e"])
    playbookVersion: int = Field(ge=1, examples=[3])
    playbookName: str = Field(examples=["Thank-you email"])
    status: ExecutionStatus
    statusReason: str | None = Field(examples=[None])
    triggeredBy: TriggerType
    trigger: Trigger
    userId: str = Field(description="Who started it; system for events", examples=["system"])
    dryRun: bool
    requiresApproval: bool
    customer: Freeform | None = Field(description="The customer the run is for")
    event: Freeform | None = Field(description="The triggering event (without data if large)")
    eventTruncated: bool
    causation: Causation
    input: Freeform | None = Field(default=None, description="Manual run input")
    currentStep: str | None = Field(examples=["email"])
    currentStepIndex: int = Field(ge=0, examples=[1])
    stepsTotal: Count
    stepsCompleted: Count
    progress: Rate
    stepStatuses: dict[str, str] = Field(examples=[{"compose": "completed", "email": "pending"}])
    stepResults: list[Freeform]
    counts: dict[Literal["sent", "skipped", "failed", "held"], int]
    error: StepError | None = Field(default=None)
    trace: list[Freeform] | None = Field(default=None, description="Dry runs: what would happen")
    createdAt: Instant
    updatedAt: Instant
    startedAt: Instant | None = None
    completedAt: Instant | None = None
    approvedAt: Instant | None = None
    approvedBy: str | None = Field(default=None, examples=["uid_42"])
    nextAttemptAt: Instant | None = None
    steps: list[Step] | None = Field(default=None, description="One execution only")


class Step(Body):
    stepId: str = Field(examples=["email"])
    index: int = Field(ge=0, examples=[1])
    action: str = Field(examples=["send_email"])
    status: StepRecordStatus
    attempt: int = Field(ge=1, examples=[1])
    startedAt: Instant
    updatedAt: Instant | None = None
    completedAt: Instant | None = None
    nextAttemptAt: Instant | None = None
    deferredUntil: Instant | None = Field(
        default=None, description="sends: held back by a send window or frequency rule until"
    )
    output: Freeform | None = None
    error: StepError | None = None
    skipReason: str | None = Field(default=None, examples=["deduped"])
    score: int | None = Field(default=None, description="delegate: validation score")
    validation: Freeform | None = Field(default=None, description="delegate: score and issues")
    renderedPreview: Freeform | None = Field(default=None, description="sends: what was rendered")
    deliveryId: str | None = Field(default=None, examples=["dl_9a8b"])
    compliance: ComplianceResult | None = Field(default=None, description="sends: the check")


class ExecutionPage(Body):
    executions: list[Execution]
    nextPageToken: PageToken


class Approval(Body):
    id: str = Field(description="The execution id", examples=["ev_3f2a9c"])
    executionId: str = Field(examples=["ev_3f2a9c"])
    orgId: str = Field(examples=["org_demo"])
    playbookId: str = Field(examples=["pb_7d1c2e"])
    playbookName: str = Field(examples=["Thank-you email"])
    playbookVersion: int = Field(ge=1, examples=[3])
    status: ApprovalStatus
    gateStepId: str = Field(examples=["email"])
    gateStepIndex: int = Field(ge=0, examples=[1])
    customer: Freeform | None
    preview: list[Freeform] = Field(description="The messages that would be sent")
    requestedAt: Instant
    expiresAt: Instant = Field(description="Undecided by then: expired")
    decidedAt: Instant | None = None
    reviewerId: str | None = Field(default=None, examples=["uid_42"])
    reviewerEmail: str | None = Field(default=None, examples=[None])
    notes: str | None = Field(default=None, examples=["Checked the copy"])


class ApprovalPage(Body):
    approvals: list[Approval]
    nextPageToken: PageToken


class BatchResult(Body):
    id: str = Field(examples=["ev_3f2a9c"])
    status: Literal["approved", "error"]
    error: str | None = Field(default=None, description="The problem code", examples=["conflict"])


class BatchResults(Body):
    results: list[BatchResult]


class Delivery(Body):
    id: str = Field(examples=["dl_9a8b"])
    orgId: str = Field(examples=["org_demo"])
    playbookId: str = Field(examples=["pb_7d1c2e"])
    playbookVersion: int = Field(ge=1, examples=[3])
    executionId: str = Field(examples=["ev_3f2a9c"])
    stepId: str | None = Field(examples=["email"])
    stepIndex: int = Field(ge=0, examples=[1])
    channel: Literal["email", "sms"]
    recipient: str = Field(examples=["ada@example.com"])
    recipientEmail: str | None = Field(examples=["ada@example.com"])
    recipientPhone: str | None = Field(examples=[None])
    customerId: str | None = Field(examples=["cus_1"])
    customerFacing: bool
    transactional: bool
    attributable: bool = Field(description="Counts for revenue attribution")
    status: DeliveryStatus
    skipReason: SkipReason | None
    dryRun: bool
    provider: Literal["mailjet", "blackleaf"]
    providerMessageId: str | None = Field(default=None, examples=["1152921504"])
    attempts: int = Field(ge=1, examples=[1])
    subject: str | None = Field(examples=["Thanks for your order"])
    preview: str = Field(description="The first 200 characters", examples=["Hi Ada, thanks…"])
    lastError: Freeform | None = Field(default=None, description="code, httpStatus, message")
    compliance: ComplianceResult | None = Field(
        default=None, description="Customer-facing sends: the check that let it go or held it"
    )
    consentRecordId: str | None = Field(
        default=None, description="The consent record a marketing send relied on"
    )
    createdAt: Instant
    updatedAt: Instant
    sentAt: Instant | None = None


class DeliveryPage(Body):
    deliveries: list[Delivery]
    nextPageToken: PageToken


class EventSource(Body):
    kind: str = Field(examples=["shopify"])
    ref: str | None = Field(default=None, examples=["demo-shop.myshopify.com"])
    stale: bool | None = Field(default=None, description="Delivered long after it happened")
    ageSeconds: int | None = Field(default=None, ge=0, examples=[90000])


class EventMatch(BaseModel):
    """One listener's verdict on the event."""

    model_config = ConfigDict(extra="allow")

    playbookId: str = Field(examples=["pb_7d1c2e"])
    outcome: str = Field(examples=["execution_created"])


class EventLogEntry(Body):
    id: str = Field(examples=["log_1"])
    eventId: str = Field(examples=["evt_1"])
    name: str = Field(examples=["order.created"])
    originalName: str | None = Field(default=None, examples=["orders/create"])
    source: EventSource
    occurredAt: Instant
    receivedAt: Instant
    customerId: str | None = Field(default=None, examples=["cus_1"])
    identityHash: str | None = Field(default=None, description="Never a raw email or phone")
    outcome: EventOutcome
    matches: list[EventMatch]
    orderSummary: Freeform | None = Field(default=None, description="Orders: for attribution")


class EventPage(Body):
    events: list[EventLogEntry]
    nextPageToken: PageToken


class Accepted(Body):
    executionId: str = Field(examples=["man_5e6f"])


class DryRunResult(Body):
    executionId: str = Field(examples=["man_5e6f"])
    finished: bool | None = Field(default=None, description="?wait=true: false when 25 s passed")
    status: ExecutionStatus | None = None
    trace: list[Freeform] | None = Field(default=None, description="What would have happened")


class IngestResult(Body):
    eventId: str = Field(examples=["evt_1"])
    duplicate: bool = Field(description="Seen before: nothing published again")


class Daily(Body):
    date: str = Field(description="Local date", examples=["2026-11-24"])
    executions: Count
    completed: Count
    failed: Count
    cancelled: Count
    rejected: Count
    expired: Count
    deliveries: Count
    skipped: Count
    attributedOrders: Count
    attributedRevenue: Money
    successRate: Rate | None


class Figures(Body):
    executions: Count
    completed: Count
    failed: Count
    cancelled: Count
    rejected: Count
    expired: Count
    dryRuns: Count
    deliveries: Count
    sent: dict[str, int] = Field(examples=[{"email": 3, "sms": 0}])
    skipped: dict[str, int] = Field(examples=[{"deduped": 1}])
    skippedTotal: Count
    attributedOrders: Count
    attributedRevenue: Money
    evenSplitRevenue: Money
    avgOrderValue: Money | None
    conversionRate: Rate | None
    successRate: Rate | None
    cost: Money
    roi: float | None = Field(examples=[7.5])
    roiPercent: float | None = Field(examples=[750.0])
    daily: list[Daily]


class PlaybookFigures(Figures):
    playbookId: str = Field(examples=["pb_7d1c2e"])
    name: str = Field(examples=["Thank-you email"])
    status: Status


class OrgAnalytics(Body):
    orgId: str = Field(examples=["org_demo"])
    from_: str = Field(alias="from", description="First local date", examples=["2026-11-01"])
    to: str = Field(description="Last local date", examples=["2026-11-30"])
    timezone: str = Field(examples=["America/Denver"])
    currency: str = Field(examples=["USD"])
    costPerExecutionUsd: Money
    playbooks: list[PlaybookFigures]
    totals: Figures


class PlaybookAnalytics(PlaybookFigures):
    orgId: str = Field(examples=["org_demo"])
    from_: str = Field(alias="from", examples=["2026-11-01"])
    to: str = Field(examples=["2026-11-30"])
    timezone: str = Field(examples=["America/Denver"])
    currency: str = Field(examples=["USD"])
    costPerExecutionUsd: Money


class GraphNode(Body):
    id: str = Field(examples=["event:order.created"])
    kind: Literal["event", "playbook", "schedule", "calendar", "manual"]
    label: str = Field(examples=["order.created"])
    status: Status | None = Field(default=None, description="Playbook nodes")


class GraphEdge(Body):
    from_: str = Field(alias="from", examples=["event:order.created"])
    to: str = Field(examples=["playbook:pb_7d1c2e"])
    kind: Literal["listens", "triggers", "emits"]
    label: str | None = Field(default=None, description="The filters, when every trigger has one")


class GraphWarning(Body):
    code: Literal["no_live_trigger", "cycle", "overlapping_customer_sends", "no_producer"]
    nodes: list[str] = Field(examples=[["event:custom.thing"]])


class Graph(Body):
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    warnings: list[GraphWarning]


Execution.model_rebuild()


# --- compliance (docs/compliance.md) ------------------------------------------------------------


class CheckRecipient(Body):
    state: str | None = Field(
        default=None, pattern=r"^[A-Z]{2}$", description="US state of the address", examples=["CA"]
    )
    phone: str | None = Field(default=None, max_length=40, examples=["+14155550100"])
    email: str | None = Field(default=None, max_length=320, examples=["ada@example.com"])
    customerId: str | None = Field(
        default=None,
        max_length=256,
        description="Fills state, phone, age check and consent",
        examples=["cus_1"],
    )


class ComplianceCheckBody(Body):
    channel: Literal["email", "sms"]
    subject: str | None = Field(default=None, max_length=998, examples=["Weekend drop"])
    body: str = Field(max_length=20_000, examples=["New flower in store this weekend."])
    transactional: bool = Field(
        default=False, description="An order receipt or similar: marketing-only rules skip it"
    )
    recipient: CheckRecipient | None = None
    sendAt: Instant | None = Field(default=None, description="Default: now")


class CheckedRecipient(Body):
    state: str | None = Field(examples=["CA"])
    zone: str = Field(examples=["America/Los_Angeles"])
    basis: Literal["address", "area_code", "org"] = Field(
        description="What decided the state and zone"
    )


class ComplianceCheck(ComplianceResult):
    recipient: CheckedRecipient
    body: str = Field(description="The text as it would go out, footer appended")
    consentRecordId: str | None = Field(default=None, examples=[None])


class RulePackVersion(Body):
    jurisdiction: str = Field(examples=["CA"])
    name: str = Field(examples=["California"])
    version: str = Field(examples=["2026.12.0"])


class ComplianceRules(Body):
    rules: list[Freeform] = Field(
        description="Each rule: id, jurisdiction, channels, kind, its parameters, severity, "
        "citation, effectiveFrom, confidence, message, version"
    )
    packs: list[RulePackVersion]


# --- consent (docs/consent.md) ------------------------------------------------------------------


class ConsentRecord(Body):
    """One statement of consent or its withdrawal (consent.md §1); never changed once written."""

    id: str = Field(examples=["cns_4f1c9a2b7d"])
    orgId: str = Field(examples=["org_demo"])
    identityKey: str = Field(
        description="Whose consent: cid:<customerId>, em:<email>, ph:<E.164> or dk:<dedupe key>",
        examples=["cid:cus_1"],
    )
    customerId: str | None = Field(examples=["cus_1"])
    channel: Literal["email", "sms"]
    state: Literal["granted", "revoked"]
    at: Instant
    source: Literal["webhook", "form", "import", "keyword", "api", "unsubscribe_link"]
    method: str = Field(description="How it was given or withdrawn", examples=["STOP keyword"])
    disclosure: str | None = Field(
        description="The text the customer saw, when there was one", examples=[None]
    )
    disclosureHash: str | None = Field(
        description="SHA-256 (hex) of the disclosure's UTF-8 text", examples=[None]
    )
    ip: str | None = Field(examples=[None])
    userAgent: str | None = Field(examples=[None])
    expiresAt: Instant = Field(description="Kept until then: `at` + 4 years + 30 days")


class ConsentPage(Body):
    consentRecords: list[ConsentRecord] = Field(description="Newest first")
    nextPageToken: PageToken


class SmsWebhookBody(Body):
    secret: str = Field(
        min_length=MIN_SECRET_LENGTH, max_length=1024, json_schema_extra={"writeOnly": True},
        description="The inbound SMS signing secret; the previous one verifies for 24 h more",
        examples=["blsec_0123456789abcdef"],
    )  # fmt: skip


class SmsWebhook(Body):
    orgId: str = Field(examples=["org_demo"])
    hasSecret: bool = Field(description="A signing secret is stored (never answered)")
    previousSecretExpiresAt: Instant | None = Field(
        description="After a rotation: until when the previous secret still verifies"
    )
    webhookUrl: str = Field(
        description="Where Blackleaf must post this org's inbound messages",
        examples=[
            "https://us-central1-example.cloudfunctions.net/webhook_blackleaf?orgId=org_demo"
        ],
    )
    signatureHeader: Literal["X-Blackleaf-Signature"] = Field(
        description="Hex HMAC-SHA256 of the raw body under the secret"
    )
