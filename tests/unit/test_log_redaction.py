"""No credential reaches a log line: the redaction step, the formatter, configure() and adapters."""

import io
import json
import logging
import string
import sys

import httpx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from playbook_core import logging as json_logging
from playbook_core.adapters.blackleaf import BlackleafSms
from playbook_core.adapters.firebase_auth import local_claims, unsigned_token
from playbook_core.adapters.mailjet import MailjetMailer
from playbook_core.domain.errors import TransientProviderError
from playbook_core.ports import EmailMessage

SLACK = "https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXX"

# Secrets start with "zq" and nothing around them holds a z or a q, so a found "zq…" is a leak.
SECRET = st.text(string.ascii_letters + string.digits + "-_.~", min_size=6, max_size=40).map(
    lambda tail: f"zq{tail}"
)
HOST = st.from_regex(r"[a-p][a-p0-9-]{0,10}(\.[a-p]{2,6}){0,2}(:[0-9]{1,5})?", fullmatch=True)
AROUND = st.text(
    string.ascii_lowercase.replace("q", "").replace("z", "") + " .,;:()[]\"'", max_size=30
)
PLACES = {
    "path": "{scheme}://{host}/services/T1/B2/{secret}",
    "query": "{scheme}://{host}/hook?x=1&sig={secret}",
    "bare query": "{scheme}://{host}?{secret}",
    "userinfo": "{scheme}://ops:{secret}@{host}/",
    "user only": "{scheme}://{secret}@{host}",
    "fragment": "{scheme}://{host}/cb#{secret}",
}


def redact(text):
    return json_logging.redact(text)


@st.composite
def urls_with_a_credential(draw):
    """(text around a URL, the URL's host, the credential somewhere in it)."""
    scheme = draw(st.sampled_from(["http", "https", "wss", "postgres"]))
    host, secret = draw(HOST), draw(SECRET)
    url = PLACES[draw(st.sampled_from(sorted(PLACES)))].format(
        scheme=scheme, host=host, secret=secret
    )
    return f"{draw(AROUND)}{url}{draw(AROUND)}", host, secret


@given(urls_with_a_credential())
def test_a_url_keeps_only_scheme_and_host_wherever_its_credential_sits(case):
    text, host, secret = case
    out = redact(text)
    assert secret not in out
    assert f"://{host}" in out


@given(st.text(max_size=200))
def test_redaction_is_idempotent(text):
    once = redact(text)
    assert redact(once) == once


@given(st.text(string.ascii_lowercase + string.digits + " _-.:,()#|", max_size=120))
def test_text_without_urls_or_credentials_is_left_alone(text):
    # Ids, statuses and codes: what operators search logs by.
    assume("bearer" not in text and "xox" not in text)
    assert redact(text) == text


@pytest.mark.parametrize(
    "line",
    [
        "executionId ex_5f3a stepIndex 1 status retrying errorCode mailjet_outage http 503",
        "webhook accepted shp_46d95edf3e7e0a46013744c1efcb08c6 orders/create",
        "task dropped: Slack refused the message (404): channel_not_found",
        "/playbooks_api/v1/orgs/org_demo/approvals/ev_d2cd8ab5:approve",
    ],
)
def test_operator_lines_are_unchanged(line):
    assert redact(line) == line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f'HTTP Request: POST {SLACK} "HTTP/1.1 200 OK"',
            'HTTP Request: POST https://hooks.slack.com/… "HTTP/1.1 200 OK"',
        ),
        ("push to http://127.0.0.1:8080/x failed.", "push to http://127.0.0.1:8080/… failed."),
        ("see (https://u:pw@h.example:8443/a?b=c)", "see (https://h.example:8443/…)"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [redacted]"),
        ("Authorization: Basic bWo6c2VjcmV0", "Authorization: Basic [redacted]"),
        (
            "a=1&client_secret=s3&api_key=k&access_token=t",
            "a=1&client_secret=[redacted]&api_key=[redacted]&access_token=[redacted]",
        ),
        ("posted to services/T1/B2/abcDEF123 (no host)", "posted to services/[redacted] (no host)"),
        ("encoded services%2FT1%2FB2%2Fabc", "encoded services%2F[redacted]"),
        ("bot xoxb-1234-5678-abcdef said", "bot [redacted] said"),
    ],
)
def test_credential_shapes_are_masked(text, expected):
    assert redact(text) == expected


def test_a_jwt_is_masked_even_unsigned():
    token = unsigned_token(local_claims("demo", "uid-1", "dispensary_admin", ["org_a"]))
    assert token.endswith(".")  # alg none: an empty signature
    assert redact(f"token {token} refused") == "token [redacted] refused"


