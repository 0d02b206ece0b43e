"""Values as tagged JSON: what Firestore stores, in a form plain JSON can carry and give back.

Datetimes (and maps whose keys could be mistaken for tags) carry a tag, non-finite floats too; what
Firestore would refuse (integers beyond 64 bits, nested arrays, naive datetimes) is refused here.
The embedded store keeps documents in this form and page tokens carry order values in it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# Tags; a user map with a key starting with "$" is wrapped in _MAP so it never reads as a tag.
_TIMESTAMP, _MAP, _FLOAT = "$t", "$m", "$f"
_INT64 = (-(2**63), 2**63 - 1)


def encode(value: Any) -> Any:
    """One value as JSON-ready data; rejects what Firestore would not store."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError("integers must fit in 64 bits, as in Firestore")
        return value
    if isinstance(value, float):
        # SQLite's JSON functions reject NaN/Infinity literals, which would break every query.
        return value if math.isfinite(value) else {_FLOAT: repr(value)}
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError("naive datetime: store aware UTC datetimes")
        return {_TIMESTAMP: value.astimezone(UTC).isoformat()}
    if isinstance(value, list | tuple):
        if any(isinstance(item, list | tuple) for item in value):
            raise ValueError("an array cannot hold an array directly, as in Firestore")
        return [encode(item) for item in value]
    if isinstance(value, Mapping):
        fields = encode_map(value)
        return {_MAP: fields} if any(key.startswith("$") for key in fields) else fields
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def encode_map(data: Mapping[str, Any]) -> dict[str, Any]:
    """A document or map body; the top level is never wrapped, so SQL paths into it stay plain."""
    out: dict[str, Any] = {}
    for key, item in data.items():
        out[field_name(key)] = encode(item)
    return out


def unstorable(data: Mapping[str, Any]) -> str | None:
    """Why Firestore could not hold this map (an array in an array, a huge integer), or None."""
    try:
        encode_map(data)
    except (TypeError, ValueError) as refused:
        return str(refused)
    return None


def field_name(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError("field names must be non-empty strings")
    return key


def decode(raw: Any) -> Any:
    if isinstance(raw, list):
        return [decode(item) for item in raw]
    if isinstance(raw, dict):
        if _MAP in raw:
            return decode_map(raw[_MAP])
        found = decode_tag(raw)
        return decode_map(raw) if found is raw else found
    return raw


def decode_tag(raw: dict[str, Any]) -> Any:
    """The timestamp or float a tag map stands for; any other map as it is."""
    if _TIMESTAMP in raw:
        return datetime.fromisoformat(raw[_TIMESTAMP]).astimezone(UTC)
    if _FLOAT in raw:
        return float(raw[_FLOAT])
    return raw


def decode_map(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {key: decode(item) for key, item in raw.items()}
