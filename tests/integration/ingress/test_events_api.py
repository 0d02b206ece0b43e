"""`POST …/events` (ingest) and `GET …/events` (the event log) through the deployed entry point."""

import json
import logging
from datetime import UTC, datetime

import pytest

from playbook_core.adapters.ids import RandomIds
from playbook_core.domain.collections import (
    EXECUTIONS,
    ORGANIZATIONS,
    SETTINGS,
    WEBHOOK_RECEIPTS,
)
from playbook_core.domain.envelope import EventEnvelope
from playbook_core.domain.ids import h
from playbook_core.domain.loading import load_data
from playbook_core.logging import JsonFormatter
from playbook_core.ports import QueueConfig, Where
from playbook_core.runtime.cloudevents import PubsubMessage
from playbook_core.service.authoring import playbooks
from playbook_core.service.authoring.playbooks import Authoring
from playbook_core.service.dispatch.dispatcher import dispatch_message
from playbook_core.service.execution.run_start import Runs, StepTarget
from playbook_core.testing import RecordingServer
from tests.integration.ingress.conftest import register_org

SYSTEM = {"X-Cron-Secret": "test-cron-secret"}  # the api fixture configures this value
EVENTS = "/v1/orgs/org_a/events"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def body(event_id="client-1", name="customer.signup", **extra):
    return {"eventId": event_id, "name": name, "data": {"plan": "empire"}, **extra}


def published(api):
    return [(topic, m) for topic, m in api.app.bus.published]


def envelope_of(message):
    return EventEnvelope.decode(message.data)


# --- ingest --------------------------------------------------------------------------------------


def test_system_ingest_publishes_a_normalised_envelope_under_the_derived_id(api):
    response = api.client.post(
        EVENTS,
        json=body(
            "client-1", "customer.created", occurredAt="2026-11-24T06:00:00-05:00", dedupeKey="u-7",
            customer={"email": "  New@Example.COM ", "phone": "(415) 555-0100", "firstName": "New",
                      "consent": {"email": True}},
        ),
        headers=SYSTEM,
    )  # fmt: skip

    assert response.status_code == 202
    assert response.get_json() == {"eventId": "api_" + h("org_a", "client-1"), "duplicate": False}
    ((topic, message),) = published(api)
    assert topic == "playbook-events"
    assert message.attributes == {
        "orgId": "org_a", "name": "customer.signup", "eventId": "api_" + h("org_a", "client-1"),
    }  # fmt: skip
    envelope = envelope_of(message)
    assert envelope.name == "customer.signup"
    assert envelope.original_name == "customer.created"
    assert envelope.org_id == "org_a"
    assert envelope.occurred_at == datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    assert envelope.received_at == NOW
    assert (envelope.source.kind, envelope.source.ref) == ("api", "system")
    assert envelope.customer.email == "new@example.com"
    assert envelope.customer.phone == "+14155550100"
    assert envelope.customer.consent.email is True
    assert envelope.dedupe_key == "u-7"
    assert envelope.data == {"plan": "empire"}
    receipt = api.app.store.get(WEBHOOK_RECEIPTS, "api_" + h("org_a", "client-1"))
    assert (receipt["orgId"], receipt["platform"], receipt["status"]) == (
        "org_a",
        "api",
        "published",
    )


def test_a_repeated_event_id_answers_duplicate_and_publishes_nothing(api):
    first = api.client.post(EVENTS, json=body(), headers=SYSTEM)
    again = api.client.post(EVENTS, json=body(data={"other": 1}), headers=SYSTEM)

    assert first.status_code == again.status_code == 202
    assert again.get_json() == {"eventId": first.get_json()["eventId"], "duplicate": True}
    assert len(published(api)) == 1


def test_the_same_client_id_in_another_org_is_another_event(api):
    a = api.client.post(EVENTS, json=body(), headers=SYSTEM).get_json()
    b = api.client.post("/v1/orgs/org_b/events", json=body(), headers=SYSTEM).get_json()

    assert a["eventId"] != b["eventId"]
    assert b["duplicate"] is False


