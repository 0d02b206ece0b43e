"""Page tokens, one codec for both stores: opaque to clients, checked strictly when they return.

A token is unpadded base64url of `{"v": [order values], "id": last document id}`, the values in
tagged JSON (domain/tagged_values) (timestamps, non-finite floats, `$` keys). It only says where the
next page starts; the query's own filters (the org among them) still apply, so an edited token
moves within the caller's results, never outside them. Anything `encode` would not have produced
is BadRequest `invalid-page-token`, never an error from the JSON parser or the store.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from playbook_core.domain import tagged_values
from playbook_core.domain.errors import BadRequest
from playbook_core.domain.ids import is_document_id

MAX_TOKEN = 8192  # characters: one document id (at most 1,500 bytes) and a few order values
CODE = "invalid-page-token"
_FORGED = "the page token is not one this API issued"


def encode(values: Sequence[Any], doc_id: str) -> str:
    """The token for the page after the document `doc_id` whose order values are `values`."""
    raw = {"v": [tagged_values.encode(value) for value in values], "id": doc_id}
    text = json.dumps(raw, separators=(",", ":"), allow_nan=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(token: str, orders: int | None = None, *, any_id: bool = False) -> tuple[list[Any], str]:
    """(values, document id) of a token `encode` made; `orders`: how many values the query has.

    The id must be one Firestore takes (`any_id`: any non-empty string, for the embedded store).
    """
    if len(token) > MAX_TOKEN:
        raise BadRequest(_FORGED, code=CODE)
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        json.dumps(raw, ensure_ascii=False).encode()  # lone surrogates: not UTF-8, not storable
        values, doc_id = [tagged_values.decode(value) for value in raw["v"]], raw["id"]
        canonical = encode(values, doc_id)
    # RecursionError: `[[[…` deep; ArithmeticError, OSError: a time or float out of range; the
    # others: not base64, not JSON, not the shape, not storable.
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        RecursionError,
        ArithmeticError,
        OSError,
    ) as exc:
        raise BadRequest(_FORGED, code=CODE) from exc
    # Re-encoding must give the token back: no extra keys, no padding, UTC timestamps only.
    if canonical != token or not isinstance(doc_id, str) or not doc_id:
        raise BadRequest(_FORGED, code=CODE)
    if not (any_id or is_document_id(doc_id)):
        raise BadRequest("the page token names no document", code=CODE)
    if orders is not None and len(values) != orders:
        raise BadRequest("the page token belongs to another query", code=CODE)
    return values, doc_id
