"""A secret belongs to one org: a store cannot be taken over, a Slack reference cannot be borrowed."""

import json
from pathlib import Path

import functions_framework
import pytest

from playbook_core.domain.collections import SECRETS, SETTINGS, WEBHOOK_SOURCES
from playbook_core.domain.errors import Conflict, Unavailable
from playbook_core.domain.secret_names import slack_secret_name, webhook_secret_name
from playbook_core.domain.webhooks import signature
from playbook_core.service.execution.render_context import org_context
from playbook_core.service.ingress import sources

MAIN = str(Path(__file__).parents[3] / "functions" / "main.py")
OWNER_SECRET = "owner-secret-0001"
ATTACKER_SECRET = "attacker-secret-9"
ORDER = json.dumps({"id": 4242, "email": "buyer@example.com", "total_price": "10.00"}).encode()


def snapshot(api):
    """Every document of the embedded store, secrets included."""
    with api.app.store._connection() as conn:
        return sorted(conn.execute("SELECT collection, id, data FROM documents").fetchall())


def register(api, org, body):
    return api.as_(orgs=(org,)).post(f"/v1/orgs/{org}/webhook-sources", json=body)


def deliver_shopify(shop, secret, event_id):
    client = functions_framework.create_app("webhook_shopify", MAIN, "http").test_client()
    return client.post(
        "/",
        data=ORDER,
        headers={
            "X-Shopify-Hmac-Sha256": signature(secret, ORDER),
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-Event-Id": event_id,
            "Content-Type": "application/json",
        },
    )


@pytest.mark.parametrize(
    ("platform", "field", "owned", "spellings"),
    [
        ("shopify", "shopDomain", "shop.myshopify.com",
         ["shop.myshopify.com", "SHOP.MyShopify.com", "  shop.myshopify.com "]),
        ("woocommerce", "sourceUrl", "https://store.example.com",
         ["https://store.example.com", "HTTPS://Store.Example.COM:443/", "https://store.example.com/"]),
    ],
)  # fmt: skip
def test_registering_another_orgs_store_writes_nothing(api, platform, field, owned, spellings):
    assert (
        register(
            api, "org_a", {"platform": platform, field: owned, "secret": OWNER_SECRET}
        ).status_code
        == 201
    )
    before = snapshot(api)
    for spelling in spellings:
        taken = register(
            api, "org_b", {"platform": platform, field: spelling, "secret": ATTACKER_SECRET}
        )
        assert taken.status_code == 409, spelling
        assert taken.headers["Content-Type"] == "application/problem+json"
    assert snapshot(api) == before  # no document, no secret, no secret version


def test_after_a_refused_takeover_the_owner_still_receives_and_the_attacker_does_not(api):
    register(
        api,
        "org_a",
        {"platform": "shopify", "shopDomain": "shop.myshopify.com", "secret": OWNER_SECRET},
    )
    register(
        api,
        "org_b",
        {"platform": "shopify", "shopDomain": "shop.myshopify.com", "secret": ATTACKER_SECRET},
    )
    assert deliver_shopify("shop.myshopify.com", ATTACKER_SECRET, "evt-attacker").status_code == 401
    owner = deliver_shopify("shop.myshopify.com", OWNER_SECRET, "evt-owner")
    assert owner.status_code == 200
    assert owner.get_json()["eventId"]


def test_the_secret_is_stored_under_a_name_derived_from_org_and_source(api):
    register(
        api,
        "org_a",
        {"platform": "shopify", "shopDomain": "shop.myshopify.com", "secret": OWNER_SECRET},
    )
    refs = api.app.store.get(WEBHOOK_SOURCES, "shopify_shop.myshopify.com")["secretRefs"]
    name = webhook_secret_name("org_a", "shopify_shop.myshopify.com")
    assert refs[0].startswith(f"local:{name}@")
    assert name != webhook_secret_name("org_b", "shopify_shop.myshopify.com")


def test_a_registration_that_loses_the_race_discards_its_secret(api, monkeypatch):
    """Org B passes the first check, then org A claims the store before B's transaction."""
    store = api.app.store
    original = store.transaction

    def claimed_meanwhile(work):
        monkeypatch.setattr(store, "transaction", original)
        sources.register_source(
            org_id="org_a", platform="shopify", address="race.myshopify.com", secret=OWNER_SECRET,
            low_stock_threshold=None, store=store, secrets=api.app.secrets(), clock=api.app.clock,
        )  # fmt: skip
        return original(work)

    monkeypatch.setattr(store, "transaction", claimed_meanwhile)
    with pytest.raises(Conflict):
        sources.register_source(
            org_id="org_b", platform="shopify", address="race.myshopify.com", secret=ATTACKER_SECRET,
            low_stock_threshold=None, store=store, secrets=api.app.secrets(), clock=api.app.clock,
        )  # fmt: skip
    values = [row[2] for row in snapshot(api) if row[0] == SECRETS]
    assert len(values) == 1
    assert ATTACKER_SECRET not in values[0]
    assert store.get(WEBHOOK_SOURCES, "shopify_race.myshopify.com")["orgId"] == "org_a"


def test_a_reference_to_another_orgs_secret_is_never_used_to_verify(api):
    """A source document whose reference names a secret of another org: that secret is ignored."""
    register(
        api,
        "org_b",
        {"platform": "shopify", "shopDomain": "b.myshopify.com", "secret": ATTACKER_SECRET},
    )
    foreign = api.app.store.get(WEBHOOK_SOURCES, "shopify_b.myshopify.com")["secretRefs"][0]
    register(
        api,
        "org_a",
        {"platform": "shopify", "shopDomain": "a.myshopify.com", "secret": OWNER_SECRET},
    )
    api.app.store.update(WEBHOOK_SOURCES, "shopify_a.myshopify.com", {"secretRefs": [foreign]})
    assert deliver_shopify("a.myshopify.com", ATTACKER_SECRET, "evt-1").status_code == 401


