"""The store API adapters (catch-up pass, issue #16) against the Shopify and WooCommerce stand-ins.

Everything goes over real HTTP: the production adapters talk to the stand-ins, which speak each
provider's wire protocol (a real GraphQL schema for Shopify) and record what they were sent.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulators.standin_masking import MASK, MaskingStandIn
from emulators.standin_shopify_admin import MAX_QUERY_COST, TOKEN_HEADER, ShopifyAdminStandIn
from emulators.standins import (
    NAMES,
    SHOPIFY_ADMIN_TEST_TOKEN,
    WOOCOMMERCE_TEST_CONSUMER_KEY,
    WOOCOMMERCE_TEST_CONSUMER_SECRET,
    start_shopify_admin,
    start_standins,
    start_woocommerce_api,
)
from playbook_core.adapters import store_apis
from playbook_core.adapters.store_apis import (
    SHOPIFY_LINE_ITEMS,
    SHOPIFY_MAX_PAGE,
    ShopifyAdmin,
    StoreApiOrders,
    WooCommerceApi,
)
from playbook_core.domain import normalise
from playbook_core.domain.errors import PermanentProviderError, Unavailable

WEBHOOKS = Path(__file__).parents[1] / "data" / "webhooks"
SHOPIFY_FIXTURES = ("shopify_orders_create.json", "shopify_orders_fulfilled.json")
WOO_FIXTURES = ("woocommerce_order_created.json", "woocommerce_order_updated.json")
SHOP = "jsmith.myshopify.com"
STORE = "https://shop.example.com"
VERSION = "2025-01"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TOKEN, KEY, SECRET = (
    SHOPIFY_ADMIN_TEST_TOKEN,
    WOOCOMMERCE_TEST_CONSUMER_KEY,
    WOOCOMMERCE_TEST_CONSUMER_SECRET,
)


def fixture(name: str) -> dict[str, Any]:
    return json.loads((WEBHOOKS / name).read_text())


class FakeClock:
    """Monotonic seconds the test moves: bucket refills without real waiting or races."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def shopify(clock):
    handle = MaskingStandIn(
        ShopifyAdminStandIn(TOKEN, clock=clock),
        masked_headers=[TOKEN_HEADER, "Authorization"],
        timeout_sleep_s=2.0,
    )
    yield handle
    handle.stop()


@pytest.fixture
def woo():
    handle = start_woocommerce_api(timeout_sleep_s=2.0)
    yield handle
    handle.stop()


@pytest.fixture
def http():
    with httpx.Client(timeout=5.0) as client:
        yield client


def iso(moment: datetime) -> str:
    return moment.isoformat()


def shopify_order(order_id: int, updated: datetime, **changes: Any) -> dict[str, Any]:
    order = fixture("shopify_orders_create.json")
    order.update(id=order_id, name=f"#{order_id}", updated_at=iso(updated), **changes)
    order["created_at"] = changes.get("created_at", iso(updated - timedelta(days=1)))
    return order


def woo_order(order_id: int, modified: datetime, **changes: Any) -> dict[str, Any]:
    order = fixture("woocommerce_order_created.json")
    gmt = modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    order.update(id=order_id, number=str(order_id), date_modified_gmt=gmt, date_modified=gmt)
    order.update(changes)
    return order


def post_shopify(http, handle, order, shop=SHOP) -> dict[str, Any]:
    response = http.post(f"{handle.url}/__orders", json={"shop": shop, "order": order})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def post_woo(http, handle, order, store=STORE) -> dict[str, Any]:
    response = http.post(f"{handle.url}/__orders", json={"store": store, "order": order})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def recorded(http, handle) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = http.get(f"{handle.url}/__requests").json()
    return records


def graphql(http, handle, query, variables=None, *, token=TOKEN, shop=SHOP) -> httpx.Response:
    return http.post(
        f"{handle.url}/{shop}/admin/api/{VERSION}/graphql.json",
        json={"query": query, "variables": variables or {}},
        headers={TOKEN_HEADER: token},
    )


def admin(handle, **options) -> ShopifyAdmin:
    return ShopifyAdmin(handle.url, VERSION, **options)


def all_shopify_pages(api, since, page_size, token=TOKEN) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        page = api.orders_updated_since(SHOP, token, since, cursor, page_size)
        assert page.wait_s is None
        pages.append([order["id"] for order in page.orders])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


# --- Shopify: paging, filter, updates ----------------------------------------------------------


