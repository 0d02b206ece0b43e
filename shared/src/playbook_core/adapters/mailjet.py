"""Mailjet Send API v3.1 behind the Mailer port, each failure classed for retries (§11.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from playbook_core.adapters import provider_errors
from playbook_core.domain.errors import PermanentProviderError, TransientProviderError
from playbook_core.ports import EmailMessage, SentMessage

# The engine maps this code to the fixed one-hour retry and the provider-down alert (§7.5, §7.14).
OUTAGE = "mailjet_outage"
_AUTH_CODES = frozenset({"mj-0001", "mj-0015"})  # account suspended, bad credentials
_INVALID_ADDRESS = "mj-0013"
_RECIPIENT_FIELDS = ("To", "Cc", "Bcc")
_MAX_DETAIL = 600  # the detail lands in the delivery's lastError; keep it a sentence, not a dump


class MailjetMailer:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        secret_key: str | None,
        from_email: str,
        from_name: str,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Checked per call, not here: bootstrap can always build the adapter, and a send without
        # credentials fails as `provider_not_configured` instead of silently succeeding.
        self._auth = (api_key, secret_key) if api_key and secret_key else None
        self.from_email = from_email
        self.from_name = from_name
        self.client = client or httpx.Client()
        self.timeout_s = timeout_s

    def send(self, message: EmailMessage) -> SentMessage:
        response = self._call("POST", "/v3.1/send", json={"Messages": [self._payload(message)]})
        _raise_for_status(response)
        return _sent(provider_errors.json_body(response, "Mailjet"))

    def find_sent(self, custom_id: str) -> SentMessage | None:
        response = self._call("GET", "/v3/REST/message", params={"CustomID": custom_id})
        _raise_for_status(response)
        return _found(provider_errors.json_body(response, "Mailjet"))

    def _payload(self, message: EmailMessage) -> dict[str, Any]:
        body: dict[str, Any] = {
            "From": {"Email": self.from_email, "Name": self.from_name},
            "To": [{"Email": message.to}],
            "CustomID": message.custom_id,
            "EventPayload": message.event_payload,
        }
        if message.subject:  # with a template an empty subject means "use the template's"
            body["Subject"] = message.subject
        if message.template_id is not None:
            body["TemplateID"] = message.template_id
            body["TemplateLanguage"] = True
            body["Variables"] = dict(message.variables or {})
        else:
            if message.text is not None:
                body["TextPart"] = message.text
            if message.html is not None:
                body["HTMLPart"] = message.html
        if message.reply_to:
            body["ReplyTo"] = {"Email": message.reply_to}
        if message.headers:  # v3.1 `Headers`: MIME headers by name, e.g. List-Unsubscribe
            body["Headers"] = dict(message.headers)
        return body

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        if self._auth is None:
            raise PermanentProviderError(
                "MAILJET_API_KEY and MAILJET_SECRET_KEY must both be set",
                code="provider_not_configured",
            )
        unusable_url = "MAILJET_API_BASE is not a usable URL"
        with provider_errors.unanswered("Mailjet", outage=OUTAGE, unusable_url=unusable_url):
            return self.client.request(
                method,
                f"{self.base_url}{path}",
                json=json,
                params=params,
                auth=self._auth,
                timeout=self.timeout_s,
            )


def _raise_for_status(response: httpx.Response) -> None:
    provider_errors.raise_for_status(response, "Mailjet", outage=OUTAGE, refused=_refused)


def _refused(response: httpx.Response) -> PermanentProviderError:
    status, errors = response.status_code, _errors(response)
    return PermanentProviderError(
        _describe(status, errors), code=_permanent_code(status, errors), http_status=status
    )


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    """The v3.1 error entries: per-message `Errors`, or the one global error object."""
    try:
        data = response.json()
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    messages = data.get("Messages")
    if isinstance(messages, list):
        return [
            error
            for message in messages
            if isinstance(message, dict) and isinstance(message.get("Errors"), list)
            for error in message["Errors"]
            if isinstance(error, dict)
        ]
    return [data] if "ErrorCode" in data or "ErrorMessage" in data else []


def _permanent_code(status: int, errors: list[dict[str, Any]]) -> str:
    if any(_bad_recipient(error) for error in errors):
        return "invalid_recipient"
    codes = {error.get("ErrorCode") for error in errors}
    if status == 401 or codes & _AUTH_CODES:
        return "provider_auth"
    return "provider_rejected"


def _bad_recipient(error: dict[str, Any]) -> bool:
    # mj-0013 on our own From/ReplyTo is a configuration fault, not the customer's address.
    if error.get("ErrorCode") != _INVALID_ADDRESS:
        return False
    related = error.get("ErrorRelatedTo")
    if not isinstance(related, list) or not related:
        return True
    return any(str(field).startswith(_RECIPIENT_FIELDS) for field in related)


def _describe(status: int, errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        # ErrorIdentifier is what Mailjet support asks for: it comes first so truncation spares it.
        words = [str(error.get("ErrorCode") or "?")]
        if error.get("ErrorIdentifier"):
            words.append(f"(ErrorIdentifier {error['ErrorIdentifier']})")
        words.append(str(error.get("ErrorMessage") or ""))
        related = error.get("ErrorRelatedTo")
        if isinstance(related, list) and related:
            words.append(f"[{', '.join(map(str, related))}]")
        parts.append(" ".join(word for word in words if word))
    detail = f"Mailjet answered {status}: " + ("; ".join(parts) or "no error details")
    return detail[:_MAX_DETAIL]


def _sent(data: Any) -> SentMessage:
    messages = data.get("Messages") if isinstance(data, dict) else None
    first = messages[0] if isinstance(messages, list) and messages else None
    if not isinstance(first, dict):
        raise _protocol_error("the send answer has no Messages[0]")
    status = str(first.get("Status", "")).lower()
    if status == "error":  # a 200 carrying a per-message error still means "not sent"
        errors = [e for e in first.get("Errors") or [] if isinstance(e, dict)]
        inner = max((_status_of(error) for error in errors), default=400)
        if inner >= 500:
            raise TransientProviderError(_describe(inner, errors), code=OUTAGE, http_status=inner)
        raise PermanentProviderError(
            _describe(inner, errors), code=_permanent_code(inner, errors), http_status=inner
        )
    recipients = first.get("To")
    recipient = recipients[0] if isinstance(recipients, list) and recipients else None
    if status != "success" or not isinstance(recipient, dict):
        raise _protocol_error("the send answer is neither a success nor an error")
    message_uuid = recipient.get("MessageUUID")
    if not isinstance(message_uuid, str) or not message_uuid:
        raise _protocol_error("the send answer has no To[0].MessageUUID")
    return SentMessage(
        provider_message_id=message_uuid, provider_extra={"messageId": recipient.get("MessageID")}
    )


def _found(data: Any) -> SentMessage | None:
    found = data.get("Data") if isinstance(data, dict) else None
    if not isinstance(found, list):
        raise _protocol_error("the message lookup has no Data list")
    # Mailjet never dedupes on CustomID; after a resend there may be two, and any one proves
    # the customer got the email, so the first listed is as good as another.
    item = next((entry for entry in found if isinstance(entry, dict)), None)
    if item is None:
        return None
    message_uuid, message_id = item.get("UUID"), item.get("ID")
    if isinstance(message_uuid, str) and message_uuid:
        return SentMessage(
            provider_message_id=message_uuid, provider_extra={"messageId": message_id}
        )
    if message_id is not None:  # without a UUID the numeric id still proves the send happened
        return SentMessage(
            provider_message_id=str(message_id), provider_extra={"messageId": message_id}
        )
    raise _protocol_error("the message lookup lists a message without UUID or ID")


def _status_of(error: dict[str, Any]) -> int:
    status = error.get("StatusCode")
    return status if isinstance(status, int) else 400


def _protocol_error(detail: str) -> PermanentProviderError:
    return PermanentProviderError(f"Mailjet: {detail}", code=provider_errors.PROTOCOL_ERROR)
