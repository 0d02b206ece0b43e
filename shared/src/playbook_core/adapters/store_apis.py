"""The store APIs the catch-up pass reads orders from (issue #16), behind the StoreOrders port.

Shopify: the Admin GraphQL API, orders by `updated_at` with keyset cursors; each node is rebuilt
into the REST/webhook order JSON, so `normalise.shopify_order` reads it as it reads a webhook.
WooCommerce: the REST API, whose orders already have the webhook shape. It pages by number, and
an order modified during a pass moves to the end of the listing, so the next page would start one
order later and skip one never read. A pass therefore moves `modified_after` instead: each page
starts a second before the previous page's last `date_modified_gmt`, `exclude`-ing the ids read
in that second. A page that is all one second (more orders changed in it than a page holds) is
followed by that second alone, by id, less the ids read (by page number past 200 of them).

A throttle is an answer, not an error: `OrdersPage.wait_s` says how long to wait before asking
for the same page again (Shopify's cost bucket, WooCommerce's 429). No answer, a timeout or a
5xx is `Unavailable` (the task is retried); a refusal is a `PermanentProviderError`, code
`provider_auth` for 401/403. No detail ever holds a token, key or secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from playbook_core.adapters import provider_errors
from playbook_core.domain.errors import PermanentProviderError, Unavailable
from playbook_core.domain.normal_forms import parse_timestamp
from playbook_core.ports import OrdersPage

SHOPIFY_LINE_ITEMS = 10  # lines fetched with each order; a longer order's rest come after
SHOPIFY_MAX_PAGE = 14  # orders per query that keep its cost under Shopify's 1000-point ceiling
SHOPIFY_PAGE = 10
WOOCOMMERCE_MAX_PAGE = 100
WOOCOMMERCE_PAGE = 50
WOOCOMMERCE_MAX_EXCLUDE = 200  # ids one request names (~2 KB of URL, commas escaped); then by page
_MORE_LINE_ITEMS = 100  # per follow-up query: cost 503
_DEFAULT_WAIT_S = 1.0  # a throttle that does not say for how long
_MIN_WAIT_S = 0.1
_MAX_DETAIL = 300
_SHOP = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")
_SHOPIFY = "Shopify Admin API"
_WOOCOMMERCE = "WooCommerce REST API"

_MONEY = "fragment Money on MoneyBag { shopMoney { amount currencyCode } }"
_ADDRESS = """fragment Address on MailingAddress {
  firstName lastName name company address1 address2 city province provinceCode country
  countryCodeV2 zip phone
}"""
_LINE_ITEM = """fragment Line on LineItem {
  id name title quantity sku variantTitle vendor
  variant { id legacyResourceId } product { id legacyResourceId }
  originalUnitPriceSet { ...Money }
}"""
ORDERS_QUERY = f"""query CatchUpOrders($first: Int!, $after: String, $query: String!,
    $lines: Int!) {{
  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      id legacyResourceId name email phone createdAt updatedAt processedAt closedAt
      cancelledAt cancelReason displayFinancialStatus displayFulfillmentStatus currencyCode
      tags note sourceName test
      totalPriceSet {{ ...Money }} subtotalPriceSet {{ ...Money }}
      totalDiscountsSet {{ ...Money }} totalTaxSet {{ ...Money }}
      customer {{
        id legacyResourceId email phone firstName lastName
        emailMarketingConsent {{ marketingState marketingOptInLevel consentUpdatedAt }}
        smsMarketingConsent {{ marketingState marketingOptInLevel consentUpdatedAt }}
        defaultAddress {{ ...Address }}
      }}
      billingAddress {{ ...Address }} shippingAddress {{ ...Address }}
      lineItems(first: $lines) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ ...Line }} }}
    }}
  }}
}}
{_MONEY}
{_ADDRESS}
{_LINE_ITEM}"""
LINE_ITEMS_QUERY = f"""query OrderLineItems($id: ID!, $after: String) {{
  order(id: $id) {{
    lineItems(first: {_MORE_LINE_ITEMS}, after: $after) {{
      pageInfo {{ hasNextPage endCursor }} nodes {{ ...Line }}
    }}
  }}
}}
{_MONEY}
{_LINE_ITEM}"""

# GraphQL displayFulfillmentStatus → REST `fulfillment_status`; every other state is REST's null.
_FULFILMENT = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial", "RESTOCKED": "restocked"}


class _Throttled(Exception):  # an internal signal: it never leaves this module
    def __init__(self, wait_s: float) -> None:
        super().__init__(f"throttled for {wait_s:.2f} s")
        self.wait_s = wait_s


def _timeout(timeout_s: float) -> httpx.Timeout:
    return httpx.Timeout(timeout_s, connect=min(5.0, timeout_s))


def _utc_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """A provider's own words, cut short and without any credential we sent it."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text[:_MAX_DETAIL]


