"""Firestore query semantics for the embedded store: filters, cross-type ordering, page tokens.

Every clause is decided in Python, because Firestore's rules (1 == 1.0 but true != 1, null < bool <
number < timestamp < string < array < map, `!=` skipping nulls, implicit order on inequality
fields) have no faithful SQL form. SQL narrows and orders the candidates through indexes on a
(rank, key) pair per field: the rank is the value's place in Firestore's type order and the key its
`json_extract`, which SQLite orders as Firestore does within every rank but arrays and maps.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from playbook_core.adapters.embedded_fields import loads
from playbook_core.domain import page_tokens
from playbook_core.domain.errors import BadRequest
from playbook_core.domain.field_writes import FieldPath, get_path, split_path
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


_PLAIN = frozenset({str, datetime, int})  # exact types Python orders as Firestore does


def _sign(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


def compare(a: Any, b: Any) -> int:  # noqa: PLR0911 - one rule per type
    """-1, 0 or 1 in Firestore's total order of values."""
    if type(a) is type(b) and type(a) in _PLAIN:  # most comparisons: no rank to tell apart
        return _sign(a, b)
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


SortKey = tuple[list[Any], str]


def _compare_keys(a: SortKey, b: SortKey, directions: Sequence[Direction]) -> int:
    for x, y, direction in zip(a[0], b[0], directions, strict=True):
        if found := compare(x, y):
            return -found if direction == "desc" else found
    # Ties: document id ascending, always. (Bare Firestore breaks ties in the last order's
    # direction; our Firestore adapter orders by __name__ explicitly so both backends agree.)
    return _sign(a[1], b[1])


def encode_cursor(key: SortKey) -> str:
    return page_tokens.encode(key[0], key[1])


def decode_cursor(cursor: str, orders: int) -> SortKey:
    # Any id this store holds must page, including ids Firestore would refuse.
    return page_tokens.decode(cursor, orders, any_id=True)


def run(
    docs: Sequence[Doc],
    where: Sequence[Where],
    order_by: Sequence[OrderBy],
    limit: int,
    start_after: str | None,
) -> Page:
    """The page Firestore answers over `docs`, after the page token `start_after`."""
    return evaluate(docs, where, order_by, limit, decode_after(where, order_by, start_after))


def decode_after(
    where: Sequence[Where], order_by: Sequence[OrderBy], start_after: str | None
) -> SortKey | None:
    """The sort key a page token names, checked against the query's number of orders."""
    if start_after is None:
        return None
    return decode_cursor(start_after, len(effective_order(where, order_by)))


def evaluate(
    docs: Sequence[Doc],
    where: Sequence[Where],
    order_by: Sequence[OrderBy],
    limit: int,
    after: SortKey | None,
) -> Page:
    """`run` with the token already decoded."""
    orders = effective_order(where, order_by)
    directions = [order.direction for order in orders]
    keyed: list[tuple[SortKey, Doc]] = []
    for doc in docs:
        if not all(matches(doc.data, clause) for clause in where):
            continue
        values = [get_path(doc.data, split_path(order.field)) for order in orders]
        if all(found for found, _ in values):  # ordering by a field skips docs without it
            keyed.append((([value for _, value in values], doc.id), doc))
    if after is not None:
        keyed = [item for item in keyed if _compare_keys(item[0], after, directions) > 0]
    _sort(keyed, directions)
    return _page(keyed, limit)


def _sort(keyed: list[tuple[SortKey, Doc]], directions: Sequence[Direction]) -> None:
    def by_key(a: tuple[SortKey, Doc], b: tuple[SortKey, Doc]) -> int:
        return _compare_keys(a[0], b[0], directions)

    keyed.sort(key=functools.cmp_to_key(by_key))


def _page(keyed: list[tuple[SortKey, Doc]], limit: int) -> Page:
    """The first `limit` of sorted `keyed`, and a token when more follow."""
    page = keyed[:limit]
    more = len(keyed) > limit
    return Page([doc for _, doc in page], encode_cursor(page[-1][0]) if more else None)


# --- SQL: the (rank, key) pair indexes hold per field --------------------------------------------

