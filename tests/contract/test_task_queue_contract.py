"""TaskQueue contract: Cloud Tasks' HTTP push, name dedup, schedule_time and retry with backoff."""

import itertools
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from playbook_core.domain.errors import Unavailable
from playbook_core.ports import QueueConfig, TaskRequest
from playbook_core.testing import eventually


def named(server, task_name):
    return server.with_header("X-CloudTasks-TaskName", task_name)


@pytest.fixture
def queue_name(backend, unique):
    name = f"steps-{unique}"
    backend.create_queue(QueueConfig(name, max_attempts=5, min_backoff_s=0.2, max_backoff_s=1.0))
    return name


def task(queue, name, url, body=None, schedule_time=None):
    return TaskRequest(queue, name, url, body or {"n": 1}, schedule_time)


def test_enqueued_task_is_pushed_with_cloud_tasks_headers(backend, queue_name, recorder, unique):
    body = {"executionId": "ex_1", "stepIndex": 2}

    created = backend.queue.enqueue(task(queue_name, f"t{unique}", f"{recorder.url}/run", body))

    request = eventually(lambda: recorder.requests)[0]
    assert created is True
    assert request.path == "/run"
    assert json.loads(request.body) == body
    assert request.header("Content-Type").startswith("application/json")
    assert request.header("User-Agent") == "Google-Cloud-Tasks"
    assert request.header("X-CloudTasks-QueueName") == queue_name
    assert request.header("X-CloudTasks-TaskName") == f"t{unique}"
    assert request.header("X-CloudTasks-TaskRetryCount") == "0"
    assert request.header("X-CloudTasks-TaskExecutionCount") == "0"
    assert abs(float(request.header("X-CloudTasks-TaskETA")) - time.time()) < 60


def test_a_task_name_is_taken_once(backend, queue_name, recorder, unique):
    name = f"t{unique}"

    first = backend.queue.enqueue(task(queue_name, name, f"{recorder.url}/run", {"copy": 1}))
    second = backend.queue.enqueue(task(queue_name, name, f"{recorder.url}/run", {"copy": 2}))
    eventually(lambda: named(recorder, name))
    after_delivery = backend.queue.enqueue(
        task(queue_name, name, f"{recorder.url}/run", {"copy": 3})
    )
    # A later task through the same queue: once it arrived, a duplicate would have too.
    backend.queue.enqueue(task(queue_name, f"{name}-barrier", f"{recorder.url}/run"))
    eventually(lambda: named(recorder, f"{name}-barrier"))

    assert (first, second, after_delivery) == (True, False, False)
    assert [json.loads(r.body) for r in named(recorder, name)] == [{"copy": 1}]


def test_enqueue_into_an_unknown_queue_is_unavailable(backend, unique, recorder):
    # A missing queue is a deployment fault: callers answer 503 (retry), never a 404 that blames
    # the request after its execution document was written.
    with pytest.raises(Unavailable):
        backend.queue.enqueue(task(f"nope-{unique}", f"t{unique}", f"{recorder.url}/run"))


def test_schedule_time_delays_the_push(backend, queue_name, recorder, unique):
    due = datetime.now(UTC) + timedelta(seconds=1.5)

    backend.queue.enqueue(task(queue_name, f"t{unique}-later", f"{recorder.url}/run", None, due))
    backend.queue.enqueue(task(queue_name, f"t{unique}-now", f"{recorder.url}/run"))
    eventually(lambda: named(recorder, f"t{unique}-now"))
    early = list(named(recorder, f"t{unique}-later"))
    checked_at = time.time()
    later = eventually(lambda: named(recorder, f"t{unique}-later"), timeout=10)[0]

    assert checked_at < due.timestamp()  # the check above ran before the due time...
    assert early == []  # ...and saw nothing
    assert later.at >= due.timestamp() - 0.01
    assert float(later.header("X-CloudTasks-TaskETA")) == pytest.approx(due.timestamp(), abs=1e-3)


def test_a_failing_target_is_retried_with_backoff(backend, queue_name, unique, recorder):
    recorder.script = [503, 503]
    name = f"t{unique}"

    backend.queue.enqueue(task(queue_name, name, f"{recorder.url}/run"))

    requests = eventually(lambda: named(recorder, name) if len(recorder.requests) >= 3 else None)
    assert [r.status for r in recorder.requests] == [503, 503, 200]
    assert [r.header("X-CloudTasks-TaskRetryCount") for r in requests] == ["0", "1", "2"]
    gaps = [b.at - a.at for a, b in itertools.pairwise(recorder.requests)]
    assert gaps[0] >= 0.2 - 0.05  # min_backoff, then doubled
    assert gaps[1] >= 0.4 - 0.05


def test_ping_answers(backend):
    assert backend.queue.ping() is None
