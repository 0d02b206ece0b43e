"""Each deployed entry point through functions-framework's own app, with an embedded app installed."""

import base64
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import functions_framework
import pytest

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.adapters.service_tokens import OidcToken
from playbook_core.config import Settings
from playbook_core.domain.collections import EVENT_LOG, EXECUTIONS, ORGANIZATIONS
from playbook_core.domain.errors import Unavailable
from playbook_core.runtime import bootstrap
from playbook_core.testing import FrozenClock

ROOT = Path(__file__).parents[2]
MAIN = str(ROOT / "functions" / "main.py")
EVENTS = ROOT / "tests" / "data" / "cloudevents"


class DownStore(EmbeddedStore):
    """Storage that is unreachable: every call fails the way the adapters report it."""

    def _down(self, *_args, **_kwargs):
        raise Unavailable("firestore unreachable")

    get = get_many = query = transaction = create = create_all = set = update = delete = _down
    ping = _down


def install(store):
    bus, queue = InProcessBus(), InProcessTaskQueue()
    app = bootstrap.App(
        Settings(backend="embedded", local_oidc=True),
        store,
        bus,
        queue,
        FrozenClock(datetime(2026, 11, 24, tzinfo=UTC)),
    )
    bootstrap.use(app)
    return app


def serving(store):
    """The app installed on `store` for one test, then uninstalled and closed."""
    installed = install(store)
    yield installed
    bootstrap.use(None)
    installed.bus.close()
    installed.queue.close()
    store.close()


@pytest.fixture
def app():
    store = EmbeddedStore(":memory:")
    store.set(ORGANIZATIONS, "org_a", {"name": "Org A"})  # dispatch knows only registered orgs
    yield from serving(store)


@pytest.fixture
def down_app():
    yield from serving(DownStore(":memory:"))


def client(name, signature="http"):
    return functions_framework.create_app(name, MAIN, signature).test_client()


def oidc(function, caller):
    """The caller's (unsigned, local) ID token, as the emulators attach it."""
    settings = bootstrap.app().settings
    token = OidcToken(settings.invoker(caller), settings.function_url(function))
    return {"Authorization": token.authorization("", time.time())}


def task_headers():
    return {
        "X-CloudTasks-QueueName": "playbook-steps",
        "X-CloudTasks-TaskName": "t0123",
        "X-CloudTasks-TaskRetryCount": "2",
        "X-CloudTasks-TaskExecutionCount": "2",
        "X-CloudTasks-TaskETA": "1795000000",
        **oidc("execute_step", "cloud_tasks"),
    }


