"""Dashboard routes for events: ingest from the existing app, and the event log."""

from __future__ import annotations

from flask import Response

from playbook_core.runtime.api import Call, route
from playbook_core.runtime.contract import EventPage, IngestBody, IngestResult
from playbook_core.runtime.http import json_response
from playbook_core.service.ingress import ingest

EVENTS = "/v1/orgs/{orgId}/events"


@route(
    "POST",
    EVENTS,
    summary="Ingest an event (system or super_user)",
    status=202,
    access="system",
    body=IngestBody,
    answer=IngestResult,
)
def ingest_event(call: Call) -> Response:
    result = ingest.ingest_event(
        org_id=call.params["orgId"], body=call.json_body(), actor=call.caller.uid,
        publishing=call.app.publishing,

    )  # fmt: skip
    return json_response(result, 202)


@route(
    "GET",
    EVENTS,
    summary="The event log with each event's outcome, newest first",
    access="reader",
    answer=EventPage,
)
def list_events(call: Call) -> Response:
    org_id = call.params["orgId"]
    size, token = call.page()
    result = ingest.list_events(
        org_id=org_id, name=call.query("name"), outcome=call.query("outcome"),
        since=call.query("from"), page_size=size, page_token=token,
        store=call.app.store,
    )  # fmt: skip
    return json_response(result)
