"""The dashboard API's router: path templates, authentication, body decoding, org checks."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from flask import Request, Response
from pydantic import BaseModel

from playbook_core.domain import page_tokens, strict_json
from playbook_core.domain.access import (
    SYSTEM,
    Caller,
    require_approver,
    require_editor,
    require_org,
    require_reader,
    require_system,
)
from playbook_core.domain.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PlaybookInvalid,
    Unauthenticated,
    UnsupportedMediaType,
)
from playbook_core.domain.ids import is_path_id
from playbook_core.runtime.contract import read_body

if TYPE_CHECKING:
    from playbook_core.runtime.bootstrap import App

# Who may call a route (api.md §3 caller groups). The router checks it, and for `{orgId}` routes
# the caller's membership of that org, before any handler runs: before a body is read, a query is
# parsed or a store is called, so a caller who may not be here always gets 401/403 first.
Access = Literal["public", "signed-in", "reader", "editor", "approver", "system"]
MAX_BODY = 1024 * 1024
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
MAX_QUERY_VALUE = 1024  # bytes: Firestore refuses filter values near its 1,500-byte index limit
YAML_TYPES = ("application/yaml", "text/yaml", "application/x-yaml")
_PARAM = re.compile(r"\{([A-Za-z]+)\}")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Call:
    request: Request
    app: App
    caller: Caller
    params: dict[str, str]

    def query(self, name: str, default: str | None = None) -> str | None:
        return self.request.args.get(name, default)

    def page(self) -> tuple[int, str | None]:
        """`pageSize` and `pageToken`, as every list route takes them (AIP-158).

        Missing, empty or 0 → the default (50); above the maximum → coerced to 100; negative or
        not a whole number → 400.
        """
        size = self.query("pageSize") or ""
        if size and not (size.isascii() and size.isdigit()):  # "-1", "ten", "1.5", "+3", " "
            raise BadRequest("pageSize is a whole number: 0 or missing for 50, at most 100")
        number = int(size) if size else 0
        token = self.query("pageToken")
        if token is not None:
            page_tokens.decode(token)  # tampered: a 400 `invalid-page-token` before any store call
        return (min(number, MAX_PAGE_SIZE) if number else DEFAULT_PAGE_SIZE), token

    def json_body(self) -> Any:
        """Strict JSON (domain/strict_json): a 400 for bad syntax, text or a repeated key."""
        body = _raw_body(self.request)
        if not body:
            return {}
        if "json" not in self.request.mimetype:
            raise UnsupportedMediaType("send application/json")
        return strict_json.loads(body)

    def body(self, model: type[M]) -> M:
        """The JSON body checked against the route's request model (runtime/contract): else 400."""
        return read_body(model, self.json_body())

    def definition_body(self, *, many: bool = False) -> tuple[str, bytes | Any]:
        """('yaml', raw bytes) for YAML bodies or {yaml}; ('json', data) for JSON definitions.

        A repeated key is a 422 `duplicate_key` issue, as in YAML. `many` (import): raw bytes of
        either kind, so the importer refuses only the documents that repeat a key.
        """
        body = _raw_body(self.request)
        if self.request.mimetype in YAML_TYPES:
            return "yaml", body
        if many:
            if body and "json" not in self.request.mimetype:
                raise UnsupportedMediaType("send application/json or application/yaml")
            return "json", body
        try:
            data = self.json_body()
        except strict_json.RepeatedKeys as repeated:
            raise PlaybookInvalid(repeated.issues) from None
        if isinstance(data, dict) and set(data) == {"yaml"} and isinstance(data["yaml"], str):
            return "yaml", data["yaml"].encode("utf-8")
        return "json", data


def _raw_body(request: Request) -> bytes:
    if (request.content_length or 0) > MAX_BODY:
        raise PayloadTooLarge("the body is larger than 1 MiB")
    body = request.get_data(cache=True)
    if len(body) > MAX_BODY:
        raise PayloadTooLarge("the body is larger than 1 MiB")
    return body


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Callable[[Call], Response]
    access: Access
    summary: str
    status: int
    regex: re.Pattern[str] = field(compare=False)
    body: type[BaseModel] | None = None  # the request body's model (runtime/contract.py)
    answer: type[BaseModel] | None = None  # the main answer's model; None: no JSON body

    @property
    def auth(self) -> Literal["public", "user"]:
        return "public" if self.access == "public" else "user"


