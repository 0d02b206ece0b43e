"""Read Cloud Tasks' X-CloudTasks-* headers into a typed attempt (who is calling, which try)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskAttempt:
    queue: str
    task: str
    retry_count: int
    execution_count: int
    eta: str


def task_attempt(headers: Mapping[str, str]) -> TaskAttempt:
    """Header names are matched case-insensitively (servers re-case them)."""
    lowered = {key.lower(): value for key, value in headers.items()}

    def number(name: str) -> int:
        value = lowered.get(name.lower(), "0")
        return int(value) if value.isdigit() else 0

    return TaskAttempt(
        queue=lowered.get("x-cloudtasks-queuename", ""),
        task=lowered.get("x-cloudtasks-taskname", ""),
        retry_count=number("X-CloudTasks-TaskRetryCount"),
        execution_count=number("X-CloudTasks-TaskExecutionCount"),
        eta=lowered.get("x-cloudtasks-tasketa", ""),
    )