def test_shopify_pages_follow_update_order_with_cursors(shopify, http):
    # Posted out of order; ids and update times disagree, so only updated_at can order them.
    updates = {7: 5, 3: 1, 9: 2, 1: 7, 5: 3, 2: 6, 8: 4}
    for order_id, minutes in updates.items():
        post_shopify(http, shopify, shopify_order(order_id, T0 + timedelta(minutes=minutes)))

    pages = all_shopify_pages(admin(shopify), T0, page_size=3)

    assert pages == [[3, 9, 5], [8, 7, 2], [1]]
    queries = [r["body"]["variables"] for r in recorded(http, shopify)]
    assert [q["after"] is None for q in queries] == [True, False, False]
    assert {q["query"] for q in queries} == {"updated_at:>='2026-03-01T12:00:00Z'"}


def test_shopify_since_filter_keeps_orders_updated_at_or_after_it(shopify, http):
    for order_id, offset in ((1, -60), (2, -1), (3, 0), (4, 1), (5, 60)):
        post_shopify(http, shopify, shopify_order(order_id, T0 + timedelta(seconds=offset)))

    page = admin(shopify).orders_updated_since(SHOP, TOKEN, T0, None, 10)

    assert [order["id"] for order in page.orders] == [3, 4, 5]
    assert page.next_cursor is None
    assert all(datetime.fromisoformat(o["updated_at"]) >= T0 for o in page.orders)


def test_shopify_strict_after_filter_and_other_shops_are_separate(shopify, http):
    for order_id, offset in ((1, 0), (2, 1)):
        post_shopify(http, shopify, shopify_order(order_id, T0 + timedelta(seconds=offset)))
    post_shopify(http, shopify, shopify_order(99, T0), shop="other.myshopify.com")
    query = "query($q: String) { orders(first: 10, query: $q) { nodes { legacyResourceId } } }"

    strict = graphql(http, shopify, query, {"q": f"updated_at:>'{iso(T0)}'"}).json()
    other = graphql(http, shopify, query, {}, shop="other.myshopify.com").json()

    assert [n["legacyResourceId"] for n in strict["data"]["orders"]["nodes"]] == ["2"]
    assert [n["legacyResourceId"] for n in other["data"]["orders"]["nodes"]] == ["99"]


def test_shopify_reposting_an_order_updates_it_in_place(shopify, http):
    first = post_shopify(http, shopify, shopify_order(1, T0, financial_status="pending"))
    post_shopify(http, shopify, shopify_order(2, T0 + timedelta(minutes=1)))
    again = post_shopify(
        http, shopify,
        shopify_order(1, T0 + timedelta(minutes=2), financial_status="paid", cancelled_at=None),
    )  # fmt: skip

    page = admin(shopify).orders_updated_since(SHOP, TOKEN, T0, None, 10)

    assert (first["updated"], again["updated"]) == (False, True)
    assert [order["id"] for order in page.orders] == [2, 1]
    assert page.orders[1]["financial_status"] == "paid"
    assert normalise.shopify_order(page.orders[1])["status"] == "paid"


def test_shopify_an_order_updated_between_pages_is_read_again_not_lost(shopify, http):
    for order_id in range(1, 5):
        post_shopify(http, shopify, shopify_order(order_id, T0 + timedelta(minutes=order_id)))
    api = admin(shopify)
    first = api.orders_updated_since(SHOP, TOKEN, T0, None, 2)
    post_shopify(http, shopify, shopify_order(1, T0 + timedelta(minutes=10)))  # moves to the end

    second = api.orders_updated_since(SHOP, TOKEN, T0, first.next_cursor, 2)

    assert [o["id"] for o in first.orders] == [1, 2]
    assert [o["id"] for o in second.orders] == [3, 4]
    third = api.orders_updated_since(SHOP, TOKEN, T0, second.next_cursor, 2)
    assert [o["id"] for o in third.orders] == [1]
    assert third.next_cursor is None


def test_shopify_long_orders_bring_all_their_line_items(shopify, http):
    order = shopify_order(1, T0)
    template = order["line_items"][0]
    order["line_items"] = [
        {**template, "id": 1000 + n, "title": f"Item {n}", "quantity": n + 1}
        for n in range(SHOPIFY_LINE_ITEMS + 115)
    ]
    post_shopify(http, shopify, order)
    roomy = {"maximumAvailable": 5000, "currentlyAvailable": 5000}  # three queries, one call
    assert http.post(f"{shopify.url}/__bucket", json=roomy).status_code == 200

    page = admin(shopify).orders_updated_since(SHOP, TOKEN, T0, None, 5)

    lines = page.orders[0]["line_items"]
    assert [line["title"] for line in lines] == [f"Item {n}" for n in range(len(lines))]
    assert len(lines) == SHOPIFY_LINE_ITEMS + 115
    operations = [r["body"]["query"].split("(")[0] for r in recorded(http, shopify)]
    assert operations == ["query CatchUpOrders", "query OrderLineItems", "query OrderLineItems"]
    assert normalise.shopify_order(page.orders[0]) == normalise.shopify_order(order)


