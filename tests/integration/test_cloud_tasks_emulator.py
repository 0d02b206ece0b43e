"""The in-repo Cloud Tasks emulator, driven only through the official google-cloud-tasks client."""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from emulators.cloud_tasks import backoff, start_tasks_emulator
from playbook_core.testing import eventually
from tests.conftest import assert_serves_until_sigterm
from tests.unit.adapters.test_inprocess import HeldTarget

LOCATION = "projects/demo-playbooks/locations/us-central1"
SCALE = 0.01  # retry waits in hundredths: min_backoff 20 s becomes 0.2 s


def _client(address):
    channel = grpc.insecure_channel(address)
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))


@pytest.fixture(scope="module")
def emulator():
    running = start_tasks_emulator(backoff_scale=SCALE)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(emulator):
    tasks = _client(emulator.address)
    yield tasks
    tasks.transport.close()


def _retry(min_s=20, max_s=300, doublings=3, attempts=5):
    return tasks_v2.RetryConfig(
        max_attempts=attempts,
        min_backoff=timedelta(seconds=min_s),
        max_backoff=timedelta(seconds=max_s),
        max_doublings=doublings,
    )


def _new_queue(client, retry=None, *, concurrency=None):
    queue = tasks_v2.Queue(
        name=f"{LOCATION}/queues/q-{uuid.uuid4().hex[:12]}", retry_config=retry or _retry()
    )
    if concurrency is not None:
        queue.rate_limits = tasks_v2.RateLimits(max_concurrent_dispatches=concurrency)
    return client.create_queue(parent=LOCATION, queue=queue)


@pytest.fixture
def queue(client):
    return _new_queue(client)


def _task(url, *, name="", when=None, body=b"{}", headers=None, oidc=None):
    return tasks_v2.Task(
        name=name,
        schedule_time=when,
        http_request=tasks_v2.HttpRequest(
            url=url,
            http_method=tasks_v2.HttpMethod.POST,
            headers=headers or {"Content-Type": "application/json"},
            body=body,
            oidc_token=oidc,
        ),
    )


def _path():
    return f"/run/{uuid.uuid4().hex}"


def test_queue_lifecycle(client, recorder):
    created = _new_queue(client, tasks_v2.RetryConfig(max_attempts=4))
    assert created.state == tasks_v2.Queue.State.RUNNING
    assert created.retry_config.max_attempts == 4
    assert created.retry_config.max_doublings == 16  # unset fields get Google's defaults
    with pytest.raises(exceptions.AlreadyExists):
        client.create_queue(parent=LOCATION, queue=tasks_v2.Queue(name=created.name))

    assert client.get_queue(name=created.name) == created
    assert created.name in [q.name for q in client.list_queues(parent=LOCATION)]

    changed = tasks_v2.Queue(name=created.name, retry_config=tasks_v2.RetryConfig(max_attempts=7))
    client.update_queue(queue=changed, update_mask={"paths": ["retry_config.max_attempts"]})
    stored = client.get_queue(name=created.name)
    assert stored.retry_config.max_attempts == 7
    assert stored.retry_config.max_doublings == 16  # untouched by the masked update

    assert client.pause_queue(name=created.name).state == tasks_v2.Queue.State.PAUSED
    assert client.resume_queue(name=created.name).state == tasks_v2.Queue.State.RUNNING

    later = datetime.now(UTC) + timedelta(hours=1)
    for _ in range(3):
        client.create_task(parent=created.name, task=_task(recorder.url, when=later))
    assert len(list(client.list_tasks(parent=created.name))) == 3
    assert client.purge_queue(name=created.name).purge_time is not None
    assert list(client.list_tasks(parent=created.name)) == []

    client.delete_queue(name=created.name)
    with pytest.raises(exceptions.NotFound):
        client.get_queue(name=created.name)
    with pytest.raises(exceptions.NotFound):
        client.delete_queue(name=created.name)


def test_unlimited_attempts_are_refused(client):
    queue = tasks_v2.Queue(name=f"{LOCATION}/queues/unlimited", retry_config=_retry(attempts=-1))
    with pytest.raises(exceptions.InvalidArgument):
        client.create_queue(parent=LOCATION, queue=queue)


