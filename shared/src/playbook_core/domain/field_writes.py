"""Firestore's write semantics over plain dicts, as the client applies them.

Create/set/merge/update with `Increment` and `DELETE_FIELD` follow the client's rules (checked on
the emulator). The embedded store writes with them, so code proven on it behaves the same in the
cloud; a transaction that coalesces its own writes (service/reporting/attribution) applies them
too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from playbook_core.domain.tagged_values import encode, field_name
from playbook_core.ports import DeleteField, Increment

FieldPath = tuple[str, ...]


# --- field paths -------------------------------------------------------------------------------


_T = TypeVar("_T")


def copied(value: _T) -> _T:
    """A copy of a document's maps and arrays; leaves are values, immutable or never mutated.

    copy.deepcopy's memo and dispatch cost several times this on the reconcile's documents.
    """
    if isinstance(value, dict):
        return {key: copied(item) for key, item in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [copied(item) for item in value]  # type: ignore[return-value]
    if isinstance(value, tuple):  # written as an array; maps inside it are still maps
        return tuple(copied(item) for item in value)  # type: ignore[return-value]
    return value


def split_path(path: str) -> FieldPath:
    parts = tuple(path.split("."))
    if not all(parts):
        raise ValueError(f"invalid field path {path!r}")
    return parts


def get_path(data: Mapping[str, Any], path: FieldPath) -> tuple[bool, Any]:
    """(found, value) at a dotted path; a non-map on the way means absent."""
    current: Any = data
    for part in path:
        # dict first: a C check, where an ABC's isinstance costs several times that.
        if not isinstance(current, dict | Mapping) or part not in current:
            return False, None
        current = current[part]
    return True, current


def _set_path(doc: dict[str, Any], path: FieldPath, value: Any) -> None:
    current = doc
    for part in path[:-1]:
        child = current.get(part)
        if not isinstance(child, dict):  # Firestore replaces a non-map on the way with a map
            child = current[part] = {}
        current = child
    current[path[-1]] = copied(value)


def _delete_path(doc: dict[str, Any], path: FieldPath) -> None:
    found, parent = get_path(doc, path[:-1])
    if found and isinstance(parent, dict):
        parent.pop(path[-1], None)


def _increment(doc: dict[str, Any], path: FieldPath, amount: float) -> None:
    _, current = get_path(doc, path)
    numeric = isinstance(current, int | float) and not isinstance(current, bool)
    _set_path(doc, path, current + amount if numeric else amount)  # non-numbers become the amount


# --- writes ------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """A write split the way the Firestore client splits it: data, deletes, then transforms."""

    sets: list[tuple[FieldPath, Any]] = field(default_factory=list)
    deletes: list[FieldPath] = field(default_factory=list)
    increments: list[tuple[FieldPath, float]] = field(default_factory=list)

    def add(self, path: FieldPath, value: Any) -> None:
        if isinstance(value, DeleteField):
            self.deletes.append(path)
        elif isinstance(value, Increment):
            if isinstance(value.amount, bool) or not isinstance(value.amount, int | float):
                raise TypeError("Increment takes an int or a float")
            self.increments.append((path, value.amount))
        else:
            encode(value)  # reject unsupported values before anything is written
            self.sets.append((path, value))

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        for path, value in self.sets:
            _set_path(doc, path, value)
        for path in self.deletes:
            _delete_path(doc, path)
        for path, amount in self.increments:  # transforms run after the data, as in Firestore
            _increment(doc, path, amount)
        return doc


def _leaves(data: Mapping[str, Any], prefix: FieldPath) -> Iterator[tuple[FieldPath, Any]]:
    """Depth-first leaves; an empty map is a leaf value, as in the client's extract_fields."""
    for key, value in data.items():
        path = (*prefix, field_name(key))
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, path)
        else:
            yield path, value


def _plan(data: Mapping[str, Any], prefix: FieldPath = ()) -> _Plan:
    plan = _Plan()
    for path, value in _leaves(data, prefix):
        plan.add(path, value)
    return plan


def replaced(data: Mapping[str, Any]) -> dict[str, Any]:
    """The document `create()` or `set()` without merge writes."""
    plan = _plan(data)
    if plan.deletes:
        raise ValueError("DELETE_FIELD needs set(merge=True) or update()")
    return plan.apply({})


def merged(existing: Mapping[str, Any] | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """`set(merge=True)`: every leaf of `data` is written at its path; other fields stay."""
    return _plan(data).apply(copied(dict(existing or {})))


def updated(existing: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`update()`: each key is a dotted path whose value is replaced (maps are not merged)."""
    if not changes:
        raise ValueError("update() needs at least one field")
    paths = sorted(split_path(key) for key in changes)
    for shorter, longer in itertools.pairwise(paths):  # sorted: a prefix sits next to its child
        if longer[: len(shorter)] == shorter:
            raise ValueError(f"conflicting field paths {'.'.join(shorter)} and {'.'.join(longer)}")
    cleared, plan = [], _Plan()
    for key, value in changes.items():
        path = split_path(key)
        if isinstance(value, Mapping) and value:
            # The client puts the key in the update mask, so the old map goes even when the new
            # one holds only transforms (checked on the emulator: {"a": {"b": Increment(1)}}).
            cleared.append(path)
            nested = _plan(value, path)
            if nested.deletes:
                raise ValueError("DELETE_FIELD inside a map value: use a dotted path instead")
            plan.sets += nested.sets
            plan.increments += nested.increments
        else:
            plan.add(path, value)
    doc = copied(dict(existing))
    for path in cleared:
        _delete_path(doc, path)
    return plan.apply(doc)
