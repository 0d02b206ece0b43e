"""Webhook sources and signatures (domain.md §6): whose delivery it is, and is it genuine."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Literal
from urllib.parse import urlsplit

from playbook_core.domain.errors import BadRequest
from playbook_core.domain.ids import h

Platform = Literal["shopify", "woocommerce"]

_SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)+$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# WordPress stores the secret HTML-escaped and signs with wp_specialchars_decode($secret,
# ENT_QUOTES) (§6.1 row 5): the named &amp; &lt; &gt; &quot;, decimal &#39; &#34; &#60; &#62; &#38;
# (any leading zeros) and hex &#x27; &#x22; &#x26; (any zeros, `x` either case), nothing else. It
# has no hex form for < and >, and named entities are case-sensitive (&AMP; stays).
_WOO_ENTITIES = re.compile(r"&(?:(amp|lt|gt|quot)|#0*(39|34|60|62|38)|#[xX]0*(27|22|26));")
_NAMED_CHARS = {"amp": "&", "lt": "<", "gt": ">", "quot": '"'}
_WOO_PING = re.compile(rb"webhook_id=[0-9]+")

MAX_BODY_BYTES = 5 * 1024 * 1024
REPLAY_TTL_HOURS = 72
# A signed orders/create body never goes stale (the HMAC has no timestamp), so its once-per-order
# claim outlives the replay window: as long as the deliveries it would repeat are kept.
ORDER_CREATED_TTL_DAYS = 400
STALE_AFTER_HOURS = 24

# §6.1 row 3: the headers each platform must send (lowercase: header names are case-insensitive).
# Shopify names are given without their prefix: Shopify sends `X-Shopify-<name>` and, from its newer
# delivery pipeline (what @shopify/shopify-api reads as well), `shopify-<name>`.
SHOPIFY_HEADERS = ("hmac-sha256", "topic", "shop-domain")
SHOPIFY_PREFIXES = ("x-shopify-", "shopify-")  # first non-empty wins, header by header
WOOCOMMERCE_HEADERS = ("x-wc-webhook-signature", "x-wc-webhook-topic", "x-wc-webhook-source")

# §6.5, Shopify: topics must match exactly (plural forms). inventory_levels/update is conditional
# on the threshold, which the normaliser decides.
SHOPIFY_TOPICS: dict[str, str] = {
    "orders/create": "order.created",
    "orders/paid": "order.updated",
    "orders/updated": "order.updated",
    "orders/fulfilled": "order.completed",
    "orders/cancelled": "order.cancelled",
    "refunds/create": "order.refunded",
    "customers/create": "customer.signup",
    "customers/update": "customer.updated",
    "checkouts/create": "checkout.started",
    "carts/create": "cart.created",
    "products/create": "inventory.new_product",
    "products/update": "product.updated",
    "inventory_levels/update": "inventory.low_stock",
}
# §6.5, WooCommerce: order.updated is resolved by the order's status (WOOCOMMERCE_ORDER_STATUS).
WOOCOMMERCE_TOPICS: dict[str, str] = {
    "order.created": "order.created",
    "order.updated": "order.updated",
    "customer.created": "customer.signup",
    "customer.updated": "customer.updated",
    "product.created": "inventory.new_product",
    "product.updated": "product.updated",
}
WOOCOMMERCE_ORDER_STATUS: dict[str, str] = {
    "completed": "order.completed",
    "cancelled": "order.cancelled",
    "refunded": "order.refunded",
}


def shopify_header(headers: Mapping[str, str], name: str) -> str:
    """One Shopify header by either name (`name` unprefixed, e.g. "topic"), stripped; "" if none.

    `headers` has lowercase names. The `X-Shopify-` form wins when both are non-empty, as in
    Shopify's own libraries; each header is read on its own, so a delivery mixing the two families
    is read whole. An empty or blank value counts as absent.
    """
    for prefix in SHOPIFY_PREFIXES:
        value = (headers.get(prefix + name) or "").strip()
        if value:
            return value
    return ""


def required_headers(platform: Platform, headers: Mapping[str, str]) -> tuple[str, str, str]:
    """§6.1 row 3: (signature, topic, shop domain or source URL), stripped; "" for a missing one."""
    if platform == "shopify":
        signed, topic, address = (shopify_header(headers, name) for name in SHOPIFY_HEADERS)
    else:
        signed, topic, address = ((headers.get(name) or "").strip() for name in WOOCOMMERCE_HEADERS)
    return signed, topic, address


def shop_domain(value: str) -> str:
    domain = value.strip().lower()
    if not _SHOP_DOMAIN.match(domain):
        raise BadRequest(f"'{value}' is not a shop domain such as my-shop.myshopify.com")
    return domain


def normalise_source_url(value: str) -> str:
    """Lowercase scheme and host, default port dropped, trailing '/' stripped (domain.md §6.1)."""
    try:
        parts = urlsplit(value.strip())
        port_number = parts.port  # raises ValueError for a malformed or out-of-range port
    except ValueError:
        raise BadRequest(f"'{value}' is not an http(s) store URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise BadRequest(f"'{value}' is not an http(s) store URL")
    host = parts.hostname.lower()
    port = f":{port_number}" if port_number and port_number != _DEFAULT_PORTS[scheme] else ""
    return f"{scheme}://{host}{port}{parts.path}".rstrip("/")


def shopify_source_id(domain: str) -> str:
    return f"shopify_{shop_domain(domain)}"


def woocommerce_source_id(source_url: str) -> str:
    return "woocommerce_" + h(normalise_source_url(source_url))


# --- signatures (§6.1 rows 3–4, §6.2) -------------------------------------------------------


def signature(secret: str | bytes, body: bytes) -> str:
    """base64(HMAC-SHA256(key = secret bytes, msg = raw body)), what both platforms send."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


