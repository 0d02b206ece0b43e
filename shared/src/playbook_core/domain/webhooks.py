"""Webhook sources and signatures (domain.md §6): whose delivery it is, and is it genuine."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playbook_core.domain.errors import BadRequest
from playbook_core.domain.ids import h

_SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)+$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def shop_domain(value: str) -> str:
    domain = value.strip().lower()
    if not _SHOP_DOMAIN.match(domain):
        raise BadRequest(f"'{value}' is not a shop domain such as my-shop.myshopify.com")
    return domain


def normalise_source_url(value: str) -> str:
    """Lowercase scheme and host, default port dropped, trailing '/' stripped (domain.md §6.1)."""
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise BadRequest(f"'{value}' is not an http(s) store URL")
    host = parts.hostname.lower()
    port = f":{parts.port}" if parts.port and parts.port != _DEFAULT_PORTS[scheme] else ""
    return f"{scheme}://{host}{port}{parts.path}".rstrip("/")


def shopify_source_id(domain: str) -> str:
    return f"shopify_{shop_domain(domain)}"


def woocommerce_source_id(source_url: str) -> str:
    return "woocommerce_" + h(normalise_source_url(source_url))
