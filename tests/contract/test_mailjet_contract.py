"""The Mailjet adapter against the Mailjet stand-in: wire shape and every error class of §11.1."""

import base64
import re
from datetime import UTC, datetime

import httpx
import pytest

from emulators.standins import MAILJET_TEST_KEY, MAILJET_TEST_SECRET, start_mailjet
from playbook_core.adapters.mailjet import MailjetMailer
from playbook_core.adapters.provider_errors import retry_after_seconds
from playbook_core.domain.errors import PermanentProviderError, TransientProviderError
from playbook_core.ports import EmailMessage

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
FROM_EMAIL, FROM_NAME = "playbooks@bakedbot.ai", "BakedBot AI"


@pytest.fixture
def standin():
    server = start_mailjet(timeout_sleep_s=2.0)  # stop() wakes a held request; no test waits 2 s
    yield server
    server.stop()


@pytest.fixture
def client():
    with httpx.Client() as http:
        yield http


def mailer(standin, client, *, key=MAILJET_TEST_KEY, secret=MAILJET_TEST_SECRET, **options):
    url = options.pop("base_url", standin.url)
    from_email = options.pop("from_email", FROM_EMAIL)
    return MailjetMailer(url, key, secret, from_email, FROM_NAME, client=client, **options)


def email(**fields):
    values = {
        "to": "ada@example.com",
        "subject": "Your order is ready",
        "text": "Come and pick it up.",
        "html": None,
        "custom_id": "dlv_abc123",
        "event_payload": '{"orgId": "org_1", "executionId": "ex_1", "playbookId": "pb_1"}',
    }
    return EmailMessage(**{**values, **fields})


def behave(standin, **mode):
    httpx.post(f"{standin.url}/__behaviour", json=mode, timeout=5).raise_for_status()


def recorded(standin):
    return httpx.get(f"{standin.url}/__requests", timeout=5).json()


def sent_message(standin):
    (record,) = [r for r in recorded(standin) if r["path"] == "/v3.1/send"]
    (message,) = record["body"]["Messages"]  # one message per request (§11.1)
    return record, message


def test_a_text_send_returns_the_uuid_and_records_the_wire_shape(standin, client):
    sent = mailer(standin, client).send(email(reply_to="support@shop.example"))
    assert UUID.match(sent.provider_message_id)
    assert isinstance(sent.provider_extra["messageId"], int)
    record, message = sent_message(standin)
    credentials = base64.b64encode(f"{MAILJET_TEST_KEY}:{MAILJET_TEST_SECRET}".encode()).decode()
    assert record["method"] == "POST"
    assert record["headers"]["authorization"] == f"Basic {credentials}"
    assert record["responseStatus"] == 200
    assert message == {
        "From": {"Email": FROM_EMAIL, "Name": FROM_NAME},
        "To": [{"Email": "ada@example.com"}],
        "Subject": "Your order is ready",
        "TextPart": "Come and pick it up.",
        "CustomID": "dlv_abc123",
        "EventPayload": '{"orgId": "org_1", "executionId": "ex_1", "playbookId": "pb_1"}',
        "ReplyTo": {"Email": "support@shop.example"},
    }


def test_an_html_send_carries_only_the_html_part(standin, client):
    mailer(standin, client).send(email(text=None, html="<p>Come and pick it up.</p>"))
    _, message = sent_message(standin)
    assert message["HTMLPart"] == "<p>Come and pick it up.</p>"
    assert "TextPart" not in message
    assert "ReplyTo" not in message


def test_text_and_html_travel_together(standin, client):
    mailer(standin, client).send(email(html="<p>Hi</p>"))
    _, message = sent_message(standin)
    assert (message["TextPart"], message["HTMLPart"]) == ("Come and pick it up.", "<p>Hi</p>")


def test_a_template_send_carries_template_language_and_variables(standin, client):
    variables = {"firstName": "Ada", "points": 120}
    sent = mailer(standin, client).send(
        email(subject="", text=None, template_id=4242, variables=variables)
    )
    assert UUID.match(sent.provider_message_id)
    _, message = sent_message(standin)
    assert message["TemplateID"] == 4242
    assert message["TemplateLanguage"] is True
    assert message["Variables"] == variables
    assert not {"Subject", "TextPart", "HTMLPart"} & set(message)