def test_a_receipt_left_unpublished_by_a_crash_is_published_again(api):
    event_id = "api_" + h("org_a", "client-1")
    api.app.store.create(WEBHOOK_RECEIPTS, event_id, {"orgId": "org_a", "status": "received"})

    response = api.client.post(EVENTS, json=body(), headers=SYSTEM)

    assert response.status_code == 202
    assert response.get_json() == {"eventId": event_id, "duplicate": False}
    assert len(published(api)) == 1
    assert api.app.store.get(WEBHOOK_RECEIPTS, event_id)["status"] == "published"


def test_a_super_user_may_ingest_for_any_org(api):
    response = api.as_("super_user", orgs=()).post(EVENTS, json=body())

    assert response.status_code == 202
    assert envelope_of(published(api)[0][1]).source.ref == "uid_super_user"


@pytest.mark.parametrize("role", ["brand_admin", "brand", "brand_member", "dispensary_admin"])
def test_org_members_may_not_ingest(api, role):
    response = api.as_(role).post(EVENTS, json=body())

    assert response.status_code == 403
    assert published(api) == []


def test_ingest_needs_credentials(api):
    assert api.client.post(EVENTS, json=body()).status_code == 401
    assert (
        api.client.post(EVENTS, json=body(), headers={"X-Cron-Secret": "nope"}).status_code == 401
    )
    assert published(api) == []


def test_a_body_org_id_must_equal_the_path_org_id(api):
    refused = api.client.post(EVENTS, json=body(orgId="org_b"), headers=SYSTEM)
    accepted = api.client.post(EVENTS, json=body("client-2", orgId="org_a"), headers=SYSTEM)

    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert accepted.status_code == 202
    assert len(published(api)) == 1


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"name": "customer.signup", "data": {}}, "eventId"),
        ({"eventId": "x", "data": {}}, "name"),
        ({"eventId": "x", "name": "customer.signup"}, "data"),
        (body(name="order.exploded"), "unknown event"),
        (body(data=[1, 2]), "data"),
        (body(occurredAt="2026-11-24T06:00:00"), "occurredAt"),
        (body(occurredAt="yesterday"), "occurredAt"),
        (body(occurredAt=1764000000), "occurredAt"),
        (body(customer={"consent": {"sms": "yes"}}), "customer.consent.sms"),
        (body(eventId=7), "eventId"),
        (body(causation={"chain": [], "depth": 0}), "causation"),
        (body(customer={"email": "a@b.com", "vip": True}), "customer.vip"),
        (body(dedupeKey="k" * 201), "dedupeKey"),
        ([body()], "JSON object"),
    ],
)
def test_invalid_bodies_are_400_and_publish_nothing(api, payload, fragment):
    response = api.client.post(EVENTS, json=payload, headers=SYSTEM)

    assert response.status_code == 400
    assert fragment in response.get_json()["detail"]
    assert published(api) == []


def test_an_unknown_name_has_its_own_problem_type(api):
    response = api.client.post(EVENTS, json=body(name="order.exploded"), headers=SYSTEM)

    assert response.get_json()["type"].endswith("/unknown-event")


def test_data_over_64_kib_is_413_and_a_non_json_body_is_415(api):
    large = api.client.post(EVENTS, json=body(data={"blob": "x" * 70_000}), headers=SYSTEM)
    text = api.client.post(
        EVENTS, data="eventId=1", headers={**SYSTEM, "Content-Type": "text/plain"}
    )

    assert large.status_code == 413
    assert text.status_code == 415
    assert published(api) == []


def test_an_invalid_contact_is_dropped_not_refused(api):
    payload = body(customer={"email": "not-an-address", "phone": "12"})

    response = api.client.post(EVENTS, json=payload, headers=SYSTEM)

    assert response.status_code == 202
    assert envelope_of(published(api)[0][1]).customer is None


def uk_org(api):
    api.app.store.set(ORGANIZATIONS, "org_a", {"name": "A Leeds dispensary"})
    api.app.store.set(SETTINGS, "org_a", {"orgId": "org_a", "defaultCountry": "GB"})


def test_a_uk_orgs_national_phone_is_read_as_british(api, dispatching):
    uk_org(api)

    event_id = dispatching(body(customer={"email": "ann@example.co.uk", "phone": "07400 123456"}))

    assert envelope_of(published(api)[0][1]).customer.phone == "+447400123456"
    [execution] = api.app.store.query(EXECUTIONS, [Where("orgId", "==", "org_a")]).docs
    assert execution.data["customer"]["phone"] == "+447400123456"  # what the run will text
    assert execution.data["event"]["eventId"] == event_id


