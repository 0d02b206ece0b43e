"""The in-repo Cloud Scheduler emulator, driven only through the official google-cloud-scheduler client."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import scheduler_v1
from google.cloud.scheduler_v1.services.cloud_scheduler.transports import (
    CloudSchedulerGrpcTransport,
)
from google.pubsub_v1 import types as pubsub_types

from emulators import grpc_server
from emulators.cloud_scheduler import next_fire, start_scheduler_emulator
from playbook_core.testing import eventually
from tests.conftest import assert_serves_until_sigterm

LOCATION = "projects/demo-playbooks/locations/us-central1"
ENABLED, PAUSED = scheduler_v1.Job.State.ENABLED, scheduler_v1.Job.State.PAUSED


def _client(address):
    channel = grpc.insecure_channel(address)
    return scheduler_v1.CloudSchedulerClient(transport=CloudSchedulerGrpcTransport(channel=channel))


@pytest.fixture(scope="module")
def emulator():
    running = start_scheduler_emulator()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(emulator):
    scheduler = _client(emulator.address)
    yield scheduler
    scheduler.transport.close()


def _job(url, schedule="0 9 * * *", time_zone="Europe/Paris", **target):
    return scheduler_v1.Job(
        name=f"{LOCATION}/jobs/tick-{uuid.uuid4().hex[:12]}",
        schedule=schedule,
        time_zone=time_zone,
        http_target=scheduler_v1.HttpTarget(uri=url, **target),
    )


def test_job_lifecycle(client, recorder):
    job = client.create_job(parent=LOCATION, job=_job(recorder.url + "/tick"))
    assert job.state == ENABLED
    assert job.schedule_time > datetime.now(UTC)
    assert job.user_update_time is not None
    assert job.attempt_deadline == timedelta(minutes=3)  # Google's default
    with pytest.raises(exceptions.AlreadyExists):
        client.create_job(parent=LOCATION, job=scheduler_v1.Job(job))

    assert client.get_job(name=job.name) == job
    assert job.name in [j.name for j in client.list_jobs(parent=LOCATION)]

    change = scheduler_v1.Job(name=job.name, schedule="*/5 * * * *", description="every 5")
    updated = client.update_job(job=change, update_mask={"paths": ["schedule", "description"]})
    assert (updated.schedule, updated.description) == ("*/5 * * * *", "every 5")
    assert updated.http_target.uri == job.http_target.uri  # outside the mask, untouched
    assert updated.schedule_time.minute % 5 == 0

    client.delete_job(name=job.name)
    with pytest.raises(exceptions.NotFound):
        client.get_job(name=job.name)
    with pytest.raises(exceptions.NotFound):
        client.delete_job(name=job.name)


def test_pause_and_resume(client, recorder):
    job = client.create_job(parent=LOCATION, job=_job(recorder.url))
    assert client.pause_job(name=job.name).state == PAUSED
    assert client.get_job(name=job.name).state == PAUSED
    with pytest.raises(exceptions.FailedPrecondition):
        client.pause_job(name=job.name)
    assert client.resume_job(name=job.name).state == ENABLED
    with pytest.raises(exceptions.FailedPrecondition):
        client.resume_job(name=job.name)


def test_invalid_jobs_are_refused(client, recorder):
    for bad in (
        _job(recorder.url, schedule="every minute"),
        _job(recorder.url, time_zone="Mars/Olympus"),
        scheduler_v1.Job(name=f"{LOCATION}/jobs/no-target", schedule="* * * * *"),
    ):
        with pytest.raises(exceptions.InvalidArgument):
            client.create_job(parent=LOCATION, job=bad)


def test_run_job_pushes_with_scheduler_headers(client, recorder):
    job = _job(
        recorder.url + "/tick",
        body=b'{"kind":"tick"}',
        headers={"Content-Type": "application/json", "X-Extra": "1"},
    )
    job = client.create_job(parent=LOCATION, job=job)
    before = datetime.now(UTC).replace(microsecond=0)

    client.run_job(name=job.name)

    (received,) = eventually(lambda: recorder.for_path("/tick"))
    assert received.method == "POST"
    assert received.body == b'{"kind":"tick"}'
    assert received.header("Content-Type") == "application/json"
    assert received.header("X-Extra") == "1"
    assert received.header("User-Agent") == "Google-Cloud-Scheduler"
    assert received.header("X-CloudScheduler") == "true"
    assert received.header("X-CloudScheduler-JobName") == job.name.rsplit("/", 1)[1]
    stamp = received.header("X-CloudScheduler-ScheduleTime")
    assert stamp.endswith("Z")
    assert datetime.fromisoformat(stamp) >= before
    done = eventually(lambda: (j := client.get_job(name=job.name)).last_attempt_time and j)
    assert eventually(lambda: client.get_job(name=job.name).status.message == "HTTP 200")
    assert done.state == ENABLED


def _claims(received):
    scheme, token = received.header("Authorization").split(" ")
    header, payload, signature = token.split(".")
    assert scheme == "Bearer"
    assert (_b64json(header)["alg"], signature) == ("none", "")  # unsigned: local only
    return _b64json(payload)


def _b64json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_a_job_with_an_oidc_token_fires_with_a_google_shaped_id_token(client, recorder):
    oidc = scheduler_v1.OidcToken(service_account_email="cron@demo.iam.gserviceaccount.com")
    plain = client.create_job(parent=LOCATION, job=_job(recorder.url + "/plain"))
    job = client.create_job(parent=LOCATION, job=_job(recorder.url + "/oidc", oidc_token=oidc))
    named = scheduler_v1.OidcToken(service_account_email="a@b.c", audience="https://x/fn")
    aimed = client.create_job(parent=LOCATION, job=_job(recorder.url + "/aud", oidc_token=named))
    before = time.time()

    for each in (plain, job, aimed):
        client.run_job(name=each.name)

    (untokened,) = eventually(lambda: recorder.for_path("/plain"))
    assert untokened.header("Authorization") is None
    claims = _claims(eventually(lambda: recorder.for_path("/oidc"))[0])
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["email"] == claims["sub"] == "cron@demo.iam.gserviceaccount.com"
    assert claims["email_verified"] is True
    assert claims["aud"] == recorder.url + "/oidc"  # defaults to the job URI
    assert int(before) <= claims["iat"] == claims["nbf"] <= time.time()
    assert claims["exp"] == claims["iat"] + 3600
    assert _claims(eventually(lambda: recorder.for_path("/aud"))[0])["aud"] == "https://x/fn"


def test_failed_push_is_reported_in_status(client, recorder):
    recorder.script = [503]
    job = client.create_job(parent=LOCATION, job=_job(recorder.url + "/fails"))
    client.run_job(name=job.name)
    status = eventually(lambda: (s := client.get_job(name=job.name).status).message and s)
    assert status.code == 14  # UNAVAILABLE for a 503


def test_cron_loop_fires_at_the_minute_boundary(recorder):
    # Stand 1 s before the next minute so the every-minute job is due almost at once.
    real = datetime.now(UTC)
    boundary = real.replace(second=0, microsecond=0) + timedelta(minutes=1)
    offset = boundary - real - timedelta(seconds=1)
    running = start_scheduler_emulator(clock=lambda: datetime.now(UTC) + offset)
    client = _client(running.address)
    try:
        job = client.create_job(
            parent=LOCATION, job=_job(recorder.url + "/cron", schedule="* * * * *")
        )
        assert job.schedule_time == boundary

        (received,) = eventually(lambda: recorder.for_path("/cron"), timeout=3)
        assert received.at + offset.total_seconds() >= boundary.timestamp()
        assert received.header("X-CloudScheduler-ScheduleTime") == boundary.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        fired = eventually(lambda: (j := client.get_job(name=job.name)).status.message and j)
        assert fired.schedule_time == boundary + timedelta(minutes=1)
        assert fired.last_attempt_time >= boundary
    finally:
        client.transport.close()
        running.stop()


def test_next_fire_is_computed_in_the_job_time_zone():
    paris = ZoneInfo("Europe/Paris")
    # 08:59 in Paris on a summer day is 06:59 UTC; the 09:00 Paris run is 07:00 UTC.
    after = datetime(2025, 7, 1, 8, 59, tzinfo=paris)
    assert next_fire("0 9 * * *", "Europe/Paris", after) == datetime(2025, 7, 1, 7, tzinfo=UTC)
    # Winter time: the same run is 08:00 UTC.
    after = datetime(2025, 12, 1, 9, 30, tzinfo=paris)
    assert next_fire("0 9 * * *", "Europe/Paris", after) == datetime(2025, 12, 2, 8, tzinfo=UTC)
    assert next_fire("*/15 * * * *", "", datetime(2025, 1, 1, 0, 0, tzinfo=UTC)) == datetime(
        2025, 1, 1, 0, 15, tzinfo=UTC
    )


def test_job_schedule_time_follows_its_time_zone(client, recorder):
    job = client.create_job(
        parent=LOCATION,
        job=_job(recorder.url, schedule="30 9 * * *", time_zone="America/New_York"),
    )
    local = job.schedule_time.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (9, 30)
    assert timedelta(0) < job.schedule_time - datetime.now(UTC) <= timedelta(days=1)


@dataclass
class FakePublisher:
    """A Pub/Sub Publisher service that only records Publish calls (no Java emulator needed)."""

    published: list[pubsub_types.PublishRequest] = field(default_factory=list)

    def generic_handler(self):
        rpcs = {"Publish": (pubsub_types.PublishRequest, pubsub_types.PublishResponse)}
        return grpc_server.service_handler("google.pubsub.v1.Publisher", self, rpcs)

    def publish(self, request, _context):
        self.published.append(request)
        return pubsub_types.PublishResponse(message_ids=["1"])

    def start(self):
        pass

    def close(self):
        pass


def test_pubsub_target_publishes_data_and_attributes():
    fake = FakePublisher()
    pubsub = grpc_server.serve([fake])
    running = start_scheduler_emulator(pubsub_host=pubsub.address)
    client = _client(running.address)
    try:
        target = scheduler_v1.PubsubTarget(
            topic_name="projects/demo-playbooks/topics/ticks",
            data=b"tick",
            attributes={"kind": "schedule"},
        )
        job = scheduler_v1.Job(
            name=f"{LOCATION}/jobs/pubsub", schedule="0 * * * *", pubsub_target=target
        )
        client.create_job(parent=LOCATION, job=job)
        client.run_job(name=job.name)

        (request,) = eventually(lambda: fake.published)
        assert request.topic == "projects/demo-playbooks/topics/ticks"
        assert request.messages[0].data == b"tick"
        assert dict(request.messages[0].attributes) == {"kind": "schedule"}
        assert eventually(lambda: client.get_job(name=job.name).status.message == "published")
    finally:
        client.transport.close()
        running.stop()
        pubsub.stop()


@pytest.mark.stack
def test_process_mode_announces_readiness_and_stops_on_sigterm():
    def use(address):
        client = _client(address)
        assert list(client.list_jobs(parent=LOCATION)) == []
        client.transport.close()

    assert_serves_until_sigterm("emulators.cloud_scheduler", use=use)
