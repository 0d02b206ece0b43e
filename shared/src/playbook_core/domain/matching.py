"""Predicates (domain.md §3.4), event-trigger filters, identity keys and the loop guard, as data.

Step conditions and event filters share one evaluator, so "20 == '20.00'" means the same
everywhere; nothing here ever evaluates an expression string.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from playbook_core.domain.envelope import EventEnvelope
from playbook_core.domain.playbook import EventTrigger, PlaybookDefinition, Predicate

MAX_CAUSATION_DEPTH = 3
FILTER_ROOTS = ("data", "customer", "source")
_NUMERIC = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class _Missing:
    """A path that does not resolve; distinct from a stored null."""


MISSING = _Missing()


def resolve(context: Any, path: str) -> Any:
    """The value at a dotted path (`data.lineItems.0.sku`) in plain data, or MISSING."""
    current = context
    for segment in path.split("."):
        if isinstance(current, Mapping) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return MISSING
    return current


def _number(value: Any) -> Decimal | None:
    """Numbers and numeric strings as exact decimals (floats through repr, so 0.1 == "0.1")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMERIC.match(value):
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern admits only parseable text
            return None
    return None


def _instant(value: Any) -> datetime | None:
    """Aware datetimes and RFC 3339 date-times with an offset; anything else is no instant."""
    if isinstance(value, datetime):
        return value if value.utcoffset() is not None else None
    if isinstance(value, str) and _INSTANT.match(value):
        try:
            return datetime.fromisoformat(value.upper())
        except ValueError:
            return None
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def equals(actual: Any, expected: Any) -> bool:
    """§3.4 `eq`: a number meets a numeric string numerically; otherwise type-strict."""
    if _is_number(actual) or _is_number(expected):
        a, b = _number(actual), _number(expected)
        return a is not None and b is not None and a == b
    return type(actual) is type(expected) and actual == expected


def _ordered(actual: Any, expected: Any) -> int | None:
    """-1/0/1 when both are numbers (numeric strings parsed) or both instants; else None."""
    a_num, b_num = _number(actual), _number(expected)
    if a_num is not None and b_num is not None:
        return (a_num > b_num) - (a_num < b_num)
    a_at, b_at = _instant(actual), _instant(expected)
    if a_at is not None and b_at is not None:
        return (a_at > b_at) - (a_at < b_at)
    return None


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(expected, str) and expected in actual
    if isinstance(actual, list):
        return any(equals(item, expected) for item in actual)
    return False


_ORDER_TESTS = {
    "gt": lambda c: c > 0,
    "gte": lambda c: c >= 0,
    "lt": lambda c: c < 0,
    "lte": lambda c: c <= 0,
}


def _holds(op: str, actual: Any, expected: Any) -> bool:  # noqa: PLR0911 - one rule per op
    if op == "not_exists":
        return actual is MISSING or actual is None
    if actual is MISSING:
        return False
    if op == "exists":
        return actual is not None
    if op == "eq":
        return equals(actual, expected)
    if op == "ne":
        return not equals(actual, expected)
    if op in _ORDER_TESTS:
        order = _ordered(actual, expected)
        return order is not None and bool(_ORDER_TESTS[op](order))
    if op in ("in", "not_in"):
        found = any(equals(actual, item) for item in expected or [])
        return found if op == "in" else not found
    if op == "contains":
        return _contains(actual, expected)
    raise ValueError(f"unknown predicate op {op!r}")


def _parts(predicate: Predicate | Mapping[str, Any]) -> tuple[str, str, Any]:
    if isinstance(predicate, Predicate):
        return predicate.path, predicate.op, predicate.value
    return str(predicate["path"]), str(predicate["op"]), predicate.get("value")


def evaluate(
    predicate: Predicate | Mapping[str, Any] | Sequence[Predicate | Mapping[str, Any]],
    context: Mapping[str, Any],
) -> bool:
    """True when the predicate (or every predicate of a list) holds over the plain-data context."""
    if isinstance(predicate, Predicate | Mapping):
        path, op, value = _parts(predicate)
        return _holds(op, resolve(context, path), value)
    return all(evaluate(item, context) for item in predicate)


def filter_context(envelope: EventEnvelope, customer: Mapping[str, Any] | None) -> dict[str, Any]:
    """The roots event-trigger filter paths start from: data, customer and source."""
    return {
        "data": envelope.data,
        "customer": dict(customer) if customer is not None else None,
        "source": envelope.source.model_dump(mode="json", exclude_none=True),
    }


def matching_trigger(
    definition: PlaybookDefinition, event_names: Iterable[str], context: Mapping[str, Any]
) -> str | None:
    """Id of the first event trigger on one of these names whose filters all pass, or None."""
    names = set(event_names)
    for trigger in definition.triggers:
        if (
            isinstance(trigger, EventTrigger)
            and trigger.event_name in names
            and evaluate(trigger.filters, context)
        ):
            return trigger.id or ""
    return None


def identity_key(
    *,
    dedupe_key: str | None = None,
    customer_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> str | None:
    """Who an event is about, for dedup: `dk:` > `cid:` > `em:` > `ph:` (domain.md §5.5 step 3)."""
    for prefix, value in (("dk", dedupe_key), ("cid", customer_id), ("em", email), ("ph", phone)):
        if value:
            return f"{prefix}:{value}"
    return None


def loop_blocked(playbook_id: str, chain: Sequence[str], depth: int) -> bool:
    """An emitted event never re-enters a playbook of its own chain, nor goes 3 levels deep."""
    return playbook_id in chain or depth >= MAX_CAUSATION_DEPTH