# --- Shopify: GraphQL, query cost and throttling -----------------------------------------------


def test_shopify_is_a_real_graphql_server(shopify, http):
    post_shopify(http, shopify, shopify_order(1, T0))
    unknown = graphql(http, shopify, "{ orders(first: 1) { nodes { nope } } }").json()
    missing = graphql(http, shopify, "{ orders { nodes { id } } }").json()
    aliased = graphql(
        http, shopify,
        """query Q { recent: orders(first: 1, reverse: true, sortKey: UPDATED_AT) {
             edges { cursor node { ...F } } } }
           fragment F on Order { number: name currencyCode displayFulfillmentStatus }""",
    ).json()  # fmt: skip

    assert "data" not in unknown
    assert "Cannot query field 'nope' on type 'Order'." in unknown["errors"][0]["message"]
    assert "first" in missing["errors"][0]["message"]
    assert "of type 'Int!' is required" in missing["errors"][0]["message"]
    node = aliased["data"]["recent"]["edges"][0]["node"]
    assert node == {
        "number": "#1",
        "currencyCode": "USD",
        "displayFulfillmentStatus": "UNFULFILLED",
    }


def test_shopify_answers_carry_the_calculated_query_cost(shopify, http, clock):
    post_shopify(http, shopify, shopify_order(1, T0))  # five line items
    query = """{ orders(first: 10) { nodes { id totalPriceSet { shopMoney { amount } }
                 lineItems(first: 20) { nodes { id product { id } } } } } }"""

    answer = graphql(http, shopify, query).json()
    clock.now += 2.0
    refilled = http.get(f"{shopify.url}/__bucket", params={"shop": SHOP}).json()

    cost = answer["extensions"]["cost"]
    # Planned: 2 + 10 × (order 1 + money bag 2 + lineItems (2 + 20 × 2)); actual: one order,
    # five lines, three with a product and two without.
    assert cost["requestedQueryCost"] == 2 + 10 * (1 + 2 + 2 + 20 * 2)
    assert cost["actualQueryCost"] == 2 + (1 + 2 + 2 + 3 * 2 + 2 * 1)
    assert cost["throttleStatus"] == {
        "maximumAvailable": 1000.0,
        "currentlyAvailable": 1000.0 - cost["actualQueryCost"],
        "restoreRate": 50.0,
    }
    assert refilled["currentlyAvailable"] == 1000.0  # two seconds at 50/s refill the spend


def test_shopify_refuses_a_query_above_the_single_query_cost_limit(shopify, http):
    answer = graphql(
        http, shopify, "{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }"
    ).json()

    assert answer["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert answer["extensions"]["cost"]["requestedQueryCost"] > MAX_QUERY_COST


def test_shopify_adapter_pages_stay_under_the_cost_limit(shopify, http):
    with pytest.raises(ValueError, match="page_size"):
        admin(shopify).orders_updated_since(SHOP, TOKEN, T0, None, SHOPIFY_MAX_PAGE + 1)

    admin(shopify).orders_updated_since(SHOP, TOKEN, T0, None, SHOPIFY_MAX_PAGE)

    [record] = recorded(http, shopify)
    assert record["responseStatus"] == 200
    assert record["requestedQueryCost"] <= MAX_QUERY_COST


def test_shopify_throttled_then_succeeds_after_waiting(shopify, http, clock):
    post_shopify(http, shopify, shopify_order(1, T0))
    bucket = {"shop": SHOP, "currentlyAvailable": 10, "restoreRate": 50}
    assert http.post(f"{shopify.url}/__bucket", json=bucket).status_code == 200
    api = admin(shopify)

    throttled = api.orders_updated_since(SHOP, TOKEN, T0, "cursor-1", 4)
    raw = recorded(http, shopify)[-1]
    clock.now += throttled.wait_s - 0.05
    early = api.orders_updated_since(SHOP, TOKEN, T0, "cursor-1", 4)
    clock.now += 0.1
    waited = api.orders_updated_since(SHOP, TOKEN, T0, None, 4)

    assert raw["throttled"] is True
    assert throttled.orders == []
    assert throttled.next_cursor == "cursor-1"  # the same page again
    assert throttled.wait_s == pytest.approx((raw["requestedQueryCost"] - 10) / 50)
    assert early.wait_s is not None
    assert early.wait_s <= 0.1
    assert waited.wait_s is None
    assert [order["id"] for order in waited.orders] == [1]


def test_shopify_throttled_answer_has_shopifys_shape(shopify, http):
    http.post(f"{shopify.url}/__bucket", json={"currentlyAvailable": 0, "restoreRate": 0})

    response = graphql(http, shopify, "{ orders(first: 1) { nodes { id } } }")

    assert response.status_code == 200
    body = response.json()
    assert body["errors"] == [{
        "message": "Throttled",
        "extensions": {"code": "THROTTLED",
                       "documentation": "https://shopify.dev/api/usage/rate-limits"},
    }]  # fmt: skip
    assert "data" not in body
    assert body["extensions"]["cost"]["requestedQueryCost"] == 3
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 0.0


def test_shopify_simulated_429_is_a_wait_too(shopify, http):
    http.post(f"{shopify.url}/__behaviour", json={"mode": "error_4xx", "status": 429, "times": 1})

    page = admin(shopify).orders_updated_since(SHOP, TOKEN, T0, None, 2)

    assert (page.orders, page.wait_s) == ([], 1.0)  # Retry-After: 1


# --- Shopify: credentials and failures ---------------------------------------------------------


def test_shopify_wrong_or_missing_token_is_refused(shopify, http):
    wrong = "shpat_wrong_token_value_1234"
    with pytest.raises(PermanentProviderError) as refused:
        admin(shopify).orders_updated_since(SHOP, wrong, T0, None, 2)
    raw = http.post(
        f"{shopify.url}/{SHOP}/admin/api/{VERSION}/graphql.json", json={"query": "{ __typename }"}
    )

    assert (refused.value.code, refused.value.http_status) == ("provider_auth", 401)
    assert wrong not in str(refused.value)
    assert raw.status_code == 401
    assert raw.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }


def test_shopify_requests_are_recorded_without_the_token(shopify, http):
    admin(shopify).orders_updated_since(SHOP, TOKEN, T0, None, 2)

    [record] = recorded(http, shopify)

    assert record["headers"][TOKEN_HEADER.lower()] == MASK
    assert TOKEN not in json.dumps(record)
    assert record["path"] == f"/{SHOP}/admin/api/{VERSION}/graphql.json"


def test_shopify_outages_are_unavailable(shopify, http):
    http.post(f"{shopify.url}/__behaviour", json={"mode": "error_5xx", "status": 502, "times": 1})
    with pytest.raises(Unavailable, match="answered 502"):
        admin(shopify).orders_updated_since(SHOP, TOKEN, T0, None, 2)

    http.post(f"{shopify.url}/__behaviour", json={"mode": "timeout", "times": 1})
    with pytest.raises(Unavailable, match="timed out"):
        admin(shopify, timeout_s=0.3).orders_updated_since(SHOP, TOKEN, T0, None, 2)

    with pytest.raises(Unavailable, match="unreachable"):
        ShopifyAdmin("http://127.0.0.1:9", VERSION).orders_updated_since(SHOP, TOKEN, T0, None, 2)


def test_shopify_other_refusals_are_permanent_and_name_shopifys_words(shopify, http):
    http.post(f"{shopify.url}/__behaviour", json={"mode": "error_4xx", "status": 402, "times": 1})
    with pytest.raises(PermanentProviderError, match="Unavailable Shop") as refused:
        admin(shopify).orders_updated_since(SHOP, TOKEN, T0, None, 2)
    http.post(f"{shopify.url}/__behaviour", json={"mode": "malformed", "times": 1})
    with pytest.raises(PermanentProviderError) as malformed:
        admin(shopify).orders_updated_since(SHOP, TOKEN, T0, None, 2)

    assert refused.value.code == "provider_rejected"
    assert malformed.value.code == "provider_protocol_error"


def test_shopify_url_is_the_shops_own_without_a_base():
    api = ShopifyAdmin(None, VERSION)

    assert api.url(SHOP) == f"https://{SHOP}/admin/api/{VERSION}/graphql.json"
    assert ShopifyAdmin("http://x:1/", VERSION).url(SHOP) == (
        f"http://x:1/{SHOP}/admin/api/{VERSION}/graphql.json"
    )


# --- Shopify: a rebuilt order normalises as its webhook does ------------------------------------


@pytest.mark.parametrize("name", SHOPIFY_FIXTURES)
def test_shopify_rebuilt_order_normalises_as_its_webhook(shopify, http, name):
    webhook = fixture(name)
    post_shopify(http, shopify, webhook)

    [rebuilt] = (
        admin(shopify).orders_updated_since(SHOP, TOKEN, T0 - timedelta(days=3650), None, 5).orders
    )

    assert normalise.shopify_order(rebuilt) == normalise.shopify_order(webhook)
    for country in ("US", "CA"):
        assert normalise.shopify_customer(
            rebuilt, customer_topic=False, default_country=country
        ) == normalise.shopify_customer(webhook, customer_topic=False, default_country=country)
    assert rebuilt["updated_at"] == "2022-01-01T00:00:00Z"  # Shopify's DateTime: UTC, `Z`


