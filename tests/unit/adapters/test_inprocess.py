"""In-process bus and queue beyond the contract: drain(), dead letters, giving up, backoff curve,
queue concurrency limits."""

import base64
import json
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


class HeldTarget:
    """An HTTP target that holds each request to `/held…` until `answer()` lets it go.

    Per X-CloudTasks-QueueName it counts requests arrived, in flight (held or not), answered and
    the most ever in flight at once, and (`order`) the task names as they arrived. A request stops
    counting as in flight before its answer is sent, so `peak` never overstates what the pusher
    allowed.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._tickets, self._open = 0, False
        self.arrived: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.order: defaultdict[str, list[str]] = defaultdict(list)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner._serve(self.headers, held=self.path.startswith("/held"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _serve(self, headers, *, held: bool) -> None:
        queue = headers["X-CloudTasks-QueueName"]
        with self._cond:
            self.arrived[queue] += 1
            self.in_flight[queue] += 1
            self.peak[queue] = max(self.peak[queue], self.in_flight[queue])
            self.order[queue].append(headers["X-CloudTasks-TaskName"])
            self._cond.notify_all()
            if held:
                self._cond.wait_for(lambda: self._tickets or self._open)
                if not self._open:
                    self._tickets -= 1
            self.in_flight[queue] -= 1
            self.answered[queue] += 1
            self._cond.notify_all()

    def wait(self, condition) -> None:
        """Block until `condition(self)` holds (re-checked at every arrival and answer)."""
        with self._cond:
            assert self._cond.wait_for(lambda: condition(self), timeout=10), "never happened"

    def answer(self) -> None:
        """Let one held request (whichever wakes first) answer 200."""
        with self._cond:
            self._tickets += 1
            self._cond.notify_all()

    def open(self) -> None:
        """Hold nothing from now on."""
        with self._cond:
            self._open = True
            self._cond.notify_all()

    def stop(self) -> None:
        self.open()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def held():
    target = HeldTarget()
    yield target
    target.stop()


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


def test_a_queue_has_at_most_its_limit_of_pushes_awaiting_an_answer(queue, held):
    queue.create_queue(QueueConfig("q", max_concurrent_dispatches=2))
    queue.create_queue(QueueConfig("marker"))
    for n in range(6):
        queue.enqueue(TaskRequest("q", f"t{n}", f"{held.url}/held", {}))
    # Due after the six: without the limit, all six pushes would have started before this one.
    queue.enqueue(TaskRequest("marker", "m", f"{held.url}/free", {}))
    held.wait(lambda t: t.arrived["marker"] == 1 and t.in_flight["q"] == 2)
    assert held.arrived["q"] == 2

    for answered in range(6):  # one answer at a time: each frees the place of the next task
        held.wait(lambda t, n=answered: (t.answered["q"], t.in_flight["q"]) == (n, min(2, 6 - n)))
        held.answer()
    queue.drain(5)

    assert held.arrived["q"] == 6
    assert held.peak["q"] == 2


def test_a_full_queue_does_not_hold_up_another(queue, held):
    queue.create_queue(QueueConfig("busy", max_concurrent_dispatches=2))
    queue.create_queue(QueueConfig("other"))
    # More tasks than the dispatcher has workers: a waiting task must not take one.
    for n in range(10):
        queue.enqueue(TaskRequest("busy", f"b{n}", f"{held.url}/held", {}))
    held.wait(lambda t: t.in_flight["busy"] == 2)

    queue.enqueue(TaskRequest("other", "o1", f"{held.url}/free", {}))
    held.wait(lambda t: t.arrived["other"] == 1)

    assert (held.arrived["busy"], held.in_flight["busy"]) == (2, 2)  # still held, none answered
    held.open()
    queue.drain(5)  # it waits for the tasks still waiting for a place
    assert held.arrived["busy"] == 10


def test_a_concurrency_limit_below_one_is_refused(queue):
    with pytest.raises(ValueError, match="max_concurrent_dispatches"):
        queue.create_queue(QueueConfig("q", max_concurrent_dispatches=0))