# Firestore's type order as numbers; NaN and the infinities sit apart so a key never has to order
# them (NaN first, as `compare` does). Only arrays and maps are ordered wrongly by their key.
_SQL_NULL, _SQL_BOOL, _SQL_NAN, _SQL_NEG_INF, _SQL_NUMBER, _SQL_POS_INF = 0, 10, 15, 17, 20, 25
_SQL_TIMESTAMP, _SQL_STRING, _SQL_ARRAY, _SQL_MAP = 30, 40, 80, 90
_SQL_NUMBERS = frozenset({_SQL_NAN, _SQL_NEG_INF, _SQL_NUMBER, _SQL_POS_INF})
_MAX_SQL_DEPTH = 3  # a dotted path of k parts has 2**(k-1) spellings (any map on the way wrapped)
_SQL_OPS = {"<": "<", "<=": "<=", ">": ">=", ">=": ">="}  # `>` widened: see _sql_key


@dataclass(frozen=True)
class FieldSql:
    """SQL expressions over `documents.data` for one field; indexes and queries share the text."""

    rank: str
    key: str


def field_sql(path: str) -> FieldSql | None:
    """None when the path needs quoting SQL cannot index; such clauses stay in Python."""
    parts = path.split(".")
    if len(parts) > _MAX_SQL_DEPTH or not all(part and set(part) <= _SQL_SAFE for part in parts):
        return None
    spellings = [""]
    for i, part in enumerate(parts):
        # A map holding a "$" key is stored wrapped as {"$m": {...}}; the document never is.
        wrapped = [f'{s}."$m"' for s in spellings] if i else []
        spellings = [f'{s}."{part}"' for s in [*spellings, *wrapped]]

    def over(function: str, suffix: str = "") -> str:
        calls = [f"{function}(data, '${s}{suffix}')" for s in spellings]
        return calls[0] if len(calls) == 1 else f"COALESCE({', '.join(calls)})"

    timestamp, special = over("json_type", '."$t"'), over("json_extract", '."$f"')
    obj = (
        f"CASE WHEN {timestamp} IS NOT NULL THEN {_SQL_TIMESTAMP} "
        f"ELSE CASE {special} WHEN 'nan' THEN {_SQL_NAN} "
        f"WHEN '-inf' THEN {_SQL_NEG_INF} WHEN 'inf' THEN {_SQL_POS_INF} ELSE {_SQL_MAP} END END"
    )
    rank = (
        f"CASE {over('json_type')} WHEN 'null' THEN {_SQL_NULL} WHEN 'true' THEN {_SQL_BOOL} "
        f"WHEN 'false' THEN {_SQL_BOOL} WHEN 'integer' THEN {_SQL_NUMBER} "
        f"WHEN 'real' THEN {_SQL_NUMBER} WHEN 'text' THEN {_SQL_STRING} "
        f"WHEN 'array' THEN {_SQL_ARRAY} WHEN 'object' THEN {obj} END"
    )
    return FieldSql(rank, over("json_extract"))


def sql_rank(value: Any) -> int:
    """The rank `field_sql(...).rank` computes for a stored value."""
    if isinstance(value, float) and not math.isfinite(value):
        return _SQL_NAN if math.isnan(value) else _SQL_POS_INF if value > 0 else _SQL_NEG_INF
    if isinstance(value, datetime):
        return _SQL_TIMESTAMP
    if isinstance(value, str):
        return _SQL_STRING
    return {0: _SQL_NULL, 1: _SQL_BOOL, _NUMBER: _SQL_NUMBER, _ARRAY: _SQL_ARRAY}.get(
        _rank(value), _SQL_MAP
    )


def _sql_key(value: Any) -> tuple[bool, Any]:
    """(usable, what `field_sql(...).key` holds for this value).

    Unusable where the key says nothing or lies: json_extract returns a string only up to its first
    NUL (so such a target gets no bound, and `>` runs as `>=`: a stored "x<NUL>y" reads "x"), and
    NaN, infinities, null, arrays and maps are told apart by rank alone.
    """
    rank = sql_rank(value)
    if rank == _SQL_BOOL:
        return True, int(value)
    if rank == _SQL_NUMBER:
        return True, value
    if rank == _SQL_TIMESTAMP:
        return True, json.dumps(encode(value), ensure_ascii=False, separators=(",", ":"))
    if rank == _SQL_STRING:
        return "\0" not in value, value
    return False, None


