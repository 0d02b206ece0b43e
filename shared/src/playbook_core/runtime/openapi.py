"""The OpenAPI 3.1 document of playbooks_api, generated from the router so the two cannot drift.

`make openapi` writes runtime/openapi.json (checked in, served at /v1/openapi.json); a test fails
when the checked-in file differs from what the routes say.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from playbook_core import compliance_rules
from playbook_core.domain.lifecycle import Status
from playbook_core.domain.playbook import Agent, Category
from playbook_core.domain.records import DeliveryStatus, EventOutcome, ExecutionStatus, SkipReason
from playbook_core.runtime import contract
from playbook_core.runtime.api import all_routes

_PARAM = re.compile(r"\{([A-Za-z]+)\}")
PAGE_SIZE = {
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
    "description": "Items per page (AIP-158): missing or 0 → 50; above 100 → 100; negative or not "
    "a whole number → 400.",
    "example": "50",
}
PAGE_TOKEN = {
    "schema": {"type": "string", "maxLength": 1024},
    "description": "The nextPageToken of the previous page, unchanged; anything else → 400.",
    "example": "eyJjIjoiMjAyNi0xMS0yNFQxMjowMDowMFoifQ",
}
_DAY = {"type": "string", "format": "date"}


def _enum(values: list[str], description: str, example: str | None = None) -> dict[str, Any]:
    return {
        "schema": {"type": "string", "enum": values},
        "description": description,
        "example": example or values[0],
    }


def _choices(alias: Any) -> list[str]:
    return list(get_args(alias))


_PLAYBOOK_STATUS = _enum(_choices(Status), "Only playbooks in this lifecycle state")
_FROM = {
    "schema": _DAY,
    "description": "First local date; default 30 days back",
    "example": "2026-11-01",
}
_TO = {
    "schema": _DAY,
    "description": "Last local date; default today (org zone)",
    "example": "2026-11-30",
}
_EXPORT = _enum(["yaml", "json"], "Download format")
# Query parameters each route reads: name → schema, description and example.
QUERY: dict[str, dict[str, dict[str, Any]]] = {
    "GET /v1/orgs/{orgId}/playbooks": {
        "view": _enum(
            ["auto", "brand", "dispensary", "all"],
            "Which kind of playbooks a list shows. `brand`: the ones the org's users made "
            "(created, imported, cloned, duplicated; isCustom true). `dispensary`: the registry "
            "playbooks the org's tier brought (isCustom false). `all`: both. `auto` (default) "
            "picks by the caller's role: dispensary roles → dispensary, other roles → brand, "
            "super users → all. A list that looks empty may hold the other kind: ask for "
            "`view=all`.",
        ),
        "status": _PLAYBOOK_STATUS,
        "category": _enum(_choices(Category), "Only this category", "marketing"),
        "agent": _enum(_choices(Agent), "Only playbooks run by this agent", "craig"),
        "q": {
            "schema": {"type": "string", "maxLength": 200},
            "description": "Words that must all start a word of the name, description or tags",
            "example": "thank",
        },
        "pageSize": PAGE_SIZE,
        "pageToken": PAGE_TOKEN,
    },
    "GET /v1/orgs/{orgId}/playbooks/{playbookId}:export": {"format": _EXPORT},
    "GET /v1/orgs/{orgId}/playbooks:export": {"format": _EXPORT},
    "DELETE /v1/orgs/{orgId}/playbooks/{playbookId}": {
        "confirm": _enum(["true"], "Required: a delete without confirm=true is refused (400)")
    },
    "GET /v1/orgs/{orgId}/graph": {
        "format": _enum(["json", "mermaid"], "JSON nodes and edges, or Mermaid text"),
        "includeInactive": _enum(["false", "true"], "Also draw inactive playbooks"),
    },
    "POST /v1/admin/seed-playbooks": {
        "force": _enum(["false", "true"], "Rewrite templates that are already there")
    },
    "GET /v1/orgs/{orgId}/analytics/playbooks": {"from": _FROM, "to": _TO},
    "GET /v1/orgs/{orgId}/playbooks/{playbookId}/analytics": {"from": _FROM, "to": _TO},
    "GET /v1/orgs/{orgId}/events": {
        "name": {
            "schema": {"type": "string", "maxLength": 200},
            "description": "Only this event (canonical or platform name)",
            "example": "order.created",
        },
        "outcome": _enum(_choices(EventOutcome), "Only events with this outcome"),
        "from": {
            "schema": {"type": "string", "format": "date-time"},
            "description": "Only events received at or after this instant",
            "example": "2026-11-24T00:00:00Z",
        },
        "pageSize": PAGE_SIZE,
        "pageToken": PAGE_TOKEN,
    },
    "GET /v1/orgs/{orgId}/executions": {
        "playbookId": {
            "schema": {"type": "string", "maxLength": 1024},
            "description": "Only this playbook's runs",
            "example": "pb_7d1c2e",
        },
        "status": _enum(_choices(ExecutionStatus), "Only runs in this state"),
        "pageSize": PAGE_SIZE,
        "pageToken": PAGE_TOKEN,
    },
    "GET /v1/orgs/{orgId}/approvals": {
        "status": _enum(_choices(contract.ApprovalStatus), "Only approvals in this state"),
        "pageSize": PAGE_SIZE,
        "pageToken": PAGE_TOKEN,
    },
    "GET /v1/orgs/{orgId}/deliveries": {
        "status": _enum(_choices(DeliveryStatus), "Only deliveries in this state"),
        "reason": _enum(_choices(SkipReason), "Only skipped sends with this reason"),
        "playbookId": {
            "schema": {"type": "string", "maxLength": 1024},
            "description": "Only this playbook's deliveries",
            "example": "pb_7d1c2e",
        },
        "pageSize": PAGE_SIZE,
        "pageToken": PAGE_TOKEN,
    },
    "GET /v1/orgs/{orgId}/webhook-sources": {"pageSize": PAGE_SIZE, "pageToken": PAGE_TOKEN},
    "GET /v1/orgs/{orgId}/customers/{customerId}/consent": {
        "pageSize": PAGE_SIZE,
        "pageToken": PAGE_TOKEN,
    },
    "POST /v1/orgs/{orgId}/playbooks/{playbookId}:dryRun": {
        "wait": _enum(["false", "true"], "Wait up to 25 s for the run and answer its trace"),
    },
    "GET /v1/compliance/rules": {
        "jurisdiction": _enum(
            [pack.jurisdiction for pack in compliance_rules.packs()],
            "Only this rule pack: US (federal) or a state",
            "CA",
        ),
        "channel": _enum(["email", "sms"], "Only rules for this channel"),
    },
}
HEADERS: dict[str, list[dict[str, Any]]] = {
    "PUT /v1/orgs/{orgId}/playbooks/{playbookId}": [
        {
            "name": "If-Match",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "The ETag of the GET this edit started from: 412 if it changed since",
            "example": '"5"',
        }
    ],
    "POST /v1/orgs/{orgId}/playbooks/{playbookId}:run": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": 255},
            "description": "The same key within 24 h answers the same execution",
            "example": "run-2026-11-24-1",
        }
    ],
}
_PATH_PARAMS = {
    "orgId": ("The organization", "org_demo"),
    "playbookId": ("A playbook of the organization", "pb_7d1c2e"),
    "executionId": ("A run of the organization", "ev_3f2a9c"),
    "sourceId": ("A webhook source of the organization", "src_4b1e"),
    "customerId": ("A customer of the organization", "cus_1"),
    "version": ("A version number, from 1", "2"),
}
# Answers that are text, not JSON: route → media types.
TEXT = {
    "GET /v1/orgs/{orgId}/playbooks/{playbookId}": {
        "application/yaml": "With Accept: application/yaml"
    },
    "GET /v1/orgs/{orgId}/playbooks/{playbookId}:export": {
        "application/yaml": "format=yaml (default)",
        "application/json": "format=json",
    },
    "GET /v1/orgs/{orgId}/playbooks:export": {
        "application/yaml": "format=yaml (default): one document per playbook",
        "application/json": "format=json: an array",
    },
    "GET /v1/orgs/{orgId}/graph": {"text/plain": "format=mermaid: a Mermaid flowchart"},
    "GET /v1/openapi.json": {"application/json": "This document"},
}
# Success answers besides a route's main one.
ALSO: dict[str, dict[str, tuple[str, type[BaseModel] | None]]] = {
    "DELETE /v1/orgs/{orgId}/playbooks/{playbookId}": {
        "200": ("Already deleted: a repeat delete answers the archived playbook", contract.Playbook)
    },
    "POST /v1/orgs/{orgId}/playbooks/{playbookId}:dryRun": {
        "200": ("wait=true and the run finished: its status and trace", contract.DryRunResult)
    },
}
_ERRORS = {
    "400": ("bad-request", "The request is malformed: a body, query value or page token"),
    "401": ("unauthenticated", "No valid Firebase ID token or system secret"),
    "403": ("forbidden", "The caller may not do this in this organization"),
    "404": ("not-found", "Nothing with that id in this organization"),
    "409": ("conflict", "The resource is not in a state that allows this"),
    "412": ("precondition-failed", "If-Match named an older revision"),
    "413": ("too-large", "The body is larger than 1 MiB (or an import holds over 200 documents)"),
    "415": ("unsupported-media-type", "Send application/json (or application/yaml)"),
    "422": ("playbook-invalid", "The definition or settings are invalid: see errors"),
    "429": ("rate-limited", "Too many requests; retry after Retry-After seconds"),
    "502": ("provider_error", "A provider (the agent harness) failed or answered nonsense"),
    "503": ("unavailable", "A dependency is down; retry after Retry-After seconds"),
}
PROBLEM = {
    "type": "object",
    "description": "An RFC 9457 problem (docs/api.md §4)",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {
            "type": "string",
            "description": "The problem type; its last segment is the code",
            "examples": ["https://bakedbot.ai/problems/playbook-invalid"],
        },
        "title": {"type": "string", "examples": ["Playbook definition is invalid"]},
        "status": {"type": "integer", "minimum": 400, "maximum": 599, "examples": [422]},
        "detail": {"type": "string", "examples": ["steps[0].params.subject is required"]},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Issue"}},
        "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/Issue"}},
        "yaml": {"type": "string", "description": ":generate only: the last draft"},
    },
}
ROLES = (
    "Roles (the Firebase token's `role` claim; `orgId`/`orgIds` name the caller's orgs). "
    "`reader` routes: brand, brand_admin, dispensary, dispensary_admin, brand_member, "
    "dispensary_staff. `editor` routes: brand, brand_admin, dispensary, dispensary_admin. "
    "`approver` routes: editors and users with the `playbookApprover: true` claim. `system` "
    "routes: the existing app's server (X-Cron-Secret) or super_user. super_user may do "
    "everything in every org; `signed-in`: any valid token; `public`: no credentials. "
    "Each operation's `x-access` names its group."
)
EXAMPLE_PLAYBOOK = {
    "name": "Thank-you email",
    "agent": "craig",
    "category": "marketing",
    "triggers": [{"id": "on_complete", "type": "event", "eventName": "order.completed"}],
    "steps": [
        {
            "id": "email",
            "action": "send_email",
            "params": {
                "to": "{{ customer.email }}",
                "subject": "Thanks for your order",
                "body": "Hi {{ customer.firstName }}, thanks for shopping with us.",
                "transactional": False,
            },
        }
    ],
}
_YAML_EXAMPLE = (
    "name: Thank-you email\nagent: craig\ntriggers:\n  - type: event\n    eventName: "
    "order.completed\n"
)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def example(schema: dict[str, Any], schemas: dict[str, Any]) -> Any:  # noqa: C901, PLR0911
    """An example built from the fields' own examples, enums and defaults."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in ("PlaybookDefinition", "PlaybookInput"):
            return EXAMPLE_PLAYBOOK
        return example(schemas[name], schemas)
    if "examples" in schema:
        return schema["examples"][0]
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for union in ("anyOf", "oneOf"):
        if union in schema:
            branches = [b for b in schema[union] if b.get("type") != "null"]
            return example(branches[0], schemas) if branches else None
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            name: example(field, schemas)
            for name, field in schema.get("properties", {}).items()
            if name in schema.get("required", []) or "examples" in field
        }
    if kind == "array":
        return [example(schema.get("items", {}), schemas)]
    return {"string": "text", "integer": 1, "number": 0.5, "boolean": True}.get(str(kind))