def test_field_values_are_redacted_all_the_way_down():
    class Unprintable:
        def __str__(self):
            return f"client for {SLACK}"

    fields = {
        "executionId": "ex_1", "status": 503, "retried": True, "ratio": 0.5, "missing": None,
        "X-Cron-Secret": "cron-value", "authorization": "Bearer abc", "apiKey": "k-1",
        "cloudTasks": {"X-CloudTasks-TaskName": "t1", "url": SLACK},
        "urls": [SLACK, "plain"], "client": Unprintable(),
    }  # fmt: skip
    assert json_logging.redact_value(fields) == {
        "executionId": "ex_1", "status": 503, "retried": True, "ratio": 0.5, "missing": None,
        "X-Cron-Secret": "[redacted]", "authorization": "[redacted]", "apiKey": "[redacted]",
        "cloudTasks": {"X-CloudTasks-TaskName": "t1", "url": "https://hooks.slack.com/…"},
        "urls": ["https://hooks.slack.com/…", "plain"],
        "client": "client for https://hooks.slack.com/…",
    }  # fmt: skip


def _record(message, *args, fields=None, exc_info=None):
    record = logging.LogRecord(
        "playbooks.test", logging.ERROR, __file__, 1, message, args, exc_info
    )
    if fields is not None:
        record.fields = fields
    return record


def test_the_formatter_redacts_message_fields_and_bound_ids_but_keeps_ids():
    record = _record("alert to %s failed", SLACK, fields={"orgId": "org_a", "hook": SLACK})
    with json_logging.bound(executionId="ex_1", source=SLACK):
        line = json_logging.JsonFormatter().format(record)
    assert "secret" not in line
    entry = json.loads(line)
    assert entry["message"] == "alert to https://hooks.slack.com/… failed"
    assert (entry["orgId"], entry["executionId"]) == ("org_a", "ex_1")
    assert entry["hook"] == entry["source"] == "https://hooks.slack.com/…"


def test_an_exception_is_logged_by_class_only():
    # httpx puts the request URL in its messages; the traceback would print it again.
    try:
        _unreachable(httpx.Request("POST", SLACK))
    except httpx.ConnectError:
        record = _record("delivery failed", exc_info=sys.exc_info())
    line = json_logging.JsonFormatter().format(record)
    assert json.loads(line)["exception"] == "ConnectError"
    assert "services" not in line


@pytest.fixture
def configured(monkeypatch):
    """configure() onto a fresh stdout buffer; every logger it touches restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    root.handlers = [
        h for h in root.handlers if not isinstance(h.formatter, json_logging.JsonFormatter)
    ]
    json_logging.configure()
    yield out
    root.handlers, root.level = saved[0], saved[1]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_configure_keeps_http_client_request_lines_out_of_the_log(configured):
    answer = httpx.Response(200, text="ok")
    with httpx.Client(transport=httpx.MockTransport(lambda _: answer)) as client:
        client.post(SLACK, json={"text": "hi"})
    logging.getLogger("playbooks.test").info("posted", extra={"fields": {"to": SLACK}})
    lines = configured.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["posted"]
    assert "secret" not in configured.getvalue()


def test_configure_still_passes_http_client_warnings(configured):
    logging.getLogger("httpx").warning("retrying %s", SLACK)
    [entry] = [json.loads(line) for line in configured.getvalue().splitlines()]
    assert entry["message"] == "retrying https://hooks.slack.com/…"


def _unreachable(request):
    raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)


def test_mailjet_unreachable_detail_names_the_error_class_not_the_url():
    client = httpx.Client(transport=httpx.MockTransport(_unreachable))
    mailer = MailjetMailer(
        "https://user:pw@api.mailjet.example", "k", "s", "f@example.com", "F", client=client
    )
    message = EmailMessage(
        to="a@example.com", subject="s", text="t", html=None, custom_id="d1", event_payload="{}"
    )
    with pytest.raises(TransientProviderError) as raised:
        mailer.send(message)
    assert raised.value.detail == "Mailjet is unreachable (ConnectError)"


def test_blackleaf_unreachable_detail_names_the_error_class_not_the_url():
    client = httpx.Client(transport=httpx.MockTransport(_unreachable))
    sms = BlackleafSms("https://user:pw@api.blackleaf.example", "key", client=client)
    with pytest.raises(TransientProviderError) as raised:
        sms.send_sms(to="+14155550100", body="hi", client_reference="r1", org_id="org_a")
    assert raised.value.detail == "Blackleaf is unreachable (ConnectError)"
