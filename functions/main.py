"""Every Cloud Function entry point. Thin: decode the input, call one service, encode the result."""

from __future__ import annotations

import functions_framework
from flask import Request, Response, jsonify


@functions_framework.http
def playbooks_api(request: Request) -> Response:
    """Dashboard API. Only the health route exists until the storage and API issues land."""
    if request.method == "GET" and request.path.rstrip("/") == "/v1/health":
        return jsonify({"status": "ok", "offline": False, "checks": {}})
    response = jsonify(
        {
            "type": "https://bakedbot.ai/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": f"no route for {request.method} {request.path}",
            "errors": [],
            "warnings": [],
        }
    )
    response.status_code = 404
    response.mimetype = "application/problem+json"
    return response
