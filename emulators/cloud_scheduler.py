"""Cloud Scheduler stand-in: Google ships no emulator, so we serve the real gRPC API and a cron.

An HTTP job with `oidc_token` fires with `Authorization: Bearer <ID token>` as Google does, for
`oidc_token.audience` or else the job URI; the token is unsigned (`alg: none`), which only
functions running with PLAYBOOKS_LOCAL_OIDC accept.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import grpc  # type: ignore[import-untyped]  # grpcio ships no type information
import httpx
from croniter import croniter
from google.auth import crypt
from google.cloud import scheduler_v1
from google.protobuf import field_mask_pb2
from google.pubsub_v1 import PublisherClient, PubsubMessage
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.rpc import status_pb2  # type: ignore[import-untyped]  # no type information

from emulators import grpc_server as gs
from playbook_core.adapters.dispatcher import DueTimer
from playbook_core.adapters.service_tokens import OidcToken

S = scheduler_v1
SERVICE = "google.cloud.scheduler.v1.CloudScheduler"
RPCS: gs.RpcTable = {
    "ListJobs": (S.ListJobsRequest, S.ListJobsResponse),
    "GetJob": (S.GetJobRequest, S.Job),
    "CreateJob": (S.CreateJobRequest, S.Job),
    "UpdateJob": (S.UpdateJobRequest, S.Job),
    "DeleteJob": (S.DeleteJobRequest, None),
    "PauseJob": (S.PauseJobRequest, S.Job),
    "ResumeJob": (S.ResumeJobRequest, S.Job),
    "RunJob": (S.RunJobRequest, S.Job),
}
_JOB = re.compile(r"(projects/[^/]+/locations/[^/]+)/jobs/[A-Za-z0-9_-]{1,500}")
_TOPIC = re.compile(r"projects/[^/]+/topics/[^/]+")
_EDITABLE = [
    "description",
    "pubsub_target",
    "http_target",
    "schedule",
    "time_zone",
    "retry_config",
    "attempt_deadline",
]
_OUTPUT_ONLY = ["state", "status", "schedule_time", "last_attempt_time", "user_update_time"]
_Code = grpc.StatusCode
# proto-plus enums derive from an untyped base, so mypy sees their members as plain ints;
# calling the enum class yields values typed as the enum.
_ENABLED, _PAUSED = S.Job.State(S.Job.State.ENABLED), S.Job.State(S.Job.State.PAUSED)
_PUBLISH_TIMEOUT = 30.0


def next_fire(schedule: str, time_zone: str, after: datetime) -> datetime:
    """First cron time strictly after `after`, evaluated in the job's zone (UTC if unset)."""
    local = after.astimezone(ZoneInfo(time_zone or "UTC"))
    fire: datetime = croniter(schedule, local).get_next(datetime)
    return fire.astimezone(UTC)


def _defaults() -> scheduler_v1.Job:
    """What Cloud Scheduler fills in for HTTP/Pub/Sub jobs when a field is left unset."""
    return S.Job(
        attempt_deadline=timedelta(minutes=3),
        retry_config=S.RetryConfig(
            min_backoff_duration=timedelta(seconds=5),
            max_backoff_duration=timedelta(hours=1),
            max_doublings=5,
        ),
    )


