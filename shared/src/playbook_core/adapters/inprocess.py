"""EventBus and TaskQueue inside the process, pushing over HTTP the way Pub/Sub and Cloud Tasks do.

The embedded backend runs the same functions behind the same gateway as the emulator stack, so
the wire formats (Pub/Sub push JSON, X-CloudTasks-* headers, the OIDC bearer token of the push
or task identity), redelivery with backoff, dead letters and task-name dedup must match: the
contract suites run on both. `drain()` makes unit and
service tests deterministic; `published`/`enqueued` let them look without a server.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from playbook_core.adapters.dispatcher import Dispatcher
from playbook_core.adapters.service_tokens import OidcToken, function_audience
from playbook_core.domain.errors import AlreadyExists, Unavailable
from playbook_core.ports import Message, QueueConfig, TaskRequest

_TASK_NAME = re.compile(r"[A-Za-z0-9_-]{1,500}")  # Cloud Tasks' task id alphabet
_HISTORY = 10_000  # bounded: the local stack runs for days
_log = logging.getLogger(__name__)


def _post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> int | None:
    """The answer's status, or None when there was none (refused, reset, timed out)."""
    try:
        return client.post(url, content=body, headers=headers).status_code
    except httpx.HTTPError as exc:
        _log.warning("push to %s failed: %s", url, exc)
        return None


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class _Subscription:
    name: str
    push_url: str
    max_delivery_attempts: int
    backoff_scale: float
    dead_letter: str | None
    oidc: OidcToken | None = None


