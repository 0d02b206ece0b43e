"""Shopify Admin GraphQL stand-in (issue #16): every shop's `orders` query, with query cost.

One server answers `POST /{shop}/admin/api/{version}/graphql.json` for any shop. The schema is a
real GraphQL schema (graphql-core) covering the Order fields the catch-up pass reads; orders are
posted in the REST/webhook JSON shape (`POST /__orders {shop, order}`) and served as GraphQL
nodes, so a client must rebuild the webhook shape itself. Every answer carries Shopify's
calculated query cost, paid from a per-shop leaky bucket; a query the bucket cannot pay is
answered `THROTTLED` (HTTP 200), as Shopify does.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import json
import operator
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar

import phonenumbers
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInt,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    execute_sync,
    get_named_type,
    parse,
    validate,
    value_from_ast,
    value_from_ast_untyped,
)

from emulators.standin_core import Provider, Reply, Request, is_int

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

TOKEN_HEADER = "X-Shopify-Access-Token"  # noqa: S105 - a header name
_PATH = re.compile(r"^/(?P<shop>[^/]+)/admin/api/(?P<version>[^/]+)/graphql\.json$")
_SHOP = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")
_VERSION = re.compile(r"^(?:\d{4}-(?:01|04|07|10)|unstable)$")
_AUTH_MESSAGE = "[API] Invalid API key or access token (unrecognized login or wrong password)"
_RATE_LIMITS_DOC = "https://shopify.dev/api/usage/rate-limits"
MAX_QUERY_COST = 1000  # Shopify's single-query ceiling, whatever the bucket holds
MAX_PAGE = 250  # `first` above this is refused, as Shopify does
DEFAULT_BUCKET = 1000.0
DEFAULT_RESTORE_RATE = 50.0  # points per second

# ISO 4217 codes Shopify's CurrencyCode enum carries (plus XXX, "unrecognised").
_CURRENCIES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF XXX YER ZAR ZMW ZWL
""".split()  # noqa: SIM905 - a table reads better than 160 quoted strings
# libphonenumber's regions are the ISO 3166 codes Shopify's CountryCode enum carries; ZZ is
# Shopify's "unknown region".
_COUNTRIES = sorted(phonenumbers.SUPPORTED_REGIONS | {"ZZ"})
_FINANCIAL = ("AUTHORIZED", "EXPIRED", "PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED", "PENDING",
              "REFUNDED", "VOIDED")  # fmt: skip
# REST `fulfillment_status` (null = nothing fulfilled) ↔ GraphQL displayFulfillmentStatus.
FULFILMENT_FROM_REST = {None: "UNFULFILLED", "fulfilled": "FULFILLED",
                        "partial": "PARTIALLY_FULFILLED", "restocked": "RESTOCKED"}  # fmt: skip
