"""Slack incoming webhooks behind the SlackNotifier port, for alerts and `notify slack` (§11.4)."""

from __future__ import annotations

import httpx

from playbook_core.adapters.mailjet import retry_after_seconds
from playbook_core.domain.errors import PermanentProviderError, TransientProviderError

_UNAVAILABLE = "slack_unavailable"
_REJECTED = "slack_rejected"
_MAX_DETAIL = 200


class SlackWebhook:
    """Posts `{"text": …}`; the webhook URL is a secret, so it never appears in an error."""

    def __init__(self, client: httpx.Client | None = None, timeout_s: float = 5.0) -> None:
        self.client = client or httpx.Client()
        self.timeout_s = timeout_s

    def post(self, webhook_url: str, text: str) -> None:
        if not webhook_url:
            raise PermanentProviderError(
                "no Slack webhook URL is configured", code="slack_not_configured"
            )
        try:
            response = self.client.post(webhook_url, json={"text": text}, timeout=self.timeout_s)
        # `from None` throughout: httpx errors carry the request, whose URL is the secret, and a
        # logged traceback would print the chained exception.
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            raise PermanentProviderError(
                "the Slack webhook URL is not usable", code="slack_not_configured"
            ) from None
        except httpx.TimeoutException:
            raise TransientProviderError("Slack timed out", code=_UNAVAILABLE) from None
        except httpx.TransportError as exc:
            raise TransientProviderError(
                f"Slack is unreachable ({type(exc).__name__})", code=_UNAVAILABLE
            ) from None
        _raise_for_status(response)


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    answer = response.text.strip()[:_MAX_DETAIL]  # Slack answers bare tokens: ok, invalid_payload…
    if status == 200 and answer == "ok":
        return
    if status == 429 or status >= 500 or status == 408:
        raise TransientProviderError(
            f"Slack answered {status}: {answer or 'no body'}",
            code=_UNAVAILABLE,
            http_status=status,
            retry_after_s=retry_after_seconds(response.headers) if status == 429 else None,
        )
    if status >= 400:
        raise PermanentProviderError(
            f"Slack refused the message ({status}): {answer or 'no body'}",
            code=_REJECTED,
            http_status=status,
        )
    # A 2xx without `ok` may still have posted; retrying could post twice, so it is not retried.
    raise PermanentProviderError(
        f"Slack answered {status} without ok", code="provider_protocol_error", http_status=status
    )
