"""Templates, seeding, tier activation and settings through playbooks_api (domain.md §4, §2.3)."""

from datetime import UTC, datetime

from playbook_core.domain.collections import ASSIGNMENTS, PLAYBOOKS, SCHEDULES
from playbook_core.domain.secret_names import slack_secret_name

CRON_SECRET = "test-cron-secret"  # the api fixture configures this value

SYSTEM = {"X-Cron-Secret": CRON_SECRET}


def activate(api, tier, org="org_a"):
    return api.client.post(f"/v1/orgs/{org}:activateTier", json={"tier": tier}, headers=SYSTEM)


def test_empire_activates_22_active_registry_playbooks_idempotently(api):
    first = activate(api, "empire").get_json()
    assert len(first["activated"]) == 22
    assert first["failed"] == []
    assert "weekly-competitive-snapshot" not in first["activated"]
    assert "tier-upgrade-nudge" not in first["activated"]
    listed = (
        api.as_(role="dispensary")
        .get("/v1/orgs/org_a/playbooks?pageSize=100")
        .get_json()["playbooks"]
    )
    assert len(listed) == 22
    assert {p["status"] for p in listed} == {"active"}
    assert {p["source"]["kind"] for p in listed} == {"registry"}
    assert api.app.store.get(ASSIGNMENTS, "org_a_welcome-sequence")["status"] == "active"
    second = activate(api, "empire").get_json()
    assert (second["activated"], len(second["skipped"])) == ([], 22)


def test_brand_view_excludes_registry_playbooks(api):
    activate(api, "scout")
    api.as_().post("/v1/orgs/org_a/playbooks", json={"name": "Mine", "agent": "craig"})
    brand = api.as_(role="brand").get("/v1/orgs/org_a/playbooks").get_json()["playbooks"]
    everything = (
        api.as_(role="super_user", orgs=()).get("/v1/orgs/org_a/playbooks").get_json()["playbooks"]
    )
    assert [p["name"] for p in brand] == ["Mine"]
    assert len(everything) == 4


def test_change_tier_activates_new_minus_old_and_pauses_old_minus_new(api):
    activate(api, "scout")
    user_paused = api.as_().post(
        "/v1/orgs/org_a/playbooks/org_a_welcome-sequence:toggle", json={"enabled": False}
    )
    assert user_paused.status_code == 200
    result = api.client.post(
        "/v1/orgs/org_a:changeTier", json={"toTier": "pro"}, headers=SYSTEM
    ).get_json()
    assert result["paused"] == ["weekly-competitive-snapshot"]
    assert len(result["activated"]) == 9
    assert result["unchanged"] == ["welcome-sequence", "tier-upgrade-nudge"]
    snapshot = api.app.store.get(PLAYBOOKS, "org_a_weekly-competitive-snapshot")
    assert (snapshot["status"], snapshot["pausedReason"]) == ("paused", "tier")
    welcome = api.app.store.get(PLAYBOOKS, "org_a_welcome-sequence")
    assert (welcome["status"], welcome["pausedReason"]) == ("paused", "user")
    back = api.client.post(
        "/v1/orgs/org_a:changeTier", json={"toTier": "scout"}, headers=SYSTEM
    ).get_json()
    assert "weekly-competitive-snapshot" in back["activated"]
    assert api.app.store.get(PLAYBOOKS, "org_a_weekly-competitive-snapshot")["status"] == "active"


def test_change_tier_is_system_only(api):
    assert api.as_().post("/v1/orgs/org_a:changeTier", json={"toTier": "pro"}).status_code == 403


def test_editor_may_activate_only_the_stored_tier(api):
    assert api.as_().post("/v1/orgs/org_a:activateTier", json={"tier": "empire"}).status_code == 403
    activate(api, "pro")
    assert api.as_().post("/v1/orgs/org_a:activateTier", json={"tier": "pro"}).status_code == 200


def test_seed_is_idempotent_and_needs_system_auth(api):
    first = api.client.post("/v1/admin/seed-playbooks", headers=SYSTEM).get_json()
    assert len(first["seeded"]) == 11
    second = api.client.post("/v1/admin/seed-playbooks", headers=SYSTEM).get_json()
    assert (second["seeded"], len(second["skipped"])) == ([], 11)
    assert (
        api.client.post("/v1/admin/seed-playbooks", headers={"X-Cron-Secret": "nope"}).status_code
        == 401
    )
    assert api.as_().post("/v1/admin/seed-playbooks").status_code == 403


def test_templates_list_and_clone(api):
    templates = api.as_().get("/v1/templates").get_json()["templates"]
    assert [t["id"] for t in templates][:4] == [
        "daily_intel",
        "lead_followup",
        "weekly_kpi",
        "low_stock_alert",
    ]
    clone = api.as_().post("/v1/orgs/org_a/playbooks:clone", json={"templateId": "lead_followup"})
    assert clone.status_code == 201
    body = clone.get_json()
    assert (body["id"], body["status"], body["requiresApproval"]) == (
        "org_a_lead_followup",
        "draft",
        True,
    )
    again = (
        api.as_()
        .post("/v1/orgs/org_a/playbooks:clone", json={"templateId": "lead_followup"})
        .get_json()
    )
    assert again["id"] == "org_a_lead_followup_2"