_CANCEL_REASONS = ("CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "OTHER", "STAFF")
_EMAIL_STATES = ("INVALID", "NOT_SUBSCRIBED", "PENDING", "REDACTED", "SUBSCRIBED", "UNSUBSCRIBED")
_SMS_STATES = ("NOT_SUBSCRIBED", "PENDING", "REDACTED", "SUBSCRIBED", "UNSUBSCRIBED")
_OPT_IN_LEVELS = ("CONFIRMED_OPT_IN", "SINGLE_OPT_IN", "UNKNOWN")

SDL = f"""
schema {{ query: QueryRoot }}

scalar DateTime
scalar Decimal
scalar UnsignedInt64

enum CurrencyCode {{ {" ".join(_CURRENCIES)} }}
enum CountryCode {{ {" ".join(_COUNTRIES)} }}
enum OrderSortKeys {{ CREATED_AT ID PROCESSED_AT UPDATED_AT }}
enum OrderDisplayFinancialStatus {{ {" ".join(_FINANCIAL)} }}
enum OrderDisplayFulfillmentStatus {{
  FULFILLED IN_PROGRESS ON_HOLD OPEN PARTIALLY_FULFILLED PENDING_FULFILLMENT REQUEST_DECLINED
  RESTOCKED SCHEDULED UNFULFILLED
}}
enum OrderCancelReason {{ {" ".join(_CANCEL_REASONS)} }}
enum CustomerEmailMarketingState {{ {" ".join(_EMAIL_STATES)} }}
enum CustomerSmsMarketingState {{ {" ".join(_SMS_STATES)} }}
enum CustomerMarketingOptInLevel {{ {" ".join(_OPT_IN_LEVELS)} }}

type QueryRoot {{
  orders(first: Int!, after: String, sortKey: OrderSortKeys = ID, reverse: Boolean = false,
         query: String): OrderConnection!
  order(id: ID!): Order
}}

type PageInfo {{
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}}

type OrderConnection {{ edges: [OrderEdge!]! nodes: [Order!]! pageInfo: PageInfo! }}
type OrderEdge {{ cursor: String! node: Order! }}

type Order {{
  id: ID!
  legacyResourceId: UnsignedInt64!
  name: String!
  email: String
  phone: String
  createdAt: DateTime!
  updatedAt: DateTime!
  processedAt: DateTime!
  closedAt: DateTime
  cancelledAt: DateTime
  cancelReason: OrderCancelReason
  displayFinancialStatus: OrderDisplayFinancialStatus
  displayFulfillmentStatus: OrderDisplayFulfillmentStatus!
  currencyCode: CurrencyCode!
  totalPriceSet: MoneyBag!
  subtotalPriceSet: MoneyBag
  totalDiscountsSet: MoneyBag!
  totalTaxSet: MoneyBag
  customer: Customer
  billingAddress: MailingAddress
  shippingAddress: MailingAddress
  lineItems(first: Int!, after: String): LineItemConnection!
  tags: [String!]!
  note: String
  sourceName: String
  test: Boolean!
}}

type LineItemConnection {{ edges: [LineItemEdge!]! nodes: [LineItem!]! pageInfo: PageInfo! }}
type LineItemEdge {{ cursor: String! node: LineItem! }}

type LineItem {{
  id: ID!
  name: String!
  title: String!
  quantity: Int!
  sku: String
  variantTitle: String
  vendor: String
  variant: ProductVariant
  product: Product
  originalUnitPriceSet: MoneyBag!
}}

type ProductVariant {{ id: ID! legacyResourceId: UnsignedInt64! }}
type Product {{ id: ID! legacyResourceId: UnsignedInt64! }}
type MoneyBag {{ shopMoney: MoneyV2! presentmentMoney: MoneyV2! }}
type MoneyV2 {{ amount: Decimal! currencyCode: CurrencyCode! }}

type Customer {{
  id: ID!
  legacyResourceId: UnsignedInt64!
  email: String
  phone: String
  firstName: String
  lastName: String
  emailMarketingConsent: CustomerEmailMarketingConsentState
  smsMarketingConsent: CustomerSmsMarketingConsentState
  defaultAddress: MailingAddress
}}

type CustomerEmailMarketingConsentState {{
  marketingState: CustomerEmailMarketingState!
  marketingOptInLevel: CustomerMarketingOptInLevel
  consentUpdatedAt: DateTime
}}

type CustomerSmsMarketingConsentState {{
  marketingState: CustomerSmsMarketingState!
  marketingOptInLevel: CustomerMarketingOptInLevel
  consentUpdatedAt: DateTime
}}

type MailingAddress {{
  firstName: String
  lastName: String
  name: String
  company: String
  address1: String
  address2: String
  city: String
  province: String
  provinceCode: String
  country: String
  countryCodeV2: CountryCode
  zip: String
  phone: String
}}
"""

# --- the REST/webhook order JSON → the GraphQL Order node -------------------------------------


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _legacy_id(value: Any, where: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not is_int(value) or value <= 0:
        raise ValueError(f"{where} must be a positive integer id")
    return value


def _optional_id(value: Any, where: str) -> int | None:
    return None if value is None else _legacy_id(value, where)


def _moment(value: Any, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{where} must be an ISO 8601 timestamp") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def date_time(moment: datetime | None) -> str | None:
    """Shopify's DateTime: UTC, whole seconds, `Z`."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decimal_text(value: Any, where: str) -> str:
    """Shopify's Decimal: no trailing zeros but one decimal place ("10.0", "404.95")."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{where} must be a decimal amount") from None
    if not amount.is_finite():
        raise ValueError(f"{where} must be a decimal amount")
    text = format(amount.normalize(), "f")
    return text if "." in text else f"{text}.0"


def _enum(value: Any, allowed: Iterable[str], where: str) -> str | None:
    if value is None or value == "":
        return None
    name = str(value).upper()
    if name not in allowed:
        raise ValueError(f"{where} {value!r} has no GraphQL counterpart")
    return name


def _currency(value: Any, where: str) -> str:
    code = _enum(value, _CURRENCIES, where)
    if code is None:
        raise ValueError(f"{where} is required")
    return code


def _money_bag(amount: Any, bag: Any, currency: str, where: str) -> dict[str, Any] | None:
    """A MoneyBag from `{key}_set` when the JSON has it, else from the bare amount."""
    if isinstance(bag, dict) and isinstance(bag.get("shop_money"), dict):
        shop = bag["shop_money"]
        presentment = bag.get("presentment_money")
        presentment = presentment if isinstance(presentment, dict) else shop
        return {
            "shopMoney": _money(shop.get("amount"), shop.get("currency_code") or currency, where),
            "presentmentMoney": _money(
                presentment.get("amount"), presentment.get("currency_code") or currency, where
            ),
        }
    if amount is None:
        return None
    money = _money(amount, currency, where)
    return {"shopMoney": money, "presentmentMoney": money}


def _money(amount: Any, currency: Any, where: str) -> dict[str, Any]:
    return {
        "amount": decimal_text(amount, f"{where}.amount"),
        "currencyCode": _currency(currency, f"{where}.currency_code"),
    }


def _address(value: Any, where: str) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {
        "firstName": _text(value.get("first_name")),
        "lastName": _text(value.get("last_name")),
        "name": _text(value.get("name")),
        "company": _text(value.get("company")),
        "address1": _text(value.get("address1")),
        "address2": _text(value.get("address2")),
        "city": _text(value.get("city")),
        "province": _text(value.get("province")),
        "provinceCode": _text(value.get("province_code")),
        "country": _text(value.get("country")),
        "countryCodeV2": _enum(value.get("country_code"), _COUNTRIES, f"{where}.country_code"),
        "zip": _text(value.get("zip")),
        "phone": _text(value.get("phone")),
    }


def _consent(value: Any, states: Iterable[str], where: str) -> dict[str, Any] | None:
    if not isinstance(value, dict) or value.get("state") is None:
        return None
    return {
        "marketingState": _enum(value.get("state"), states, f"{where}.state"),
        "marketingOptInLevel": _enum(
            value.get("opt_in_level"), _OPT_IN_LEVELS, f"{where}.opt_in_level"
        ),
        "consentUpdatedAt": date_time(
            _moment(value.get("consent_updated_at"), f"{where}.consent_updated_at")
        ),
    }


def _customer(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    customer_id = _legacy_id(value.get("id"), "order.customer.id")
    return {
        "id": f"gid://shopify/Customer/{customer_id}",
        "legacyResourceId": str(customer_id),
        "email": _text(value.get("email")),
        "phone": _text(value.get("phone")),
        "firstName": _text(value.get("first_name")),
        "lastName": _text(value.get("last_name")),
        "emailMarketingConsent": _consent(
            value.get("email_marketing_consent"),
            _EMAIL_STATES,
            "order.customer.email_marketing_consent",
        ),
        "smsMarketingConsent": _consent(
            value.get("sms_marketing_consent"),
            _SMS_STATES,
            "order.customer.sms_marketing_consent",
        ),
        "defaultAddress": _address(value.get("default_address"), "order.customer.default_address"),
    }


def _line_item(item: Any, index: int, order_id: int, currency: str) -> dict[str, Any]:
    where = f"order.line_items[{index}]"
    if not isinstance(item, dict):
        raise TypeError(f"{where} must be an object")
    # A line without an id still needs a stable one: derived from the order and position.
    item_id = _optional_id(item.get("id"), f"{where}.id") or order_id * 1000 + index + 1
    quantity = item.get("quantity")
    if not is_int(quantity) or quantity < 0:
        raise ValueError(f"{where}.quantity must be a non-negative integer")
    title = _text(item.get("title")) or _text(item.get("name")) or ""
    variant_id = _optional_id(item.get("variant_id"), f"{where}.variant_id")
    product_id = _optional_id(item.get("product_id"), f"{where}.product_id")
    price = _money_bag(item.get("price"), item.get("price_set"), currency, f"{where}.price")
    return {
        "id": f"gid://shopify/LineItem/{item_id}",
        "name": _text(item.get("name")) or title,
        "title": title,
        "quantity": quantity,
        "sku": _text(item.get("sku")),
        "variantTitle": _text(item.get("variant_title")),
        "vendor": _text(item.get("vendor")),
        "variant": None if variant_id is None else {
            "id": f"gid://shopify/ProductVariant/{variant_id}",
            "legacyResourceId": str(variant_id),
        },
        "product": None if product_id is None else {
            "id": f"gid://shopify/Product/{product_id}", "legacyResourceId": str(product_id),
        },
        "originalUnitPriceSet": price or _money_bag("0", None, currency, f"{where}.price"),
    }  # fmt: skip


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(tag).strip() for tag in value if str(tag).strip()]
    return [tag.strip() for tag in str(value or "").split(",") if tag.strip()]


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """One shop's order: the GraphQL node (line items under `_lineItems`) and its sort keys."""

    legacy_id: int
    created: datetime
    updated: datetime
    processed: datetime
    node: dict[str, Any]
    posted: dict[str, Any]  # the JSON as posted, for `GET /__orders`


def stored_order(order: Any) -> StoredOrder:
    """The REST/webhook order JSON as Shopify's GraphQL would show it; ValueError names a fault."""
    if not isinstance(order, dict):
        raise TypeError("order must be a JSON object")
    order_id = _legacy_id(order.get("id"), "order.id")
    currency = _currency(order.get("currency"), "order.currency")
    created = _moment(order.get("created_at"), "order.created_at") or datetime.now(UTC)
    updated = _moment(order.get("updated_at"), "order.updated_at") or created
    processed = _moment(order.get("processed_at"), "order.processed_at") or created
    fulfilment = order.get("fulfillment_status")
    if fulfilment not in FULFILMENT_FROM_REST:
        raise ValueError(f"order.fulfillment_status {fulfilment!r} has no GraphQL counterpart")
    items = order.get("line_items") or []
    if not isinstance(items, list):
        raise TypeError("order.line_items must be a list")

    def bag(key: str) -> dict[str, Any] | None:
        return _money_bag(order.get(key), order.get(f"{key}_set"), currency, f"order.{key}")

    node = {
        "id": f"gid://shopify/Order/{order_id}",
        "legacyResourceId": str(order_id),
        "name": _text(order.get("name")) or f"#{order.get('order_number') or order_id}",
        "email": _text(order.get("email")),
        "phone": _text(order.get("phone")),
        "createdAt": date_time(created),
        "updatedAt": date_time(updated),
        "processedAt": date_time(processed),
        "closedAt": date_time(_moment(order.get("closed_at"), "order.closed_at")),
        "cancelledAt": date_time(_moment(order.get("cancelled_at"), "order.cancelled_at")),
        "cancelReason": _enum(order.get("cancel_reason"), _CANCEL_REASONS, "order.cancel_reason"),
        "displayFinancialStatus": _enum(
            order.get("financial_status"), _FINANCIAL, "order.financial_status"
        ),
        "displayFulfillmentStatus": FULFILMENT_FROM_REST[fulfilment],
        "currencyCode": currency,
        "totalPriceSet": bag("total_price") or _money_bag("0", None, currency, "total_price"),
        "subtotalPriceSet": bag("subtotal_price"),
        "totalDiscountsSet": bag("total_discounts")
        or _money_bag("0", None, currency, "total_discounts"),
        "totalTaxSet": bag("total_tax"),
        "customer": _customer(order.get("customer")),
        "billingAddress": _address(order.get("billing_address"), "order.billing_address"),
        "shippingAddress": _address(order.get("shipping_address"), "order.shipping_address"),
        "tags": _tags(order.get("tags")),
        "note": _text(order.get("note")),
        "sourceName": _text(order.get("source_name")),
        "test": order.get("test") is True,
        "_lineItems": [
            _line_item(item, index, order_id, currency) for index, item in enumerate(items)
        ],
    }
    # Shopify's DateTime has whole seconds: sort on what a client can see.
    return StoredOrder(
        order_id, created.replace(microsecond=0), updated.replace(microsecond=0),
        processed.replace(microsecond=0), node, order,
    )  # fmt: skip


# --- search syntax, sorting and cursors -------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<field>[a-z_]+):(?P<op><=|>=|<|>)?(?:'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<bare>\S+))"""
    r"|(?P<word>\S+)"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_SEARCH_KEYS: dict[str, Callable[[StoredOrder], Any]] = {
    "updated_at": lambda order: order.updated,
    "created_at": lambda order: order.created,
    "processed_at": lambda order: order.processed,
    "id": lambda order: order.legacy_id,
}
_SORT_KEYS: dict[str, Callable[[StoredOrder], Any]] = {
    "ID": lambda order: (order.legacy_id,),
    "CREATED_AT": lambda order: (order.created, order.legacy_id),
    "UPDATED_AT": lambda order: (order.updated, order.legacy_id),
    "PROCESSED_AT": lambda order: (order.processed, order.legacy_id),
}


def search(
    orders: list[StoredOrder], query: str | None
) -> tuple[list[StoredOrder], list[dict[str, str]]]:
    """The orders a search query selects (terms AND-ed) and warnings for terms it ignored."""
    filters: list[tuple[Callable[[StoredOrder], Any], Callable[[Any, Any], bool], Any]] = []
    warnings: list[dict[str, str]] = []
    for token in _TOKEN.finditer(query or ""):
        if token["word"] is not None:
            if token["word"] != "AND":
                warnings.append({"field": token["word"], "message": "Unsupported search syntax."})
            continue
        name = token["field"]
        raw = next(v for v in (token["sq"], token["dq"], token["bare"], "") if v is not None)
        key = _SEARCH_KEYS.get(name)
        if key is None:
            warnings.append({"field": name, "message": "Invalid search field for this query."})
            continue
        try:
            value: Any = int(raw) if name == "id" else _moment(raw, name)
        except ValueError:
            value = None
        if value is None:
            warnings.append({"field": name, "message": f"Invalid value: {raw!r}."})
            continue
        filters.append((key, _COMPARE[token["op"] or ""], value))
    selected = [o for o in orders if all(compare(key(o), v) for key, compare, v in filters)]
    return selected, warnings


def _cursor(last_id: int, last_value: Any) -> str:
    value = last_value.isoformat() if isinstance(last_value, datetime) else last_value
    raw = json.dumps({"last_id": last_id, "last_value": value}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _position(cursor: str, sort_key: str) -> tuple[Any, ...]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        last_id = int(data["last_id"])
        if sort_key == "ID":
            return (last_id,)
        return (datetime.fromisoformat(data["last_value"]), last_id)
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise GraphQLError("Invalid cursor for current pagination sort.") from None


def _check_first(first: int) -> None:
    if not 0 < first <= MAX_PAGE:
        raise GraphQLError(f"The first argument must be between 1 and {MAX_PAGE}.")


def _connection(
    items: list[tuple[str, dict[str, Any]]], *, has_next: bool, has_previous: bool
) -> dict[str, Any]:
    return {
        "edges": [{"cursor": cursor, "node": node} for cursor, node in items],
        "nodes": [node for _, node in items],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": items[0][0] if items else None,
            "endCursor": items[-1][0] if items else None,
        },
    }


@dataclass
class _Root:
    """One query's view of one shop: a snapshot, so concurrent posts never tear a page."""

    orders: list[StoredOrder]
    query_warnings: list[dict[str, Any]] = field(default_factory=list)


def _resolve_orders(
    root: _Root,
    info: object,
    *,
    first: int,
    after: str | None = None,
    sortKey: str = "ID",  # noqa: N803 - graphql-core passes arguments by their schema names
    reverse: bool = False,
    query: str | None = None,
) -> dict[str, Any]:
    del info  # everything comes from the arguments and the snapshot
    _check_first(first)
    matched, warnings = search(root.orders, query)
    if warnings:
        root.query_warnings.append({"path": ["orders"], "query": query, "warnings": warnings})
    key = _SORT_KEYS[sortKey]
    ordered = sorted(matched, key=key, reverse=reverse)
    if after is not None:
        position = _position(after, sortKey)
        ordered = [o for o in ordered if (key(o) < position if reverse else key(o) > position)]
    page = ordered[:first]
    return _connection(
        [(_cursor(order.legacy_id, key(order)[0]), order.node) for order in page],
        has_next=len(ordered) > first,
        has_previous=after is not None,
    )


def _resolve_order(root: _Root, info: object, id: str) -> dict[str, Any] | None:  # noqa: A002 - the schema's name
    del info  # the id argument is all it needs
    return next((order.node for order in root.orders if order.node["id"] == id), None)


def _resolve_line_items(
    order: dict[str, Any], info: object, *, first: int, after: str | None = None
) -> dict[str, Any]:
    del info  # the order node carries its lines
    _check_first(first)
    lines: list[dict[str, Any]] = order["_lineItems"]
    start = 0
    if after is not None:
        start = _position(after, "ID")[0] + 1  # a line's cursor holds its position
    page = lines[start : start + first]
    return _connection(
        [(_cursor(start + offset, None), line) for offset, line in enumerate(page)],
        has_next=start + first < len(lines),
        has_previous=start > 0,
    )


def build_admin_schema() -> GraphQLSchema:
    schema = build_schema(SDL)
    query_root = schema.query_type
    order_type = schema.get_type("Order")
    # The SDL above defines both; the asserts tell mypy.
    assert query_root is not None  # noqa: S101
    assert isinstance(order_type, GraphQLObjectType)  # noqa: S101
    query_root.fields["orders"].resolve = _resolve_orders
    query_root.fields["order"].resolve = _resolve_order
    order_type.fields["lineItems"].resolve = _resolve_line_items
    return schema


# --- calculated query cost ---------------------------------------------------------------------

_PLANNED = object()  # cost before execution: connections count `first` items


@dataclass(frozen=True, slots=True)
class _CostScope:
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]


def _fields(scope: _CostScope, selection_set: SelectionSetNode | None) -> list[FieldNode]:
    found: list[FieldNode] = []
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            found.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            found += _fields(scope, selection.selection_set)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = scope.fragments.get(selection.name.value)
            if fragment is not None:  # validation has refused unknown and cyclic fragments
                found += _fields(scope, fragment.selection_set)
    return found


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def _first(scope: _CostScope, node: FieldNode) -> int:
    for argument in node.arguments or ():
        if argument.name.value == "first":
            value = value_from_ast(argument.value, GraphQLInt, scope.variables)
            return value if is_int(value) and value > 0 else 0
    return 0


def selection_cost(
    scope: _CostScope, selection_set: SelectionSetNode | None, parent: GraphQLObjectType,
    data: Any = _PLANNED,
) -> int:  # fmt: skip
    """Shopify's rule: scalars and enums 0, an object 1, a connection 2 + its items' cost.

    Planned (`data` left out): each connection counts `first` items. Actual: the items returned.
    """
    total = 0
    for node in _fields(scope, selection_set):
        definition = parent.fields.get(node.name.value)
        named = get_named_type(definition.type) if definition else None
        if not isinstance(named, GraphQLObjectType):
            continue
        value = data
        if data is not _PLANNED:
            value = data.get(_key(node)) if isinstance(data, dict) else None
            if value is None:
                continue  # a null object was never loaded
        if "pageInfo" in named.fields and "nodes" in named.fields:
            total += 2 + _connection_cost(scope, node, named, value)
        else:
            total += 1 + selection_cost(scope, node.selection_set, named, value)
    return total


def _connection_cost(
    scope: _CostScope, node: FieldNode, connection: GraphQLObjectType, value: Any
) -> int:
    item_type = get_named_type(connection.fields["nodes"].type)
    assert isinstance(item_type, GraphQLObjectType)  # noqa: S101 - connections list objects
    # Where the items' selections sit: `nodes { … }` and `edges { node { … } }`, same items.
    paths: list[tuple[SelectionSetNode | None, str | None, str]] = []
    for part in _fields(scope, node.selection_set):
        if part.name.value == "nodes":
            paths.append((part.selection_set, None, _key(part)))
        elif part.name.value == "edges":
            paths += [
                (inner.selection_set, _key(part), _key(inner))
                for inner in _fields(scope, part.selection_set)
                if inner.name.value == "node"
            ]
    if value is _PLANNED:
        each = max((1 + selection_cost(scope, s, item_type) for s, _, _ in paths), default=0)
        return _first(scope, node) * each
    columns = [(selection, _items(value, edges, key)) for selection, edges, key in paths]
    count = max((len(items) for _, items in columns), default=0)
    return sum(
        max(
            (
                1 + selection_cost(scope, s, item_type, items[i])
                for s, items in columns
                if i < len(items)
            ),
            default=0,
        )
        for i in range(count)
    )


def _items(value: Any, edges: str | None, key: str) -> list[Any]:
    if not isinstance(value, dict):
        return []
    if edges is None:
        return list(value.get(key) or [])
    return [edge.get(key) if isinstance(edge, dict) else None for edge in value.get(edges) or []]


# --- the leaky bucket --------------------------------------------------------------------------


@dataclass
class Bucket:
    """One shop's query-cost bucket: drains by each query's cost, refills at `restore_rate`/s."""

    maximum: float
    restore_rate: float
    available: float
    stamp: float

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.stamp)
        self.available = min(self.maximum, self.available + elapsed * self.restore_rate)
        self.stamp = now

    def status(self) -> dict[str, float]:
        return {
            "maximumAvailable": float(self.maximum),
            "currentlyAvailable": float(int(self.available)),  # Shopify reports whole points
            "restoreRate": float(self.restore_rate),
        }


@dataclass(frozen=True, slots=True)
class BucketDefaults:
    """What a shop's bucket starts as; `start` None means full."""

    maximum: float
    restore_rate: float
    start: float | None = None

    def bucket(self, now: float) -> Bucket:
        level = self.maximum if self.start is None else min(self.start, self.maximum)
        return Bucket(self.maximum, self.restore_rate, level, now)

    def changed(
        self, maximum: float | None, rate: float | None, start: float | None
    ) -> BucketDefaults:
        return BucketDefaults(
            maximum or self.maximum,
            self.restore_rate if rate is None else rate,
            self.start if start is None else start,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "maximumAvailable": self.maximum,
            "restoreRate": self.restore_rate,
            "startsAt": self.maximum if self.start is None else min(self.start, self.maximum),
        }


def _number(payload: dict[str, Any], key: str, *, minimum: float) -> float | None:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ValueError(f"{key} must be a number of at least {minimum:g}")
    return float(value)


# --- the provider -----------------------------------------------------------------------------


def _errors_reply(status: int, errors: Any, **notes: Any) -> Reply:
    return Reply(status, json.dumps({"errors": errors}).encode(), notes=notes)


def _control_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, json.dumps({"error": {"code": code, "message": message}}).encode())


