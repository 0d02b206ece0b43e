"""Rule pack YAML in, a validated RulePack out; every problem an Issue with path, line and column.

The same strict reader and error shapes as playbook definitions (loading.py), so a compliance
owner's mistake in a pack reads like an author's mistake in a playbook.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from playbook_core.domain.compliance.rules import KINDS, RulePack
from playbook_core.domain.errors import BadRequest, Issue
from playbook_core.domain.loading import _at, _finish, _schema_issues
from playbook_core.domain.yaml_source import YamlRejected, read

_CORE_ERRORS = frozenset(get_args(ErrorType))


class RulePackInvalid(BadRequest):
    status = 422
    code = "rule-pack-invalid"

    def __init__(self, errors: list[Issue], *, source: str | None = None) -> None:
        where = f"rule pack {source}" if source else "rule pack"
        first = f": {errors[0].path or '(document)'}: {errors[0].message}" if errors else ""
        super().__init__(f"{where} is invalid{first}")
        self.errors = errors
        self.source = source


def parse_pack(raw: bytes | str, *, source: str | None = None) -> RulePack:
    """Validate pack YAML. Raises RulePackInvalid; `source` names the file in the message."""
    try:
        data, positions, key_issues = read(raw)
    except YamlRejected as rejected:
        raise RulePackInvalid(rejected.issues, source=source) from None
    if key_issues:
        raise RulePackInvalid(_finish(key_issues), source=source)
    if not isinstance(data, dict):
        message = "a rule pack is a mapping of jurisdiction, name, version and rules"
        raise RulePackInvalid([_at(positions, "", "invalid_type", message)], source=source)
    try:
        pack = RulePack.model_validate(data)
    except ValidationError as exc:
        issues = _schema_issues(_without_kind_tags(exc), data, positions)
        raise RulePackInvalid(_finish(issues), source=source) from None
    issues = [_at(positions, path, code, message) for path, code, message in pack_issues(pack)]
    if issues:
        raise RulePackInvalid(_finish(issues), source=source)
    return pack


def pack_issues(pack: RulePack) -> list[tuple[str, str, str]]:
    """Rule jurisdictions and duplicate ids, which no single model sees: (path, code, message)."""
    found: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for index, rule in enumerate(pack.rules):
        if rule.jurisdiction != pack.jurisdiction:
            message = f"the rule's jurisdiction must be the pack's ({pack.jurisdiction})"
            found.append((f"rules[{index}].jurisdiction", "invalid_value", message))
        if rule.id in seen:
            found.append((f"rules[{index}].id", "duplicate_id", f"'{rule.id}' is used twice"))
        seen.add(rule.id)
    return found


def check_unique_ids(packs: Sequence[RulePack]) -> None:
    """Rule ids are unique across all packs (findings and audits name rules by id alone)."""
    owner: dict[str, str] = {}
    issues = []
    for pack in packs:
        for index, rule in enumerate(pack.rules):
            if rule.id in owner:
                message = f"'{rule.id}' is also defined in the {owner[rule.id]} pack"
                path = f"{pack.jurisdiction}.rules[{index}].id"
                issues.append(
                    Issue(code="duplicate_id", path=path, line=None, column=None, message=message)
                )
            owner.setdefault(rule.id, pack.jurisdiction)
    if issues:
        raise RulePackInvalid(issues)


def _without_kind_tags(exc: ValidationError) -> ValidationError:
    """The same errors without the union's `kind` tag in their location.

    Pydantic locates `rules[0].terms` as ('rules', 0, 'forbidden_terms', 'terms'); loading.py's
    path and position lookup expects the document's own keys.
    """
    details: list[InitErrorDetails] = []
    for error in exc.errors():
        loc = error["loc"]
        kept = tuple(
            part
            for index, part in enumerate(loc)
            if not (part in KINDS and index > 0 and isinstance(loc[index - 1], int))
        )
        kind = error["type"]
        detail: InitErrorDetails = {"type": kind, "loc": kept, "input": error["input"]}
        if kind in _CORE_ERRORS:
            if "ctx" in error:
                detail["ctx"] = error["ctx"]
        else:  # our own PydanticCustomError: its message is already rendered
            detail["type"] = PydanticCustomError(kind, error["msg"])
        details.append(detail)
    return ValidationError.from_exception_data(exc.title, details)
