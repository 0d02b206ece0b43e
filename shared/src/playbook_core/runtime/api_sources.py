"""Dashboard routes for webhook sources (api.md §5): register, list, read, rotate, delete.

Answers never carry a secret or a secret reference (`sources.public_view`).
"""

from __future__ import annotations

from flask import Response

from playbook_core.domain.errors import BadRequest
from playbook_core.runtime.api import Call, route
from playbook_core.runtime.http import json_response
from playbook_core.service.ingress import sources

SOURCES = "/v1/orgs/{orgId}/webhook-sources"
ONE = SOURCES + "/{sourceId}"


@route(
    "POST",
    SOURCES,
    summary="Register a store; the secret stays server side",
    status=201,
    access="editor",
)
def register_webhook_source(call: Call) -> Response:
    org_id = call.params["orgId"]
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


@route("GET", SOURCES, summary="The org's webhook sources, never their secrets", access="reader")
def list_webhook_sources(call: Call) -> Response:
    size, token = call.page()
    result = sources.list_sources(
        org_id=call.params["orgId"], page_size=size, page_token=token, store=call.app.store
    )
    return json_response(result)


@route("GET", ONE, summary="One webhook source, never its secret", access="reader")
def get_webhook_source(call: Call) -> Response:
    result = sources.get_source(
        org_id=call.params["orgId"], source_id=call.params["sourceId"], store=call.app.store
    )
    return json_response(result)


@route(
    "POST",
    ONE + ":rotateSecret",
    summary="A new current secret; the previous one verifies for 24 h more",
    access="editor",
)
def rotate_webhook_secret(call: Call) -> Response:
    body = call.json_body()
    secret = body.get("secret") if isinstance(body, dict) else None
    if not isinstance(body, dict) or set(body) != {"secret"} or not isinstance(secret, str):
        raise BadRequest('send {"secret": "..."} (at least 8 characters)')
    result = sources.rotate_secret(
        org_id=call.params["orgId"], source_id=call.params["sourceId"], secret=secret,
        store=call.app.store, secrets=call.app.secrets(), clock=call.app.clock,
    )  # fmt: skip
    return json_response(result)


@route(
    "DELETE",
    ONE,
    summary="Remove a source and destroy its secret versions",
    status=204,
    access="editor",
)
def delete_webhook_source(call: Call) -> Response:
    sources.delete_source(
        org_id=call.params["orgId"], source_id=call.params["sourceId"],
        store=call.app.store, secrets=call.app.secrets(),
    )  # fmt: skip
    return Response(status=204)
