"""The real stack runner (`python -m emulators up|down`) on free ports in a private state dir."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import grpc
import httpx
import pytest
from google.api_core import exceptions as gexc
from google.cloud import firestore, pubsub_v1, scheduler_v1, tasks_v2
from google.cloud.scheduler_v1.services.cloud_scheduler.transports import (
    CloudSchedulerGrpcTransport,
)
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from emulators import processes, wiring
from playbook_core.domain.collections import CUSTOMERS
from playbook_core.runtime.manifest import load_manifest
from playbook_core.testing import eventually
from tests.conftest import require_official_emulators

pytestmark = pytest.mark.stack

ROOT = Path(__file__).parents[2]
PROJECT = "demo-playbooks"
QUEUE = f"projects/{PROJECT}/locations/us-central1/queues/playbook-steps"
KEYS = {
    "gateway", "firestore", "pubsub", "tasks", "scheduler", "auth", "mailjet", "blackleaf",
    "agents", "slack", "shopifyAdmin", "woocommerceApi", "backend", "project", "cronSecret",
    "demoOrgId", "pids",
}  # fmt: skip
EVENTS = ROOT / "tests" / "data" / "cloudevents"


def runner(command, state_dir, env, timeout=90):
    return subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "emulators", command, "--state-dir", str(state_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def stack_env(**overrides):
    # Gateway port 0: a free port, never a collision with a developer's stack on 8080. The Auth
    # emulator (~15 s of CPU to start) has its own e2e test: test_auth_emulator.py.
    return {
        **os.environ, "PLAYBOOKS_GATEWAY_PORT": "0", "PLAYBOOKS_AUTH_EMULATOR": "off",
        **overrides,
    }  # fmt: skip


class Stack:
    def __init__(self, state_dir, env):
        self.state_dir, self.env = state_dir, env
        started = time.monotonic()
        self.up = runner("up", state_dir, env)
        self.up_seconds = time.monotonic() - started
        self.state = (
            json.loads((state_dir / "stack.json").read_text()) if self.up.returncode == 0 else None
        )

    def log(self, name="gateway"):
        lines = (self.state_dir / "logs" / f"{name}.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def find(self, message, **fields):
        return [
            e for e in self.log()
            if e.get("message") == message and all(e.get(k) == v for k, v in fields.items())
        ]  # fmt: skip

    def task_requests(self, task_id):
        return [
            e for e in self.find("gateway request", function="execute_step")
            if e.get("cloudTasks", {}).get("X-CloudTasks-TaskName") == task_id
        ]  # fmt: skip


def start(state_dir, env):
    stack = Stack(state_dir, env)
    if stack.up.returncode != 0:
        runner("down", state_dir, env)
        pytest.fail(f"up failed:\n{stack.up.stdout}\n{stack.up.stderr}")
    sys.stderr.write(f"\n[stack up in {stack.up_seconds:.1f} s: {stack.state['backend']}]\n")
    return stack


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    require_official_emulators(request)
    state_dir = tmp_path_factory.mktemp("stack")
    env = stack_env(PLAYBOOKS_BACKEND="emulators")
    running = start(state_dir, env)
    yield running
    runner("down", state_dir, env)  # idempotent: the last test already stopped it


def tasks_client(stack):
    channel = grpc.insecure_channel(stack.state["tasks"])
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))


def create_task(stack, task_id, body, *, oidc=True):
    """A step task as our CloudTasksQueue creates it: with the Cloud Tasks identity's OIDC token
    for execute_step's own URL (the audience the function checks)."""
    client = tasks_client(stack)
    token = tasks_v2.OidcToken(
        service_account_email=wiring.invoker("cloud_tasks"),
        audience=f"{stack.state['gateway']}/execute_step",
    )
    client.create_task(
        parent=QUEUE,
        task=tasks_v2.Task(
            name=f"{QUEUE}/tasks/{task_id}",
            http_request=tasks_v2.HttpRequest(
                http_method=tasks_v2.HttpMethod.POST,
                url=f"{stack.state['gateway']}/execute_step/",
                headers={"Content-Type": "application/json"},
                body=json.dumps(body).encode(),
                oidc_token=token if oidc else None,
            ),
        ),
    )
    return client


def step_body():  # a StepTask for an execution that does not exist
    return {"executionId": f"ex_{uuid.uuid4().hex}", "stepIndex": 0, "attempt": 1, "orgId": "o"}


