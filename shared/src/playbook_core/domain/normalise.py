"""Platform bodies → envelope fields (domain.md §6.6): playbooks see one shape for both stores."""

from __future__ import annotations

import html
import re
from typing import Any

from playbook_core.domain.envelope import Consent, Customer
from playbook_core.domain.normal_forms import (
    Money,
    Phone,
    money_sum,
    normalise_currency,
    normalise_email,
    parse_amount,
    parse_phone,
    parse_timestamp,
    rfc3339,
    to_money,
)

Body = dict[str, Any]


def _map(value: object) -> Body:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Body]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def text_value(value: object) -> str | None:
    """Ids and names as strings; platforms send ids as numbers, and `""` means absent."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    return text or None


def _id(value: object) -> str | None:
    """An external id; WooCommerce uses 0 for "none" (guest customer, no variation)."""
    if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
        return None
    text = text_value(value)
    return None if text in {None, "0"} else text


def _int(value: object) -> int | None:
    amount = parse_amount(value)
    return int(amount) if amount is not None and amount == amount.to_integral_value() else None


def _first_email(*values: object) -> str | None:
    return next((e for e in map(normalise_email, values) if e is not None), None)


def first_phone(country: str, *values: object) -> Phone:
    """The first valid number; else why a given one was dropped (nothing given: neither)."""
    dropped = None
    for value in values:
        phone = parse_phone(value, country)
        if phone.e164 is not None:
            return phone
        dropped = dropped or phone.dropped
    return Phone(dropped=dropped)


def _consent_state(value: object) -> bool | None:
    state = _map(value).get("state")
    return (
        {"subscribed": True, "unsubscribed": False}.get(state) if isinstance(state, str) else None
    )


_US_STATE = re.compile(r"^[A-Z]{2}$")


def _us_state(*addresses: Body) -> str | None:
    """The first US address's state code (shipping before billing: where the goods land)."""
    for address in addresses:
        country = text_value(address.get("country_code")) or text_value(address.get("country"))
        state = text_value(address.get("province_code")) or text_value(address.get("state"))
        if country and country.upper() == "US" and state and _US_STATE.match(state.upper()):
            return state.upper()
    return None


def _customer(**fields: Any) -> Customer | None:
    """None when the body names nobody (a guest order without an email is still dispatched)."""
    present = {k: v for k, v in fields.items() if v is not None}
    return Customer(**present) if present.keys() - {"state"} else None


def _compact(data: Body) -> Body:
    return {key: value for key, value in data.items() if value is not None}


# --- customers -------------------------------------------------------------------------------


def shopify_phone(body: Body, *, customer_topic: bool, default_country: str) -> Phone:
    """The customer's phone as shopify_customer reads it, or why the one given was dropped."""
    if customer_topic:
        return first_phone(default_country, body.get("phone"))
    person = _map(body.get("customer"))
    billing, shipping = _map(body.get("billing_address")), _map(body.get("shipping_address"))
    return first_phone(
        default_country, person.get("phone"), body.get("phone"), billing.get("phone"),
        shipping.get("phone"),
    )  # fmt: skip


def shopify_customer(body: Body, *, customer_topic: bool, default_country: str) -> Customer | None:
    """Order-like topics read `customer` then the order; customer topics are the customer."""
    person = body if customer_topic else _map(body.get("customer"))
    addresses = [_map(body.get("shipping_address")), _map(body.get("billing_address"))]
    state = _us_state(*addresses, _map(person.get("default_address")))
    if customer_topic:
        email = _first_email(body.get("email"))
    else:
        email = _first_email(person.get("email"), body.get("email"), body.get("contact_email"))
    phone = shopify_phone(body, customer_topic=customer_topic, default_country=default_country)
    email_ok = _consent_state(person.get("email_marketing_consent"))
    sms_ok = _consent_state(person.get("sms_marketing_consent"))
    consent = Consent(email=email_ok, sms=sms_ok) if (email_ok, sms_ok) != (None, None) else None
    return _customer(
        external_id=_id(person.get("id")),
        email=email,
        phone=phone.e164,
        first_name=text_value(person.get("first_name")) or text_value(body.get("first_name")),
        last_name=text_value(person.get("last_name")) or text_value(body.get("last_name")),
        consent=consent,
        state=state,
    )


