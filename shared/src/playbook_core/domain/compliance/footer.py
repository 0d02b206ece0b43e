"""The compliance footer the server appends to every marketing message.

It is built from the rules themselves: every field a `required_field` rule wants shown, and the
first phrase of every `required_text` rule marked `autoAppend`, so `check` on body + footer passes
those rules whenever the profile is complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from playbook_core.domain.compliance.rules import (
    US,
    AnyRule,
    Channel,
    OrgProfile,
    RequiredFieldRule,
    RequiredTextRule,
    RulePack,
)

# Stands in for the unsubscribe link when the profile has none yet; the server replaces it.
UNSUBSCRIBE_PLACEHOLDER: Final = "%UNSUBSCRIBE_LINK%"
SEPARATOR: Final = "\n\n"  # between the body and the footer


def packs_for(packs: Sequence[RulePack], states: Sequence[str]) -> list[RulePack]:
    """The US pack and those of the given states, US first, then in state order."""
    chosen = [pack for pack in packs if pack.jurisdiction == US or pack.jurisdiction in states]
    return sorted(chosen, key=lambda pack: (pack.jurisdiction != US, pack.jurisdiction))


def footer(
    channel: Channel, profile: OrgProfile, jurisdictions: Sequence[str], packs: Sequence[RulePack]
) -> str:
    """Footer lines for the channel in the given states: identity, licences, warnings, opt-out."""
    rules: list[AnyRule] = [
        rule for pack in packs_for(packs, jurisdictions) for rule in pack.rules
        if channel in rule.channels
    ]  # fmt: skip
    shown = {
        rule.field for rule in rules if isinstance(rule, RequiredFieldRule) and rule.must_appear
    }
    lines: list[str] = []
    if channel == "email":
        identity = [profile.legal_name, profile.postal_address]
        lines.append(", ".join(value for value in identity if value))
    if "smsBrandName" in shown or channel == "sms":
        lines.append(profile.sms_brand_name or profile.legal_name or "")
    licensed = [
        rule.jurisdiction for rule in rules
        if isinstance(rule, RequiredFieldRule) and rule.field == "license" and rule.must_appear
    ]  # fmt: skip
    licences = [
        f"{state} license {profile.licenses[state]}"
        for state in dict.fromkeys(licensed)
        if state in profile.licenses
    ]
    lines.append("; ".join(licences))
    # State warnings first, the US opt-out wording last: it reads as the message's close.
    appended = [
        rule.any_of[0] for rule in sorted(rules, key=lambda rule: rule.jurisdiction == US)
        if isinstance(rule, RequiredTextRule) and rule.auto_append
    ]  # fmt: skip
    lines += list(dict.fromkeys(appended))
    if channel == "email" or "unsubscribeLink" in shown:
        lines.append(f"Unsubscribe: {profile.unsubscribe_link or UNSUBSCRIBE_PLACEHOLDER}")
    return "\n".join(line for line in lines if line)
