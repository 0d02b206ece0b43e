"""Slack incoming-webhook stand-in (§11.4): any path takes `{text}` and answers plain `ok`."""

from __future__ import annotations

from typing import ClassVar

from emulators.standin_core import Provider, Reply, Request, text_reply

# Slack answers errors as bare tokens in a text body, not JSON.
_ERROR_TOKENS = {
    400: "invalid_payload",
    403: "action_prohibited",
    404: "channel_not_found",
    410: "channel_is_archived",
    429: "rate_limited",
}


class SlackStandIn(Provider):
    name: ClassVar[str] = "slack"
    timeout_sleep_s: ClassVar[float] = 12.0  # the client's timeout is 5 s

    def handle(self, request: Request) -> Reply:
        if request.method != "POST":
            return text_reply(405, "invalid_method")
        payload = request.body
        text = payload.get("text") if request.is_json and isinstance(payload, dict) else None
        if not isinstance(text, str) or not text.strip():
            return text_reply(400, "invalid_payload")
        return text_reply(200, "ok")

    def simulated_error(self, status: int) -> Reply:
        default = "internal_error" if status >= 500 else "invalid_payload"
        return text_reply(status, _ERROR_TOKENS.get(status, default))
