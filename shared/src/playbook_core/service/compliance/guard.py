"""The compliance guard applied to one message (docs/compliance.md): send time, check API, lint.

It gathers what the pure check needs — the org's profile and own rules from its settings, the
shipped packs, where the recipient lives and which clock they keep — appends the footer a
marketing message carries, and returns the check's result with the text that was checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from playbook_core import compliance_rules
from playbook_core.domain.approval import provably_internal
from playbook_core.domain.collections import CUSTOMERS
from playbook_core.domain.compliance import (
    CheckResult,
    ConsentState,
    Finding,
    Message,
    OrgProfile,
    Place,
    Recipient,
    check,
    footer,
    lint,
    org_rules,
    parse_settings,
    recipient_place,
)
from playbook_core.domain.compliance.footer import SEPARATOR
from playbook_core.domain.compliance.matching import contains
from playbook_core.domain.consent import identities
from playbook_core.domain.errors import Issue, NotFound, PlaybookInvalid
from playbook_core.domain.ids import is_plain_id
from playbook_core.domain.loading import Validated
from playbook_core.domain.playbook import SendEmailStep, SendSmsStep
from playbook_core.domain.sending import Channel, identity_key
from playbook_core.domain.timezones import org_timezone_name
from playbook_core.ports import DocumentStore
from playbook_core.service.compliance.consent import consent_in_force
from playbook_core.service.records import read_settings


@dataclass(frozen=True)
class Guarded:
    result: CheckResult
    body: str  # the body as it would go out: the footer appended to a marketing message
    place: Place


def profile_of(settings: Mapping[str, Any]) -> OrgProfile:
    return parse_settings(settings.get("compliance"))[0]


def with_footer(body: str, channel: Channel, profile: OrgProfile, states: Sequence[str]) -> str:
    """The body and the footer lines it does not already carry (an opt-out the author wrote)."""
    lines = [
        line
        for line in footer(channel, profile, states, compliance_rules.packs()).splitlines()
        if not contains(body, line)
    ]
    return body + SEPARATOR + "\n".join(lines) if lines else body


def guard(
    *,
    settings: Mapping[str, Any],
    org_zone: str,
    channel: Channel,
    subject: str | None,
    body: str,
    marketing: bool,
    address_state: str | None,
    phone: str | None,
    consent: ConsentState | None,
    age_verified: bool | None,
    recent_sends: Sequence[datetime],
    send_at: datetime,
    unsubscribe_link: str | None = None,
) -> Guarded:
    """The verdict on one message to one recipient at `send_at`."""
    profile, own = parse_settings(settings.get("compliance"))
    if unsubscribe_link is not None:
        profile = profile.model_copy(update={"unsubscribe_link": unsubscribe_link})
    place = recipient_place(
        address_state=address_state,
        phone=phone,
        org_states=profile.states,
        org_zone=org_zone,
        area_codes=compliance_rules.area_codes(),
        state_zones=compliance_rules.state_zones(),
    )
    states = [place.state] if place.state else []
    text = with_footer(body, channel, profile, states) if marketing else body
    result = check(
        Message(channel, text, subject, marketing=marketing),
        Recipient(
            state=place.state,
            zone=place.zone,
            consent=consent,
            age_verified=age_verified,
            recent_sends=tuple(recent_sends),
        ),
        profile=profile,
        packs=compliance_rules.packs(),
        extra_rules=org_rules(own),
        send_at=send_at,
    )
    return Guarded(result, text, place)


def lint_definition(
    validated: Validated, settings: Mapping[str, Any]
) -> list[tuple[Finding, Issue]]:
    """Save-time findings for the static text of customer-facing sends (docs/compliance.md).

    Checked in every state the org is licensed in (and federally), as an `Issue` at the text's
    line and column: `compliance_block` or `compliance_warn`.
    """
    profile, own = parse_settings(settings.get("compliance"))
    extra = org_rules(own)
    found: list[tuple[Finding, Issue]] = []
    for index, step in enumerate(validated.definition.steps):
        if not isinstance(step, SendEmailStep | SendSmsStep) or provably_internal(step.params.to):
            continue
        email = isinstance(step, SendEmailStep)
        fields = {"body": step.params.body or ""}
        if isinstance(step, SendEmailStep):
            fields = {"subject": step.params.subject, **fields}
        for finding in lint(
            fields, channel="email" if email else "sms", profile=profile,
            packs=compliance_rules.packs(), jurisdictions=profile.states, extra_rules=extra,
            marketing=not step.params.transactional,
        ):  # fmt: skip
            path = f"steps[{index}].params.{finding.field or 'body'}"
            message = f"{finding.rule_id}: {finding.message} ({finding.citation})"
            found.append(
                (finding, validated.issue_at(path, f"compliance_{finding.severity}", message))
            )
    return found


def refuse_blocked(validated: Validated, settings: Mapping[str, Any]) -> None:
    """An active playbook may not carry wording a rule blocks: 422 with the findings.

    Only wording: a profile field that is not set yet (a licence number) is a warning here and
    blocks each send until it is set, so an org can activate first and complete its profile.
    """
    blocked = [issue for finding, issue in lint_definition(validated, settings)
               if finding.severity == "block" and finding.kind == "forbidden_terms"]  # fmt: skip
    if blocked:
        raise PlaybookInvalid(blocked)


def stored(result: CheckResult) -> dict[str, Any]:
    """The result as a delivery or step keeps it (and the check API answers it)."""
    return result.model_dump(mode="python", by_alias=True, exclude_none=True)


def check_for(
    *,
    store: DocumentStore,
    org_id: str,
    channel: Channel,
    subject: str | None,
    body: str,
    transactional: bool,
    state: str | None,
    phone: str | None,
    email: str | None,
    customer_id: str | None,
    send_at: datetime,
) -> tuple[Guarded, str | None]:
    """The check API: what the guard would say of this text to this recipient at `send_at`.

    A customer id fills what the request leaves out (state, phone, age check, consent). Returns
    the result and the consent record it relied on.
    """
    settings = read_settings(store, org_id)
    customer: Mapping[str, Any] = {}
    if customer_id is not None:
        found = store.get(CUSTOMERS, customer_id) if is_plain_id(customer_id) else None
        if found is None or found.get("orgId") != org_id:
            raise NotFound(f"no customer '{customer_id}' in this organization")
        customer = found
    phone = phone or _text(customer.get("phone"))
    email = email or _text(customer.get("email"))
    recipient = (phone if channel == "sms" else email) or ""
    customer_doc = {**customer, "id": customer_id} if customer_id else None
    identity = identity_key(customer_doc, recipient)
    consent, record_id = None, None
    if not transactional and recipient:
        keys = list(dict.fromkeys([identity, *identities(customer_doc, recipient)]))
        record = consent_in_force(store, org_id=org_id, identities=keys, channel=channel)
        if record is not None:
            consent, record_id = ConsentState(record["state"], record["id"]), record["id"]
        elif isinstance(flag := (customer.get("consent") or {}).get(channel), bool):
            consent = ConsentState("granted" if flag else "revoked", None)
    age = customer.get("ageVerified")
    guarded = guard(
        settings=settings,
        org_zone=org_timezone_name(settings),
        channel=channel,
        subject=subject,
        body=body,
        marketing=not transactional,
        address_state=state or _text(customer.get("state")),
        phone=phone,
        consent=consent,
        age_verified=age if isinstance(age, bool) else None,
        recent_sends=(),
        send_at=send_at,
        unsubscribe_link=None,
    )
    return guarded, record_id


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def jurisdictions() -> list[str]:
    return [pack.jurisdiction for pack in compliance_rules.packs()]


def rules(jurisdiction: str | None, channel: Channel | None) -> dict[str, Any]:
    """The shipped rules, optionally of one jurisdiction and channel, and the pack versions."""
    packs = [
        pack for pack in compliance_rules.packs()
        if jurisdiction is None or pack.jurisdiction == jurisdiction
    ]  # fmt: skip
    listed = [
        {
            **rule.model_dump(mode="json", by_alias=True, exclude={"examples"}),
            "version": pack.version,
        }
        for pack in packs
        for rule in pack.rules
        if channel is None or channel in rule.channels
    ]
    versions = [
        {"jurisdiction": p.jurisdiction, "name": p.name, "version": p.version} for p in packs
    ]
    return {"rules": listed, "packs": versions}
