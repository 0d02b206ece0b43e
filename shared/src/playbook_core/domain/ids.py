"""Deterministic content ids (domain.md conventions): retries and duplicates hit one document."""

from __future__ import annotations

import hashlib
import json
from typing import Any

_SEPARATOR = "\x1f"
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,256}$"


def h(*parts: object) -> str:
    """SHA-256 over the parts joined by U+001F, lowercase hex, first 32 characters."""
    joined = _SEPARATOR.join(str(part) for part in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces: the form definition hashes are taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def definition_hash(definition: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(definition).encode("utf-8")).hexdigest()


def copy_id(source_id: str, n: int) -> str:
    """Id of the n-th duplicate of a playbook (`X_copy_1`, `X_copy_2`, ...)."""
    return f"{source_id}_copy_{n}"


def next_copy_id(source_id: str, taken: set[str]) -> str:
    """The smallest `_copy_n` (n >= 1) not used by any document, archived ones included."""
    n = 1
    while copy_id(source_id, n) in taken:
        n += 1
    return copy_id(source_id, n)
