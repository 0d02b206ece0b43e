"""Strict JSON bodies: UTF-8 only, no repeated keys, no NaN or Infinity, no unpaired surrogates.

`json.loads` silently keeps the last of two equal keys; a YAML definition with them is refused,
so a JSON one is too, with the same `duplicate_key` issue (path, line, column). The fast parse
only notices that something is wrong; a slow scan, run only then, finds where.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

from playbook_core.domain.errors import BadRequest, Issue
from playbook_core.domain.text import Undecodable, line_column, utf8

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_NON_FINITE = ("-Infinity", "Infinity", "NaN")
_LITERALS = ("true", "false", "null")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_INDEX = re.compile(r"^\[([0-9]+)\]\.?")


class RepeatedKeys(BadRequest):
    """An object names a key twice: a 400 for any body, a 422 issue for a definition."""

    def __init__(self, issues: list[Issue]) -> None:
        first = issues[0]
        super().__init__(
            f"the JSON body repeats the key '{first.path}' (line {first.line}, column "
            f"{first.column}); each key may appear once"
        )
        self.issues = issues


def loads(raw: bytes | str) -> Any:
    """Parsed JSON, or BadRequest (bad syntax or text) / RepeatedKeys."""
    data, repeated = decode(raw)
    if repeated:
        raise RepeatedKeys(repeated)
    return data


def decode(raw: bytes | str) -> tuple[Any, list[Issue]]:
    """Parsed JSON keeping each key's first value (as the YAML reader does) and the repeats."""
    try:
        text = utf8(raw) if isinstance(raw, bytes) else raw
    except Undecodable as bad:
        raise BadRequest(
            f"the body is not valid UTF-8 (line {bad.line}, column {bad.column})"
        ) from None
    text = text.removeprefix("\ufeff")  # RFC 8259 §8.1 lets a parser ignore a byte order mark
    flags = _Flags()
    try:
        data = json.loads(text, object_pairs_hook=flags.pairs, parse_constant=flags.constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # `[[[[…` thousands deep: a 400, not a 500
        raise BadRequest("the JSON body nests too deeply") from None
    except ValueError as exc:  # e.g. an integer longer than Python's 4,300-digit limit
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    # Escaped surrogates are legal JSON syntax, but an unpaired one is not text: nothing can
    # store or encode it. Checked only when an escape could have made one.
    suspect = bool(_SURROGATE_ESCAPE.search(text)) and _has_lone_surrogate(data)
    if not (flags.repeated or flags.non_finite or suspect):
        return data, []
    repeated: list[Issue] = []
    for kind, path, index in _scan(text):
        line, column = line_column(text, index)
        if kind == "constant":
            raise BadRequest(
                f"NaN and Infinity are not JSON numbers (line {line}, column {column})"
            )
        if kind == "surrogate":
            raise BadRequest(
                f"the JSON body holds an unpaired surrogate escape (line {line}, column "
                f"{column}); escape characters beyond U+FFFF as a pair"
            )
        key = path.rsplit(".", 1)[-1]
        repeated.append(
            Issue(code="duplicate_key", path=path, line=line, column=column,
                  message=f"'{key}' appears twice")
        )  # fmt: skip
    return data, repeated


def by_document(issues: list[Issue], array: bool) -> dict[int, list[Issue]]:
    """Issues of a JSON import grouped by document index, paths made relative to the document."""
    grouped: dict[int, list[Issue]] = defaultdict(list)
    for issue in issues:
        match = _INDEX.match(issue.path) if array else None
        index = int(match.group(1)) if match else 0
        path = issue.path[match.end() :] if match else issue.path
        grouped[index].append(issue.model_copy(update={"path": path}))
    return dict(grouped)


@dataclass
class _Flags:
    repeated: bool = False
    non_finite: bool = False

    def pairs(self, items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                self.repeated = True
                continue  # the first value stays, as in the YAML reader
            result[key] = value
        return result

    def constant(self, _name: str) -> float:
        self.non_finite = True
        return 0.0


def _has_lone_surrogate(data: Any) -> bool:
    # The C encoder walks the whole value; UTF-8 encoding fails on any unpaired surrogate.
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@dataclass
class _Frame:
    path: str
    keys: set[str] | None = field(default=None)  # None for an array
    index: int = 0


def _scan(text: str) -> Iterator[tuple[str, str, int]]:
    """Walk text that json.loads accepted: (kind, path, offset) of each repeat and bad value.

    Iterative, so depth costs no Python stack.
    """
    stack: list[_Frame] = []
    path, at = "", _skip(text, 0)
    while True:
        if text[at] in "{[":  # a value starts here
            empty = _skip(text, at + 1)
            if text[empty] not in "}]":
                frame = _Frame(path, set() if text[at] == "{" else None)
                stack.append(frame)
                path, at = yield from _member(text, empty, frame)
                continue
            at = empty + 1
        else:
            at = yield from _scalar(text, at, path)
        while True:  # after a value: a comma opens the next member, a bracket closes
            at = _skip(text, at)
            if not stack:
                return
            if text[at] == ",":
                path, at = yield from _member(text, _skip(text, at + 1), stack[-1], following=True)
                break
            stack.pop()
            at += 1


def _scalar(text: str, at: int, path: str) -> Generator[tuple[str, str, int], None, int]:
    """Step over one string, number or literal; where it ends."""
    if text[at] == '"':
        value, end = scanstring(text, at + 1)
        if _SURROGATE.search(value):
            yield "surrogate", path, at
        return int(end)
    if constant := next((c for c in _NON_FINITE if text.startswith(c, at)), None):
        yield "constant", path, at
        return at + len(constant)
    if literal := next((c for c in _LITERALS if text.startswith(c, at)), None):
        return at + len(literal)
    number = _NUMBER.match(text, at)
    assert number is not None  # noqa: S101 - json.loads accepted this text
    return number.end()


def _member(
    text: str, at: int, frame: _Frame, *, following: bool = False
) -> Generator[tuple[str, str, int], None, tuple[str, int]]:
    """Start the next member of `frame` at `at`: its path and where its value begins."""
    if frame.keys is None:
        frame.index += 1 if following else 0
        return f"{frame.path}[{frame.index}]", at
    key, end = scanstring(text, at + 1)
    path = f"{frame.path}.{key}" if frame.path else key
    if _SURROGATE.search(key):
        yield "surrogate", path, at
    if key in frame.keys:
        yield "duplicate", path, at
    frame.keys.add(key)
    colon = _skip(text, end)
    return path, _skip(text, colon + 1)


def _skip(text: str, at: int) -> int:
    match = _WHITESPACE.match(text, at)
    return match.end() if match else at
