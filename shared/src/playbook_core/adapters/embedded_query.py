"""Firestore query semantics for the embedded store: filters, cross-type ordering, page tokens.

Evaluated in Python because Firestore's rules (1 == 1.0 but true != 1, null < bool < number <
timestamp < string < array < map, `!=` skipping nulls, implicit order on inequality fields) have
no faithful SQL form. SQL only pre-filters.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from playbook_core.adapters.embedded_fields import get_path, split_path
from playbook_core.domain import page_tokens
from playbook_core.domain.errors import BadRequest
from playbook_core.domain.tagged_values import encode
from playbook_core.ports import Direction, Doc, OrderBy, Page, Where

_INEQUALITY = frozenset({"<", "<=", ">", ">=", "!=", "not-in"})
_LIST_LIMITS = {"in": 30, "not-in": 10, "array-contains-any": 30}  # Firestore refuses more
_LISTS = frozenset(_LIST_LIMITS)
_RANGE = {
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}
_NUMBER, _ARRAY, _MAP = 2, 8, 9
_SQL_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _rank(value: Any) -> int:  # noqa: PLR0911 - one return per type reads as the table it is
    """Firestore's order of value types."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, int | float):
        return _NUMBER
    if isinstance(value, datetime):
        return 3
    if isinstance(value, str):
        return 4
    if isinstance(value, bytes):
        return 5
    return _ARRAY if isinstance(value, list) else _MAP


def _sign(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


def compare(a: Any, b: Any) -> int:  # noqa: PLR0911 - one rule per type
    """-1, 0 or 1 in Firestore's total order of values."""
    ra, rb = _rank(a), _rank(b)
    if ra != rb or ra == 0:
        return _sign(ra, rb)
    if ra == _NUMBER and (math.isnan(a) or math.isnan(b)):  # NaN sorts before every number
        return _sign(not math.isnan(a), not math.isnan(b))
    if ra == _ARRAY:
        for x, y in zip(a, b, strict=False):
            if found := compare(x, y):
                return found
        return _sign(len(a), len(b))
    if ra == _MAP:
        for ka, kb in zip(sorted(a), sorted(b), strict=False):
            if found := _sign(ka, kb) or compare(a[ka], b[kb]):
                return found
        return _sign(len(a), len(b))
    return _sign(a, b)


def _equal(a: Any, b: Any) -> bool:
    return compare(a, b) == 0


def validate(where: Sequence[Where], limit: int) -> None:
    if limit < 1:
        raise BadRequest("limit must be at least 1")
    for clause in where:
        split_path(clause.field)
        values = clause.value if clause.op in _LISTS else [clause.value]
        if clause.op in _LISTS and not isinstance(clause.value, list | tuple):
            raise TypeError(f"{clause.op} takes a list of values")
        if clause.op in _LISTS and len(values) > _LIST_LIMITS[clause.op]:
            raise ValueError(f"{clause.op} takes at most {_LIST_LIMITS[clause.op]} values")
        for value in values:
            encode(value)  # the same values a document may hold, e.g. no naive datetimes


def matches(data: dict[str, Any], clause: Where) -> bool:  # noqa: PLR0911 - one rule per op
    found, value = get_path(data, split_path(clause.field))
    if not found:
        return False  # every Firestore filter skips documents that lack the field
    op, target = clause.op, clause.value
    if op == "==":
        return _equal(value, target)
    if op == "!=":
        return value is not None and not _equal(value, target)
    if op in _RANGE:
        return _rank(value) == _rank(target) and bool(_RANGE[op](compare(value, target)))
    if op == "in":
        return any(_equal(value, item) for item in target)
    if op == "not-in":
        return value is not None and not any(_equal(value, item) for item in target)
    if op == "array-contains":
        return isinstance(value, list) and any(_equal(item, target) for item in value)
    if op == "array-contains-any":
        return isinstance(value, list) and any(_equal(i, t) for i in value for t in target)
    raise ValueError(f"unknown filter operator {op!r}")


def effective_order(where: Sequence[Where], order_by: Sequence[OrderBy]) -> list[OrderBy]:
    """Explicit orders, then inequality fields Firestore orders by implicitly (path order).

    `__name__` is dropped: the document id always comes last, as the tie-break.
    """
    order_by = [order for order in order_by if order.field != "__name__"]
    named = {order.field for order in order_by}
    direction: Direction = order_by[-1].direction if order_by else "asc"
    implicit = sorted({c.field for c in where if c.op in _INEQUALITY} - named)
    return [*order_by, *(OrderBy(name, direction) for name in implicit)]


_Key = tuple[list[Any], str]


def _compare_keys(a: _Key, b: _Key, directions: Sequence[Direction]) -> int:
    for x, y, direction in zip(a[0], b[0], directions, strict=True):
        if found := compare(x, y):
            return -found if direction == "desc" else found
    # Ties: document id ascending, always. (Bare Firestore breaks ties in the last order's
    # direction; our Firestore adapter orders by __name__ explicitly so both backends agree.)
    return _sign(a[1], b[1])


def encode_cursor(key: _Key) -> str:
    return page_tokens.encode(key[0], key[1])


def decode_cursor(cursor: str, orders: int) -> _Key:
    # Any id this store holds must page, including ids Firestore would refuse.
    return page_tokens.decode(cursor, orders, any_id=True)


def run(
    docs: Sequence[Doc],
    where: Sequence[Where],
    order_by: Sequence[OrderBy],
    limit: int,
    start_after: str | None,
) -> Page:
    orders = effective_order(where, order_by)
    directions = [order.direction for order in orders]
    keyed: list[tuple[_Key, Doc]] = []
    for doc in docs:
        if not all(matches(doc.data, clause) for clause in where):
            continue
        values = [get_path(doc.data, split_path(order.field)) for order in orders]
        if all(found for found, _ in values):  # ordering by a field skips docs without it
            keyed.append((([value for _, value in values], doc.id), doc))
    if start_after is not None:
        cursor = decode_cursor(start_after, len(orders))
        keyed = [item for item in keyed if _compare_keys(item[0], cursor, directions) > 0]

    def by_key(a: tuple[_Key, Doc], b: tuple[_Key, Doc]) -> int:
        return _compare_keys(a[0], b[0], directions)

    keyed.sort(key=functools.cmp_to_key(by_key))
    page = keyed[:limit]
    more = len(keyed) > limit
    return Page([doc for _, doc in page], encode_cursor(page[-1][0]) if more else None)


def prefilter(where: Sequence[Where]) -> tuple[str, list[Any]]:
    """SQL narrowing the candidates: a superset of the matches, never fewer.

    Only `==` on plain strings and 64-bit numbers whose path needs no quoting; documents holding
    a wrapped map (keys starting with "$") are always kept because their paths differ.
    """
    sql, params = [], []
    for clause in where:
        value, parts = clause.value, clause.field.split(".")
        if clause.op != "==" or not all(part and set(part) <= _SQL_SAFE for part in parts):
            continue
        plain = isinstance(value, str) or (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and -(2**63) <= value < 2**63
        )
        if plain:
            sql.append(" AND (json_extract(data, ?) = ? OR instr(data, '\"$m\"') > 0)")
            params += ["$." + ".".join(f'"{part}"' for part in parts), value]
    return "".join(sql), params
