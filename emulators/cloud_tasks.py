"""Cloud Tasks stand-in: Google ships no emulator, so we serve the real gRPC API and push tasks.

A task with `http_request.oidc_token` is pushed with `Authorization: Bearer <ID token>` as Google
does, for `oidc_token.audience` or else the task URL; the token is unsigned (`alg: none`), which
only functions running with PLAYBOOKS_LOCAL_OIDC accept.

A queue has at most `rate_limits.max_concurrent_dispatches` pushes awaiting an answer; due tasks
beyond that wait in due order for one of them to end (RunTask's push goes regardless). Each push
runs on a thread of its own, so the queues' limits are the only bound and a saturated queue never
holds up another. `max_dispatches_per_second` and `max_burst_size` are stored, not enforced.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import grpc  # type: ignore[import-untyped]  # grpcio ships no type information
import httpx
from google.auth import crypt
from google.cloud import tasks_v2
from google.protobuf import field_mask_pb2
from google.rpc import status_pb2  # type: ignore[import-untyped]  # no type information

from emulators import grpc_server as gs
from playbook_core.adapters.dispatcher import DueTimer
from playbook_core.adapters.service_tokens import OidcToken

T = tasks_v2
SERVICE = "google.cloud.tasks.v2.CloudTasks"
RPCS: gs.RpcTable = {
    "ListQueues": (T.ListQueuesRequest, T.ListQueuesResponse),
    "GetQueue": (T.GetQueueRequest, T.Queue),
    "CreateQueue": (T.CreateQueueRequest, T.Queue),
    "UpdateQueue": (T.UpdateQueueRequest, T.Queue),
    "DeleteQueue": (T.DeleteQueueRequest, None),
    "PurgeQueue": (T.PurgeQueueRequest, T.Queue),
    "PauseQueue": (T.PauseQueueRequest, T.Queue),
    "ResumeQueue": (T.ResumeQueueRequest, T.Queue),
    "ListTasks": (T.ListTasksRequest, T.ListTasksResponse),
    "GetTask": (T.GetTaskRequest, T.Task),
    "CreateTask": (T.CreateTaskRequest, T.Task),
    "DeleteTask": (T.DeleteTaskRequest, None),
    "RunTask": (T.RunTaskRequest, T.Task),
}
_QUEUE = re.compile(r"(projects/[^/]+/locations/[^/]+)/queues/[A-Za-z0-9-]{1,100}")
_TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,500}")
_EDITABLE = ["rate_limits", "retry_config", "http_target", "stackdriver_logging_config"]
_DEADLINE_RANGE = (timedelta(seconds=15), timedelta(minutes=30))
_Code = grpc.StatusCode
# proto-plus enums derive from an untyped base, so mypy sees their members as plain ints;
# calling the enum class yields values typed as the enum.
_RUNNING, _PAUSED = T.Queue.State(T.Queue.State.RUNNING), T.Queue.State(T.Queue.State.PAUSED)
_BASIC = T.Task.View(T.Task.View.BASIC)
_log = logging.getLogger(__name__)


def _defaults() -> tasks_v2.Queue:
    """What Cloud Tasks fills in for HTTP queues when a field is left unset."""
    return T.Queue(
        rate_limits=T.RateLimits(
            max_dispatches_per_second=500, max_burst_size=100, max_concurrent_dispatches=1000
        ),
        retry_config=T.RetryConfig(
            max_attempts=100,
            min_backoff=timedelta(seconds=0.1),
            max_backoff=timedelta(hours=1),
            max_doublings=16,
        ),
    )


def backoff(retry: tasks_v2.RetryConfig, failures: int) -> float:
    """Seconds to wait after the `failures`-th failed attempt (RetryConfig's documented curve)."""
    base, doublings = retry.min_backoff.total_seconds(), retry.max_doublings
    done = failures - 1  # the first retry waits min_backoff itself
    step = base * 2 ** min(done, doublings)
    if done > doublings:  # past the doublings the interval grows linearly by the last doubled one
        step = base * 2**doublings * (done - doublings + 1)
    return float(min(step, retry.max_backoff.total_seconds()))


@dataclass(eq=False)
class _Live:
    task: tasks_v2.Task
    queue: str
    generation: int = 0  # bumped by RunTask so an older attempt's failure does not reschedule
    in_flight: int = 0  # pushes awaiting an answer; RunTask may add one to a running push
    executions: int = 0  # responses other than 5xx: X-CloudTasks-TaskExecutionCount
    previous: gs.HttpOutcome | None = None


@dataclass(eq=False)
class _Lane:
    """A queue's pushes awaiting an answer, and its due tasks waiting for one of them to end."""

    busy: int = 0
    # (name, generation, dispatch_count) in due order; a push since then makes an entry stale
    waiting: deque[tuple[str, int, int]] = field(default_factory=deque)


class CloudTasksService:
    def __init__(self, *, backoff_scale: float = 1.0, signer: crypt.Signer | None = None) -> None:
        self._scale = backoff_scale
        self._signer = signer  # signs the OIDC tokens (deployed-shape tests); None: unsigned
        self._queues: dict[str, tasks_v2.Queue] = {}
        self._live: dict[str, _Live] = {}
        self._gone: set[str] = set()  # executed/deleted names stay taken, as in Cloud Tasks
        # By queue name; kept after DeleteQueue, so pushes still running count where they started.
        self._lanes: defaultdict[str, _Lane] = defaultdict(_Lane)
        self._cond = threading.Condition()
        self._closed = False
        self._timer = DueTimer(self._cond, self._on_due, time.time, "tasks-dispatch")
        # No proxy for local pushes; no cap on connections either, as httpx's default of 100
        # would queue one queue's pushes behind another's (the queues' limits bound them).
        self._http = httpx.Client(
            trust_env=False, limits=httpx.Limits(max_connections=None, max_keepalive_connections=20)
        )

    def generic_handler(self) -> grpc.GenericRpcHandler:
        return gs.service_handler(SERVICE, self, RPCS)

    def start(self) -> None:
        self._timer.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
        self._timer.close()
        # In-flight pushes may wait up to their dispatch_deadline; closing the client ends them,
        # and their threads are daemons, so none holds the process at exit.
        self._http.close()

    # --- queues -------------------------------------------------------------------------------

    def create_queue(self, request: T.CreateQueueRequest, context: grpc.ServicerContext) -> T.Queue:
        queue = T.Queue(request.queue)
        match = _QUEUE.fullmatch(queue.name)
        if not match or match.group(1) != request.parent:
            gs.abort(
                context, _Code.INVALID_ARGUMENT, f"queue name must be {request.parent}/queues/ID"
            )
        with self._cond:
            if queue.name in self._queues:
                gs.abort(context, _Code.ALREADY_EXISTS, f"queue {queue.name} already exists")
            queue.state, queue.purge_time = _RUNNING, None  # output-only fields
            return T.Queue(self._store_queue(queue, context))

    def get_queue(self, request: T.GetQueueRequest, context: grpc.ServicerContext) -> T.Queue:
        with self._cond:
            return T.Queue(self._queue(request.name, context))

    def list_queues(
        self, request: T.ListQueuesRequest, context: grpc.ServicerContext
    ) -> T.ListQueuesResponse:
        with self._cond:
            names = sorted(n for n in self._queues if n.startswith(request.parent + "/queues/"))
            shown, token = gs.page(names, request.page_size, request.page_token, context)
            return T.ListQueuesResponse(
                queues=[self._queues[n] for n in shown], next_page_token=token
            )

    def update_queue(self, request: T.UpdateQueueRequest, context: grpc.ServicerContext) -> T.Queue:
        with self._cond:  # like Cloud Tasks, an update of an absent queue creates it
            current = self._queues.get(request.queue.name)
            if current is None:
                return self.create_queue(
                    T.CreateQueueRequest(
                        parent=request.queue.name.rsplit("/queues/", 1)[0], queue=request.queue
                    ),
                    context,
                )
            merged = T.Queue(current)
            # An empty mask replaces every editable field; a named message field is replaced whole.
            mask = field_mask_pb2.FieldMask(paths=list(request.update_mask.paths) or _EDITABLE)
            try:
                mask.MergeMessage(
                    T.Queue.pb(request.queue), T.Queue.pb(merged), replace_message_field=True
                )
            except ValueError as exc:
                gs.abort(context, _Code.INVALID_ARGUMENT, f"bad update_mask: {exc}")
            merged.state, merged.purge_time = current.state, current.purge_time  # output-only
            stored = self._store_queue(merged, context)
            self._release(stored.name)  # a raised limit lets waiting tasks go now
            return T.Queue(stored)

    def delete_queue(self, request: T.DeleteQueueRequest, context: grpc.ServicerContext) -> None:
        with self._cond:
            self._queue(request.name, context)
            self._drop_tasks(request.name)
            del self._queues[request.name]

    def purge_queue(self, request: T.PurgeQueueRequest, context: grpc.ServicerContext) -> T.Queue:
        with self._cond:
            queue = self._queue(request.name, context)
            self._drop_tasks(request.name)
            queue.purge_time = gs.utc_now()
            return T.Queue(queue)

    def pause_queue(self, request: T.PauseQueueRequest, context: grpc.ServicerContext) -> T.Queue:
        with self._cond:
            queue = self._queue(request.name, context)
            queue.state = _PAUSED  # the dispatcher drops entries of paused queues
            return T.Queue(queue)

    def resume_queue(self, request: T.ResumeQueueRequest, context: grpc.ServicerContext) -> T.Queue:
        with self._cond:
            queue = self._queue(request.name, context)
            queue.state = _RUNNING
            self._lanes[request.name].waiting.clear()  # all pushed again below, in due order
            for live in self._live.values():  # re-queue what was held while paused
                if live.queue == request.name and not live.in_flight:
                    self._push(live, live.task.schedule_time.timestamp())
            return T.Queue(queue)

    # --- tasks --------------------------------------------------------------------------------

    def create_task(self, request: T.CreateTaskRequest, context: grpc.ServicerContext) -> T.Task:
        given = request.task
        if "http_request" not in given or not given.http_request.url.startswith("http"):
            gs.abort(context, _Code.INVALID_ARGUMENT, "only http_request tasks with a URL")
        deadline = given.dispatch_deadline or timedelta(minutes=10)
        if not _DEADLINE_RANGE[0] <= deadline <= _DEADLINE_RANGE[1]:
            gs.abort(context, _Code.INVALID_ARGUMENT, "dispatch_deadline must be in [15s, 30min]")
        with self._cond:
            self._queue(request.parent, context)
            name = given.name or f"{request.parent}/tasks/{secrets.randbits(63)}"
            prefix, _, task_id = name.rpartition("/tasks/")
            if prefix != request.parent or not _TASK_ID.fullmatch(task_id):
                gs.abort(context, _Code.INVALID_ARGUMENT, f"task name must be {prefix}/tasks/ID")
            if name in self._live or name in self._gone:
                gs.abort(context, _Code.ALREADY_EXISTS, f"task {name} exists or existed")
            now = gs.utc_now()
            task = T.Task(  # only the input fields; counters and attempts are the server's
                name=name,
                http_request=given.http_request,
                schedule_time=given.schedule_time or now,
                create_time=now,
                dispatch_deadline=deadline,
            )
            live = _Live(task=task, queue=request.parent)
            self._live[name] = live
            self._push(live, task.schedule_time.timestamp())
            return _view(task, request.response_view)

    def get_task(self, request: T.GetTaskRequest, context: grpc.ServicerContext) -> T.Task:
        with self._cond:
            return _view(self._task(request.name, context).task, request.response_view)

    def list_tasks(
        self, request: T.ListTasksRequest, context: grpc.ServicerContext
    ) -> T.ListTasksResponse:
        with self._cond:
            self._queue(request.parent, context)
            names = sorted(n for n, live in self._live.items() if live.queue == request.parent)
            shown, token = gs.page(names, request.page_size, request.page_token, context)
            tasks = [_view(self._live[n].task, request.response_view) for n in shown]
            return T.ListTasksResponse(tasks=tasks, next_page_token=token)

    def delete_task(self, request: T.DeleteTaskRequest, context: grpc.ServicerContext) -> None:
        with self._cond:
            self._task(request.name, context)
            self._forget(request.name)

    def run_task(self, request: T.RunTaskRequest, context: grpc.ServicerContext) -> T.Task:
        with self._cond:  # dispatch now, even when paused or backing off: the "skip the wait" hook
            live = self._task(request.name, context)
            live.generation += 1
            self._push(live, time.time(), forced=True)
            return _view(live.task, request.response_view)

    # --- state helpers (call with the lock held) ---------------------------------------------

    def _queue(self, name: str, context: grpc.ServicerContext) -> tasks_v2.Queue:
        if name not in self._queues:
            gs.abort(context, _Code.NOT_FOUND, f"queue {name} not found")
        return self._queues[name]

    def _task(self, name: str, context: grpc.ServicerContext) -> _Live:
        if name not in self._live:
            gs.abort(context, _Code.NOT_FOUND, f"task {name} not found")
        return self._live[name]

    def _store_queue(self, queue: tasks_v2.Queue, context: grpc.ServicerContext) -> tasks_v2.Queue:
        retry = queue.retry_config
        if retry.max_attempts < 0:  # -1 would mean unlimited; our queues must always give up
            gs.abort(context, _Code.INVALID_ARGUMENT, "max_attempts must be set and positive")
        if retry.max_doublings < 0:
            gs.abort(context, _Code.INVALID_ARGUMENT, "max_doublings must not be negative")
        if queue.rate_limits.max_concurrent_dispatches < 0:  # 0 is unset: the default applies
            gs.abort(context, _Code.INVALID_ARGUMENT, "max_concurrent_dispatches is negative")
        stored = _defaults()
        T.Queue.pb(stored).MergeFrom(T.Queue.pb(queue))  # set fields override the defaults
        if stored.retry_config.min_backoff > stored.retry_config.max_backoff:
            gs.abort(context, _Code.INVALID_ARGUMENT, "min_backoff exceeds max_backoff")
        self._queues[stored.name] = stored
        return stored

    def _push(self, live: _Live, due: float, *, forced: bool = False) -> None:
        self._timer.push(due, (live.task.name, live.generation, forced))

    def _forget(self, name: str) -> None:
        del self._live[name]  # stale heap entries are skipped when popped
        self._gone.add(name)

    def _drop_tasks(self, queue: str) -> None:
        for name in [n for n, live in self._live.items() if live.queue == queue]:
            self._forget(name)
        self._lanes[queue].waiting.clear()  # every entry names a dropped task

    # --- dispatch -----------------------------------------------------------------------------

    def _on_due(self, entry: tuple[str, int, bool]) -> None:
        name, generation, forced = entry
        live = self._live.get(name)
        if live is None or live.generation != generation:
            return  # deleted, done, or superseded by RunTask
        if forced:
            self._start(live, generation)
            return
        if live.in_flight or self._queues[live.queue].state == _PAUSED:
            return  # a running push reschedules on failure; ResumeQueue pushes held tasks again
        self._lanes[live.queue].waiting.append((name, generation, live.task.dispatch_count))
        self._release(live.queue)

    def _release(self, queue_name: str) -> None:
        """Push the queue's waiting tasks, oldest due first, while it has room."""
        lane, queue = self._lanes[queue_name], self._queues.get(queue_name)
        if self._closed or queue is None or queue.state == _PAUSED:
            return  # paused: ResumeQueue clears the lane and pushes its tasks again
        while lane.waiting and lane.busy < queue.rate_limits.max_concurrent_dispatches:
            name, generation, dispatches = lane.waiting.popleft()
            live = self._live.get(name)
            if (
                live is None
                or live.generation != generation
                or live.task.dispatch_count != dispatches
            ):
                continue  # done, deleted, superseded by RunTask, or pushed by a duplicate entry
            self._start(live, generation)

    def _start(self, live: _Live, generation: int) -> None:
        call = self._begin_attempt(live)
        # A thread per push, not a pool: its size would be one more limit, shared by all queues.
        threading.Thread(
            target=self._attempt, args=(live, generation, call), name="tasks-push", daemon=True
        ).start()

    def _begin_attempt(self, live: _Live) -> gs.HttpCall:
        task, request, now = live.task, live.task.http_request, gs.utc_now()
        fixed = {
            "User-Agent": "Google-Cloud-Tasks",
            "X-CloudTasks-QueueName": live.queue.rsplit("/", 1)[1],
            "X-CloudTasks-TaskName": task.name.rsplit("/", 1)[1],
            "X-CloudTasks-TaskRetryCount": str(task.dispatch_count),
            "X-CloudTasks-TaskExecutionCount": str(live.executions),
            "X-CloudTasks-TaskETA": f"{task.schedule_time.timestamp():.6f}",
        }
        if live.previous is not None:
            fixed["X-CloudTasks-TaskPreviousResponse"] = str(live.previous.status or 0)
            fixed["X-CloudTasks-TaskRetryReason"] = live.previous.reason
        if "oidc_token" in request:
            token = OidcToken(request.oidc_token.service_account_email, request.oidc_token.audience)
            fixed["Authorization"] = token.authorization(request.url, now.timestamp(), self._signer)
        task.dispatch_count += 1
        live.in_flight += 1
        self._lanes[live.queue].busy += 1
        if "first_attempt" not in task:  # Cloud Tasks keeps only the first dispatch time
            task.first_attempt = T.Attempt(dispatch_time=now)
        task.last_attempt = T.Attempt(schedule_time=task.schedule_time, dispatch_time=now)
        return gs.HttpCall(
            method=gs.http_method(T.HttpMethod(request.http_method).name),
            url=request.url,
            headers=gs.push_headers(request.headers, request.body, fixed),
            body=request.body,
            timeout=task.dispatch_deadline.total_seconds(),
        )

    def _attempt(self, live: _Live, generation: int, call: gs.HttpCall) -> None:
        try:
            outcome = gs.send_http(self._http, call)
            with self._cond:
                self._finish(live, generation, outcome)
                self._release(live.queue)  # its slot is free: the next waiting task may go
        except Exception:  # logged: uncaught, it would end the thread and leave the task stuck
            _log.exception("dispatching %s failed", live.task.name)

    def _finish(self, live: _Live, generation: int, outcome: gs.HttpOutcome) -> None:
        task, now = live.task, gs.utc_now()
        live.in_flight -= 1
        self._lanes[live.queue].busy -= 1
        if self._closed or self._live.get(task.name) is not live:
            return  # deleted or purged meanwhile
        if outcome.status is not None:
            task.response_count += 1
            if outcome.status < 500:  # Google does not count 5xx as executions
                live.executions += 1
        task.last_attempt.response_time = now
        task.last_attempt.response_status = status_pb2.Status(
            code=outcome.rpc_code, message=outcome.reason
        )
        if outcome.ok:
            self._forget(task.name)
            return
        if generation != live.generation:  # RunTask dispatched it again: that attempt decides,
            if not live.in_flight:  # unless it already ended while this one was still running
                self._push(live, task.schedule_time.timestamp())
            return
        live.previous = outcome
        retry = self._queues[live.queue].retry_config
        limit = retry.max_retry_duration * self._scale
        first: datetime = task.first_attempt.dispatch_time
        if task.dispatch_count >= retry.max_attempts and (not limit or now - first >= limit):
            self._forget(task.name)  # gave up: Cloud Tasks deletes the task
            return
        due = now + timedelta(seconds=backoff(retry, task.dispatch_count) * self._scale)
        task.schedule_time = due
        self._push(live, due.timestamp())


def _view(task: tasks_v2.Task, view: tasks_v2.Task.View) -> tasks_v2.Task:
    shown = T.Task(task)  # a copy: the stored task keeps changing after the lock is released
    shown.view = _BASIC if view == T.Task.View.VIEW_UNSPECIFIED else view
    return shown


def start_tasks_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    backoff_scale: float = 1.0,
    signer: crypt.Signer | None = None,
) -> gs.RunningEmulator:
    """Serve Cloud Tasks on host:port (0 = a free port); `.stop()` ends server and dispatcher."""
    return gs.serve([CloudTasksService(backoff_scale=backoff_scale, signer=signer)], host, port)


def main(argv: list[str] | None = None) -> None:
    parser = gs.command_line("In-repo Cloud Tasks emulator (gRPC)")
    parser.add_argument("--backoff-scale", type=float, default=1.0, help="e.g. 0.01 in tests")
    args = parser.parse_args(argv)
    emulator = start_tasks_emulator(
        args.host, args.port, args.backoff_scale, gs.signer_from(args.signing_key)
    )
    gs.run_until_signalled(emulator.address, emulator.stop)


if __name__ == "__main__":
    main()