SETTINGS_URL = "/v1/orgs/{org}/settings"


def patch(api, org, body):
    return api.as_(orgs=(org,)).patch(SETTINGS_URL.format(org=org), json=body)


def test_slack_url_is_stored_as_the_orgs_own_secret_and_never_shown(api):
    url = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
    response = patch(api, "org_a", {"slackWebhookUrl": url})
    assert response.status_code == 200
    reference = response.get_json()["slackWebhookSecretRef"]
    assert reference.startswith(f"local:{slack_secret_name('org_a')}@")
    assert api.app.secrets().get(reference) == url
    assert url not in response.get_data(as_text=True)
    assert url not in api.as_().get(SETTINGS_URL.format(org="org_a")).get_data(as_text=True)
    round_trip = patch(api, "org_a", {"slackWebhookSecretRef": reference})  # GET → PATCH works
    assert round_trip.status_code == 200


def test_a_slack_reference_naming_another_orgs_secret_is_refused(api):
    theirs = patch(api, "org_b", {"slackWebhookUrl": "https://hooks.slack.com/services/B/B/B"})
    their_ref = theirs.get_json()["slackWebhookSecretRef"]
    before = snapshot(api)
    for reference in (
        their_ref,
        f"local:{slack_secret_name('org_b')}",
        f"projects/p/secrets/{slack_secret_name('org_b')}/versions/latest",
        "projects/p/secrets/slack-org_b",
        "projects/p/secrets/MAILJET_API_KEY",
        f"local:{slack_secret_name('org_a')}/../{slack_secret_name('org_b')}",
    ):
        refused = patch(api, "org_a", {"slackWebhookSecretRef": reference})
        assert refused.status_code == 422, reference
        assert refused.get_json()["errors"][0]["path"] == "slackWebhookSecretRef"
    assert snapshot(api) == before


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/computeMetadata/v1/",
        "ftp://hooks.slack.com/x",
        "not a url",
        "https://",
    ],
)
def test_a_slack_url_that_is_not_https_is_refused_and_nothing_is_stored(api, url):
    before = snapshot(api)
    assert patch(api, "org_a", {"slackWebhookUrl": url}).status_code == 422
    assert snapshot(api) == before


def test_a_refused_settings_patch_stores_no_slack_secret(api):
    before = snapshot(api)
    refused = patch(
        api,
        "org_a",
        {"slackWebhookUrl": "https://hooks.slack.com/services/A/A/A", "timezone": "Mars/Base"},
    )
    assert refused.status_code == 422
    assert snapshot(api) == before


def unavailable(work):
    raise Unavailable("firestore is down")


def secret_ids(api):
    return [row[1] for row in snapshot(api) if row[0] == SECRETS]


def test_rotating_a_source_secret_keeps_two_versions_and_destroys_the_rest(api):
    for secret in ("first-secret-1", "second-secret-2", "third-secret-3"):
        register(
            api,
            "org_a",
            {"platform": "shopify", "shopDomain": "shop.myshopify.com", "secret": secret},
        )
    refs = api.app.store.get(WEBHOOK_SOURCES, "shopify_shop.myshopify.com")["secretRefs"]
    assert [api.app.secrets().get(r) for r in refs] == ["third-secret-3", "second-secret-2"]
    assert sorted(secret_ids(api)) == sorted(r.removeprefix("local:") for r in refs)


def test_a_registration_the_store_fails_to_save_leaves_no_secret(api, monkeypatch):
    monkeypatch.setattr(api.app.store, "transaction", unavailable)
    response = register(
        api,
        "org_a",
        {"platform": "shopify", "shopDomain": "x.myshopify.com", "secret": OWNER_SECRET},
    )
    assert response.status_code == 503
    assert secret_ids(api) == []


def test_registering_again_with_the_same_secret_keeps_it_when_the_store_fails(api, monkeypatch):
    body = {"platform": "shopify", "shopDomain": "x.myshopify.com", "secret": OWNER_SECRET}
    register(api, "org_a", body)
    kept = secret_ids(api)
    monkeypatch.setattr(api.app.store, "transaction", unavailable)
    assert register(api, "org_a", body).status_code == 503
    assert secret_ids(api) == kept  # the live version is not the failed request's to destroy


def test_replacing_or_clearing_the_slack_url_destroys_the_old_version(api):
    first = patch(api, "org_a", {"slackWebhookUrl": "https://hooks.slack.com/services/A/A/one"})
    second = patch(api, "org_a", {"slackWebhookUrl": "https://hooks.slack.com/services/A/A/two"})
    assert secret_ids(api) == [second.get_json()["slackWebhookSecretRef"].removeprefix("local:")]
    assert first.get_json()["slackWebhookSecretRef"] != second.get_json()["slackWebhookSecretRef"]
    cleared = patch(api, "org_a", {"slackWebhookUrl": None})
    assert cleared.get_json()["slackWebhookSecretRef"] is None
    assert secret_ids(api) == []


def test_slack_counts_as_configured_only_for_the_orgs_own_secret(api):
    theirs = patch(api, "org_b", {"slackWebhookUrl": "https://hooks.slack.com/services/B/B/B"})
    api.app.store.set(
        SETTINGS,
        "org_a",
        {"orgId": "org_a", "slackWebhookSecretRef": theirs.get_json()["slackWebhookSecretRef"]},
    )
    assert org_context(api.app.store, "org_a")["slackConfigured"] is False
    patch(api, "org_a", {"slackWebhookUrl": "https://hooks.slack.com/services/A/A/A"})
    assert org_context(api.app.store, "org_a")["slackConfigured"] is True