REST_FINANCIAL = ("pending", "authorized", "partially_paid", "paid", "partially_refunded",
                  "refunded", "voided", "expired")  # fmt: skip
amounts = st.decimals(min_value=0, max_value=100_000, places=2).map(str)
line_items = st.lists(
    st.fixed_dictionaries({
        "id": st.integers(1, 2**53),
        "title": st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                         min_size=1, max_size=20),
        "quantity": st.integers(0, 50),
        "price": amounts,
        "sku": st.one_of(st.none(), st.just(""), st.text("ABC-123", min_size=1, max_size=8)),
        "product_id": st.one_of(st.none(), st.integers(1, 2**62)),
        "variant_id": st.one_of(st.none(), st.integers(1, 2**62)),
    }),
    max_size=12,
)  # fmt: skip
consents = st.one_of(
    st.none(),
    st.fixed_dictionaries({
        "state": st.sampled_from(["subscribed", "not_subscribed", "unsubscribed", "pending"]),
        "opt_in_level": st.sampled_from(["single_opt_in", "confirmed_opt_in", "unknown", None]),
        "consent_updated_at": st.just(None),
    }),
)  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=st.fixed_dictionaries({
        "financial": st.one_of(st.none(), st.sampled_from(REST_FINANCIAL)),
        "fulfilment": st.sampled_from([None, "fulfilled", "partial", "restocked"]),
        "cancelled": st.booleans(),
        "total": amounts,
        "currency": st.sampled_from(["USD", "CAD", "EUR", "JPY", "KWD"]),
        "lines": line_items,
        "offset_h": st.integers(-11, 14),
        "email_consent": consents,
        "sms_consent": consents,
    })
)  # fmt: skip
def test_shopify_rebuilt_order_normalises_as_its_webhook_property(shopify, http, clock, case):
    http.delete(f"{shopify.url}/__orders")
    clock.now += 1000.0  # a full bucket for each example
    # The same instant in the shop's own offset, as webhooks write it.
    zone = timezone(timedelta(hours=case["offset_h"]))
    created = (T0 - timedelta(days=1)).astimezone(zone)
    webhook = shopify_order(
        1, T0, created_at=created.isoformat(), financial_status=case["financial"],
        fulfillment_status=case["fulfilment"], cancelled_at=iso(T0) if case["cancelled"] else None,
        total_price=case["total"], total_price_set=None, currency=case["currency"],
        line_items=[{**line, "name": line["title"]} for line in case["lines"]],
    )  # fmt: skip
    webhook["customer"] = {
        **webhook["customer"], "email_marketing_consent": case["email_consent"],
        "sms_marketing_consent": case["sms_consent"],
    }  # fmt: skip
    post_shopify(http, shopify, webhook)

    [rebuilt] = admin(shopify).orders_updated_since(SHOP, TOKEN, T0, None, 5).orders

    assert normalise.shopify_order(rebuilt) == normalise.shopify_order(webhook)
    assert normalise.shopify_customer(
        rebuilt, customer_topic=False, default_country="US"
    ) == normalise.shopify_customer(webhook, customer_topic=False, default_country="US")


# --- WooCommerce ------------------------------------------------------------------------------


def all_woo_pages(api, since, per_page, key=KEY, secret=SECRET) -> list[list[int]]:
    pages, page_number = [], 1
    while True:
        page = api.orders_modified_after(STORE, key, secret, since, page_number, per_page)
        assert page.wait_s is None
        pages.append([order["id"] for order in page.orders])
        if page.next_cursor is None:
            return pages
        page_number = int(page.next_cursor)


def test_woo_pages_by_number_in_modified_order(woo, http):
    modified = {40: 3, 10: 6, 30: 1, 20: 5, 50: 2}
    for order_id, minutes in modified.items():
        post_woo(http, woo, woo_order(order_id, T0 + timedelta(minutes=minutes)))

    pages = all_woo_pages(WooCommerceApi(woo.url), T0, per_page=2)

    assert pages == [[30, 50], [40, 20], [10]]
    requests = recorded(http, woo)
    assert [r["query"]["page"] for r in requests] == ["1", "2", "3"]
    assert requests[0]["query"] == {
        "modified_after": "2026-03-01T12:00:00", "dates_are_gmt": "true", "orderby": "modified",
        "order": "asc", "per_page": "2", "page": "1",
    }  # fmt: skip
    assert [r["path"] for r in requests] == ["/shop.example.com/wp-json/wc/v3/orders"] * 3


