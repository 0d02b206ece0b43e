"""Character rules for every way text comes in: strict UTF-8, and which characters are refused.

Refused everywhere: C0 controls except tab, LF and CR, DEL, C1 controls (U+0080–U+009F, including
NEL U+0085) and the Unicode line and paragraph separators U+2028 and U+2029. They are invisible,
break headers and logs, and YAML reads NEL and U+2028/9 as line breaks.
"""

from __future__ import annotations

import re

CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
# Also refused inside one-line values: the three controls that multi-line text may hold.
LINE_BREAK = re.compile("[\t\n\r]")
_NOT_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class Undecodable(ValueError):
    """Bytes that are not UTF-8; line and column (1-based) of the first bad byte."""

    def __init__(self, line: int, column: int) -> None:
        super().__init__(f"not valid UTF-8 at line {line}, column {column}")
        self.line = line
        self.column = column


def utf8(data: bytes) -> str:
    """Strict UTF-8: never replacement characters, which would change the author's text."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8")  # the valid prefix
        line, column = line_column(before, len(before))
        raise Undecodable(line, column) from None


def line_column(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of `text[index]`, counting columns in characters."""
    index = min(index, len(text))
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def code_point(char: str) -> str:
    return f"U+{ord(char):04X}"


def one_line(text: str) -> str:
    """For a header such as a subject: every run of controls and line breaks becomes one space."""
    return _NOT_ONE_LINE.sub(" ", text).strip()