def test_paused_queue_holds_tasks_until_resumed(client, recorder):
    paused, running = _new_queue(client), _new_queue(client)
    client.pause_queue(name=paused.name)
    held, control = _path(), _path()
    client.create_task(parent=paused.name, task=_task(recorder.url + held))
    client.create_task(parent=running.name, task=_task(recorder.url + control))

    eventually(lambda: recorder.for_path(control))  # dispatched after the held task was due
    assert recorder.for_path(held) == []

    client.resume_queue(name=paused.name)
    assert len(eventually(lambda: recorder.for_path(held))) == 1


def test_task_names_are_never_reused(client, queue, recorder):
    live = f"{queue.name}/tasks/live-{uuid.uuid4().hex}"
    later = datetime.now(UTC) + timedelta(hours=1)
    client.create_task(parent=queue.name, task=_task(recorder.url, name=live, when=later))
    with pytest.raises(exceptions.AlreadyExists):
        client.create_task(parent=queue.name, task=_task(recorder.url, name=live))

    path, executed = _path(), f"{queue.name}/tasks/done-{uuid.uuid4().hex}"
    client.create_task(parent=queue.name, task=_task(recorder.url + path, name=executed))
    eventually(lambda: _gone(client, executed))
    with pytest.raises(exceptions.AlreadyExists):
        client.create_task(parent=queue.name, task=_task(recorder.url, name=executed))

    client.delete_task(name=live)
    with pytest.raises(exceptions.AlreadyExists):
        client.create_task(parent=queue.name, task=_task(recorder.url, name=live))


def test_server_assigns_a_name_when_none_is_given(client, queue, recorder):
    later = datetime.now(UTC) + timedelta(hours=1)
    task = client.create_task(parent=queue.name, task=_task(recorder.url, when=later))
    assert task.name.startswith(f"{queue.name}/tasks/")
    assert task.name.rsplit("/", 1)[1].isdigit()
    assert client.get_task(name=task.name).create_time is not None


def test_unknown_queue_and_absent_task_are_not_found(client, queue, recorder):
    with pytest.raises(exceptions.NotFound):
        client.create_task(parent=f"{LOCATION}/queues/nope", task=_task(recorder.url))
    absent = f"{queue.name}/tasks/absent"
    for call in (client.get_task, client.delete_task, client.run_task):
        with pytest.raises(exceptions.NotFound):
            call(name=absent)


def test_schedule_time_is_honoured_and_run_task_skips_it(client, queue, recorder):
    due = datetime.now(UTC) + timedelta(seconds=1.5)
    path = _path()
    task = client.create_task(parent=queue.name, task=_task(recorder.url + path, when=due))
    assert client.get_task(name=task.name).dispatch_count == 0

    (received,) = eventually(lambda: recorder.for_path(path), timeout=5)
    assert received.at >= due.timestamp()

    far, forced = datetime.now(UTC) + timedelta(hours=1), _path()
    task = client.create_task(parent=queue.name, task=_task(recorder.url + forced, when=far))
    client.run_task(name=task.name)
    (received,) = eventually(lambda: recorder.for_path(forced), timeout=2)
    assert received.at < far.timestamp()


def test_push_carries_the_cloud_tasks_headers(client, queue, recorder):
    path, task_id = _path(), f"t-{uuid.uuid4().hex}"
    body = json.dumps({"attempt": 1}).encode()
    task = client.create_task(
        parent=queue.name,
        task=_task(
            recorder.url + path,
            name=f"{queue.name}/tasks/{task_id}",
            body=body,
            headers={"Content-Type": "application/json", "X-Trace": "abc"},
        ),
    )

    (received,) = eventually(lambda: recorder.for_path(path))
    assert received.method == "POST"
    assert received.body == body
    assert received.header("Content-Type") == "application/json"
    assert received.header("X-Trace") == "abc"
    assert received.header("User-Agent") == "Google-Cloud-Tasks"
    assert received.header("X-CloudTasks-QueueName") == queue.name.rsplit("/", 1)[1]
    assert received.header("X-CloudTasks-TaskName") == task_id
    assert received.header("X-CloudTasks-TaskRetryCount") == "0"
    assert received.header("X-CloudTasks-TaskExecutionCount") == "0"
    assert float(received.header("X-CloudTasks-TaskETA")) == pytest.approx(
        task.schedule_time.timestamp(), abs=1e-3
    )
    assert received.header("X-CloudTasks-TaskPreviousResponse") is None
    assert received.header("Authorization") is None  # no oidc_token on the task


