"""The Blackleaf adapter against its stand-in: wire shape, reference dedup, every error class."""

import httpx
import pytest

from emulators.standins import BLACKLEAF_TEST_KEY, start_blackleaf
from playbook_core.adapters.blackleaf import BlackleafSms
from playbook_core.domain.errors import PermanentProviderError, TransientProviderError


@pytest.fixture
def standin():
    server = start_blackleaf(timeout_sleep_s=2.0)  # stop() wakes a held request
    yield server
    server.stop()


@pytest.fixture
def client():
    with httpx.Client() as http:
        yield http


def sms(standin, client, *, key=BLACKLEAF_TEST_KEY, timeout_s=10.0):
    return BlackleafSms(standin.url, key, client=client, timeout_s=timeout_s)


def send(adapter, *, to="+15551234567", reference="dlv_abc123"):
    return adapter.send_sms(
        to=to, body="Your order is ready.", client_reference=reference, org_id="org_1"
    )


def behave(standin, **mode):
    httpx.post(f"{standin.url}/__behaviour", json=mode, timeout=5).raise_for_status()


def recorded(standin):
    return httpx.get(f"{standin.url}/__requests", timeout=5).json()


def test_a_send_returns_the_id_and_records_the_wire_shape(standin, client):
    sent = send(sms(standin, client))
    assert sent.provider_message_id.startswith("bl_")
    assert sent.provider_extra == {"status": "queued"}
    (record,) = recorded(standin)
    assert (record["method"], record["path"], record["responseStatus"]) == (
        "POST",
        "/v1/messages",
        201,
    )
    assert record["headers"]["authorization"] == f"Bearer {BLACKLEAF_TEST_KEY}"
    assert record["body"] == {
        "to": "+15551234567",
        "body": "Your order is ready.",
        "clientReference": "dlv_abc123",
    }
    assert record["duplicate"] is False


def test_the_same_reference_twice_is_one_message(standin, client):
    adapter = sms(standin, client)
    first, second = send(adapter), send(adapter)
    assert first.provider_message_id == second.provider_message_id
    assert [r["duplicate"] for r in recorded(standin)] == [False, True]
    messages = httpx.get(f"{standin.url}/__messages", timeout=5).json()
    assert [m["id"] for m in messages] == [first.provider_message_id]


def test_different_references_are_different_messages(standin, client):
    adapter = sms(standin, client)
    assert send(adapter, reference="dlv_1") != send(adapter, reference="dlv_2")


@pytest.mark.parametrize(("base_url", "key"), [(None, "k"), ("http://127.0.0.1:9", None)])
def test_missing_configuration_is_never_a_silent_success(client, base_url, key):
    with pytest.raises(PermanentProviderError) as caught:
        send(BlackleafSms(base_url, key, client=client))
    assert caught.value.code == "provider_not_configured"


def test_an_unusable_base_url_is_not_configured(client):
    with pytest.raises(PermanentProviderError) as caught:
        send(BlackleafSms("ftp://sms.example", "k", client=client))
    assert caught.value.code == "provider_not_configured"


def test_a_wrong_key_is_provider_auth(standin, client):
    with pytest.raises(PermanentProviderError) as caught:
        send(sms(standin, client, key="wrong"))
    assert (caught.value.code, caught.value.http_status) == ("provider_auth", 401)
    assert "unauthorized" in caught.value.detail


def test_a_bad_number_is_rejected_with_the_vendor_code(standin, client):
    with pytest.raises(PermanentProviderError) as caught:
        send(sms(standin, client), to="5551234567")
    assert (caught.value.code, caught.value.http_status) == ("provider_rejected", 400)
    assert "invalid_number" in caught.value.detail


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "provider_rejected"), (404, "provider_rejected"), (422, "provider_rejected"),
     (401, "provider_auth"), (403, "provider_auth")],
)  # fmt: skip
def test_4xx_are_permanent(standin, client, status, code):
    behave(standin, mode="error_4xx", status=status)
    with pytest.raises(PermanentProviderError) as caught:
        send(sms(standin, client))
    assert (caught.value.code, caught.value.http_status) == (code, status)


def test_429_is_rate_limited_with_retry_after(standin, client):
    behave(standin, mode="error_4xx", status=429)
    with pytest.raises(TransientProviderError) as caught:
        send(sms(standin, client))
    assert (caught.value.code, caught.value.retry_after_s) == ("rate_limited", 1.0)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_transient(standin, client, status):
    behave(standin, mode="error_5xx", status=status)
    with pytest.raises(TransientProviderError) as caught:
        send(sms(standin, client))
    assert (caught.value.code, caught.value.http_status) == ("provider_unavailable", status)


def test_a_timeout_is_transient(standin, client):
    behave(standin, mode="timeout")
    with pytest.raises(TransientProviderError) as caught:
        send(sms(standin, client, timeout_s=0.3))
    assert caught.value.code == "provider_unavailable"


def test_a_connection_error_is_transient(client):
    server = start_blackleaf()
    server.stop()  # the port is now closed: connection refused
    with pytest.raises(TransientProviderError) as caught:
        send(sms(server, client))
    assert caught.value.code == "provider_unavailable"


def test_a_malformed_2xx_is_a_protocol_error(standin, client):
    behave(standin, mode="malformed")
    with pytest.raises(PermanentProviderError) as caught:
        send(sms(standin, client))
    assert caught.value.code == "provider_protocol_error"


def test_a_retry_after_an_outage_sends_once(standin, client):
    behave(standin, mode="error_5xx", times=1)
    adapter = sms(standin, client)
    with pytest.raises(TransientProviderError):
        send(adapter)
    sent = send(adapter)
    assert send(adapter) == sent  # a further replay of the same reference changes nothing
    assert [r["responseStatus"] for r in recorded(standin)] == [503, 201, 200]
