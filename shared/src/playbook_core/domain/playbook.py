"""The authorable playbook definition (domain.md §3.1–3.4) as strict models; structure only.

Semantic rules that need the whole document (cron, templates, references, recipients) live in
`validation.py`, so the loader can report each class of problem with its own position.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from playbook_core.domain.events import ALIASES

AGENTS = (
    "smokey", "craig", "pops", "ezal", "deebo", "big_worm",
    "money_mike", "mrs_parker", "leo", "linus", "jack", "system",
)  # fmt: skip
Agent = Literal[
    "smokey", "craig", "pops", "ezal", "deebo", "big_worm",
    "money_mike", "mrs_parker", "leo", "linus", "jack", "system",
]  # fmt: skip
DelegateAgent = Literal[
    "smokey", "craig", "pops", "ezal", "deebo", "big_worm",
    "money_mike", "mrs_parker", "leo", "linus", "jack",
]  # fmt: skip
Category = Literal["intel", "marketing", "ops", "reporting", "compliance", "custom"]
Frequency = Literal["daily", "weekly", "monthly", "quarterly"]

MAX_FREE_MAP_DEPTH = 5
MAX_EMIT_DATA_BYTES = 16 * 1024
_FREE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DURATION = re.compile(r"^([1-9][0-9]*)(m|h|d)$")
_DURATION_MINUTES = {"m": 1, "h": 60, "d": 1440}


def _trim(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


Trimmed = Annotated[str, BeforeValidator(_trim)]
ElementId = Annotated[Trimmed, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Scalar = str | int | float | bool | None


def _check_free_map(value: dict[str, Any]) -> dict[str, Any]:
    def walk(node: Any, depth: int) -> None:
        if depth > MAX_FREE_MAP_DEPTH:
            raise PydanticCustomError(
                "too_deep", "free maps may be at most {limit} levels deep", {"limit": 5}
            )
        if isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str) or not _FREE_KEY.match(key):
                    raise PydanticCustomError(
                        "invalid_key",
                        "map key '{key}' must match [A-Za-z_][A-Za-z0-9_]*",
                        {"key": key},
                    )
                walk(item, depth + 1)
        elif isinstance(node, list):
            for item in node:
                walk(item, depth + 1)
        elif not isinstance(node, (str, int, float, bool)) and node is not None:
            raise PydanticCustomError("invalid_type", "free map values must be JSON values")

    walk(value, 1)
    return value


FreeMap = Annotated[
    dict[str, Any],
    AfterValidator(_check_free_map),
    Field(description="Any JSON object; string values may hold {{ dotted.path }} placeholders"),
]


def minutes_of(duration: str) -> int:
    match = _DURATION.match(duration)
    if match is None:
        raise ValueError(duration)
    return int(match.group(1)) * _DURATION_MINUTES[match.group(2)]


def _check_duration(value: str) -> str:
    match = _DURATION.match(value)
    if match is None or not 1 <= minutes_of(value) <= 30 * 1440:
        raise PydanticCustomError(
            "invalid_value", "a wait duration is like 30m, 2h or 1d, from 1m to 30d"
        )
    return value


class Model(BaseModel):
    """Strict, frozen, camelCase on the wire; unknown keys are errors."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
    )


# --- predicates (§3.4) -------------------------------------------------------------------------

Op = Literal[
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists", "not_exists", "contains"
]
_NO_VALUE = {"exists", "not_exists"}
_LIST_VALUE = {"in", "not_in"}
_ORDERED = {"gt", "gte", "lt", "lte"}


class Predicate(Model):
    path: Annotated[Trimmed, Field(min_length=1, max_length=200)]
    op: Annotated[Op, BeforeValidator(_trim)]
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Predicate:
        has_value = "value" in self.model_fields_set
        if self.op in _NO_VALUE and has_value:
            raise PydanticCustomError("invalid_value", "'{op}' takes no value", {"op": self.op})
        if self.op not in _NO_VALUE and not has_value:
            raise PydanticCustomError("missing_field", "'{op}' needs a value", {"op": self.op})
        if self.op in _LIST_VALUE:
            if not isinstance(self.value, list) or len(self.value) > 50:
                raise PydanticCustomError("invalid_value", "'in' takes a list of up to 50 scalars")
            if any(isinstance(item, (dict, list)) for item in self.value):
                raise PydanticCustomError("invalid_value", "'in' takes a list of scalars")
        elif self.op in _ORDERED:
            if isinstance(self.value, bool) or not isinstance(self.value, (int, float, str)):
                raise PydanticCustomError("invalid_value", "comparisons take a number or a date")
        elif self.op not in _NO_VALUE and isinstance(self.value, (dict, list)):
            raise PydanticCustomError("invalid_value", "'{op}' takes a scalar", {"op": self.op})
        return self