@dataclass(frozen=True)
class SqlQuery:
    where: str  # " AND …" terms: a superset of the matches, never fewer
    params: tuple[Any, ...]
    order_by: str  # " ORDER BY …", or "" when some order field has no SQL form
    fixed: frozenset[str]  # fields whose rank an equality pins (left out of ORDER BY)


def _clause_sql(  # noqa: C901, PLR0911 - one rule per operator and rank
    f: FieldSql, clause: Where, params: list[Any]
) -> tuple[str, int | None]:
    """(terms, the one rank they pin the field to, if they do) for one clause."""
    op, value = clause.op, clause.value
    if op in {"!=", "not-in"}:
        return f"{f.rank} > {_SQL_NULL}", None  # the field exists and is not null
    if op in {"array-contains", "array-contains-any"}:
        return f"{f.rank} = {_SQL_ARRAY}", _SQL_ARRAY
    if op == "in":
        ranks = {sql_rank(item) for item in value}
        keys = [_sql_key(item) for item in value]
        if len(ranks) != 1:
            return f"{f.rank} IN ({', '.join(str(r) for r in sorted(ranks))})", None
        (rank,) = ranks
        if not all(usable for usable, _ in keys):
            return f"{f.rank} = {rank}", rank
        params += [key for _, key in keys]
        return f"{f.rank} = {rank} AND {f.key} IN ({', '.join('?' * len(keys))})", rank
    rank = sql_rank(value)
    usable, key = _sql_key(value)
    if op == "==":
        if not usable:
            return f"{f.rank} = {rank}", rank
        params.append(key)
        return f"{f.rank} = {rank} AND {f.key} = ?", rank
    if rank in _SQL_NUMBERS:  # NaN and the infinities match ranges on numbers: no key bound
        if not usable:
            return f"{f.rank} BETWEEN {_SQL_NAN} AND {_SQL_POS_INF}", None
        params.append(key)
        return (
            f"{f.rank} BETWEEN {_SQL_NAN} AND {_SQL_POS_INF} "
            f"AND ({f.rank} <> {_SQL_NUMBER} OR {f.key} {op} ?)"
        ), None
    if not usable:
        return f"{f.rank} = {rank}", rank
    params.append(key)
    sql_op = _SQL_OPS[op] if rank == _SQL_STRING else op
    return f"{f.rank} = {rank} AND {f.key} {sql_op} ?", rank


def to_sql(
    where: Sequence[Where], order_by: Sequence[OrderBy], after: SortKey | None = None
) -> SqlQuery:
    """The SQL for a query; `after`, a decoded page token, starts the rows at its tie group."""
    terms: list[str] = []
    params: list[Any] = []
    fixed: dict[str, int] = {}  # field -> the rank a clause pins it to
    pinned: set[str] = set()  # fields whose key an `==` pins too
    for clause in where:
        f = field_sql(clause.field)
        if f is None:
            continue
        term, rank = _clause_sql(f, clause, params)
        terms.append(f" AND {term}")
        if rank is not None:
            fixed[clause.field] = rank
        if clause.op == "==" and _sql_key(clause.value)[0]:
            pinned.add(clause.field)
    orders, filtered = effective_order(where, order_by), bool(terms)
    if after is not None:
        # First: SQLite seeks on the first lower bound it meets, and the token's is the tightest.
        first: list[Any] = []
        terms.insert(0, _after_sql(orders, after, fixed, first))
        params[:0] = first
    order: list[str] = []
    for item in orders:
        f = field_sql(item.field)
        if f is None:
            return SqlQuery("".join(terms), tuple(params), "", frozenset(fixed))
        direction = " DESC" if item.direction == "desc" else ""
        # SQLite sees no order in a column an `=` holds constant: naming it there costs a sort.
        if item.field not in fixed:
            order.append(f.rank + direction)
        if item.field not in pinned:
            order.append(f.key + direction)
    # With no order field, a bare `id` would have SQLite walk the primary key (already in id
    # order) past every index the filters could use; `+id` only sorts the rows they find.
    order.append("+id" if filtered and not order else "id")
    return SqlQuery(
        "".join(terms), tuple(params), " ORDER BY " + ", ".join(order), frozenset(fixed)
    )