def _json(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    return {"schema": _ref(model), "example": example(_ref(model), schemas)}


def _request_body(route: Any, schemas: dict[str, Any]) -> dict[str, Any] | None:
    model = route.body
    if model is None:
        return None
    if model is not contract.PlaybookInput:
        return {
            "required": model is not contract.RunBody,
            "content": {"application/json": _json(model, schemas)},
        }
    if route.template.endswith(":import"):
        json_schema = {
            "oneOf": [_ref(model), {"type": "array", "items": _ref(model), "maxItems": 200}]
        }
        yaml = "One or more YAML documents separated by ---; at most 200"
    else:
        json_schema = {
            "oneOf": [
                _ref(model),
                {
                    "type": "object",
                    "required": ["yaml"],
                    "additionalProperties": False,
                    "properties": {
                        "yaml": {"type": "string", "description": "The definition as YAML"}
                    },
                },
            ]
        }
        yaml = "The definition as YAML"
    return {
        "required": True,
        "content": {
            "application/json": {"schema": json_schema, "example": EXAMPLE_PLAYBOOK},
            "application/yaml": {
                "schema": {"type": "string", "description": yaml},
                "example": _YAML_EXAMPLE,
            },
        },
    }


def _parameters(key: str, template: str) -> list[dict[str, Any]]:
    path = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": _PATH_PARAMS[name][0],
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$", "maxLength": 1500},
            "example": _PATH_PARAMS[name][1],
        }
        for name in _PARAM.findall(template)
    ]
    query = [
        {"name": name, "in": "query", "required": False, **spec}
        for name, spec in QUERY.get(key, {}).items()
    ]
    return path + query + HEADERS.get(key, [])


