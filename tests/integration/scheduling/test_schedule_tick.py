"""cron_playbooks /tick and /sweep (domain.md §8.3–8.4) through the deployed entry point."""

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import functions_framework
import pytest

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.adapters.service_tokens import OidcToken
from playbook_core.config import Settings
from playbook_core.domain.collections import CUSTOMERS, EXECUTIONS, SCHEDULES
from playbook_core.domain.executions import calendar_execution_id, schedule_execution_id
from playbook_core.domain.ids import h
from playbook_core.domain.loading import load_text
from playbook_core.domain.sync import schedule_id
from playbook_core.ports import QueueConfig
from playbook_core.runtime import bootstrap
from playbook_core.runtime.cloudevents import DocumentChange
from playbook_core.service.authoring import playbooks
from playbook_core.service.authoring.playbooks import Authoring
from playbook_core.service.execution.run_start import Runs
from playbook_core.service.ingress import document_changes
from playbook_core.service.ingress.event_log import Publishing
from playbook_core.service.scheduling.tick import handle_cron
from playbook_core.testing import FrozenClock, RecordingServer

MAIN = str(Path(__file__).parents[3] / "functions" / "main.py")
STEPS = """
steps:
  - {id: hello, action: notify, params: {channel: dashboard, to: "role:admin", message: Hi}}
"""


