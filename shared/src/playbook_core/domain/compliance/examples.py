"""Runs a rule's examples through `check` with that rule alone, the proof that the rule works."""

from __future__ import annotations

from datetime import datetime, time

from playbook_core.domain.compliance.check import (
    CheckResult,
    ConsentState,
    Message,
    Recipient,
    check,
)
from playbook_core.domain.compliance.footer import SEPARATOR, footer
from playbook_core.domain.compliance.rules import ORG, STATES, AnyRule, Example, RulePack
from playbook_core.domain.schedules import _resolve, resolve_timezone

_CONSENT = {
    "granted": ConsentState("granted", "consent-example"),
    "revoked": ConsentState("revoked", "consent-example"),
    "unrecorded": ConsentState("granted", None),
    "missing": None,
}


def run_example(rule: AnyRule, example: Example) -> CheckResult:
    """`check` of the example with `rule` as the only rule (its findings are the rule's)."""
    zone = resolve_timezone(example.recipient_zone)
    state = example.state or (rule.jurisdiction if rule.jurisdiction in STATES else None)
    packs = (
        []
        if rule.jurisdiction == ORG
        else [
            RulePack.model_validate(
                {"jurisdiction": rule.jurisdiction, "name": "example", "version": "0000.0.0",
                 "rules": [rule]}
            )
        ]
    )  # fmt: skip
    profile = example.org_profile()
    channel = example.channel or rule.channels[0]
    body = example.body
    if example.footer:
        body += SEPARATOR + footer(channel, profile, [state] if state else [], packs)
    default = datetime.combine(rule.effective_from, time(12)).isoformat()
    return check(
        Message(channel, body, example.subject, marketing=example.marketing),
        Recipient(
            state=state,
            zone=example.recipient_zone,
            consent=_CONSENT[example.consent],
            age_verified=example.age_verified,
            recent_sends=tuple(
                _resolve(datetime.fromisoformat(sent), zone) for sent in example.recent_sends
            ),
        ),
        profile=profile,
        packs=packs,
        extra_rules=[rule] if rule.jurisdiction == ORG else [],
        send_at=_resolve(datetime.fromisoformat(example.send_at or default), zone),
    )
