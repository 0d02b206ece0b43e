"""Bugs the schemathesis run (test_schemathesis.py) and its follow-up probing found.

Each is pinned by its smallest request.
"""

import subprocess
import sys

import pytest

BASE = "/v1/orgs/org_a/playbooks"
YAML = {"Content-Type": "application/yaml"}


def test_import_without_a_body_is_400_not_500(api):
    # Was: json.loads(b"") inside the import service → unhandled → 500.
    response = api.as_().post(f"{BASE}:import")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"] == "https://bakedbot.ai/problems/bad-request"


def test_import_of_blank_yaml_or_empty_array_is_400(api):
    blank = api.as_().post(f"{BASE}:import", data="  \n", headers=YAML)
    empty = api.as_().post(f"{BASE}:import", json=[])
    wrapped = api.as_().post(f"{BASE}:import", json={"yaml": ""})
    assert [r.status_code for r in (blank, empty, wrapped)] == [400, 400, 400]
    assert api.as_().get(BASE).get_json()["playbooks"] == []


def test_import_with_nothing_valid_is_a_422_problem_with_indexed_paths(api):
    # Was: 422 with an application/json {imported, errors} body, not problem+json (api.md §4).
    stream = "name: Bad\nagent: nobody\n---\nname: Worse\nagent: craig\nsteps: [{action: boom}]\n"
    response = api.as_().post(f"{BASE}:import", data=stream, headers=YAML)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "https://bakedbot.ai/problems/playbook-invalid"
    paths = [(e["path"], e["line"]) for e in body["errors"]]
    assert ("[0].agent", 2) in paths
    assert any(path.startswith("[1].steps[0]") and line == 6 for path, line in paths)
    assert api.as_().get(BASE).get_json()["playbooks"] == []


def test_json_import_with_nothing_valid_names_each_document(api):
    response = api.as_().post(f"{BASE}:import", json=[{"name": "A"}, {"agent": "craig"}])
    assert response.status_code == 422
    issues = {(e["path"], e["code"]) for e in response.get_json()["errors"]}
    assert ("[0].agent", "missing_field") in issues
    assert ("[1].name", "missing_field") in issues


def test_deeply_nested_json_is_400_not_500(api):
    # Was: RecursionError out of json.loads in Call.json_body → 500.
    deep = b"[" * 100_000 + b"]" * 100_000
    for path in (BASE, f"{BASE}:import", f"{BASE}:validate"):
        response = api.as_().post(path, data=deep, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, path
        assert response.mimetype == "application/problem+json"


def test_non_ascii_bearer_token_is_401_not_500(api):
    # Was: base64 of a str with non-ASCII characters raises ValueError → 500.
    response = api.client.get(BASE, headers={"Authorization": "Bearer \u00e9.a.b"})
    assert response.status_code == 401
    assert response.get_json()["type"] == "https://bakedbot.ai/problems/unauthenticated"


def test_boolean_low_stock_threshold_is_refused(api):
    # Was: isinstance(True, int) let `true` through as a threshold of 1.
    response = api.as_().post(
        "/v1/orgs/org_a/webhook-sources",
        json={"platform": "shopify", "shopDomain": "x.myshopify.com", "lowStockThreshold": True},
    )
    assert response.status_code == 400


@pytest.mark.parametrize("url", ["http://[::1", "https://shop.example:99999", "http://x:port"])
def test_malformed_store_url_is_400(api, url):
    # Was: urlsplit's ValueError (bad IPv6 host, port out of range) escaped as a 500.
    response = api.as_().post(
        "/v1/orgs/org_a/webhook-sources", json={"platform": "woocommerce", "sourceUrl": url}
    )
    assert response.status_code == 400


def test_deeply_nested_yaml_is_rejected_without_crashing_the_process():
    # libyaml's composer recurses in C: ~30,000 nested flow collections (60 KB, well under the
    # body limit) overflowed the C stack (SIGSEGV) before the depth check ran on the composed
    # graph. Now the event pass rejects them first. In a child process, so a regression fails
    # this test instead of killing the whole run.
    code = (
        "from playbook_core.domain.errors import PlaybookInvalid\n"
        "from playbook_core.domain.loading import load_text\n"
        "try:\n"
        "    load_text(b'[' * 100_000 + b']' * 100_000)\n"
        "except PlaybookInvalid as invalid:\n"
        "    print(invalid.errors[0].code)\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed program
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "too_deep")