class _Pusher:
    """What the bus and the queue share: pushes on one HTTP client, timed by one dispatcher."""

    def __init__(self, what: str, name: str, timeout: float) -> None:
        self._what = what
        self._lock = threading.Lock()
        self._closed = False
        self._http = httpx.Client(trust_env=False, timeout=timeout)  # no proxy for local pushes
        self._dispatcher = Dispatcher(name)

    def ping(self) -> None:
        if self._closed:
            raise Unavailable(f"the in-process {self._what} is closed")

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every push due within `timeout` s (retries included) has been answered."""
        self._dispatcher.drain(timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._dispatcher.close()
        self._http.close()


class InProcessBus(_Pusher):
    def __init__(self, project: str = "demo-playbooks", *, ack_deadline_s: float = 10.0) -> None:
        super().__init__("bus", "bus", ack_deadline_s)
        self._project = project
        self._subscriptions: dict[str, list[_Subscription]] = {}
        self._ids = itertools.count(1)
        self.published: deque[tuple[str, Message]] = deque(maxlen=_HISTORY)

    def subscribe(
        self,
        topic: str,
        push_url: str,
        max_delivery_attempts: int = 10,
        backoff_scale: float = 1.0,
        dead_letter: str | None = None,
        *,
        name: str | None = None,
        oidc: OidcToken | None = None,
    ) -> str:
        """A push subscription; returns its name. Messages published earlier are not replayed.

        With `oidc`, every push carries that account's (unsigned, local) ID token, as Pub/Sub's
        authenticated push does.
        """
        if max_delivery_attempts < 1:
            raise ValueError("max_delivery_attempts must be at least 1")
        with self._lock:
            subscriptions = self._subscriptions.setdefault(topic, [])
            chosen = name or f"{topic}-push-{len(subscriptions) + 1}"
            subscriptions.append(
                _Subscription(
                    chosen, push_url, max_delivery_attempts, backoff_scale, dead_letter, oidc
                )
            )
        return chosen

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        if not isinstance(data, bytes):
            raise TypeError("message data must be bytes")
        attrs = dict(attributes)
        pairs: list[tuple[object, object]] = list(attrs.items())  # callers are not all typed
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs):
            raise TypeError("message attributes must map str to str")
        with self._lock:
            if self._closed:
                raise Unavailable("the in-process bus is closed")
            message = Message(str(next(self._ids)), data, attrs)
            self.published.append((topic, message))
            subscriptions = list(self._subscriptions.get(topic, ()))
        published_at = datetime.now(UTC)
        for subscription in subscriptions:  # a topic without subscriptions drops it, as Pub/Sub
            deliver = functools.partial(self._deliver, subscription, message, published_at, 1)
            self._dispatcher.schedule(time.time(), deliver)
        return message.message_id

    def _deliver(
        self, subscription: _Subscription, message: Message, published_at: datetime, attempt: int
    ) -> None:
        stamp = _rfc3339(published_at)
        wrapper: dict[str, Any] = {
            "message": {
                "data": base64.b64encode(message.data).decode("ascii"),
                "attributes": message.attributes,
                "messageId": message.message_id,
                "message_id": message.message_id,  # Pub/Sub sends both spellings
                "publishTime": stamp,
                "publish_time": stamp,
            },
            "subscription": f"projects/{self._project}/subscriptions/{subscription.name}",
        }
        if subscription.dead_letter:
            wrapper["deliveryAttempt"] = attempt  # only subscriptions with a dead-letter policy
        body = json.dumps(wrapper).encode()
        headers = {"Content-Type": "application/json"}
        if subscription.oidc is not None:
            headers["Authorization"] = subscription.oidc.authorization(
                subscription.push_url, time.time()
            )
        status = _post(self._http, subscription.push_url, body, headers)
        if status is not None and 200 <= status < 300:
            return
        if attempt < subscription.max_delivery_attempts:
            # Pub/Sub's push backoff: 10 s doubling per failure, capped at 600 s.
            delay = min(10.0 * 2 ** (attempt - 1), 600.0) * subscription.backoff_scale
            again = functools.partial(
                self._deliver, subscription, message, published_at, attempt + 1
            )
            self._dispatcher.schedule(time.time() + delay, again)
        elif subscription.dead_letter:
            self.publish(
                subscription.dead_letter,
                message.data,
                {
                    **message.attributes,
                    "CloudPubSubDeadLetterSourceDeliveryCount": str(attempt),
                    "CloudPubSubDeadLetterSourceSubscription": subscription.name,
                    "CloudPubSubDeadLetterSourceSubscriptionProject": self._project,
                    "CloudPubSubDeadLetterSourceTopicPublishTime": stamp,
                },
            )
        else:
            _log.warning("dropping message %s after %s attempts", message.message_id, attempt)


def backoff(config: QueueConfig, failures: int) -> float:
    """Seconds after the `failures`-th failed attempt: Cloud Tasks' documented RetryConfig curve."""
    done = failures - 1  # the first retry waits min_backoff itself
    step = config.min_backoff_s * 2 ** min(done, config.max_doublings)
    if done > config.max_doublings:  # past the doublings the interval grows linearly
        step = config.min_backoff_s * 2**config.max_doublings * (done - config.max_doublings + 1)
    return float(min(step, config.max_backoff_s))


@dataclass
class _Task:
    request: TaskRequest
    config: QueueConfig
    body: bytes
    eta: float
    dispatches: int = 0
    executions: int = 0  # answers other than 5xx: X-CloudTasks-TaskExecutionCount
    previous: int | None = None  # the last answer's status, 0 when there was none


@dataclass(eq=False)
class _Lane:
    """A queue's pushes awaiting an answer, and its due tasks waiting for one of them to end."""

    busy: int = 0
    waiting: deque[_Task] = field(default_factory=deque)  # due order


