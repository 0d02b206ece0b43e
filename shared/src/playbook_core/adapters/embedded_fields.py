"""The tagged JSON the embedded store keeps on disk.

SQLite keeps text, so datetimes (and maps whose keys could be mistaken for tags) carry a tag. The
write semantics it applies are domain/field_writes.py's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from playbook_core.domain.tagged_values import decode_map, decode_tag, encode_map


def dumps(data: Mapping[str, Any]) -> str:
    # ensure_ascii=False keeps strings as UTF-8 so SQLite's json_extract compares them verbatim.
    return json.dumps(encode_map(data), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


_TAGS_DECODED = json.JSONDecoder(object_hook=decode_tag)


def loads(text: str) -> dict[str, Any]:
    # Without a wrapped map ("$m") every nested map holding "$t" or "$f" is a tag, so the C parser
    # can decode tags as it goes. The top level is never a tag: one holding a field named "$t"
    # or "$f" takes the slow path.
    if '"$m"' not in text:
        try:
            data = _TAGS_DECODED.decode(text)
        # A top-level "$t" field read as a tag: any text, so any way a datetime can refuse it.
        except (ValueError, TypeError, ArithmeticError, OSError):
            data = None
        if isinstance(data, dict):
            return data
    return decode_map(json.loads(text))
