"""Every Cloud Function entry point. Thin: decode the input, call one service, encode the result."""

from __future__ import annotations

from typing import Any

import functions_framework
from flask import Request, Response

from playbook_core.runtime import unsubscribe_page
from playbook_core.runtime.api import dispatch
from playbook_core.runtime.bootstrap import app
from playbook_core.runtime.callers import internal, internal_event
from playbook_core.runtime.cloudevents import decode_firestore_change, decode_pubsub
from playbook_core.runtime.http import (
    http_boundary,
    json_response,
    problem,
    read_model,
    task_boundary,
)
from playbook_core.runtime.tasks import task_attempt
from playbook_core.service.execution.step_task import StepTask


@functions_framework.http
@http_boundary
def playbooks_api(request: Request) -> Response:
    return dispatch(request, app())


@functions_framework.errorhandler(404)  # type: ignore[untyped-decorator]  # no stubs for it
def _unrouted(_error: Exception) -> Response:
    """Paths the framework refuses before our router (e.g. a newline in a segment): problem+json."""
    return problem(404, "not-found", "NotFound", "no route for this path")


def _webhook(platform: str, request: Request) -> Response:
    status, body = app().receive_webhook(
        platform,
        headers=dict(request.headers.items()),
        body=request.get_data(cache=False),
        remote_ip=request.remote_addr,
        query_org_id=request.args.get("orgId"),
    )
    return json_response(body, status)


@functions_framework.http
@http_boundary
def webhook_shopify(request: Request) -> Response:
    return _webhook("shopify", request)


@functions_framework.http
@http_boundary
def webhook_woocommerce(request: Request) -> Response:
    return _webhook("woocommerce", request)


@functions_framework.http
@http_boundary
def webhook_blackleaf(request: Request) -> Response:
    """Inbound SMS: the org's signature on the raw body, then STOP/START (consent.md §3)."""
    answer = app().receive_sms(
        headers=dict(request.headers.items()),
        body=request.get_data(cache=False),
        query_org_id=request.args.get("orgId"),
    )
    return json_response(answer)


@functions_framework.http
@http_boundary
def email_unsubscribe(request: Request) -> Response:
    """The unsubscribe link: GET a page, POST one click (consent.md §4). Public: a signed token."""
    return unsubscribe_page.handle(request, app())


@functions_framework.http
@internal
@task_boundary
def cron_playbooks(request: Request) -> Response:
    body = request.get_json(silent=True) if request.content_length else None
    return json_response(app().cron(request.path.rstrip("/") or "/", body or {}))


@functions_framework.http
@internal
@task_boundary
def execute_step(request: Request) -> Response:
    task = read_model(request, StepTask)
    return json_response(app().run_step(task, task_attempt(dict(request.headers.items()))))


@functions_framework.cloud_event
@internal_event
def on_event_published(event: Any) -> None:
    app().event_published(decode_pubsub(event.data))


@functions_framework.cloud_event
@internal_event
def on_order_event(event: Any) -> None:
    app().order_event(decode_pubsub(event.data))


@functions_framework.cloud_event
@internal_event
def on_event_dead_lettered(event: Any) -> None:
    """Messages the event subscriptions gave up on, from their dead-letter topic."""
    app().event_dead_lettered(decode_pubsub(event.data))


# Firestore triggers (Eventarc) are not token-checked in code, only by IAM: Eventarc's token is
# for the run.app URL it targets (not configurable on the trigger, unknown to the function), and
# neither the Firestore emulator's trigger hook nor the embedded store's poster sends one.
def _document_changed(event: Any) -> None:
    app().document_changed(decode_firestore_change(event.get_attributes(), event.data))


@functions_framework.cloud_event
def on_order_written(event: Any) -> None:
    _document_changed(event)


@functions_framework.cloud_event
def on_customer_written(event: Any) -> None:
    _document_changed(event)


@functions_framework.cloud_event
def on_inventory_written(event: Any) -> None:
    _document_changed(event)
