"""Mailjet stand-in: Send API v3.1 and the v3 message lookup used for crash recovery (§11.1)."""

from __future__ import annotations

import base64
import hmac
import itertools
import re
import threading
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from emulators.standin_core import Provider, Reply, Request, is_int, json_reply, utc_now

if TYPE_CHECKING:
    from collections.abc import Callable

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Real MessageIDs are large integers; starting at 2**58 keeps ours the same shape.
_FIRST_MESSAGE_ID = 288230376151711744
_MAX_SUBJECT = 255
_CONTENT_KEYS = ("TextPart", "HTMLPart", "TemplateID")
# RFC 5322 field names; the stand-in refuses headers that would fight the message's own properties
# (possibly stricter than Mailjet, which documents no list): a client must use the properties.
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,100}$")
_STRUCTURAL_HEADERS = frozenset({
    "from", "sender", "to", "cc", "bcc", "subject", "reply-to", "content-type", "mime-version",
    "content-transfer-encoding", "return-path",
})  # fmt: skip
_AUTH_MESSAGE = (
    "API key authentication/authorization failure. You may be unauthorized to access the API "
    "or your API key may be expired. Visit API keys management section to check your keys."
)


def _global_error(status: int, code: str, message: str) -> Reply:
    return json_reply(
        status,
        {
            "ErrorIdentifier": str(uuid.uuid4()),
            "ErrorCode": code,
            "StatusCode": status,
            "ErrorMessage": message,
        },
    )


def _error(code: str, message: str, *related: str) -> dict[str, Any]:
    return {
        "ErrorIdentifier": str(uuid.uuid4()),
        "ErrorCode": code,
        "StatusCode": 400,
        "ErrorMessage": message,
        "ErrorRelatedTo": list(related),
    }


def _missing(prop: str) -> dict[str, Any]:
    return _error("mj-0003", f'Missing mandatory property "{prop}".', prop)


def _mismatch(prop: str, expected: str) -> dict[str, Any]:
    return _error("mj-0004", f'Type mismatch. Expected type "{expected}".', prop)


