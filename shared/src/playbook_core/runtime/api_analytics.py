"""Dashboard routes for analytics (api.md §5): per-playbook reports from the daily roll-ups."""

from __future__ import annotations

from flask import Response

from playbook_core.runtime.api import Call, route
from playbook_core.runtime.contract import OrgAnalytics, PlaybookAnalytics
from playbook_core.runtime.http import json_response
from playbook_core.service.reporting import analytics

ORG = "/v1/orgs/{orgId}"


@route(
    "GET",
    ORG + "/analytics/playbooks",
    summary="Per-playbook analytics and org totals, with daily series, for from..to",
    access="reader",
    answer=OrgAnalytics,
)
def org_analytics(call: Call) -> Response:
    org_id = call.params["orgId"]
    return json_response(
        analytics.org_analytics(
            org_id=org_id,
            date_from=call.query("from"),
            date_to=call.query("to"),
            store=call.app.store,
            clock=call.app.clock,
        )
    )


@route(
    "GET",
    ORG + "/playbooks/{playbookId}/analytics",
    summary="One playbook's analytics, with its daily series, for from..to",
    access="reader",
    answer=PlaybookAnalytics,
)
def playbook_analytics(call: Call) -> Response:
    org_id = call.params["orgId"]
    return json_response(
        analytics.playbook_analytics(
            org_id=org_id,
            playbook_id=call.params["playbookId"],
            date_from=call.query("from"),
            date_to=call.query("to"),
            store=call.app.store,
            clock=call.app.clock,
        )
    )