ROUTES: list[Route] = []


def route(
    method: str,
    template: str,
    *,
    access: Access,
    summary: str,
    status: int = 200,
    body: type[BaseModel] | None = None,
    answer: type[BaseModel] | None = None,
) -> Callable[[Callable[[Call], Response]], Callable[[Call], Response]]:
    pieces = _PARAM.split(template)  # literal, name, literal, name, ...
    pattern = "".join(
        f"(?P<{piece}>[A-Za-z0-9_.-]+)" if index % 2 else re.escape(piece)
        for index, piece in enumerate(pieces)
    )

    if access in ("reader", "editor", "approver") and "{orgId}" not in template:
        raise TypeError(f"a {access} route needs an {{orgId}} in its path: {template}")

    def register(handler: Callable[[Call], Response]) -> Callable[[Call], Response]:
        ROUTES.append(
            Route(
                method,
                template,
                handler,
                access,
                summary,
                status,
                re.compile(f"^{pattern}$"),
                body,
                answer,
            )
        )
        return handler

    return register


def authenticate(request: Request, app: App) -> Caller:
    secret = app.settings.cron_secret
    presented = request.headers.get("X-Cron-Secret")
    if presented is not None:
        if secret and hmac.compare_digest(presented.encode(), secret.get_secret_value().encode()):
            return SYSTEM
        raise Unauthenticated("the system secret is wrong")
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or not token.isascii():  # JWTs are ASCII
        raise Unauthenticated("send Authorization: Bearer <Firebase ID token>")
    claims = app.tokens.verify(token.strip())
    org_ids = {str(claims["orgId"])} if claims.get("orgId") else set()
    if isinstance(claims.get("orgIds"), list):
        org_ids |= {str(org) for org in claims["orgIds"]}
    return Caller(
        uid=str(claims["sub"]),
        role=str(claims.get("role", "")),
        org_ids=frozenset(org_ids),
        approver=claims.get("playbookApprover") is True,
    )


def authorize(caller: Caller, access: Access, org_id: str | None) -> None:
    """The route's caller group and, on `/v1/orgs/{orgId}/…`, membership of that org: 403."""
    if org_id is not None:
        require_org(caller, org_id)
    if access == "system":
        require_system(caller)
    elif access in ("reader", "editor", "approver") and org_id is not None:  # route() checks
        {"reader": require_reader, "editor": require_editor, "approver": require_approver}[access](
            caller, org_id
        )


def all_routes() -> list[Route]:
    """Every route; importing the route modules registers them (once)."""
    from playbook_core.runtime import (  # noqa: F401, PLC0415
        api_analytics,
        api_compliance,
        api_consent,
        api_events,
        api_executions,
        api_graph,
        api_org,
        api_playbooks,
        api_runs,
        api_sources,
    )

    return ROUTES


def _check_query(request: Request) -> None:
    for name, value in request.args.items(multi=True):
        if len(value.encode()) > MAX_QUERY_VALUE:
            raise BadRequest(f"the query parameter {name[:100]!r} is longer than 1,024 bytes")


def dispatch(request: Request, app: App) -> Response:
    path = request.path.rstrip("/") or "/"
    allowed: list[str] = []
    for candidate in all_routes():
        match = candidate.regex.match(path)
        if match is None:
            continue
        if candidate.method != request.method:
            allowed.append(candidate.method)
            continue
        caller = SYSTEM if candidate.access == "public" else authenticate(request, app)
        params = match.groupdict()
        # An id no document can have (`.`, `..`, `__x__`, too long) names nothing: 404, as for any
        # unknown id, and before a store call turns Firestore's refusal into a 500.
        if not all(is_path_id(value) for value in params.values()):
            raise NotFound("an id in the path cannot name anything")
        authorize(caller, candidate.access, params.get("orgId"))
        _check_query(request)
        return candidate.handler(Call(request, app, caller, params))
    if allowed:
        raise MethodNotAllowed(f"use {', '.join(sorted(set(allowed)))} here")
    raise NotFound(f"no route for {request.method} {request.path}")
