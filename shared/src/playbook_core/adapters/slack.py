"""Slack incoming webhooks behind the SlackNotifier port, for alerts and `notify slack` (§11.4)."""

from __future__ import annotations

import httpx

from playbook_core.adapters import provider_errors
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
        # Nothing chained: httpx errors carry the request, and its URL is the secret.
        with provider_errors.unanswered(
            "Slack",
            outage=_UNAVAILABLE,
            unusable_url="the Slack webhook URL is not usable",
            not_configured="slack_not_configured",
            chain=False,
        ):
            response = self.client.post(webhook_url, json={"text": text}, timeout=self.timeout_s)
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
            retry_after_s=provider_errors.retry_after_seconds(response.headers)
            if status == 429
            else None,
        )
    if status >= 400:
        raise PermanentProviderError(
            f"Slack refused the message ({status}): {answer or 'no body'}",
            code=_REJECTED,
            http_status=status,
        )
    # A 2xx without `ok` may still have posted; retrying could post twice, so it is not retried.
    raise PermanentProviderError(
        f"Slack answered {status} without ok",
        code=provider_errors.PROTOCOL_ERROR,
        http_status=status,
    )