def test_a_us_orgs_ten_digits_still_take_plus_one(api):
    api.client.post(EVENTS, json=body(customer={"phone": "(613) 612-0707"}), headers=SYSTEM)

    assert envelope_of(published(api)[0][1]).customer.phone == "+16136120707"


@pytest.mark.parametrize(
    ("settings", "phone"),
    [
        ({"defaultCountry": "GB"}, "07700 900123"),  # Ofcom's drama range: no real number
        ({"defaultCountry": "GB"}, "(613) 612-0707"),  # not British, and never given a guessed +44
        ({}, "07400 123456"),  # a British number in a US org has no country to be read in
        ({"defaultCountry": "GB"}, "07400 12345x"),
    ],
)
def test_an_invalid_phone_is_dropped_and_the_log_says_why_without_the_number(
    api, caplog, settings, phone
):
    api.app.store.set(SETTINGS, "org_a", {"orgId": "org_a", **settings})
    caplog.set_level(logging.INFO, logger="playbooks.ingest")

    response = api.client.post(
        EVENTS, json=body(customer={"email": "ann@example.co.uk", "phone": phone}), headers=SYSTEM
    )

    assert response.status_code == 202
    customer = envelope_of(published(api)[0][1]).customer
    assert (customer.email, customer.phone) == ("ann@example.co.uk", None)  # the rest stays
    [dropped] = [r for r in caplog.records if r.getMessage() == "ingest phone dropped"]
    assert dropped.fields == {
        "orgId": "org_a", "eventId": response.get_json()["eventId"], "field": "customer.phone",
        "reason": "invalid_phone",
    }  # fmt: skip
    logs = "\n".join(JsonFormatter().format(r) for r in caplog.records) + caplog.text
    subscriber_digits = "".join(c for c in phone if c.isdigit())[-7:]
    assert phone not in logs
    assert subscriber_digits not in logs  # nor in E.164 or any other rendering


def test_a_valid_or_absent_phone_logs_no_drop(api, caplog):
    uk_org(api)
    caplog.set_level(logging.INFO, logger="playbooks.ingest")

    api.client.post(EVENTS, json=body("c-1", customer={"phone": "07400 123456"}), headers=SYSTEM)
    api.client.post(EVENTS, json=body("c-2", customer={"email": "a@example.com"}), headers=SYSTEM)

    assert [r for r in caplog.records if r.getMessage() == "ingest phone dropped"] == []


# --- the event log -------------------------------------------------------------------------------


@pytest.fixture
def dispatching(api):
    """Ingest through the API, then hand each published message to the dispatcher."""
    server = RecordingServer().start()
    api.app.queue.create_queue(QueueConfig("playbook-steps"))
    target = StepTarget(queue="playbook-steps", url=f"{server.url}/execute_step/")
    for org in ("org_a", "org_b"):
        register_org(api.app.store, org)
    playbooks.create_playbook(
        org_id="org_a",
        validated=load_data({
            "name": "Welcome", "agent": "craig",
            "triggers": [{"id": "signup", "type": "event", "eventName": "customer.signup"}],
            "steps": [{"action": "notify", "params": {"channel": "dashboard", "to": "role:admin", "message": "hi"}}],
        }),
        actor="uid_test", source={"kind": "user"}, reason="create", authoring=Authoring(store=api.app.store, clock=api.app.clock, ids=RandomIds()),
        playbook_id="pb_welcome", status="active",
    )  # fmt: skip

    def ingest(payload, org="org_a", minutes=1):
        api.app.clock.advance(minutes=minutes)
        response = api.client.post(f"/v1/orgs/{org}/events", json=payload, headers=SYSTEM)
        assert response.status_code == 202
        _, message = api.app.bus.published[-1]
        dispatch_message(
            PubsubMessage(message.message_id, message.attributes, message.data),
            runs=Runs(store=api.app.store, queue=api.app.queue, target=target, clock=api.app.clock),
        )  # fmt: skip
        return response.get_json()["eventId"]

    yield ingest
    api.app.queue.drain()
    server.stop()


