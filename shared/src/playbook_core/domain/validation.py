"""Semantic and defence-in-depth checks on a structurally valid definition (domain.md §3.6, 6–7).

Each check yields (path, code, message); the loader adds line and column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from playbook_core.domain import templating
from playbook_core.domain.approval import provably_internal
from playbook_core.domain.events import is_canonical, listener_names
from playbook_core.domain.playbook import (
    CalendarTrigger,
    EmitStep,
    EventTrigger,
    ManualTrigger,
    NotifyStep,
    PlaybookDefinition,
    Predicate,
    ScheduleTrigger,
    SendEmailStep,
    SendSmsStep,
)
from playbook_core.domain.schedules import CronError, TimezoneError, resolve_timezone, validate_cron
from playbook_core.domain.text import CONTROL, LINE_BREAK, code_point

Found = tuple[str, str, str]

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
_ROLE = re.compile(r"^role:(owner|admin|all)$")
_NOTIFY_TO = "notify 'to' is role:owner, role:admin, role:all or one org/user placeholder"
_NOTIFY_TO = "notify 'to' is role:owner, role:admin, role:all or one org/user placeholder"
_FILTER_ROOTS = frozenset({"data", "customer", "source"})
_FILTER_OPS = frozenset({"eq", "in", "gt", "gte", "lt", "lte"})
# Text that may span lines (tab, CR and LF allowed); every other string is one line.
_MULTILINE = frozenset({"description", "task", "body", "message"})
_FREE_MAPS = frozenset({"input", "variables", "data"})
_FORBIDDEN = re.compile(
    r"\b(eval|exec|execfile)\s*\(|__(import|class|globals|builtins|subclasses|proto|mro|bases?|dict"
    r"|code|getattribute|reduce)__|\bsubprocess\b|\bos\.(system|popen)\b|<script\b|javascript:",
    re.IGNORECASE,
)


def character_issues(data: Any) -> list[tuple[str, str, str, bool]]:
    r"""Control characters in every parsed string and key, however they were written.

    YAML escapes ("\0", "\a", "\N", "\L") and JSON ones ("\u0000") only become characters
    when parsed, so the raw-text check cannot see them. Runs on the authored data, before the
    models trim some of them away. Iterative: the data may nest deeply before validation.
    Each issue is (path, code, message, whether it is the key rather than the value).
    """
    found: list[tuple[str, str, str, bool]] = []
    stack: list[tuple[str, Any, bool]] = [("", data, False)]
    while stack:
        path, value, multiline = stack.pop()
        if isinstance(value, str):
            found.extend((*f, False) for f in _character_issue(path, value, multiline=multiline))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item, multiline) for i, item in enumerate(value))
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                if isinstance(key, str):
                    found.extend((*f, True) for f in _character_issue(child, key, multiline=False))
                spans = multiline or key in _MULTILINE or key in _FREE_MAPS
                stack.append((child, item, spans))
    return found


def _character_issue(path: str, text: str, *, multiline: bool) -> Iterator[Found]:
    if (bad := CONTROL.search(text)) is not None:
        message = f"the text holds a control or line-separator character ({code_point(bad[0])})"
        yield path, "invalid_encoding", message
    elif not multiline and LINE_BREAK.search(text.strip()):  # YAML's `>` adds a final newline
        yield path, "invalid_value", "this value is a single line: no line breaks or tabs"


def semantic_issues(definition: PlaybookDefinition) -> list[Found]:
    return [*_trigger_issues(definition), *_step_issues(definition), *_marker_issues(definition)]


def _duplicates(ids: list[str | None], prefix: str) -> Iterator[Found]:
    seen: set[str] = set()
    for index, element_id in enumerate(ids):
        if element_id in seen:
            yield f"{prefix}[{index}].id", "duplicate_id", f"the id '{element_id}' is used twice"
        if element_id is not None:
            seen.add(element_id)


def _trigger_issues(definition: PlaybookDefinition) -> Iterator[Found]:
    yield from _duplicates([t.id for t in definition.triggers], "triggers")
    manual_seen = False
    for index, trigger in enumerate(definition.triggers):
        here = f"triggers[{index}]"
        if isinstance(trigger, ManualTrigger):
            if manual_seen:
                yield here, "too_many", "a playbook may have at most one manual trigger"
            manual_seen = True
        elif isinstance(trigger, ScheduleTrigger):
            yield from _cron_issue(trigger.cron, here)
            yield from _timezone_issue(trigger.timezone, here)
        elif isinstance(trigger, CalendarTrigger):
            yield from _timezone_issue(trigger.timezone, here)
        elif isinstance(trigger, EventTrigger):
            if not is_canonical(trigger.event_name):
                yield (
                    f"{here}.eventName",
                    "unknown_event",
                    f"'{trigger.event_name}' is not a known event",
                )
            for n, predicate in enumerate(trigger.filters):
                yield from _filter_issues(predicate, f"{here}.filters[{n}]")


def _cron_issue(cron: str | None, here: str) -> Iterator[Found]:
    if cron is not None:
        try:
            validate_cron(cron)
        except CronError as exc:
            yield f"{here}.cron", "invalid_cron", str(exc)


def _timezone_issue(timezone: str | None, here: str) -> Iterator[Found]:
    if timezone is not None:
        try:
            resolve_timezone(timezone)
        except TimezoneError as exc:
            yield f"{here}.timezone", "invalid_timezone", str(exc)


def _filter_issues(predicate: Predicate, here: str) -> Iterator[Found]:
    if predicate.path.split(".")[0] not in _FILTER_ROOTS:
        yield f"{here}.path", "invalid_value", "filter paths start with data, customer or source"
    if predicate.op not in _FILTER_OPS:
        yield f"{here}.op", "invalid_enum", "filters use eq, in, gt, gte, lt or lte"


def _condition_issues(condition: Predicate | list[Predicate] | None, here: str) -> Iterator[Found]:
    predicates = condition if isinstance(condition, list) else [condition] if condition else []
    for n, predicate in enumerate(predicates):
        where = f"{here}[{n}]" if isinstance(condition, list) else here
        if predicate.path.split(".")[0] not in templating.ROOTS:
            yield (
                f"{where}.path",
                "invalid_value",
                f"'{predicate.path}' does not start with a known root",
            )


def _step_issues(definition: PlaybookDefinition) -> Iterator[Found]:
    yield from _duplicates([s.id for s in definition.steps], "steps")
    listened = {
        name for t in definition.triggers if isinstance(t, EventTrigger)
        for name in (t.event_name, *listener_names(t.event_name))
    }  # fmt: skip
    earlier: set[str] = set()
    for index, step in enumerate(definition.steps):
        here = f"steps[{index}]"
        yield from _condition_issues(step.condition, f"{here}.condition")
        params = step.params.model_dump(mode="json", exclude_none=True)
        yield from _template_issues(params, f"{here}.params", earlier)
        if isinstance(step, (SendEmailStep, SendSmsStep)):
            yield from _recipient_issues(step, f"{here}.params")
            if step.guard is not None:  # rendered at send time like the params, so checked alike
                guard = step.guard.model_dump(mode="json")
                yield from _template_issues(guard, f"{here}.guard", earlier)
        elif isinstance(step, NotifyStep) and step.params.to is not None:
            to = step.params.to
            if step.params.channel != "slack" and not (_ROLE.match(to) or provably_internal(to)):
                yield f"{here}.params.to", "invalid_recipient", _NOTIFY_TO
        elif isinstance(step, EmitStep):
            name = step.params.event_name
            if not is_canonical(name):
                yield (
                    f"{here}.params.eventName",
                    "unknown_event",
                    f"'{name}' is not a canonical event name",
                )
            elif name in listened:
                yield (
                    f"{here}.params.eventName",
                    "emit_cycle",
                    f"the playbook emits '{name}', which it listens to",
                )
        if step.id is not None:
            earlier.add(step.id)


def _recipient_issues(step: SendEmailStep | SendSmsStep, here: str) -> Iterator[Found]:
    to = step.params.to
    if to.startswith("role:"):
        yield (
            f"{here}.to",
            "invalid_recipient",
            "role groups are not recipients here; use notify email_internal",
        )
        return
    literal = "{{" not in to
    if isinstance(step, SendEmailStep):
        if literal and not EMAIL.match(to):
            yield f"{here}.to", "invalid_recipient", f"'{to}' is not a valid email address"
        reply_to = step.params.reply_to
        if reply_to is not None and "{{" not in reply_to and not EMAIL.match(reply_to):
            yield (
                f"{here}.replyTo",
                "invalid_recipient",
                f"'{reply_to}' is not a valid email address",
            )
    elif literal and not E164.match(to):
        yield f"{here}.to", "invalid_recipient", f"'{to}' is not an E.164 phone number"


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string value, and every map key, with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            yield child, key
            yield from _strings(item, child)


def _template_issues(params: dict[str, Any], here: str, earlier: set[str]) -> Iterator[Found]:
    for path, text in _strings(params, here):
        try:
            placeholders = templating.parse(text)
        except templating.TemplateError as exc:
            yield path, "invalid_template", str(exc)
            continue
        for placeholder in placeholders:
            if placeholder.root == "steps" and (
                len(placeholder.segments) < 2 or placeholder.segments[1] not in earlier
            ):
                yield (
                    path,
                    "invalid_reference",
                    f"'{placeholder.dotted}' does not refer to an earlier step",
                )


def _marker_issues(definition: PlaybookDefinition) -> Iterator[Found]:
    document = definition.to_document()
    document.pop("steps", None)
    for path, text in _strings(document, ""):
        try:
            templating.check_jinja_markers(text)
        except templating.TemplateError as exc:
            yield path, "invalid_template", str(exc)
    for index, step in enumerate(definition.steps):
        if step.label is not None and any(m in step.label for m in ("{%", "%}", "{#", "#}")):
            yield f"steps[{index}].label", "invalid_template", "template markers are not allowed"


def forbidden_constructs(definition: PlaybookDefinition) -> list[Found]:
    return [
        (path, "forbidden_construct", "this text looks like code and is not allowed in a playbook")
        for path, text in _strings(definition.to_document(), "")
        if _FORBIDDEN.search(text)
    ]
