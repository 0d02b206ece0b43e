"""Backends for the contract suites: every port runs the same tests on each adapter set.

`embedded` always runs (SQLite file store, in-process bus and queue). `emulators` runs the Google
adapters against the official Firestore/Pub/Sub emulators and our Cloud Tasks emulator.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from emulators.cloud_tasks import start_tasks_emulator
from playbook_core.ports import DocumentStore, EventBus, QueueConfig, TaskQueue

BACKENDS = ["embedded", pytest.param("emulators", marks=pytest.mark.emulator)]


@dataclass
class Backend:
    name: str
    store: DocumentStore
    bus: EventBus
    queue: TaskQueue
    admin: Any  # knows how to create topics, push subscriptions and queues for this backend

    def subscribe(self, topic: str, push_url: str) -> None:
        self.admin.subscribe(topic, push_url)

    def create_queue(self, config: QueueConfig) -> None:
        self.admin.create_queue(config)


class _EmbeddedAdmin:
    def __init__(self, bus: Any, queue: Any) -> None:
        self.bus, self.queue = bus, queue

    def subscribe(self, topic: str, push_url: str) -> None:
        self.bus.subscribe(topic, push_url, max_delivery_attempts=10, backoff_scale=0.01)

    def create_queue(self, config: QueueConfig) -> None:
        self.queue.create_queue(config)


class _GoogleAdmin:
    def __init__(self, project: str, tasks_address: str) -> None:
        from google.cloud import pubsub_v1, tasks_v2
        from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

        self.project = project
        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        channel = grpc.insecure_channel(tasks_address)
        self.tasks = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))

    def subscribe(self, topic: str, push_url: str) -> None:
        from google.api_core.exceptions import AlreadyExists

        topic_path = self.publisher.topic_path(self.project, topic)
        with contextlib.suppress(AlreadyExists):
            self.publisher.create_topic(name=topic_path)
        name = self.subscriber.subscription_path(self.project, f"{topic}-{uuid.uuid4().hex[:8]}")
        self.subscriber.create_subscription(
            name=name, topic=topic_path, push_config={"push_endpoint": push_url}
        )

    def create_queue(self, config: QueueConfig) -> None:
        from google.cloud import tasks_v2
        from google.protobuf import duration_pb2

        parent = f"projects/{self.project}/locations/us-central1"
        self.tasks.create_queue(
            parent=parent,
            queue=tasks_v2.Queue(
                name=f"{parent}/queues/{config.name}",
                retry_config=tasks_v2.RetryConfig(
                    max_attempts=config.max_attempts,
                    min_backoff=duration_pb2.Duration(
                        seconds=int(config.min_backoff_s), nanos=int(config.min_backoff_s % 1 * 1e9)
                    ),
                    max_backoff=duration_pb2.Duration(
                        seconds=int(config.max_backoff_s), nanos=int(config.max_backoff_s % 1 * 1e9)
                    ),
                    max_doublings=config.max_doublings,
                ),
            ),
        )


@pytest.fixture(scope="session")
def tasks_emulator() -> Iterator[Any]:
    emulator = start_tasks_emulator(host="127.0.0.1", port=0, backoff_scale=1.0)
    yield emulator
    emulator.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path) -> Iterator[Backend]:
    if request.param == "embedded":
        from playbook_core.adapters.embedded import EmbeddedStore
        from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue

        store = EmbeddedStore(str(tmp_path / "store.sqlite3"))
        bus = InProcessBus()
        queue = InProcessTaskQueue()
        try:
            yield Backend("embedded", store, bus, queue, _EmbeddedAdmin(bus, queue))
        finally:
            bus.close()
            queue.close()
            store.close()
        return
    gcp = request.getfixturevalue("gcp_emulators")
    tasks = request.getfixturevalue("tasks_emulator")
    os.environ["FIRESTORE_EMULATOR_HOST"] = gcp["firestore"].host
    os.environ["PUBSUB_EMULATOR_HOST"] = gcp["pubsub"].host
    from playbook_core.adapters.cloud_tasks import CloudTasksQueue
    from playbook_core.adapters.firestore import FirestoreStore
    from playbook_core.adapters.pubsub import PubsubBus

    project = "demo-playbooks"
    yield Backend(
        "emulators",
        FirestoreStore(project),
        PubsubBus(project),
        CloudTasksQueue(project, "us-central1", emulator_host=tasks.address),
        _GoogleAdmin(project, tasks.address),
    )


@pytest.fixture
def unique() -> str:
    """A fresh id suffix, so tests sharing one emulator never see each other's documents."""
    return uuid.uuid4().hex[:12]
