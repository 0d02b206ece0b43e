"""The consent routes through `playbooks_api` (api.md §5, consent.md §2–3), on both stores: every
answer is held to the OpenAPI document by the conforming test client."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest

from playbook_core.domain.collections import CUSTOMERS, SECRETS
from playbook_core.domain.secret_names import sms_webhook_secret_name
from playbook_core.service.compliance.consent import record_consent
from playbook_core.testing import FrozenClock
from tests.integration.conftest import CRON_SECRET, serving_api

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SECRET = "blackleaf-inbound-secret"


@pytest.fixture(params=["embedded", pytest.param("emulators", marks=pytest.mark.emulator)])
def world(request):
    """(api, org, other org) with one customer in each and records for ours."""
    os.environ.update(
        {
            "PLAYBOOKS_BACKEND": "embedded", "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
            "CRON_SECRET": CRON_SECRET, "GOOGLE_CLOUD_PROJECT": "demo-playbooks",
        }
    )  # fmt: skip
    if request.param == "embedded":
        from playbook_core.adapters.embedded import EmbeddedStore

        store = EmbeddedStore(":memory:")
    else:
        request.getfixturevalue("emulator_env")
        from playbook_core.adapters.firestore import FirestoreStore

        store = FirestoreStore("demo-playbooks")
    suffix = uuid.uuid4().hex[:8]
    org, other = f"org_{suffix}_a", f"org_{suffix}_b"
    for owner in (org, other):
        store.set(CUSTOMERS, f"cus_{owner}", {"orgId": owner, "email": f"{owner}@example.com"})
    yield from ((api, org, other) for api in serving_api(store, FrozenClock(NOW)))


def seed(api, org, states):
    app = api.app
    for state in states:
        record_consent(
            app.store, app.clock, app.ids, org_id=org, identity_key=f"cid:cus_{org}",
            customer_id=None, channel="email", state=state, source="form",
            method="preference centre", disclosure="Email me offers", ip="203.0.113.9",
            user_agent="Mozilla/5.0",
        )  # fmt: skip
        app.clock.advance(minutes=1)


def history(api, org, customer, role="brand_admin", orgs=None, **query):
    return api.as_(role, orgs=orgs or (org,)).get(
        f"/v1/orgs/{org}/customers/{customer}/consent", query_string=query
    )


def test_history_pages_newest_first(world):
    api, org, _ = world
    seed(api, org, ["granted", "revoked", "granted", "revoked", "granted"])
    seen, token = [], None
    for _ in range(5):
        query = {"pageSize": "2", **({"pageToken": token} if token else {})}
        answered = history(api, org, f"cus_{org}", **query)
        assert answered.status_code == 200, answered.get_json()
        body = answered.get_json()
        seen += body["consentRecords"]
        token = body["nextPageToken"]
        if token is None:
            break
    assert [r["state"] for r in seen] == ["granted", "revoked", "granted", "revoked", "granted"]
    assert [r["at"] for r in seen] == sorted((r["at"] for r in seen), reverse=True)
    first = seen[0]
    assert first["orgId"] == org
    assert first["customerId"] == f"cus_{org}"
    assert first["disclosure"] == "Email me offers"
    assert len(first["disclosureHash"]) == 64
    assert first["at"].endswith("Z")
    assert first["expiresAt"].startswith("2030-")


def test_another_orgs_customer_is_not_found_and_its_records_never_shown(world):
    api, org, other = world
    seed(api, other, ["granted"])
    answered = history(api, org, f"cus_{other}")
    assert answered.status_code == 404
    assert answered.mimetype == "application/problem+json"
    assert history(api, org, "cus_nobody").status_code == 404
    assert history(api, other, f"cus_{other}", role="super_user", orgs=()).status_code == 200


@pytest.mark.parametrize(
    ("role", "status"),
    [("brand_member", 200), ("dispensary_staff", 200), ("brand", 200), ("super_user", 200),
     ("", 403), ("intruder", 403)],
)  # fmt: skip
def test_readers_of_the_org_may_read_a_customers_consent(world, role, status):
    api, org, _ = world
    seed(api, org, ["granted"])
    assert history(api, org, f"cus_{org}", role=role).status_code == status


def test_callers_outside_the_org_are_refused(world):
    api, org, other = world
    assert history(api, org, f"cus_{org}", orgs=(other,)).status_code == 403
    anonymous = api.client.get(f"/v1/orgs/{org}/customers/cus_{org}/consent")
    assert anonymous.status_code == 401
    system = api.client.get(
        f"/v1/orgs/{org}/customers/cus_{org}/consent", headers={"X-Cron-Secret": CRON_SECRET}
    )
    assert system.status_code == 200  # the system may read: a customer without records yet
    assert system.get_json() == {"consentRecords": [], "nextPageToken": None}


def test_a_tampered_page_token_is_a_400(world):
    api, org, _ = world
    answered = history(api, org, f"cus_{org}", pageToken="not-a-token")
    assert answered.status_code == 400


def test_the_sms_webhook_secret_is_set_rotated_and_never_answered(world):
    api, org, _ = world
    empty = api.as_("brand_member", orgs=(org,)).get(f"/v1/orgs/{org}/sms-webhook").get_json()
    assert empty["hasSecret"] is False
    assert empty["webhookUrl"].endswith(f"/webhook_blackleaf?orgId={org}")
    assert empty["signatureHeader"] == "X-Blackleaf-Signature"
    put = api.as_(orgs=(org,)).put(f"/v1/orgs/{org}/sms-webhook", json={"secret": SECRET})
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["hasSecret"] is True
    assert put.get_json()["previousSecretExpiresAt"] is None
    same = api.as_(orgs=(org,)).put(f"/v1/orgs/{org}/sms-webhook", json={"secret": SECRET})
    assert same.get_json() == put.get_json()  # the same value again rotates nothing
    rotated = api.as_(orgs=(org,)).put(
        f"/v1/orgs/{org}/sms-webhook", json={"secret": SECRET + "-2"}
    )
    assert rotated.get_json()["previousSecretExpiresAt"] == "2026-11-25T12:00:00Z"
    for answer in (put, rotated):
        assert SECRET not in answer.get_data(as_text=True)
        assert "local:" not in answer.get_data(as_text=True)
    own = sms_webhook_secret_name(org)
    stored = [doc for doc in api.app.store.query(SECRETS, limit=1000).docs if own in doc.id]
    assert sorted(doc.data["value"] for doc in stored) == [SECRET, SECRET + "-2"]


@pytest.mark.parametrize(
    ("role", "body", "status"),
    [("brand_member", {"secret": SECRET}, 403), ("brand_admin", {"secret": "short"}, 400),
     ("brand_admin", {"secret": SECRET, "extra": 1}, 400), ("brand_admin", ["x"], 400)],
)  # fmt: skip
def test_a_refused_secret_change_stores_nothing(world, role, body, status):
    api, org, _ = world
    answered = api.as_(role, orgs=(org,)).put(f"/v1/orgs/{org}/sms-webhook", json=body)
    assert answered.status_code == status
    assert api.as_(orgs=(org,)).get(f"/v1/orgs/{org}/sms-webhook").get_json()["hasSecret"] is False
    own = sms_webhook_secret_name(org)  # versions are stored as `<name>@<hash>` locally
    assert not [doc for doc in api.app.store.query(SECRETS, limit=1000).docs if own in doc.id]