class CloudSchedulerService:
    def __init__(
        self,
        *,
        pubsub_host: str | None = None,
        clock: gs.Clock = gs.utc_now,
        signer: crypt.Signer | None = None,
    ) -> None:
        """`clock` lets tests stand just before a minute boundary instead of waiting for one."""
        self._clock = clock
        self._signer = signer  # signs the OIDC tokens (deployed-shape tests); None: unsigned
        self._jobs: dict[str, scheduler_v1.Job] = {}
        self._generation: dict[str, int] = {}  # bumped on every change that moves the next fire
        self._cond = threading.Condition()
        self._timer = DueTimer(
            self._cond, self._on_due, lambda: clock().timestamp(), "scheduler-cron"
        )
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="scheduler-fire")
        self._http = httpx.Client(trust_env=False)  # never route local pushes through a proxy
        self._publisher: PublisherClient | None = None
        # The Pub/Sub emulator speaks plaintext gRPC and needs no credentials.
        self._channel = grpc.insecure_channel(pubsub_host) if pubsub_host else None
        if self._channel is not None:
            transport = PublisherGrpcTransport(channel=self._channel)
            self._publisher = PublisherClient(transport=transport)

    def generic_handler(self) -> grpc.GenericRpcHandler:
        return gs.service_handler(SERVICE, self, RPCS)

    def start(self) -> None:
        self._timer.start()

    def close(self) -> None:
        self._timer.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()
        if self._channel is not None:
            self._channel.close()

    # --- rpcs ---------------------------------------------------------------------------------

    def create_job(self, request: S.CreateJobRequest, context: grpc.ServicerContext) -> S.Job:
        match = _JOB.fullmatch(request.job.name)
        if not match or match.group(1) != request.parent:
            gs.abort(context, _Code.INVALID_ARGUMENT, f"job name must be {request.parent}/jobs/ID")
        given = S.Job.pb(S.Job(request.job))
        for output_only in _OUTPUT_ONLY:
            given.ClearField(output_only)
        job = _validated(S.Job.wrap(given), context)
        job.state = _ENABLED
        with self._cond:
            if job.name in self._jobs:
                gs.abort(context, _Code.ALREADY_EXISTS, f"job {job.name} already exists")
            job.user_update_time = self._clock()
            self._jobs[job.name] = job
            self._plan(job)
            return S.Job(job)

    def get_job(self, request: S.GetJobRequest, context: grpc.ServicerContext) -> S.Job:
        with self._cond:
            return S.Job(self._job(request.name, context))

    def list_jobs(
        self, request: S.ListJobsRequest, context: grpc.ServicerContext
    ) -> S.ListJobsResponse:
        with self._cond:
            names = sorted(n for n in self._jobs if n.startswith(request.parent + "/jobs/"))
            shown, token = gs.page(names, request.page_size, request.page_token, context)
            return S.ListJobsResponse(jobs=[self._jobs[n] for n in shown], next_page_token=token)

    def update_job(self, request: S.UpdateJobRequest, context: grpc.ServicerContext) -> S.Job:
        with self._cond:
            merged = S.Job(self._job(request.job.name, context))
            # An empty mask replaces every editable field; a named message field is replaced whole.
            paths = list(request.update_mask.paths) or _EDITABLE
            if any(path.split(".")[0] not in _EDITABLE for path in paths):
                gs.abort(context, _Code.INVALID_ARGUMENT, f"not updatable: {paths}")
            try:
                field_mask_pb2.FieldMask(paths=paths).MergeMessage(
                    S.Job.pb(request.job), S.Job.pb(merged), replace_message_field=True
                )
            except ValueError as exc:
                gs.abort(context, _Code.INVALID_ARGUMENT, f"bad update_mask: {exc}")
            merged = _validated(merged, context)
            merged.user_update_time = self._clock()
            self._jobs[merged.name] = merged
            self._plan(merged)
            return S.Job(merged)

    def delete_job(self, request: S.DeleteJobRequest, context: grpc.ServicerContext) -> None:
        with self._cond:
            self._job(request.name, context)
            del self._jobs[request.name]
            self._generation[request.name] = self._generation.get(request.name, 0) + 1

    def pause_job(self, request: S.PauseJobRequest, context: grpc.ServicerContext) -> S.Job:
        return self._set_state(request.name, _ENABLED, _PAUSED, context)

    def resume_job(self, request: S.ResumeJobRequest, context: grpc.ServicerContext) -> S.Job:
        return self._set_state(request.name, _PAUSED, _ENABLED, context)

    def run_job(self, request: S.RunJobRequest, context: grpc.ServicerContext) -> S.Job:
        with self._cond:  # fires now whatever the state, like the real RunJob
            job = self._job(request.name, context)
            self._pool.submit(self._fire, job, self._clock().replace(microsecond=0))
            return S.Job(job)

    # --- state (call with the lock held) ------------------------------------------------------

    def _job(self, name: str, context: grpc.ServicerContext) -> scheduler_v1.Job:
        if name not in self._jobs:
            gs.abort(context, _Code.NOT_FOUND, f"job {name} not found")
        return self._jobs[name]

    def _set_state(
        self,
        name: str,
        required: scheduler_v1.Job.State,
        target: scheduler_v1.Job.State,
        context: grpc.ServicerContext,
    ) -> S.Job:
        with self._cond:
            job = self._job(name, context)
            if job.state != required:
                gs.abort(context, _Code.FAILED_PRECONDITION, f"job {name} is {job.state.name}")
            job.state = target
            self._plan(job)
            return S.Job(job)

    def _plan(self, job: scheduler_v1.Job, after: datetime | None = None) -> None:
        """(Re)compute the next fire; older timer entries for the job go stale."""
        generation = self._generation.get(job.name, 0) + 1
        self._generation[job.name] = generation
        if job.state != _ENABLED:
            return
        fire = next_fire(job.schedule, job.time_zone, after or self._clock())
        job.schedule_time = fire
        self._timer.push(fire.timestamp(), (job.name, generation, fire))

    def _on_due(self, entry: tuple[str, int, datetime]) -> None:
        name, generation, scheduled = entry
        job = self._jobs.get(name)
        if job is None or self._generation.get(name) != generation:
            return
        # From the later of "scheduled" and "now": a stalled loop skips missed runs, as Google does.
        self._plan(job, after=max(scheduled, self._clock()))
        self._pool.submit(self._fire, job, scheduled)

    # --- firing (pool threads) ----------------------------------------------------------------

    def _fire(self, job: scheduler_v1.Job, scheduled: datetime) -> None:
        with self._cond:
            job.last_attempt_time = self._clock()
            snapshot = S.Job(job)
        outcome = self._deliver(snapshot, scheduled)
        with self._cond:  # `job` may have been replaced by UpdateJob; record on the current one
            current = self._jobs.get(snapshot.name)
            if current is not None:
                current.last_attempt_time = snapshot.last_attempt_time
                current.status = status_pb2.Status(code=outcome.rpc_code, message=outcome.reason)

    def _deliver(self, job: scheduler_v1.Job, scheduled: datetime) -> gs.HttpOutcome:
        if "pubsub_target" in job:
            return self._publish(job.pubsub_target)
        target = job.http_target
        fixed = {
            "User-Agent": "Google-Cloud-Scheduler",
            "X-CloudScheduler": "true",
            "X-CloudScheduler-JobName": job.name.rsplit("/", 1)[1],
            "X-CloudScheduler-ScheduleTime": gs.rfc3339(scheduled),
        }
        if "oidc_token" in target:
            token = OidcToken(target.oidc_token.service_account_email, target.oidc_token.audience)
            fixed["Authorization"] = token.authorization(
                target.uri, self._clock().timestamp(), self._signer
            )
        call = gs.HttpCall(
            method=gs.http_method(S.HttpMethod(target.http_method).name),
            url=target.uri,
            headers=gs.push_headers(target.headers, target.body, fixed),
            body=target.body,
            timeout=job.attempt_deadline.total_seconds(),
            follow_redirects=True,  # Scheduler judges the redirected request's answer
        )
        return gs.send_http(self._http, call)

    def _publish(self, target: scheduler_v1.PubsubTarget) -> gs.HttpOutcome:
        if self._publisher is None:
            return gs.HttpOutcome(None, 9, "no Pub/Sub emulator configured")  # FAILED_PRECONDITION
        message = PubsubMessage(data=target.data, attributes=dict(target.attributes))
        try:
            self._publisher.publish(
                topic=target.topic_name, messages=[message], timeout=_PUBLISH_TIMEOUT
            )
        except Exception as exc:
            return gs.HttpOutcome(None, 14, f"publish failed: {exc}")  # UNAVAILABLE
        return gs.HttpOutcome(None, 0, "published")