def decode_woo_entities(secret: str) -> str:
    """The secret as WooCommerce signs with it: wp_specialchars_decode(ENT_QUOTES), one pass."""
    return _WOO_ENTITIES.sub(_entity_char, secret)


def _entity_char(match: re.Match[str]) -> str:
    named, decimal, hexadecimal = match.groups()
    if named is not None:
        return _NAMED_CHARS[named]
    return chr(int(decimal)) if decimal is not None else chr(int(hexadecimal, 16))


def candidate_keys(secret: str, platform: Platform) -> list[str]:
    """Keys to try for one stored secret: itself, plus Woo's entity-decoded form when it differs."""
    keys = [secret]
    if platform == "woocommerce":
        decoded = decode_woo_entities(secret)
        if decoded != secret:
            keys.append(decoded)
    return keys


def signature_matches(body: bytes, header: str, secrets: Iterable[str], platform: Platform) -> bool:
    """Constant-time comparison of the header against every candidate key; the raw bytes only."""
    presented = header.strip().encode("utf-8")
    matched = False
    for secret in secrets:
        for key in candidate_keys(secret, platform):
            # No early exit: each comparison is constant-time and every key is always tried.
            expected = signature(key, body).encode("ascii")
            matched = hmac.compare_digest(expected, presented) or matched
    return matched


def is_woo_ping(body: bytes) -> bool:
    """WooCommerce's unsigned creation ping: a form body `webhook_id=<digits>` and nothing else."""
    return _WOO_PING.fullmatch(body) is not None


# --- replay keys and event ids (§2.1, §5.4, §6.4) --------------------------------------------


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def shopify_event_id(domain: str, topic: str, event_key: str) -> str:
    """`shp_` + h(shopDomain, topic, X-Shopify-Event-Id, else X-Shopify-Webhook-Id)."""
    return "shp_" + h(domain, topic, event_key)


def woocommerce_event_id(
    source_key: str, webhook_id: str, topic: str, resource_id: str, modified_or_body_hash: str
) -> str:
    """`woo_` + h(source, X-WC-Webhook-ID, topic, body id, date_modified_gmt or sha256(body))."""
    return "woo_" + h(source_key, webhook_id, topic, resource_id, modified_or_body_hash)


# The replay store is keyed exactly like the delivery's own event id (domain.md §2.1).
shopify_receipt_id = shopify_event_id
woocommerce_receipt_id = woocommerce_event_id


def content_receipt_id(platform: Platform, source_key: str, topic: str, body: bytes) -> str:
    """`bdy_` + h(...): one source's same signed bytes under one topic, whatever the headers."""
    # The topic is in the key because Shopify and Woo send identical bodies under several topics
    # (orders/create and orders/updated); the signature covers the body only, never the headers.
    return "bdy_" + h(platform, source_key, topic, body_digest(body))


def order_created_receipt_id(platform: Platform, source_key: str, order_id: str) -> str:
    """`occ_` + h(...): an order is created once, however many deliveries report it."""
    return "occ_" + h(platform, source_key, order_id)


def order_transition_id(
    org_id: str,
    order_source: str,
    order_id: str,
    transition: Literal["created", "completed", "cancelled"],
) -> str:
    """`ord_` + h(...): one event per order per transition, however many updates repeat it."""
    return "ord_" + h(org_id, order_source, order_id, transition)


def low_stock_id(
    org_id: str, product_id: str, variant_id: str | None, location_id: str | None, local_date: str
) -> str:
    """`low_` + h(...): at most one low-stock event per item, location and local day."""
    return "low_" + h(org_id, product_id, variant_id or "", location_id or "", local_date)
