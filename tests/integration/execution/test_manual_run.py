"""POST …/playbooks/{id}:run (domain.md §3.10 Run, api.md §5): editors start active playbooks."""

import pytest

from playbook_core.domain.collections import EXECUTIONS
from playbook_core.domain.executions import manual_execution_id
from playbook_core.ports import QueueConfig
from playbook_core.testing import RecordingServer

BASE = "/v1/orgs/org_a/playbooks"
YAML = {"Content-Type": "application/yaml"}
DEFINITION = """name: Run me
agent: craig
triggers:
  - {id: by_hand, type: manual}
steps:
  - {id: hello, action: notify, params: {channel: dashboard, to: "role:admin", message: Hi}}
"""


@pytest.fixture(scope="module")
def server():
    started = RecordingServer().start()  # the execute_step target: answers 200, records tasks
    yield started
    started.stop()


@pytest.fixture
def runnable(api, server):
    api.app.settings = api.app.settings.model_copy(update={"functions_base_url": server.url})
    api.app.queue.create_queue(QueueConfig("playbook-steps"))
    return api


def playbook(api, active=True):
    created = api.as_().post(BASE, data=DEFINITION, headers=YAML).get_json()
    if active:
        toggled = api.as_().post(f"{BASE}/{created['id']}:toggle", json={"enabled": True})
        assert toggled.status_code == 200
    return created["id"]


def run(api, playbook_id, role="brand_admin", orgs=("org_a",), **kwargs):
    return api.as_(role, orgs).post(f"{BASE}/{playbook_id}:run", **kwargs)


def test_run_answers_202_with_the_execution_and_enqueues_step_zero(runnable):
    playbook_id = playbook(runnable)
    body = {"input": {"reason": "demo"}, "customer": {"email": " Jo@X.io ", "firstName": "Jo"}}
    response = run(runnable, playbook_id, json=body)
    assert response.status_code == 202
    execution_id = response.get_json()["executionId"]
    assert execution_id.startswith("man_")
    stored = runnable.app.store.get(EXECUTIONS, execution_id)
    assert (stored["status"], stored["triggeredBy"], stored["userId"]) == (
        "queued", "manual", "uid_brand_admin",
    )  # fmt: skip
    assert stored["trigger"] == {"type": "manual", "triggerId": "by_hand"}
    assert stored["input"] == {"reason": "demo"}
    assert stored["customer"] == {"email": "jo@x.io", "firstName": "Jo"}
    assert stored["playbookVersion"] == 1
    [task] = runnable.app.queue.enqueued
    assert task.body == {
        "executionId": execution_id,
        "stepIndex": 0,
        "attempt": 1,
        "orgId": "org_a",
    }


def test_runs_without_a_key_are_separate_runs(runnable):
    playbook_id = playbook(runnable)
    first, second = run(runnable, playbook_id), run(runnable, playbook_id)
    assert first.get_json()["executionId"] != second.get_json()["executionId"]


def test_idempotency_key_gives_the_same_execution_and_no_second_run(runnable):
    playbook_id = playbook(runnable)
    headers = {"Idempotency-Key": "click-42"}
    first = run(runnable, playbook_id, headers=headers)
    second = run(runnable, playbook_id, headers=headers)
    assert (first.status_code, second.status_code) == (202, 202)
    assert (
        first.get_json()
        == second.get_json()
        == {"executionId": manual_execution_id(playbook_id, "click-42")}
    )
    assert len(runnable.app.queue.enqueued) == 1
    runs = runnable.app.store.query(EXECUTIONS, limit=10).docs
    assert [doc.id for doc in runs] == [manual_execution_id(playbook_id, "click-42")]


def test_a_playbook_that_is_not_active_is_409_not_active(runnable):
    playbook_id = playbook(runnable, active=False)
    response = run(runnable, playbook_id)
    assert response.status_code == 409
    assert response.get_json()["type"] == "https://bakedbot.ai/problems/not_active"
    assert runnable.app.store.query(EXECUTIONS, limit=10).docs == []


def test_viewers_cannot_run(runnable):
    playbook_id = playbook(runnable)
    assert run(runnable, playbook_id, role="brand_member").status_code == 403


def test_another_orgs_caller_or_playbook_is_refused(runnable):
    playbook_id = playbook(runnable)
    assert run(runnable, playbook_id, orgs=("org_b",)).status_code == 403
    foreign = runnable.as_("brand_admin", ("org_b",)).post(
        f"/v1/orgs/org_b/playbooks/{playbook_id}:run"
    )
    assert foreign.status_code == 404
    assert runnable.app.store.query(EXECUTIONS, limit=10).docs == []


@pytest.mark.parametrize(
    "body",
    [
        {"input": [1]},
        {"input": {"grid": [[1, 2], [3, 4]]}},  # Firestore holds no array in an array
        {"input": {"big": 2**64}},
        {"customer": {"email": "nope"}},
        {"customer": {"ssn": "1"}},
        {"other": 1},
        [1],
    ],
)
def test_malformed_bodies_are_400(runnable, body):
    playbook_id = playbook(runnable)
    assert run(runnable, playbook_id, json=body).status_code == 400
    assert runnable.app.store.query(EXECUTIONS, limit=10).docs == []


def test_a_malformed_idempotency_key_is_400(runnable):
    playbook_id = playbook(runnable)
    response = run(runnable, playbook_id, headers={"Idempotency-Key": "x" * 300})
    assert response.status_code == 400


def test_a_missing_step_queue_is_a_503_to_retry_not_a_404(api):
    """The queue is the deployment's fault: the caller may retry the same key, nothing blames it."""
    playbook_id = playbook(api)  # the `api` fixture wires no queue
    response = run(api, playbook_id, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 503
    assert response.headers["Retry-After"]


@pytest.mark.parametrize(
    "body",
    [
        {"customer": {"tags": [["a"], []]}},  # schemathesis found this: an array in an array
        {"event": {"name": "order.created", "data": {"grid": [[1]]}}},
        {"event": {"data": {"big": 2**64}}},
    ],
)
def test_a_dry_run_whose_values_firestore_cannot_hold_is_400_and_writes_nothing(runnable, body):
    playbook_id = playbook(runnable)
    answer = runnable.as_().post(f"{BASE}/{playbook_id}:dryRun", json=body)
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["detail"].split(":")[0] in ("customer", "event")
    assert runnable.app.store.query(EXECUTIONS, limit=10).docs == []


def test_a_national_phone_is_read_in_the_orgs_country(runnable):
    playbook_id = playbook(runnable)
    patched = runnable.as_().patch("/v1/orgs/org_a/settings", json={"defaultCountry": "GB"})
    assert patched.status_code == 200, patched.get_json()
    response = run(runnable, playbook_id, json={"customer": {"phone": "07400 123456"}})
    assert response.status_code == 202, response.get_json()
    stored = runnable.app.store.get(EXECUTIONS, response.get_json()["executionId"])
    assert stored["customer"] == {"phone": "+447400123456"}
    refused = run(runnable, playbook_id, json={"customer": {"phone": "07700 900123"}})
    assert refused.status_code == 400  # not a number in use: never guessed
