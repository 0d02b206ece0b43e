"""The OpenAPI 3.1 document of playbooks_api, generated from the router so the two cannot drift.

`make openapi` writes runtime/openapi.json (checked in, served at /v1/openapi.json); a test fails
when the checked-in file differs from what the routes say.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from playbook_core.domain.playbook import PlaybookDefinition
from playbook_core.runtime.api import all_routes

_PARAM = re.compile(r"\{([A-Za-z]+)\}")
QUERY: dict[str, list[str]] = {
    "GET /v1/orgs/{orgId}/playbooks": [
        "view",
        "status",
        "category",
        "agent",
        "q",
        "pageSize",
        "pageToken",
    ],
    "GET /v1/orgs/{orgId}/playbooks/{playbookId}:export": ["format"],
    "GET /v1/orgs/{orgId}/playbooks:export": ["format"],
    "DELETE /v1/orgs/{orgId}/playbooks/{playbookId}": ["confirm"],
    "GET /v1/orgs/{orgId}/graph": ["format", "includeInactive"],
    "POST /v1/admin/seed-playbooks": ["force"],
    "GET /v1/orgs/{orgId}/analytics/playbooks": ["from", "to"],
    "GET /v1/orgs/{orgId}/playbooks/{playbookId}/analytics": ["from", "to"],
    "GET /v1/orgs/{orgId}/events": ["name", "outcome", "from", "pageSize", "pageToken"],
    "GET /v1/orgs/{orgId}/executions": ["playbookId", "status", "pageSize", "pageToken"],
    "GET /v1/orgs/{orgId}/approvals": ["status", "pageSize", "pageToken"],
    "GET /v1/orgs/{orgId}/deliveries": ["status", "reason", "playbookId", "pageSize", "pageToken"],
    "GET /v1/orgs/{orgId}/webhook-sources": ["pageSize", "pageToken"],
}
_QUERY_DESCRIPTIONS = {
    "pageSize": "Items per page (AIP-158): missing or 0 → 50; above 100 → 100; negative or not a "
    "whole number → 400.",
    "pageToken": "The nextPageToken of the previous page, unchanged; anything else → 400.",
}
# Success answers besides a route's main one.
ALSO: dict[str, dict[str, str]] = {
    "DELETE /v1/orgs/{orgId}/playbooks/{playbookId}": {"200": "already archived: a repeat delete"},
    "POST /v1/orgs/{orgId}/playbooks:import": {"201": "imported, with per-document errors"},
}
_BODIES = {
    ":toggle": {
        "type": "object",
        "required": ["enabled"],
        "properties": {"enabled": {"type": "boolean"}},
    },
    ":rollback": {
        "type": "object",
        "required": ["version"],
        "properties": {"version": {"type": "integer", "minimum": 1}},
    },
    ":clone": {
        "type": "object",
        "required": ["templateId"],
        "properties": {"templateId": {"type": "string"}},
    },
    ":activateTier": {
        "type": "object",
        "required": ["tier"],
        "properties": {"tier": {"enum": ["scout", "pro", "growth", "empire", "enterprise"]}},
    },
    ":rotateSecret": {
        "type": "object",
        "required": ["secret"],
        "additionalProperties": False,
        "properties": {"secret": {"type": "string", "minLength": 8}},
    },
    ":changeTier": {
        "type": "object",
        "required": ["toTier"],
        "properties": {
            "toTier": {"enum": ["scout", "pro", "growth", "empire", "enterprise", "none"]}
        },
    },
}
_DEFINITION_ROUTES = (
    "/playbooks",
    "/playbooks/{playbookId}",
    "/playbooks:validate",
    "/playbooks:import",
)
PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Issue"}},
        "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/Issue"}},
    },
}
ISSUE = {
    "type": "object",
    "required": ["code", "path", "line", "column", "message"],
    "properties": {
        "code": {"type": "string"},
        "path": {"type": "string"},
        "line": {"type": ["integer", "null"]},
        "column": {"type": ["integer", "null"]},
        "message": {"type": "string"},
    },
}


def _request_body(method: str, template: str) -> dict[str, Any] | None:
    if method not in ("POST", "PUT", "PATCH"):
        return None
    for suffix, schema in _BODIES.items():
        if template.endswith(suffix):
            return {"required": True, "content": {"application/json": {"schema": schema}}}
    if any(template.endswith(r) for r in _DEFINITION_ROUTES):
        definition = {"$ref": "#/components/schemas/PlaybookDefinition"}
        return {
            "required": True,
            "content": {
                "application/json": {"schema": definition},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    return {"content": {"application/json": {"schema": {"type": "object"}}}}


def _operation(route: Any) -> dict[str, Any]:
    key = f"{route.method} {route.template}"
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"},
        }
        for name in _PARAM.findall(route.template)
    ] + [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        | ({"description": _QUERY_DESCRIPTIONS[name]} if name in _QUERY_DESCRIPTIONS else {})
        for name in QUERY.get(key, [])
    ]
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    responses: dict[str, Any] = {str(route.status): {"description": route.summary}}
    for status, description in ALSO.get(key, {}).items():
        responses[status] = {"description": description}
    for status in ("400", "401", "403", "404", "409", "412", "413", "415", "422", "503"):
        responses.setdefault(status, {"description": "problem", "content": problem})
    operation: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "parameters": parameters,
        "responses": responses,
    }
    operation["x-access"] = route.access  # the caller group the router enforces (api.md §3)
    if route.auth == "public":
        operation["security"] = []
    body = _request_body(route.method, route.template)
    if body is not None:
        operation["requestBody"] = body
    return operation


def build() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in all_routes():
        paths.setdefault(route.template, {})[route.method.lower()] = _operation(route)
    definition = PlaybookDefinition.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}"
    )
    schemas = {
        "Problem": PROBLEM,
        "Issue": ISSUE,
        **definition.pop("$defs", {}),
        "PlaybookDefinition": definition,
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Playbooks API",
            "version": "1.0.0",
            "description": "The Playbooks dashboard API; its rules: docs/api.md, docs/domain.md",
        },
        "servers": [{"url": "http://127.0.0.1:8080/playbooks_api"}],
        "security": [{"firebase": []}, {"cronSecret": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "firebase": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cronSecret": {"type": "apiKey", "in": "header", "name": "X-Cron-Secret"},
            },
        },
    }


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    target = Path(__file__).with_name("openapi.json")
    target.write_text(render())
    sys.stdout.write(f"wrote {target}\n")