def woocommerce_phone(body: Body, *, default_country: str) -> Phone:
    """The billing phone as woocommerce_customer reads it, or why the one given was dropped."""
    return first_phone(default_country, _map(body.get("billing")).get("phone"))


def woocommerce_customer(
    body: Body, *, customer_topic: bool, default_country: str
) -> Customer | None:
    """Billing details carry the contact; `customer_id` 0 is a guest (no external id)."""
    billing = _map(body.get("billing"))
    emails = (
        (body.get("email"), billing.get("email")) if customer_topic else (billing.get("email"),)
    )
    return _customer(
        external_id=_id(body.get("id") if customer_topic else body.get("customer_id")),
        email=_first_email(*emails),
        phone=woocommerce_phone(body, default_country=default_country).e164,
        first_name=text_value(billing.get("first_name")) or text_value(body.get("first_name")),
        last_name=text_value(billing.get("last_name")) or text_value(body.get("last_name")),
        state=_us_state(_map(body.get("shipping")), billing),
    )


# --- orders, refunds, checkouts --------------------------------------------------------------


def _line_items(
    items: list[Body], currency: str | None, *, name_key: str, variant_key: str, unescape: bool
) -> list[Body]:
    lines = []
    for item in items:
        price = to_money(item.get("price"), currency)
        name = text_value(item.get(name_key)) or text_value(item.get("name"))
        lines.append({
            "productId": _id(item.get("product_id")),
            "variantId": _id(item.get(variant_key)),
            "sku": text_value(item.get("sku")),
            "name": html.unescape(name) if unescape and name else name,
            "quantity": _int(item.get("quantity")) or 0,
            "price": price.text if price else None,
        })  # fmt: skip
    return lines


def _order(
    body: Body, *, source: str, total: object, number: str | None, order_at: object,
    status: str | None, lines: list[Body],
) -> Body:  # fmt: skip
    currency = normalise_currency(body.get("currency"))
    money = to_money(total, currency)
    placed = parse_timestamp(order_at)
    return {
        "orderId": _id(body.get("id")),
        "orderNumber": number,
        "orderSource": source,
        "orderAt": rfc3339(placed) if placed else None,
        "status": status,
        "total": money.text if money else None,
        "totalMinor": money.minor if money else None,
        "currency": currency,
        "lineItems": lines,
        "itemCount": sum(line["quantity"] for line in lines),
    }


def shopify_order_status(body: Body) -> str | None:
    """`cancelled_at` set → cancelled; else the fulfilment state, else the financial state."""
    if body.get("cancelled_at"):
        return "cancelled"
    return text_value(body.get("fulfillment_status")) or text_value(body.get("financial_status"))


def shopify_order(body: Body) -> Body:
    currency = normalise_currency(body.get("currency"))
    lines = _line_items(
        _list(body.get("line_items")), currency, name_key="title", variant_key="variant_id",
        unescape=False,
    )  # fmt: skip
    return _order(
        body, source="shopify", total=body.get("total_price"),
        number=text_value(body.get("name")) or text_value(body.get("order_number")),
        order_at=body.get("created_at"), status=shopify_order_status(body), lines=lines,
    )  # fmt: skip


def woocommerce_order(body: Body) -> Body:
    currency = normalise_currency(body.get("currency"))
    lines = _line_items(
        _list(body.get("line_items")), currency, name_key="name", variant_key="variation_id",
        unescape=True,
    )  # fmt: skip
    return _order(
        body, source="woocommerce", total=body.get("total"), number=text_value(body.get("number")),
        order_at=body.get("date_created_gmt") or body.get("date_created"),
        status=text_value(body.get("status")), lines=lines,
    )  # fmt: skip


