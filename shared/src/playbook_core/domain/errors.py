"""One error hierarchy, so every boundary maps failures to a status and a retry decision alike.

PlaybooksError (500, not retriable)
├── BadRequest (400)
│   ├── PlaybookInvalid (422, carries issues with path/line/column)
│   ├── PayloadTooLarge (413)
│   └── UnsupportedMediaType (415)
├── Unauthenticated (401)
├── Forbidden (403)
├── NotFound (404)
├── Conflict (409)
│   └── AlreadyExists (409)
├── PreconditionFailed (412)
├── RateLimited (429, retriable)
└── Unavailable (503, retriable): storage, bus or queue down
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Issue(BaseModel):
    """One validation error or warning, in the api.md §4 / domain.md §3.7 shape."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    path: str
    line: int | None
    column: int | None
    message: str

    def sort_key(self) -> tuple[int, int, str]:
        return (self.line or 0, self.column or 0, self.path)


class PlaybooksError(Exception):
    status: ClassVar[int] = 500
    retriable: ClassVar[bool] = False
    code: str = "internal"  # a class default; an instance may name a sharper problem type

    def __init__(self, detail: str = "", *, code: str | None = None) -> None:
        super().__init__(detail or code or self.code)
        self.detail = detail
        if code is not None:
            self.code = code


class BadRequest(PlaybooksError):
    status = 400
    code = "bad-request"


class PlaybookInvalid(BadRequest):
    status = 422
    code = "playbook-invalid"

    def __init__(self, errors: list[Issue], warnings: list[Issue] | None = None) -> None:
        super().__init__("Playbook definition is invalid")
        self.errors = errors
        self.warnings = warnings or []


class GenerationFailed(PlaybookInvalid):
    """The agent's draft stayed invalid after the repair rounds; carries the last draft."""

    code = "generation-failed"

    def __init__(self, errors: list[Issue], last_yaml: str | None) -> None:
        super().__init__(errors)
        self.last_yaml = last_yaml


class PayloadTooLarge(BadRequest):
    status = 413
    code = "too-large"


class UnsupportedMediaType(BadRequest):
    status = 415
    code = "unsupported-media-type"


class Unauthenticated(PlaybooksError):
    status = 401
    code = "unauthenticated"


class Forbidden(PlaybooksError):
    status = 403
    code = "forbidden"


class NotFound(PlaybooksError):
    status = 404
    code = "not-found"


class MethodNotAllowed(PlaybooksError):
    status = 405
    code = "method-not-allowed"


class Conflict(PlaybooksError):
    status = 409
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already-exists"


class PreconditionFailed(PlaybooksError):
    status = 412
    code = "precondition-failed"


class RateLimited(PlaybooksError):
    status = 429
    retriable = True
    code = "rate-limited"


class Unavailable(PlaybooksError):
    status = 503
    retriable = True
    code = "unavailable"


class ProviderError(PlaybooksError):
    """A provider call failed; `transient` ones are retried with backoff (domain.md §7.5)."""

    status = 502
    code = "provider_error"
    transient: bool = False
    retry_after_s: float | None = None

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        http_status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(detail, code=code)
        self.http_status = http_status
        self.retry_after_s = retry_after_s


class TransientProviderError(ProviderError):
    transient = True
    code = "provider_unavailable"


class PermanentProviderError(ProviderError):
    code = "provider_rejected"
