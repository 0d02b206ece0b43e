"""The agent harness over HTTP JSON (domain.md §11.3): explicit timeouts, errors classified."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from playbook_core.domain.errors import PermanentProviderError, TransientProviderError
from playbook_core.ports import HarnessReply

_SERVER_ERROR = 500


class HttpAgentHarness:
    def __init__(
        self, base_url: str, token: str | None, client: httpx.Client | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.client = client or httpx.Client()

    def run(
        self, *, agent: str, task: str, payload: Mapping[str, Any], context: Mapping[str, Any],
        timeout_s: float,
    ) -> HarnessReply:  # fmt: skip
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        body = {"agent": agent, "task": task, "input": dict(payload), "context": dict(context)}
        try:
            response = self.client.post(
                f"{self.base_url}/v1/run", json=body, headers=headers, timeout=timeout_s
            )
        except httpx.TimeoutException as exc:
            raise TransientProviderError(
                "the agent harness timed out", code="harness_timeout"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientProviderError(
                "the agent harness is unreachable", code="harness_unavailable"
            ) from exc
        if response.status_code == 429 or response.status_code >= _SERVER_ERROR:
            raise TransientProviderError(
                f"the agent harness answered {response.status_code}",
                code="harness_unavailable", http_status=response.status_code,
                retry_after_s=_retry_after(response),
            )  # fmt: skip
        if response.status_code >= 400:
            raise PermanentProviderError(
                f"the agent harness refused the task ({response.status_code})",
                code="harness_rejected", http_status=response.status_code,
            )  # fmt: skip
        return _reply(response)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _reply(response: httpx.Response) -> HarnessReply:
    try:
        data = response.json()
    except ValueError as exc:
        raise PermanentProviderError(
            "the harness answer is not JSON", code="harness_protocol_error"
        ) from exc
    score = data.get("score") if isinstance(data, dict) else None
    if not isinstance(score, int) or isinstance(score, bool) or not 0 <= score <= 100:
        raise PermanentProviderError(
            "the harness answer has no valid score", code="harness_protocol_error"
        )
    issues = data.get("issues") or []
    remediation = data.get("remediation")
    return HarnessReply(
        output=data.get("output"),
        score=score,
        issues=issues if isinstance(issues, list) else [issues],
        remediation=remediation if isinstance(remediation, str) else None,
    )