def utc(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class OverlappingStore(EmbeddedStore):
    """The first two queries wait for each other: two ticks read the same due docs, then race."""

    def __init__(self, path):
        super().__init__(path)
        self.barrier, self.waiting = threading.Barrier(2, timeout=10), 2

    def query(self, *args, **kwargs):
        page = super().query(*args, **kwargs)
        if self.waiting > 0:
            self.waiting -= 1
            self.barrier.wait()
        return page


@pytest.fixture(scope="module")
def server():
    started = RecordingServer().start()  # answers every task 200, so nothing is retried
    yield started
    started.stop()


@pytest.fixture
def world(server):
    store = OverlappingStore(":memory:")
    store.waiting = 0  # only the overlap test turns the barrier on
    bus, queue = InProcessBus(), InProcessTaskQueue()
    queue.create_queue(QueueConfig("playbook-steps"))
    clock = FrozenClock(utc("2026-11-24T10:00"))  # 05:00 in New York
    settings = Settings(backend="embedded", functions_base_url=server.url, local_oidc=True)
    app = bootstrap.App(settings, store, bus, queue, clock)
    bootstrap.use(app)
    yield app
    bootstrap.use(None)
    queue.close()
    bus.close()
    store.close()


def create(app, triggers, org="org_a"):
    text = f"name: Scheduled\nagent: craig\ntriggers:\n{triggers}{STEPS}"
    return playbooks.create_playbook(
        org_id=org, validated=load_text(text.encode()), actor="uid_1", source={"kind": "user"},
        reason="create", authoring=Authoring(store=app.store, clock=app.clock, ids=app.ids), status="active",
    )["id"]  # fmt: skip


def oidc(caller="cloud_scheduler"):
    """The caller's (unsigned, local) ID token, as the emulators attach it."""
    settings = bootstrap.app().settings
    token = OidcToken(settings.invoker(caller), settings.function_url("cron_playbooks"))
    return {"Authorization": token.authorization("", time.time())}


def cron(path, body=None):
    client = functions_framework.create_app("cron_playbooks", MAIN, "http").test_client()
    # Ticks come from Cloud Scheduler, sweeps are Cloud Tasks tasks (domain.md §8.4).
    response = client.post(
        path,
        json=body or {},
        headers=oidc("cloud_tasks" if path == "/sweep" else "cloud_scheduler"),
    )
    assert response.status_code == 200
    return response.get_json()


def executions(app):
    return {doc.id: doc.data for doc in app.store.query(EXECUTIONS, limit=500).docs}


DAILY = "  - {id: morning, type: schedule, frequency: daily}\n"


def test_a_due_daily_schedule_starts_one_run_and_advances(world):
    playbook_id = create(world, DAILY)
    schedule = world.store.get(SCHEDULES, schedule_id(playbook_id, "morning"))
    assert schedule["nextRunAt"] == utc("2026-11-24T12:00")  # 07:00 in New York
    assert cron("/tick")["due"] == 0
    world.clock.current = utc("2026-11-24T12:00:30")
    summary = cron("/tick")
    assert (summary["due"], summary["started"]) == (1, 1)
    run_id = schedule_execution_id(playbook_id, "2026-11-24T12:00Z")
    run = executions(world)[run_id]
    assert run["trigger"] == {
        "type": "schedule", "triggerId": "morning", "slotUtc": "2026-11-24T12:00Z",
        "slotLocal": "2026-11-24T07:00", "timezone": "America/New_York",
    }  # fmt: skip
    assert (run["status"], run["userId"], run["triggeredBy"]) == ("queued", "system", "schedule")
    assert run["firstTaskEnqueuedAt"] == world.clock.now()
    [task] = world.queue.enqueued
    assert task.url == f"{world.settings.functions_base_url}/execute_step/"
    assert task.body == {"executionId": run_id, "stepIndex": 0, "attempt": 1, "orgId": "org_a"}
    schedule = world.store.get(SCHEDULES, schedule_id(playbook_id, "morning"))
    assert schedule["lastSlot"] == "2026-11-24T12:00Z"
    assert schedule["lastExecutionId"] == run_id
    assert (schedule["nextRunAt"], schedule["nextRunLocal"]) == (
        utc("2026-11-25T12:00"),
        "2026-11-25T07:00",
    )


def test_the_same_tick_delivered_twice_starts_one_run(world):
    create(world, DAILY)
    world.clock.current = utc("2026-11-24T12:00:30")
    first, second = cron("/tick"), cron("/tick")
    assert (first["started"], second["due"], second["started"]) == (1, 0, 0)
    assert len(executions(world)) == 1
    assert len(world.queue.enqueued) == 1


def test_daily_and_weekly_routes_are_plain_ticks(world):
    create(world, DAILY)
    world.clock.current = utc("2026-11-24T12:00:30")
    assert cron("/daily")["started"] == 1
    assert cron("/weekly")["due"] == 0


def test_two_overlapping_ticks_start_one_run(world):
    playbook_id = create(world, DAILY)
    world.clock.current = utc("2026-11-24T12:00:30")
    world.store.waiting = 2
    results = []

    def run():
        results.append(
            handle_cron("/tick", {}, runs=Runs(store=world.store, queue=world.queue, target=world.step_target, clock=world.clock), publishing=Publishing(store=world.store, bus=world.bus, topic="playbook-events", clock=world.clock),
                        )
        )  # fmt: skip

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(r["due"] for r in results) == [1, 1]  # both saw the slot due
    assert sum(r["started"] for r in results) == 1
    assert list(executions(world)) == [schedule_execution_id(playbook_id, "2026-11-24T12:00Z")]


def test_two_triggers_on_one_slot_start_one_run(world):
    triggers = DAILY + '  - {id: also, type: schedule, cron: "0 7 * * *"}\n'
    create(world, triggers)
    world.clock.current = utc("2026-11-24T12:00:30")
    summary = cron("/tick")
    assert (summary["due"], summary["started"], summary["duplicates"]) == (2, 1, 1)
    assert len(executions(world)) == 1


def test_slots_missed_for_three_days_run_only_the_latest(world, caplog):
    playbook_id = create(world, DAILY)
    world.clock.current = utc("2026-11-27T13:00")  # the 24th, 25th, 26th and 27th are due
    summary = cron("/tick")
    assert (summary["started"], summary["missed"]) == (1, 1)
    assert list(executions(world)) == [schedule_execution_id(playbook_id, "2026-11-27T12:00Z")]
    schedule = world.store.get(SCHEDULES, schedule_id(playbook_id, "morning"))
    assert schedule["lastMissedSlot"] == "2026-11-26T12:00Z"
    assert schedule["nextRunAt"] == utc("2026-11-28T12:00")
    assert any(r.getMessage() == "missed_slot" for r in caplog.records)


def test_a_latest_slot_older_than_a_day_is_missed_too(world):
    playbook_id = create(world, "  - {id: weekly, type: schedule, frequency: weekly}\n")
    world.clock.current = utc("2026-12-02T15:00")  # Monday 30 Nov 09:00 was two days ago
    summary = cron("/tick")
    assert (summary["started"], summary["missed"]) == (0, 1)
    assert executions(world) == {}
    schedule = world.store.get(SCHEDULES, schedule_id(playbook_id, "weekly"))
    assert schedule["lastMissedSlot"] == "2026-11-30T14:00Z"
    assert schedule["nextRunAt"] == utc("2026-12-07T14:00")


def test_daily_schedule_follows_new_york_across_the_dst_switch(world):
    world.clock.current = utc("2026-03-07T13:00")  # 08:00 EST, after the day's slot
    playbook_id = create(world, DAILY)
    schedule = world.store.get(SCHEDULES, schedule_id(playbook_id, "morning"))
    assert schedule["nextRunAt"] == utc("2026-03-08T11:00")  # 07:00 EDT
    world.clock.current = utc("2026-03-08T11:00")
    assert cron("/tick")["started"] == 1
    run = executions(world)[schedule_execution_id(playbook_id, "2026-03-08T11:00Z")]
    assert run["trigger"]["slotLocal"] == "2026-03-08T07:00"
    assert world.store.get(SCHEDULES, schedule_id(playbook_id, "morning"))["nextRunAt"] == utc(
        "2026-03-09T11:00"
    )


def test_a_local_time_in_the_spring_gap_runs_once_at_three(world):
    world.clock.current = utc("2026-03-07T08:00")
    playbook_id = create(world, '  - {id: night, type: schedule, cron: "30 2 * * *"}\n')
    world.clock.current = utc("2026-03-08T07:00")
    assert cron("/tick")["started"] == 1
    assert schedule_execution_id(playbook_id, "2026-03-08T07:00Z") in executions(world)


def test_paused_schedules_are_ignored(world):
    playbook_id = create(world, DAILY)
    playbooks.change_status(
        org_id="org_a", playbook_id=playbook_id, operation="toggle_off", actor="uid_1",
        store=world.store, clock=world.clock,
    )  # fmt: skip
    world.clock.current = utc("2026-11-24T12:00:30")
    assert cron("/tick")["due"] == 0
    assert executions(world) == {}


def test_unknown_cron_path_is_refused(world):
    client = functions_framework.create_app("cron_playbooks", MAIN, "http").test_client()
    assert client.post("/nothing", json={}, headers=oidc()).get_json()["error"] == "not-found"


# --- calendar triggers --------------------------------------------------------------------------


def customer(app, customer_id, **fields):
    change = DocumentChange(
        event_id=f"ce-{customer_id}", event_type="google.cloud.firestore.document.v1.written",
        path=f"customers/{customer_id}", before=None, after=fields, changed=frozenset(fields),
    )  # fmt: skip
    document_changes.document_changed(
        change,
        publishing=Publishing(
            store=app.store, bus=app.bus, topic="playbook-events", clock=app.clock
        ),
    )
    app.store.set(CUSTOMERS, customer_id, fields)


def test_calendar_trigger_sweeps_birthdays_including_29_february_in_a_common_year(world):
    world.clock.current = utc("2027-02-27T15:00")
    playbook_id = create(
        world, '  - {id: bday, type: calendar, dateField: customer.birthday, at: "09:00"}\n'
    )
    customer(
        world, "cus_28", orgId="org_a", email="Feb28@X.io", firstName="Ann", birthday="1990-02-28"
    )
    customer(world, "cus_29", orgId="org_a", phone="5550001111", birthday="2000-02-29")
    customer(world, "cus_mar", orgId="org_a", email="m@x.io", birthday="1991-03-01")
    customer(world, "cus_other", orgId="org_b", email="o@x.io", birthday="1990-02-28")
    world.clock.current = utc("2027-02-28T14:00:10")  # 09:00 in New York
    assert cron("/tick")["sweeps"] == 1
    [task] = world.queue.enqueued
    assert task.name == h(playbook_id, "2027-02-28")
    assert task.url == f"{world.settings.functions_base_url}/cron_playbooks/sweep"
    assert task.body["localDate"] == "2027-02-28"
    assert executions(world) == {}  # the sweep starts the runs, not the tick
    result = cron("/sweep", task.body)
    assert (result["matched"], result["started"]) == (2, 2)
    runs = executions(world)
    assert set(runs) == {
        calendar_execution_id(playbook_id, "2027-02-28", c) for c in ("cus_28", "cus_29")
    }
    first = runs[calendar_execution_id(playbook_id, "2027-02-28", "cus_28")]
    assert first["customer"] == {"id": "cus_28", "email": "feb28@x.io", "firstName": "Ann"}
    assert first["trigger"]["type"] == "calendar"
    assert first["trigger"]["localDate"] == "2027-02-28"
    again = cron("/sweep", task.body)
    assert (again["started"], again["duplicates"]) == (0, 2)
    assert len(executions(world)) == 2


def test_calendar_offset_runs_days_before_the_date(world):
    world.clock.current = utc("2026-11-20T15:00")
    create(world, "  - {id: soon, type: calendar, dateField: customer.birthday, offsetDays: -3}\n")
    customer(world, "cus_1", orgId="org_a", email="a@x.io", birthday="11-24")
    world.clock.current = utc("2026-11-21T14:00")
    cron("/tick")
    [task] = world.queue.enqueued
    assert cron("/sweep", task.body)["started"] == 1


def test_sweep_for_another_orgs_playbook_starts_nothing(world):
    playbook_id = create(world, "  - {id: bday, type: calendar, dateField: customer.birthday}\n")
    body = {"orgId": "org_b", "playbookId": playbook_id, "localDate": "2026-11-24"}
    assert cron("/sweep", body)["outcome"] == "tenant_mismatch"
    assert executions(world) == {}