def test_unsubscribe_headers_reach_the_recipient_as_mailjet_headers(standin, client):
    # RFC 8058 (consent.md §4): every marketing email carries both headers.
    link = "https://links.example.com/email_unsubscribe?token=abc.def"
    headers = {
        "List-Unsubscribe": f"<{link}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    mailer(standin, client).send(email(headers=headers))
    _, message = sent_message(standin)
    assert message["Headers"] == headers
    (delivered,) = httpx.get(f"{standin.url}/__messages", timeout=5).json()
    assert delivered["Headers"] == headers
    assert delivered["To"] == "ada@example.com"


def test_a_message_without_headers_sends_none(standin, client):
    mailer(standin, client).send(email())
    _, message = sent_message(standin)
    assert "Headers" not in message


@pytest.mark.parametrize(
    "headers",
    [{"Subject": "forged"}, {"List-Unsubscribe": "<x>\r\nBcc: victim@example.com"},
     {"Bad Name": "x"}],
)  # fmt: skip
def test_the_stand_in_refuses_headers_that_would_forge_the_message(standin, client, headers):
    with pytest.raises(PermanentProviderError) as caught:
        mailer(standin, client).send(email(headers=headers))
    assert caught.value.code == "provider_rejected"
    assert "mj-0019" in caught.value.detail


def test_find_sent_returns_the_message_sent_under_the_custom_id(standin, client):
    adapter = mailer(standin, client)
    sent = adapter.send(email(custom_id="dlv_recover_me"))
    adapter.send(email(custom_id="dlv_someone_else"))
    found = adapter.find_sent("dlv_recover_me")
    assert found == sent
    lookup = recorded(standin)[-1]
    assert (lookup["method"], lookup["path"]) == ("GET", "/v3/REST/message")
    assert lookup["query"] == {"CustomID": "dlv_recover_me"}
    assert lookup["headers"]["authorization"].startswith("Basic ")


def test_find_sent_is_none_for_an_unknown_custom_id(standin, client):
    assert mailer(standin, client).find_sent("dlv_never_sent") is None


@pytest.mark.parametrize(("key", "secret"), [(None, MAILJET_TEST_SECRET), ("k", None), ("", "")])
def test_missing_credentials_are_never_a_silent_success(standin, client, key, secret):
    adapter = mailer(standin, client, key=key, secret=secret)
    with pytest.raises(PermanentProviderError) as caught:
        adapter.send(email())
    assert caught.value.code == "provider_not_configured"
    with pytest.raises(PermanentProviderError) as lookup:
        adapter.find_sent("dlv_abc123")
    assert lookup.value.code == "provider_not_configured"
    assert recorded(standin) == []


@pytest.mark.parametrize("base_url", ["", "ftp://mail.example"])
def test_an_unusable_base_url_is_not_configured_rather_than_an_outage(client, base_url):
    adapter = MailjetMailer(base_url, "k", "s", FROM_EMAIL, FROM_NAME, client=client)
    with pytest.raises(PermanentProviderError) as caught:
        adapter.send(email())
    assert caught.value.code == "provider_not_configured"


def test_wrong_credentials_are_provider_auth(standin, client):
    adapter = mailer(standin, client, secret="wrong")
    with pytest.raises(PermanentProviderError) as caught:
        adapter.send(email())
    assert (caught.value.code, caught.value.http_status) == ("provider_auth", 401)
    assert "mj-0015" in caught.value.detail
    with pytest.raises(PermanentProviderError) as lookup:
        adapter.find_sent("dlv_abc123")
    assert lookup.value.code == "provider_auth"


def test_an_invalid_recipient_keeps_the_error_identifier(standin, client):
    with pytest.raises(PermanentProviderError) as caught:
        mailer(standin, client).send(email(to="not-an-address"))
    assert (caught.value.code, caught.value.http_status) == ("invalid_recipient", 400)
    assert re.search(r"mj-0013 \(ErrorIdentifier [0-9a-f-]{36}\)", caught.value.detail)
    assert "To[0].Email" in caught.value.detail


def test_an_invalid_sender_is_our_configuration_not_the_recipient(standin, client):
    with pytest.raises(PermanentProviderError) as caught:
        mailer(standin, client, from_email="broken-sender").send(email())
    assert caught.value.code == "provider_rejected"
    assert "mj-0013" in caught.value.detail


def test_a_message_without_content_is_rejected(standin, client):
    with pytest.raises(PermanentProviderError) as caught:
        mailer(standin, client).send(email(text=None))
    assert caught.value.code == "provider_rejected"
    assert "mj-0003" in caught.value.detail
    assert "ErrorIdentifier" in caught.value.detail


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "provider_rejected"), (403, "provider_rejected"), (404, "provider_rejected"),
     (401, "provider_auth")],
)  # fmt: skip
def test_other_4xx_are_permanent(standin, client, status, code):
    behave(standin, mode="error_4xx", status=status)
    with pytest.raises(PermanentProviderError) as caught:
        mailer(standin, client).send(email())
    assert (caught.value.code, caught.value.http_status) == (code, status)
    assert "ErrorIdentifier" in caught.value.detail


