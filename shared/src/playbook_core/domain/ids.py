"""Ids: deterministic content ids (domain.md conventions), and which strings can name a document."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, TypeGuard

_SEPARATOR = "\x1f"
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,256}")
MAX_DOCUMENT_ID_BYTES = 1500  # Firestore's limit
MAX_PATH_ID = 256  # every id we issue is far shorter; ids composed from one stay under the limit
_RESERVED = re.compile(r"__.*__", re.DOTALL)


def h(*parts: object) -> str:
    """SHA-256 over the parts joined by U+001F, lowercase hex, first 32 characters."""
    joined = _SEPARATOR.join(str(part) for part in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


def is_document_id(value: str) -> bool:
    """Firestore's rule: 1 to 1,500 bytes of UTF-8, no `/`, not `.` or `..`, not `__x__`."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate (JSON can carry one) is not UTF-8
        return False
    return (
        0 < size <= MAX_DOCUMENT_ID_BYTES
        and "/" not in value
        and value not in (".", "..")
        and _RESERVED.fullmatch(value) is None
    )


def is_plain_id(value: object) -> TypeGuard[str]:
    """An id a client hands us in a body (customer, org): ASCII word characters, a document id."""
    return (
        isinstance(value, str) and _PLAIN_ID.fullmatch(value) is not None and is_document_id(value)
    )


def is_path_id(value: str) -> bool:
    """Whether a URL path segment can name a document: a document id of at most 256 characters."""
    return len(value) <= MAX_PATH_ID and is_document_id(value)


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
