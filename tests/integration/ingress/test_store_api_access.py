"""Store API credentials for the catch-up pass (issue #16 item 1): kept as secrets, never answered.

A Shopify source may carry an Admin API access token, a WooCommerce source a consumer key and
secret. They go to a secret named from the org and source server side (`storeapi-…`), the
document keeps only the reference, and no answer or stored document carries the values.
"""

import json

import pytest

from playbook_core.domain.collections import SECRETS, WEBHOOK_SOURCES
from playbook_core.domain.secret_names import store_api_secret_name
from playbook_core.service.ingress.sources import read_api_credentials

URL = "/v1/orgs/org_a/webhook-sources"
TOKEN = "shpat_catch-up-token-0001"
KEY, KEY_SECRET = "ck_catch-up-key-0001", "cs_catch-up-secret-0001"
SHOPIFY = {
    "platform": "shopify",
    "shopDomain": "api-shop.myshopify.com",
    "secret": "whsec_12345678",
}
WOO = {
    "platform": "woocommerce",
    "sourceUrl": "https://api-store.example.com",
    "secret": "whsec_12345678",
}


def stored(api, source_id):
    return api.app.store.get(WEBHOOK_SOURCES, source_id)


def credentials(api, source_id):
    return read_api_credentials(stored(api, source_id), "org_a", source_id, api.app.secrets())


def test_a_shopify_token_is_stored_as_a_secret_and_never_answered(api):
    answer = api.as_().post(URL, json={**SHOPIFY, "adminAccessToken": TOKEN})
    assert answer.status_code == 201
    assert answer.get_json()["hasApiAccess"] is True
    assert TOKEN not in answer.get_data(as_text=True)
    source_id = answer.get_json()["id"]
    document = stored(api, source_id)
    assert TOKEN not in json.dumps(document, default=str)
    assert store_api_secret_name("org_a", source_id) in document["apiCredentialsRef"]
    assert credentials(api, source_id) == {"adminAccessToken": TOKEN}
    listed = api.as_().get(URL).get_data(as_text=True)
    assert TOKEN not in listed
    assert '"hasApiAccess":true' in listed.replace(" ", "")


def test_woocommerce_keys_are_stored_together(api):
    answer = api.as_().post(URL, json={**WOO, "consumerKey": KEY, "consumerSecret": KEY_SECRET})
    assert answer.status_code == 201
    body = answer.get_data(as_text=True)
    assert KEY not in body
    assert KEY_SECRET not in body
    source_id = answer.get_json()["id"]
    assert credentials(api, source_id) == {"consumerKey": KEY, "consumerSecret": KEY_SECRET}


@pytest.mark.parametrize(
    "body",
    [
        {**SHOPIFY, "consumerKey": KEY, "consumerSecret": KEY_SECRET},
        {**WOO, "adminAccessToken": TOKEN},
        {**WOO, "consumerKey": KEY},
        {**WOO, "consumerSecret": KEY_SECRET},
        {**SHOPIFY, "adminAccessToken": "short"},
    ],
    ids=["woo keys on shopify", "token on woo", "key alone", "secret alone", "short token"],
)
def test_credentials_for_the_wrong_platform_or_half_a_pair_are_refused_and_write_nothing(api, body):
    answer = api.as_().post(URL, json=body)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert list(api.app.store.query(WEBHOOK_SOURCES, []).docs) == []
    assert list(api.app.store.query(SECRETS, []).docs) == []


def test_registering_again_keeps_the_credentials_replacing_them_retires_the_old_ones(api):
    first = api.as_().post(URL, json={**SHOPIFY, "adminAccessToken": TOKEN}).get_json()
    source_id = first["id"]
    old_reference = stored(api, source_id)["apiCredentialsRef"]
    again = api.as_().post(URL, json=SHOPIFY)  # no token: the stored one stays
    assert again.get_json()["hasApiAccess"] is True
    assert credentials(api, source_id) == {"adminAccessToken": TOKEN}
    api.as_().post(URL, json={**SHOPIFY, "adminAccessToken": TOKEN + "-rotated"})
    assert credentials(api, source_id) == {"adminAccessToken": TOKEN + "-rotated"}
    assert api.app.store.get(SECRETS, old_reference.removeprefix("local:")) is None


def test_deleting_the_source_destroys_its_credentials(api):
    source_id = api.as_().post(URL, json={**SHOPIFY, "adminAccessToken": TOKEN}).get_json()["id"]
    reference = stored(api, source_id)["apiCredentialsRef"]
    assert api.as_().delete(f"{URL}/{source_id}").status_code == 204
    assert api.app.store.get(SECRETS, reference.removeprefix("local:")) is None