def _validated(job: scheduler_v1.Job, context: grpc.ServicerContext) -> scheduler_v1.Job:
    """The job with Google's defaults for unset fields, or an INVALID_ARGUMENT abort."""
    target = S.Job.pb(job).WhichOneof("target")
    if target == "http_target" and not job.http_target.uri.startswith("http"):
        gs.abort(context, _Code.INVALID_ARGUMENT, "http_target.uri must be an http(s) URL")
    elif target == "pubsub_target" and not _TOPIC.fullmatch(job.pubsub_target.topic_name):
        gs.abort(context, _Code.INVALID_ARGUMENT, "pubsub_target.topic_name: projects/P/topics/T")
    elif target not in {"http_target", "pubsub_target"}:
        gs.abort(context, _Code.INVALID_ARGUMENT, "an http_target or a pubsub_target is required")
    if not croniter.is_valid(job.schedule):
        gs.abort(context, _Code.INVALID_ARGUMENT, f"invalid schedule {job.schedule!r}")
    try:
        ZoneInfo(job.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        gs.abort(context, _Code.INVALID_ARGUMENT, f"unknown time_zone {job.time_zone!r}")
    stored = _defaults()
    S.Job.pb(stored).MergeFrom(S.Job.pb(job))
    return stored


def start_scheduler_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    pubsub_host: str | None = None,
    clock: gs.Clock = gs.utc_now,
    signer: crypt.Signer | None = None,
) -> gs.RunningEmulator:
    """Serve Cloud Scheduler on host:port (0 = a free port); `.stop()` ends server and cron loop."""
    service = CloudSchedulerService(pubsub_host=pubsub_host, clock=clock, signer=signer)
    return gs.serve([service], host, port)


def main(argv: list[str] | None = None) -> None:
    parser = gs.command_line("In-repo Cloud Scheduler emulator (gRPC)")
    parser.add_argument("--pubsub-host", help="Pub/Sub emulator host:port for Pub/Sub targets")
    args = parser.parse_args(argv)
    emulator = start_scheduler_emulator(
        args.host, args.port, args.pubsub_host, signer=gs.signer_from(args.signing_key)
    )
    gs.run_until_signalled(emulator.address, emulator.stop)


if __name__ == "__main__":
    main()
