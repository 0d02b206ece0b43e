"""Deterministic bus and queue for service tests: they record and dedupe, a test drives delivery."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping

from playbook_core.domain.errors import NotFound
from playbook_core.ports import Message, QueueConfig, TaskRequest


class MemoryBus:
    def __init__(self) -> None:
        self.published: list[tuple[str, Message]] = []
        self._lock = threading.Lock()

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        message = Message(message_id=uuid.uuid4().hex, data=data, attributes=dict(attributes))
        with self._lock:
            self.published.append((topic, message))
        return message.message_id

    def ping(self) -> None:
        """Always reachable."""


class MemoryTaskQueue:
    """Cloud Tasks' name dedup without dispatch: `take()` hands out tasks in due order."""

    def __init__(self) -> None:
        self.queues: dict[str, QueueConfig] = {}
        self.tasks: list[TaskRequest] = []
        self._names: set[tuple[str, str]] = set()
        self._taken: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def create_queue(self, config: QueueConfig) -> None:
        self.queues[config.name] = config

    def enqueue(self, task: TaskRequest) -> bool:
        with self._lock:
            if task.queue not in self.queues:
                raise NotFound(f"no queue '{task.queue}'")
            key = (task.queue, task.name)
            if key in self._names:
                return False
            self._names.add(key)
            self.tasks.append(task)
            return True

    def take(self) -> TaskRequest | None:
        """The earliest-due task not yet taken (immediate tasks first, in enqueue order)."""
        with self._lock:
            pending = [t for t in self.tasks if (t.queue, t.name) not in self._taken]
            if not pending:
                return None
            first = min(pending, key=_due)
            self._taken.add((first.queue, first.name))
            return first

    def ping(self) -> None:
        """Always reachable."""


def _due(task: TaskRequest) -> float:
    return task.schedule_time.timestamp() if task.schedule_time else 0.0
