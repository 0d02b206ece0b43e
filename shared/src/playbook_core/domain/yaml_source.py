"""Safe YAML reading (domain.md §3.6 steps 1–4): size, SafeLoader, node-graph checks, positions.

The document is composed to nodes and checked before anything is constructed, so alias bombs,
tags and duplicate keys are refused without building them, and every value keeps its position.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from playbook_core.domain.errors import Issue
from playbook_core.domain.text import CONTROL, Undecodable, code_point, line_column, utf8

MAX_BYTES = 256 * 1024
MAX_ALIASES = 20
MAX_NODES = 10_000
MAX_DEPTH = 20
_STR = "tag:yaml.org,2002:str"
# libyaml's parser when the wheel has it (about 10x faster); same SafeLoader semantics either way.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Position:
    line: int
    column: int


@dataclass
class SourceMap:
    """Where each path's key and value start (1-based), for error reporting."""

    keys: dict[str, Position] = field(default_factory=dict)
    values: dict[str, Position] = field(default_factory=dict)


class YamlRejected(Exception):
    def __init__(self, issues: list[Issue]) -> None:
        super().__init__(issues[0].message if issues else "rejected")
        self.issues = issues


class _Mark(Protocol):
    line: int
    column: int


def _issue(code: str, message: str, mark: _Mark | None = None, path: str = "") -> Issue:
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    return Issue(code=code, path=path, line=line, column=column, message=message)


def decode(raw: bytes | str) -> str:
    """Step 1: size, encoding and control characters (escaped ones are checked once parsed)."""
    # An unpaired surrogate in a str survives encoding here, then fails the UTF-8 check below.
    data = raw.encode("utf-8", errors="surrogatepass") if isinstance(raw, str) else raw
    if len(data) > MAX_BYTES:
        raise YamlRejected([_issue("too_large", "the document is larger than 256 KiB")])
    try:
        text = utf8(data)
    except Undecodable as bad:
        raise YamlRejected(
            [Issue(code="invalid_encoding", path="", line=bad.line, column=bad.column,
                   message="the document is not valid UTF-8")]
        ) from None  # fmt: skip
    if (match := CONTROL.search(text)) is not None:
        line, column = line_column(text, match.start())
        raise YamlRejected(
            [Issue(code="invalid_encoding", path="", line=line, column=column,
                   message=f"the document contains a control or line-separator character "
                           f"({code_point(match[0])})")]
        )  # fmt: skip
    return text


def compose(text: str) -> yaml.Node:
    """Steps 2–3: check the event stream, then compose exactly one document."""
    try:
        _check_events(text)
        documents = list(yaml.compose_all(text, Loader=_LOADER))
    except yaml.MarkedYAMLError as exc:
        raise YamlRejected([_syntax_issue(text, exc)]) from exc
    except yaml.YAMLError as exc:
        raise YamlRejected([_issue("yaml_syntax", f"YAML syntax error: {exc}")]) from exc
    if len(documents) != 1:
        message = "the document is empty" if not documents else "only one YAML document is allowed"
        raise YamlRejected([_issue("multiple_documents" if documents else "invalid_type", message)])
    root = documents[0]
    _check_graph(root)
    return root


def _check_events(text: str) -> None:
    """Depth, aliases and tags from the event stream, before anything is composed.

    The composer recurses (in C with libyaml), so a deeply nested document must be refused
    here: composing 30,000 nested brackets would overflow the C stack and kill the process.
    """
    aliases = depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                message = "the document nests deeper than 20 levels"
                raise YamlRejected([_issue("too_deep", message, event.start_mark)])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                message = "the document uses more than 20 aliases"
                raise YamlRejected([_issue("alias_limit", message, event.start_mark)])
        tag = getattr(event, "tag", None)
        if tag is not None and isinstance(event, yaml.NodeEvent):
            message = f"YAML tags such as '{tag}' are not allowed"
            raise YamlRejected([_issue("forbidden_tag", message, event.start_mark)])


