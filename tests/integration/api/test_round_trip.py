"""Load, change one field, save: every resource with a GET and a PUT/PATCH round-trips (api.md §5).

A response never carries internal storage fields; every field it carries is either writable or
accepted and ignored on write. So for every resource, in every state a client meets it in, the
body of a GET with one writable field changed is accepted back whole.
"""

from pathlib import Path

import pytest
import yaml

CRON = {"X-Cron-Secret": "test-cron-secret"}  # the api fixture configures this value
EXAMPLE = (
    Path(__file__).parents[2] / "data" / "playbooks" / "post_purchase_example.yaml"
).read_text()
ORG = "/v1/orgs/org_a"
STORAGE_ONLY = ("archived", "searchTokens")  # query helpers of the stored document


def created(api):
    response = api.as_().post(
        f"{ORG}/playbooks", data=EXAMPLE, headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def draft(api):
    return created(api)


def active(api):
    playbook = created(api)
    toggled = api.as_().post(f"{ORG}/playbooks/{playbook}:toggle", json={"enabled": True})
    assert toggled.get_json()["status"] == "active"
    return playbook


def disabled(api):
    playbook = active(api)
    api.as_().post(f"{ORG}/playbooks/{playbook}:toggle", json={"enabled": False})
    return playbook


def restored(api):
    """Deleted, then restored: archive and restore timestamps have been written."""
    playbook = created(api)
    assert api.as_().delete(f"{ORG}/playbooks/{playbook}?confirm=true").status_code == 204
    assert api.as_().post(f"{ORG}/playbooks/{playbook}:restore").status_code == 200
    return playbook


def tier_paused(api):
    """A registry playbook paused by a tier change: pausedReason and pausedAt are set."""
    assert (
        api.client.post(f"{ORG}:activateTier", json={"tier": "scout"}, headers=CRON).status_code
        == 200
    )
    assert (
        api.client.post(f"{ORG}:changeTier", json={"toTier": "pro"}, headers=CRON).status_code
        == 200
    )
    playbook = "org_a_weekly-competitive-snapshot"
    assert api.as_().get(f"{ORG}/playbooks/{playbook}").get_json()["status"] == "paused"
    return playbook


def duplicated(api):
    copy = api.as_().post(f"{ORG}/playbooks/{created(api)}:duplicate")
    assert copy.status_code == 201
    return copy.get_json()["id"]


STATES = [draft, active, disabled, restored, tier_paused, duplicated]
PLAYBOOK_CHANGES = {
    "name": lambda body: {**body, "name": body["name"] + " (edited)"},
    "description": lambda body: {**body, "description": "Changed by a client."},
    "tags": lambda body: {**body, "tags": [*body.get("tags", []), "edited"]},
    "maxRetries": lambda body: {**body, "maxRetries": 1},
    "nothing": lambda body: body,
}


@pytest.mark.parametrize("change", PLAYBOOK_CHANGES, ids=str)
@pytest.mark.parametrize("state", STATES, ids=lambda s: s.__name__)
def test_a_playbook_read_as_json_is_written_back_whole(api, state, change):
    playbook = state(api)
    read = api.as_().get(f"{ORG}/playbooks/{playbook}")
    assert read.status_code == 200
    body = read.get_json()
    assert not set(STORAGE_ONLY) & set(body)
    saved = api.as_().put(
        f"{ORG}/playbooks/{playbook}",
        json=PLAYBOOK_CHANGES[change](body),
        headers={"If-Match": read.headers["ETag"]},
    )
    assert saved.status_code == 200, saved.get_json()
    again = saved.get_json()
    assert not set(STORAGE_ONLY) & set(again)
    assert {k: v for k, v in again.items() if k in PLAYBOOK_CHANGES} == {
        k: v for k, v in PLAYBOOK_CHANGES[change](body).items() if k in PLAYBOOK_CHANGES
    }
    # The answer of a save is itself a body a client may save again.
    resaved = api.as_().put(f"{ORG}/playbooks/{playbook}", json=again)
    assert resaved.status_code == 200, resaved.get_json()


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.__name__)
def test_a_playbook_read_as_yaml_is_written_back_whole(api, state):
    playbook = state(api)
    read = api.as_().get(f"{ORG}/playbooks/{playbook}", headers={"Accept": "application/yaml"})
    assert read.status_code == 200
    document = yaml.safe_load(read.get_data(as_text=True))
    assert not set(STORAGE_ONLY) & set(document)
    document["description"] = "Changed in a YAML editor."
    saved = api.as_().put(
        f"{ORG}/playbooks/{playbook}",
        data=yaml.safe_dump(document, sort_keys=False),
        headers={"Content-Type": "application/yaml", "If-Match": read.headers["ETag"]},
    )
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["description"] == "Changed in a YAML editor."