def test_woo_lists_with_wordpress_paging_headers(woo, http):
    for order_id in range(1, 6):
        post_woo(http, woo, woo_order(order_id, T0 + timedelta(minutes=order_id)))

    response = http.get(
        f"{woo.url}/shop.example.com/wp-json/wc/v3/orders",
        params={"per_page": 2, "page": 3, "orderby": "date", "order": "desc"},
        auth=(KEY, SECRET),
    )

    assert response.status_code == 200
    assert (response.headers["X-WP-Total"], response.headers["X-WP-TotalPages"]) == ("5", "3")
    assert len(response.json()) == 1


def test_woo_modified_after_is_exclusive(woo, http):
    for order_id, offset in ((1, -1), (2, 0), (3, 1)):
        post_woo(http, woo, woo_order(order_id, T0 + timedelta(seconds=offset)))

    page = WooCommerceApi(woo.url).orders_modified_after(STORE, KEY, SECRET, T0, 1, 10)

    assert [order["id"] for order in page.orders] == [3]
    assert page.next_cursor is None


def test_woo_one_second_by_id_less_the_excluded(woo, http):
    for order_id, offset in ((5, 1), (1, 1), (3, 1), (2, 0), (4, 2)):
        post_woo(http, woo, woo_order(order_id, T0 + timedelta(seconds=offset)))
    api = WooCommerceApi(woo.url)

    second = api.orders_modified_after(
        STORE, KEY, SECRET, T0, 1, 10, before=T0 + timedelta(seconds=2), exclude=(3, 99)
    )
    refused = http.get(
        f"{woo.url}/shop.example.com/wp-json/wc/v3/orders", params={"exclude": "1,x"},
        auth=(KEY, SECRET),
    )  # fmt: skip

    assert [order["id"] for order in second.orders] == [1, 5]  # T0+1 s only, by id, less 3
    assert recorded(http, woo)[0]["query"]["orderby"] == "id"
    assert refused.status_code == 400
    assert refused.json()["code"] == "rest_invalid_param"


def test_woo_reposting_an_order_updates_it(woo, http):
    first = post_woo(http, woo, woo_order(1, T0 + timedelta(minutes=1)))
    post_woo(http, woo, woo_order(2, T0 + timedelta(minutes=2)))
    again = post_woo(http, woo, woo_order(1, T0 + timedelta(minutes=3), status="completed"))

    page = WooCommerceApi(woo.url).orders_modified_after(STORE, KEY, SECRET, T0, 1, 10)

    assert (first["updated"], again["updated"]) == (False, True)
    assert [(order["id"], order["status"]) for order in page.orders] == [
        (2, "processing"), (1, "completed"),
    ]  # fmt: skip


def test_woo_429_is_a_wait_from_retry_after_then_the_page(woo, http):
    post_woo(http, woo, woo_order(1, T0 + timedelta(minutes=1)))
    http.post(f"{woo.url}/__behaviour", json={"mode": "error_4xx", "status": 429, "times": 2})
    api = WooCommerceApi(woo.url)

    waits = [api.orders_modified_after(STORE, KEY, SECRET, T0, 3, 10) for _ in range(2)]
    page = api.orders_modified_after(STORE, KEY, SECRET, T0, 1, 10)

    assert [(w.orders, w.next_cursor, w.wait_s) for w in waits] == [([], "3", 1.0)] * 2
    assert [order["id"] for order in page.orders] == [1]
    statuses = [r["responseStatus"] for r in recorded(http, woo)]
    assert statuses == [429, 429, 200]


def test_woo_wrong_credentials_are_refused(woo, http):
    wrong_secret = "cs_wrong_secret_value_5678"
    with pytest.raises(PermanentProviderError) as refused:
        WooCommerceApi(woo.url).orders_modified_after(STORE, KEY, wrong_secret, T0, 1, 10)
    raw = http.get(f"{woo.url}/shop.example.com/wp-json/wc/v3/orders")

    assert (refused.value.code, refused.value.http_status) == ("provider_auth", 401)
    assert wrong_secret not in str(refused.value)
    assert KEY not in str(refused.value)
    assert "woocommerce_rest_cannot_view" in str(refused.value)
    assert raw.status_code == 401
    assert raw.json() == {
        "code": "woocommerce_rest_cannot_view",
        "message": "Sorry, you cannot list resources.",
        "data": {"status": 401},
    }


