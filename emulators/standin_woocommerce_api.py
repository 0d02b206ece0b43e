"""WooCommerce REST API stand-in (issue #16): every store's `GET /wp-json/wc/v3/orders`.

One server answers `GET /{storeHost}/wp-json/wc/v3/orders` for any store, keyed by the host of
the store's URL. Orders are posted in the REST/webhook JSON shape (`POST /__orders {store,
order}`) and listed as WooCommerce lists them: filtered by `modified_after` & co. and `exclude`,
ordered, paged, with `X-WP-Total` and `X-WP-TotalPages`. Auth is the consumer key and secret, as
HTTP Basic or as `consumer_key`/`consumer_secret` query parameters.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import json
import math
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from emulators.standin_core import Provider, Reply, Request, is_int

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_PATH = re.compile(r"^/(?P<host>[^/]+)/wp-json/wc/v3/orders/?$")
_MAX_PER_PAGE = 100
_NO_ROUTE = "No route was found matching the URL and request method."
_CANNOT_VIEW = "Sorry, you cannot list resources."
_CRITICAL = "There has been a critical error on this website."
_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - WordPress dates are naive; this one sorts first
_DATE_PARAMS = {  # query parameter → (the order's GMT field, its site-local field, is "after")
    "modified_after": ("date_modified_gmt", "date_modified", True),
    "modified_before": ("date_modified_gmt", "date_modified", False),
    "after": ("date_created_gmt", "date_created", True),
    "before": ("date_created_gmt", "date_created", False),
}
_ORDER_BY = {  # WooCommerce also knows include/title/slug; the stand-in refuses what it lacks
    "date": ("date_created_gmt",),
    "modified": ("date_modified_gmt",),
    "id": (),
}


def _error(status: int, code: str, message: str, **data: Any) -> Reply:
    payload = {"code": code, "message": message, "data": {"status": status, **data}}
    return Reply(status, json.dumps(payload).encode())


def _invalid(param: str, why: str) -> Reply:
    return _error(400, "rest_invalid_param", f"Invalid parameter(s): {param}", params={param: why})


def store_host(url: str) -> str | None:
    """The key of a store: the host (and port, if any) of its URL, lower-case; None if unusable."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return parts.hostname.lower() + (f":{port}" if port else "")


