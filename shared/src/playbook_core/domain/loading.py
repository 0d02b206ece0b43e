"""YAML or JSON in, a validated PlaybookDefinition out; every problem an Issue with a position.

Order of checks is domain.md §3.6: the first failing class stops processing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from playbook_core.domain.approval import requires_approval
from playbook_core.domain.errors import Issue, PlaybookInvalid
from playbook_core.domain.playbook import PlaybookDefinition
from playbook_core.domain.validation import (
    character_issues,
    forbidden_constructs,
    semantic_issues,
)
from playbook_core.domain.yaml_source import Position, SourceMap, YamlRejected, read

MAX_ISSUES = 100
SERVER_MANAGED = frozenset(
    {
        "id", "orgId", "status", "version", "revision", "requiresApproval", "source", "templateId",
        "isCustom", "createdBy", "updatedBy", "createdAt", "updatedAt", "definitionHash", "active",
    }
)  # fmt: skip

_CODES = {
    "extra_forbidden": "unknown_field",
    "missing": "missing_field",
    "union_tag_not_found": "missing_field",
    "union_tag_invalid": "invalid_enum",
    "literal_error": "invalid_enum",
    "enum": "invalid_enum",
    "string_too_long": "too_long",
    "too_long": "too_many",
    "too_short": "invalid_value",
    "string_too_short": "invalid_value",
    "string_pattern_mismatch": "invalid_value",
    "greater_than": "invalid_value",
    "greater_than_equal": "invalid_value",
    "less_than": "invalid_value",
    "less_than_equal": "invalid_value",
}
_OUR_CODES = frozenset(
    {"invalid_value", "invalid_type", "invalid_key", "invalid_recipient", "missing_field",
     "invalid_field_for_action", "too_long", "too_deep"}
)  # fmt: skip


@dataclass(frozen=True)
class Validated:
    definition: PlaybookDefinition
    warnings: list[Issue]
    requires_approval: bool
    source: SourceMap | None = None  # YAML input: where each value stands, for later findings

    def issue_at(self, path: str, code: str, message: str) -> Issue:
        """An issue about `path` with the line and column it had in the YAML, when there was one."""
        return _at(self.source, path, code, message)


def load_text(raw: bytes | str) -> Validated:
    """Validate YAML text (JSON is YAML too). Raises PlaybookInvalid."""
    try:
        data, source, key_issues = read(raw)
    except YamlRejected as rejected:
        raise PlaybookInvalid(rejected.issues) from None
    if key_issues:
        raise PlaybookInvalid(_finish(key_issues))
    return _validate(data, source)


def load_data(data: Any) -> Validated:
    """Validate structured JSON input; issues carry no line or column."""
    return _validate(data, None)


def _validate(data: Any, source: SourceMap | None) -> Validated:
    if not isinstance(data, dict):
        issue = Issue(
            code="invalid_type", path="", line=_line(source, ""), column=_column(source, ""),
            message="a playbook is a mapping of keys such as name, agent, triggers and steps",
        )  # fmt: skip
        raise PlaybookInvalid([issue])
    warnings = [
        _at(
            source,
            key,
            "ignored_field",
            f"'{key}' is managed by the server and was ignored",
            key=True,
        )
        for key in data
        if key in SERVER_MANAGED
    ]
    authored = {key: value for key, value in data.items() if key not in SERVER_MANAGED}
    characters = [_at(source, p, c, m, key=k) for p, c, m, k in character_issues(authored)]
    if characters:  # the encoding class (§3.6 step 1), for escaped characters too
        raise PlaybookInvalid(_finish(characters), warnings)
    try:
        definition = PlaybookDefinition.model_validate(authored)
    except ValidationError as exc:
        raise PlaybookInvalid(_finish(_schema_issues(exc, authored, source)), warnings) from None
    for check in (semantic_issues, forbidden_constructs):
        issues = [_at(source, path, code, message) for path, code, message in check(definition)]
        if issues:
            raise PlaybookInvalid(_finish(issues), warnings)
    warnings += [_at(source, p, c, m) for p, c, m in _activation_warnings(definition)]
    return Validated(definition, _finish(warnings), requires_approval(definition), source)


def _activation_warnings(definition: PlaybookDefinition) -> list[tuple[str, str, str]]:
    found = []
    if not definition.triggers:
        found.append(
            ("", "missing_field", "no triggers: the playbook can be saved as a draft only")
        )
    if not definition.steps:
        found.append(("", "missing_field", "no steps: the playbook can be saved as a draft only"))
    return found


def _finish(issues: list[Issue]) -> list[Issue]:
    return sorted(issues, key=Issue.sort_key)[:MAX_ISSUES]


def _schema_issues(
    exc: ValidationError, data: dict[str, Any], source: SourceMap | None
) -> list[Issue]:
    issues: list[Issue] = []
    for error in exc.errors():
        kind = error["type"]
        code = kind if kind in _OUR_CODES else _CODES.get(kind, "invalid_type")
        ctx = error.get("ctx") or {}
        path, parent = _path_of(error["loc"], data)
        message = _message(error["msg"], kind, ctx)
        if kind in ("extra_forbidden", "invalid_field_for_action"):
            if kind == "invalid_field_for_action":
                path = _join(path, str(ctx["field"]))
            issues.append(_at(source, path, code, message, key=True))
        elif kind in ("missing", "union_tag_not_found"):
            if kind == "union_tag_not_found":
                parent, path = path, _join(path, str(ctx["discriminator"]).strip("'"))
                message = f"'{path.rsplit('.', 1)[-1]}' is required"
            issues.append(_at(source, path, code, message, anchor=parent))
        elif kind == "union_tag_invalid":
            field = str(ctx["discriminator"]).strip("'")
            expected = str(ctx["expected_tags"]).replace("'", "")
            message = f"unknown {field} '{ctx['tag']}'; expected one of {expected}"
            issues.append(_at(source, _join(path, field), code, message))
        else:
            issues.append(_at(source, path, code, message))
    return issues


def _path_of(loc: tuple[int | str, ...], data: Any) -> tuple[str, str]:
    """Path for a pydantic loc, skipping discriminator tags; also the parent path."""
    path, parent = "", ""
    current: Any = data
    for index, element in enumerate(loc):
        if isinstance(element, int):
            parent, path = path, f"{path}[{element}]"
            current = (
                current[element] if isinstance(current, list) and element < len(current) else None
            )
            continue
        if isinstance(current, dict) and element not in current:
            tags = (current.get("action"), current.get("type"))
            if element in tags or (element.startswith("function-") and index < len(loc) - 1):
                continue  # a discriminator tag or validator marker, not a key
        parent, path = path, _join(path, element)
        current = current.get(element) if isinstance(current, dict) else None
    return path, parent


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _message(msg: str, kind: str, ctx: dict[str, Any]) -> str:
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "this field is required"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}".replace("'", "")
    return msg.removeprefix("Value error, ")


def _at(
    source: SourceMap | None,
    path: str,
    code: str,
    message: str,
    *,
    key: bool = False,
    anchor: str | None = None,
) -> Issue:
    position: Position | None = None
    if source is not None:
        if anchor is not None:
            position = source.values.get(anchor)
        elif key:
            position = source.keys.get(path) or source.values.get(path)
        else:
            position = _nearest(source, path)
    return Issue(
        code=code, path=path, line=position.line if position else None,
        column=position.column if position else None, message=message,
    )  # fmt: skip


def _nearest(source: SourceMap, path: str) -> Position | None:
    """The value's own position, else the closest enclosing one that exists in the document."""
    while True:
        if path in source.values:
            return source.values[path]
        if not path:
            return None
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""


def _line(source: SourceMap | None, path: str) -> int | None:
    position = _nearest(source, path) if source else None
    return position.line if position else None


def _column(source: SourceMap | None, path: str) -> int | None:
    position = _nearest(source, path) if source else None
    return position.column if position else None


def dump_yaml(definition: PlaybookDefinition, header: list[str] | None = None) -> str:
    """Canonical YAML: §3.1 key order, block style, stable across export/import cycles."""
    body = yaml.safe_dump(
        definition.to_document(),
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    comments = "".join(f"# {line}\n" for line in header or [])
    return comments + body