_SIMULATED = {
    401: _AUTH_MESSAGE,
    402: "Unavailable Shop",
    403: "Forbidden",
    404: "Not Found",
    423: "Locked",
    429: "Exceeded 2 calls per second for api client. Reduce request rates to resume "
    "uninterrupted service.",
}


class ShopifyAdminStandIn(Provider):
    name: ClassVar[str] = "shopifyAdmin"
    timeout_sleep_s: ClassVar[float] = 25.0  # the adapter's timeout is 20 s

    def __init__(
        self,
        token: str,
        *,
        maximum: float = DEFAULT_BUCKET,
        restore_rate: float = DEFAULT_RESTORE_RATE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token = token.encode()
        self._clock = clock
        self._lock = threading.Lock()
        self._orders: dict[str, dict[int, StoredOrder]] = {}
        self._defaults = BucketDefaults(maximum, restore_rate)
        self._buckets: dict[str, Bucket] = {}
        self._schema = build_admin_schema()

    # --- the Admin API ---------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        match = _PATH.fullmatch(request.path)
        if match is None or not _SHOP.match(match["shop"]) or not _VERSION.match(match["version"]):
            return _errors_reply(404, "Not Found")
        if not hmac.compare_digest(request.header(TOKEN_HEADER).encode(), self._token):
            return _errors_reply(401, _AUTH_MESSAGE)
        if request.method != "POST":
            return _errors_reply(405, "Use POST for the GraphQL Admin API.")
        body = request.body
        if (
            not request.is_json
            or not isinstance(body, dict)
            or not isinstance(body.get("query"), str)
        ):
            return _errors_reply(400, {"query": "Required parameter missing or invalid"})
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return _errors_reply(400, {"variables": "must be an object"})
        operation_name = body.get("operationName")
        reply = self._graphql(
            match["shop"], body["query"], variables,
            operation_name if isinstance(operation_name, str) else None,
        )  # fmt: skip
        return Reply(
            reply.status, reply.body, reply.content_type,
            {"X-Shopify-API-Version": match["version"]}, {"shop": match["shop"], **reply.notes},
        )  # fmt: skip

    def simulated_error(self, status: int) -> Reply:
        message = _SIMULATED.get(
            status, "Internal Server Error" if status >= 500 else "Bad Request"
        )
        return _errors_reply(status, message)

    def _graphql(
        self, shop: str, source: str, variables: dict[str, Any], operation_name: str | None
    ) -> Reply:
        try:
            document = parse(source)
        except GraphQLError as error:
            return _errors_reply(200, [error.formatted])
        problems = validate(self._schema, document)
        if problems:
            return _errors_reply(200, [problem.formatted for problem in problems])
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        operation = next(
            (o for o in operations if operation_name is None or (o.name and o.name.value ==
             operation_name)), None,
        )  # fmt: skip
        if operation is None or (operation_name is None and len(operations) > 1):
            return _errors_reply(200, [{"message": "An operation name is required."}])
        scope = _CostScope(
            {d.name.value: d for d in document.definitions
             if isinstance(d, FragmentDefinitionNode)},
            _with_defaults(operation, variables),
        )  # fmt: skip
        query_root = self._schema.query_type
        assert query_root is not None  # noqa: S101 - the SDL defines it
        requested = selection_cost(scope, operation.selection_set, query_root)
        if requested > MAX_QUERY_COST:
            return self._too_costly(shop, requested)
        with self._lock:
            bucket = self._bucket(shop)
            bucket.refill(self._clock())
            if requested > bucket.available:
                return self._throttled(requested, bucket.status())
            bucket.available -= requested
            root = _Root(sorted(self._orders.get(shop, {}).values(), key=lambda o: o.legacy_id))
        result = execute_sync(
            self._schema, document, root_value=root, variable_values=variables,
            operation_name=operation_name,
        )  # fmt: skip
        actual = selection_cost(scope, operation.selection_set, query_root, result.data or {})
        with self._lock:
            bucket = self._bucket(shop)
            bucket.refill(self._clock())
            bucket.available = min(bucket.maximum, bucket.available + requested - actual)
            status = bucket.status()
        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
        payload["data"] = result.data
        extensions: dict[str, Any] = {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": status,
            }
        }
        if root.query_warnings:
            extensions["search"] = root.query_warnings
        payload["extensions"] = extensions
        return Reply(
            200, json.dumps(payload).encode(),
            notes={"requestedQueryCost": requested, "actualQueryCost": actual},
        )  # fmt: skip

    def _throttled(self, requested: int, status: dict[str, float]) -> Reply:
        payload = {
            "errors": [{
                "message": "Throttled",
                "extensions": {"code": "THROTTLED", "documentation": _RATE_LIMITS_DOC},
            }],
            "extensions": {"cost": {
                "requestedQueryCost": requested, "actualQueryCost": None,
                "throttleStatus": status,
            }},
        }  # fmt: skip
        return Reply(
            200, json.dumps(payload).encode(),
            notes={"requestedQueryCost": requested, "throttled": True},
        )  # fmt: skip

    def _too_costly(self, shop: str, requested: int) -> Reply:
        with self._lock:
            status = self._bucket(shop).status()
        message = (
            f"Query cost is {requested}, which exceeds the single query max cost limit "
            f"({MAX_QUERY_COST})."
        )
        payload = {
            "errors": [{
                "message": message,
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested,
                               "maxCost": MAX_QUERY_COST},
            }],
            "extensions": {"cost": {
                "requestedQueryCost": requested, "actualQueryCost": None,
                "throttleStatus": status,
            }},
        }  # fmt: skip
        return Reply(200, json.dumps(payload).encode(), notes={"requestedQueryCost": requested})

    def _bucket(self, shop: str) -> Bucket:
        """The shop's bucket (the caller holds the lock), made from the defaults on first use."""
        bucket = self._buckets.get(shop)
        if bucket is None:
            bucket = self._buckets[shop] = self._defaults.bucket(self._clock())
        return bucket

    # --- control API -------------------------------------------------------------------------

    def control(self, request: Request) -> Reply | None:
        routes: dict[tuple[str, str], Callable[[Request], Reply]] = {
            ("POST", "/__orders"): self._post_order,
            ("GET", "/__orders"): self._list_orders,
            ("DELETE", "/__orders"): self._clear_orders,
            ("GET", "/__bucket"): self._describe_bucket,
            ("POST", "/__bucket"): self._set_bucket,
            ("DELETE", "/__bucket"): self._reset_buckets,
        }
        route = routes.get((request.method, request.path))
        return route(request) if route is not None else None

    def _post_order(self, request: Request) -> Reply:
        payload = request.body if request.is_json else None
        if not isinstance(payload, dict) or set(payload) != {"shop", "order"}:
            return _control_error(400, "invalid_order", "Send {shop, order}.")
        shop = payload["shop"]
        if not isinstance(shop, str) or not _SHOP.match(shop):
            return _control_error(400, "invalid_shop", "shop must be a lower-case shop domain.")
        try:
            order = stored_order(payload["order"])
        except (TypeError, ValueError) as exc:
            return _control_error(400, "invalid_order", str(exc))
        with self._lock:
            orders = self._orders.setdefault(shop, {})
            updated = order.legacy_id in orders
            orders[order.legacy_id] = order
        answer = {"shop": shop, "id": order.node["id"], "updatedAt": order.node["updatedAt"],
                  "updated": updated}  # fmt: skip
        return Reply(200, json.dumps(answer).encode())

    def _list_orders(self, request: Request) -> Reply:
        wanted = request.query.get("shop")
        with self._lock:
            listing = {
                shop: [orders[key].posted for key in sorted(orders)]
                for shop, orders in self._orders.items()
                if wanted is None or shop == wanted
            }
        return Reply(200, json.dumps(listing).encode())

    def _clear_orders(self, request: Request) -> Reply:
        wanted = request.query.get("shop")
        with self._lock:
            shops = [s for s in self._orders if wanted is None or s == wanted]
            cleared = sum(len(self._orders.pop(shop)) for shop in shops)
        return Reply(200, json.dumps({"cleared": cleared}).encode())

    def _describe_bucket(self, request: Request) -> Reply:
        """One shop's bucket now (`?shop=`), else the defaults every new bucket starts with."""
        shop = request.query.get("shop")
        with self._lock:
            if shop is None:
                answer: dict[str, Any] = self._defaults.describe()
            else:
                bucket = self._bucket(shop)
                bucket.refill(self._clock())
                answer = {"shop": shop, **bucket.status()}
        return Reply(200, json.dumps(answer).encode())

    def _set_bucket(self, request: Request) -> Reply:
        """`{shop?, maximumAvailable?, currentlyAvailable?, restoreRate?}`: no shop → every shop."""
        payload = request.body if request.is_json else None
        known = {"shop", "maximumAvailable", "currentlyAvailable", "restoreRate"}
        if not isinstance(payload, dict) or not set(payload) <= known:
            return _control_error(
                400, "invalid_bucket", f"Send an object with keys from {sorted(known)}."
            )
        shop = payload.get("shop")
        try:
            maximum = _number(payload, "maximumAvailable", minimum=1)
            available = _number(payload, "currentlyAvailable", minimum=0)
            rate = _number(payload, "restoreRate", minimum=0)
        except ValueError as exc:
            return _control_error(400, "invalid_bucket", str(exc))
        if shop is not None and (not isinstance(shop, str) or not _SHOP.match(shop)):
            return _control_error(400, "invalid_shop", "shop must be a lower-case shop domain.")
        with self._lock:
            now = self._clock()
            if shop is None:
                self._defaults = self._defaults.changed(maximum, rate, available)
                buckets = list(self._buckets.values())
            else:
                buckets = [self._bucket(shop)]
            for bucket in buckets:
                bucket.refill(now)
                bucket.maximum = maximum or bucket.maximum
                bucket.restore_rate = bucket.restore_rate if rate is None else rate
                if available is not None:
                    bucket.available = available
                bucket.available = min(bucket.maximum, bucket.available)
        return self._describe_bucket(request if shop is None else _for_shop(request, shop))

    def _reset_buckets(self, request: Request) -> Reply:
        with self._lock:
            self._buckets.clear()
            self._defaults = BucketDefaults(DEFAULT_BUCKET, DEFAULT_RESTORE_RATE)
        return self._describe_bucket(dataclasses.replace(request, query={}))


def _with_defaults(operation: OperationDefinitionNode, variables: dict[str, Any]) -> dict[str, Any]:
    """The request's variables plus the operation's declared defaults (for the planned cost)."""
    merged = dict(variables)
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name not in merged and definition.default_value is not None:
            merged[name] = value_from_ast_untyped(definition.default_value)
    return merged


def _for_shop(request: Request, shop: str) -> Request:
    return dataclasses.replace(request, query={"shop": shop})
