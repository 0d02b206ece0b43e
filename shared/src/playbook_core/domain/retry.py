"""Attempts and backoff for step failures (domain.md §7.5); the queue's own retry covers infra."""

from __future__ import annotations

from typing import Literal

ErrorClass = Literal["transient", "rate_limited", "mailjet_outage", "below_threshold", "permanent"]
MAX_TRANSIENT_DELAY_S = 600.0
MAILJET_OUTAGE_DELAY_S = 3600.0
BELOW_THRESHOLD_DELAY_S = 2.0
MAX_RETRY_AFTER_S = 3600.0


def attempts_allowed(
    *, retry_on_failure: bool, step_max_retries: int | None, playbook_max_retries: int
) -> int:
    """1 + maxRetries (the step's value, else the playbook's); exactly 1 without retryOnFailure."""
    if not retry_on_failure:
        return 1
    return 1 + (step_max_retries if step_max_retries is not None else playbook_max_retries)


def retry_delay_s(
    error: ErrorClass, retry_number: int, *, retry_after_s: float | None = None, jitter: float = 1.0
) -> float | None:
    """Seconds before retry n (1-based), or None when the error is never retried.

    `jitter` is U[0.8, 1.2] in production and 1.0 in tests, so schedules stay reproducible.
    """
    if error == "permanent":
        return None
    if error == "mailjet_outage":
        return MAILJET_OUTAGE_DELAY_S
    if error == "below_threshold":
        return BELOW_THRESHOLD_DELAY_S
    if error == "rate_limited" and retry_after_s is not None and retry_after_s <= MAX_RETRY_AFTER_S:
        return max(0.0, retry_after_s)
    delay: float = min(MAX_TRANSIENT_DELAY_S, 10.0 * 2.0 ** (retry_number - 1)) * jitter
    return delay