def test_failures_are_retried_with_growing_backoff(client, queue, recorder):
    recorder.script = [503, 503]
    path = _path()
    client.create_task(parent=queue.name, task=_task(recorder.url + path))

    first, second, third = eventually(
        lambda: len(recorder.for_path(path)) >= 3 and recorder.for_path(path)
    )
    # Lower bounds only: a loaded machine can stretch a gap but never shorten it.
    assert second.at - first.at >= 20 * SCALE * 0.95  # min_backoff
    assert third.at - second.at >= 40 * SCALE * 0.95  # doubled once
    assert [r.header("X-CloudTasks-TaskRetryCount") for r in (first, second, third)] == [
        "0",
        "1",
        "2",
    ]
    assert second.header("X-CloudTasks-TaskPreviousResponse") == "503"
    assert "503" in second.header("X-CloudTasks-TaskRetryReason")
    # Google does not count 5xx answers as executions.
    assert third.header("X-CloudTasks-TaskExecutionCount") == "0"


def test_attempts_are_recorded_on_the_task(client, recorder):
    queue = _new_queue(client, _retry(min_s=50, max_s=1000))  # 0.5 s, then 1 s, between attempts
    recorder.script = [404, 404]
    path = _path()
    task = client.create_task(parent=queue.name, task=_task(recorder.url + path))

    def answered():  # at least one answer, and no push in flight
        t = client.get_task(name=task.name)
        return t.response_count >= 1 and t.dispatch_count == t.response_count and t

    failed = eventually(answered)
    assert failed.first_attempt.dispatch_time is not None
    assert failed.last_attempt.response_status.code == 5  # NOT_FOUND
    assert failed.schedule_time > failed.last_attempt.dispatch_time  # backing off

    _, retried, *_ = eventually(
        lambda: len(recorder.for_path(path)) >= 2 and recorder.for_path(path)
    )
    assert retried.header("X-CloudTasks-TaskExecutionCount") == "1"  # a 404 is an execution
    assert retried.header("X-CloudTasks-TaskPreviousResponse") == "404"
    with contextlib.suppress(exceptions.NotFound):  # stop it before the recorder goes away
        client.delete_task(name=task.name)


def test_gives_up_after_max_attempts(client, recorder):
    queue = _new_queue(client, _retry(min_s=10, attempts=3))
    recorder.status = 503  # every attempt fails
    path = _path()
    task = client.create_task(parent=queue.name, task=_task(recorder.url + path))

    eventually(lambda: _gone(client, task.name))
    assert len(recorder.for_path(path)) == 3  # every attempt happens before the deletion


def _bearer_parts(received):
    scheme, token = received.header("Authorization").split(" ")
    header, claims, signature = (_b64json(p) if p else p for p in token.split("."))
    assert scheme == "Bearer"
    return header, claims, signature


def test_a_task_with_an_oidc_token_is_pushed_with_a_google_shaped_id_token(client, queue, recorder):
    path = _path()
    oidc = tasks_v2.OidcToken(service_account_email="invoker@demo.iam.gserviceaccount.com")
    before = time.time()
    client.create_task(parent=queue.name, task=_task(recorder.url + path, oidc=oidc))

    (received,) = eventually(lambda: recorder.for_path(path))
    header, claims, signature = _bearer_parts(received)
    assert header["alg"] == "none"  # unsigned: only functions under PLAYBOOKS_LOCAL_OIDC accept it
    assert signature == ""
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["email"] == claims["sub"] == "invoker@demo.iam.gserviceaccount.com"
    assert claims["email_verified"] is True
    assert claims["aud"] == recorder.url + path  # defaults to the URL
    assert int(before) <= claims["iat"] == claims["nbf"] <= time.time()
    assert claims["exp"] == claims["iat"] + 3600


def test_the_oidc_audience_is_the_one_the_task_asks_for(client, queue, recorder):
    path = _path()
    oidc = tasks_v2.OidcToken(service_account_email="a@b.c", audience="https://x/fn")
    client.create_task(parent=queue.name, task=_task(recorder.url + path, oidc=oidc))
    (received,) = eventually(lambda: recorder.for_path(path))
    assert _bearer_parts(received)[1]["aud"] == "https://x/fn"


@pytest.fixture
def held():
    target = HeldTarget()
    yield target
    target.stop()


def _short(name):
    return name.rsplit("/", 1)[1]


def _create_held(client, queue, held, count):
    names = [f"{queue.name}/tasks/t{n}" for n in range(count)]
    for name in names:  # created one after another: due in this order
        client.create_task(parent=queue.name, task=_task(held.url + "/held", name=name))
    return names


