"""Marketing rules as data: one strict model per rule kind, rule packs and the org's profile.

A pack holds the rules of one jurisdiction (`US` or a state); docs/compliance.md explains every
field to the people who edit them. Each rule carries passing and failing examples, which the
tests run through `check`, so a rule that stops doing what it says fails the build.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from playbook_core.domain.schedules import TimezoneError, resolve_timezone

Channel = Literal["email", "sms"]
Severity = Literal["block", "warn"]
Verdict = Literal["allow", "warn", "block", "defer"]
Kind = Literal[
    "forbidden_terms", "required_text", "required_field", "send_window", "frequency", "consent",
    "age",
]  # fmt: skip
ProfileField = Literal["license", "legalName", "postalAddress", "smsBrandName", "unsubscribeLink"]

US: Final = "US"
ORG: Final = "ORG"  # the jurisdiction of an organisation's own rules (org.py)
STATES: Final = frozenset(
    {
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN",
        "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH",
        "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT",
        "VT", "VA", "WA", "WV", "WI", "WY",
    }
)  # fmt: skip
CONTENT_KINDS: Final = frozenset({"forbidden_terms", "required_text", "required_field"})
TIME_KINDS: Final = frozenset({"send_window", "frequency"})
MAX_WINDOW_HOURS: Final = 168


class Model(BaseModel):
    """Strict, frozen, camelCase on the wire; unknown keys are errors (as playbook.Model)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
    )


def _invalid(message: str) -> PydanticCustomError:
    # `invalid_value` is one of loading.py's own codes, so the Issue keeps it.
    return PydanticCustomError("invalid_value", message)


def _state(value: str) -> str:
    if value not in STATES:
        raise _invalid(f"'{value}' is not a US state code such as CA or NY")
    return value


def _jurisdiction(value: str) -> str:
    if value not in STATES and value not in (US, ORG):
        raise _invalid(f"'{value}' is not US, ORG or a US state code such as CA")
    return value


def _pack_jurisdiction(value: str) -> str:
    if value not in STATES and value != US:
        raise _invalid(f"'{value}' is not US or a US state code such as CA")
    return value


def _pattern(value: str) -> str:
    try:
        compiled = re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise _invalid(f"not a valid regular expression: {exc}") from None
    if compiled.search("") is not None:
        raise _invalid("the pattern matches empty text, so it would match everywhere")
    return value


def _zone(value: str) -> str:
    try:
        resolve_timezone(value)
    except TimezoneError as exc:
        raise _invalid(str(exc)) from None
    return value


def _local_time(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(f"'{value}' is not a local date-time such as 2027-03-14T08:00") from None
    if parsed.tzinfo is not None:
        raise _invalid("give the recipient's local wall time, without an offset")
    return value


def unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise _invalid("each value may appear only once")
    return values


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Term = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Pattern = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_pattern)]
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=80)]
StateCode = Annotated[str, AfterValidator(_state)]
Jurisdiction = Annotated[str, AfterValidator(_jurisdiction)]
PackJurisdiction = Annotated[str, AfterValidator(_pack_jurisdiction)]
ClockTime = Annotated[str, StringConstraints(pattern=r"^(?:[01]\d|2[0-3]):[0-5]\d$")]
Zone = Annotated[str, AfterValidator(_zone)]
LocalTime = Annotated[str, AfterValidator(_local_time)]
Channels = Annotated[list[Channel], Field(min_length=1), AfterValidator(unique)]