def test_health_reports_each_dependency(app):
    response = client("playbooks_api").get("/v1/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["offline"] is False
    assert {body["checks"][name] for name in ("firestore", "pubsub", "tasks")} == {"ok"}
    assert set(body["checks"]) >= {"mailjet", "blackleaf", "harness", "slack"}


def test_health_still_answers_200_when_storage_is_down(down_app):
    response = client("playbooks_api").get("/v1/health")
    assert response.status_code == 200
    assert response.get_json()["offline"] is True
    assert response.get_json()["checks"]["firestore"] == "down"
    # The functions' provider reports live in storage: unreadable, so no provider is vouched for.
    checks = response.get_json()["checks"]
    assert {checks[name] for name in ("mailjet", "blackleaf", "harness", "slack")} == {"unknown"}


def test_unknown_api_route_is_problem_json(app):
    response = client("playbooks_api").get("/v1/nothing")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"] == "https://bakedbot.ai/problems/not-found"


def test_task_for_a_missing_execution_is_acknowledged(app):
    body = {"executionId": "ev_missing", "stepIndex": 0, "attempt": 1, "orgId": "org_a"}
    response = client("execute_step").post("/", json=body, headers=task_headers())
    assert response.status_code == 200
    assert response.get_json() == {"acknowledged": True, "outcome": "missing_execution"}


def test_task_with_a_forged_org_fails_the_run_before_any_side_effect(app):
    app.store.create(EXECUTIONS, "ev_1", {"id": "ev_1", "orgId": "org_a", "status": "queued"})
    body = {"executionId": "ev_1", "stepIndex": 0, "attempt": 1, "orgId": "org_b"}
    response = client("execute_step").post("/", json=body, headers=task_headers())
    assert response.get_json()["outcome"] == "tenant_mismatch"
    stored = app.store.get(EXECUTIONS, "ev_1")
    assert (stored["status"], stored["statusReason"]) == ("failed", "tenant_mismatch")


def test_malformed_task_is_acknowledged_not_retried_forever(app):
    response = client("execute_step").post("/", json={"executionId": "x"}, headers=task_headers())
    assert response.status_code == 200
    assert response.get_json()["error"] == "bad-request"


def test_storage_down_answers_503_so_cloud_tasks_redelivers(down_app):
    body = {"executionId": "ev_1", "stepIndex": 0, "attempt": 1, "orgId": "org_a"}
    response = client("execute_step").post("/", json=body, headers=task_headers())
    assert response.status_code == 503


def binary_cloudevent(name):
    headers = json.loads((EVENTS / f"{name}.headers.json").read_text())
    return headers, (EVENTS / f"{name}.body").read_bytes()


@pytest.mark.parametrize(
    ("name", "event_name"),
    [
        ("firestore_customer_created", "customer.signup"),
        ("firestore_customer_updated", "customer.updated"),
    ],
)
def test_recorded_emulator_cloudevent_reaches_on_customer_written(app, name, event_name, caplog):
    headers, body = binary_cloudevent(name)
    with caplog.at_level(logging.INFO, logger="playbooks.changes"):
        response = client("on_customer_written", "cloudevent").post("/", data=body, headers=headers)
    assert response.status_code == 200
    [received] = [r for r in caplog.records if r.getMessage() == "document change received"]
    fields = received.fields
    assert fields["function"] == "on_customer_written"
    assert fields["document"] == "customers/cus_demo1"
    assert fields["ceId"] == headers["ce-id"]
    assert fields["kind"] == ("created" if name.endswith("created") else "updated")
    if name.endswith("updated"):
        assert fields["changed"] == ["firstName"]
    [(topic, message)] = app.bus.published
    assert topic == "playbook-events"
    assert message.attributes["name"] == event_name
    assert message.attributes["orgId"] == "org_demo"


def test_pubsub_push_reaches_on_event_published(app, caplog):
    envelope = {
        "eventId": "shp_1", "orgId": "org_a", "name": "order.created",
        "occurredAt": "2026-11-24T00:00:00Z", "receivedAt": "2026-11-24T00:00:01Z",
        "source": {"kind": "shopify", "ref": "shop.myshopify.com"}, "data": {"orderId": "1"},
    }  # fmt: skip
    push = {
        "message": {
            "data": base64.b64encode(json.dumps(envelope).encode()).decode(),
            "attributes": {"orgId": "org_a", "name": "order.created", "eventId": "shp_1"},
            "messageId": "42",
            "publishTime": "2026-11-24T00:00:00Z",
        },
        "subscription": "projects/demo-playbooks/subscriptions/playbook-dispatch",
    }
    with caplog.at_level(logging.INFO, logger="playbooks.dispatch"):
        response = client("on_event_published", "cloudevent").post(
            "/", json=push, headers=oidc("on_event_published", "pubsub_push")
        )
    assert response.status_code == 200
    received = next(r for r in caplog.records if r.getMessage() == "event message received")
    assert received.fields == {
        "messageId": "42",
        "eventId": "shp_1",
        "eventName": "order.created",
        "orgId": "org_a",
    }
    log = app.store.query(EVENT_LOG).docs
    assert [d.data["outcome"] for d in log] == ["no_listeners"]


def test_paths_the_framework_refuses_still_answer_problem_json(app):
    response = client("playbooks_api").get("/v1/orgs/%0A/playbooks")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
