"""JSON-lines logging with Cloud Logging severities and bound ids (executionId, orgId, ...).

Every line is redacted on its way out: a URL keeps only its scheme and host (Slack incoming
webhooks carry their credential in the path), and credential-shaped values are masked.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_BOUND: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "bound", default=None
)
_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}
ALERT = logging.CRITICAL + 10
logging.addLevelName(ALERT, "ALERT")
_SEVERITY[ALERT] = "ALERT"
# HTTP client loggers write each request's full URL at INFO (httpx: `HTTP Request: POST <url>`).
QUIETED = ("httpx", "httpcore", "urllib3", "requests", "google.auth.transport")

MASK = "[redacted]"
# No `\b` before the scheme: a URL glued to a word is still a URL; `://` alone is one too.
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]{0,15})?://(?P<rest>[^\s\"'<>\\`]*)")
_PATH_START = re.compile(r"[/?#]")
_TRAILING = re.compile(r"[.,;:!?)\]}]+$")  # sentence punctuation after a URL is not part of it
_SCRUBS = (
    # Authorization header values, however they reached the text.
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {MASK}"),
    (re.compile(r"\b(Basic)\s+[A-Za-z0-9+/]{8,}=*"), rf"\1 {MASK}"),
    # key=…, api_key=…, client_secret=…, access_token=…, password=…, sig=… (query or form text).
    (
        re.compile(
            r"(?i)\b([A-Za-z0-9_.-]*(?:key|token|secret|password|passwd|pwd|signature|sig"
            r"|credentials?|auth))=[^\s&\"',;)]+"
        ),
        rf"\1={MASK}",
    ),
    # JWTs (signed, or the emulator's `alg: none` ones with an empty signature).
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # Slack tokens, and a Slack webhook path that reached the text without its scheme and host.
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+"), MASK),
    (
        re.compile(r"(?i)services(/|%2F)T[A-Z0-9_]+(?:/|%2F)B[A-Z0-9_]+(?:/|%2F)[A-Z0-9_-]+"),
        rf"services\1{MASK}",
    ),
)
# Field names whose values are credentials whatever they look like (X-Cron-Secret, apiKey, ...).
_SECRET_FIELD = re.compile(
    r"(?i)secret|token|passw|authorization|api_?key|credential|cookie|signature"
)


def redact(text: str) -> str:
    """`text` with every URL cut to scheme://host and credential-shaped values masked."""
    return _scrub(_URL.sub(_origin, text))


def _origin(match: re.Match[str]) -> str:
    rest = match["rest"]
    trailing = _TRAILING.search(rest)
    if trailing:
        rest = rest[: trailing.start()]
    cut = _PATH_START.search(rest)
    netloc = rest[: cut.start()] if cut else rest
    host = netloc.rpartition("@")[2]  # userinfo (user:password@) is dropped
    # Path, query and fragment go whole: no heuristic can tell a word from a token there.
    scheme = match["scheme"] or ""
    return f"{scheme}://{host}{'/…' if cut else ''}{trailing.group() if trailing else ''}"


def _scrub(text: str) -> str:
    for pattern, replacement in _SCRUBS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any, key: str = "") -> Any:
    """A log field, redacted all the way down; anything not JSON-native is logged as its str."""
    if key and _SECRET_FIELD.search(key) and value not in (None, "", True, False):
        return MASK
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, record.levelname),
            "message": redact(record.getMessage()),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
            **redact_value(_BOUND.get() or {}),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            entry.update(redact_value(fields))
        if record.exc_info and record.exc_info[0] is not None:
            # The class only: exception texts carry URLs (httpx puts the request URL in them).
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: int = logging.INFO) -> None:
    """One stdout handler on the root logger; idempotent, as tests may bootstrap twice."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    for name in QUIETED:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


@contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    """Attach ids to every log line written inside the block."""
    token = _BOUND.set({**(_BOUND.get() or {}), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _BOUND.reset(token)


def event(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    logger.log(level, message, extra={"fields": fields})