def test_a_listed_playbook_is_written_back_whole(api):
    playbook = active(api)
    (listed,) = api.as_().get(f"{ORG}/playbooks").get_json()["playbooks"]
    assert not set(STORAGE_ONLY) & set(listed)
    saved = api.as_().put(f"{ORG}/playbooks/{playbook}", json={**listed, "name": "From the list"})
    assert saved.status_code == 200, saved.get_json()


def test_a_typo_is_still_refused(api):
    """Accepting what a response carries does not mean accepting anything."""
    playbook = created(api)
    body = api.as_().get(f"{ORG}/playbooks/{playbook}").get_json()
    saved = api.as_().put(f"{ORG}/playbooks/{playbook}", json={**body, "nmae": "typo"})
    assert saved.status_code == 422
    assert saved.get_json()["errors"][0]["code"] == "unknown_field"


def plain_settings(api):
    return None


def configured_settings(api):
    """A stored tier, a Slack reference and every field set once."""
    assert (
        api.client.post(f"{ORG}:changeTier", json={"toTier": "pro"}, headers=CRON).status_code
        == 200
    )
    patched = api.as_().patch(
        f"{ORG}/settings",
        json={
            "slackWebhookUrl": "https://hooks.slack.com/services/T/B/C",
            "timezone": "America/Denver",
            "frequencyCaps": {"email": {"enabled": True, "max": 2, "windowHours": 24}},
            "adminEmail": "ops@example.com",
            "alertPhone": "+14155550100",
        },
    )
    assert patched.status_code == 200, patched.get_json()


SETTINGS_CHANGES = {
    "dedupWindowHours": 48,
    "approvalTtlHours": 24,
    "attributionWindowDays": 14,
    "costPerExecutionUsd": "0.10",
    "lowStockThreshold": 3,
    "adminEmail": "owner@example.com",
    "alertPhone": "+14155550199",
    "defaultCountry": "CA",
    "timezone": "America/New_York",
    "frequencyCaps": {"email": {"enabled": False, "max": 3, "windowHours": 48}},
    "compliance": {
        "states": ["CA", "NY"],
        "licenses": {"CA": "C10-0000001-LIC"},
        "legalName": "Green Leaf LLC",
        "postalAddress": "1 Main St, Oakland, CA 94607",
        "smsBrandName": "GreenLeaf",
        "forbiddenTerms": ["blowout"],
        "sendWindow": {"start": "09:00", "end": "20:00"},
        "frequency": {"max": 2, "windowHours": 24},
    },
}


@pytest.mark.parametrize("field", SETTINGS_CHANGES)
@pytest.mark.parametrize("state", [plain_settings, configured_settings], ids=lambda s: s.__name__)
def test_settings_read_are_patched_back_whole(api, state, field):
    state(api)
    body = api.as_().get(f"{ORG}/settings").get_json()
    patched = api.as_().patch(f"{ORG}/settings", json={**body, field: SETTINGS_CHANGES[field]})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()[field] == SETTINGS_CHANGES[field]
    assert {k: v for k, v in patched.get_json().items() if k != field} == {
        k: v for k, v in body.items() if k not in (field, "effectiveTimezone")
    } | ({"effectiveTimezone": patched.get_json()["effectiveTimezone"]})


def test_settings_tier_is_still_not_patchable(api):
    assert (
        api.client.post(f"{ORG}:changeTier", json={"toTier": "pro"}, headers=CRON).status_code
        == 200
    )
    body = api.as_().get(f"{ORG}/settings").get_json()
    assert api.as_().patch(f"{ORG}/settings", json={**body, "tier": "empire"}).status_code == 422
    assert api.as_().get(f"{ORG}/settings").get_json()["tier"] == "pro"
