"""Cloud Scheduler HTTP jobs for the cron wiring: declare a job idempotently, or fire it now."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager

from google.api_core import exceptions as gexc
from google.cloud import scheduler_v1
from google.cloud.scheduler_v1.services.cloud_scheduler.transports import (
    CloudSchedulerGrpcTransport,
)

from playbook_core.adapters import google_errors
from playbook_core.adapters.grpc_clients import LazyClient, retry_on
from playbook_core.domain import errors

# The fields ensure_http_job owns; an update leaves state (paused/enabled) and the rest alone.
_OWNED = ["schedule", "time_zone", "http_target"]


def _job_missing(what: str) -> errors.PlaybooksError:
    return errors.NotFound(f"{what} not found")


def _translated(what: str) -> AbstractContextManager[None]:
    return google_errors.translated("cloud scheduler", what, _job_missing)


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
        self._service_account = service_account_email
        self._timeout = timeout
        self._client = LazyClient(
            scheduler_v1.CloudSchedulerClient, CloudSchedulerGrpcTransport, emulator_host
        )
        # Create/update/run of a named job are safe to repeat; only transport failures retry.
        self._retry = retry_on(gexc.ServiceUnavailable, gexc.DeadlineExceeded, timeout=timeout)

    def client(self) -> scheduler_v1.CloudSchedulerClient:
        return self._client.get()

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
