"""TaskQueue contract: Cloud Tasks' HTTP push, name dedup, schedule_time and retry with backoff."""

import itertools
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from playbook_core.domain.errors import Unavailable
from playbook_core.ports import QueueConfig, TaskRequest
from playbook_core.testing import Recorded, eventually


class ScriptedServer:
    """Records requests with their arrival time, answering scripted statuses in order, then 200."""

    def __init__(self, *statuses):
        self.script, self.requests, self.answers = list(statuses), [], []
        lock, owner = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    status = owner.script.pop(0) if owner.script else 200
                    owner.answers.append((status, time.time()))
                    owner.requests.append(Recorded("POST", self.path, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                """Quiet: tests read `requests`."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # a short poll interval: shutdown() waits for one, and every test stops a server
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def named(self, task_name):
        return [r for r in self.requests if header(r, "X-CloudTasks-TaskName") == task_name]


def header(request, name):
    return {k.lower(): v for k, v in request.headers.items()}.get(name.lower())


@pytest.fixture
def target():
    server = ScriptedServer()
    yield server
    server.stop()


@pytest.fixture
def queue_name(backend, unique):
    name = f"steps-{unique}"
    backend.create_queue(QueueConfig(name, max_attempts=5, min_backoff_s=0.2, max_backoff_s=1.0))
    return name


def task(queue, name, url, body=None, schedule_time=None):
    return TaskRequest(queue, name, url, body or {"n": 1}, schedule_time)


def test_enqueued_task_is_pushed_with_cloud_tasks_headers(backend, queue_name, target, unique):
    body = {"executionId": "ex_1", "stepIndex": 2}

    created = backend.queue.enqueue(task(queue_name, f"t{unique}", f"{target.url}/run", body))

    request = eventually(lambda: target.requests)[0]
    assert created is True
    assert request.path == "/run"
    assert json.loads(request.body) == body
    assert header(request, "Content-Type").startswith("application/json")
    assert header(request, "User-Agent") == "Google-Cloud-Tasks"
    assert header(request, "X-CloudTasks-QueueName") == queue_name
    assert header(request, "X-CloudTasks-TaskName") == f"t{unique}"
    assert header(request, "X-CloudTasks-TaskRetryCount") == "0"
    assert header(request, "X-CloudTasks-TaskExecutionCount") == "0"
    assert abs(float(header(request, "X-CloudTasks-TaskETA")) - time.time()) < 60


def test_a_task_name_is_taken_once(backend, queue_name, target, unique):
    name = f"t{unique}"

    first = backend.queue.enqueue(task(queue_name, name, f"{target.url}/run", {"copy": 1}))
    second = backend.queue.enqueue(task(queue_name, name, f"{target.url}/run", {"copy": 2}))
    eventually(lambda: target.named(name))
    after_delivery = backend.queue.enqueue(task(queue_name, name, f"{target.url}/run", {"copy": 3}))
    # A later task through the same queue: once it arrived, a duplicate would have too.
    backend.queue.enqueue(task(queue_name, f"{name}-barrier", f"{target.url}/run"))
    eventually(lambda: target.named(f"{name}-barrier"))

    assert (first, second, after_delivery) == (True, False, False)
    assert [json.loads(r.body) for r in target.named(name)] == [{"copy": 1}]


def test_enqueue_into_an_unknown_queue_is_unavailable(backend, unique, target):
    # A missing queue is a deployment fault: callers answer 503 (retry), never a 404 that blames
    # the request after its execution document was written.
    with pytest.raises(Unavailable):
        backend.queue.enqueue(task(f"nope-{unique}", f"t{unique}", f"{target.url}/run"))


def test_schedule_time_delays_the_push(backend, queue_name, target, unique):
    due = datetime.now(UTC) + timedelta(seconds=1.5)

    backend.queue.enqueue(task(queue_name, f"t{unique}-later", f"{target.url}/run", None, due))
    backend.queue.enqueue(task(queue_name, f"t{unique}-now", f"{target.url}/run"))
    eventually(lambda: target.named(f"t{unique}-now"))
    early = list(target.named(f"t{unique}-later"))
    checked_at = time.time()
    later = eventually(lambda: target.named(f"t{unique}-later"), timeout=10)[0]

    assert checked_at < due.timestamp()  # the check above ran before the due time...
    assert early == []  # ...and saw nothing
    arrived = target.answers[target.requests.index(later)][1]
    assert arrived >= due.timestamp() - 0.01
    assert float(header(later, "X-CloudTasks-TaskETA")) == pytest.approx(due.timestamp(), abs=1e-3)


def test_a_failing_target_is_retried_with_backoff(backend, queue_name, unique):
    server = ScriptedServer(503, 503)
    try:
        name = f"t{unique}"

        backend.queue.enqueue(task(queue_name, name, f"{server.url}/run"))

        requests = eventually(lambda: server.named(name) if len(server.requests) >= 3 else None)
        assert [s for s, _ in server.answers] == [503, 503, 200]
        assert [header(r, "X-CloudTasks-TaskRetryCount") for r in requests] == ["0", "1", "2"]
        gaps = [b - a for (_, a), (_, b) in itertools.pairwise(server.answers)]
        assert gaps[0] >= 0.2 - 0.05  # min_backoff, then doubled
        assert gaps[1] >= 0.4 - 0.05
    finally:
        server.stop()


def test_ping_answers(backend):
    assert backend.queue.ping() is None
