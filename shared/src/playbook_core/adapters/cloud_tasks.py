"""Cloud Tasks behind the TaskQueue port: named HTTP tasks, so a repeated enqueue is a no-op."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import timedelta

from google.api_core import exceptions as gexc
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from playbook_core.adapters import google_errors
from playbook_core.adapters.grpc_clients import LazyClient, retry_on
from playbook_core.adapters.service_tokens import function_audience
from playbook_core.domain import errors
from playbook_core.ports import QueueConfig, TaskRequest


def _queue_missing(what: str) -> errors.PlaybooksError:
    # The queue: a deployment fault, not the caller's (retry: 503).
    return errors.Unavailable(f"{what}: queue not found")


def _translated(what: str) -> AbstractContextManager[None]:
    return google_errors.translated("cloud tasks", what, _queue_missing)


class CloudTasksQueue:
    """TaskQueue on Cloud Tasks, or on our emulator when `emulator_host` (host:port) is given.

    The official client ignores emulator variables, so the emulator gets an explicit insecure
    gRPC channel. With `service_account_email`, tasks carry an OIDC token for that account; its
    audience is the target function's own URL (`<audience_base>/<function>`, what the function
    checks), or the task URL (Cloud Tasks' default) for a URL outside `audience_base`.
    """

    def __init__(
        self,
        project: str,
        location: str,
        emulator_host: str | None = None,
        service_account_email: str | None = None,
        *,
        audience_base: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._project, self._location = project, location
        self._service_account = service_account_email
        self._audience_base = audience_base
        self._timeout = timeout
        self._client = LazyClient(tasks_v2.CloudTasksClient, CloudTasksGrpcTransport, emulator_host)
        # Safe to retry: tasks are named, so a create that landed comes back as AlreadyExists.
        self._retry = retry_on(gexc.ServiceUnavailable, gexc.DeadlineExceeded, timeout=timeout)

    def client(self) -> tasks_v2.CloudTasksClient:
        return self._client.get()

    def queue_path(self, queue: str) -> str:
        return f"projects/{self._project}/locations/{self._location}/queues/{queue}"

    def enqueue(self, task: TaskRequest) -> bool:
        parent = self.queue_path(task.queue)
        request = tasks_v2.HttpRequest(
            http_method=tasks_v2.HttpMethod.POST,
            url=task.url,
            headers={"Content-Type": "application/json"},
            body=json.dumps(task.body, separators=(",", ":")).encode(),
        )
        if self._service_account:
            request.oidc_token = tasks_v2.OidcToken(
                service_account_email=self._service_account,
                audience=function_audience(task.url, self._audience_base) or "",
            )
        created = tasks_v2.Task(name=f"{parent}/tasks/{task.name}", http_request=request)
        if task.schedule_time is not None:
            created.schedule_time = task.schedule_time
        with _translated(f"task {task.name}"):
            try:
                self.client().create_task(
                    parent=parent, task=created, retry=self._retry, timeout=self._timeout
                )
            except gexc.AlreadyExists:
                return False  # same name: this attempt was enqueued (or ran) already
        return True

    def ping(self) -> None:
        # One page of one queue is the cheapest call that needs the service; a refusal of
        # permission still proves it answered (the enqueuer may not be allowed to list).
        parent = f"projects/{self._project}/locations/{self._location}"
        try:
            with _translated("queue listing"):
                self.client().list_queues(
                    request={"parent": parent, "page_size": 1},
                    retry=None, timeout=min(self._timeout, 2.0),
                )  # fmt: skip
        except errors.PlaybooksError as exc:
            if not isinstance(exc.__cause__, gexc.PermissionDenied):
                raise

    def ensure_queue(self, config: QueueConfig) -> None:
        """Create the queue, or bring an existing one's retry policy to `config` (idempotent).

        `max_concurrent_dispatches` is set (and updated) only when given; unset, the service's
        default applies to a new queue and an existing queue keeps its limit.
        """
        queue = tasks_v2.Queue(
            name=self.queue_path(config.name),
            retry_config=tasks_v2.RetryConfig(
                max_attempts=config.max_attempts,
                min_backoff=timedelta(seconds=config.min_backoff_s),
                max_backoff=timedelta(seconds=config.max_backoff_s),
                max_doublings=config.max_doublings,
            ),
        )
        paths = ["retry_config"]
        if config.max_concurrent_dispatches is not None:
            queue.rate_limits = tasks_v2.RateLimits(
                max_concurrent_dispatches=config.max_concurrent_dispatches
            )
            paths.append("rate_limits.max_concurrent_dispatches")  # not the other rate limits
        parent = f"projects/{self._project}/locations/{self._location}"
        with _translated(f"queue {config.name}"):
            try:
                self.client().create_queue(
                    parent=parent, queue=queue, retry=self._retry, timeout=self._timeout
                )
            except gexc.AlreadyExists:
                self.client().update_queue(
                    queue=queue,
                    update_mask={"paths": paths},
                    retry=self._retry,
                    timeout=self._timeout,
                )
