"""Blackleaf SMS stand-in: the assumed `POST /v1/messages` of §11.2, deduped by reference.

It also plays the phone network for inbound texts (consent.md §3): `PUT /__inbound/webhook`
`{url, secret}` sets where inbound messages go, and `POST /__inbound` `{from, to, body, id?}`
sends one there as Blackleaf would, signed (hex HMAC-SHA256 of the raw body in
`X-Blackleaf-Signature`), answering with what the webhook answered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import uuid
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from emulators.standin_core import Provider, Reply, Request, json_reply, utc_now

_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
# The vendor's own ceiling is unknown; 1600 is the usual concatenated-SMS limit. Ours (480) is
# enforced by the adapter, so the stand-in must not hide an adapter that forgets it.
_MAX_BODY = 1600
_MAX_REFERENCE = 256
_SIGNATURE_HEADER = "X-Blackleaf-Signature"
_INBOUND_TIMEOUT_S = 30.0
_MAX_INBOUND_ID = 128


def _error(status: int, code: str, message: str) -> Reply:
    return json_reply(status, {"error": {"code": code, "message": message}})


class BlackleafStandIn(Provider):
    name: ClassVar[str] = "blackleaf"
    timeout_sleep_s: ClassVar[float] = 12.0  # the adapter's timeout is 10 s

    def __init__(self, api_key: str) -> None:
        self._expected = f"Bearer {api_key}".encode()
        self._lock = threading.Lock()
        self._messages: dict[str, dict[str, Any]] = {}
        self._by_reference: dict[str, str] = {}
        self._webhook: dict[str, str] | None = None  # {url, secret} for inbound messages
        self._inbound: list[dict[str, Any]] = []

    def handle(self, request: Request) -> Reply:
        if request.path == "/v1/messages":
            if request.method != "POST":
                return _error(405, "method_not_allowed", "Use POST to send a message.")
            return self._authorised(request) or self._send(request)
        if request.path.startswith("/v1/messages/"):
            if request.method != "GET":
                return _error(405, "method_not_allowed", "Use GET to read a message.")
            return self._authorised(request) or self._read(request.path.rsplit("/", 1)[1])
        return _error(404, "not_found", f"No route for {request.path}.")

    def control(self, request: Request) -> Reply | None:
        # Distinct sends only: a replayed clientReference is recorded but never counted here.
        if (request.method, request.path) == ("GET", "/__messages"):
            with self._lock:
                return json_reply(200, [dict(item) for item in self._messages.values()])
        routes = {
            ("PUT", "/__inbound/webhook"): self._configure_webhook,
            ("GET", "/__inbound/webhook"): self._describe_webhook,
            ("DELETE", "/__inbound/webhook"): self._forget_webhook,
            ("POST", "/__inbound"): self._deliver_inbound,
            ("GET", "/__inbound"): self._inbound_log,
        }
        route = routes.get((request.method, request.path))
        return route(request) if route is not None else None

    # --- inbound texts -----------------------------------------------------------------------

    def _configure_webhook(self, request: Request) -> Reply:
        payload = request.body if request.is_json else None
        if not isinstance(payload, dict) or set(payload) != {"url", "secret"}:
            return _error(400, "invalid_webhook", "Send {url, secret}.")
        url, secret = payload["url"], payload["secret"]
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            return _error(400, "invalid_webhook", "url must be an http(s) URL.")
        if not isinstance(secret, str) or not secret:
            return _error(400, "invalid_webhook", "secret must be a non-empty string.")
        with self._lock:
            self._webhook = {"url": url, "secret": secret}
        return self._describe_webhook(request)

    def _describe_webhook(self, request: Request) -> Reply:
        del request  # the description takes no parameters
        with self._lock:
            url = self._webhook["url"] if self._webhook else None
        return json_reply(200, {"url": url, "configured": url is not None})  # never the secret

    def _forget_webhook(self, request: Request) -> Reply:
        with self._lock:
            self._webhook = None
        return self._describe_webhook(request)

    def _inbound_log(self, request: Request) -> Reply:
        del request  # the log takes no parameters
        with self._lock:
            return json_reply(200, [dict(item) for item in self._inbound])

    def _deliver_inbound(self, request: Request) -> Reply:
        """Send one inbound text to the configured webhook, signed; answer what it answered."""
        message = _inbound_message(request.body if request.is_json else None)
        if isinstance(message, Reply):
            return message
        with self._lock:
            webhook = dict(self._webhook) if self._webhook else None
        if webhook is None:
            return _error(409, "no_webhook", "PUT /__inbound/webhook {url, secret} first.")
        raw = json.dumps(message).encode()
        signed = hmac.new(webhook["secret"].encode(), raw, hashlib.sha256).hexdigest()
        try:
            answered = httpx.post(
                webhook["url"], content=raw, timeout=_INBOUND_TIMEOUT_S,
                headers={"Content-Type": "application/json", _SIGNATURE_HEADER: signed},
            )  # fmt: skip
        except httpx.HTTPError as exc:
            return _error(502, "webhook_unreachable", f"{type(exc).__name__}: {exc}")
        try:
            answer: Any = answered.json()
        except ValueError:
            answer = answered.text
        record = {"message": message, "status": answered.status_code, "answer": answer}
        with self._lock:
            self._inbound.append(record)
        return json_reply(200, record)

    def _authorised(self, request: Request) -> Reply | None:
        supplied = request.header("Authorization").encode()
        if hmac.compare_digest(supplied, self._expected):
            return None
        return _error(401, "unauthorized", "Missing or invalid API key.")

    def _send(self, request: Request) -> Reply:
        payload = request.body
        if not request.is_json or not isinstance(payload, dict):
            return _error(400, "invalid_json", "The body must be a JSON object.")
        to, body = payload.get("to"), payload.get("body")
        reference = payload.get("clientReference")
        if not isinstance(to, str) or not _E164.match(to):
            return _error(400, "invalid_number", "to must be an E.164 number such as +15551234567.")
        if not isinstance(body, str) or not body.strip() or len(body) > _MAX_BODY:
            return _error(400, "invalid_body", f"body must be 1-{_MAX_BODY} characters.")
        if reference is not None and (
            not isinstance(reference, str) or not 0 < len(reference) <= _MAX_REFERENCE
        ):
            return _error(400, "invalid_reference", "clientReference must be a short string.")
        with self._lock:
            known = self._by_reference.get(reference) if reference else None
            if known is not None:
                return json_reply(200, self._public(known), duplicate=True, messageId=known)
            message_id = f"bl_{uuid.uuid4().hex}"
            self._messages[message_id] = {
                "id": message_id,
                "status": "queued",
                "to": to,
                "body": body,
                "clientReference": reference,
                "createdAt": utc_now(),
            }
            if reference:
                self._by_reference[reference] = message_id
        return json_reply(201, self._public(message_id), duplicate=False, messageId=message_id)

    def _read(self, message_id: str) -> Reply:
        with self._lock:
            message = self._messages.get(message_id)
            if message is None:
                return _error(404, "not_found", f"No message {message_id}.")
            return json_reply(200, dict(message))

    def _public(self, message_id: str) -> dict[str, Any]:
        return {"id": message_id, "status": self._messages[message_id]["status"]}


def _inbound_message(payload: Any) -> dict[str, Any] | Reply:
    """The message Blackleaf would post for a `POST /__inbound` body, or the 400 it deserves."""
    if not isinstance(payload, dict) or not {"from", "to", "body"} <= set(payload):
        return _error(400, "invalid_inbound", "Send {from, to, body, id?}.")
    unknown = sorted(set(payload) - {"from", "to", "body", "id"})
    if unknown:
        return _error(400, "invalid_inbound", f"Unknown fields: {', '.join(unknown)}.")
    sender, to, text = payload["from"], payload["to"], payload["body"]
    numbers_ok = all(isinstance(n, str) and _E164.match(n) for n in (sender, to))
    if not numbers_ok:
        return _error(400, "invalid_number", "from and to must be E.164 numbers.")
    if not isinstance(text, str) or len(text) > _MAX_BODY:
        return _error(400, "invalid_body", f"body must be at most {_MAX_BODY} characters.")
    message_id = payload.get("id") or f"blin_{uuid.uuid4().hex}"
    if not isinstance(message_id, str) or not 0 < len(message_id) <= _MAX_INBOUND_ID:
        return _error(400, "invalid_inbound", "id must be a short string.")
    return {"id": message_id, "from": sender, "to": to, "body": text, "receivedAt": utc_now()}
