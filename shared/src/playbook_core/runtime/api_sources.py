"""Dashboard routes for webhook sources (api.md §5): register, list, read, rotate, delete.

Answers never carry a secret or a secret reference (`sources.public_view`).
"""

from __future__ import annotations

from flask import Response

from playbook_core.domain.errors import BadRequest
from playbook_core.runtime.api import Call, route
from playbook_core.runtime.contract import (
    RotateSecretBody,
    SourceBody,
    WebhookSource,
    WebhookSourcePage,
)
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
    body=SourceBody,
    answer=WebhookSource,
)
def register_webhook_source(call: Call) -> Response:
    org_id = call.params["orgId"]
    body = call.body(SourceBody)
    address = body.shopDomain if body.platform == "shopify" else body.sourceUrl
    if address is None:
        raise BadRequest("shopDomain (Shopify) or sourceUrl (WooCommerce) is required")
    credentials = sources.api_credentials(
        body.platform, body.adminAccessToken, body.consumerKey, body.consumerSecret
    )
    result = sources.register_source(
        org_id=org_id, platform=body.platform, address=address, secret=body.secret,
        low_stock_threshold=body.lowStockThreshold, store=call.app.store,
        secrets=call.app.secrets(), clock=call.app.clock, api_credentials=credentials,
    )  # fmt: skip
    return json_response(result, 201)


@route(
    "GET",
    SOURCES,
    summary="The org's webhook sources, never their secrets",
    access="reader",
    answer=WebhookSourcePage,
)
def list_webhook_sources(call: Call) -> Response:
    size, token = call.page()
    result = sources.list_sources(
        org_id=call.params["orgId"], page_size=size, page_token=token, store=call.app.store
    )
    return json_response(result)


@route(
    "GET",
    ONE,
    summary="One webhook source, never its secret",
    access="reader",
    answer=WebhookSource,
)
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
    body=RotateSecretBody,
    answer=WebhookSource,
)
def rotate_webhook_secret(call: Call) -> Response:
    secret = call.body(RotateSecretBody).secret
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
        store=call.app.store, secrets=call.app.secrets(), clock=call.app.clock,
    )  # fmt: skip
    return Response(status=204)