def test_a_queue_has_at_most_its_limit_of_pushes_awaiting_an_answer(client, held):
    queue = _new_queue(client, concurrency=2)
    assert queue.rate_limits.max_concurrent_dispatches == 2
    q, marker = _short(queue.name), _new_queue(client)
    _create_held(client, queue, held, 6)
    # Due after the six, so dispatched after all of them were considered.
    client.create_task(parent=marker.name, task=_task(held.url + "/free"))
    held.wait(lambda t: t.arrived[_short(marker.name)] == 1 and t.in_flight[q] == 2)
    assert sum(t.dispatch_count for t in client.list_tasks(parent=queue.name)) == 2

    for answered in range(6):  # one answer at a time: each frees the place of the next task
        held.wait(lambda t, n=answered: (t.answered[q], t.in_flight[q]) == (n, min(2, 6 - n)))
        held.answer()
    eventually(lambda: not list(client.list_tasks(parent=queue.name)))

    assert held.arrived[q] == 6
    assert held.peak[q] == 2
    assert sorted(held.order[q][:2]) == ["t0", "t1"]
    assert held.order[q][2:] == ["t2", "t3", "t4", "t5"]  # the waiting ones went in due order


def test_a_saturated_queue_does_not_hold_up_another(client, held):
    # 20 held pushes: a small pool of push threads shared by all queues would have none left.
    busy, other = _new_queue(client, concurrency=20), _new_queue(client)
    _create_held(client, busy, held, 24)
    held.wait(lambda t: t.in_flight[_short(busy.name)] == 20)

    client.create_task(parent=other.name, task=_task(held.url + "/free"))
    held.wait(lambda t: t.arrived[_short(other.name)] == 1)

    assert held.in_flight[_short(busy.name)] == 20  # all still held, none answered
    held.open()
    eventually(lambda: not list(client.list_tasks(parent=busy.name)))
    assert held.arrived[_short(busy.name)] == 24


def test_run_task_pushes_beyond_the_limit(client, held):
    queue = _new_queue(client, concurrency=1)
    q = _short(queue.name)
    _, second = _create_held(client, queue, held, 2)
    held.wait(lambda t: t.in_flight[q] == 1)

    client.run_task(name=second)
    held.wait(lambda t: t.in_flight[q] == 2)

    assert held.order[q] == ["t0", "t1"]
    held.open()
    eventually(lambda: not list(client.list_tasks(parent=queue.name)))


def test_waiting_tasks_stay_while_paused_and_go_when_the_limit_is_raised(client, held):
    queue = _new_queue(client, concurrency=1)
    q = _short(queue.name)
    first, *waiting = _create_held(client, queue, held, 3)
    held.wait(lambda t: t.in_flight[q] == 1)

    client.pause_queue(name=queue.name)
    held.answer()
    eventually(lambda: _gone(client, first))
    # Decided under the lock that removed t0: nothing took its place while paused.
    assert [client.get_task(name=n).dispatch_count for n in waiting] == [0, 0]

    client.resume_queue(name=queue.name)
    held.wait(lambda t: t.in_flight[q] == 1)
    raised = tasks_v2.Queue(
        name=queue.name, rate_limits=tasks_v2.RateLimits(max_concurrent_dispatches=2)
    )
    client.update_queue(queue=raised, update_mask={"paths": ["rate_limits"]})
    held.wait(lambda t: t.in_flight[q] == 2)  # the last one went without another answer

    assert held.order[q] == ["t0", "t1", "t2"]
    held.open()
    eventually(lambda: not list(client.list_tasks(parent=queue.name)))


def test_backoff_doubles_then_grows_linearly_up_to_the_cap():
    retry = tasks_v2.RetryConfig(
        min_backoff=timedelta(seconds=10), max_backoff=timedelta(seconds=300), max_doublings=3
    )
    waits = [backoff(retry, failures) for failures in range(1, 9)]
    assert waits == [10, 20, 40, 80, 160, 240, 300, 300]  # the example in RetryConfig's docs


def _gone(client, name):
    try:
        client.get_task(name=name)
    except exceptions.NotFound:
        return True
    return False


def _b64json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.mark.stack
def test_process_mode_announces_readiness_and_stops_on_sigterm():
    def use(address):
        client = _client(address)
        assert _new_queue(client).state == tasks_v2.Queue.State.RUNNING
        client.transport.close()

    assert_serves_until_sigterm("emulators.cloud_tasks", "--backoff-scale", "0.01", use=use)