Condition = Predicate | Annotated[list[Predicate], Field(min_length=1, max_length=10)]


# --- triggers (§3.2) ---------------------------------------------------------------------------


class ManualTrigger(Model):
    id: ElementId | None = None
    type: Literal["manual"]


class ScheduleTrigger(Model):
    id: ElementId | None = None
    type: Literal["schedule"]
    cron: Annotated[Trimmed, Field(min_length=1, max_length=100)] | None = None
    frequency: Annotated[Frequency, BeforeValidator(_trim)] | None = None
    timezone: Annotated[Trimmed, Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _cron_xor_frequency(self) -> ScheduleTrigger:
        if (self.cron is None) == (self.frequency is None):
            raise PydanticCustomError(
                "invalid_value", "a schedule trigger needs exactly one of cron or frequency"
            )
        return self


def _canonical_event(value: object) -> object:
    value = _trim(value)
    return ALIASES.get(value, value) if isinstance(value, str) else value


class EventTrigger(Model):
    id: ElementId | None = None
    type: Literal["event"]
    event_name: Annotated[
        str, BeforeValidator(_canonical_event), Field(min_length=1, max_length=100)
    ]
    filters: Annotated[list[Predicate], Field(max_length=10)] = []


class CalendarTrigger(Model):
    id: ElementId | None = None
    type: Literal["calendar"]
    date_field: Annotated[
        Literal["customer.birthday", "customer.signupDate"], BeforeValidator(_trim)
    ]
    offset_days: Annotated[int, Field(ge=-30, le=30)] = 0
    at: Annotated[Trimmed, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "09:00"
    timezone: Annotated[Trimmed, Field(min_length=1, max_length=64)] | None = None


Trigger = Annotated[
    ManualTrigger | ScheduleTrigger | EventTrigger | CalendarTrigger, Field(discriminator="type")
]


# --- steps (§3.3) ------------------------------------------------------------------------------


class DelegateParams(Model):
    agent: Annotated[DelegateAgent, BeforeValidator(_trim)]
    task: Annotated[str, Field(min_length=1, max_length=2000)]
    input: FreeMap = {}


class EmailTemplate(Model):
    id: Annotated[int, Field(gt=0)]
    variables: FreeMap = {}


class SendEmailParams(Model):
    to: Annotated[Trimmed, Field(min_length=1, max_length=320)]
    subject: Annotated[str, Field(min_length=1, max_length=255)]
    body: Annotated[str, Field(min_length=1, max_length=20000)] | None = None
    template: EmailTemplate | None = None
    transactional: bool = False
    reply_to: Annotated[Trimmed, Field(min_length=1, max_length=320)] | None = None

    @model_validator(mode="after")
    def _body_xor_template(self) -> SendEmailParams:
        if (self.body is None) == (self.template is None):
            raise PydanticCustomError("invalid_value", "give exactly one of body or template")
        return self


def _product_text(value: object) -> object:
    """A literal product id may be written as a number (store ids are); it is kept as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and not value.strip():
        raise PydanticCustomError(
            "invalid_value", "inStock names the product the send promotes: an id or a placeholder"
        )
    return _trim(value)


class SendGuard(Model):
    """What must still hold when the send goes out (domain.md §7.4), re-checked at send time."""

    in_stock: Annotated[
        str,
        BeforeValidator(_product_text),
        Field(
            min_length=1,
            max_length=200,
            description="The product the send promotes: its id, or a placeholder such as "
            "{{ event.data.productId }}; out of stock at send time skips the send",
        ),
    ]


class SendSmsParams(Model):
    to: Annotated[Trimmed, Field(min_length=1, max_length=320)]
    body: Annotated[str, Field(min_length=1, max_length=480)]
    transactional: bool = False


class NotifyParams(Model):
    channel: Annotated[Literal["dashboard", "slack", "email_internal"], BeforeValidator(_trim)]
    to: Annotated[Trimmed, Field(min_length=1, max_length=320)] | None = None
    message: Annotated[str, Field(min_length=1, max_length=4000)]
    title: Annotated[str, Field(max_length=200)] | None = None

    @model_validator(mode="after")
    def _recipient_fits_channel(self) -> NotifyParams:
        if self.channel == "slack" and self.to not in (None, "default"):
            raise PydanticCustomError(
                "invalid_recipient", "slack notices take no 'to' (or 'default')"
            )
        if self.channel != "slack" and self.to is None:
            raise PydanticCustomError(
                "missing_field", "{channel} notices need 'to'", {"channel": self.channel}
            )
        return self


class WaitParams(Model):
    duration: Annotated[Trimmed, AfterValidator(_check_duration)]


def _check_emit_size(value: dict[str, Any]) -> dict[str, Any]:
    from playbook_core.domain.ids import canonical_json  # noqa: PLC0415 - avoid a cycle at import

    if len(canonical_json(value).encode("utf-8")) > MAX_EMIT_DATA_BYTES:
        raise PydanticCustomError("too_long", "emit data may be at most 16 KiB")
    return value


class EmitParams(Model):
    event_name: Annotated[Trimmed, Field(min_length=1, max_length=100)]
    data: Annotated[FreeMap, AfterValidator(_check_emit_size)] = {}


_DELEGATE_ONLY = ("validationThreshold", "timeoutSeconds")
_SEND_ONLY = ("guard",)  # a notify step promotes nothing, so it has no product to guard


class _StepBase(Model):
    id: ElementId | None = None
    label: Annotated[str, Field(max_length=120)] | None = None
    condition: Condition | None = None
    retry_on_failure: bool | None = None
    max_retries: Annotated[int, Field(ge=0, le=10)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _keys_of_other_actions(cls, data: Any) -> Any:
        if cls is not DelegateStep and isinstance(data, dict):
            for key in _DELEGATE_ONLY:
                if key in data:
                    raise PydanticCustomError(
                        "invalid_field_for_action",
                        "'{field}' is only allowed on delegate steps",
                        {"field": key},
                    )
        if cls not in (SendEmailStep, SendSmsStep) and isinstance(data, dict):
            for key in _SEND_ONLY:
                if key in data:
                    raise PydanticCustomError(
                        "invalid_field_for_action",
                        "'{field}' is only allowed on send_email and send_sms steps",
                        {"field": key},
                    )
        return data


class DelegateStep(_StepBase):
    action: Literal["delegate"]
    params: DelegateParams
    validation_threshold: Annotated[int, Field(ge=0, le=100)] | None = None
    timeout_seconds: Annotated[int, Field(ge=5, le=300)] | None = None


class SendEmailStep(_StepBase):
    action: Literal["send_email"]
    params: SendEmailParams
    guard: SendGuard | None = None


class SendSmsStep(_StepBase):
    action: Literal["send_sms"]
    params: SendSmsParams
    guard: SendGuard | None = None


class NotifyStep(_StepBase):
    action: Literal["notify"]
    params: NotifyParams


class WaitStep(_StepBase):
    action: Literal["wait"]
    params: WaitParams


class EmitStep(_StepBase):
    action: Literal["emit"]
    params: EmitParams


Step = Annotated[
    DelegateStep | SendEmailStep | SendSmsStep | NotifyStep | WaitStep | EmitStep,
    Field(discriminator="action"),
]
SendStep = SendEmailStep | SendSmsStep


# --- the document (§3.1) -----------------------------------------------------------------------


def _default_ids(items: object, prefix: str) -> object:
    if not isinstance(items, list):
        return items
    return [
        {"id": f"{prefix}_{n}", **item} if isinstance(item, dict) and "id" not in item else item
        for n, item in enumerate(items, start=1)
    ]


class PlaybookDefinition(Model):
    name: Annotated[Trimmed, Field(min_length=1, max_length=120)]
    description: Annotated[str, Field(max_length=2000)] = ""
    agent: Annotated[Agent, BeforeValidator(_trim)]
    category: Annotated[Category, BeforeValidator(_trim)] = "custom"
    tags: Annotated[
        list[Annotated[Trimmed, Field(min_length=1, max_length=40)]], Field(max_length=20)
    ] = []
    triggers: Annotated[list[Trigger], Field(max_length=10)] = []
    steps: Annotated[list[Step], Field(max_length=50)] = []
    retry_on_failure: bool = True
    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    validation_threshold: Annotated[int, Field(ge=0, le=100)] = 60

    @model_validator(mode="before")
    @classmethod
    def _fill_default_ids(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if "triggers" in data:
                data["triggers"] = _default_ids(data["triggers"], "trigger")
            if "steps" in data:
                data["steps"] = _default_ids(data["steps"], "step")
        return data

    def to_document(self) -> dict[str, Any]:
        """The normalised definition as plain data, keys in §3.1 order, camelCase."""
        return self.model_dump(mode="json", exclude_none=True)

    def step_index(self, step_id: str) -> int:
        return next(i for i, step in enumerate(self.steps) if step.id == step_id)
