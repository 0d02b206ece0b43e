"""Internal entry points check their caller's OIDC token before the body is read.

Cloud Tasks, Cloud Scheduler and Pub/Sub push attach a Google-signed token; which identities may
call which function is `bootstrap.INTERNAL_CALLERS`, and `App.check_caller` verifies it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import flask
from flask import Request, Response

from playbook_core.domain.errors import PlaybooksError
from playbook_core.runtime.bootstrap import app
from playbook_core.runtime.http import problem_for

_log = logging.getLogger("playbooks.functions")


def _refusal(function: str, request: Request) -> Response | None:
    """The caller's OIDC token (bootstrap.INTERNAL_CALLERS), checked before the body is read."""
    try:
        app().check_caller(function, request.headers.get("Authorization"))
    except PlaybooksError as error:
        _log.warning("%s refused its caller: %s", function, error.detail or error.code)
        return problem_for(error)
    return None


def internal(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """Cloud Tasks and Cloud Scheduler targets: 401/403 for a refused caller, never an ack."""

    @functools.wraps(handler)
    def wrapped(request: Request) -> Response:
        refused = _refusal(handler.__name__, request)
        return handler(request) if refused is None else refused

    return wrapped


def internal_event(handler: Callable[[Any], None]) -> Callable[[Any], None]:
    """Pub/Sub push targets: a refused push answers 401/403 (never a 500).

    Pub/Sub does not ack it: it is redelivered with backoff and dead-lettered after
    maxDeliveryAttempts, so a misconfigured caller is visible and its messages are kept.
    """

    @functools.wraps(handler)
    def wrapped(event: Any) -> None:
        refused = _refusal(handler.__name__, flask.request)
        if refused is not None:
            flask.abort(refused)
        handler(event)

    return wrapped
