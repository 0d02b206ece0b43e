import json
from pathlib import Path

import pytest

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
    invalid = create["responses"]["422"]["$ref"].rsplit("/", 1)[1]
    assert document["components"]["responses"][invalid]["content"]["application/problem+json"]
    assert "application/yaml" in create["requestBody"]["content"]


DOCUMENT = json.loads(CHECKED_IN.read_text())
OPERATIONS = [
    (f"{method.upper()} {path}", operation)
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
]


def _resolve(node):
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = DOCUMENT["components"][kind][name]
    return node


def _validator(schema):
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator({**DOCUMENT, **schema})


def _bodies():
    """(where, media type, media object) of every request and response body in the document."""
    for label, operation in OPERATIONS:
        request = operation.get("requestBody", {}).get("content", {})
        for media, spec in request.items():
            yield f"{label} request", media, spec
        for status, response in operation["responses"].items():
            for media, spec in _resolve(response).get("content", {}).items():
                yield f"{label} → {status}", media, spec


@pytest.mark.parametrize(("label", "operation"), OPERATIONS, ids=[o[0] for o in OPERATIONS])
def test_every_parameter_has_a_schema_a_description_and_an_example(label, operation):
    for parameter in operation["parameters"]:
        assert parameter["schema"], (label, parameter["name"])
        assert parameter["description"], (label, parameter["name"])
        assert "example" in parameter, (label, parameter["name"])
        if "enum" in parameter["schema"]:
            assert parameter["example"] in parameter["schema"]["enum"]


def test_every_json_body_has_a_precise_schema_and_an_example_that_fits_it():
    checked = 0
    for where, media, spec in _bodies():
        if "json" not in media or where.startswith("GET /v1/openapi.json"):
            continue
        if "export" in where:  # a download of definitions; its shape is the YAML's
            continue
        assert "example" in spec, where
        schema = spec["schema"]
        assert schema.get("$ref") or schema.get("oneOf"), f"{where}: a bare schema {schema}"
        errors = list(_validator({"$ref": "#/x"} | {"x": schema}).iter_errors(spec["example"]))
        assert not errors, f"{where}: its example does not fit: {errors[0].message}"
        checked += 1
    assert checked > 60


def test_no_object_in_the_components_is_left_undescribed():
    """Every object names its properties; only documented free-form fields (event data, step
    output) take any key."""
    for name, schema in DOCUMENT["components"]["schemas"].items():
        stack = [(name, schema)]
        while stack:
            where, node = stack.pop()
            if not isinstance(node, dict):
                continue
            if node.get("type") == "object" and "properties" not in node:
                described = node.get("description") or node.get("additionalProperties") not in (
                    None,
                    True,
                )
                assert described, f"{where}: an object with no properties and no description"
            for key, child in node.items():
                if isinstance(child, dict):
                    stack.append((f"{where}.{key}", child))
                elif isinstance(child, list):
                    stack.extend((f"{where}.{key}[]", item) for item in child)


def test_the_webhook_source_body_names_its_fields():
    operation = DOCUMENT["paths"]["/v1/orgs/{orgId}/webhook-sources"]["post"]
    body = _resolve(operation["requestBody"]["content"]["application/json"]["schema"])
    assert set(body["properties"]) == {
        "platform", "shopDomain", "sourceUrl", "secret", "lowStockThreshold",
        "adminAccessToken", "consumerKey", "consumerSecret",
    }  # fmt: skip
    for credential in ("secret", "adminAccessToken", "consumerKey", "consumerSecret"):
        assert body["properties"][credential]["writeOnly"] is True
    assert body["properties"]["platform"]["enum"] == ["shopify", "woocommerce"]
    assert body["required"] == ["platform"]
    assert body["additionalProperties"] is False


def test_view_is_an_enum_explained_and_the_roles_are_listed():
    list_route = DOCUMENT["paths"]["/v1/orgs/{orgId}/playbooks"]["get"]
    view = next(p for p in list_route["parameters"] if p["name"] == "view")
    assert view["schema"]["enum"] == ["auto", "brand", "dispensary", "all"]
    assert "view=all" in view["description"]
    roles = DOCUMENT["components"]["securitySchemes"]["firebase"]["description"]
    for role in ("brand_admin", "dispensary_staff", "brand_member", "super_user"):
        assert role in roles
    assert {operation["x-access"] for _, operation in OPERATIONS} == {
        "public", "signed-in", "reader", "editor", "approver", "system",
    }  # fmt: skip


def test_the_playbook_example_is_a_valid_definition():
    from playbook_core.domain.loading import load_data

    example = DOCUMENT["paths"]["/v1/orgs/{orgId}/playbooks"]["post"]["requestBody"]
    validated = load_data(example["content"]["application/json"]["example"])
    assert validated.definition.name == "Thank-you email"
