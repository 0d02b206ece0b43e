"""The provider stand-ins over real HTTP: control API, behaviour modes and each wire protocol."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from emulators.standin_harness import AGENTS, DRAFTS_DIR
from emulators.standins import (
    BLACKLEAF_TEST_KEY,
    HARNESS_TEST_TOKEN,
    MAILJET_TEST_KEY,
    MAILJET_TEST_SECRET,
    NAMES,
    start_agents,
    start_standins,
)
from playbook_core.testing import RecordingServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from emulators.standins import StandIn

REPO_ROOT = Path(__file__).resolve().parents[2]
MJ_AUTH = (MAILJET_TEST_KEY, MAILJET_TEST_SECRET)
BL_HEADERS = {"Authorization": f"Bearer {BLACKLEAF_TEST_KEY}"}
HARNESS_HEADERS = {"Authorization": f"Bearer {HARNESS_TEST_TOKEN}"}
PROVIDERS = ("mailjet", "blackleaf", "agents", "slack")


@pytest.fixture
def standins() -> Iterator[dict[str, StandIn]]:
    handles = start_standins()
    try:
        yield handles
    finally:
        for handle in handles.values():
            handle.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as http:
        yield http


def eventually(check: Callable[[], bool], *, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("condition not met before the deadline")
        threading.Event().wait(0.02)


def email_message(**overrides: Any) -> dict[str, Any]:
    message = {
        "From": {"Email": "playbooks@bakedbot.ai", "Name": "BakedBot AI"},
        "To": [{"Email": "jane@store.com", "Name": "Jane"}],
        "Subject": "Thanks for your order",
        "TextPart": "Thank you!",
        "HTMLPart": "<p>Thank you!</p>",
        "CustomID": f"dlv_{uuid.uuid4().hex}",
        "EventPayload": json.dumps({"orgId": "org_1", "executionId": "ex_1"}),
    }
    message.update(overrides)
    return message


def provider_call(name: str, base: str) -> tuple[str, str, dict[str, Any]]:
    """A request each stand-in accepts with 2xx when the behaviour is `ok`."""
    if name == "mailjet":
        return (
            "POST",
            f"{base}/v3.1/send",
            {"auth": MJ_AUTH, "json": {"Messages": [email_message()]}},
        )
    if name == "blackleaf":
        body = {"to": "+15551234567", "body": "Hi", "clientReference": uuid.uuid4().hex}
        return "POST", f"{base}/v1/messages", {"headers": BL_HEADERS, "json": body}
    if name == "agents":
        body = {"agent": "craig", "task": "Write a note", "input": {}, "context": {"orgId": "o"}}
        return "POST", f"{base}/v1/run", {"headers": HARNESS_HEADERS, "json": body}
    return "POST", f"{base}/services/T0/B0/XYZ", {"json": {"text": "[Playbooks] hello"}}


def call(http: httpx.Client, name: str, handle: StandIn, **extra: Any) -> httpx.Response:
    method, url, kwargs = provider_call(name, handle.url)
    return http.request(method, url, **kwargs, **extra)


def set_behaviour(http: httpx.Client, handle: StandIn, **behaviour: Any) -> None:
    response = http.post(f"{handle.url}/__behaviour", json=behaviour)
    assert response.status_code == 200, response.text


def recorded(http: httpx.Client, handle: StandIn) -> list[dict[str, Any]]:
    response = http.get(f"{handle.url}/__requests")
    assert response.status_code == 200
    records: list[dict[str, Any]] = response.json()
    return records


# --- shared control API ----------------------------------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
def test_records_provider_requests_but_not_control_requests(standins, client, name):
    handle = standins[name]
    method, url, kwargs = provider_call(name, handle.url)

    response = client.request(method, url, **kwargs)
    records = recorded(client, handle)
    recorded(client, handle)  # a second listing must not record the first

    assert 200 <= response.status_code < 300
    assert len(records) == 1
    record = records[0]
    assert {"id", "receivedAt", "method", "path", "headers", "body"} <= set(record)
    assert record["method"] == method
    assert record["path"] == httpx.URL(url).path
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["receivedAt"])
    assert record["headers"]["content-type"] == "application/json"
    assert record["body"] == kwargs["json"]
    assert record["responseStatus"] == response.status_code


def test_non_json_body_is_recorded_as_text_and_clearing_empties_the_list(standins, client):
    slack = standins["slack"]
    client.post(f"{slack.url}/hook", content=b"payload=not-json")
    client.post(f"{slack.url}/hook", json={"text": "second"})

    first = recorded(client, slack)
    cleared = client.delete(f"{slack.url}/__requests")

    assert [record["body"] for record in first] == ["payload=not-json", {"text": "second"}]
    assert first[0]["id"] != first[1]["id"]
    assert cleared.json() == {"cleared": 2}
    assert recorded(client, slack) == []


@pytest.mark.parametrize("name", PROVIDERS)
def test_error_5xx_uses_default_503_or_the_given_status(standins, client, name):
    handle = standins[name]

    set_behaviour(client, handle, mode="error_5xx")
    default = call(client, name, handle)
    set_behaviour(client, handle, mode="error_5xx", status=502)
    chosen = call(client, name, handle)

    assert default.status_code == 503
    assert chosen.status_code == 502
    assert [r["behaviour"] for r in recorded(client, handle)] == ["error_5xx", "error_5xx"]


@pytest.mark.parametrize("name", PROVIDERS)
def test_error_4xx_defaults_to_400_and_429_carries_retry_after(standins, client, name):
    handle = standins[name]

    set_behaviour(client, handle, mode="error_4xx")
    default = call(client, name, handle)
    set_behaviour(client, handle, mode="error_4xx", status=429)
    limited = call(client, name, handle)

    assert default.status_code == 400
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"


@pytest.mark.parametrize("name", PROVIDERS)
def test_timeout_holds_the_request_past_the_client_timeout(standins, client, name):
    handle = standins[name]
    set_behaviour(client, handle, mode="timeout")

    with pytest.raises(httpx.ReadTimeout):
        call(client, name, handle, timeout=0.3)

    assert len(recorded(client, handle)) == 1


@pytest.mark.parametrize("name", PROVIDERS)
def test_malformed_answers_200_with_a_body_that_is_not_json(standins, client, name):
    handle = standins[name]
    set_behaviour(client, handle, mode="malformed")

    response = call(client, name, handle)

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert response.text != "ok"


def test_times_limits_the_mode_then_returns_to_ok(standins, client):
    mailjet = standins["mailjet"]
    set_behaviour(client, mailjet, mode="error_5xx", times=2)

    statuses = [call(client, "mailjet", mailjet).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]
    assert client.get(f"{mailjet.url}/__behaviour").json()["mode"] == "ok"


def test_delay_ms_slows_the_answer_without_changing_it(standins, client):
    blackleaf = standins["blackleaf"]
    set_behaviour(client, blackleaf, mode="ok", delayMs=300, times=1)

    started = time.monotonic()
    slow = call(client, "blackleaf", blackleaf)
    slow_elapsed = time.monotonic() - started

    assert slow.status_code == 201
    assert slow_elapsed >= 0.3


def test_delete_behaviour_returns_to_ok(standins, client):
    agents = standins["agents"]
    set_behaviour(client, agents, mode="error_4xx", status=403)
    assert call(client, "agents", agents).status_code == 403

    reset = client.delete(f"{agents.url}/__behaviour")

    assert reset.json() == {"mode": "ok", "status": None, "times": None, "delayMs": 0}
    assert call(client, "agents", agents).status_code == 200


@pytest.mark.parametrize(
    "behaviour",
    [
        {"mode": "explode"},
        {"mode": "error_5xx", "status": 404},
        {"mode": "error_4xx", "status": 500},
        {"mode": "malformed", "status": 500},
        {"mode": "ok", "times": 0},
        {"mode": "ok", "delayMs": -1},
        {"mode": "ok", "colour": "red"},
        ["not", "an", "object"],
    ],
)
def test_invalid_behaviour_is_refused_and_changes_nothing(standins, client, behaviour):
    slack = standins["slack"]

    response = client.post(f"{slack.url}/__behaviour", json=behaviour)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_behaviour"
    assert client.get(f"{slack.url}/__behaviour").json()["mode"] == "ok"


def test_stop_releases_a_held_request_promptly_and_closes_the_port(client):
    agents = start_agents(timeout_sleep_s=30)
    outcome: list[object] = []

    def hold() -> None:
        try:
            outcome.append(call(client, "agents", agents, timeout=10).status_code)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=hold)
    try:
        set_behaviour(client, agents, mode="timeout")
        worker.start()
        eventually(lambda: len(recorded(client, agents)) == 1)
    finally:
        started = time.monotonic()
        agents.stop()
        stop_elapsed = time.monotonic() - started
    worker.join(timeout=5)
    agents.stop()  # a second stop is harmless

    assert stop_elapsed < 2
    assert not worker.is_alive()
    assert len(outcome) == 1
    assert outcome[0] == 504 or isinstance(outcome[0], httpx.HTTPError)
    with pytest.raises(httpx.ConnectError):
        client.get(f"{agents.url}/__requests")


# --- Mailjet ------------------------------------------------------------------------------------


def send(client, mailjet, *messages, auth=MJ_AUTH) -> httpx.Response:
    return client.post(f"{mailjet.url}/v3.1/send", auth=auth, json={"Messages": list(messages)})


@pytest.mark.parametrize("auth", [("mj-test-key", "wrong"), None])
def test_mailjet_rejects_bad_credentials_with_mj_0015(standins, client, auth):
    response = send(client, standins["mailjet"], email_message(), auth=auth)

    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"ErrorIdentifier", "ErrorCode", "ErrorMessage", "StatusCode"}
    assert body["ErrorCode"] == "mj-0015"
    assert body["StatusCode"] == 401


@pytest.mark.parametrize(
    ("overrides", "code", "related"),
    [
        ({"Subject": None}, "mj-0003", ["Subject"]),
        ({"To": []}, "mj-0003", ["To"]),
        ({"From": None}, "mj-0003", ["From"]),
        ({"TextPart": None, "HTMLPart": None}, "mj-0003", ["TextPart", "HTMLPart", "TemplateID"]),
        ({"To": [{"Email": "jane.store.com"}]}, "mj-0013", ["To[0].Email"]),
        ({"Subject": "x" * 256}, "mj-0005", ["Subject"]),
        ({"TemplateID": "welcome"}, "mj-0004", ["TemplateID"]),
        ({"Headers": ["List-Unsubscribe"]}, "mj-0004", ["Headers"]),
        ({"Headers": {"List-Unsubscribe": 1}}, "mj-0004", ["Headers.List-Unsubscribe"]),
        ({"Headers": {"From": "x@y.z"}}, "mj-0019", ["Headers.From"]),
    ],
)
def test_mailjet_validation_errors_use_the_v31_shape(standins, client, overrides, code, related):
    message = {k: v for k, v in email_message(**overrides).items() if v is not None}

    response = send(client, standins["mailjet"], message)

    assert response.status_code == 400
    (result,) = response.json()["Messages"]
    assert result["Status"] == "error"
    (error,) = result["Errors"]
    assert set(error) == {
        "ErrorIdentifier",
        "ErrorCode",
        "StatusCode",
        "ErrorMessage",
        "ErrorRelatedTo",
    }
    assert (error["ErrorCode"], error["StatusCode"], error["ErrorRelatedTo"]) == (
        code,
        400,
        related,
    )


def test_mailjet_malformed_json_is_a_global_mj_0002(standins, client):
    mailjet = standins["mailjet"]

    response = client.post(
        f"{mailjet.url}/v3.1/send",
        auth=MJ_AUTH,
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["ErrorCode"] == "mj-0002"


def test_mailjet_success_shape_and_template_send_without_subject(standins, client):
    mailjet = standins["mailjet"]
    plain = email_message()
    template = email_message(TemplateID=4242, TemplateLanguage=True, Variables={"name": "Jane"})
    for key in ("Subject", "TextPart", "HTMLPart"):
        del template[key]

    response = send(client, mailjet, plain, template)

    assert response.status_code == 200
    first, second = response.json()["Messages"]
    assert set(first) == {"Status", "CustomID", "To", "Cc", "Bcc"}
    assert (first["Status"], first["CustomID"], first["Cc"], first["Bcc"]) == (
        "success",
        plain["CustomID"],
        [],
        [],
    )
    (recipient,) = first["To"]
    assert set(recipient) == {"Email", "MessageUUID", "MessageID", "MessageHref"}
    assert recipient["Email"] == "jane@store.com"
    assert str(uuid.UUID(recipient["MessageUUID"])) == recipient["MessageUUID"]
    assert isinstance(recipient["MessageID"], int)
    assert recipient["MessageHref"].endswith(f"/v3/REST/message/{recipient['MessageID']}")
    assert second["Status"] == "success"
    assert second["To"][0]["MessageID"] != recipient["MessageID"]


def test_mailjet_lookup_by_custom_id_finds_every_send_and_needs_auth(standins, client):
    mailjet = standins["mailjet"]
    message = email_message()
    ids = [send(client, mailjet, message).json()["Messages"][0]["To"][0] for _ in range(2)]
    lookup = f"{mailjet.url}/v3/REST/message"

    found = client.get(lookup, params={"CustomID": message["CustomID"]}, auth=MJ_AUTH).json()
    missing = client.get(lookup, params={"CustomID": "dlv_unknown"}, auth=MJ_AUTH).json()
    by_href = client.get(ids[0]["MessageHref"], auth=MJ_AUTH).json()
    anonymous = client.get(lookup, params={"CustomID": message["CustomID"]})

    # Mailjet does not dedupe on CustomID, so both sends are there (§11.1).
    assert (found["Count"], found["Total"]) == (2, 2)
    assert [item["ID"] for item in found["Data"]] == [item["MessageID"] for item in ids]
    assert found["Data"][0]["UUID"] == ids[0]["MessageUUID"]
    assert missing == {"Count": 0, "Data": [], "Total": 0}
    assert by_href["Data"][0]["ID"] == ids[0]["MessageID"]
    assert anonymous.status_code == 401


# --- Blackleaf ----------------------------------------------------------------------------------


INBOUND = {"from": "+15557654321", "to": "+15551234567", "body": "STOP"}


def sms(client, blackleaf, headers=BL_HEADERS, **body) -> httpx.Response:
    payload = {"to": "+15551234567", "body": "Hi there", "clientReference": "dlv_1", **body}
    return client.post(f"{blackleaf.url}/v1/messages", headers=headers, json=payload)


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer wrong"}, {}])
def test_blackleaf_rejects_a_bad_key(standins, client, headers):
    response = sms(client, standins["blackleaf"], headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("to", ["5551234567", "+0155512345", "+1555", "+1 555 123 4567", None])
def test_blackleaf_rejects_numbers_that_are_not_e164(standins, client, to):
    response = sms(client, standins["blackleaf"], to=to)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_number"


def test_blackleaf_dedupes_on_client_reference(standins, client):
    blackleaf = standins["blackleaf"]

    first = sms(client, blackleaf, clientReference="dlv_same")
    replay = sms(client, blackleaf, clientReference="dlv_same")
    other = sms(client, blackleaf, clientReference="dlv_other")

    assert (first.status_code, replay.status_code, other.status_code) == (201, 200, 201)
    assert first.json() == replay.json() == {"id": first.json()["id"], "status": "queued"}
    assert other.json()["id"] != first.json()["id"]
    assert [r["duplicate"] for r in recorded(client, blackleaf)] == [False, True, False]
    sent = client.get(f"{blackleaf.url}/__messages").json()
    assert [m["clientReference"] for m in sent] == ["dlv_same", "dlv_other"]


def test_blackleaf_posts_an_inbound_text_signed_to_the_configured_webhook(standins, client):
    # consent.md §3: the stand-in plays the network; our webhook is a recording server here.
    blackleaf = standins["blackleaf"]
    target = RecordingServer(status=200).start()
    try:
        assert client.post(f"{blackleaf.url}/__inbound", json=INBOUND).status_code == 409
        webhook = {"url": f"{target.url}/hook?orgId=org_1", "secret": "s3cret"}
        configured = client.put(f"{blackleaf.url}/__inbound/webhook", json=webhook)
        assert configured.json() == {"url": webhook["url"], "configured": True}
        sent = client.post(f"{blackleaf.url}/__inbound", json={**INBOUND, "id": "in_1"})
        assert sent.status_code == 200
        assert sent.json()["status"] == 200
        (delivered,) = target.requests
        assert delivered.path == "/hook?orgId=org_1"
        message = json.loads(delivered.body)
        assert set(message) == {"id", "from", "to", "body", "receivedAt"}
        assert (message["id"], message["from"], message["body"]) == ("in_1", "+15557654321", "STOP")
        expected = hmac.new(b"s3cret", delivered.body, hashlib.sha256).hexdigest()
        assert delivered.header("X-Blackleaf-Signature") == expected
        assert client.get(f"{blackleaf.url}/__inbound").json()[0]["message"] == message
        assert recorded(client, blackleaf) == []  # control traffic is not a provider request
    finally:
        target.stop()


@pytest.mark.parametrize(
    ("path", "body"),
    [("/__inbound/webhook", {"url": "ftp://x", "secret": "s"}),
     ("/__inbound/webhook", {"url": "http://127.0.0.1:9/x"}),
     ("/__inbound", {**INBOUND, "from": "555"}),
     ("/__inbound", {**INBOUND, "body": "x" * 1601}),
     ("/__inbound", {**INBOUND, "extra": 1}),
     ("/__inbound", {"from": "+15557654321"})],
)  # fmt: skip
def test_blackleaf_refuses_bad_inbound_control_calls(standins, client, path, body):
    blackleaf = standins["blackleaf"]
    client.put(
        f"{blackleaf.url}/__inbound/webhook", json={"url": "http://127.0.0.1:9/x", "secret": "s"}
    )
    method = client.put if path.endswith("webhook") else client.post
    assert method(f"{blackleaf.url}{path}", json=body).status_code == 400


# --- agent harness ------------------------------------------------------------------------------


def run(client, agents, agent="craig", task="Write a note", **task_input) -> httpx.Response:
    body = {"agent": agent, "task": task, "input": task_input, "context": {"orgId": "org_1"}}
    return client.post(f"{agents.url}/v1/run", headers=HARNESS_HEADERS, json=body)


def test_harness_default_answer_and_auth(standins, client):
    agents = standins["agents"]

    answer = run(client, agents)
    refused = client.post(
        f"{agents.url}/v1/run",
        headers={"Authorization": "Bearer nope"},
        json={"agent": "craig", "task": "x"},
    )
    unknown = run(client, agents, agent="system")

    assert answer.status_code == 200
    assert answer.json() == {
        "output": {
            "title": "Test title",
            "body": "Test body",
            "summary": "Test summary",
            "sms": "Test sms",
        },
        "score": 100,
        "issues": [],
        "remediation": None,
    }
    assert refused.status_code == 401
    assert unknown.status_code == 400


def test_harness_scripted_answers_are_fifo_per_agent_then_any_agent(standins, client):
    agents = standins["agents"]
    url = f"{agents.url}/__responses"
    first = {"agent": "craig", "output": {"n": 1}, "score": 90, "issues": [], "remediation": None}
    second = {"agent": "craig", "output": {"n": 2}, "score": 40, "issues": ["too long"]}
    anyone = {"output": {"n": 3}, "score": 70, "issues": [], "remediation": "shorter"}
    client.post(url, json=[first, second])
    client.post(url, json=anyone)

    smokey = run(client, agents, agent="smokey").json()
    craig = [run(client, agents, agent="craig").json() for _ in range(3)]

    assert smokey["output"] == {"n": 3}
    assert [answer["output"] for answer in craig[:2]] == [{"n": 1}, {"n": 2}]
    # Stored as given, so a test can script a protocol error such as a missing remediation.
    assert craig[1] == {"output": {"n": 2}, "score": 40, "issues": ["too long"]}
    assert craig[2]["output"]["title"] == "Test title"
    assert [r["scripted"] for r in recorded(client, agents)] == [True, True, True, False]


def test_harness_responses_can_be_listed_and_cleared(standins, client):
    agents = standins["agents"]
    url = f"{agents.url}/__responses"
    client.post(url, json={"agent": "leo", "output": {}, "score": 1, "issues": []})

    listed = client.get(url).json()
    client.delete(url)

    assert list(listed["queued"]) == ["leo"]
    assert run(client, agents, agent="leo").json()["score"] == 100


@pytest.mark.parametrize(
    ("goal", "event_names", "agent"),
    [
        ("Create a playbook for low stock alerts to my staff", ["inventory.low_stock"], "smokey"),
        ("Send a welcome email when someone signs up", ["customer.signup"], "craig"),
        ("A sign-up follow-up", ["customer.signup"], "craig"),
        ("Win-back campaign for lapsed buyers", ["customer.30_day_inactive"], "craig"),
        ("winback", ["customer.30_day_inactive"], "craig"),
        ("Ping customers who went inactive", ["customer.30_day_inactive"], "craig"),
        ("A weekly report for the owner", [], "pops"),
        ("Email me our KPIs", [], "pops"),
        ("Alert me on competitor price drops", ["competitor.price_change"], "ezal"),
        ("Something entirely different", [], "leo"),
    ],
)
def test_compose_playbook_picks_a_draft_by_goal_keywords(
    standins, client, goal, event_names, agent
):
    response = run(client, standins["agents"], agent="leo", task="compose_playbook", goal=goal)

    draft = yaml.safe_load(response.json()["output"]["yaml"])
    events = [t["eventName"] for t in draft["triggers"] if t["type"] == "event"]
    assert events == event_names
    assert draft["agent"] == agent


def test_low_stock_draft_delegates_to_smokey_and_notifies_staff(standins, client):
    goal = "Create a playbook for low stock alerts to my staff"

    output = run(client, standins["agents"], task="compose_playbook", goal=goal).json()["output"]

    draft = yaml.safe_load(output["yaml"])
    delegates = [s["params"]["agent"] for s in draft["steps"] if s["action"] == "delegate"]
    notified = [s["params"]["to"] for s in draft["steps"] if s["action"] == "notify"]
    assert delegates == ["smokey"]
    assert "role:all" in notified
    assert not output["yaml"].startswith("#")


# Roots and shapes from domain.md §3; the real validator is checked elsewhere once it exists.
TOP_KEYS = [
    "name",
    "description",
    "agent",
    "category",
    "tags",
    "triggers",
    "steps",
    "retryOnFailure",
    "maxRetries",
    "validationThreshold",
]
ROOTS = {"event", "customer", "org", "user", "current_user", "steps", "execution", "playbook"}
EVENTS = {"inventory.low_stock", "customer.signup", "customer.30_day_inactive"}
EVENTS |= {"competitor.price_change", "order.completed"}
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}")


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@pytest.mark.parametrize("path", sorted(DRAFTS_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_draft_follows_the_definition_format(path):
    draft = yaml.safe_load(path.read_text(encoding="utf-8"))

    assert list(draft) == TOP_KEYS
    assert draft["agent"] in AGENTS
    assert draft["category"] in {"intel", "marketing", "ops", "reporting", "compliance", "custom"}
    assert draft["triggers"]
    assert draft["steps"]
    for trigger in draft["triggers"]:
        assert trigger["type"] in {"manual", "schedule", "event", "calendar"}
        assert trigger["type"] != "event" or trigger["eventName"] in EVENTS
    earlier: set[str] = set()
    for step in draft["steps"]:
        assert step["action"] in {"delegate", "send_email", "send_sms", "notify", "wait", "emit"}
        assert step["action"] != "delegate" or step["params"]["agent"] in AGENTS
        for text in strings(step):
            assert "{%" not in text
            for placeholder in re.findall(r"\{\{.*?\}\}", text):
                match = PLACEHOLDER.fullmatch(placeholder)
                assert match, placeholder
                root, *rest = match.group(1).split(".")
                assert root in ROOTS
                assert root != "steps" or rest[0] in earlier
        earlier.add(step["id"])


# --- Slack --------------------------------------------------------------------------------------


def test_slack_answers_ok_and_refuses_a_payload_without_text(standins, client):
    slack = standins["slack"]

    ok = client.post(f"{slack.url}/services/T0/B0/XYZ", json={"text": "[Playbooks] hi"})
    no_text = client.post(f"{slack.url}/services/T0/B0/XYZ", json={"blocks": []})
    not_json = client.post(f"{slack.url}/services/T0/B0/XYZ", content=b"text=hi")

    assert (ok.status_code, ok.text) == (200, "ok")
    assert (no_text.status_code, no_text.text) == (400, "invalid_payload")
    assert (not_json.status_code, not_json.text) == (400, "invalid_payload")


# --- python -m emulators.standins ---------------------------------------------------------------


def test_module_main_prints_urls_and_stops_on_sigterm(client):
    process = subprocess.Popen(  # our own module, run by the test interpreter
        [sys.executable, "-m", "emulators.standins"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(process, within=10)
        urls = json.loads(line)
        answers = {name: client.get(f"{url}/__requests").status_code for name, url in urls.items()}
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()

    assert set(urls) == set(NAMES)
    assert answers == dict.fromkeys(NAMES, 200)
    assert code == 0


def read_line(process: subprocess.Popen[str], *, within: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=within):
            pytest.fail("the stand-ins did not print their URLs in time")
    return process.stdout.readline()
