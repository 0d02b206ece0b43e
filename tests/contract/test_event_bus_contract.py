"""EventBus contract: a publish reaches push subscribers as Pub/Sub's JSON wrapper, and a failed
push is delivered again."""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from playbook_core.testing import Recorded, eventually


class ScriptedServer:
    """Records requests like RecordingServer, answering scripted statuses in order, then 200."""

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


@pytest.fixture
def receiver():
    server = ScriptedServer()
    yield server
    server.stop()


def message_of(request):
    return json.loads(request.body)


def test_publish_is_pushed_with_data_and_attributes(backend, unique, receiver):
    topic = f"events-{unique}"
    backend.subscribe(topic, f"{receiver.url}/on_event_published/")
    payload = {"eventId": "shp_1", "name": "order.created"}

    message_id = backend.bus.publish(
        topic, json.dumps(payload).encode(), {"orgId": "org_a", "name": "order.created"}
    )

    request = eventually(lambda: receiver.requests)[0]
    wrapper = message_of(request)
    assert request.method == "POST"
    assert request.path == "/on_event_published/"
    assert json.loads(base64.b64decode(wrapper["message"]["data"])) == payload
    assert wrapper["message"]["attributes"] == {"orgId": "org_a", "name": "order.created"}
    assert wrapper["message"]["messageId"] == message_id
    assert wrapper["message"]["publishTime"]
    assert wrapper["subscription"].startswith("projects/demo-playbooks/subscriptions/")


def test_every_subscription_of_a_topic_gets_the_message(backend, unique, receiver):
    topic = f"fanout-{unique}"
    backend.subscribe(topic, f"{receiver.url}/first/")
    backend.subscribe(topic, f"{receiver.url}/second/")

    backend.bus.publish(topic, b"{}", {"orgId": "org_a"})

    requests = eventually(lambda: receiver.requests if len(receiver.requests) >= 2 else None)
    assert sorted(r.path for r in requests) == ["/first/", "/second/"]


def test_a_failed_push_is_delivered_again(backend, unique):
    server = ScriptedServer(503)
    try:
        topic = f"retry-{unique}"
        backend.subscribe(topic, f"{server.url}/on_event_published/")

        message_id = backend.bus.publish(topic, b'{"n": 1}', {"orgId": "org_a"})

        eventually(lambda: len(server.requests) >= 2, timeout=30)
        first, second = (message_of(r)["message"] for r in server.requests[:2])
        assert first["messageId"] == second["messageId"] == message_id
        assert base64.b64decode(second["data"]) == b'{"n": 1}'
        assert [status for status, _ in server.answers[:2]] == [503, 200]
    finally:
        server.stop()


def test_ping_answers(backend):
    assert backend.bus.ping() is None