def test_the_log_lists_outcomes_newest_first_without_contact_details(api, dispatching):
    signup = dispatching(body("s1", customer={"email": "who@example.com", "phone": "4155550100"}))
    order = dispatching(body("o1", name="order.created"))
    dispatching(body("x1", name="order.created"), org="org_b")

    response = api.as_("brand_member").get(EVENTS)

    assert response.status_code == 200
    listed = response.get_json()
    assert [e["eventId"] for e in listed["events"]] == [order, signup]
    assert listed["nextPageToken"] is None
    newest, oldest = listed["events"]
    assert (newest["outcome"], newest["matches"]) == ("no_listeners", [])
    assert oldest["outcome"] == "dispatched"
    assert oldest["matches"][0]["playbookId"] == "pb_welcome"
    assert oldest["matches"][0]["outcome"] == "execution_created"
    assert oldest["identityHash"] == h("em:who@example.com")
    assert oldest["receivedAt"] == "2026-11-24T12:01:00Z"
    assert "orgId" not in oldest
    text = response.get_data(as_text=True)
    assert "who@example.com" not in text
    assert "4155550100" not in text


def test_the_log_filters_by_name_outcome_and_from_and_pages(api, dispatching):
    first = dispatching(body("s1"))
    second = dispatching(body("o1", name="order.created"))
    third = dispatching(body("s2", name="customer.created"))

    def ids(query):
        response = api.as_().get(f"{EVENTS}?{query}")
        assert response.status_code == 200
        return [e["eventId"] for e in response.get_json()["events"]]

    assert ids("name=customer.signup") == [third, first]
    assert ids("name=customer.created") == [third, first]  # an alias finds its canonical name
    assert ids("outcome=no_listeners") == [second]
    assert ids("outcome=dispatched&name=customer.signup") == [third, first]
    assert ids("from=2026-11-24T12:02:00Z") == [third, second]
    assert ids("from=2026-11-24T07:02:30-05:00") == [third]
    page = api.as_().get(f"{EVENTS}?pageSize=2").get_json()
    assert [e["eventId"] for e in page["events"]] == [third, second]
    rest = api.as_().get(f"{EVENTS}?pageSize=2&pageToken={page['nextPageToken']}").get_json()
    assert [e["eventId"] for e in rest["events"]] == [first]
    assert rest["nextPageToken"] is None


def test_a_redelivery_keeps_the_first_dispatchs_log_entry(api, dispatching):
    event_id = dispatching(body("s1"))
    (first,) = api.as_().get(f"{EVENTS}?outcome=dispatched").get_json()["events"]
    _, message = api.app.bus.published[-1]
    target = StepTarget(queue="playbook-steps", url="http://127.0.0.1:9/unused")

    dispatch_message(
        PubsubMessage("again", message.attributes, message.data),
        runs=Runs(store=api.app.store, queue=api.app.queue, target=target, clock=api.app.clock),
    )  # fmt: skip

    # The redelivery found its execution and created none: "why did it run" still says how.
    assert not api.as_().get(f"{EVENTS}?outcome=not_dispatched").get_json()["events"]
    (logged,) = api.as_().get(f"{EVENTS}?outcome=dispatched").get_json()["events"]
    assert logged == first
    assert logged["eventId"] == event_id
    assert [m["outcome"] for m in logged["matches"]] == ["execution_created"]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("outcome=exploded", 400),
        ("from=yesterday", 400),
        ("from=2026-11-24T12:00:00", 400),
        ("pageSize=-1", 400),  # 0 and 101 are served (AIP-158): the default and the maximum
        ("pageSize=1.5", 400),
        ("pageSize=ten", 400),
        ("pageToken=not-a-cursor", 400),
    ],
)
def test_bad_log_queries_are_400(api, query, status):
    assert api.as_().get(f"{EVENTS}?{query}").status_code == status


def test_the_log_is_readable_only_by_the_orgs_members(api):
    assert api.as_(orgs=("org_b",)).get(EVENTS).status_code == 403
    assert api.as_("super_user", orgs=()).get(EVENTS).status_code == 200
    assert api.client.get(EVENTS, headers=SYSTEM).status_code == 200
    assert api.client.get(EVENTS).status_code == 401


def test_the_openapi_document_lists_both_event_routes(api):
    document = json.loads(api.client.get("/v1/openapi.json").get_data())

    assert set(document["paths"]["/v1/orgs/{orgId}/events"]) == {"get", "post"}
    assert "202" in document["paths"]["/v1/orgs/{orgId}/events"]["post"]["responses"]
