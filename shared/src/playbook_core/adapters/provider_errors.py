"""How an HTTP provider's failures become the provider errors the engine acts on (domain.md §11).

A `TransientProviderError` is retried later, a `PermanentProviderError` recorded. Mailjet, Blackleaf
and Slack class a call that got no answer the same way; Mailjet and Blackleaf also class statuses
alike, each wording only its own refusals. Details name an error class, never `str(exc)`: the
detail is logged and stored, and httpx texts hold URLs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from playbook_core.domain.errors import (
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)

PROTOCOL_ERROR = "provider_protocol_error"


@contextmanager
def unanswered(
    provider: str,
    *,
    outage: str,
    unusable_url: str,
    not_configured: str = "provider_not_configured",
    chain: bool = True,
) -> Iterator[None]:
    """A call that got no answer, as a provider error.

    A URL that can never work is configuration (`unusable_url`, code `not_configured`), not an
    outage worth a retry; a timeout or a failed connection is an outage (code `outage`). With
    `chain=False` the httpx error is not chained: it carries the request, whose URL may be a
    secret, and a logged traceback would print it.
    """
    try:
        yield
    except (httpx.TransportError, httpx.InvalidURL) as exc:
        error: ProviderError
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            error = PermanentProviderError(unusable_url, code=not_configured)
        elif isinstance(exc, httpx.TimeoutException):
            error = TransientProviderError(f"{provider} timed out", code=outage)
        else:
            error = TransientProviderError(
                f"{provider} is unreachable ({type(exc).__name__})", code=outage
            )
        raise error from (exc if chain else None)


def raise_for_status(
    response: httpx.Response,
    provider: str,
    *,
    outage: str,
    refused: Callable[[httpx.Response], PermanentProviderError],
) -> None:
    """Return on a 2xx, else raise: `refused(response)` words the provider's own 4xx refusals."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429:
        raise TransientProviderError(
            f"{provider} rate-limited the request",
            code="rate_limited",
            http_status=status,
            retry_after_s=retry_after_seconds(response.headers),
        )
    # 408 is the server giving up on a slow request: the same situation as our own timeout.
    if status >= 500 or status == 408:
        raise TransientProviderError(
            f"{provider} answered {status}", code=outage, http_status=status
        )
    if status < 400:  # 1xx/3xx: nothing the providers document for their endpoints
        raise PermanentProviderError(
            f"{provider} answered an unexpected {status}", code=PROTOCOL_ERROR, http_status=status
        )
    raise refused(response)


def json_body(response: httpx.Response, provider: str) -> Any:
    """The answer's JSON; a body that is not JSON is a protocol error, not worth a retry."""
    try:
        return response.json()
    except ValueError as exc:
        raise PermanentProviderError(
            f"{provider} answered {response.status_code} with a body that is not JSON",
            code=PROTOCOL_ERROR,
            http_status=response.status_code,
        ) from exc


def retry_after_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP-date; None when absent/bad."""
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means exactly that
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None
