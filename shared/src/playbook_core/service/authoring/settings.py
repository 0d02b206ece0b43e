"""Per-org settings (domain.md §2.3): validated, defaults filled, secrets only by reference."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from playbook_core.domain.collections import SCHEDULES, SETTINGS
from playbook_core.domain.compliance.org import ComplianceSettings
from playbook_core.domain.errors import Issue, PlaybookInvalid
from playbook_core.domain.schedules import TimezoneError, resolve_timezone
from playbook_core.domain.secret_names import names_secret, org_slack_reference, slack_secret_name
from playbook_core.domain.timezones import org_timezone_name, zone_named
from playbook_core.domain.validation import E164, EMAIL
from playbook_core.ports import Clock, DocumentStore, Secrets, Where
from playbook_core.service.ingress.sources import retire_versions
from playbook_core.service.paging import iterate
from playbook_core.service.records import read_settings

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}  # the local Slack stand-in; nothing else over http


class ChannelCap(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool = False
    max: Annotated[int, Field(ge=1, le=20)] = 1
    window_hours: Annotated[int, Field(alias="windowHours", ge=1, le=168)] = 24


class SettingsPatch(BaseModel):
    """Fields an editor may change; everything optional, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, validate_by_name=False)

    timezone: str | None = None
    dedup_window_hours: Annotated[int, Field(ge=1, le=168)] | None = None
    frequency_caps: dict[Literal["email", "sms"], ChannelCap] | None = None
    approval_ttl_hours: Annotated[int, Field(ge=1, le=720)] | None = None
    attribution_window_days: Annotated[int, Field(ge=1, le=30)] | None = None
    cost_per_execution_usd: Annotated[Decimal, Field(ge=0)] | None = None
    low_stock_threshold: Annotated[int, Field(ge=0, le=100000)] | None = None
    admin_email: str | None = None
    alert_phone: str | None = None
    slack_webhook_secret_ref: Annotated[str, Field(max_length=512)] | None = None
    slack_webhook_url: Annotated[str, Field(max_length=2048)] | None = None  # write-only
    default_country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    compliance: ComplianceSettings | None = None  # docs/compliance.md §6, stored whole

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                resolve_timezone(value)
            except TimezoneError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @field_validator("admin_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL.match(value.strip().lower()):
            raise ValueError("adminEmail must be an email address")
        return value.strip().lower() if value else value

    @field_validator("alert_phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not E164.match(value):
            raise ValueError("alertPhone must be an E.164 number such as +14155550100")
        return value

    @field_validator("slack_webhook_url")
    @classmethod
    def _slack_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            local = parts.scheme == "http" and parts.hostname in _LOOPBACK
            if not (parts.scheme == "https" or local) or not parts.hostname:
                raise ValueError("slackWebhookUrl must be an https:// Slack incoming-webhook URL")
        return value


DEFAULTS: dict[str, Any] = {
    "timezone": None,
    "tier": None,
    "dedupWindowHours": 24,
    "frequencyCaps": {},
    "approvalTtlHours": 72,
    "attributionWindowDays": 7,
    "costPerExecutionUsd": "0.05",
    "lowStockThreshold": 5,
    "adminEmail": None,
    "alertPhone": None,
    "slackWebhookSecretRef": None,
    "defaultCountry": "US",
    "compliance": ComplianceSettings().model_dump(mode="json", by_alias=True),
}


def get_settings(*, org_id: str, store: DocumentStore) -> dict[str, Any]:
    stored: Mapping[str, Any] = read_settings(store, org_id)
    # A field patched to null is back at its default: null means "reset", never a stored hole.
    visible = {
        key: default if stored.get(key) is None else stored[key]
        for key, default in DEFAULTS.items()
    }
    return {
        "orgId": org_id,
        **visible,
        # Known gap (domain.md §2.3): organizations.timezone is not consulted here.
        "effectiveTimezone": org_timezone_name(stored),
    }


# What get_settings answers besides the patchable fields: a client may send the answer back whole.
ANSWER_ONLY = frozenset({"orgId", "effectiveTimezone"})


def _without_answer_fields(org_id: str, changes: dict[str, Any], store: DocumentStore) -> Any:
    """The patch minus fields a GET carried that are not the client's to write.

    `orgId` and `effectiveTimezone` are derived and ignored. `tier` is ignored while it equals the
    stored tier; a different one stays refused (tiers change through :activateTier / :changeTier).
    """
    kept = {key: value for key, value in changes.items() if key not in ANSWER_ONLY}
    if "tier" in kept and kept["tier"] == read_settings(store, org_id).get("tier"):
        del kept["tier"]
    return kept


def patch_settings(
    *, org_id: str, changes: dict[str, Any], store: DocumentStore, secrets: Secrets, clock: Clock
) -> dict[str, Any]:
    """Validate everything first; only then store the Slack URL (as the org's own secret)."""
    try:
        patch = SettingsPatch.model_validate(_without_answer_fields(org_id, changes, store))
    except ValidationError as exc:
        issues = [
            Issue(code="invalid_value", path=".".join(str(p) for p in e["loc"]), line=None,
                  column=None, message=e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        ]  # fmt: skip
        raise PlaybookInvalid(issues) from None
    update = patch.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if patch.frequency_caps is not None:  # a cap is stored whole: its unset fields take defaults
        update["frequencyCaps"] = {
            channel: cap.model_dump(mode="json", by_alias=True)
            for channel, cap in patch.frequency_caps.items()
        }
    if patch.compliance is not None:  # stored whole, like a cap: unset fields take defaults
        update["compliance"] = patch.compliance.model_dump(mode="json", by_alias=True)
    reference = update.get("slackWebhookSecretRef")
    if reference is not None and not names_secret(reference, slack_secret_name(org_id)):
        raise PlaybookInvalid([
            Issue(code="invalid_value", path="slackWebhookSecretRef", line=None, column=None,
                  message="slackWebhookSecretRef must name this organization's own Slack secret "
                  "(set slackWebhookUrl to store one)"),
        ])  # fmt: skip
    previous = org_slack_reference(org_id, read_settings(store, org_id))
    if "slackWebhookUrl" in update:
        url = update.pop("slackWebhookUrl")
        update["slackWebhookSecretRef"] = (
            secrets.put(slack_secret_name(org_id), url) if url is not None else None
        )
    written = update.get("slackWebhookSecretRef")
    try:
        store.set(
            SETTINGS, org_id, {"orgId": org_id, **update, "updatedAt": clock.now()}, merge=True
        )
    except Exception:
        if written is not None and written != previous:
            secrets.discard(written)  # the settings never pointed at it
        raise
    if "slackWebhookSecretRef" in update and previous is not None and previous != written:
        retire_versions(secrets, [previous])  # a replaced or cleared URL stops working
    if "timezone" in update:
        _retime_inherited_schedules(org_id, update["timezone"], store, clock)
    return get_settings(org_id=org_id, store=store)


def _retime_inherited_schedules(
    org_id: str, timezone: str | None, store: DocumentStore, clock: Clock
) -> None:
    """Schedules that inherit the org zone move with it (domain.md §8.1)."""
    from playbook_core.domain.schedules import next_slot, slot_local  # noqa: PLC0415

    zone = zone_named(timezone)
    zone_name = str(zone.key)
    now = clock.now()
    inherited = [Where("orgId", "==", org_id), Where("timezoneInherited", "==", True)]  # noqa: FBT003
    for doc in iterate(store, SCHEDULES, inherited, page_size=100):
        slot = next_slot(doc.data["cron"], zone, now)
        store.update(SCHEDULES, doc.id, {
            "timezone": zone_name, "nextRunAt": slot, "nextRunLocal": slot_local(slot, zone),
            "updatedAt": now,
        })  # fmt: skip
