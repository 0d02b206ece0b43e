"""Loosely typed fields of the existing app's documents (orders, customers, inventory)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from playbook_core.domain.normal_forms import parse_timestamp


def instant(value: Any) -> datetime | None:
    """A Firestore timestamp, an RFC 3339 string or a {seconds} map, as aware UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, Mapping):
        seconds = value.get("seconds", value.get("_seconds"))
        valid = isinstance(seconds, int | float) and not isinstance(seconds, bool)
        return datetime.fromtimestamp(seconds, UTC) if valid else None
    return parse_timestamp(value)


def text(value: Any) -> str | None:
    """A non-empty trimmed string; numbers (ids, order numbers) become their digits."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return (value.strip() or None) if isinstance(value, str) else None


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def number(value: Any) -> float | None:
    """A numeric field that may also arrive as a numeric string (POS syncs store both)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def names(doc: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """firstName/lastName, else a single `name` split at its first space."""
    first, last = text(doc.get("firstName")), text(doc.get("lastName"))
    if first is None and last is None and (full := text(doc.get("name"))):
        first, _, rest = full.partition(" ")
        last = rest.strip() or None
    return first, last
