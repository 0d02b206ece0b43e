"""The Slack webhook adapter against its stand-in: `ok`, rejections, outages (§11.4)."""

import httpx
import pytest

from emulators.standins import start_slack
from playbook_core.adapters.slack import SlackWebhook
from playbook_core.domain.errors import PermanentProviderError, TransientProviderError

HOOK_PATH = "/services/T000/B000/XXXXXXXXXXXX"


@pytest.fixture
def standin():
    server = start_slack(timeout_sleep_s=2.0)  # stop() wakes a held request
    yield server
    server.stop()


@pytest.fixture
def client():
    with httpx.Client() as http:
        yield http


def behave(standin, **mode):
    httpx.post(f"{standin.url}/__behaviour", json=mode, timeout=5).raise_for_status()


def recorded(standin):
    return httpx.get(f"{standin.url}/__requests", timeout=5).json()


def test_ok_posts_the_text(standin, client):
    text = "[Playbooks] mailjet failing for org org_1: mailjet_outage (3 in last hour)"
    assert SlackWebhook(client=client).post(standin.url + HOOK_PATH, text) is None
    (record,) = recorded(standin)
    assert (record["method"], record["path"], record["responseStatus"]) == (
        "POST",
        HOOK_PATH,
        200,
    )
    assert record["body"] == {"text": text}
    assert record["headers"]["content-type"] == "application/json"


def test_an_invalid_payload_is_permanent(standin, client):
    with pytest.raises(PermanentProviderError) as caught:
        SlackWebhook(client=client).post(standin.url + HOOK_PATH, "   ")
    assert (caught.value.code, caught.value.http_status) == ("slack_rejected", 400)
    assert "invalid_payload" in caught.value.detail


@pytest.mark.parametrize(
    ("status", "answer"),
    [(400, "invalid_payload"), (403, "action_prohibited"), (404, "channel_not_found"),
     (410, "channel_is_archived")],
)  # fmt: skip
def test_rejections_are_permanent(standin, client, status, answer):
    behave(standin, mode="error_4xx", status=status)
    with pytest.raises(PermanentProviderError) as caught:
        SlackWebhook(client=client).post(standin.url + HOOK_PATH, "hi")
    assert (caught.value.code, caught.value.http_status) == ("slack_rejected", status)
    assert answer in caught.value.detail


def test_429_is_transient_with_retry_after(standin, client):
    behave(standin, mode="error_4xx", status=429)
    with pytest.raises(TransientProviderError) as caught:
        SlackWebhook(client=client).post(standin.url + HOOK_PATH, "hi")
    assert (caught.value.code, caught.value.retry_after_s) == ("slack_unavailable", 1.0)


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_transient(standin, client, status):
    behave(standin, mode="error_5xx", status=status)
    with pytest.raises(TransientProviderError) as caught:
        SlackWebhook(client=client).post(standin.url + HOOK_PATH, "hi")
    assert (caught.value.code, caught.value.http_status) == ("slack_unavailable", status)


def test_a_timeout_is_transient(standin, client):
    behave(standin, mode="timeout")
    with pytest.raises(TransientProviderError) as caught:
        SlackWebhook(client=client, timeout_s=0.3).post(standin.url + HOOK_PATH, "hi")
    assert caught.value.code == "slack_unavailable"


def test_a_connection_error_is_transient_and_never_names_the_url(client):
    server = start_slack()
    server.stop()  # the port is now closed: connection refused
    url = server.url + HOOK_PATH
    with pytest.raises(TransientProviderError) as caught:
        SlackWebhook(client=client).post(url, "hi")
    assert caught.value.code == "slack_unavailable"
    assert HOOK_PATH not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


def test_a_200_without_ok_is_a_protocol_error(standin, client):
    behave(standin, mode="malformed")
    with pytest.raises(PermanentProviderError) as caught:
        SlackWebhook(client=client).post(standin.url + HOOK_PATH, "hi")
    assert caught.value.code == "provider_protocol_error"


@pytest.mark.parametrize("url", ["", "ftp://hooks.example/services/x"])
def test_a_missing_or_unusable_url_is_not_configured(client, url):
    with pytest.raises(PermanentProviderError) as caught:
        SlackWebhook(client=client).post(url, "hi")
    assert caught.value.code == "slack_not_configured"
    assert "hooks.example" not in str(caught.value)