def test_tier_templates_are_refused_below_their_tier(api):
    refused = api.as_().post(
        "/v1/orgs/org_a/playbooks:clone", json={"templateId": "enterprise-account-summary"}
    )
    assert refused.status_code == 403
    activate(api, "empire")
    allowed = api.as_().post(
        "/v1/orgs/org_a/playbooks:clone", json={"templateId": "enterprise-account-summary"}
    )
    assert allowed.get_json()["source"] == {
        "kind": "tier_template",
        "templateId": "enterprise-account-summary",
    }


def test_settings_defaults_patch_and_validation(api):
    defaults = api.as_().get("/v1/orgs/org_a/settings").get_json()
    assert (
        defaults["dedupWindowHours"],
        defaults["approvalTtlHours"],
        defaults["effectiveTimezone"],
    ) == (24, 72, "America/New_York")
    patched = api.as_().patch(
        "/v1/orgs/org_a/settings", json={"timezone": "America/Los_Angeles", "dedupWindowHours": 12}
    )
    assert patched.status_code == 200
    assert patched.get_json()["effectiveTimezone"] == "America/Los_Angeles"
    bad = api.as_().patch("/v1/orgs/org_a/settings", json={"timezone": "Mars/Base", "nope": 1})
    assert bad.status_code == 422
    assert {e["path"] for e in bad.get_json()["errors"]} == {"timezone", "nope"}


def test_the_compliance_profile_defaults_is_stored_whole_and_refuses_weak_shapes(api):
    defaults = api.as_().get("/v1/orgs/org_a/settings").get_json()["compliance"]
    assert defaults == {
        "states": [], "licenses": {}, "legalName": None, "postalAddress": None,
        "smsBrandName": None, "forbiddenTerms": [], "sendWindow": None, "frequency": None,
    }  # fmt: skip
    patched = api.as_().patch(
        "/v1/orgs/org_a/settings", json={"compliance": {"states": ["CA"], "smsBrandName": "Leaf"}}
    )
    assert patched.get_json()["compliance"] == {
        **defaults,
        "states": ["CA"],
        "smsBrandName": "Leaf",
    }
    replaced = api.as_().patch("/v1/orgs/org_a/settings", json={"compliance": {"states": ["NY"]}})
    assert replaced.get_json()["compliance"] == {**defaults, "states": ["NY"]}  # whole, not merged
    for bad, path in [
        ({"states": ["XX"]}, "compliance.states.0"),
        ({"licenses": {"ca": "1"}}, "compliance.licenses.ca.[key]"),
        ({"sendWindow": {"start": "21:00", "end": "08:00"}}, "compliance.sendWindow.end"),
        ({"sendWindow": {"start": "8am", "end": "20:00"}}, "compliance.sendWindow.start"),
        ({"frequency": {"max": 0, "windowHours": 24}}, "compliance.frequency.max"),
        ({"smsBrandName": "x" * 41}, "compliance.smsBrandName"),
        ({"extra": 1}, "compliance.extra"),
    ]:
        refused = api.as_().patch("/v1/orgs/org_a/settings", json={"compliance": bad})
        assert refused.status_code == 422, bad
        assert [e["path"] for e in refused.get_json()["errors"]] == [path], refused.get_json()
    assert api.as_().get("/v1/orgs/org_a/settings").get_json()["compliance"]["states"] == ["NY"]


def test_org_timezone_change_moves_inherited_schedules(api):
    activate(api, "growth")
    before = api.app.store.get(SCHEDULES, "org_a_daily-competitive-intel__on_schedule")
    api.as_().patch("/v1/orgs/org_a/settings", json={"timezone": "America/Los_Angeles"})
    after = api.app.store.get(SCHEDULES, "org_a_daily-competitive-intel__on_schedule")
    assert before["nextRunLocal"].endswith("T07:00")
    assert after["nextRunLocal"].endswith("T07:00")
    assert after["timezone"] == "America/Los_Angeles"
    assert before["nextRunAt"] == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 07:00 New York
    assert after["nextRunAt"] == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 07:00 Los Angeles


def test_health_and_openapi_are_public(api):
    assert api.client.get("/v1/health").status_code == 200
    assert api.client.get("/v1/openapi.json").get_json()["openapi"].startswith("3.1")


def test_slack_reference_must_name_the_orgs_own_slack_secret(api):
    own = f"projects/p/secrets/{slack_secret_name('org_a')}/versions/latest"
    ok = api.as_().patch("/v1/orgs/org_a/settings", json={"slackWebhookSecretRef": own})
    assert ok.status_code == 200
    refused = api.as_().patch(
        "/v1/orgs/org_a/settings",
        json={"slackWebhookSecretRef": "projects/p/secrets/MAILJET_API_KEY"},
    )
    assert refused.status_code == 422
