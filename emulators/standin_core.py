"""Stand-in building blocks: request and reply types, the provider base, recording and scripting."""

from __future__ import annotations

import copy
import itertools
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeGuard

if TYPE_CHECKING:
    from collections.abc import Mapping

_MODES = frozenset({"ok", "error_5xx", "error_4xx", "timeout", "malformed"})
_STATUS_RANGES = {"error_5xx": range(500, 600), "error_4xx": range(400, 500)}
_DEFAULT_STATUS = {"error_5xx": 503, "error_4xx": 400}
_BEHAVIOUR_KEYS = frozenset({"mode", "status", "times", "delayMs"})
_MAX_DELAY_MS = 60_000


@dataclass(frozen=True, slots=True)
class Request:
    """One request as a provider handler sees it; header names are lower-case."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    raw: bytes
    body: Any  # parsed JSON when the body is JSON, else the text, None when empty
    is_json: bool
    base_url: str

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    notes: Mapping[str, Any] = field(default_factory=dict)  # extra fields for the request record


def json_reply(status: int, payload: Any, **notes: Any) -> Reply:
    return Reply(status, json.dumps(payload).encode(), notes=notes)


def text_reply(status: int, text: str, **notes: Any) -> Reply:
    return Reply(status, text.encode(), "text/plain; charset=utf-8", notes=notes)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class Provider:
    """One provider's wire protocol; subclasses override `handle` and, if needed, the others."""

    name: ClassVar[str] = "provider"
    # How long `timeout` mode holds a request: past the client's own timeout for this provider.
    timeout_sleep_s: ClassVar[float] = 12.0

    def handle(self, request: Request) -> Reply:
        return json_reply(404, {"error": {"code": "not_found", "message": request.path}})

    def simulated_error(self, status: int) -> Reply:
        code = "rate_limited" if status == 429 else "simulated_error"
        message = f"stand-in answered {status} as instructed by /__behaviour"
        return json_reply(status, {"error": {"code": code, "message": message}})

    def control(self, request: Request) -> Reply | None:
        del request  # providers without their own control endpoints answer nothing extra
        return None


@dataclass(frozen=True, slots=True)
class Plan:
    """How the stand-in should answer one provider request."""

    mode: str = "ok"
    status: int | None = None
    delay_ms: int = 0

    @property
    def error_status(self) -> int | None:
        """The status to fake for error_5xx / error_4xx, None for the other modes."""
        return self.status if self.mode in _STATUS_RANGES else None


def parse_behaviour(payload: Any) -> tuple[Plan, int | None]:
    """Validate a `POST /__behaviour` body into a plan and how many requests it covers."""
    if not isinstance(payload, dict):
        raise TypeError("the behaviour must be a JSON object")
    unknown = sorted(set(payload) - _BEHAVIOUR_KEYS)
    if unknown:
        raise ValueError(f"unknown behaviour keys: {', '.join(unknown)}")
    mode = payload.get("mode", "ok")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(sorted(_MODES))}")
    status = payload.get("status")
    if status is not None and mode not in _STATUS_RANGES:
        raise ValueError("status applies only to error_5xx and error_4xx")
    if status is not None and (not is_int(status) or status not in _STATUS_RANGES[mode]):
        raise ValueError(f"status is out of range for {mode}")
    times = payload.get("times")
    if times is not None and (not is_int(times) or times < 1):
        raise ValueError("times must be a positive integer")
    delay_ms = payload.get("delayMs", 0)
    if delay_ms is None:
        delay_ms = 0
    if not is_int(delay_ms) or not 0 <= delay_ms <= _MAX_DELAY_MS:
        raise ValueError(f"delayMs must be an integer from 0 to {_MAX_DELAY_MS}")
    return Plan(mode, status if status is not None else _DEFAULT_STATUS.get(mode), delay_ms), times


class Behaviour:
    """The scripted behaviour; any change also wakes requests held by `timeout` or `delayMs`."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._plan = Plan()
        self._remaining: int | None = None
        self._generation = 0
        self._stopped = False

    def describe(self) -> dict[str, Any]:
        with self._cond:
            plan = self._plan
            return {
                "mode": plan.mode,
                "status": plan.status,
                "times": self._remaining,
                "delayMs": plan.delay_ms,
            }

    def configure(self, plan: Plan, times: int | None) -> None:
        with self._cond:
            self._plan, self._remaining = plan, times
            self._generation += 1
            self._cond.notify_all()

    def reset(self) -> None:
        self.configure(Plan(), None)

    def take(self) -> Plan:
        """Return the plan for one provider request, counting it against `times`."""
        with self._cond:
            plan = self._plan
            if self._remaining is not None:
                self._remaining -= 1
                if self._remaining <= 0:
                    self._plan, self._remaining = Plan(), None
            return plan

    def sleep(self, seconds: float) -> None:
        """Hold a request; a behaviour change or stop ends the wait early so nothing lingers."""
        with self._cond:
            generation = self._generation
            self._cond.wait_for(
                lambda: self._stopped or self._generation != generation, timeout=seconds
            )

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()


class Recorder:
    """Every provider request, in arrival order, as the control API lists it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._by_id: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def add(self, request: Request) -> str:
        with self._lock:
            record_id = f"req_{next(self._ids):06d}"
            record = {
                "id": record_id,
                "receivedAt": utc_now(),
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": request.body,
            }
            self._records.append(record)
            self._by_id[record_id] = record
            return record_id

    def annotate(self, record_id: str, notes: Mapping[str, Any]) -> None:
        with self._lock:
            record = self._by_id.get(record_id)
            if record is not None:
                record.update(notes)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._records)

    def clear(self) -> int:
        with self._lock:
            count = len(self._records)
            self._records.clear()
            self._by_id.clear()
            return count