def _naive_utc(value: str) -> datetime | None:
    """A WordPress date: naive means the zone the request says; an offset is converted to UTC."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def _order_moment(order: dict[str, Any], gmt: str, local: str, *, use_gmt: bool) -> datetime:
    value = order.get(gmt if use_gmt else local) or order.get(local if use_gmt else gmt)
    moment = _naive_utc(value) if isinstance(value, str) else None
    return moment or _EPOCH


def _filled_dates(order: dict[str, Any]) -> dict[str, Any]:
    """The order with each date pair complete (a missing one copied: the stand-in's site is UTC)."""
    filled = copy.deepcopy(order)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    created = filled.get("date_created_gmt") or filled.get("date_created") or now
    modified = filled.get("date_modified_gmt") or filled.get("date_modified") or created
    for key, value in (("date_created", created), ("date_modified", modified)):
        for field in (key, f"{key}_gmt"):
            filled[field] = filled.get(field) or value
    return filled


@dataclass(frozen=True, slots=True)
class _Listing:
    """A list request's parameters, checked as WooCommerce checks them."""

    per_page: int
    page: int
    order_by: str
    descending: bool
    use_gmt: bool
    bounds: tuple[tuple[str, str, bool, datetime], ...]  # (GMT field, local field, after?, date)
    statuses: frozenset[str]
    excluded: frozenset[int]

    def selects(self, order: dict[str, Any]) -> bool:
        for gmt, local, after, bound in self.bounds:
            moment = _order_moment(order, gmt, local, use_gmt=self.use_gmt)
            if not (moment > bound if after else moment < bound):
                return False
        if order.get("id") in self.excluded:
            return False
        return not self.statuses or order.get("status") in self.statuses

    def sort_key(self, order: dict[str, Any]) -> tuple[Any, ...]:
        moments = tuple(
            _order_moment(order, field, field.removesuffix("_gmt"), use_gmt=True)
            for field in _ORDER_BY[self.order_by]
        )
        return (*moments, int(order["id"]))


def _ordering(query: Mapping[str, str]) -> tuple[str, bool] | Reply:
    """(orderby, descending), or the 400 for either."""
    order_by, direction = query.get("orderby", "date"), query.get("order", "desc")
    if order_by not in _ORDER_BY:
        return _invalid("orderby", f"orderby is not one of {', '.join(_ORDER_BY)}.")
    if direction not in ("asc", "desc"):
        return _invalid("order", "order is not one of asc, desc.")
    return order_by, direction == "desc"


def _listing(query: Mapping[str, str]) -> _Listing | Reply:
    """The parameters of `GET …/orders`, or the 400 WooCommerce answers for a bad one."""
    per_page, page = query.get("per_page", "10"), query.get("page", "1")
    if not per_page.isdigit() or not 1 <= int(per_page) <= _MAX_PER_PAGE:
        why = f"per_page must be between 1 (inclusive) and {_MAX_PER_PAGE} (inclusive)"
        return _invalid("per_page", why)
    if not page.isdigit() or int(page) < 1:
        return _invalid("page", "page must be greater than or equal to 1")
    ordering = _ordering(query)
    if isinstance(ordering, Reply):
        return ordering
    bounds = []
    for param, (gmt, local, after) in _DATE_PARAMS.items():
        if param in query:
            # WordPress reads a date with an offset in that offset, a naive one in the site's
            # zone (UTC here) or, with dates_are_gmt, in GMT: either way UTC for this site.
            bound = _naive_utc(query[param])
            if bound is None:
                return _invalid(param, f"{param} is not a valid date.")
            bounds.append((gmt, local, after, bound))
    statuses = frozenset(query.get("status", "any").split(",")) - {"", "any"}
    excluded = [item.strip() for item in query.get("exclude", "").split(",") if item.strip()]
    if not all(item.isdigit() for item in excluded):  # WordPress reads a list as wp_parse_list
        return _invalid("exclude", "exclude[0] is not of type integer.")
    return _Listing(
        per_page=int(per_page), page=int(page), order_by=ordering[0], descending=ordering[1],
        use_gmt=query.get("dates_are_gmt", "false").lower() in ("true", "1"),
        bounds=tuple(bounds), statuses=statuses, excluded=frozenset(map(int, excluded)),
    )  # fmt: skip


class WooCommerceApiStandIn(Provider):
    name: ClassVar[str] = "woocommerceApi"
    timeout_sleep_s: ClassVar[float] = 35.0  # the adapter's timeout is 30 s

    def __init__(self, consumer_key: str, consumer_secret: str) -> None:
        self._credentials = f"{consumer_key}:{consumer_secret}".encode()
        self._lock = threading.Lock()
        self._orders: dict[str, dict[int, dict[str, Any]]] = {}

    def handle(self, request: Request) -> Reply:
        match = _PATH.fullmatch(request.path)
        if match is None or request.method != "GET":
            return _error(404, "rest_no_route", _NO_ROUTE)
        authorised = self._authorised(request)
        if authorised is None:
            return _error(401, "woocommerce_rest_cannot_view", _CANNOT_VIEW)
        reply = self._list(match["host"].lower(), request.query)
        return Reply(
            reply.status, reply.body, reply.content_type, reply.headers,
            {**reply.notes, "store": match["host"].lower(), "auth": authorised},
        )  # fmt: skip

    def simulated_error(self, status: int) -> Reply:
        if status == 429:
            return _error(429, "woocommerce_rest_too_many_requests", "Too many requests.")
        if status == 401:
            return _error(401, "woocommerce_rest_cannot_view", _CANNOT_VIEW)
        if status >= 500:
            return _error(status, "internal_server_error", _CRITICAL)
        return _error(status, "rest_simulated_error", f"Stand-in answered {status} as instructed.")

    def _authorised(self, request: Request) -> str | None:
        """How the request authenticated ("basic" or "query"), None if it did not."""
        scheme, _, encoded = request.header("Authorization").partition(" ")
        if scheme.lower() == "basic":
            try:
                supplied = base64.b64decode(encoded.strip(), validate=True)
            except (ValueError, binascii.Error):
                return None
            return "basic" if hmac.compare_digest(supplied, self._credentials) else None
        key, secret = request.query.get("consumer_key"), request.query.get("consumer_secret")
        if key is None or secret is None:
            return None
        supplied = f"{key}:{secret}".encode()
        return "query" if hmac.compare_digest(supplied, self._credentials) else None

    def _list(self, host: str, query: Mapping[str, str]) -> Reply:
        listing = _listing(query)
        if isinstance(listing, Reply):
            return listing
        with self._lock:
            orders = [copy.deepcopy(o) for o in self._orders.get(host, {}).values()]
        matched = sorted(filter(listing.selects, orders), key=listing.sort_key)
        if listing.descending:
            matched.reverse()
        size, start = listing.per_page, (listing.page - 1) * listing.per_page
        listed = matched[start : start + size]
        headers = {
            "X-WP-Total": str(len(matched)),
            "X-WP-TotalPages": str(math.ceil(len(matched) / size)),
        }
        return Reply(
            200, json.dumps(listed).encode(), headers=headers, notes={"listed": len(listed)}
        )

    # --- control API -------------------------------------------------------------------------

    def control(self, request: Request) -> Reply | None:
        routes: dict[tuple[str, str], Callable[[Request], Reply]] = {
            ("POST", "/__orders"): self._post_order,
            ("GET", "/__orders"): self._list_orders,
            ("DELETE", "/__orders"): self._clear_orders,
        }
        route = routes.get((request.method, request.path))
        return route(request) if route is not None else None

    def _post_order(self, request: Request) -> Reply:
        payload = request.body if request.is_json else None
        if not isinstance(payload, dict) or set(payload) != {"store", "order"}:
            return _control_error(400, "invalid_order", "Send {store, order}.")
        store, order = payload["store"], payload["order"]
        host = store_host(store) if isinstance(store, str) else None
        if host is None:
            return _control_error(400, "invalid_store", "store must be the store's http(s) URL.")
        if not isinstance(order, dict) or not is_int(order.get("id")) or order["id"] <= 0:
            why = "order must be an object with a positive integer id."
            return _control_error(400, "invalid_order", why)
        for field in ("date_created", "date_created_gmt", "date_modified", "date_modified_gmt"):
            value = order.get(field)
            if value is not None and (not isinstance(value, str) or _naive_utc(value) is None):
                why = f"order.{field} must be an ISO 8601 date."
                return _control_error(400, "invalid_order", why)
        stored = _filled_dates(order)
        with self._lock:
            orders = self._orders.setdefault(host, {})
            updated = order["id"] in orders
            orders[order["id"]] = stored
        answer = {"store": host, "id": order["id"], "dateModifiedGmt": stored["date_modified_gmt"],
                  "updated": updated}  # fmt: skip
        return Reply(200, json.dumps(answer).encode())

    def _list_orders(self, request: Request) -> Reply:
        wanted = _wanted(request.query.get("store"))
        with self._lock:
            listing = {
                host: [orders[key] for key in sorted(orders)]
                for host, orders in self._orders.items()
                if wanted is None or host == wanted
            }
        return Reply(200, json.dumps(listing).encode())

    def _clear_orders(self, request: Request) -> Reply:
        wanted = _wanted(request.query.get("store"))
        with self._lock:
            hosts = [h for h in self._orders if wanted is None or h == wanted]
            cleared = sum(len(self._orders.pop(host)) for host in hosts)
        return Reply(200, json.dumps({"cleared": cleared}).encode())


def _control_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, json.dumps({"error": {"code": code, "message": message}}).encode())


def _wanted(store: str | None) -> str | None:
    """`?store=` of the control API: the store's URL or its host."""
    if store is None:
        return None
    return store_host(store) if "://" in store else store.lower()
