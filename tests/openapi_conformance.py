"""Every answer the API gives in a test is held to the checked-in OpenAPI document.

The document is what clients are generated from (clients/typescript), so an answer that strays
from it (an undocumented status, media type or field, a wrong type) fails the test that got it.
"""

import json
from functools import cache
from pathlib import Path
from urllib.parse import quote

import jsonschema_rs  # schemathesis's own validator
from flask.testing import FlaskClient

from playbook_core.runtime import openapi
from playbook_core.runtime.api import all_routes

DOCUMENT = json.loads(Path(openapi.__file__).with_name("openapi.json").read_text())
PREFIX = "/playbooks_api"


@cache
def _validator(*parts: str):
    """The schema at a JSON pointer, compiled with the whole document as its root: the
    document's own `#/components/...` references resolve."""
    pointer = "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)
    return jsonschema_rs.Draft202012Validator({**DOCUMENT, "$ref": "#/" + quote(pointer, "/~:")})


def _operation(method: str, path: str) -> tuple[str, dict] | None:
    path = path.removeprefix(PREFIX).rstrip("/") or "/"
    for route in all_routes():
        if route.method == method and route.regex.match(path):
            return route.template, DOCUMENT["paths"][route.template][method.lower()]
    return None  # no such operation: 404/405 from the router, nothing to hold it to


def check(method: str, path: str, status: int, mimetype: str, data: bytes) -> None:
    found = _operation(method, path)
    if found is None:
        return
    template, operation = found
    where = f"{method} {template} → {status}"
    response = operation["responses"].get(str(status))
    assert response is not None, f"{where}: status not in the OpenAPI document"
    pointer = ["paths", template, method.lower(), "responses", str(status)]
    if "$ref" in response:
        pointer = response["$ref"].removeprefix("#/").split("/")
        response = DOCUMENT["components"]["responses"][pointer[-1]]
    content = response.get("content")
    if not content:
        assert not data, f"{where}: a body where the document has none"
        return
    assert mimetype in content, f"{where}: {mimetype} is not documented ({sorted(content)})"
    if "json" not in mimetype:
        return
    validator = _validator(*pointer, "content", mimetype, "schema")
    errors = list(validator.iter_errors(json.loads(data)))
    assert not errors, f"{where}: " + "; ".join(
        f"{'/'.join(map(str, e.instance_path)) or '(body)'}: {e.message[:300]}" for e in errors[:5]
    )


class ConformingClient(FlaskClient):
    """A Flask test client that checks every API answer against the document."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        request = response.request
        check(request.method, request.path, response.status_code, response.mimetype or "",
              response.get_data())  # fmt: skip
        return response


def conforming_httpx_answer(response) -> None:
    """An httpx response hook: the same check for answers of a running stack's API."""
    response.read()
    mimetype = response.headers.get("content-type", "").split(";")[0].strip()
    check(response.request.method, response.request.url.path, response.status_code, mimetype,
          response.content)  # fmt: skip


CONFORMING = {"response": [conforming_httpx_answer]}  # httpx.Client(event_hooks=CONFORMING)