def test_woo_query_parameter_auth_works_and_neither_way_is_recorded(woo, http):
    WooCommerceApi(woo.url).orders_modified_after(STORE, KEY, SECRET, T0, 1, 10)
    by_query = http.get(
        f"{woo.url}/shop.example.com/wp-json/wc/v3/orders",
        params={"consumer_key": KEY, "consumer_secret": SECRET},
    )

    basic, query = recorded(http, woo)
    assert by_query.status_code == 200
    assert (basic["auth"], query["auth"]) == ("basic", "query")
    assert basic["headers"]["authorization"] == MASK
    assert query["query"]["consumer_key"] == query["query"]["consumer_secret"] == MASK
    dumped = json.dumps([basic, query])
    assert KEY not in dumped
    assert SECRET not in dumped


def test_woo_outages_are_unavailable(woo, http):
    http.post(f"{woo.url}/__behaviour", json={"mode": "error_5xx", "times": 1})
    with pytest.raises(Unavailable, match="answered 503"):
        WooCommerceApi(woo.url).orders_modified_after(STORE, KEY, SECRET, T0, 1, 10)
    http.post(f"{woo.url}/__behaviour", json={"mode": "timeout", "times": 1})
    with pytest.raises(Unavailable, match="timed out"):
        WooCommerceApi(woo.url, timeout_s=0.3).orders_modified_after(STORE, KEY, SECRET, T0, 1, 10)


def test_woo_stand_in_refuses_what_woocommerce_refuses(woo, http):
    url = f"{woo.url}/shop.example.com/wp-json/wc/v3/orders"
    too_many = http.get(url, params={"per_page": 101}, auth=(KEY, SECRET))
    bad_date = http.get(url, params={"modified_after": "yesterday"}, auth=(KEY, SECRET))
    no_route = http.get(f"{woo.url}/shop.example.com/wp-json/wc/v3/nope", auth=(KEY, SECRET))

    assert (too_many.status_code, too_many.json()["code"]) == (400, "rest_invalid_param")
    assert bad_date.json()["data"]["params"] == {
        "modified_after": "modified_after is not a valid date."
    }
    assert (no_route.status_code, no_route.json()["code"]) == (404, "rest_no_route")


def test_woo_url_is_the_stores_own_without_a_base():
    assert WooCommerceApi(None).url("https://shop.example.com/store") == (
        "https://shop.example.com/store/wp-json/wc/v3/orders"
    )
    assert WooCommerceApi(None).url("https://ck:cs@shop.example.com:8443") == (
        "https://shop.example.com:8443/wp-json/wc/v3/orders"
    )
    assert WooCommerceApi("http://x:1").url("https://Shop.Example.com/store") == (
        "http://x:1/shop.example.com/wp-json/wc/v3/orders"
    )


@pytest.mark.parametrize("name", WOO_FIXTURES)
def test_woo_listed_order_normalises_as_its_webhook(woo, http, name):
    webhook = fixture(name)
    post_woo(http, woo, webhook)

    [listed] = (
        WooCommerceApi(woo.url)
        .orders_modified_after(STORE, KEY, SECRET, datetime(2017, 3, 22, tzinfo=UTC), 1, 10)
        .orders
    )

    assert normalise.woocommerce_order(listed) == normalise.woocommerce_order(webhook)
    assert normalise.woocommerce_customer(
        listed, customer_topic=False, default_country="US"
    ) == normalise.woocommerce_customer(webhook, customer_topic=False, default_country="US")


# --- the StoreOrders port, and the stand-ins in the set ---------------------------------------


def test_store_orders_port_routes_by_platform_with_the_sources_credentials(shopify, woo, http):
    post_shopify(http, shopify, shopify_order(1, T0 + timedelta(minutes=1)))
    for order_id in (1, 2, 3):
        post_woo(http, woo, woo_order(order_id, T0 + timedelta(minutes=order_id)))
    orders = StoreApiOrders(
        shopify_base=shopify.url, shopify_version=VERSION, woocommerce_base=woo.url,
        woocommerce_page=2,
    )  # fmt: skip

    shop_page = orders.orders_since("shopify", SHOP, {"adminAccessToken": TOKEN}, T0, None)
    woo_creds = {"consumerKey": KEY, "consumerSecret": SECRET}
    first = orders.orders_since("woocommerce", STORE, woo_creds, T0, None)
    second = orders.orders_since("woocommerce", STORE, woo_creds, T0, first.next_cursor)
    with pytest.raises(PermanentProviderError) as no_token:
        orders.orders_since("shopify", SHOP, {}, T0, None)

    assert [o["id"] for o in shop_page.orders] == [1]
    assert [o["id"] for o in first.orders] == [1, 2]
    assert ([o["id"] for o in second.orders], second.next_cursor) == ([3], None)
    # The second page starts a second before order 2 changed, less order 2 itself.
    asked = recorded(http, woo)[-1]["query"]
    assert (asked["modified_after"], asked["exclude"], asked["page"]) == (
        "2026-03-01T12:01:59",
        "2",
        "1",
    )
    assert no_token.value.code == "provider_not_configured"


