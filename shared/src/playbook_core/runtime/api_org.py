"""Dashboard routes beyond single playbooks: health, contract, templates, tiers, settings."""

from __future__ import annotations

from importlib import resources

from flask import Response

from playbook_core.domain.errors import BadRequest, Forbidden
from playbook_core.domain.tiers import parse_tier
from playbook_core.runtime.api import Call, route
from playbook_core.runtime.contract import (
    ActivateResult,
    ActivateTierBody,
    ChangeTierBody,
    ChangeTierResult,
    Health,
    SeedResult,
    Settings,
    TemplateList,
)
from playbook_core.runtime.http import json_response
from playbook_core.service.authoring import settings, tiers, versions_and_templates

ORG = "/v1/orgs/{orgId}"


@route(
    "GET",
    "/v1/health",
    summary="Dependency checks; drives the offline banner",
    access="public",
    answer=Health,
)
def health(call: Call) -> Response:
    return json_response(call.app.health())


@route("GET", "/v1/openapi.json", summary="This contract, machine-readable", access="public")
def openapi(_call: Call) -> Response:
    document = resources.files("playbook_core.runtime").joinpath("openapi.json").read_text()
    return Response(document, 200, mimetype="application/json")


@route(
    "GET",
    "/v1/templates",
    summary="Clone templates and tier templates",
    access="signed-in",
    answer=TemplateList,
)
def list_templates(_call: Call) -> Response:
    return json_response({"templates": versions_and_templates.list_templates()})


@route(
    "POST",
    "/v1/admin/seed-playbooks",
    summary="Seed the template catalog (idempotent)",
    access="system",
    answer=SeedResult,
)
def seed_playbooks(call: Call) -> Response:
    result = versions_and_templates.seed_templates(
        force=call.query("force") == "true", store=call.app.store, clock=call.app.clock
    )
    return json_response(result)


@route(
    "POST",
    ORG + ":activateTier",
    summary="Activate the tier's registry playbooks",
    access="editor",
    body=ActivateTierBody,
    answer=ActivateResult,
)
def activate_tier(call: Call) -> Response:
    org_id = call.params["orgId"]
    tier = call.body(ActivateTierBody).tier
    if not (call.caller.system or call.caller.super_user):
        stored = settings.get_settings(org_id=org_id, store=call.app.store)["tier"]
        if parse_tier(tier) is None or parse_tier(str(stored)) != parse_tier(tier):
            raise Forbidden("editors may activate only the organization's stored tier")
    result = tiers.activate_tier(
        org_id=org_id,
        tier_name=tier,
        authoring=call.app.authoring,
    )
    return json_response(result)


@route(
    "POST",
    ORG + ":changeTier",
    summary="Activate new − old, pause old − new",
    access="system",
    body=ChangeTierBody,
    answer=ChangeTierResult,
)
def change_tier(call: Call) -> Response:
    org_id = call.params["orgId"]
    result = tiers.change_tier(
        org_id=org_id, to_tier=call.body(ChangeTierBody).toTier,
        authoring=call.app.authoring,
    )  # fmt: skip
    return json_response(result)


@route(
    "GET", ORG + "/settings", summary="Org settings with defaults", access="reader", answer=Settings
)
def get_settings(call: Call) -> Response:
    org_id = call.params["orgId"]
    return json_response(settings.get_settings(org_id=org_id, store=call.app.store))


@route(
    "PATCH",
    ORG + "/settings",
    summary="Change org settings (editors)",
    access="editor",
    body=settings.SettingsPatch,
    answer=Settings,
)
def patch_settings(call: Call) -> Response:
    org_id = call.params["orgId"]
    body = call.json_body()
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object of settings")
    result = settings.patch_settings(
        org_id=org_id, changes=body, store=call.app.store, secrets=call.app.secrets(),
        clock=call.app.clock,
    )  # fmt: skip
    return json_response(result)