def _after_sql(
    orders: Sequence[OrderBy], after: SortKey, fixed: Mapping[str, int], params: list[Any]
) -> str:
    """Rows from the token's (rank, key) on in the first order field: a superset, never fewer.

    Without it every page re-reads and decodes the rows of all the pages before it. A stored
    string's key is its prefix up to a NUL, never greater than the string, so `>=` (`<=` when
    descending) keeps every row at or past the token.
    """
    if not orders:
        params.append(after[1])
        return " AND id > ?"  # ids alone order the rows
    order, value = orders[0], after[0][0]
    f, fixed_rank = field_sql(order.field), fixed.get(order.field)
    if f is None or isinstance(value, list | dict):
        return ""  # ordered by JSON text in SQL: run_ordered hands these rows to `evaluate` anyway
    rank, (usable, key) = sql_rank(value), _sql_key(value)
    op = "<=" if order.direction == "desc" else ">="
    if fixed_rank is not None and (fixed_rank != rank or not usable):
        return ""  # every row has the pinned rank; only a forged token names another
    if not usable:
        return f" AND {f.rank} {op} {rank}"
    params.append(key)
    if fixed_rank is not None:
        return f" AND {f.key} {op} ?"  # a plain range on the index's key column
    return f" AND ({f.rank}, {f.key}) {op} ({rank}, ?)"


def _coarse(value: Any) -> tuple[int, Any]:
    """What SQL orders a value by: rank, then key (a string's key stops at its first NUL)."""
    rank = sql_rank(value)
    if rank == _SQL_STRING:
        return rank, value.split("\0", 1)[0]
    if rank == _SQL_BOOL:
        return rank, int(value)
    return rank, value if rank in {_SQL_NUMBER, _SQL_TIMESTAMP} else None


_EXACT_RANKS = {  # the ranks whose key SQL compares exactly as `matches` does, per operator
    "==": frozenset({_SQL_BOOL, _SQL_TIMESTAMP, _SQL_STRING}),
    "in": frozenset({_SQL_BOOL, _SQL_TIMESTAMP, _SQL_STRING}),
    "<": frozenset({_SQL_TIMESTAMP, _SQL_STRING}),
    "<=": frozenset({_SQL_TIMESTAMP, _SQL_STRING}),
    ">=": frozenset({_SQL_TIMESTAMP, _SQL_STRING}),
    ">": frozenset({_SQL_TIMESTAMP}),  # on strings SQL widens `>` to `>=` (see _sql_key)
}
_NUL = "\\u0000"  # how a NUL anywhere in a document is written in its stored JSON


def decided_in_sql(clause: Where) -> bool:
    """Whether `to_sql`'s terms for `clause` are exactly `matches`, on rows without a NUL.

    Their keys then hold the whole value: a string's is no longer cut at a NUL, a timestamp's is
    its canonical UTC text, which orders as the instants do. Numbers stay re-checked (SQLite's
    int/real comparisons), as do arrays, maps and every operator not listed.
    """
    ranks = _EXACT_RANKS.get(clause.op)
    if ranks is None or field_sql(clause.field) is None:
        return False
    values = clause.value if clause.op == "in" else [clause.value]
    found = {sql_rank(v) for v in values}  # `in` over several ranks narrows by rank alone
    return len(found) == 1 and found <= ranks and all(_sql_key(v)[0] for v in values)


def _order_values(data: dict[str, Any], paths: Sequence[FieldPath]) -> list[Any] | None:
    """The document's value per order field; None when one is missing (the row is skipped)."""
    values = []
    for path in paths:
        found, value = get_path(data, path)
        if not found:
            return None
        values.append(value)
    return values


def _group(values: Sequence[Any], doc_id: str) -> tuple[Any, ...] | None:
    """What SQL orders the row by; None when an array or map is among the values.

    Ids order ties unless a string's key was cut at a NUL: a string leaves the id out, so the
    whole group is sorted here.
    """
    coarse: list[Any] = []
    tail: tuple[str, ...] = (doc_id,)
    for value in values:
        if isinstance(value, list | dict):
            return None
        if isinstance(value, str):
            tail = ()
        coarse.append(_coarse(value))
    return (*coarse, *tail)


