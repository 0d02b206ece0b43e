"""Blackleaf SMS stand-in: the assumed `POST /v1/messages` of §11.2, deduped by reference."""

from __future__ import annotations

import hmac
import re
import threading
import uuid
from typing import Any, ClassVar

from emulators.standin_core import Provider, Reply, Request, json_reply, utc_now

_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
# The vendor's own ceiling is unknown; 1600 is the usual concatenated-SMS limit. Ours (480) is
# enforced by the adapter, so the stand-in must not hide an adapter that forgets it.
_MAX_BODY = 1600
_MAX_REFERENCE = 256


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
        return None

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