def test_catch_up_bodies_keep_money_exact(shopify, http):
    post_shopify(http, shopify, shopify_order(1, T0, total_price="0.10", total_price_set=None))

    [order] = admin(shopify).orders_updated_since(SHOP, TOKEN, T0, None, 2).orders
    body = json.loads(json.dumps(order), parse_float=Decimal)  # as the catch-up pass parses

    assert normalise.shopify_order(body)["totalMinor"] == 10


def test_start_standins_includes_the_store_apis(http):
    handles = start_standins()
    try:
        answers = {name: http.get(f"{h.url}/__requests").status_code for name, h in handles.items()}
    finally:
        for handle in handles.values():
            handle.stop()

    assert {"shopifyAdmin", "woocommerceApi"} <= set(NAMES)
    assert answers == dict.fromkeys(NAMES, 200)


def test_shopify_bucket_refills_in_real_time(http):
    handle = start_shopify_admin()
    try:
        set_to = {"shop": SHOP, "currentlyAvailable": 0, "restoreRate": 1000}
        http.post(f"{handle.url}/__bucket", json=set_to)
        time.sleep(0.05)
        after = http.get(f"{handle.url}/__bucket", params={"shop": SHOP}).json()
    finally:
        handle.stop()

    assert after["currentlyAvailable"] >= 50.0
    assert after["restoreRate"] == 1000.0


def woo_store_of(http, woo, seconds, per_page) -> StoreApiOrders:
    """A store whose order n changed `seconds[n - 1]` after T0, read `per_page` at a time."""
    http.delete(f"{woo.url}/__orders")
    for order_id, second in enumerate(seconds, start=1):
        post_woo(http, woo, woo_order(order_id, T0 + timedelta(seconds=second)))
    return StoreApiOrders(
        shopify_base=None, shopify_version=VERSION, woocommerce_base=woo.url,
        woocommerce_page=per_page,
    )  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seconds=st.lists(st.integers(0, 12), min_size=1, max_size=14),
    per_page=st.integers(1, 4),
    touched=st.lists(st.tuples(st.integers(1, 6), st.integers(0, 13)), max_size=4),
)
def test_woo_pass_reads_every_order_while_orders_change_property(
    woo, http, seconds, per_page, touched
):
    """Orders modified between pages move to the end of the listing; none other goes unread.

    `seconds`: each order's modification, seconds after T0 (shared seconds are crowded pages);
    `touched`: (after page n, order index) modified again during the pass.
    """
    orders = woo_store_of(http, woo, seconds, per_page)
    credentials = {"consumerKey": KEY, "consumerSecret": SECRET}
    read, cursor, pages, moved = Counter(), None, 0, Counter()
    while True:
        page = orders.orders_since(
            "woocommerce", STORE, credentials, T0 - timedelta(hours=1), cursor
        )
        assert page.wait_s is None
        pages += 1
        read.update(order["id"] for order in page.orders)
        for after, index in touched:
            if after == pages and index < len(seconds):  # modified now: the listing's newest
                moved[index + 1] += 1
                post_woo(http, woo, woo_order(index + 1, T0 + timedelta(minutes=5, seconds=pages)))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        assert pages <= 2 * len(seconds) + len(touched) + 1  # no page asked for forever

    assert set(read) == set(range(1, len(seconds) + 1))
    # Read once; an order changed during the pass may come again in its new state.
    assert all(1 <= read[order_id] <= 1 + moved[order_id] for order_id in read), (read, moved)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seconds=st.lists(st.integers(0, 3), min_size=1, max_size=12), per_page=st.integers(1, 3))
def test_woo_pass_past_the_exclude_limit_pages_a_crowded_second_by_number_property(
    woo, http, seconds, per_page
):
    """With more ids read in one second than a request may name, the rest come by page number."""
    orders = woo_store_of(http, woo, seconds, per_page)
    credentials = {"consumerKey": KEY, "consumerSecret": SECRET}
    read, cursor, limit = Counter(), None, store_apis.WOOCOMMERCE_MAX_EXCLUDE
    store_apis.WOOCOMMERCE_MAX_EXCLUDE = 2
    try:
        for _ in range(3 * len(seconds) + 2):
            page = orders.orders_since(
                "woocommerce", STORE, credentials, T0 - timedelta(hours=1), cursor
            )
            read.update(order["id"] for order in page.orders)
            cursor = page.next_cursor
            if cursor is None:
                break
    finally:
        store_apis.WOOCOMMERCE_MAX_EXCLUDE = limit

    assert cursor is None  # the pass ended
    assert read == Counter(range(1, len(seconds) + 1))  # each order once
