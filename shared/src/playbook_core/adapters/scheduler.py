"""Cloud Scheduler HTTP jobs for the cron wiring: declare a job idempotently, or fire it now."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import grpc  # type: ignore[import-untyped]  # grpcio ships no stubs
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.cloud import scheduler_v1
from google.cloud.scheduler_v1.services.cloud_scheduler.transports import (
    CloudSchedulerGrpcTransport,
)

from playbook_core.domain import errors

# The fields ensure_http_job owns; an update leaves state (paused/enabled) and the rest alone.
_OWNED = ["schedule", "time_zone", "http_target"]
_PERMANENT = (gexc.InvalidArgument, gexc.FailedPrecondition, gexc.PermissionDenied)


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Client failures as domain errors; the cause keeps the client's detail for logs."""
    try:
        yield
    except errors.PlaybooksError:
        raise
    except gexc.NotFound as exc:
        raise errors.NotFound(f"{what} not found") from exc
    except _PERMANENT as exc:
        raise errors.PlaybooksError(
            f"cloud scheduler refused {what} ({type(exc).__name__})"
        ) from exc
    except gexc.GoogleAPIError as exc:
        raise errors.Unavailable(f"cloud scheduler unavailable ({type(exc).__name__})") from exc


class SchedulerJobs:
    """Cloud Scheduler, or our emulator when `emulator_host` (host:port) is given.

    Like Cloud Tasks, the official client ignores emulator variables, so the emulator gets an
    explicit insecure gRPC channel. With `service_account_email`, jobs carry an OIDC token (for
    `audience`, given per job, else the job's URL: Cloud Scheduler's default).
    """

    def __init__(
        self,
        project: str,
        location: str,
        emulator_host: str | None = None,
        service_account_email: str | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        self._parent = f"projects/{project}/locations/{location}"
        self._emulator_host, self._service_account = emulator_host, service_account_email
        self._timeout = timeout
        self._lock = threading.Lock()
        self._client: scheduler_v1.CloudSchedulerClient | None = None
        # Create/update/run of a named job are safe to repeat; only transport failures retry.
        self._retry = gretry.Retry(
            predicate=gretry.if_exception_type(gexc.ServiceUnavailable, gexc.DeadlineExceeded),
            initial=0.05, maximum=1.0, multiplier=2.0, timeout=timeout,
        )  # fmt: skip

    def client(self) -> scheduler_v1.CloudSchedulerClient:
        with self._lock:  # built on first use: importing the adapter needs no credentials
            if self._client is None:
                if self._emulator_host:
                    channel = grpc.insecure_channel(self._emulator_host)
                    transport = CloudSchedulerGrpcTransport(channel=channel)
                    self._client = scheduler_v1.CloudSchedulerClient(transport=transport)
                else:
                    self._client = scheduler_v1.CloudSchedulerClient()
            return self._client

    def job_path(self, job_id: str) -> str:
        return f"{self._parent}/jobs/{job_id}"

    def ensure_http_job(
        self,
        job_id: str,
        schedule: str,
        time_zone: str,
        url: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        audience: str | None = None,
    ) -> None:
        """Create the job, or bring an existing one to this schedule and target (idempotent)."""
        target = scheduler_v1.HttpTarget(
            uri=url,
            http_method=scheduler_v1.HttpMethod.POST,
            body=body,
            headers=dict(headers or {}),
        )
        if self._service_account:
            target.oidc_token = scheduler_v1.OidcToken(
                service_account_email=self._service_account, audience=audience or ""
            )
        job = scheduler_v1.Job(
            name=self.job_path(job_id), schedule=schedule, time_zone=time_zone, http_target=target
        )
        retry, timeout = self._retry, self._timeout
        with _translated(f"job {job_id}"):
            try:
                self.client().create_job(parent=self._parent, job=job, retry=retry, timeout=timeout)
            except gexc.AlreadyExists:
                mask = {"paths": _OWNED}
                self.client().update_job(job=job, update_mask=mask, retry=retry, timeout=timeout)

    def run(self, job_id: str) -> None:
        """Fire the job now, whatever its schedule (the hook cron tests use)."""
        with _translated(f"job {job_id}"):
            self.client().run_job(
                name=self.job_path(job_id), retry=self._retry, timeout=self._timeout
            )
