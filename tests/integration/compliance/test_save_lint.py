"""Save-time lint and the activation check of a playbook's static text (docs/compliance.md)."""

from __future__ import annotations

from playbook_core.domain.collections import PLAYBOOKS

ORG = "/v1/orgs/org_a"
PROFILE = {"states": ["CA"], "licenses": {"CA": "C10-0000001-LIC"}, "legalName": "Leaf LLC",
           "postalAddress": "1 Main St, Oakland, CA 94607", "smsBrandName": "Leaf"}  # fmt: skip
YAML = """\
name: Weekend promo
agent: craig
triggers: [{type: event, eventName: order.completed}]
steps:
  - id: email
    action: send_email
    params:
      to: "{{ customer.email }}"
      subject: Weekend
      body: BODY
"""
YAML_HEADERS = {"Content-Type": "application/yaml"}


def create(api, body, *, to="{{ customer.email }}"):
    text = YAML.replace("BODY", body).replace("{{ customer.email }}", to)
    answer = api.as_().post(f"{ORG}/playbooks", data=text, headers=YAML_HEADERS)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def compliance_warnings(answer):
    return [w for w in answer["warnings"] if w["code"].startswith("compliance_")]


def test_blocked_wording_is_a_warning_on_save_with_its_line_and_column(api):
    api.as_().patch(f"{ORG}/settings", json={"compliance": PROFILE})
    created = create(api, "Our giveaway starts {{ event.data.day }}")
    (warning,) = compliance_warnings(created)
    assert warning["code"] == "compliance_block"
    assert warning["path"] == "steps[0].params.body"
    assert (warning["line"], warning["column"]) == (10, 13)  # where the body's value starts
    assert warning["message"].startswith("ca.no-free-goods: ")


def test_activation_is_refused_with_the_findings_and_changes_nothing(api):
    api.as_().patch(f"{ORG}/settings", json={"compliance": PROFILE})
    created = create(api, "Our giveaway starts Saturday")
    url = f"{ORG}/playbooks/{created['id']}"
    refused = api.as_().post(f"{url}:toggle", json={"enabled": True})
    assert refused.status_code == 422
    assert [e["path"] for e in refused.get_json()["errors"]] == ["steps[0].params.body"]
    assert api.app.store.get(PLAYBOOKS, created["id"])["status"] == "draft"
    fixed = YAML.replace("BODY", "New flower this weekend")
    assert api.as_().put(url, data=fixed, headers=YAML_HEADERS).status_code == 200
    assert api.as_().post(f"{url}:toggle", json={"enabled": True}).status_code == 200
    # Once active, an edit that brings the wording back is refused and the version stays.
    back = YAML.replace("BODY", "Giveaway Saturday")
    assert api.as_().put(url, data=back, headers=YAML_HEADERS).status_code == 422
    assert api.app.store.get(PLAYBOOKS, created["id"])["version"] == 2


def test_placeholders_internal_sends_and_missing_profile_fields_do_not_refuse(api):
    # No profile at all: the missing postal address is a warning, not a refusal.
    created = create(api, '"{{ event.data.giveaway }} this weekend"')
    assert {w["code"] for w in compliance_warnings(created)} <= {"compliance_block"}
    assert all("giveaway" not in w["message"] for w in compliance_warnings(created))
    url = f"{ORG}/playbooks/{created['id']}"
    assert api.as_().post(f"{url}:toggle", json={"enabled": True}).status_code == 200
    internal = create(api, "Giveaway report for the team", to="{{ org.admin_email }}")
    assert compliance_warnings(internal) == []


def test_validate_reports_the_same_findings_without_saving(api):
    api.as_().patch(f"{ORG}/settings", json={"compliance": PROFILE})
    text = YAML.replace("BODY", "Candy-flavored gummies")
    answer = api.as_().post(f"{ORG}/playbooks:validate", data=text, headers=YAML_HEADERS)
    assert answer.status_code == 200
    found = {w["message"].split(":")[0] for w in compliance_warnings(answer.get_json())}
    assert found == {"ca.no-candy-wording", "us.no-appeal-to-minors"}  # state and federal
    assert api.app.store.query(PLAYBOOKS).docs == []
