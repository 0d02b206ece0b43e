"""The compliance check of one message to one recipient at one instant, and the save-time lint.

Rules of the US pack and of the recipient's state apply together with the org's own rules; a
rule applies when it covers the channel, is in force on the recipient's local date and, when
`marketingOnly`, the message is marketing. Verdict: any block, else any deferral, else any
warning, else allow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from playbook_core.domain.compliance import matching, timing
from playbook_core.domain.compliance.footer import UNSUBSCRIBE_PLACEHOLDER, footer, packs_for
from playbook_core.domain.compliance.rules import (
    CONTENT_KINDS,
    ORG,
    STATES,
    TIME_KINDS,
    US,
    AgeRule,
    AnyRule,
    Channel,
    ConsentRule,
    ForbiddenTermsRule,
    FrequencyRule,
    Kind,
    OrgProfile,
    ProfileField,
    RequiredFieldRule,
    RequiredTextRule,
    RulePack,
    SendWindowRule,
    Severity,
    Verdict,
)
from playbook_core.domain.timezones import zone_named

NATIONAL = (US, ORG)  # rules that follow no state: federal, policy and the org's own
FIELD_NAMES: dict[ProfileField, str] = {
    "license": "licence number",
    "legalName": "legal name",
    "postalAddress": "postal address",
    "smsBrandName": "SMS brand name",
    "unsubscribeLink": "unsubscribe link",
}


@dataclass(frozen=True)
class Message:
    channel: Channel
    body: str
    subject: str | None = None
    marketing: bool = True  # False for transactional messages such as order receipts


@dataclass(frozen=True)
class ConsentState:
    status: Literal["granted", "revoked"]
    record_id: str | None = None  # the consent record; a grant without one is not "recorded"


@dataclass(frozen=True)
class Recipient:
    state: str | None  # two-letter code, see jurisdiction.recipient_place
    zone: str  # IANA name; an unusable one means America/New_York (timezones.zone_named)
    consent: ConsentState | None = None
    age_verified: bool | None = None
    # This org's marketing sends on this channel to this recipient (aware datetimes).
    recent_sends: tuple[datetime, ...] = ()


class _Out(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class Finding(_Out):
    rule_id: str
    jurisdiction: str
    kind: Kind
    severity: Severity
    message: str
    citation: str
    field: str | None = None  # "subject" / "body" in check; the text field's name in lint
    start: int | None = None  # character offsets of a forbidden term in that field
    end: int | None = None


class CheckResult(_Out):
    verdict: Verdict
    findings: list[Finding]
    defer_until: datetime | None = None
    rule_pack: str  # the pack versions that applied, e.g. "CA@2026.12.0+US@2026.12.0"


def check(
    message: Message,
    recipient: Recipient,
    *,
    profile: OrgProfile,
    packs: Sequence[RulePack],
    extra_rules: Sequence[AnyRule] = (),
    send_at: datetime,
) -> CheckResult:
    """The verdict for sending `message` to `recipient` at `send_at` (an aware datetime)."""
    if send_at.tzinfo is None or send_at.utcoffset() is None:
        raise ValueError("send_at must be a timezone-aware datetime")
    zone = zone_named(recipient.zone)
    states = [recipient.state] if recipient.state else []
    chosen = packs_for(packs, states)
    rules = [
        rule
        for rule in [*(rule for pack in chosen for rule in pack.rules), *extra_rules]
        if _applies(rule, message.channel, marketing=message.marketing)
        and rule.effective_from <= send_at.astimezone(zone).date()
    ]
    fields = {"subject": message.subject or "", "body": message.body}
    protected = _protected(packs, extra_rules, profile)
    findings = _content_findings(rules, fields, profile, recipient.state, protected)
    findings += _recipient_findings(rules, recipient)
    time_rules = [rule for rule in rules if isinstance(rule, SendWindowRule | FrequencyRule)]
    late = [rule for rule in time_rules if _holds_back(rule, send_at, zone, recipient)]
    findings += [_finding(rule, _time_message(rule, recipient)) for rule in late]
    defer_until = None
    never = False
    if late:
        defer_until = timing.earliest(send_at, time_rules, zone, recipient.recent_sends)
        if defer_until is None:
            never = True
            ids = "+".join(sorted(rule.id for rule in time_rules))
            findings.append(
                Finding(
                    rule_id=ids, jurisdiction=late[0].jurisdiction, kind="send_window",
                    severity="block", citation="; ".join(rule.citation for rule in time_rules),
                    message="the send windows and caps that apply never allow a send",
                )
            )  # fmt: skip
    verdict = _verdict(findings, deferred=bool(late), never=never)
    return CheckResult(
        verdict=verdict,
        findings=findings,
        defer_until=defer_until,  # also under a block: a reviewer's override still waits
        rule_pack="+".join(sorted(pack.label for pack in chosen)),
    )


def lint(
    text_fields: Mapping[str, str],
    *,
    channel: Channel,
    profile: OrgProfile,
    packs: Sequence[RulePack],
    jurisdictions: Sequence[str],
    extra_rules: Sequence[AnyRule] = (),
    marketing: bool = True,
    footer_appended: bool = True,
) -> list[Finding]:
    """Content findings for a step's static text in the given states (and US), at save time.

    Only content rules run (no send window, cap, consent or age), the org's own included. Text
    inside `{{ }}` placeholders is not searched. Required text and fields are looked for in all
    fields together plus, with `footer_appended`, the footer the server will add; the
    unsubscribe link, which the server fills at send time, counts as set.
    """
    if profile.unsubscribe_link is None:
        profile = profile.model_copy(update={"unsubscribe_link": UNSUBSCRIBE_PLACEHOLDER})
    shipped = [rule for pack in packs_for(packs, jurisdictions) for rule in pack.rules]
    rules = [
        rule
        for rule in [*shipped, *extra_rules]
        if rule.kind in CONTENT_KINDS and _applies(rule, channel, marketing=marketing)
    ]
    masked = {name: matching.mask_placeholders(text) for name, text in text_fields.items()}
    extra = footer(channel, profile, jurisdictions, packs) if footer_appended else ""
    protected = _protected(packs, extra_rules, profile)
    findings: list[Finding] = []
    for state in [*dict.fromkeys(s for s in jurisdictions if s in STATES), None]:
        # Licence rules are per state, so each state's rules see that state's licence.
        scoped = [rule for rule in rules if rule.jurisdiction in ((state,) if state else NATIONAL)]
        findings += _content_findings(scoped, masked, profile, state, protected, extra=extra)
    return findings


def _applies(rule: AnyRule, channel: Channel, *, marketing: bool) -> bool:
    return channel in rule.channels and (marketing or not rule.marketing_only)


def _content_findings(
    rules: Sequence[AnyRule],
    fields: Mapping[str, str],
    profile: OrgProfile,
    state: str | None,
    protected: Sequence[str],
    *,
    extra: str = "",
) -> list[Finding]:
    joined = "\n".join([*fields.values(), extra])
    spans = {name: matching.spans_of(text, protected) for name, text in fields.items()}
    findings: list[Finding] = []
    for rule in rules:
        if isinstance(rule, ForbiddenTermsRule):
            for name, text in fields.items():
                for start, end in matching.hits(text, rule.terms, rule.patterns, spans[name]):
                    found = f"{rule.message} (found '{text[start:end]}')"
                    findings.append(_finding(rule, found, field=name, start=start, end=end))
        elif isinstance(rule, RequiredTextRule):
            if not any(matching.contains(joined, phrase) for phrase in rule.any_of):
                findings.append(_finding(rule, rule.message))
        elif isinstance(rule, RequiredFieldRule):
            problem = _field_problem(rule, profile, state, joined)
            if problem is not None:
                findings.append(_finding(rule, problem))
    return findings


def _protected(
    packs: Sequence[RulePack], extra_rules: Iterable[AnyRule], profile: OrgProfile
) -> list[str]:
    """Text no forbidden term may be found in.

    Text a rule requires (a state's warning holds "children") and the org's own identity (a
    legal name that happens to hold a listed word) never break another rule.
    """
    rules = [*(rule for pack in packs for rule in pack.rules), *extra_rules]
    phrases = [p for rule in rules if isinstance(rule, RequiredTextRule) for p in rule.any_of]
    identity = [profile.legal_name, profile.postal_address, profile.sms_brand_name]
    return phrases + [value for value in identity if value] + list(profile.licenses.values())


def _field_problem(
    rule: RequiredFieldRule, profile: OrgProfile, state: str | None, text: str
) -> str | None:
    where = rule.jurisdiction if rule.jurisdiction in STATES else state
    name = FIELD_NAMES[rule.field]
    if rule.field == "license":
        name = f"{name} for {where or 'the recipient state'}"
    value = profile.value_of(rule.field, where)
    if value is None:
        return f"{name} is not set"
    if rule.must_appear and not matching.contains(text, value):
        return f"{rule.message} (the {name}, {value}, does not appear in the message)"
    return None


def _recipient_findings(rules: Sequence[AnyRule], recipient: Recipient) -> list[Finding]:
    findings: list[Finding] = []
    for rule in rules:
        if isinstance(rule, ConsentRule):
            consent = recipient.consent
            if consent is None or consent.status != "granted":
                state = "revoked" if consent else "missing"
                findings.append(_finding(rule, f"{rule.message} (consent {state})"))
            elif not consent.record_id:
                findings.append(_finding(rule, f"{rule.message} (consent not recorded)"))
        elif isinstance(rule, AgeRule) and recipient.age_verified is not True:
            findings.append(_finding(rule, rule.message))
    return findings


def _holds_back(
    rule: SendWindowRule | FrequencyRule, send_at: datetime, zone: ZoneInfo, recipient: Recipient
) -> bool:
    if isinstance(rule, SendWindowRule):
        return timing.window_opens(rule, send_at, zone) != send_at
    return timing.cap_allows(rule, send_at, recipient.recent_sends) != send_at


def _time_message(rule: SendWindowRule | FrequencyRule, recipient: Recipient) -> str:
    if isinstance(rule, SendWindowRule):
        return f"{rule.message} (allowed {rule.start}–{rule.end} in {recipient.zone})"
    return f"{rule.message} (at most {rule.max} per {rule.window_hours} h)"


def _finding(
    rule: AnyRule, message: str, *, field: str | None = None, start: int | None = None,
    end: int | None = None,
) -> Finding:  # fmt: skip
    return Finding(
        rule_id=rule.id, jurisdiction=rule.jurisdiction, kind=rule.kind, severity=rule.severity,
        message=message, citation=rule.citation, field=field, start=start, end=end,
    )  # fmt: skip


def _verdict(findings: Sequence[Finding], *, deferred: bool, never: bool) -> Verdict:
    # Time rules carry severity block but hold a message back rather than stop it.
    blocking = [f for f in findings if f.severity == "block" and f.kind not in TIME_KINDS]
    if blocking or never:
        return "block"
    if deferred:
        return "defer"
    if findings:
        return "warn"
    return "allow"
