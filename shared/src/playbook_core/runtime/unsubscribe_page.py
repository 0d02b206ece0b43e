"""`email_unsubscribe` over HTTP (consent.md §4): the one-click POST, and a page for people.

Public: the signed token in the query is the only credential, checked before the body is read.
GET never unsubscribes (mail scanners fetch every link): it shows a button that POSTs the
one-click body. POST with `List-Unsubscribe=One-Click` records the revocation and answers 200.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote

from flask import Request, Response

from playbook_core.domain.errors import BadRequest, MethodNotAllowed, PayloadTooLarge
from playbook_core.runtime.http import json_response
from playbook_core.service.compliance.unsubscribe import ONE_CLICK

if TYPE_CHECKING:
    from playbook_core.runtime.bootstrap import App

MAX_BODY = 1024  # `List-Unsubscribe=One-Click` and little else
# The token is a credential in the URL: no referrer carries it on, no cache or index keeps it.
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;\
line-height:1.5}}button{{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}}</style>
</head><body>
<h1>{title}</h1>
{content}
</body></html>
"""
_FORM = """<p>Stop marketing email to this address?</p>
<form method="post" action="?token={token}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button>
</form>
"""
_DONE = "<p>You are unsubscribed. No more marketing email will be sent to this address.</p>\n"


def handle(request: Request, app: App) -> Response:
    """GET: the confirmation page; POST: unsubscribe. The token first, the body after."""
    if request.method not in ("GET", "POST"):
        raise MethodNotAllowed("use GET for the page or POST to unsubscribe")
    token = request.args.get("token") or ""
    if not token:
        raise BadRequest("the link has no token", code="invalid-unsubscribe-token")
    app.unsubscribe_claim(token)  # BadRequest for a token we did not sign: nothing is read
    if request.method == "GET":
        form = _FORM.format(token=html.escape(quote(token, safe=""), quote=True))
        return _page("Unsubscribe", form)
    _one_click(request)
    result = app.unsubscribe(token, request.remote_addr, _user_agent(request))
    if "text/html" in (request.headers.get("Accept") or ""):
        return _page("Unsubscribed", _DONE)
    return json_response({"unsubscribed": True, "already": result["already"]}, headers=_HEADERS)


def _one_click(request: Request) -> None:
    """The RFC 8058 body, form-encoded; a page submit sends the same field."""
    if (request.content_length or 0) > MAX_BODY:
        raise PayloadTooLarge("an unsubscribe body is `List-Unsubscribe=One-Click`")
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge("an unsubscribe body is `List-Unsubscribe=One-Click`")
    try:
        fields = parse_qs(raw.decode("utf-8"), strict_parsing=True, max_num_fields=4)
    except (UnicodeDecodeError, ValueError):
        fields = {}
    if fields.get("List-Unsubscribe") != [ONE_CLICK.split("=", 1)[1]]:
        raise BadRequest(f"send the body {ONE_CLICK} (RFC 8058)")


def _user_agent(request: Request) -> str | None:
    agent = request.headers.get("User-Agent")
    return agent[:512] if agent else None


def _page(title: str, content: str) -> Response:
    body = _PAGE.format(title=html.escape(title), content=content)
    return Response(body, status=200, mimetype="text/html", headers=_HEADERS)
