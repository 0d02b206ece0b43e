"""The dashboard's playbook operations end to end through playbooks_api (domain.md §3.10)."""

from pathlib import Path

import yaml

from playbook_core.domain.collections import LISTENERS, PLAYBOOKS

EXAMPLE = (
    Path(__file__).parents[2] / "data" / "playbooks" / "post_purchase_example.yaml"
).read_text()
BASE = "/v1/orgs/org_a/playbooks"
YAML = {"Content-Type": "application/yaml"}


def create(api, text=EXAMPLE, **headers):
    response = api.as_().post(BASE, data=text, headers={**YAML, **headers})
    assert response.status_code == 201, response.get_json()
    return response


def test_create_from_yaml_reads_back_as_yaml(api):
    created = create(api).get_json()
    assert created["id"].startswith("pb_")
    assert created["status"] == "draft"
    assert created["requiresApproval"] is True
    assert created["version"] == 1
    assert created["createdAt"] == "2026-11-24T12:00:00Z"  # RFC 3339 with Z on the wire
    response = api.as_().get(f"{BASE}/{created['id']}", headers={"Accept": "application/yaml"})
    assert response.mimetype == "application/yaml"
    assert yaml.safe_load(response.get_data(as_text=True))["name"] == "Post-purchase thank-you"
    assert response.headers["ETag"] == '"r1"'


def test_create_answers_location_and_etag(api):
    response = create(api)
    body = response.get_json()
    assert response.headers["Location"] == f"{BASE}/{body['id']}"
    assert response.headers["ETag"] == '"r1"'