def test_429_is_rate_limited_with_retry_after(standin, client):
    behave(standin, mode="error_4xx", status=429)
    with pytest.raises(TransientProviderError) as caught:
        mailer(standin, client).send(email())
    assert (caught.value.code, caught.value.http_status) == ("rate_limited", 429)
    assert caught.value.retry_after_s == 1.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_a_mailjet_outage(standin, client, status):
    behave(standin, mode="error_5xx", status=status)
    with pytest.raises(TransientProviderError) as caught:
        mailer(standin, client).send(email())
    assert (caught.value.code, caught.value.http_status) == ("mailjet_outage", status)


def test_find_sent_during_an_outage_is_transient(standin, client):
    behave(standin, mode="error_5xx")
    with pytest.raises(TransientProviderError) as caught:
        mailer(standin, client).find_sent("dlv_abc123")
    assert caught.value.code == "mailjet_outage"


def test_a_timeout_is_a_mailjet_outage(standin, client):
    behave(standin, mode="timeout")
    with pytest.raises(TransientProviderError) as caught:
        mailer(standin, client, timeout_s=0.3).send(email())
    assert caught.value.code == "mailjet_outage"
    assert caught.value.http_status is None


def test_a_connection_error_is_a_mailjet_outage(client):
    server = start_mailjet()
    server.stop()  # the port is now closed: connection refused
    with pytest.raises(TransientProviderError) as caught:
        mailer(server, client).send(email())
    assert caught.value.code == "mailjet_outage"


def test_a_malformed_200_is_a_protocol_error(standin, client):
    behave(standin, mode="malformed")
    with pytest.raises(PermanentProviderError) as caught:
        mailer(standin, client).send(email())
    assert caught.value.code == "provider_protocol_error"
    with pytest.raises(PermanentProviderError) as lookup:
        mailer(standin, client).find_sent("dlv_abc123")
    assert lookup.value.code == "provider_protocol_error"


def test_a_send_succeeds_once_the_outage_is_over(standin, client):
    behave(standin, mode="error_5xx", times=1)
    adapter = mailer(standin, client)
    with pytest.raises(TransientProviderError):
        adapter.send(email())
    assert UUID.match(adapter.send(email()).provider_message_id)
    assert [r["responseStatus"] for r in recorded(standin)] == [503, 200]


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds({"Retry-After": "120"}, now) == 120.0
    assert retry_after_seconds({"Retry-After": "Wed, 01 Jan 2025 12:01:30 GMT"}, now) == 90.0
    assert retry_after_seconds({"Retry-After": "Wed, 01 Jan 2025 11:00:00 GMT"}, now) == 0.0
    assert retry_after_seconds({"Retry-After": "-5"}, now) == 0.0
    assert retry_after_seconds({"Retry-After": "soon"}, now) is None
    assert retry_after_seconds({"Retry-After": "nan"}, now) is None
    assert retry_after_seconds({}, now) is None