def shopify_refund(body: Body) -> Body:
    """A refunds/create body is the refund: its successful refund transactions are the total."""
    transactions = [
        t for t in _list(body.get("transactions"))
        if t.get("kind") == "refund" and t.get("status") in {"success", None}
    ]  # fmt: skip
    currency = next(
        (c for c in (normalise_currency(t.get("currency")) for t in transactions) if c), None
    )
    amounts = [m for m in (to_money(t.get("amount"), currency) for t in transactions) if m]
    total = money_sum(amounts, currency)
    return {
        "orderId": _id(body.get("order_id")),
        "orderSource": "shopify",
        "refundId": _id(body.get("id")),
        "refundTotal": total.text,
        "refundTotalMinor": total.minor,
        "currency": currency,
    }


def shopify_checkout(body: Body, *, kind: str) -> Body:
    """checkouts/create and carts/create; a cart has no total, so its line prices are summed."""
    lines_in = _list(body.get("line_items"))
    shop_currencies = (_map(_map(i.get("price_set")).get("shop_money")) for i in lines_in)
    currency = normalise_currency(body.get("currency")) or next(
        (c for c in (normalise_currency(m.get("currency_code")) for m in shop_currencies) if c),
        None,
    )
    lines = _line_items(
        lines_in, currency, name_key="title", variant_key="variant_id", unescape=False
    )
    total: Money | None
    if kind == "checkout":
        total = to_money(body.get("total_price"), currency)
        key, ident = "checkoutId", _id(body.get("id")) or text_value(body.get("token"))
    else:
        line_totals = [to_money(i.get("line_price"), currency) for i in lines_in]
        total = money_sum([m for m in line_totals if m], currency)
        key, ident = "cartId", text_value(body.get("token")) or _id(body.get("id"))
    return _compact({
        key: ident,
        "total": total.text if total else None,
        "totalMinor": total.minor if total else None,
        "currency": currency,
        "lineItems": lines,
        "itemCount": sum(line["quantity"] for line in lines),
        "recoveryUrl": text_value(body.get("abandoned_checkout_url")),
    })  # fmt: skip


# --- products and stock ----------------------------------------------------------------------


def shopify_product(body: Body) -> Body:
    skus = (text_value(v.get("sku")) for v in _list(body.get("variants")))
    return _compact({
        "productId": _id(body.get("id")),
        "name": text_value(body.get("title")),
        "sku": next((s for s in skus if s), None),
        "status": text_value(body.get("status")),
    })  # fmt: skip


def woocommerce_product(body: Body) -> Body:
    name = text_value(body.get("name"))
    return _compact({
        "productId": _id(body.get("id")),
        "name": html.unescape(name) if name else None,
        "sku": text_value(body.get("sku")),
        "status": text_value(body.get("status")),
    })  # fmt: skip


def shopify_stock(body: Body, threshold: int) -> Body:
    """An inventory level: the inventory item stands for the product (no variant in the body)."""
    return _compact({
        "productId": _id(body.get("inventory_item_id")),
        "locationId": _id(body.get("location_id")),
        "available": _int(body.get("available")),
        "threshold": threshold,
    })  # fmt: skip


def woocommerce_stock(body: Body, threshold: int) -> Body | None:
    """None unless WooCommerce manages this product's stock; a variation names its parent."""
    if body.get("manage_stock") is not True:
        return None
    parent = _id(body.get("parent_id"))
    name = text_value(body.get("name"))
    return _compact({
        "productId": parent or _id(body.get("id")),
        "variantId": _id(body.get("id")) if parent else None,
        "sku": text_value(body.get("sku")),
        "name": html.unescape(name) if name else None,
        "available": _int(body.get("stock_quantity")),
        "threshold": threshold,
    })  # fmt: skip
