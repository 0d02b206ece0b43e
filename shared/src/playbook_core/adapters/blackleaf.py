"""Blackleaf SMS behind the SmsSender port; the provider dedupes on clientReference (§11.2)."""

from __future__ import annotations

from typing import Any

import httpx

from playbook_core.adapters.mailjet import retry_after_seconds
from playbook_core.domain.errors import PermanentProviderError, TransientProviderError
from playbook_core.ports import SentMessage

_UNAVAILABLE = "provider_unavailable"
_MAX_DETAIL = 300


class BlackleafSms:
    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        client: httpx.Client | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        # Checked per call so bootstrap can always build the adapter; an SMS step without
        # configuration then fails loudly as `provider_not_configured`.
        self.base_url = base_url.rstrip("/") if base_url else None
        self._api_key = api_key or None
        self.client = client or httpx.Client()
        self.timeout_s = timeout_s

    def send_sms(self, *, to: str, body: str, client_reference: str, org_id: str) -> SentMessage:
        # The assumed wire shape carries no tenant: isolation is ours (delivery docs), not theirs.
        del org_id
        if not self.base_url or not self._api_key:
            raise PermanentProviderError(
                "BLACKLEAF_API_BASE and BLACKLEAF_API_KEY must both be set",
                code="provider_not_configured",
            )
        payload = {"to": to, "body": body, "clientReference": client_reference}
        try:
            response = self.client.post(
                f"{self.base_url}/v1/messages",
                json=payload,
                headers={"Authorization": f"Bearer {self._api_key}"},
                timeout=self.timeout_s,
            )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise PermanentProviderError(
                "BLACKLEAF_API_BASE is not a usable URL", code="provider_not_configured"
            ) from exc
        except httpx.TimeoutException as exc:
            # Safe to retry: a resend with the same clientReference cannot text the customer twice.
            raise TransientProviderError("Blackleaf timed out", code=_UNAVAILABLE) from exc
        except httpx.TransportError as exc:
            # The class, not str(exc): the detail is logged and stored; httpx texts hold URLs.
            raise TransientProviderError(
                f"Blackleaf is unreachable ({type(exc).__name__})", code=_UNAVAILABLE
            ) from exc
        _raise_for_status(response)
        return _sent(response)


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429:
        raise TransientProviderError(
            "Blackleaf rate-limited the request",
            code="rate_limited",
            http_status=status,
            retry_after_s=retry_after_seconds(response.headers),
        )
    if status >= 500 or status == 408:  # 408: the server timed out on us, as a client timeout
        raise TransientProviderError(
            f"Blackleaf answered {status}", code=_UNAVAILABLE, http_status=status
        )
    if status < 400:
        raise PermanentProviderError(
            f"Blackleaf answered an unexpected {status}",
            code="provider_protocol_error",
            http_status=status,
        )
    code = "provider_auth" if status in {401, 403} else "provider_rejected"
    raise PermanentProviderError(
        f"Blackleaf answered {status}: {_error_text(response)}"[:_MAX_DETAIL],
        code=code,
        http_status=status,
    )


def _error_text(response: httpx.Response) -> str:
    """`code: message` from the `{error: {code, message}}` body, else the raw text."""
    try:
        data: Any = response.json()
    except ValueError:
        return response.text.strip() or "no error details"
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return f"{error.get('code', '?')}: {error.get('message', '')}".strip()
    return str(data)


def _sent(response: httpx.Response) -> SentMessage:
    try:
        data: Any = response.json()
    except ValueError as exc:
        raise PermanentProviderError(
            f"Blackleaf answered {response.status_code} with a body that is not JSON",
            code="provider_protocol_error",
            http_status=response.status_code,
        ) from exc
    message_id = data.get("id") if isinstance(data, dict) else None
    if isinstance(message_id, int) and not isinstance(message_id, bool):
        message_id = str(message_id)  # the wire shape is assumed (§11.2); a numeric id is as good
    if not isinstance(message_id, str) or not message_id:
        raise PermanentProviderError(
            "Blackleaf's answer has no message id",
            code="provider_protocol_error",
            http_status=response.status_code,
        )
    return SentMessage(
        provider_message_id=message_id, provider_extra={"status": data.get("status")}
    )
