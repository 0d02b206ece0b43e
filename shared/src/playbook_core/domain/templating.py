"""`{{ dotted.path }}` placeholders: the only template language, checked on save, not evaluated."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

ROOTS = frozenset(
    {"event", "customer", "org", "user", "current_user", "steps", "execution", "playbook"}
)
INTERNAL_ROOTS = frozenset({"org", "user", "current_user"})
MAX_DEPTH = 10
MAX_PLACEHOLDERS = 50

_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]{1,4}")
_JINJA_MARKERS = ("{%", "%}", "{#", "#}")
_OPERATORS = re.compile(r"[+\-*/%<>=!&~^,:;\[\]'\"]")


class TemplateError(ValueError):
    """A placeholder that is not a plain dotted path; the message is one plain sentence."""


class UnresolvedVariable(LookupError):
    """A placeholder whose path has no value in the render context."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


@dataclass(frozen=True)
class Placeholder:
    segments: tuple[str, ...]
    start: int
    end: int

    @property
    def root(self) -> str:
        return self.segments[0]

    @property
    def dotted(self) -> str:
        return ".".join(self.segments)


def check_jinja_markers(text: str) -> None:
    for marker in _JINJA_MARKERS:
        if marker in text:
            raise TemplateError(f"template markers such as '{marker}' are not allowed")


def parse(text: str) -> list[Placeholder]:
    """Every placeholder in `text`, or TemplateError for anything that is not a dotted path."""
    check_jinja_markers(text)
    found: list[Placeholder] = []
    position = 0
    while (start := text.find("{{", position)) != -1:
        end = text.find("}}", start + 2)
        if end == -1:
            raise TemplateError("a '{{' placeholder is not closed with '}}'")
        inner = text[start + 2 : end].strip()
        found.append(Placeholder(_parse_path(inner), start, end + 2))
        if len(found) > MAX_PLACEHOLDERS:
            raise TemplateError(f"a string may hold at most {MAX_PLACEHOLDERS} placeholders")
        position = end + 2
    return found


def _parse_path(inner: str) -> tuple[str, ...]:
    if not inner:
        raise TemplateError("a placeholder must name a path, e.g. {{ customer.email }}")
    if "|" in inner:
        raise TemplateError("filters are not allowed in placeholders")
    if "(" in inner or ")" in inner:
        raise TemplateError("function calls are not allowed in placeholders")
    if "{" in inner or "}" in inner:
        raise TemplateError("placeholders cannot be nested")
    if _OPERATORS.search(inner) or any(ch.isspace() for ch in inner):
        raise TemplateError("expressions are not allowed in placeholders; use a dotted path")
    segments = tuple(inner.split("."))
    for segment in segments:
        if not _SEGMENT.fullmatch(segment):
            raise TemplateError(f"'{inner}' is not a dotted path")
    if segments[0] not in ROOTS:
        allowed = ", ".join(sorted(ROOTS))
        raise TemplateError(f"unknown placeholder root '{segments[0]}'; use one of {allowed}")
    if len(segments) > MAX_DEPTH:
        raise TemplateError(f"a placeholder path may be at most {MAX_DEPTH} segments deep")
    return segments


def whole_placeholder(text: str) -> Placeholder | None:
    """The placeholder when the whole string is exactly one placeholder, else None."""
    placeholders = parse(text)
    if len(placeholders) == 1 and text.strip() == text[placeholders[0].start : placeholders[0].end]:
        return placeholders[0]
    return None


_MISSING = object()


def lookup(context: dict[str, Any], segments: tuple[str, ...]) -> Any:
    """Walk a plain-data context by path segments; raise UnresolvedVariable when absent."""
    current: Any = context
    for segment in segments:
        if isinstance(current, dict):
            current = current.get(segment, _MISSING)
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            current = _MISSING
        if current is _MISSING or current is None:
            raise UnresolvedVariable(".".join(segments))
    return current


def stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return str(value)


def render(
    text: str, context: dict[str, Any], *, strict: bool = True, html_escape: bool = False
) -> Any:
    """Render placeholders. A whole-string placeholder yields the typed value.

    strict: an unresolved path raises UnresolvedVariable (send and notify params); otherwise a
    whole-value placeholder becomes None and an embedded one "" (delegate and emit params).
    """
    placeholders = parse(text)
    whole = whole_placeholder(text)
    if whole is not None:
        try:
            return lookup(context, whole.segments)
        except UnresolvedVariable:
            if strict:
                raise
            return None
    parts: list[str] = []
    cursor = 0
    for placeholder in placeholders:
        parts.append(text[cursor : placeholder.start])
        try:
            piece = stringify(lookup(context, placeholder.segments))
        except UnresolvedVariable:
            if strict:
                raise
            piece = ""
        parts.append(html.escape(piece, quote=True) if html_escape else piece)
        cursor = placeholder.end
    parts.append(text[cursor:])
    return "".join(parts)


def render_value(value: Any, context: dict[str, Any], *, strict: bool) -> Any:
    """Render every string inside a JSON-like value (free maps such as delegate `input`)."""
    if isinstance(value, str):
        return render(value, context, strict=strict)
    if isinstance(value, list):
        return [render_value(item, context, strict=strict) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, context, strict=strict) for key, item in value.items()}
    return value
