"""What the Google adapters do beyond the shared contract: Firestore paths, cursors and sentinels,
idempotent wiring helpers, task names and OIDC, scheduler jobs, and bounded failure on a dead port."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from emulators.cloud_scheduler import start_scheduler_emulator
from emulators.cloud_tasks import start_tasks_emulator
from playbook_core.adapters.cloud_tasks import CloudTasksQueue
from playbook_core.adapters.firestore import FirestoreStore
from playbook_core.adapters.pubsub import PubsubBus
from playbook_core.adapters.scheduler import SchedulerJobs
from playbook_core.domain.errors import AlreadyExists, BadRequest, NotFound, Unavailable
from playbook_core.ports import DELETE_FIELD, Increment, OrderBy, QueueConfig, TaskRequest, Where
from playbook_core.testing import RecordingServer, eventually

PROJECT, REGION = "demo-playbooks", "us-central1"
SERVICE_ACCOUNT = "tasks@demo-playbooks.iam.gserviceaccount.com"


@pytest.fixture
def unique():
    return uuid.uuid4().hex[:10]


@pytest.fixture
def store(emulator_env):
    return FirestoreStore(PROJECT)


@pytest.fixture
def sink():
    server = RecordingServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ours():
    """Our Cloud Tasks and Cloud Scheduler emulators, adding unsigned OIDC tokens."""
    tasks, scheduler = start_tasks_emulator(), start_scheduler_emulator()
    yield {"tasks": tasks.address, "scheduler": scheduler.address}
    tasks.stop()
    scheduler.stop()


def ids(page):
    return [doc.id for doc in page.docs]


def all_pages(store, *args, **kwargs):
    page = store.query(*args, **kwargs)
    seen = ids(page)
    while page.next_cursor is not None:
        page = store.query(*args, start_after=page.next_cursor, **kwargs)
        seen += ids(page)
    return seen


def jwt_claims(authorization):
    payload = authorization.removeprefix("Bearer ").split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Firestore
@pytest.mark.emulator
def test_subcollection_paths_of_any_depth(store, unique):
    top = f"playbooks_{unique}"
    versions = f"{top}/pb_1/versions"
    deep = f"{versions}/v1/notes"
    store.create(top, "pb_1", {"name": "parent"})
    store.create(versions, "v1", {"n": 1})
    store.create(versions, "v2", {"n": 2})
    store.create(deep, "note", {"text": "hi"})

    assert ids(store.query(versions, order_by=[OrderBy("n", "desc")])) == ["v2", "v1"]
    assert store.get_many(versions, ["v1", "v2", "v3"]) == {"v1": {"n": 1}, "v2": {"n": 2}}
    assert store.get(deep, "note") == {"text": "hi"}
    assert store.get(top, "v1") is None


@pytest.mark.emulator
def test_cursor_paging_breaks_ties_by_id_and_survives_timestamps(store, unique):
    col = f"pages_{unique}"
    base = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    for i in range(25):
        store.create(col, f"d{i:02d}", {"rank": i % 3, "at": base + timedelta(hours=i % 4)})
    by_rank = [f"d{i:02d}" for i in sorted(range(25), key=lambda i: (i % 3, i))]
    by_time = [f"d{i:02d}" for i in sorted(range(25), key=lambda i: (-(i % 4), i % 3, i))]

    assert all_pages(store, col, order_by=[OrderBy("rank")], limit=10) == by_rank
    # a timestamp in the cursor, then a second field, then the id tie-break
    by_at = all_pages(store, col, order_by=[OrderBy("at", "desc"), OrderBy("rank")], limit=4)
    assert by_at == by_time
    got = store.query(col, order_by=[OrderBy("at")], limit=1).docs[0].data["at"]
    assert (type(got), got) == (datetime, base)  # a plain aware datetime, not the client's type


@pytest.mark.emulator
def test_cursor_paging_follows_the_implicit_inequality_order(store, unique):
    col = f"ineq_{unique}"
    for i in range(12):
        store.create(col, f"d{i:02d}", {"g": "x", "n": (i * 5) % 7})
    expected = sorted((i for i in range(12) if (i * 5) % 7 > 1), key=lambda i: ((i * 5) % 7, i))

    got = all_pages(store, col, [Where("n", ">", 1), Where("g", "==", "x")], limit=3)

    assert got == [f"d{i:02d}" for i in expected]


@pytest.mark.emulator
def test_queries_firestore_would_refuse(store, unique):
    col = f"in_{unique}"
    store.create(col, "a", {"org": "x", "tags": ["t"]})

    assert ids(store.query(col, [Where("org", "in", [])])) == []  # empty lists match nothing
    assert ids(store.query(col, [Where("tags", "array-contains-any", [])])) == []
    assert ids(store.query(col, [Where("org", "not-in", [])])) == ["a"]  # ...or exclude nothing
    with pytest.raises(BadRequest):
        store.query(col, order_by=[OrderBy("n")], start_after="not-a-cursor")


@pytest.mark.emulator
def test_sentinels_and_dotted_paths_with_any_component(store, unique):
    col = f"sentinels_{unique}"
    store.set(col, "d", {"daily": {"2026-11-24": 1}, "stats": {"a-b": 2, "keep": 1}})

    store.update(col, "d", {"daily.2026-11-24": Increment(2), "daily.2026-11-25": Increment(1.5)})
    store.update(col, "d", {"stats.a-b": DELETE_FIELD})
    store.transaction(lambda tx: tx.update(col, "d", {"stats.keep": Increment(-1)}))

    assert store.get(col, "d") == {
        "daily": {"2026-11-24": 3, "2026-11-25": 1.5},
        "stats": {"keep": 0},
    }


@pytest.mark.emulator
def test_transaction_writes_are_checked_by_reads_or_at_commit(store, unique):
    col = f"tx_{unique}"
    store.create(col, "claim", {"owner": "first"})

    def work(tx):
        tx.set(col, "side", {"written": True})
        tx.create(col, "claim", {"owner": "second"})  # no read allowed now: the commit decides

    def update_ghost(tx):
        assert tx.get(col, "ghost") is None
        tx.update(col, "ghost", {"n": 1})  # known missing: refused before the commit

    with pytest.raises(AlreadyExists):
        store.transaction(work)
    with pytest.raises(NotFound):
        store.transaction(update_ghost)
    assert store.get(col, "claim") == {"owner": "first"}
    assert store.get(col, "side") is None


# Pub/Sub
@pytest.mark.emulator
def test_a_waited_on_publish_is_not_held_for_a_batch_yet_concurrent_ones_share_one(bus, unique):
    topic = f"batching-{unique}"
    bus.ensure_topic(topic, f"{topic}-dead")
    # The client's default holds every message 10 ms for company; an ack waits on its publish.
    assert bus.publisher().batch_settings.max_latency <= 0.001
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda n: bus.publish(topic, b"{}", {"n": str(n)}), range(64)))
    assert len(set(ids)) == 64


@pytest.mark.emulator
def test_wiring_helpers_are_idempotent_and_repoint_the_push(bus, sink, unique):
    topic, sub, dead = f"events-{unique}", f"events-{unique}-gw", f"events-{unique}-dead"
    bus.ensure_topic(topic, dead)
    bus.ensure_topic(topic, dead)
    bus.ensure_push_subscription(topic, sub, f"{sink.url}/old/", dead, 5)
    bus.ensure_push_subscription(topic, sub, f"{sink.url}/new/", dead, 5)

    message_id = bus.publish(topic, b'{"n":1}', {"orgId": "org_a", "eventId": "e1"})

    (request,) = eventually(lambda: sink.requests)
    message = json.loads(request.body)["message"]
    assert request.path == "/new/"
    assert message["messageId"] == message_id
    assert message["attributes"] == {"orgId": "org_a", "eventId": "e1"}
    stored = bus.subscriber().get_subscription(request={"subscription": bus.subscription_path(sub)})
    assert stored.dead_letter_policy.dead_letter_topic == bus.topic_path(dead)
    assert stored.dead_letter_policy.max_delivery_attempts == 5
    with pytest.raises(Unavailable):  # not wired yet: retry later, not "your request is wrong"
        bus.publish(f"missing-{unique}", b"{}", {"orgId": "org_a"})
    with pytest.raises(BadRequest):
        bus.publish(topic, b"{}", {"timeout": "1"})  # publish() would take it as its argument
    assert bus.ping() is None


# Cloud Tasks (our emulator)
def test_task_names_dedupe_and_carry_an_oidc_token(ours, sink, unique):
    queue = CloudTasksQueue(PROJECT, REGION, ours["tasks"], SERVICE_ACCOUNT)
    config = QueueConfig(f"steps-{unique}", max_attempts=3, min_backoff_s=0.5)
    queue.ensure_queue(config)
    queue.ensure_queue(config)
    url = f"{sink.url}/run_step/"
    due = datetime.now(UTC) + timedelta(seconds=0.3)
    task = TaskRequest(config.name, f"t{unique}", url, {"executionId": "ex_1"}, due)

    assert queue.enqueue(task) is True
    assert queue.enqueue(task) is False

    (request,) = eventually(lambda: sink.requests)
    assert request.method == "POST"
    assert json.loads(request.body) == {"executionId": "ex_1"}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-CloudTasks-TaskName"] == f"t{unique}"
    assert float(request.headers["X-CloudTasks-TaskETA"]) == pytest.approx(
        due.timestamp(), abs=1e-3
    )
    claims = jwt_claims(request.headers["Authorization"])
    assert (claims["email"], claims["aud"]) == (SERVICE_ACCOUNT, url)
    assert queue.enqueue(task) is False  # executed names stay taken
    assert queue.ping() is None


def test_ensure_queue_updates_the_retry_policy(ours, sink, unique):
    queue = CloudTasksQueue(PROJECT, REGION, emulator_host=ours["tasks"])
    name = f"q-{unique}"
    queue.ensure_queue(QueueConfig(name, max_attempts=3))

    queue.ensure_queue(QueueConfig(name, max_attempts=7, max_backoff_s=60.0))
    queue.enqueue(TaskRequest(name, f"t{unique}", f"{sink.url}/x", {}))

    stored = queue.client().get_queue(name=queue.queue_path(name))
    assert stored.retry_config.max_attempts == 7
    assert stored.retry_config.max_backoff == timedelta(seconds=60)
    (request,) = eventually(lambda: sink.requests)
    assert "Authorization" not in request.headers  # no service account configured, no token


def test_ensure_queue_sets_then_updates_the_concurrency_limit(ours, unique):
    queue = CloudTasksQueue(PROJECT, REGION, emulator_host=ours["tasks"])
    name = f"q-{unique}"

    def limits():
        return queue.client().get_queue(name=queue.queue_path(name)).rate_limits

    queue.ensure_queue(QueueConfig(name, max_concurrent_dispatches=2))
    assert limits().max_concurrent_dispatches == 2

    queue.ensure_queue(QueueConfig(name, max_concurrent_dispatches=5))
    assert limits().max_concurrent_dispatches == 5
    assert limits().max_dispatches_per_second == 500  # the other limits keep their defaults

    queue.ensure_queue(QueueConfig(name))  # unset: the queue keeps its limit, as before
    assert limits().max_concurrent_dispatches == 5


# Cloud Scheduler (our emulator)
def test_scheduler_job_is_created_then_updated_and_runs(ours, sink, unique):
    jobs = SchedulerJobs(PROJECT, REGION, ours["scheduler"], SERVICE_ACCOUNT)
    job_id = f"cron-{unique}"
    jobs.ensure_http_job(job_id, "0 3 * * *", "UTC", f"{sink.url}/old")
    jobs.ensure_http_job(
        job_id, "*/5 * * * *", "Europe/Paris", f"{sink.url}/tick",
        body=b'{"kind":"tick"}', headers={"Content-Type": "application/json", "X-Cron": "s3cret"},
    )  # fmt: skip

    jobs.run(job_id)

    stored = jobs.client().get_job(name=jobs.job_path(job_id))
    assert (stored.schedule, stored.time_zone) == ("*/5 * * * *", "Europe/Paris")
    (request,) = eventually(lambda: sink.requests)
    assert (request.method, request.path, request.body) == ("POST", "/tick", b'{"kind":"tick"}')
    assert request.headers["X-Cron"] == "s3cret"
    assert request.headers["X-CloudScheduler-JobName"] == job_id
    assert jwt_claims(request.headers["Authorization"])["email"] == SERVICE_ACCOUNT
    with pytest.raises(NotFound):
        jobs.run(f"missing-{unique}")


# bounded failure when the backend is gone
def test_a_dead_backend_is_unavailable_within_the_timeout(unique):
    os.environ["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{closed_port()}"
    os.environ["PUBSUB_EMULATOR_HOST"] = f"127.0.0.1:{closed_port()}"
    dead = f"127.0.0.1:{closed_port()}"
    store, bus = FirestoreStore(PROJECT, timeout=0.5), PubsubBus(PROJECT, timeout=0.5)
    queue = CloudTasksQueue(PROJECT, REGION, emulator_host=dead, timeout=0.5)
    jobs = SchedulerJobs(PROJECT, REGION, emulator_host=dead, timeout=0.5)
    calls = {
        "get": lambda: store.get("c", "d"),
        "create": lambda: store.create("c", "d", {"n": 1}),
        "query": lambda: store.query("c", [Where("n", "==", 1)]),
        "transaction": lambda: store.transaction(lambda tx: tx.get("c", "d")),
        "store ping": store.ping,
        "publish": lambda: bus.publish("t", b"{}", {}),
        "bus ping": bus.ping,
        "enqueue": lambda: queue.enqueue(TaskRequest("q", f"t{unique}", "http://x/", {})),
        "queue ping": queue.ping,
        "job": lambda: jobs.ensure_http_job("j", "* * * * *", "UTC", "http://x/"),
    }
    try:
        for name, call in calls.items():
            started = time.monotonic()
            with pytest.raises(Unavailable) as raised:
                call()
            assert time.monotonic() - started < 3.0, name
            assert raised.type is Unavailable, name  # ours, with the client's error as cause
    finally:
        bus.close()
