"""The push relay on the official Pub/Sub emulator: more than the emulator's 2 pushes at once.

The emulator runs two push loops per subscription; the relay's pullers deliver alongside them in
the same wire format, with the same acks, retries and dead-lettering.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from emulators import pubsub_push
from playbook_core.testing import RecordingServer, eventually

PROJECT = "demo-playbooks"
pytestmark = pytest.mark.emulator


class SlowEndpoint:
    """Answers every push after `delay_s`, refusing each message's first `refusals` deliveries."""

    def __init__(self, delay_s: float, refusals: int = 0) -> None:
        self.in_flight = self.most_in_flight = 0
        self.deliveries: Counter[str] = Counter()
        self.acked: list[str] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                message_id = body["message"]["messageId"]
                with owner._lock:
                    owner.in_flight += 1
                    owner.most_in_flight = max(owner.most_in_flight, owner.in_flight)
                    owner.deliveries[message_id] += 1
                    refused = owner.deliveries[message_id] <= refusals
                time.sleep(delay_s)
                with owner._lock:
                    owner.in_flight -= 1
                    if not refused:
                        owner.acked.append(message_id)
                self.send_response(503 if refused else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/fn/"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def relay(emulator_env):
    started = pubsub_push.PushRelay(emulator_env["pubsub"].host).start()
    yield started
    started.stop()


def publish(bus, topic, count):
    return {bus.publish(topic, json.dumps({"n": n}).encode(), {"n": str(n)}) for n in range(count)}


def test_a_busy_subscription_gets_more_than_the_emulators_two_pushes_at_once(bus, relay):
    endpoint = SlowEndpoint(delay_s=0.4)
    unique = time.time_ns()
    topic = f"relay-busy-{unique}"
    try:
        bus.ensure_push_subscription(
            topic, f"relay-busy-{unique}", pubsub_push.relay_url(relay.url, endpoint.url)
        )
        sent = publish(bus, topic, 24)
        eventually(lambda: len(endpoint.acked) >= 24, timeout=30)
        time.sleep(1.5)  # a message delivered twice would arrive within its 1 s retry
    finally:
        endpoint.stop()
    assert endpoint.most_in_flight > 2
    assert endpoint.most_in_flight <= pubsub_push.PULLERS + 2
    assert sorted(endpoint.acked) == sorted(sent)  # each acked once: none lost, none repeated


def test_a_refused_pulled_push_comes_back_and_dead_letters_after_the_most_attempts(bus, relay):
    """Refused once, each message comes back and is acked; refused always, it is dead-lettered."""
    unique = time.time_ns()
    flaky, refusing = SlowEndpoint(delay_s=0.05, refusals=1), SlowEndpoint(0.0, refusals=99)
    dead = RecordingServer().start()
    try:
        bus.ensure_push_subscription(
            f"relay-flaky-{unique}", f"relay-flaky-{unique}",
            pubsub_push.relay_url(relay.url, flaky.url),
        )  # fmt: skip
        bus.ensure_push_subscription(
            f"relay-refusing-{unique}", f"relay-refusing-{unique}",
            pubsub_push.relay_url(relay.url, refusing.url),
            dead_letter_topic=f"relay-dead-{unique}", max_delivery_attempts=5,
        )  # fmt: skip
        bus.ensure_push_subscription(
            f"relay-dead-{unique}",
            f"relay-dead-{unique}",
            pubsub_push.relay_url(relay.url, dead.url),
        )
        sent = publish(bus, f"relay-flaky-{unique}", 12)
        [doomed] = publish(bus, f"relay-refusing-{unique}", 1)
        eventually(lambda: len(flaky.acked) >= 12, timeout=30)
        [dead_lettered] = eventually(lambda: dead.requests, timeout=30)
    finally:
        flaky.stop()
        refusing.stop()
        dead.stop()
    assert sorted(flaky.acked) == sorted(sent)
    assert set(flaky.deliveries.values()) == {2}
    assert refusing.deliveries[doomed] == 5
    attributes = json.loads(dead_lettered.body)["message"]["attributes"]
    assert attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"


@pytest.mark.parametrize(
    ("data", "attributes"),
    [(b'{"n": 1}', {"orgId": "org_a"}), (b"", {"k": "v"}), (b"\xff\x00 binary", {}),
     ("é ✓".encode(), {"a": "1", "b": "two words"})],
)  # fmt: skip
def test_a_pulled_message_is_pushed_in_the_emulators_own_wire_format(
    emulator_env, bus, data, attributes
):
    """The emulator pushes one copy; the relay's format of a pulled copy is byte-for-byte JSON-equal."""
    recorder = RecordingServer().start()
    subscriber = bus.subscriber()
    unique = time.time_ns()
    topic = f"relay-format-{unique}"
    pulled_name = subscriber.subscription_path(PROJECT, f"relay-pulled-{unique}")
    try:
        bus.ensure_push_subscription(topic, f"relay-pushed-{unique}", f"{recorder.url}/direct/")
        subscriber.create_subscription(name=pulled_name, topic=bus.topic_path(topic))
        bus.publish(topic, data, attributes)
        [pushed] = eventually(lambda: recorder.requests, timeout=15)
        [received] = eventually(
            lambda: subscriber.pull(subscription=pulled_name, max_messages=1).received_messages
        )
    finally:
        recorder.stop()
    expected = json.loads(pushed.body) | {"subscription": pulled_name}
    assert json.loads(pubsub_push.push_body(pulled_name, received)) == expected


def test_pullers_hand_a_message_back_once_the_subscription_points_elsewhere(bus, relay):
    first, elsewhere = SlowEndpoint(delay_s=0.0), RecordingServer().start()
    unique = time.time_ns()
    topic, subscription = f"relay-moved-{unique}", f"relay-moved-{unique}"
    try:
        bus.ensure_push_subscription(
            topic, subscription, pubsub_push.relay_url(relay.url, first.url)
        )
        publish(bus, topic, 1)  # the first push starts the pullers
        eventually(lambda: first.acked, timeout=15)
        bus.ensure_push_subscription(topic, subscription, f"{elsewhere.url}/direct/")
        later = publish(bus, topic, 6)
        eventually(lambda: len(elsewhere.requests) >= 6, timeout=30)
    finally:
        first.stop()
        elsewhere.stop()
    assert len(first.acked) == 1
    moved = {json.loads(r.body)["message"]["messageId"] for r in elsewhere.requests}
    assert moved == later
    assert all(r.header("Authorization") is None for r in elsewhere.requests)  # not via the relay