def _address_errors(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        return [_mismatch(where, "object")]
    email = value.get("Email")
    if email is None:
        return [_missing(f"{where}.Email")]
    if not isinstance(email, str) or not _EMAIL.match(email.strip()):
        return [_error("mj-0013", f'"{email}" is an invalid email address.', f"{where}.Email")]
    if "Name" in value and not isinstance(value["Name"], str):
        return [_mismatch(f"{where}.Name", "string")]
    return []


def _recipient_errors(message: dict[str, Any], key: str, *, required: bool) -> list[dict[str, Any]]:
    recipients = message.get(key)
    if recipients is None or recipients == []:
        return [_missing(key)] if required else []
    if not isinstance(recipients, list):
        return [_mismatch(key, "array")]
    errors: list[dict[str, Any]] = []
    for index, recipient in enumerate(recipients):
        errors += _address_errors(recipient, f"{key}[{index}]")
    return errors


def _content_errors(message: dict[str, Any]) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    has_template = "TemplateID" in message
    subject = message.get("Subject")
    if subject is None and not has_template:  # a template carries its own subject
        errors.append(_missing("Subject"))
    elif subject is not None and not isinstance(subject, str):
        errors.append(_mismatch("Subject", "string"))
    elif isinstance(subject, str) and len(subject) > _MAX_SUBJECT:
        errors.append(_error("mj-0005", "The Subject is too long (max 255).", "Subject"))
    if not any(key in message for key in _CONTENT_KEYS):
        errors.append(
            _error(
                "mj-0003",
                "At least HTMLPart, TextPart or TemplateID must be provided.",
                *_CONTENT_KEYS,
            )
        )
    errors.extend(
        _mismatch(key, "string")
        for key in ("TextPart", "HTMLPart", "CustomID", "EventPayload")
        if key in message and not isinstance(message[key], str)
    )
    template_id = message.get("TemplateID")
    if has_template and not (is_int(template_id) and template_id > 0):
        errors.append(_mismatch("TemplateID", "integer"))
    if "Variables" in message and not isinstance(message["Variables"], dict):
        errors.append(_mismatch("Variables", "object"))
    return errors


def _header_errors(message: dict[str, Any]) -> list[dict[str, Any]]:
    """v3.1 `Headers`: an object of header name → string value, nothing that forges structure."""
    if "Headers" not in message:
        return []
    headers = message["Headers"]
    if not isinstance(headers, dict):
        return [_mismatch("Headers", "object")]
    errors: list[dict[str, Any]] = []
    for name, value in headers.items():
        where = f"Headers.{name}"
        if not isinstance(value, str):
            errors.append(_mismatch(where, "string"))
        elif not _HEADER_NAME.match(name) or "\r" in value or "\n" in value:
            errors.append(_error("mj-0019", f'"{name}" is not a valid header.', where))
        elif name.lower() in _STRUCTURAL_HEADERS:
            message_text = f'"{name}" is set through its own property, not Headers.'
            errors.append(_error("mj-0019", message_text, where))
    return errors


def message_errors(message: Any) -> list[dict[str, Any]]:
    """Every v3.1 `Errors` entry one message deserves; empty when Mailjet would accept it."""
    if not isinstance(message, dict):
        return [_mismatch("Messages", "object")]
    from_ = message.get("From")
    errors = [_missing("From")] if from_ is None else _address_errors(from_, "From")
    errors += _recipient_errors(message, "To", required=True)
    errors += _recipient_errors(message, "Cc", required=False)
    errors += _recipient_errors(message, "Bcc", required=False)
    if "ReplyTo" in message:
        errors += _address_errors(message["ReplyTo"], "ReplyTo")
    return errors + _content_errors(message) + _header_errors(message)


class MailjetStandIn(Provider):
    name: ClassVar[str] = "mailjet"
    timeout_sleep_s: ClassVar[float] = 12.0  # the adapter's timeout is 10 s

    def __init__(self, api_key: str, secret_key: str) -> None:
        self._credentials = f"{api_key}:{secret_key}".encode()
        self._lock = threading.Lock()
        self._ids = itertools.count(_FIRST_MESSAGE_ID)
        self._sent: list[dict[str, Any]] = []  # Mailjet never dedupes on CustomID; neither do we
        # What each recipient would see, headers included (`GET /__messages`); `_sent` stays in
        # the shape of Mailjet's own message resource, which carries no headers.
        self._delivered: list[dict[str, Any]] = []

    def handle(self, request: Request) -> Reply:
        if request.path == "/v3.1/send":
            return self._guarded(request, "POST", self._send)
        if request.path == "/v3/REST/message" or request.path.startswith("/v3/REST/message/"):
            return self._guarded(request, "GET", self._lookup)
        return _global_error(404, "mj-0404", f"No route for {request.path}.")

    def control(self, request: Request) -> Reply | None:
        if (request.method, request.path) == ("GET", "/__messages"):
            with self._lock:
                return json_reply(200, [dict(item) for item in self._delivered])
        return None

    def simulated_error(self, status: int) -> Reply:
        code = "mj-0015" if status == 401 else f"mj-sim-{status}"
        return _global_error(status, code, f"Stand-in answered {status} as instructed.")

    def _guarded(self, request: Request, method: str, action: Callable[[Request], Reply]) -> Reply:
        if request.method != method:
            return _global_error(405, "mj-0405", f"Use {method} for {request.path}.")
        if not self._authorised(request.header("Authorization")):
            return _global_error(401, "mj-0015", _AUTH_MESSAGE)
        return action(request)

    def _authorised(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            supplied = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(supplied, self._credentials)

    def _send(self, request: Request) -> Reply:
        payload = request.body
        if not request.is_json or not isinstance(payload, dict):
            return _global_error(
                400, "mj-0002", "Malformed JSON, please review the syntax and properties types."
            )
        messages = payload.get("Messages")
        if not isinstance(messages, list) or not messages:
            return _global_error(400, "mj-0003", 'Missing mandatory property "Messages".')
        results: list[dict[str, Any]] = []
        failed = False
        for message in messages:
            errors = message_errors(message)
            failed = failed or bool(errors)
            results.append(
                {"Status": "error", "Errors": errors} if errors else self._deliver(message, request)
            )
        # As at Mailjet, valid messages of a mixed batch are still sent; 400 says "some failed".
        return json_reply(400 if failed else 200, {"Messages": results})

    def _deliver(self, message: dict[str, Any], request: Request) -> dict[str, Any]:
        custom_id = message.get("CustomID", "")
        result: dict[str, Any] = {"Status": "success", "CustomID": custom_id}
        for key in ("To", "Cc", "Bcc"):
            result[key] = [
                self._remember(message, recipient["Email"], request.base_url)
                for recipient in message.get(key) or []
            ]
        return result

    def _remember(self, message: dict[str, Any], email: str, base_url: str) -> dict[str, Any]:
        with self._lock:
            message_id = next(self._ids)
            message_uuid = str(uuid.uuid4())
            self._sent.append(
                {
                    "ID": message_id,
                    "UUID": message_uuid,
                    "ArrivedAt": utc_now(),
                    "Status": "sent",
                    "ContactAlt": email,
                    "Subject": message.get("Subject", ""),
                    "CustomID": message.get("CustomID", ""),
                    "IsTextPartIncluded": "TextPart" in message,
                    "IsHTMLPartIncluded": "HTMLPart" in message,
                    "TemplateID": message.get("TemplateID", 0),
                }
            )
            self._delivered.append(
                {
                    "MessageID": message_id,
                    "To": email,
                    "Subject": message.get("Subject", ""),
                    "CustomID": message.get("CustomID", ""),
                    "Headers": dict(message.get("Headers") or {}),
                    "TextPart": message.get("TextPart"),
                    "HTMLPart": message.get("HTMLPart"),
                }
            )
        return {
            "Email": email,
            "MessageUUID": message_uuid,
            "MessageID": message_id,
            "MessageHref": f"{base_url}/v3/REST/message/{message_id}",
        }

    def _lookup(self, request: Request) -> Reply:
        with self._lock:
            sent = [dict(item) for item in self._sent]
        suffix = request.path.removeprefix("/v3/REST/message").strip("/")
        if suffix:
            sent = [item for item in sent if str(item["ID"]) == suffix]
            if not sent:
                return json_reply(
                    404, {"ErrorInfo": "", "ErrorMessage": "Object not found", "StatusCode": 404}
                )
        if "CustomID" in request.query:
            sent = [item for item in sent if item["CustomID"] == request.query["CustomID"]]
        return json_reply(200, {"Count": len(sent), "Data": sent, "Total": len(sent)})
