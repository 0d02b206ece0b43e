"""Store registration keeps the secret server side (api.md §5, domain.md §6.1)."""

import json

from playbook_core.domain.collections import SECRETS, WEBHOOK_SOURCES

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
        "lowStockThreshold": None,
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
