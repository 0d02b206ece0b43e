"""The check API and the rule listing (docs/compliance.md), through the router and the contract."""

from __future__ import annotations

import pytest

from playbook_core.domain.collections import CUSTOMERS

ORG = "/v1/orgs/org_a"
PROFILE = {
    "states": ["CA", "NY"],
    "licenses": {"CA": "C10-0000001-LIC", "NY": "OCM-AUCP-24-000001"},
    "legalName": "Green Leaf LLC",
    "postalAddress": "1 Main St, Oakland, CA 94607",
    "smsBrandName": "GreenLeaf",
}


def configure(api, **extra):
    patched = api.as_().patch(f"{ORG}/settings", json={"compliance": {**PROFILE, **extra}})
    assert patched.status_code == 200, patched.get_json()


def check(api, **body):
    return api.as_(role="brand_member").post(f"{ORG}/compliance:check", json=body)


def rule_ids(answer):
    return {finding["ruleId"] for finding in answer["findings"]}


def test_a_giveaway_to_a_california_customer_is_blocked_with_the_term_located(api):
    configure(api)
    answer = check(
        api, channel="email", subject="Weekend", body="Join our giveaway this weekend!",
        recipient={"state": "CA", "email": "ada@example.com"},
    ).get_json()  # fmt: skip
    assert answer["verdict"] == "block"
    found = next(f for f in answer["findings"] if f["ruleId"] == "ca.no-free-goods")
    assert found["severity"] == "block"
    assert "Bus. & Prof." in found["citation"]
    assert answer["body"][found["start"] : found["end"]].lower() == "giveaway"
    versions = {p["jurisdiction"]: p["version"] for p in api.as_().get("/v1/compliance/rules")
                .get_json()["packs"]}  # fmt: skip
    assert answer["rulePack"] == f"CA@{versions['CA']}+US@{versions['US']}"
    assert answer["recipient"] == {"state": "CA", "zone": "America/Los_Angeles", "basis": "address"}


def test_a_clean_email_passes_once_the_footer_carries_what_the_rules_require(api):
    configure(api)
    answer = check(
        api, channel="email", subject="New arrivals", body="New flower is in store this weekend.",
        recipient={"state": "CA", "email": "ada@example.com"},
    ).get_json()  # fmt: skip
    # Everything but the unsubscribe link the server adds per send is satisfied by the footer.
    assert rule_ids(answer) <= {"us.can-spam-unsubscribe", "ca.age-affirmation"}, answer
    assert "1 Main St, Oakland, CA 94607" in answer["body"]
    assert "C10-0000001-LIC" in answer["body"]


def test_a_missing_licence_is_a_clear_finding_not_a_crash(api):
    configure(api, licenses={})
    answer = check(
        api, channel="email", body="New flower.", recipient={"state": "CA", "email": "a@b.co"}
    ).get_json()
    messages = [f["message"] for f in answer["findings"] if f["ruleId"] == "ca.license-number"]
    assert messages == ["licence number for CA is not set"]
    assert answer["verdict"] == "block"


def test_a_text_at_night_is_deferred_to_eight_in_the_recipients_zone(api):
    configure(api)
    answer = check(
        api, channel="sms", body="New drops tonight", sendAt="2026-12-05T05:30:00Z",
        recipient={"phone": "+12125550100"},  # New York area code: 00:30 local
    ).get_json()  # fmt: skip
    assert answer["recipient"] == {"state": "NY", "zone": "America/New_York", "basis": "area_code"}
    assert "us.tcpa-quiet-hours" in rule_ids(answer)
    # Blocked anyway for the missing written consent, so the verdict is block, not defer.
    assert answer["verdict"] == "block"
    assert "us.tcpa-written-consent" in rule_ids(answer)


def test_a_customer_id_fills_state_and_age_and_another_orgs_customer_is_404(api):
    configure(api)
    api.app.store.set(CUSTOMERS, "cus_1", {"orgId": "org_a", "state": "CA", "ageVerified": True})
    api.app.store.set(CUSTOMERS, "cus_b", {"orgId": "org_b", "state": "CA"})
    answer = check(
        api, channel="email", body="New flower.", recipient={"customerId": "cus_1",
                                                            "email": "a@b.co"},
    ).get_json()  # fmt: skip
    assert answer["recipient"]["state"] == "CA"
    assert "ca.age-affirmation" not in rule_ids(answer)
    foreign = check(api, channel="email", body="x", recipient={"customerId": "cus_b"})
    assert foreign.status_code == 404
    for hostile in ("a/b", "..", "__x__"):  # not a document id: no such customer, not a 500
        answer = check(api, channel="email", body="x", recipient={"customerId": hostile})
        assert answer.status_code == 404


def test_a_transactional_receipt_skips_marketing_only_rules(api):
    configure(api)
    answer = check(
        api, channel="email", body="Your order #1001 is ready.", transactional=True,
        recipient={"state": "CA", "email": "a@b.co"},
    ).get_json()  # fmt: skip
    assert answer["verdict"] == "allow", answer
    assert answer["body"] == "Your order #1001 is ready."  # no marketing footer


def test_the_orgs_own_forbidden_terms_block_too(api):
    configure(api, forbiddenTerms=["blowout"])
    answer = check(
        api, channel="email", body="Blowout weekend", recipient={"state": "CA", "email": "a@b.co"}
    ).get_json()
    assert "org.forbidden-terms" in rule_ids(answer)
    assert answer["verdict"] == "block"


@pytest.mark.parametrize(
    "body",
    [
        {"channel": "fax", "body": "x"},
        {"channel": "sms"},
        {"channel": "sms", "body": "x", "sendAt": "tomorrow"},
        {"channel": "sms", "body": "x", "sendAt": "2026-12-05T05:30:00"},  # no offset
        {"channel": "sms", "body": "x", "recipient": {"state": "California"}},
        {"channel": "sms", "body": "x", "extra": 1},
        {"channel": "sms", "body": "x", "sendAt": "0001-01-01T00:00:00+14:00"},
        {"channel": "sms", "body": "x", "sendAt": "9999-12-31T23:59:59-14:00"},
    ],
)
def test_bad_check_requests_are_400(api, body):
    refused = check(api, **body)
    assert refused.status_code == 400
    assert refused.content_type == "application/problem+json"


def test_only_members_may_check(api):
    outsider = api.as_(orgs=("org_b",)).post(
        f"{ORG}/compliance:check", json={"channel": "sms", "body": "x"}
    )
    assert outsider.status_code == 403


def test_the_rules_are_listed_with_citations_and_pack_versions(api):
    every = api.as_().get("/v1/compliance/rules").get_json()
    assert {pack["jurisdiction"] for pack in every["packs"]} >= {
        "US", "CA", "CO", "FL", "IL", "MA", "MI", "NV", "NY", "OK", "OR", "WA",
    }  # fmt: skip
    assert all(rule["citation"] and rule["confidence"] for rule in every["rules"])
    sms_ny = api.as_().get("/v1/compliance/rules?jurisdiction=NY&channel=sms").get_json()
    assert {rule["jurisdiction"] for rule in sms_ny["rules"]} == {"NY"}
    assert all("sms" in rule["channels"] for rule in sms_ny["rules"])
    assert api.as_().get("/v1/compliance/rules?jurisdiction=ZZ").status_code == 400
    assert api.as_().get("/v1/compliance/rules?channel=fax").status_code == 400
    assert api.client.get("/v1/compliance/rules").status_code == 401