def _syntax_issue(text: str, fast: yaml.MarkedYAMLError) -> Issue:
    """The pure-Python parser's wording (the one domain.md quotes); libyaml only finds the error."""
    try:
        list(yaml.parse(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        fast = exc
    return _issue("yaml_syntax", f"YAML syntax error: {fast.problem or fast}", fast.problem_mark)


def _check_graph(root: yaml.Node) -> None:
    """Expanded size and depth with memoised sizes: alias bombs are measured, never expanded."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise YamlRejected(
                [_issue("too_deep", "the document nests deeper than 20 levels", node.start_mark)]
            )
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise YamlRejected(
                [_issue("alias_limit", "recursive aliases are not allowed", node.start_mark)]
            )
        in_progress.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        if total > MAX_NODES:
            raise YamlRejected(
                [
                    _issue(
                        "alias_limit",
                        "the document expands to more than 10,000 nodes",
                        node.start_mark,
                    )
                ]
            )
        in_progress.discard(key)
        sizes[key] = total
        return total

    size(root, 1)


def construct(root: yaml.Node) -> tuple[Any, SourceMap, list[Issue]]:
    """Step 3–4: plain data plus positions; duplicate or non-string keys become issues."""
    source = SourceMap()
    issues: list[Issue] = []
    scalars = yaml.SafeLoader("")

    def build(node: yaml.Node, path: str) -> Any:
        source.values[path] = Position(node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            return _coerce(scalars.construct_object(node, deep=True))
        if isinstance(node, yaml.SequenceNode):
            return [build(child, f"{path}[{i}]") for i, child in enumerate(node.value)]
        result: dict[str, Any] = {}
        assert isinstance(node, yaml.MappingNode)  # noqa: S101 - composer yields only these three
        for key_node, value_node in node.value:
            key = _key_of(key_node, path, issues)
            if key is None:
                continue
            child = f"{path}.{key}" if path else key
            if key in result:
                issues.append(
                    _issue("duplicate_key", f"'{key}' appears twice", key_node.start_mark, child)
                )
                continue
            source.keys[child] = Position(
                key_node.start_mark.line + 1, key_node.start_mark.column + 1
            )
            result[key] = build(value_node, child)
        return result

    data = build(root, "")
    scalars.dispose()
    return data, source, issues


def _key_of(node: yaml.Node, path: str, issues: list[Issue]) -> str | None:
    if isinstance(node, yaml.ScalarNode) and node.tag == _STR:
        return str(node.value).strip()
    shown = node.value if isinstance(node, yaml.ScalarNode) else "a collection"
    message = (
        "merge keys ('<<') are not supported"
        if node.tag == _MERGE
        else f"the key {shown!r} is not a string (quote it: YAML reads on/off/yes/no as booleans)"
    )
    child = f"{path}.{shown}" if path else str(shown)
    issues.append(_issue("invalid_key", message, node.start_mark, child))
    return None


def _coerce(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def read(raw: bytes | str) -> tuple[Any, SourceMap, list[Issue]]:
    return construct(compose(decode(raw)))


_DOCUMENT_MARKER = re.compile(r"^---(?:\s.*)?$")


def split_documents(text: str) -> list[tuple[int, str]]:
    """Split a multi-document YAML stream at `---` lines: (first line number, document text).

    Each part is then validated on its own, so one bad document never hides the good ones.
    """
    parts: list[tuple[int, str]] = []
    current: list[str] = []
    start = 1
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if _DOCUMENT_MARKER.match(line.rstrip("\r\n")):
            if any(item.strip() and not item.lstrip().startswith("#") for item in current):
                parts.append((start, "".join(current)))
            current, start = [], number + 1
            continue
        current.append(line)
    if any(item.strip() and not item.lstrip().startswith("#") for item in current):
        parts.append((start, "".join(current)))
    return parts
