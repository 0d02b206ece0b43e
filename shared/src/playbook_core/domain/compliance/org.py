"""An org's own stricter rules and its compliance profile, both kept in settings.compliance.

They become ordinary rules of jurisdiction ORG that apply together with the packs, so they can
add restrictions but never lift one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, Field

from playbook_core.domain.compliance.rules import (
    ORG,
    AnyRule,
    Cap,
    ForbiddenTermsRule,
    FrequencyRule,
    Model,
    OrgProfile,
    SendWindowRule,
    StateCode,
    Term,
    Text,
    Window,
    unique,
)

_SINCE: Final = date(2000, 1, 1)  # org rules are in force from the moment they are saved
_CITATION: Final = "organisation policy (settings.compliance)"
_CONFIDENCE: Final = "set by the organisation; applies on top of every rule pack"


class OrgRules(Model, BaseModel):  # BaseModel named so ruff sees pydantic copying defaults
    forbidden_terms: Annotated[list[Term], Field(max_length=200)] = []
    send_window: Window | None = None
    frequency: Cap | None = None


class ComplianceSettings(OrgRules):
    """`settings.compliance` as an editor writes it: the profile and the org's own rules.

    The unsubscribe link is not here: the server signs one per send.
    """

    states: Annotated[list[StateCode], Field(max_length=56), AfterValidator(unique)] = []
    licenses: Annotated[
        dict[StateCode, Annotated[Text, Field(max_length=100)]], Field(max_length=56)
    ] = {}
    legal_name: Annotated[Text, Field(max_length=200)] | None = None
    postal_address: Annotated[Text, Field(max_length=500)] | None = None
    sms_brand_name: Annotated[Text, Field(max_length=40)] | None = None


def parse_settings(compliance: Mapping[str, Any] | None) -> tuple[OrgProfile, OrgRules]:
    """settings.compliance (camelCase) as the profile and the org's own rules."""
    given = ComplianceSettings.model_validate(
        {key: value for key, value in (compliance or {}).items() if value is not None}
    )
    data = given.model_dump(by_alias=True)
    own = {key: data.pop(key) for key in ("forbiddenTerms", "sendWindow", "frequency")}
    profile, rules = OrgProfile.model_validate(data), OrgRules.model_validate(own)
    return profile, rules


def org_rules(rules: OrgRules) -> list[AnyRule]:
    """The org's additions as rules on both channels, each with generated examples."""
    common: dict[str, Any] = {
        "jurisdiction": ORG, "channels": ["email", "sms"], "severity": "block",
        "citation": _CITATION, "effectiveFrom": _SINCE.isoformat(), "confidence": _CONFIDENCE,
    }  # fmt: skip
    found: list[AnyRule] = []
    if rules.forbidden_terms:
        examples: dict[str, list[dict[str, Any]]]
        examples = {"pass": [{"body": ""}], "fail": [{"body": rules.forbidden_terms[0]}]}
        found.append(
            ForbiddenTermsRule.model_validate(
                {**common, "id": "org.forbidden-terms", "kind": "forbidden_terms",
                 "message": "the organisation does not allow this wording",
                 "terms": rules.forbidden_terms, "examples": examples}
            )
        )  # fmt: skip
    if rules.send_window is not None:
        window = rules.send_window
        day = _SINCE.isoformat()
        examples = {
            "pass": [{"sendAt": f"{day}T{window.start}"}],
            "fail": [{"sendAt": f"{day}T{window.end}"}],
        }
        found.append(
            SendWindowRule.model_validate(
                {**common, "id": "org.send-window", "kind": "send_window",
                 "message": "outside the organisation's sending hours",
                 "start": window.start, "end": window.end, "examples": examples}
            )
        )  # fmt: skip
    if rules.frequency is not None:
        cap = rules.frequency
        noon = datetime.combine(_SINCE, time(12))
        # A second apart before noon, the examples' default send time: all inside any window.
        sent = [(noon - timedelta(seconds=n)).isoformat() for n in range(1, cap.max + 1)]
        examples = {"pass": [{"recentSends": []}], "fail": [{"recentSends": sent}]}
        found.append(
            FrequencyRule.model_validate(
                {**common, "id": "org.frequency", "kind": "frequency",
                 "message": "more messages than the organisation allows in the period",
                 "max": cap.max, "windowHours": cap.window_hours, "examples": examples}
            )
        )  # fmt: skip
    return found
