"""Input gaps through playbooks_api (hardening issue, defect 7): refused alike on every route."""

import json

import pytest

BASE = "/v1/orgs/org_a/playbooks"
YAML = {"Content-Type": "application/yaml"}
JSON = {"Content-Type": "application/json"}
PROBLEMS = "https://bakedbot.ai/problems/"


def problem(response, status, kind):
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == PROBLEMS + kind
    return body


def errors(body):
    return [(e["code"], e["path"], e["line"], e["column"]) for e in body["errors"]]


def stored(api):
    return api.as_().get(BASE).get_json()["playbooks"]


def test_import_refuses_invalid_utf8_like_create_and_validate(api):
    # Was: the import decoded with replacement characters and saved 'caf\ufffd'.
    text = b"name: caf\xe9\nagent: craig\n"
    for path in (BASE, f"{BASE}:validate", f"{BASE}:import"):
        body = problem(api.as_().post(path, data=text, headers=YAML), 422, "playbook-invalid")
        assert errors(body) == [("invalid_encoding", "", 1, 10)], path
    assert stored(api) == []


def test_json_duplicate_keys_are_refused_like_yaml_ones(api):
    # Was: json.loads kept the last value, so {"name": "a", "name": "b"} saved "b".
    text = '{"name": "a", "agent": "craig", "name": "b"}'
    for path in (BASE, f"{BASE}:validate"):
        as_yaml = problem(api.as_().post(path, data=text, headers=YAML), 422, "playbook-invalid")
        as_json = problem(api.as_().post(path, data=text, headers=JSON), 422, "playbook-invalid")
        assert errors(as_json) == errors(as_yaml) == [("duplicate_key", "name", 1, 33)]
    assert stored(api) == []


def test_a_json_import_fails_only_the_document_that_repeats_a_key(api):
    good = '{"name": "A", "agent": "craig"}'
    bad = '{"name": "B", "agent": "craig", "agent": "leo"}'
    as_json = api.as_().post(f"{BASE}:import", data=f"[{good}, {bad}]", headers=JSON)
    as_yaml = api.as_().post(f"{BASE}:import", data=f"{good}\n---\n{bad}\n", headers=YAML)
    for response, line, column in ((as_json, 1, 67), (as_yaml, 3, 33)):
        assert response.status_code == 201
        result = response.get_json()
        assert [i["index"] for i in result["imported"]] == [0]
        assert result["errors"] == [
            {"index": 1, "errors": [{"code": "duplicate_key", "path": "agent", "line": line,
                                     "column": column, "message": "'agent' appears twice"}]}
        ]  # fmt: skip


def test_duplicate_keys_in_any_other_json_body_are_a_400(api):
    body = b'{"templateId": "tpl_a", "templateId": "tpl_b"}'
    response = api.as_().post(f"{BASE}:clone", data=body, headers=JSON)
    detail = problem(response, 400, "bad-request")["detail"]
    assert "repeats the key 'templateId' (line 1, column 25)" in detail


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "a\\ud800", "agent": "craig"}',
        b'{"yaml": "name: a\\udc00\\nagent: craig\\n"}',
        b'{"name": "a", "agent": "craig", "maxRetries": NaN}',
    ],
)
def test_json_that_cannot_be_stored_is_a_400_not_a_500(api, body):
    # Was: an unpaired surrogate escape failed deep in encoding: 500.
    for path in (BASE, f"{BASE}:validate", f"{BASE}:import"):
        problem(api.as_().post(path, data=body, headers=JSON), 400, "bad-request")
    assert stored(api) == []


@pytest.mark.parametrize(
    ("data", "headers", "where"),
    [
        ('name: "Sale\\0"\nagent: craig\n', YAML, ("name", 1, 7)),
        ('name: Sale\nagent: craig\ndescription: "a\\ab"\n', YAML, ("description", 3, 14)),
        ('{"name": "Sale\\u0000", "agent": "craig"}', JSON, ("name", None, None)),
        ('{"name": "Sale\\u2028", "agent": "craig"}', JSON, ("name", None, None)),
    ],
)
def test_escaped_control_characters_are_refused_on_every_route(api, data, headers, where):
    # Was: "\0", "\a" and "\u0000" passed the raw-text rule and were saved.
    for path in (BASE, f"{BASE}:validate"):
        body = problem(api.as_().post(path, data=data, headers=headers), 422, "playbook-invalid")
        assert errors(body) == [("invalid_encoding", *where)], path
    response = api.as_().post(f"{BASE}:import", data=data, headers=headers)
    body = problem(response, 422, "playbook-invalid")
    path, line, column = where
    assert errors(body) == [("invalid_encoding", f"[0].{path}", line, column)]
    assert stored(api) == []


def test_a_literal_subject_with_a_line_break_is_refused(api):
    definition = {
        "name": "Header", "agent": "craig",
        "steps": [{"action": "send_email",
                   "params": {"to": "{{ customer.email }}", "subject": "Hi\nBcc: x@evil.io",
                              "body": "line one\nline two"}}],
    }  # fmt: skip
    body = problem(api.as_().post(BASE, json=definition), 422, "playbook-invalid")
    assert errors(body) == [("invalid_value", "steps[0].params.subject", None, None)]


@pytest.mark.parametrize("kind", ["yaml", "json"])
def test_an_import_of_201_documents_is_refused_whole_and_200_are_all_imported(api, kind):
    # Was: only the first 200 were read; the rest vanished without an error.
    docs = [{"name": f"P{n}", "agent": "craig"} for n in range(201)]

    def post(items):
        if kind == "json":
            return api.as_().post(f"{BASE}:import", json=items)
        text = "\n---\n".join(json.dumps(d) for d in items)
        return api.as_().post(f"{BASE}:import", data=text, headers=YAML)

    body = problem(post(docs), 413, "too-large")
    assert "at most 200 documents and this one has 201" in body["detail"]
    assert stored(api) == []
    imported = post(docs[:200])
    assert imported.status_code == 201
    assert len(imported.get_json()["imported"]) == 200
