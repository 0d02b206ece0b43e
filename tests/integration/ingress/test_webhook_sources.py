"""Store registration keeps the secret server side (api.md §5, domain.md §6.1)."""

import json
from datetime import timedelta
from pathlib import Path

import functions_framework
import pytest

from playbook_core.domain.collections import SECRETS, WEBHOOK_SOURCES
from playbook_core.domain.webhooks import signature
from playbook_core.service.ingress.recent import SOURCE_FRESH_FOR
from playbook_core.service.ingress.sources import verifying_refs

MAIN = str(Path(__file__).parents[3] / "functions" / "main.py")

URL = "/v1/orgs/org_a/webhook-sources"
SECRET = "shpss_super-secret-value-123"


def test_shopify_source_is_bound_to_the_org_and_the_secret_never_returned(api):
    response = api.as_().post(
        URL, json={"platform": "shopify", "shopDomain": "My-Shop.myshopify.com", "secret": SECRET}
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body == {
        "id": "shopify_my-shop.myshopify.com",
        "platform": "shopify",
        "shopDomain": "my-shop.myshopify.com",
        "sourceUrl": None,
        "status": "active",
        "hasSecret": True,
        "previousSecretExpiresAt": None,
        "lowStockThreshold": None,
        "hasApiAccess": False,
        "lastWebhookAt": None,
        "lastCatchUpAt": None,
        "catchUpCursor": None,
        "missedEvents24h": 0,
        "webhookHealth": "unknown",
    }
    assert SECRET not in response.get_data(as_text=True)
    stored = api.app.store.get(WEBHOOK_SOURCES, "shopify_my-shop.myshopify.com")
    assert stored["orgId"] == "org_a"
    assert SECRET not in json.dumps(stored, default=str)
    assert api.app.secrets().get(stored["secretRefs"][0]) == SECRET


def test_woocommerce_url_is_normalised(api):
    body = (
        api.as_()
        .post(URL, json={"platform": "woocommerce", "sourceUrl": "HTTPS://Shop.Example.com:443/"})
        .get_json()
    )
    assert body["sourceUrl"] == "https://shop.example.com"
    assert body["id"].startswith("woocommerce_")
    assert body["hasSecret"] is False


def test_a_store_of_another_org_cannot_be_taken(api):
    api.as_().post(URL, json={"platform": "shopify", "shopDomain": "shop.myshopify.com"})
    taken = api.as_(orgs=("org_b",)).post(
        "/v1/orgs/org_b/webhook-sources",
        json={"platform": "shopify", "shopDomain": "shop.myshopify.com"},
    )
    assert taken.status_code == 409
    assert "org_a" not in taken.get_data(as_text=True)


def test_secret_rotation_keeps_the_previous_secret_second(api):
    api.as_().post(
        URL,
        json={"platform": "shopify", "shopDomain": "shop.myshopify.com", "secret": "first-secret"},
    )
    api.as_().post(
        URL,
        json={"platform": "shopify", "shopDomain": "shop.myshopify.com", "secret": "second-secret"},
    )
    refs = api.app.store.get(WEBHOOK_SOURCES, "shopify_shop.myshopify.com")["secretRefs"]
    assert [api.app.secrets().get(r) for r in refs] == ["second-secret", "first-secret"]
    assert api.app.store.get(SECRETS, refs[0].removeprefix("local:"))["orgId"] == "_system"


def test_bad_input_is_400(api):
    assert api.as_().post(URL, json={"platform": "magento"}).status_code == 400
    assert (
        api.as_().post(URL, json={"platform": "shopify", "shopDomain": "not a domain"}).status_code
        == 400
    )
    assert (
        api.as_().post(URL, json={"platform": "woocommerce", "sourceUrl": "ftp://x"}).status_code
        == 400
    )
    assert (
        api.as_()
        .post(URL, json={"platform": "shopify", "shopDomain": "a.myshopify.com", "secret": "short"})
        .status_code
        == 400
    )


# --- list, read, rotate, delete (api.md §5 webhook sources) ---------------------------------

SHOP = "rotating.myshopify.com"
SOURCE = f"shopify_{SHOP}"
ONE = f"{URL}/{SOURCE}"
FIRST, SECOND, THIRD = "first-secret-1", "second-secret-2", "third-secret-3"


def register(api, secret=FIRST, shop=SHOP, org="org_a"):
    response = api.as_(orgs=(org,)).post(
        f"/v1/orgs/{org}/webhook-sources",
        json={"platform": "shopify", "shopDomain": shop, "secret": secret},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def deliver(api, secret, shop=SHOP, event_id="evt-1"):
    """A signed Shopify delivery through the deployed webhook function; (status, error)."""
    client = functions_framework.create_app("webhook_shopify", MAIN, "http").test_client()
    body = json.dumps({"id": 1, "updated_at": "2026-11-24T11:00:00Z"}).encode()
    response = client.post(
        "/",
        data=body,
        headers={
            "X-Shopify-Hmac-Sha256": signature(secret, body),
            "X-Shopify-Topic": "products/update",
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-Event-Id": event_id,
            "Content-Type": "application/json",
        },
    )
    return response.status_code, response.get_json().get("error")


def secret_values(api):
    """Every secret value the local secret store holds."""
    return sorted(doc.data.get("value", "") for doc in api.app.store.query(SECRETS).docs)


def test_readers_list_and_read_sources_without_any_secret_or_reference(api):
    register(api)
    register(api, shop="other.myshopify.com")
    register(api, shop="b-shop.myshopify.com", org="org_b")
    stored = api.app.store.get(WEBHOOK_SOURCES, SOURCE)
    viewer = api.as_(role="brand_member")
    listed = viewer.get(URL)
    one = viewer.get(ONE)
    assert (listed.status_code, one.status_code) == (200, 200)
    assert sorted(s["id"] for s in listed.get_json()["webhookSources"]) == [
        "shopify_other.myshopify.com",
        SOURCE,
    ]
    assert listed.get_json()["nextPageToken"] is None
    assert one.get_json()["id"] == SOURCE
    assert one.get_json()["hasSecret"] is True
    for text in (listed.get_data(as_text=True), one.get_data(as_text=True)):
        assert FIRST not in text
        assert "secretRef" not in text
        for reference in stored["secretRefs"]:
            assert reference not in text
            assert reference.removeprefix("local:") not in text


def test_the_listing_pages(api):
    for n in range(3):
        register(api, shop=f"shop{n}.myshopify.com")
    first = api.as_().get(URL, query_string={"pageSize": 2}).get_json()
    rest = api.as_().get(URL, query_string={"pageToken": first["nextPageToken"]}).get_json()
    assert len(first["webhookSources"]) == 2
    assert len(rest["webhookSources"]) == 1
    assert rest["nextPageToken"] is None


def test_rotation_keeps_the_previous_secret_verifying_for_the_overlap(api):
    register(api)
    assert deliver(api, FIRST, event_id="e0") == (200, None)
    rotated = api.as_().post(f"{ONE}:rotateSecret", json={"secret": SECOND})
    assert rotated.status_code == 200, rotated.get_json()
    assert SECOND not in rotated.get_data(as_text=True)
    expires = api.app.clock.now() + timedelta(hours=24)
    assert rotated.get_json()["previousSecretExpiresAt"] == expires.isoformat().replace(
        "+00:00", "Z"
    )
    stored = api.app.store.get(WEBHOOK_SOURCES, SOURCE)
    assert [api.app.secrets().get(r) for r in stored["secretRefs"]] == [SECOND, FIRST]
    assert stored["previousSecretExpiresAt"] == expires
    assert deliver(api, SECOND, event_id="e1") == (200, None)
    assert deliver(api, FIRST, event_id="e2") == (200, None)  # senders still on the old one
    assert deliver(api, "never-registered", event_id="e3") == (401, "invalid_signature")


def test_after_the_overlap_only_the_new_secret_verifies(api):
    register(api)
    api.as_().post(f"{ONE}:rotateSecret", json={"secret": SECOND})
    stored = api.app.store.get(WEBHOOK_SOURCES, SOURCE)
    api.app.clock.advance(hours=24)
    assert verifying_refs(stored, api.app.clock.now()) == stored["secretRefs"][:1]
    api.app.clock.advance(seconds=-1)
    assert verifying_refs(stored, api.app.clock.now()) == stored["secretRefs"]


def test_after_the_overlap_the_previous_secret_is_refused_by_the_webhook(api):
    register(api)
    api.as_().post(f"{ONE}:rotateSecret", json={"secret": SECOND})
    api.app.clock.advance(hours=24, seconds=1)
    assert deliver(api, SECOND, event_id="e1") == (200, None)
    assert deliver(api, FIRST, event_id="e2") == (401, "invalid_signature")


def test_a_second_rotation_destroys_the_oldest_version_and_the_next_write_drops_an_expired_one(api):
    register(api)
    api.as_().post(f"{ONE}:rotateSecret", json={"secret": SECOND})
    api.as_().post(f"{ONE}:rotateSecret", json={"secret": THIRD})
    refs = api.app.store.get(WEBHOOK_SOURCES, SOURCE)["secretRefs"]
    assert [api.app.secrets().get(r) for r in refs] == [THIRD, SECOND]
    assert FIRST not in secret_values(api)
    api.app.clock.advance(hours=25)
    updated = api.as_().post(URL, json={"platform": "shopify", "shopDomain": SHOP})
    assert updated.get_json()["previousSecretExpiresAt"] is None
    refs = api.app.store.get(WEBHOOK_SOURCES, SOURCE)["secretRefs"]
    assert [api.app.secrets().get(r) for r in refs] == [THIRD]
    assert SECOND not in secret_values(api)


@pytest.mark.parametrize(
    "body",
    [{}, {"secret": "short"}, {"secret": 12345678}, {"secret": SECOND, "extra": 1}, ["x"]],
)
def test_a_refused_rotation_writes_nothing(api, body):
    register(api)
    before = (api.app.store.get(WEBHOOK_SOURCES, SOURCE), secret_values(api))
    response = api.as_().post(f"{ONE}:rotateSecret", json=body)
    assert response.status_code == 400
    assert (api.app.store.get(WEBHOOK_SOURCES, SOURCE), secret_values(api)) == before


def test_delete_removes_the_source_and_destroys_its_secrets(api):
    register(api)
    api.as_().post(f"{ONE}:rotateSecret", json={"secret": SECOND})
    assert deliver(api, SECOND, event_id="e0") == (200, None)
    deleted = api.as_().delete(ONE)
    assert deleted.status_code == 204
    assert api.app.store.get(WEBHOOK_SOURCES, SOURCE) is None
    assert FIRST not in secret_values(api)
    assert SECOND not in secret_values(api)
    # A webhook instance keeps a verified source up to SOURCE_FRESH_FOR; this app is one.
    api.app.clock.advance(seconds=SOURCE_FRESH_FOR.total_seconds())
    assert deliver(api, SECOND, event_id="e1") == (401, "unknown_source")
    assert api.as_().get(ONE).status_code == 404
    assert api.as_().delete(ONE).status_code == 404


def test_viewers_may_not_rotate_or_delete(api):
    register(api)
    viewer = api.as_(role="brand_member")
    assert viewer.post(f"{ONE}:rotateSecret", json={"secret": SECOND}).status_code == 403
    assert viewer.delete(ONE).status_code == 403
    assert api.app.store.get(WEBHOOK_SOURCES, SOURCE) is not None
    assert SECOND not in secret_values(api)


def test_another_orgs_source_is_not_found_under_ones_own_path(api):
    register(api, shop="b-shop.myshopify.com", org="org_b")
    theirs = f"{URL}/shopify_b-shop.myshopify.com"
    assert api.as_().get(theirs).status_code == 404
    assert api.as_().post(f"{theirs}:rotateSecret", json={"secret": SECOND}).status_code == 404
    assert api.as_().delete(theirs).status_code == 404
    assert api.app.store.get(WEBHOOK_SOURCES, "shopify_b-shop.myshopify.com")["orgId"] == "org_b"
    assert SECOND not in secret_values(api)
    assert "b-shop" not in api.as_().get(URL).get_data(as_text=True)


def test_another_orgs_path_is_forbidden(api):
    register(api, shop="b-shop.myshopify.com", org="org_b")
    theirs = "/v1/orgs/org_b/webhook-sources"
    assert api.as_().get(theirs).status_code == 403
    assert api.as_().get(f"{theirs}/shopify_b-shop.myshopify.com").status_code == 403
    assert api.as_().delete(f"{theirs}/shopify_b-shop.myshopify.com").status_code == 403


def test_rotating_back_to_the_previous_secret_makes_it_current(api):
    register(api)
    api.as_().post(f"{ONE}:rotateSecret", json={"secret": SECOND})
    again = api.as_().post(f"{ONE}:rotateSecret", json={"secret": FIRST})
    assert again.status_code == 200
    refs = api.app.store.get(WEBHOOK_SOURCES, SOURCE)["secretRefs"]
    assert [api.app.secrets().get(r) for r in refs] == [FIRST, SECOND]
    same = api.as_().post(f"{ONE}:rotateSecret", json={"secret": FIRST})
    assert same.status_code == 200
    assert api.app.store.get(WEBHOOK_SOURCES, SOURCE)["secretRefs"] == refs