@pytest.mark.emulator
def test_up_returns_quickly_and_every_endpoint_answers(stack):
    assert stack.up_seconds < 60
    assert set(stack.state) == KEYS
    assert stack.state["backend"] == "emulators"
    assert stack.state["project"] == PROJECT
    assert stack.state["demoOrgId"] == "org_demo_dispensary"  # `make up` seeds (api.md §2)
    assert stack.state["auth"] is None  # PLAYBOOKS_AUTH_EMULATOR=off: test_auth_emulator.py
    for name in ("firestore", "pubsub"):
        assert httpx.get(f"http://{stack.state[name]}/", timeout=5).text.strip() == "Ok"
    for name in ("mailjet", "blackleaf", "agents", "slack"):
        assert httpx.get(f"{stack.state[name]}/__requests", timeout=5).status_code == 200
    queue = tasks_client(stack).get_queue(name=QUEUE)
    assert queue.retry_config.max_attempts == 20
    channel = grpc.insecure_channel(stack.state["scheduler"])
    scheduler = scheduler_v1.CloudSchedulerClient(
        transport=CloudSchedulerGrpcTransport(channel=channel)
    )
    assert isinstance(list(scheduler.list_jobs(parent=QUEUE.rsplit("/queues", 1)[0])), list)
    assert all(processes.alive(pid) for pid in stack.state["pids"].values())


@pytest.mark.emulator
def test_every_function_runs_in_a_process_of_its_own_behind_the_gateway(stack):
    manifest = load_manifest()
    served = {}
    for pid in group_members([stack.state["pids"]["gateway"]]):
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        if "--function" in args:
            served[args[args.index("--function") + 1]] = pid
    assert set(served) == {f.name for f in manifest.functions}
    assert len(set(served.values())) == len(served)
    unknown = httpx.get(f"{stack.state['gateway']}/no_such_function/x", timeout=15)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


@pytest.mark.emulator
def test_the_steps_queue_is_sharded_with_each_shards_limit(stack):
    steps = load_manifest().steps_queue()
    client = tasks_client(stack)
    assert steps.rate_limits is not None
    for name in steps.shard_names():
        queue = client.get_queue(name=QUEUE.replace("playbook-steps", name))
        assert queue.rate_limits.max_concurrent_dispatches == (
            steps.rate_limits.max_concurrent_dispatches
        )


@pytest.mark.emulator
def test_health_answers_with_every_check(stack):
    response = httpx.get(f"{stack.state['gateway']}/playbooks_api/v1/health", timeout=15)
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert {checks[name] for name in ("firestore", "pubsub", "tasks")} == {"ok"}
    assert {checks[name] for name in ("mailjet", "blackleaf", "harness", "slack")} == {"configured"}


@pytest.mark.emulator
def test_customer_document_written_with_the_official_client_reaches_on_customer_written(stack):
    os.environ["FIRESTORE_EMULATOR_HOST"] = stack.state["firestore"]
    customer = f"cus_{uuid.uuid4().hex}"
    client = firestore.Client(project=PROJECT)
    client.document(f"{CUSTOMERS}/{customer}").set({"email": f"{customer}@example.com"})
    client.close()
    [entry] = eventually(
        lambda: stack.find("document change received", document=f"{CUSTOMERS}/{customer}")
    )
    assert entry["function"] == "on_customer_written"
    assert entry["kind"] == "created"


@pytest.mark.emulator
def test_task_for_a_missing_execution_reaches_execute_step_and_is_acked_once(stack):
    task_id = f"ack-{uuid.uuid4().hex}"
    body = step_body()
    client = create_task(stack, task_id, body)
    [request] = eventually(lambda: stack.task_requests(task_id))
    assert request["status"] == 200
    headers = request["cloudTasks"]
    assert headers["X-CloudTasks-QueueName"] == "playbook-steps"
    assert headers["X-CloudTasks-TaskRetryCount"] == "0"
    assert {"X-CloudTasks-TaskExecutionCount", "X-CloudTasks-TaskETA"} <= set(headers)
    assert stack.find("task for a missing execution acknowledged", executionId=body["executionId"])
    with pytest.raises(gexc.NotFound):  # done and forgotten: nothing left to retry
        client.get_task(name=f"{QUEUE}/tasks/{task_id}")
    assert len(stack.task_requests(task_id)) == 1


@pytest.mark.emulator
def test_a_task_without_an_oidc_token_is_refused_by_execute_step(stack):
    task_id = f"noauth-{uuid.uuid4().hex}"
    body = step_body()
    client = create_task(stack, task_id, body, oidc=False)
    [request] = eventually(lambda: stack.task_requests(task_id))
    client.delete_task(name=f"{QUEUE}/tasks/{task_id}")  # it would be retried, refused again
    assert request["status"] == 401
    assert not stack.find(
        "task for a missing execution acknowledged", executionId=body["executionId"]
    )


