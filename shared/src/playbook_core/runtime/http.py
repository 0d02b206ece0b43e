"""The HTTP boundaries: problem+json for the API, ack-or-503 for Cloud Tasks targets."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from flask import Request, Response
from pydantic import BaseModel, ValidationError

from playbook_core.domain.errors import (
    BadRequest,
    GenerationFailed,
    Issue,
    PlaybookInvalid,
    PlaybooksError,
)
from playbook_core.domain.normal_forms import rfc3339

PROBLEM_BASE = "https://bakedbot.ai/problems/"
_log = logging.getLogger("playbooks.http")
M = TypeVar("M", bound=BaseModel)


def _wire(value: Any) -> Any:
    """JSON for what the store returns: instants as RFC 3339 with `Z` (api.md conventions)."""
    if isinstance(value, datetime):
        return rfc3339(value)
    return str(value)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, default=_wire), status=status, mimetype="application/json", headers=headers
    )


def problem(
    status: int,
    code: str,
    title: str,
    detail: str = "",
    *,
    errors: list[Issue] | None = None,
    warnings: list[Issue] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "errors": [e.model_dump() for e in errors or []],
        "warnings": [w.model_dump() for w in warnings or []],
    }
    return Response(
        json.dumps(body), status=status, mimetype="application/problem+json", headers=headers
    )


def problem_for(error: PlaybooksError) -> Response:
    if isinstance(error, GenerationFailed):
        response = problem(
            error.status, error.code, "The generated playbook is invalid",
            errors=error.errors, warnings=error.warnings,
        )  # fmt: skip
        body = json.loads(response.get_data())
        response.set_data(json.dumps({**body, "yaml": error.last_yaml}))
        return response
    if isinstance(error, PlaybookInvalid):
        return problem(
            error.status, error.code, "Playbook definition is invalid",
            errors=error.errors, warnings=error.warnings,
        )  # fmt: skip
    headers = {"Retry-After": "30"} if error.status == 503 else None
    title = type(error).__name__.replace("_", " ")
    return problem(error.status, error.code, title, error.detail, headers=headers)


def http_boundary(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """Domain errors become problem+json; anything else is a logged 500 without internals."""

    @functools.wraps(handler)
    def wrapped(request: Request) -> Response:
        try:
            return handler(request)
        except PlaybooksError as error:
            return problem_for(error)
        except Exception:  # noqa: BLE001 - the boundary: never leak internals, always log
            _log.exception("unhandled error in %s", handler.__name__)
            return problem(500, "internal", "Internal error", "the request could not be completed")

    return wrapped


def task_boundary(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """Cloud Tasks: only infrastructure errors answer 503 (the queue retries); the rest ack."""

    @functools.wraps(handler)
    def wrapped(request: Request) -> Response:
        try:
            return handler(request)
        except PlaybooksError as error:
            if error.retriable:
                _log.warning("task retried: %s", error.detail or error.code)
                return problem(503, error.code, "Unavailable", error.detail)
            _log.error("task dropped: %s", error.detail or error.code)
            return json_response({"acknowledged": True, "error": error.code})

    return wrapped


def read_model(request: Request, model: type[M]) -> M:
    """Strict JSON body → model, or BadRequest naming the first problem."""
    try:
        return model.model_validate_json(request.get_data(cache=True))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadRequest(f"invalid body at '{where}': {first['msg']}") from exc