def run_ordered(
    rows: Iterable[tuple[str, str]],
    where: Sequence[Where],
    order_by: Sequence[OrderBy],
    limit: int,
    after: SortKey | None,
) -> Page:
    """`evaluate` over rows SQL sent in `to_sql`'s order: stops once the page is certain.

    SQL's order is Firestore's between rows whose (rank, key) differ, so rows are taken a whole
    tie group at a time and sorted here; an array or map in an order field (ordered by JSON text
    in SQL) sends every row to `evaluate` instead.
    """
    orders = effective_order(where, order_by)
    directions = [order.direction for order in orders]
    seen: list[Doc] = []
    keyed: list[tuple[SortKey, Doc]] = []
    last_group: tuple[Any, ...] | None = None
    tied = False  # SQL's order is final unless two rows shared a (rank, key) group
    rechecked = [clause for clause in where if not decided_in_sql(clause)]
    paths = [split_path(order.field) for order in orders]
    iterator = iter(rows)
    for doc_id, data in iterator:
        doc = Doc(doc_id, loads(data))
        seen.append(doc)
        clauses = where if _NUL in data else rechecked
        if clauses and not all(matches(doc.data, clause) for clause in clauses):
            continue
        values = _order_values(doc.data, paths)
        if values is None:
            continue
        group = _group(values, doc.id)
        if group is None:
            seen += [Doc(i, loads(d)) for i, d in iterator]
            return evaluate(seen, where, order_by, limit, after)
        key: SortKey = (values, doc.id)
        if after is not None and _compare_keys(key, after, directions) <= 0:
            continue
        if len(keyed) > limit and group != last_group:
            break
        tied = tied or group == last_group
        keyed.append((key, doc))
        last_group = group
    if tied:
        _sort(keyed, directions)
    return _page(keyed, limit)


# --- SQL: indexes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexField:
    path: str
    descending: bool = False
    contains: bool = False  # an `arrayConfig: CONTAINS` entry


@dataclass(frozen=True)
class Index:
    """One composite index as firestore.indexes.json declares it (`__name__` left out)."""

    group: str
    fields: tuple[IndexField, ...]


def parse_indexes(declared: Any) -> list[Index]:
    """The `indexes` of a firestore.indexes.json document."""
    found = []
    for entry in declared.get("indexes", []):
        fields = tuple(
            IndexField(
                f["fieldPath"],
                descending=f.get("order") == "DESCENDING",
                contains=f.get("arrayConfig") == "CONTAINS",
            )
            for f in entry["fields"]
            if f["fieldPath"] != "__name__"
        )
        found.append(Index(entry["collectionGroup"], fields))
    return found


def group_sql(group: str) -> str | None:
    """The partial-index condition for a collection group; queries repeat it word for word."""
    if not group or not set(group) <= _SQL_SAFE:
        return None
    return f"('/' || collection) GLOB '*/{group}'"


def index_columns(index: Index) -> list[str] | None:
    """SQL columns for `index`: collection, (rank, key) per field, then id (`__name__`).

    An array-contains field has no column: its clause is decided in Python among the rows the other
    columns find. None when a path has no SQL form.
    """
    columns = ["collection"]
    for field in index.fields:
        if field.contains:
            continue
        f = field_sql(field.path)
        if f is None:
            return None
        direction = " DESC" if field.descending else ""
        columns += [f.rank + direction, f.key + direction]
    return [*columns, "id"]


def single_field_indexes(indexes: Sequence[Index]) -> list[Index]:
    """Firestore indexes every field alone; here, each field a composite names.

    Left out: fields some composite of the group leads with, which already serve `==` alone.
    """
    leading = {
        (i.group, i.fields[0].path) for i in indexes if i.fields and not i.fields[0].contains
    }
    named = {(i.group, f.path): None for i in indexes for f in i.fields if not f.contains}
    return [Index(g, (IndexField(path),)) for g, path in named if (g, path) not in leading]
