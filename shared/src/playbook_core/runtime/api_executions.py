"""Dashboard routes for runs: executions, cancel, approvals, deliveries and dry runs (api.md §5)."""

from __future__ import annotations

import time
from typing import Any

from flask import Response

from playbook_core.domain.collections import EXECUTIONS
from playbook_core.domain.errors import BadRequest, PlaybooksError
from playbook_core.domain.executions import TERMINAL
from playbook_core.domain.ids import is_plain_id
from playbook_core.runtime.api import Call, route
from playbook_core.runtime.contract import (
    Approval,
    ApprovalPage,
    BatchApproveBody,
    BatchResults,
    DecisionBody,
    Delivery,
    DeliveryPage,
    DryRunResult,
    Execution,
    ExecutionPage,
    RunBody,
    Step,
    shape,
)
from playbook_core.runtime.http import json_response
from playbook_core.service.execution import approvals, run_control

ORG = "/v1/orgs/{orgId}"
DRY_RUN_WAIT_S = 25.0


def _execution(document: dict[str, Any]) -> dict[str, Any]:
    steps = document.get("steps")
    shaped = shape(Execution, document)
    if steps is not None:
        shaped["steps"] = [shape(Step, step) for step in steps]
    return shaped


@route(
    "GET",
    ORG + "/executions",
    summary="Runs, newest first, with step results",
    access="reader",
    answer=ExecutionPage,
)
def list_executions(call: Call) -> Response:
    org_id = call.params["orgId"]
    size, token = call.page()
    page = run_control.list_executions(
        org_id=org_id, playbook_id=call.query("playbookId"), status=call.query("status"),
        page_size=size, page_token=token, store=call.app.store,
    )  # fmt: skip
    return json_response({**page, "executions": [_execution(e) for e in page["executions"]]})


@route(
    "GET",
    ORG + "/executions/{executionId}",
    summary="One run with its steps",
    access="reader",
    answer=Execution,
)
def get_execution(call: Call) -> Response:
    org_id = call.params["orgId"]
    execution = run_control.execution_with_steps(
        org_id=org_id, execution_id=call.params["executionId"], store=call.app.store
    )
    return json_response(_execution(execution))


@route(
    "POST",
    ORG + "/executions/{executionId}:cancel",
    summary="Cancel a queued, running or pending run",
    access="editor",
    answer=Execution,
)
def cancel_execution(call: Call) -> Response:
    org_id = call.params["orgId"]
    cancelled = run_control.cancel_execution(
        org_id=org_id, execution_id=call.params["executionId"], actor=call.caller.uid,
        store=call.app.store, clock=call.app.clock,
    )  # fmt: skip
    return json_response(_execution(cancelled))


@route(
    "GET",
    ORG + "/approvals",
    summary="The approval queue, newest first",
    access="reader",
    answer=ApprovalPage,
)
def list_approvals(call: Call) -> Response:
    org_id = call.params["orgId"]
    size, token = call.page()
    page = approvals.list_approvals(
        org_id=org_id, status=call.query("status"), store=call.app.store, page_size=size,
        page_token=token,
    )  # fmt: skip
    return json_response({**page, "approvals": [shape(Approval, a) for a in page["approvals"]]})


def _decide(call: Call, execution_id: str, *, approve: bool, notes: str | None) -> dict[str, Any]:
    return approvals.decide(
        org_id=call.params["orgId"],
        execution_id=execution_id,
        approve=approve,
        reviewer={"uid": call.caller.uid},
        notes=notes,
        runs=call.app.runs,
    )


def _decision(call: Call, *, approve: bool) -> Response:
    notes = call.body(DecisionBody).notes
    decided = _decide(call, call.params["executionId"], approve=approve, notes=notes)
    return json_response(shape(Approval, decided))


@route(
    "POST",
    ORG + "/approvals/{executionId}:approve",
    summary="Approve; the run resumes once",
    access="approver",
    body=DecisionBody,
    answer=Approval,
)
def approve(call: Call) -> Response:
    return _decision(call, approve=True)


@route(
    "POST",
    ORG + "/approvals/{executionId}:reject",
    summary="Reject; nothing is sent",
    access="approver",
    body=DecisionBody,
    answer=Approval,
)
def reject(call: Call) -> Response:
    return _decision(call, approve=False)


@route(
    "POST",
    ORG + "/approvals:batchApprove",
    summary="Approve up to 100 runs; per-id results",
    access="approver",
    body=BatchApproveBody,
    answer=BatchResults,
)
def batch_approve(call: Call) -> Response:
    ids = call.body(BatchApproveBody).ids
    if not all(is_plain_id(i) for i in ids):
        raise BadRequest('send {"ids": [executionId, ...]}: 1 to 100 execution ids')
    results = []
    for execution_id in ids:
        try:
            _decide(call, execution_id, approve=True, notes=None)
            results.append({"id": execution_id, "status": "approved"})
        except PlaybooksError as error:
            results.append({"id": execution_id, "status": "error", "error": error.code})
    return json_response({"results": results})


@route(
    "GET",
    ORG + "/deliveries",
    summary="Deliveries, including skipped sends with reasons",
    access="reader",
    answer=DeliveryPage,
)
def list_deliveries(call: Call) -> Response:
    org_id = call.params["orgId"]
    size, token = call.page()
    page = run_control.list_deliveries(
        org_id=org_id, status=call.query("status"), reason=call.query("reason"),
        playbook_id=call.query("playbookId"), page_size=size, page_token=token,
        store=call.app.store,
    )  # fmt: skip
    return json_response({**page, "deliveries": [shape(Delivery, d) for d in page["deliveries"]]})


@route(
    "POST",
    ORG + "/playbooks/{playbookId}:dryRun",
    summary="The whole pipeline, nothing sent",
    status=202,
    access="editor",
    body=RunBody,
    answer=DryRunResult,
)
def dry_run(call: Call) -> Response:
    org_id = call.params["orgId"]
    body = call.json_body()
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object")
    execution = run_control.start_dry_run(
        org_id=org_id,
        playbook_id=call.params["playbookId"],
        body=body,
        actor=call.caller.uid,
        runs=call.app.runs,
        ids=call.app.ids,
    )
    if call.query("wait") != "true":
        return json_response({"executionId": execution["id"]}, 202)
    finished = _wait(call, execution["id"])
    if finished is None:
        return json_response({"executionId": execution["id"], "finished": False}, 202)
    return json_response(
        {
            "executionId": execution["id"],
            "status": finished["status"],
            "trace": finished.get("trace", []),
        }
    )


def _wait(call: Call, execution_id: str) -> dict[str, Any] | None:
    """`?wait=true`: poll the run for up to 25 s (the steps run on the queue, not here)."""
    deadline = time.monotonic() + DRY_RUN_WAIT_S
    while time.monotonic() < deadline:
        execution = call.app.store.get(EXECUTIONS, execution_id)
        if execution is not None and execution.get("status") in TERMINAL:
            return execution
        time.sleep(0.1)
    return None