@pytest.mark.emulator
@pytest.mark.slow
def test_task_answered_503_while_storage_is_down_is_retried_with_backoff(stack):
    # Freezing the Firestore JVM makes reads hang until the store's bounded deadline (10 s):
    # execute_step then answers 503 and the queue must come back after min_backoff (5 s).
    firestore_pid = stack.state["pids"]["firestore"]
    task_id = f"retry-{uuid.uuid4().hex}"
    os.kill(firestore_pid, signal.SIGSTOP)
    try:
        create_task(stack, task_id, step_body())
        [failed] = eventually(lambda: stack.task_requests(task_id), timeout=40)
    finally:
        os.kill(firestore_pid, signal.SIGCONT)
    assert failed["status"] == 503
    retried = eventually(lambda: stack.task_requests(task_id)[1:], timeout=40)[0]
    assert retried["status"] == 200
    assert retried["cloudTasks"]["X-CloudTasks-TaskRetryCount"] == "1"
    assert retried["cloudTasks"]["X-CloudTasks-TaskPreviousResponse"] == "503"
    assert "X-CloudTasks-TaskRetryReason" in retried["cloudTasks"]
    # Log times are when each answer was written; the retry started min_backoff after the 503.
    gap = datetime.fromisoformat(retried["time"]) - datetime.fromisoformat(failed["time"])
    assert gap.total_seconds() >= 4.5


@pytest.mark.emulator
def test_publish_to_playbook_events_reaches_on_event_published(stack):
    os.environ["PUBSUB_EMULATOR_HOST"] = stack.state["pubsub"]
    event_id = f"evt_{uuid.uuid4().hex}"
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(PROJECT, "playbook-events")
    attributes = {"orgId": "org_e2e", "name": "order.created", "eventId": event_id}
    publisher.publish(topic, b"{}", **attributes).result(timeout=10)
    publisher.stop()
    [entry] = eventually(lambda: stack.find("event message received", eventId=event_id))
    assert entry["eventName"] == "order.created"
    assert entry["orgId"] == "org_e2e"


@pytest.mark.emulator
def test_a_second_up_says_already_running_and_starts_nothing(stack):
    again = runner("up", stack.state_dir, stack.env)
    assert again.returncode == 0
    assert "already running" in again.stdout
    assert stack.state["gateway"] in again.stdout
    assert json.loads((stack.state_dir / "stack.json").read_text())["pids"] == stack.state["pids"]


@pytest.mark.emulator
def test_down_leaves_no_recorded_process_or_group_member_alive(stack):
    # Runs last in this module: the stack fixture's own `down` then finds nothing to do.
    stopped = runner("down", stack.state_dir, stack.env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    pids = stack.state["pids"].values()
    assert not [pid for pid in pids if processes.alive(pid)]
    assert not group_members(pids)
    assert not (stack.state_dir / "stack.json").exists()


def group_members(groups):
    """Live processes whose process group is one the stack created (children of its parts)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) in set(groups) and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def test_embedded_stack_runs_with_java_hidden(tmp_path):
    env = stack_env(PLAYBOOKS_BACKEND="embedded", PATH=str(Path(sys.executable).parent))
    env.pop("JAVA_HOME", None)
    stack = start(tmp_path, env)
    try:
        assert set(stack.state) == KEYS
        assert stack.state["backend"] == "embedded"
        assert [stack.state[name] for name in ("firestore", "pubsub", "tasks")] == [None] * 3
        assert stack.state["scheduler"]
        commands = [
            Path(f"/proc/{pid}/cmdline").read_bytes() for pid in stack.state["pids"].values()
        ]
        assert not [command for command in commands if b"java" in command]
        health = httpx.get(f"{stack.state['gateway']}/playbooks_api/v1/health", timeout=15)
        assert health.status_code == 200
        assert health.json()["checks"]["firestore"] == "ok"
        unknown = httpx.get(f"{stack.state['gateway']}/no_such_function/v1/health", timeout=15)
        assert unknown.status_code == 404
        assert "playbooks_api" in unknown.json()["detail"]
        # What the Firestore emulator would POST for a new customer, recorded from it.
        headers = json.loads((EVENTS / "firestore_customer_created.headers.json").read_text())
        headers["ce-id"] = event_id = uuid.uuid4().hex
        route = f"/functions/projects/{PROJECT}/triggers/{PROJECT}:on_customer_written"
        body = (EVENTS / "firestore_customer_created.body").read_bytes()
        posted = httpx.post(
            stack.state["gateway"] + route, content=body, headers=headers, timeout=15
        )
        assert posted.status_code == 200
        [entry] = eventually(lambda: stack.find("document change received", ceId=event_id))
        assert entry["function"] == "on_customer_written"
        assert entry["document"] == headers["ce-document"]
    finally:
        stopped = runner("down", tmp_path, env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not [pid for pid in stack.state["pids"].values() if processes.alive(pid)]