def clock(value: str) -> time:
    """'HH:MM' (already validated) as a time."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


class OrgProfile(Model):
    """What the org told us about itself (settings.compliance); the server adds the link."""

    states: Annotated[list[StateCode], AfterValidator(unique)] = []
    licenses: dict[StateCode, Text] = {}
    legal_name: Text | None = None
    postal_address: Text | None = None
    sms_brand_name: Text | None = None
    unsubscribe_link: Text | None = None  # filled by the server at send time

    def value_of(self, field: ProfileField, state: str | None) -> str | None:
        """The profile's value for a required field; `license` is the given state's number."""
        if field == "license":
            return self.licenses.get(state) if state else None
        values = {
            "legalName": self.legal_name,
            "postalAddress": self.postal_address,
            "smsBrandName": self.sms_brand_name,
            "unsubscribeLink": self.unsubscribe_link,
        }
        return values[field]


# The profile examples start from: every field set, so an example states only what it removes.
EXAMPLE_PROFILE: Final[dict[str, Any]] = {
    "states": sorted(STATES),
    "licenses": {state: f"LIC-{state}-0001" for state in sorted(STATES)},
    "legalName": "Example Cannabis Co.",
    "postalAddress": "100 Example Way, Springfield",
    "smsBrandName": "Example Cannabis",
    "unsubscribeLink": "https://example.com/unsubscribe/abc",
}


class Example(Model):
    """The inputs of one `check` run; times are the recipient's local wall time."""

    channel: Channel | None = None  # default: the rule's first channel
    subject: str | None = None
    body: str = ""
    send_at: LocalTime | None = None  # default: noon on the rule's effectiveFrom date
    recipient_zone: Zone = "America/New_York"
    state: StateCode | None = None  # default: the rule's state, none for US and ORG rules
    recent_sends: list[LocalTime] = []
    profile: dict[str, Any] = {}  # overrides of EXAMPLE_PROFILE; null removes a field
    consent: Literal["granted", "revoked", "unrecorded", "missing"] = "granted"
    age_verified: bool | None = True
    marketing: bool = True
    footer: bool = False  # append footer() for the recipient's state to the body

    @field_validator("profile")
    @classmethod
    def _profile_is_valid(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            OrgProfile.model_validate({**EXAMPLE_PROFILE, **value})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise _invalid(f"profile {where}: {first['msg']}") from None
        return value

    def org_profile(self) -> OrgProfile:
        return OrgProfile.model_validate({**EXAMPLE_PROFILE, **self.profile})


class Examples(Model):
    passing: list[Example] = Field(alias="pass", min_length=1)
    failing: list[Example] = Field(alias="fail", min_length=1)


class RuleBase(Model):
    id: RuleId
    jurisdiction: Jurisdiction
    channels: Channels
    severity: Severity
    citation: Text
    effective_from: date = Field(strict=False)  # YAML dates arrive as ISO strings
    confidence: Text
    message: Text
    marketing_only: bool = True  # transactional messages (receipts) are exempt
    examples: Examples


class ForbiddenTermsRule(RuleBase):
    """Words and phrases (case-insensitive, whole words) or regexes that must not appear."""

    kind: Literal["forbidden_terms"]
    terms: list[Term] = []
    patterns: list[Pattern] = []

    @model_validator(mode="after")
    def _something_to_match(self) -> ForbiddenTermsRule:
        if not self.terms and not self.patterns:
            raise _invalid("give at least one of terms or patterns")
        return self


class RequiredTextRule(RuleBase):
    """At least one of the phrases must appear; `autoAppend` puts the first in the footer."""

    kind: Literal["required_text"]
    any_of: list[Text] = Field(min_length=1)
    auto_append: bool = False


class RequiredFieldRule(RuleBase):
    """The profile must set the field; with `mustAppear` its value must be in the message."""

    kind: Literal["required_field"]
    field: ProfileField
    must_appear: bool


class Window(Model):
    """From start (inclusive) to end (exclusive), the recipient's local wall time."""

    start: ClockTime
    end: ClockTime

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value: str, info: ValidationInfo) -> str:
        start = info.data.get("start")
        if isinstance(start, str) and value <= start:
            message = f"the window must end after it starts ({start}); overnight ones cannot"
            raise _invalid(message)
        return value


class Cap(Model):
    """At most `max` in any `windowHours`."""

    max: int = Field(ge=1, le=100)
    window_hours: int = Field(ge=1, le=MAX_WINDOW_HOURS)


class SendWindowRule(RuleBase, Window):
    """Send only between start (inclusive) and end (exclusive), recipient's local time."""

    kind: Literal["send_window"]
    severity: Literal["block"]  # the verdict of a time rule is defer; warn would mean nothing


class FrequencyRule(RuleBase, Cap):
    """At most `max` marketing messages on the channel per `windowHours` per recipient."""

    kind: Literal["frequency"]
    severity: Literal["block"]


class ConsentRule(RuleBase):
    """A recorded, non-revoked consent grant is needed."""

    kind: Literal["consent"]
    requires: Literal["express"]


class AgeRule(RuleBase):
    """The recipient must be verified as at least `minimumAge`."""

    kind: Literal["age"]
    minimum_age: int = Field(ge=18, le=21)


AnyRule = (
    ForbiddenTermsRule
    | RequiredTextRule
    | RequiredFieldRule
    | SendWindowRule
    | FrequencyRule
    | ConsentRule
    | AgeRule
)
Rule = Annotated[AnyRule, Field(discriminator="kind")]
KINDS: Final = (
    "forbidden_terms", "required_text", "required_field", "send_window", "frequency", "consent",
    "age",
)  # fmt: skip


class RulePack(Model):
    """The rules of one jurisdiction, versioned as YYYY.MM.N."""

    jurisdiction: PackJurisdiction
    name: Text
    version: Annotated[str, StringConstraints(pattern=r"^\d{4}\.\d{1,2}\.\d+$")]
    rules: list[Rule] = Field(min_length=1)

    @property
    def label(self) -> str:
        return f"{self.jurisdiction}@{self.version}"