def _text_schema(media: str, description: str) -> dict[str, Any]:
    if media == "text/plain":
        return {"type": "string", "description": description}
    if media == "application/yaml":  # clients that parse YAML get the definition's shape
        return {"description": description}
    return {"type": ["object", "array"], "description": description}


def _operation(route: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    key = f"{route.method} {route.template}"
    main: dict[str, Any] = {"description": route.summary}
    content = {}
    if route.answer is not None:
        content["application/json"] = _json(route.answer, schemas)
    for media, description in TEXT.get(key, {}).items():
        content.setdefault(media, {"schema": _text_schema(media, description)})
    if content:
        main["content"] = content
    responses: dict[str, Any] = {str(route.status): main}
    for status, (description, model) in ALSO.get(key, {}).items():
        responses[status] = {"description": description}
        if model is not None:
            responses[status]["content"] = {"application/json": _json(model, schemas)}
    for status in _ERRORS:
        responses.setdefault(status, {"$ref": f"#/components/responses/{status}"})
    operation: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "description": f"{route.summary}. Who may call: `{route.access}` (see the roles above).",
        "parameters": _parameters(key, route.template),
        "responses": responses,
        "x-access": route.access,  # the caller group the router enforces (api.md §3)
    }
    if route.access == "public":
        operation["security"] = []
    body = _request_body(route, schemas)
    if body is not None:
        operation["requestBody"] = body
    return operation


