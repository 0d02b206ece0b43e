"""Text matching for content rules: whole-word terms, pack regexes, normalised containment."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import cache

_PLACEHOLDER = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_SPACES = re.compile(r"\s+")
_TYPOGRAPHIC = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-"})

Span = tuple[int, int]


def mask_placeholders(text: str) -> str:
    """`{{ ... }}` placeholders blanked out with spaces, so offsets stay those of the text."""
    return _PLACEHOLDER.sub(lambda match: " " * len(match[0]), text)


def normalise(text: str) -> str:
    """Casefolded, NFKC, typographic quotes and dashes made plain, whitespace runs collapsed."""
    plain = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHIC).casefold()
    return _SPACES.sub(" ", plain).strip()


def contains(text: str, phrase: str) -> bool:
    return normalise(phrase) in normalise(text)


def _phrase(words: str) -> str:
    # Any run of whitespace between words matches, as a line break may split a phrase.
    return r"\s+".join(re.escape(word) for word in words.split())


@cache
def _terms(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    if not terms:
        return None
    # Longest first, so "buy one get one free" wins over "free" where both start.
    alternatives = "|".join(_phrase(term) for term in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def hits(
    text: str, terms: Sequence[str], patterns: Sequence[str], protected: Sequence[Span] = ()
) -> list[Span]:
    """Spans of forbidden terms and patterns, leaving out any that overlap a protected span."""
    found: set[Span] = set()
    matchers = [_terms(tuple(terms))] + [_regex(pattern) for pattern in patterns]
    for matcher in matchers:
        if matcher is None:
            continue
        for match in matcher.finditer(text):
            span = match.span()
            if span[0] < span[1] and not _overlaps(span, protected):
                found.add(span)
    return sorted(found)


def spans_of(text: str, phrases: Iterable[str]) -> list[Span]:
    """Where the phrases occur (case-insensitive, flexible whitespace)."""
    spans: list[Span] = []
    for phrase in phrases:
        if phrase.strip():
            regex = _regex(_phrase(phrase))
            spans += [match.span() for match in regex.finditer(text)]
    return spans


def _overlaps(span: Span, others: Sequence[Span]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in others)
