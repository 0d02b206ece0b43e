"""Dashboard routes that start runs (api.md §5 `:run`): decode, check the caller, call a service."""

from __future__ import annotations

from flask import Response

from playbook_core.runtime.api import Call, route
from playbook_core.runtime.contract import Accepted, RunBody
from playbook_core.runtime.http import json_response
from playbook_core.service.execution import manual_runs

ONE = "/v1/orgs/{orgId}/playbooks/{playbookId}"


@route(
    "POST",
    ONE + ":run",
    summary="Run an active playbook now (Idempotency-Key)",
    status=202,
    access="editor",
    body=RunBody,
    answer=Accepted,
)
def run_playbook(call: Call) -> Response:
    org_id = call.params["orgId"]
    execution_id = manual_runs.run_manually(
        org_id=org_id, playbook_id=call.params["playbookId"], user_id=call.caller.uid,
        body=call.json_body(), raw_key=call.request.headers.get("Idempotency-Key"),
        runs=call.app.runs,
        ids=call.app.ids,
    )  # fmt: skip
    return json_response({"executionId": execution_id}, 202)