def test_invalid_yaml_is_422_problem_with_positions_and_nothing_saved(api):
    response = api.as_().post(
        BASE, data="name: x\nagent: craig\nsteps: [{action: boom, params: {}}]\n", headers=YAML
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "https://bakedbot.ai/problems/playbook-invalid"
    assert body["errors"][0]["code"] == "invalid_enum"
    assert body["errors"][0]["path"] == "steps[0].action"
    assert (body["errors"][0]["line"], body["errors"][0]["column"]) == (3, 18)
    assert api.as_().get(BASE).get_json()["playbooks"] == []


def test_json_definition_and_yaml_wrapper_are_accepted(api):
    as_json = api.as_().post(BASE, json={"name": "J", "agent": "craig"})
    wrapped = api.as_().post(BASE, json={"yaml": "name: W\nagent: craig\n"})
    assert (as_json.status_code, wrapped.status_code) == (201, 201)
    assert wrapped.get_json()["name"] == "W"


def test_client_requires_approval_is_ignored(api):
    body = (
        api.as_()
        .post(BASE, json={"name": "J", "agent": "craig", "requiresApproval": True})
        .get_json()
    )
    assert body["requiresApproval"] is False
    assert {"code": "ignored_field", "path": "requiresApproval"}.items() <= next(
        w for w in body["warnings"] if w["code"] == "ignored_field"
    ).items()


def test_stale_if_match_is_412_and_nothing_written(api):
    created = create(api).get_json()
    url = f"{BASE}/{created['id']}"
    first = api.as_().put(
        url, data=EXAMPLE.replace("Post-purchase", "First"), headers={**YAML, "If-Match": '"r1"'}
    )
    assert first.status_code == 200
    assert first.headers["ETag"] == '"r2"'
    stale = api.as_().put(
        url, data=EXAMPLE.replace("Post-purchase", "Second"), headers={**YAML, "If-Match": '"r1"'}
    )
    assert stale.status_code == 412
    current = api.as_().get(url).get_json()
    assert current["name"] == "First thank-you"
    assert current["version"] == 2


def test_duplicate_is_copy_n_disabled_with_provenance(api):
    created = create(api).get_json()
    first = api.as_().post(f"{BASE}/{created['id']}:duplicate").get_json()
    second = api.as_().post(f"{BASE}/{created['id']}:duplicate").get_json()
    assert first["id"] == f"{created['id']}_copy_1"
    assert second["id"] == f"{created['id']}_copy_2"
    assert first["status"] == "disabled"
    assert first["name"] == "Post-purchase thank-you (copy)"
    assert first["source"] == {"kind": "duplicate", "playbookId": created["id"], "version": 1}


def test_toggle_persists_and_syncs_listeners(api):
    created = create(api).get_json()
    url = f"{BASE}/{created['id']}"
    on = api.as_().post(f"{url}:toggle", json={"enabled": True})
    assert on.status_code == 200
    assert api.as_().get(url).get_json()["status"] == "active"
    stored = api.app.store.get(PLAYBOOKS, created["id"])
    assert (stored["status"], stored["active"]) == ("active", True)
    listener = api.app.store.get(LISTENERS, f"{created['id']}__order.completed")
    assert listener["status"] == "active"
    off = api.as_().post(f"{url}:toggle", json={"enabled": False}).get_json()
    assert (off["status"], off["pausedReason"]) == ("paused", "user")
    listener = api.app.store.get(LISTENERS, f"{created['id']}__order.completed")
    assert listener["status"] == "paused"


def test_toggle_on_without_steps_is_409(api):
    draft = api.as_().post(BASE, json={"name": "Empty", "agent": "craig"}).get_json()
    response = api.as_().post(f"{BASE}/{draft['id']}:toggle", json={"enabled": True})
    assert response.status_code == 409
    assert response.get_json()["type"].endswith("/not-activatable")


def test_delete_needs_confirmation_then_archives_and_removes_listeners(api):
    created = create(api).get_json()
    url = f"{BASE}/{created['id']}"
    api.as_().post(f"{url}:toggle", json={"enabled": True})
    refused = api.as_().delete(url)
    assert refused.status_code == 409
    assert refused.get_json()["type"].endswith("/confirmation-required")
    assert api.as_().get(url).get_json()["status"] == "active"
    assert api.as_().delete(f"{url}?confirm=true").status_code == 204
    assert api.app.store.get(LISTENERS, f"{created['id']}__order.completed") is None
    assert api.as_().get(url).get_json()["status"] == "archived"
    assert api.as_().delete(f"{url}?confirm=true").status_code == 200
    assert api.as_().get(BASE).get_json()["playbooks"] == []
    assert [p["id"] for p in api.as_().get(f"{BASE}?status=archived").get_json()["playbooks"]] == [
        created["id"]
    ]
    restored = api.as_().post(f"{url}:restore").get_json()
    assert restored["status"] == "paused"


def test_versions_and_rollback(api):
    created = create(api).get_json()
    url = f"{BASE}/{created['id']}"
    api.as_().put(url, data=EXAMPLE.replace("maxRetries: 3", "maxRetries: 5"), headers=YAML)
    versions = api.as_().get(f"{url}/versions").get_json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    rolled = api.as_().post(f"{url}:rollback", json={"version": 1}).get_json()
    assert rolled["version"] == 3
    assert rolled["maxRetries"] == 3
    third = api.as_().get(f"{url}/versions/3").get_json()
    assert (third["reason"], third["rolledBackFrom"]) == ("rollback", 1)
    assert third["definitionHash"] == versions[1]["definitionHash"]
    assert api.as_().get(f"{url}/versions/9").status_code == 404


def without_comments(text):
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def test_export_import_export_is_identical(api):
    created = create(api).get_json()
    exported = api.as_().get(f"{BASE}/{created['id']}:export?format=yaml").get_data(as_text=True)
    imported = api.as_().post(f"{BASE}:import", data=exported, headers=YAML).get_json()
    assert imported["errors"] == []
    new_id = imported["imported"][0]["id"]
    assert api.as_().get(f"{BASE}/{new_id}").get_json()["status"] == "disabled"
    again = api.as_().get(f"{BASE}/{new_id}:export?format=yaml").get_data(as_text=True)
    assert without_comments(again) == without_comments(exported)
    assert (
        api.as_().get(f"{BASE}/{new_id}").get_json()["definitionHash"] == created["definitionHash"]
    )


def test_import_reports_bad_documents_and_keeps_good_ones(api):
    stream = "name: Good\nagent: craig\n---\nname: Bad\nagent: nobody\n---\nname: Also good\nagent: pops\n"
    result = api.as_().post(f"{BASE}:import", data=stream, headers=YAML).get_json()
    assert [i["index"] for i in result["imported"]] == [0, 2]
    assert result["errors"][0]["index"] == 1
    assert result["errors"][0]["errors"][0]["line"] == 5


def test_json_array_import(api):
    result = (
        api.as_()
        .post(f"{BASE}:import", json=[{"name": "A", "agent": "craig"}, {"name": "B"}])
        .get_json()
    )
    assert len(result["imported"]) == 1
    assert result["errors"][0]["errors"][0]["code"] == "missing_field"


def test_validate_saves_nothing(api):
    body = api.as_().post(f"{BASE}:validate", data=EXAMPLE, headers=YAML).get_json()
    assert body["valid"] is True
    assert body["requiresApproval"] is True
    assert body["normalized"]["steps"][0]["id"] == "compose"
    assert api.as_().get(BASE).get_json()["playbooks"] == []