@contextmanager
def _answered(provider: str) -> Iterator[None]:
    """No answer is `Unavailable` (retried); a URL that can never work is configuration."""
    try:
        yield
    except (httpx.UnsupportedProtocol, httpx.InvalidURL):
        raise PermanentProviderError(
            f"the {provider} URL is not usable", code="provider_not_configured"
        ) from None
    except httpx.TimeoutException as exc:
        raise Unavailable(f"{provider} timed out ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise Unavailable(f"{provider} is unreachable ({type(exc).__name__})") from None


def _check_status(
    response: httpx.Response, provider: str, refusal: str, secrets: tuple[str, ...]
) -> None:
    """Return on a 2xx; a 429 raises _Throttled; the rest raise what the caller should do."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429:
        wait = provider_errors.retry_after_seconds(response.headers)
        raise _Throttled(max(_MIN_WAIT_S, _DEFAULT_WAIT_S if wait is None else wait))
    if status >= 500 or status == 408:
        raise Unavailable(f"{provider} answered {status}")
    if 300 <= status < 400:
        raise PermanentProviderError(
            f"{provider} answered a redirect ({status}): register the store's canonical URL",
            code=provider_errors.PROTOCOL_ERROR, http_status=status,
        )  # fmt: skip
    said = _scrub(refusal, secrets)
    code = "provider_auth" if status in {401, 403} else "provider_rejected"
    detail = f"{provider} refused the request ({status})" + (f": {said}" if said else "")
    raise PermanentProviderError(detail, code=code, http_status=status)


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _protocol(provider: str, what: str) -> PermanentProviderError:
    return PermanentProviderError(f"{provider}: {what}", code=provider_errors.PROTOCOL_ERROR)


# --- Shopify ---------------------------------------------------------------------------------


class ShopifyAdmin:
    """Orders of one shop at a time through the Admin GraphQL API (`X-Shopify-Access-Token`)."""

    def __init__(
        self,
        api_base: str | None,
        version: str,
        http: httpx.Client | None = None,
        *,
        timeout_s: float = 20.0,
    ) -> None:
        self.api_base = api_base.rstrip("/") if api_base else None
        self.version = version
        self.http = http or httpx.Client()
        self.timeout_s = timeout_s

    def url(self, shop: str) -> str:
        root = f"{self.api_base}/{shop}" if self.api_base else f"https://{shop}"
        return f"{root}/admin/api/{self.version}/graphql.json"

    def orders_updated_since(
        self, shop: str, token: str, since: datetime, after: str | None, page_size: int
    ) -> OrdersPage:
        """Orders with `updated_at >= since`, oldest update first; throttled: wait, same page."""
        if not 0 < page_size <= SHOPIFY_MAX_PAGE:
            raise ValueError(f"page_size must be 1 to {SHOPIFY_MAX_PAGE} (the query cost limit)")
        if not _SHOP.match(shop):
            raise PermanentProviderError(
                "the source's shop domain is not a hostname", code="provider_not_configured"
            )
        if not token:
            raise PermanentProviderError(
                "the source has no Shopify Admin API access token", code="provider_not_configured"
            )
        variables = {
            "first": page_size,
            "after": after,
            "query": f"updated_at:>='{_utc_text(since)}'",
            "lines": SHOPIFY_LINE_ITEMS,
        }
        try:
            data = self._query(shop, token, ORDERS_QUERY, variables)
            connection = _map(data.get("orders"))
            nodes = connection.get("nodes")
            if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
                raise _protocol(_SHOPIFY, "the answer has no orders.nodes list")
            orders = [rest_order(node, self._more_lines(shop, token, node)) for node in nodes]
        except _Throttled as throttled:
            return OrdersPage(orders=[], next_cursor=after, wait_s=throttled.wait_s)
        page_info = _map(connection.get("pageInfo"))
        cursor = page_info.get("endCursor") if page_info.get("hasNextPage") is True else None
        if cursor is not None and not isinstance(cursor, str):
            raise _protocol(_SHOPIFY, "pageInfo.endCursor is not a string")
        return OrdersPage(orders=orders, next_cursor=cursor, wait_s=None)

    def _more_lines(self, shop: str, token: str, node: dict[str, Any]) -> list[dict[str, Any]]:
        """All of an order's line items: the first ones came with it, the rest page by page."""
        connection = _map(node.get("lineItems"))
        lines = [line for line in connection.get("nodes") or [] if isinstance(line, dict)]
        info = _map(connection.get("pageInfo"))
        while info.get("hasNextPage") is True:
            variables = {"id": node.get("id"), "after": info.get("endCursor")}
            data = self._query(shop, token, LINE_ITEMS_QUERY, variables)
            more = _map(_map(data.get("order")).get("lineItems"))
            page = [line for line in more.get("nodes") or [] if isinstance(line, dict)]
            info = _map(more.get("pageInfo"))
            if not page:  # a server that promises more and sends none must not loop us
                raise _protocol(_SHOPIFY, "a line-item page promised more and sent none")
            lines += page
        return lines

    def _query(self, shop: str, token: str, query: str, variables: dict[str, Any]) -> Any:
        with _answered(_SHOPIFY):
            response = self.http.post(
                self.url(shop),
                json={"query": query, "variables": variables},
                headers={"X-Shopify-Access-Token": token},
                timeout=_timeout(self.timeout_s),
            )
        _check_status(response, _SHOPIFY, _shopify_refusal(response), (token,))
        body = provider_errors.json_body(response, _SHOPIFY)
        if not isinstance(body, dict):
            raise _protocol(_SHOPIFY, "the answer is not a JSON object")
        errors = body.get("errors")
        if errors:
            raise _graphql_failure(errors, _map(body.get("extensions")), (token,))
        data = body.get("data")
        if not isinstance(data, dict):
            raise _protocol(_SHOPIFY, "the answer has no data")
        return data


def _shopify_refusal(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return ""
    return errors if isinstance(errors, str) else ""


def _graphql_failure(
    errors: Any, extensions: dict[str, Any], secrets: tuple[str, ...]
) -> Exception:
    """A THROTTLED query as `_Throttled`; any other GraphQL error refuses the page whole."""
    listed = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    codes = {str(_map(e.get("extensions")).get("code") or "") for e in listed}
    if "THROTTLED" in codes:
        return _Throttled(throttle_wait(_map(extensions.get("cost"))))
    messages = "; ".join(str(e.get("message") or "") for e in listed) or str(errors)
    # Data the app may not read (a scope it lacks) is an access problem, not a bad query.
    code = "provider_auth" if "ACCESS_DENIED" in codes else "provider_rejected"
    return PermanentProviderError(
        f"{_SHOPIFY} refused the query: {_scrub(messages, secrets)}", code=code
    )


def throttle_wait(cost: Mapping[str, Any]) -> float:
    """Seconds until the bucket holds the query's cost: (requested − available) / restoreRate."""
    status = _map(cost.get("throttleStatus"))
    requested = _number(cost.get("requestedQueryCost"))
    available = _number(status.get("currentlyAvailable"))
    rate = _number(status.get("restoreRate"))
    if requested is None or available is None or rate is None or rate <= 0:
        return _DEFAULT_WAIT_S
    return max(_MIN_WAIT_S, (requested - available) / rate)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _legacy_id(value: Any) -> int | str | None:
    """Shopify's UnsignedInt64 (a string) as the webhook's number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value if isinstance(value, str) and value else None


def _gid_number(value: Any) -> int | str | None:
    """`gid://shopify/LineItem/123` → 123."""
    return _legacy_id(value.rsplit("/", 1)[-1]) if isinstance(value, str) else None


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _amount(bag: Any) -> Any:
    return _map(_map(bag).get("shopMoney")).get("amount")


def _rest_address(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    address = _map(value)
    return {
        "first_name": address.get("firstName"),
        "last_name": address.get("lastName"),
        "name": address.get("name"),
        "company": address.get("company"),
        "address1": address.get("address1"),
        "address2": address.get("address2"),
        "city": address.get("city"),
        "province": address.get("province"),
        "province_code": address.get("provinceCode"),
        "country": address.get("country"),
        "country_code": address.get("countryCodeV2"),
        "zip": address.get("zip"),
        "phone": address.get("phone"),
    }


def _rest_consent(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {
        "state": _lower(value.get("marketingState")),
        "opt_in_level": _lower(value.get("marketingOptInLevel")),
        "consent_updated_at": value.get("consentUpdatedAt"),
    }


def _rest_customer(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {
        "id": _legacy_id(value.get("legacyResourceId")),
        "admin_graphql_api_id": value.get("id"),
        "email": value.get("email"),
        "phone": value.get("phone"),
        "first_name": value.get("firstName"),
        "last_name": value.get("lastName"),
        "email_marketing_consent": _rest_consent(value.get("emailMarketingConsent")),
        "sms_marketing_consent": _rest_consent(value.get("smsMarketingConsent")),
        "default_address": _rest_address(value.get("defaultAddress")),
    }


def _rest_line(line: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _gid_number(line.get("id")),
        "admin_graphql_api_id": line.get("id"),
        "name": line.get("name"),
        "title": line.get("title"),
        "quantity": line.get("quantity"),
        "sku": line.get("sku"),
        "variant_id": _legacy_id(_map(line.get("variant")).get("legacyResourceId")),
        "product_id": _legacy_id(_map(line.get("product")).get("legacyResourceId")),
        "variant_title": line.get("variantTitle"),
        "vendor": line.get("vendor"),
        "price": _amount(line.get("originalUnitPriceSet")),
    }


def rest_order(node: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
    """A GraphQL Order node (and all its line items) in the REST/webhook order JSON shape."""
    if _legacy_id(node.get("legacyResourceId")) is None:
        raise _protocol(_SHOPIFY, "an order node has no legacyResourceId")
    tags = node.get("tags")
    return {
        "id": _legacy_id(node.get("legacyResourceId")),
        "admin_graphql_api_id": node.get("id"),
        "name": node.get("name"),
        "email": node.get("email"),
        "phone": node.get("phone"),
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "processed_at": node.get("processedAt"),
        "closed_at": node.get("closedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "cancel_reason": _lower(node.get("cancelReason")),
        "financial_status": _lower(node.get("displayFinancialStatus")),
        "fulfillment_status": _FULFILMENT.get(str(node.get("displayFulfillmentStatus"))),
        "currency": node.get("currencyCode"),
        "total_price": _amount(node.get("totalPriceSet")),
        "subtotal_price": _amount(node.get("subtotalPriceSet")),
        "total_discounts": _amount(node.get("totalDiscountsSet")),
        "total_tax": _amount(node.get("totalTaxSet")),
        "customer": _rest_customer(node.get("customer")),
        "billing_address": _rest_address(node.get("billingAddress")),
        "shipping_address": _rest_address(node.get("shippingAddress")),
        "line_items": [_rest_line(line) for line in lines],
        "tags": ", ".join(str(tag) for tag in tags) if isinstance(tags, list) else "",
        "note": node.get("note"),
        "source_name": node.get("sourceName"),
        "test": node.get("test") is True,
    }


# --- WooCommerce -----------------------------------------------------------------------------


def store_host(source_url: str) -> str:
    """The store's host (and explicit port), as the local stand-in keys stores."""
    parts = urlsplit(source_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentProviderError(
            "the source's store URL is not an http(s) URL", code="provider_not_configured"
        )
    try:
        port = parts.port
    except ValueError:
        raise PermanentProviderError(
            "the source's store URL has a bad port", code="provider_not_configured"
        ) from None
    return parts.hostname.lower() + (f":{port}" if port else "")


class WooCommerceApi:
    """Orders of one store at a time through the WooCommerce REST API v3 (HTTP Basic auth)."""

    def __init__(
        self, api_base: str | None, http: httpx.Client | None = None, *, timeout_s: float = 30.0
    ) -> None:
        self.api_base = api_base.rstrip("/") if api_base else None
        self.http = http or httpx.Client()
        self.timeout_s = timeout_s

    def url(self, source_url: str) -> str:
        host = store_host(source_url)
        if self.api_base:
            return f"{self.api_base}/{host}/wp-json/wc/v3/orders"
        parts = urlsplit(source_url)  # never its user:password part: that is not ours to send
        return f"{parts.scheme}://{host}{parts.path.rstrip('/')}/wp-json/wc/v3/orders"

    def orders_modified_after(  # noqa: PLR0917 - the request's parameters, in the order it reads
        self, source_url: str, key: str, secret: str, since: datetime, page: int, per_page: int,
        *, before: datetime | None = None, exclude: tuple[int, ...] = (),
    ) -> OrdersPage:  # fmt: skip
        """Orders modified after `since`, oldest first; `next_cursor` is the next page number.

        With `before`, only those modified before it too, by id; `exclude` leaves those ids out.
        """
        if not 0 < per_page <= WOOCOMMERCE_MAX_PAGE or page < 1:
            raise ValueError(f"page must be ≥ 1 and per_page 1 to {WOOCOMMERCE_MAX_PAGE}")
        if not key or not secret:
            raise PermanentProviderError(
                "the source has no WooCommerce consumer key and secret",
                code="provider_not_configured",
            )
        params = {
            "modified_after": _utc_text(since).removesuffix("Z"),
            "dates_are_gmt": "true",
            "orderby": "modified" if before is None else "id",
            "order": "asc",
            "per_page": str(per_page),
            "page": str(page),
        }
        if before is not None:
            params["modified_before"] = _utc_text(before).removesuffix("Z")
        if exclude:
            params["exclude"] = ",".join(str(order_id) for order_id in exclude)
        url = self.url(source_url)
        with _answered(_WOOCOMMERCE):
            response = self.http.get(
                url, params=params, auth=(key, secret), timeout=_timeout(self.timeout_s)
            )
        try:
            _check_status(response, _WOOCOMMERCE, _woo_refusal(response), (key, secret))
        except _Throttled as throttled:
            return OrdersPage(orders=[], next_cursor=str(page), wait_s=throttled.wait_s)
        body = provider_errors.json_body(response, _WOOCOMMERCE)
        if not isinstance(body, list) or not all(isinstance(order, dict) for order in body):
            raise _protocol(_WOOCOMMERCE, "the answer is not a list of orders")
        return OrdersPage(orders=body, next_cursor=_next_page(response, page, per_page, len(body)))


def _next_page(response: httpx.Response, page: int, per_page: int, listed: int) -> str | None:
    total = response.headers.get("X-WP-TotalPages", "").strip()
    if total.isdigit():
        return str(page + 1) if page < int(total) else None
    # Without the header (a cache stripped it), a full page may have a next one.
    return str(page + 1) if listed == per_page else None


def _woo_refusal(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    return " ".join(str(body[k]) for k in ("code", "message") if isinstance(body.get(k), str))


# --- the port --------------------------------------------------------------------------------


class StoreApiOrders:
    """The StoreOrders port: a source's platform picks the API, its credentials the access."""

    def __init__(
        self,
        *,
        shopify_base: str | None,
        shopify_version: str,
        woocommerce_base: str | None,
        http: httpx.Client | None = None,
        shopify_page: int = SHOPIFY_PAGE,
        woocommerce_page: int = WOOCOMMERCE_PAGE,
    ) -> None:
        client = http or httpx.Client()
        self.shopify = ShopifyAdmin(shopify_base, shopify_version, client)
        self.woocommerce = WooCommerceApi(woocommerce_base, client)
        self.shopify_page = shopify_page
        self.woocommerce_page = woocommerce_page

    def orders_since(
        self,
        platform: Literal["shopify", "woocommerce"],
        address: str,
        credentials: Mapping[str, str],
        since: datetime,
        cursor: str | None,
    ) -> OrdersPage:
        if platform == "shopify":
            token = credentials.get("adminAccessToken") or ""
            return self.shopify.orders_updated_since(
                address, token, since, cursor, self.shopify_page
            )
        key = credentials.get("consumerKey") or ""
        secret = credentials.get("consumerSecret") or ""
        at = _WooPosition.decode(cursor) if cursor else _WooPosition(after=since)
        answered = self.woocommerce.orders_modified_after(
            address, key, secret, at.after, at.page, self.woocommerce_page,
            before=at.after + timedelta(seconds=2) if at.one_second else None, exclude=at.read,
        )  # fmt: skip
        if answered.wait_s is not None:
            return OrdersPage(orders=[], next_cursor=cursor, wait_s=answered.wait_s)
        following = at.following(answered)
        return OrdersPage(
            orders=answered.orders, next_cursor=following.encode() if following else None
        )


@dataclass(frozen=True)
class _WooPosition:
    """Where a WooCommerce pass reads next (the module doc says why not by page number)."""

    after: datetime  # modified_after: orders changed after this second
    read: tuple[int, ...] = ()  # ids changed in the second after `after`, read already
    one_second: bool = False  # only that second, by id
    page: int = 1

    def following(self, answered: OrdersPage) -> _WooPosition | None:
        if self.one_second:
            return self._in_second(answered)
        if answered.next_cursor is None:
            return None
        seconds = [_modified_second(order) for order in answered.orders]
        last = seconds[-1] if seconds else None
        if last is None:  # nothing to move by (an empty page that promises more: orders hidden)
            return replace(self, page=self.page + 1)
        at_last = _ids(
            o for o, second in zip(answered.orders, seconds, strict=True) if second == last
        )
        if last - timedelta(seconds=1) > self.after:
            return _WooPosition(after=last - timedelta(seconds=1), read=at_last)
        # The whole page changed in one second, and more may have: read that second by id.
        return _WooPosition(after=self.after, read=self.read + at_last, one_second=True)

    def _in_second(self, answered: OrdersPage) -> _WooPosition:
        if answered.next_cursor is None:  # the crowded second is read: go on after it
            return _WooPosition(after=self.after + timedelta(seconds=1))
        ids = _ids(answered.orders)
        if ids and len(self.read) + len(ids) <= WOOCOMMERCE_MAX_EXCLUDE:
            return replace(self, read=self.read + ids)
        return replace(self, page=self.page + 1)  # nothing to exclude by, or too much: by number

    def encode(self) -> str:
        return json.dumps([_utc_text(self.after), self.read, self.one_second, self.page])

    @staticmethod
    def decode(cursor: str) -> _WooPosition:
        try:
            after, read, one_second, page = json.loads(cursor)
            moment, read, page = parse_timestamp(after), tuple(read), int(page)
        except (ValueError, TypeError) as exc:
            raise ValueError("not a WooCommerce cursor of this adapter") from exc
        if moment is None or page < 1 or not all(isinstance(i, int) for i in read):
            raise ValueError("not a WooCommerce cursor of this adapter")
        return _WooPosition(moment, read, one_second is True, page)


def _modified_second(order: dict[str, Any]) -> datetime | None:
    moment = parse_timestamp(order.get("date_modified_gmt"))
    return moment.replace(microsecond=0) if moment else None


def _ids(orders: Iterable[dict[str, Any]]) -> tuple[int, ...]:
    return tuple(order["id"] for order in orders if isinstance(order.get("id"), int))
