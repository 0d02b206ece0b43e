"""Blackleaf SMS behind the SmsSender port; the provider dedupes on clientReference (§11.2)."""

from __future__ import annotations

from typing import Any

import httpx

from playbook_core.adapters import provider_errors
from playbook_core.domain.errors import PermanentProviderError
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
        unusable_url = "BLACKLEAF_API_BASE is not a usable URL"
        # A timeout is safe to retry: a resend with the same clientReference cannot text twice.
        with provider_errors.unanswered(
            "Blackleaf", outage=_UNAVAILABLE, unusable_url=unusable_url
        ):
            response = self.client.post(
                f"{self.base_url}/v1/messages",
                json=payload,
                headers={"Authorization": f"Bearer {self._api_key}"},
                timeout=self.timeout_s,
            )
        provider_errors.raise_for_status(
            response, "Blackleaf", outage=_UNAVAILABLE, refused=_refused
        )
        return _sent(response)


def _refused(response: httpx.Response) -> PermanentProviderError:
    status = response.status_code
    code = "provider_auth" if status in {401, 403} else "provider_rejected"
    return PermanentProviderError(
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
    data = provider_errors.json_body(response, "Blackleaf")
    message_id = data.get("id") if isinstance(data, dict) else None
    if isinstance(message_id, int) and not isinstance(message_id, bool):
        message_id = str(message_id)  # the wire shape is assumed (§11.2); a numeric id is as good
    if not isinstance(message_id, str) or not message_id:
        raise PermanentProviderError(
            "Blackleaf's answer has no message id",
            code=provider_errors.PROTOCOL_ERROR,
            http_status=response.status_code,
        )
    return SentMessage(
        provider_message_id=message_id, provider_extra={"status": data.get("status")}
    )
