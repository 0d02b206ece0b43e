"""The dependency graph route (api.md §5): what triggers what, as JSON or Mermaid text."""

from __future__ import annotations

from flask import Response

from playbook_core.domain.errors import BadRequest
from playbook_core.domain.graph import to_mermaid
from playbook_core.runtime.api import Call, route
from playbook_core.runtime.contract import Graph
from playbook_core.runtime.http import json_response
from playbook_core.service.authoring import graph

ORG = "/v1/orgs/{orgId}"
_BOOLEANS = {"true": True, "false": False}


@route(
    "GET",
    ORG + "/graph",
    summary="Event/schedule → playbook → emitted event graph",
    access="reader",
    answer=Graph,
)
def get_graph(call: Call) -> Response:
    org_id = call.params["orgId"]
    output = call.query("format", "json")
    if output not in ("json", "mermaid"):
        raise BadRequest("format is json or mermaid")
    include = call.query("includeInactive", "false")
    if include not in _BOOLEANS:
        raise BadRequest("includeInactive is true or false")
    result = graph.org_graph(
        org_id=org_id, include_inactive=_BOOLEANS[include], store=call.app.store
    )
    if output == "mermaid":
        return Response(to_mermaid(result), 200, mimetype="text/plain")
    return json_response(result)
