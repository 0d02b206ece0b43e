"""In-process bus and queue beyond the contract: drain(), dead letters, giving up, backoff curve."""

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import tasks_v2

from emulators.cloud_tasks import backoff as emulator_backoff
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue, backoff
from playbook_core.domain.errors import AlreadyExists, Unavailable
from playbook_core.ports import QueueConfig, TaskRequest
from playbook_core.testing import RecordingServer


@pytest.fixture
def failing():
    server = RecordingServer(status=503).start()
    yield server
    server.stop()


@pytest.fixture
def ok():
    server = RecordingServer().start()
    yield server
    server.stop()


@pytest.fixture
def bus():
    b = InProcessBus()
    yield b
    b.close()


@pytest.fixture
def queue():
    q = InProcessTaskQueue(backoff_scale=0.01)
    yield q
    q.close()


def test_drain_waits_for_redeliveries_then_dead_letters(bus, failing, ok):
    bus.subscribe("events", f"{failing.url}/push", 3, 0.001, dead_letter="events-dead")
    bus.subscribe("events-dead", f"{ok.url}/dead")

    message_id = bus.publish("events", b"payload", {"orgId": "org_a"})
    bus.drain(5)

    assert len(failing.requests) == 3
    attempts = [json.loads(r.body)["deliveryAttempt"] for r in failing.requests]
    assert attempts == [1, 2, 3]
    (dead,) = ok.requests
    message = json.loads(dead.body)["message"]
    assert base64.b64decode(message["data"]) == b"payload"
    assert message["attributes"]["orgId"] == "org_a"
    assert message["attributes"]["CloudPubSubDeadLetterSourceDeliveryCount"] == "3"
    assert [m.message_id for topic, m in bus.published if topic == "events"] == [message_id]


def test_without_a_dead_letter_topic_a_message_is_dropped_after_max_attempts(bus, failing):
    bus.subscribe("events", f"{failing.url}/push", 2, 0.001)
    bus.publish("events", b"x", {})
    bus.drain(5)
    assert len(failing.requests) == 2
    assert "deliveryAttempt" not in json.loads(failing.requests[0].body)


def test_drain_leaves_work_due_after_its_window(queue, ok):
    queue.create_queue(QueueConfig("q"))
    later = datetime.now(UTC) + timedelta(hours=1)
    queue.enqueue(TaskRequest("q", "later", f"{ok.url}/run", {}, later))
    queue.enqueue(TaskRequest("q", "now", f"{ok.url}/run", {}))

    started = time.monotonic()
    queue.drain(5)

    assert time.monotonic() - started < 2
    assert [r.headers["X-CloudTasks-TaskName"] for r in ok.requests] == ["now"]
    assert [t.name for t in queue.enqueued] == ["later", "now"]


def test_a_task_gives_up_after_max_attempts(queue, failing):
    queue.create_queue(QueueConfig("q", max_attempts=3, min_backoff_s=1, max_backoff_s=4))
    queue.enqueue(TaskRequest("q", "t1", f"{failing.url}/run", {"a": 1}))
    queue.drain(5)
    assert [r.headers["X-CloudTasks-TaskRetryCount"] for r in failing.requests] == ["0", "1", "2"]
    assert failing.requests[1].headers["X-CloudTasks-TaskPreviousResponse"] == "503"
    assert all(r.headers["X-CloudTasks-TaskExecutionCount"] == "0" for r in failing.requests)


def test_a_queue_is_created_once(queue):
    queue.create_queue(QueueConfig("q"))
    with pytest.raises(AlreadyExists):
        queue.create_queue(QueueConfig("q"))


def test_closed_adapters_are_unavailable(ok):
    bus, queue = InProcessBus(), InProcessTaskQueue()
    queue.create_queue(QueueConfig("q"))
    bus.close()
    queue.close()
    with pytest.raises(Unavailable):
        bus.publish("t", b"x", {})
    with pytest.raises(Unavailable):
        queue.enqueue(TaskRequest("q", "t1", f"{ok.url}/run", {}))
    with pytest.raises(Unavailable):
        queue.ping()


@pytest.mark.parametrize("failures", range(1, 25))
def test_backoff_matches_the_cloud_tasks_emulator(failures):
    config = QueueConfig("q", min_backoff_s=0.5, max_backoff_s=300, max_doublings=4)
    retry = tasks_v2.RetryConfig(
        min_backoff=timedelta(seconds=0.5), max_backoff=timedelta(seconds=300), max_doublings=4
    )
    assert backoff(config, failures) == pytest.approx(emulator_backoff(retry, failures))