class InProcessTaskQueue(_Pusher):
    """Cloud Tasks in the process; the TaskQueue port plus `create_queue` and `drain`.

    With `service_account_email`, tasks carry its ID token as CloudTasksQueue's do (audience: the
    target function's URL under `audience_base`, else the task URL). A queue with
    `max_concurrent_dispatches` has at most that many pushes awaiting an answer; its due tasks
    beyond that wait, in due order, without holding one of the dispatcher's workers.
    """

    def __init__(
        self,
        backoff_scale: float = 1.0,
        *,
        dispatch_deadline_s: float = 600.0,
        service_account_email: str | None = None,
        audience_base: str | None = None,
    ) -> None:
        super().__init__("task queue", "tasks", dispatch_deadline_s)
        self._scale = backoff_scale
        self._service_account, self._audience_base = service_account_email, audience_base
        self._queues: dict[str, QueueConfig] = {}
        self._names: dict[str, set[str]] = {}  # every name ever used stays taken, as in Cloud Tasks
        self._lanes: dict[str, _Lane] = {}
        self.enqueued: deque[TaskRequest] = deque(maxlen=_HISTORY)

    def create_queue(self, config: QueueConfig) -> None:
        if config.max_attempts < 1 or config.max_doublings < 0:
            raise ValueError("a queue needs max_attempts >= 1 and max_doublings >= 0")
        if not 0 <= config.min_backoff_s <= config.max_backoff_s:
            raise ValueError("min_backoff must be between 0 and max_backoff")
        if config.max_concurrent_dispatches is not None and config.max_concurrent_dispatches < 1:
            raise ValueError("max_concurrent_dispatches must be at least 1")
        with self._lock:
            if config.name in self._queues:
                raise AlreadyExists(f"queue {config.name} already exists")
            self._queues[config.name] = config
            self._names[config.name] = set()
            self._lanes[config.name] = _Lane()

    def enqueue(self, task: TaskRequest) -> bool:
        if not _TASK_NAME.fullmatch(task.name):
            raise ValueError(f"invalid task name {task.name!r}")
        if task.schedule_time is not None and task.schedule_time.utcoffset() is None:
            raise ValueError("schedule_time must be an aware datetime")
        body = json.dumps(task.body).encode()
        eta = time.time() if task.schedule_time is None else task.schedule_time.timestamp()
        with self._lock:
            if self._closed:
                raise Unavailable("the in-process task queue is closed")
            config = self._queues.get(task.queue)
            if config is None:
                raise Unavailable(f"queue {task.queue} does not exist")  # wiring, not the caller
            if task.name in self._names[task.queue]:
                return False
            self._names[task.queue].add(task.name)
            self.enqueued.append(task)
        live = _Task(task, config, body, eta)
        self._dispatcher.schedule(eta, functools.partial(self._dispatch, live))
        return True

    def _dispatch(self, live: _Task) -> None:
        """At the task's due time: push it, or leave it to the next of its queue's pushes to end."""
        lane, limit = self._lanes[live.request.queue], live.config.max_concurrent_dispatches
        with self._lock:
            if limit is not None and lane.busy >= limit:
                lane.waiting.append(live)
                return
            lane.busy += 1
        self._push(live, lane)

    def _push(self, live: _Task, lane: _Lane) -> None:
        """One attempt, holding one of the lane's places; it hands the place to the next waiting."""
        try:
            self._attempt(live)
        finally:
            with self._lock:
                waiting = lane.waiting.popleft() if lane.waiting else None
                if waiting is None:
                    lane.busy -= 1
            # Scheduled before this job returns, so drain() never sees a moment without work.
            if waiting is not None:
                self._dispatcher.schedule(time.time(), functools.partial(self._push, waiting, lane))

    def _attempt(self, live: _Task) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Google-Cloud-Tasks",
            "X-CloudTasks-QueueName": live.request.queue,
            "X-CloudTasks-TaskName": live.request.name,
            "X-CloudTasks-TaskRetryCount": str(live.dispatches),
            "X-CloudTasks-TaskExecutionCount": str(live.executions),
            "X-CloudTasks-TaskETA": f"{live.eta:.6f}",
        }
        if live.previous is not None:
            headers["X-CloudTasks-TaskPreviousResponse"] = str(live.previous)
        if self._service_account:
            url = live.request.url
            oidc = OidcToken(self._service_account, function_audience(url, self._audience_base))
            headers["Authorization"] = oidc.authorization(url, time.time())
        live.dispatches += 1
        status = _post(self._http, live.request.url, live.body, headers)
        if status is not None and 200 <= status < 300:
            return
        if status is not None and status < 500:  # Google does not count 5xx as executions
            live.executions += 1
        live.previous = status or 0
        if live.dispatches >= live.config.max_attempts:
            _log.warning("task %s gave up after %s attempts", live.request.name, live.dispatches)
            return
        live.eta = time.time() + backoff(live.config, live.dispatches) * self._scale
        self._dispatcher.schedule(live.eta, functools.partial(self._dispatch, live))
