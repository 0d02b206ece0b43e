"""Dashboard routes beyond single playbooks: health, contract, templates, tiers, settings."""

from __future__ import annotations

from importlib import resources

from flask import Response

from playbook_core.domain.access import require_editor, require_org, require_reader, require_system
from playbook_core.domain.errors import BadRequest, Forbidden
from playbook_core.domain.tiers import parse_tier
from playbook_core.runtime.api import Call, route
from playbook_core.runtime.http import json_response
from playbook_core.service.authoring import settings, tiers, versions_and_templates
from playbook_core.service.ingress import sources

ORG = "/v1/orgs/{orgId}"


@route("GET", "/v1/health", summary="Dependency checks; drives the offline banner", auth="public")
def health(call: Call) -> Response:
    return json_response(call.app.health())


@route("GET", "/v1/openapi.json", summary="This contract, machine-readable", auth="public")
def openapi(_call: Call) -> Response:
    document = resources.files("playbook_core.runtime").joinpath("openapi.json").read_text()
    return Response(document, 200, mimetype="application/json")


@route("GET", "/v1/templates", summary="Clone templates and tier templates")
def list_templates(_call: Call) -> Response:
    return json_response({"templates": versions_and_templates.list_templates()})


@route("POST", "/v1/admin/seed-playbooks", summary="Seed the template catalog (idempotent)")
def seed_playbooks(call: Call) -> Response:
    require_system(call.caller)
    result = versions_and_templates.seed_templates(
        force=call.query("force") == "true", store=call.app.store, clock=call.app.clock
    )
    return json_response(result)


def _tier_body(call: Call, key: str) -> str:
    body = call.json_body()
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, str):
        raise BadRequest(f'send {{"{key}": "scout|pro|growth|empire"}}')
    return value


@route("POST", ORG + ":activateTier", summary="Activate the tier's registry playbooks")
def activate_tier(call: Call) -> Response:
    org_id = call.params["orgId"]
    tier = _tier_body(call, "tier")
    if not (call.caller.system or call.caller.super_user):
        require_editor(call.caller, org_id)
        stored = settings.get_settings(org_id=org_id, store=call.app.store)["tier"]
        if parse_tier(tier) is None or parse_tier(str(stored)) != parse_tier(tier):
            raise Forbidden("editors may activate only the organization's stored tier")
    result = tiers.activate_tier(
        org_id=org_id, tier_name=tier, store=call.app.store, clock=call.app.clock, ids=call.app.ids
    )
    return json_response(result)


@route("POST", ORG + ":changeTier", summary="Activate new − old, pause old − new")
def change_tier(call: Call) -> Response:
    org_id = call.params["orgId"]
    require_system(call.caller)
    require_org(call.caller, org_id)
    result = tiers.change_tier(
        org_id=org_id, to_tier=_tier_body(call, "toTier"),
        store=call.app.store, clock=call.app.clock, ids=call.app.ids,
    )  # fmt: skip
    return json_response(result)


@route("GET", ORG + "/settings", summary="Org settings with defaults")
def get_settings(call: Call) -> Response:
    org_id = call.params["orgId"]
    require_reader(call.caller, org_id)
    return json_response(settings.get_settings(org_id=org_id, store=call.app.store))


@route("PATCH", ORG + "/settings", summary="Change org settings (editors)")
def patch_settings(call: Call) -> Response:
    org_id = call.params["orgId"]
    require_editor(call.caller, org_id)
    body = call.json_body()
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object of settings")
    result = settings.patch_settings(
        org_id=org_id, changes=body, store=call.app.store, secrets=call.app.secrets(),
        clock=call.app.clock,
    )  # fmt: skip
    return json_response(result)


@route(
    "POST",
    ORG + "/webhook-sources",
    summary="Register a store; the secret stays server side",
    status=201,
)
def register_webhook_source(call: Call) -> Response:
    org_id = call.params["orgId"]
    require_editor(call.caller, org_id)
    body = call.json_body()
    if not isinstance(body, dict) or body.get("platform") not in ("shopify", "woocommerce"):
        raise BadRequest(
            'send {"platform": "shopify"|"woocommerce", "shopDomain"|"sourceUrl", "secret"?}'
        )
    address = body.get("shopDomain") if body["platform"] == "shopify" else body.get("sourceUrl")
    secret, threshold = body.get("secret"), body.get("lowStockThreshold")
    if not isinstance(address, str):
        raise BadRequest("shopDomain (Shopify) or sourceUrl (WooCommerce) is required")
    if secret is not None and not isinstance(secret, str):
        raise BadRequest("secret is a string")
    whole = isinstance(threshold, int) and not isinstance(threshold, bool)  # JSON true is no number
    if threshold is not None and (not whole or not 0 <= threshold <= 100000):
        raise BadRequest("lowStockThreshold is a whole number from 0 to 100000")
    result = sources.register_source(
        org_id=org_id, platform=body["platform"], address=address, secret=secret,
        low_stock_threshold=threshold, store=call.app.store, secrets=call.app.secrets(),
        clock=call.app.clock,
    )  # fmt: skip
    return json_response(result, 201)
