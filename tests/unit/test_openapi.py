import json
from pathlib import Path

from playbook_core.runtime import openapi
from playbook_core.runtime.api import all_routes

CHECKED_IN = Path(openapi.__file__).with_name("openapi.json")


def test_checked_in_document_is_what_the_routes_generate():
    assert CHECKED_IN.read_text() == openapi.render(), "run `make openapi`"


def test_every_route_is_documented_and_every_documented_operation_routes():
    document = json.loads(CHECKED_IN.read_text())
    documented = {
        (method.upper(), path) for path, ops in document["paths"].items() for method in ops
    }
    routed = {(r.method, r.template) for r in all_routes()}
    assert documented == routed


def test_document_is_openapi_3_1_with_problem_responses():
    document = json.loads(CHECKED_IN.read_text())
    assert document["openapi"] == "3.1.0"
    create = document["paths"]["/v1/orgs/{orgId}/playbooks"]["post"]
    assert "201" in create["responses"]
    assert create["responses"]["422"]["content"]["application/problem+json"]
    assert "application/yaml" in create["requestBody"]["content"]