def _error_responses(schemas: dict[str, Any]) -> dict[str, Any]:
    problem = {"$ref": "#/components/schemas/Problem"}
    responses = {}
    for status, (code, description) in _ERRORS.items():
        body = example(problem, schemas) | {
            "type": f"https://bakedbot.ai/problems/{code}",
            "status": int(status),
            "detail": description,
        }
        responses[status] = {
            "description": description,
            "content": {"application/problem+json": {"schema": problem, "example": body}},
        }
    return responses


def _component_schemas(routes: list[Any]) -> dict[str, Any]:
    models = {m for r in routes for m in (r.body, r.answer) if m is not None}
    models |= {model for also in ALSO.values() for _, model in also.values() if model is not None}
    _, top = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
        by_alias=True,
    )
    return {"Problem": PROBLEM, **top.get("$defs", {})}


def build() -> dict[str, Any]:
    routes = all_routes()
    schemas = _component_schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.template, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Playbooks API",
            "version": "1.0.0",
            "description": "The Playbooks dashboard API; its rules: docs/api.md, docs/domain.md. "
            + ROLES,
        },
        "servers": [{"url": "http://127.0.0.1:8080/playbooks_api"}],
        "security": [{"firebase": []}, {"cronSecret": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": _error_responses(schemas),
            "securitySchemes": {
                "firebase": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Firebase ID token. " + ROLES,
                },
                "cronSecret": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Cron-Secret",
                    "description": "The existing app's server: the `system` group",
                },
            },
        },
    }


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    target = Path(__file__).with_name("openapi.json")
    target.write_text(render())
    sys.stdout.write(f"wrote {target}\n")
