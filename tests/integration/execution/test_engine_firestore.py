"""The engine on the official Firestore emulator: races, live status, storage outages (§7.8, §7.15)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from playbook_core.domain.collections import DELIVERIES, EXECUTIONS
from playbook_core.domain.errors import Unavailable
from playbook_core.service.execution.step_handler import run_step
from playbook_core.service.execution.step_task import StepTask
from playbook_core.testing import eventually

pytestmark = pytest.mark.emulator

ONE_EMAIL = """
name: Flash sale
agent: craig
triggers: [{type: event, eventName: customer.signup}]
steps:
  - id: email
    action: send_email
    params: {to: "{{ customer.email }}", subject: Sale, body: Everything is half price today}
"""
THREE_STEPS = """
name: Three steps
agent: craig
triggers: [{type: manual}]
steps:
  - {id: compose, action: delegate, params: {agent: craig, task: Write it}}
  - {id: email, action: send_email, params: {to: "{{ org.admin_email }}", subject: "{{ steps.compose.output.title }}", body: "{{ steps.compose.output.body }}"}}
  - {id: tell, action: notify, params: {channel: dashboard, to: "role:admin", message: done}}
"""


def test_twenty_concurrent_runs_for_one_customer_send_exactly_one_email(firestore_rig):
    rig = firestore_rig
    playbook = rig.playbook(ONE_EMAIL)
    customer = {"id": "cus_race", "email": "race@example.com"}
    executions = [rig.start(playbook, customer=customer) for _ in range(20)]
    for execution_id in executions:
        rig.store.update(EXECUTIONS, execution_id, {"approvedAt": rig.clock.now()})
    tasks = [rig.queue.take() for _ in executions]
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(
            pool.map(lambda t: run_step(StepTask.model_validate(t.body), rig.engine), tasks)
        )
    assert len(rig.sent_emails()) == 1
    assert all(r["finished"] == "completed" for r in results)
    deliveries = [
        d.data
        for d in rig.store.query(DELIVERIES, [], limit=100).docs
        if d.data["executionId"] in executions
    ]
    assert sorted(d["status"] for d in deliveries) == ["sent"] + ["skipped"] * 19
    assert {d["skipReason"] for d in deliveries if d["status"] == "skipped"} == {"deduped"}


def test_the_execution_document_shows_each_step_as_it_happens(firestore_rig):
    from google.cloud import firestore

    rig = firestore_rig
    execution_id = rig.start(rig.playbook(THREE_STEPS))
    seen, changed = [], threading.Event()

    def on_snapshot(snapshots, _changes, _read_time):
        for snapshot in snapshots:
            data = snapshot.to_dict() or {}
            seen.append((data.get("status"), data.get("stepsCompleted")))
            changed.set()

    watch = (
        firestore.Client(project="demo-playbooks")
        .collection(EXECUTIONS)
        .document(execution_id)
        .on_snapshot(on_snapshot)
    )
    try:
        eventually(lambda: seen)
        for _ in range(3):
            count = len(seen)
            rig.step()
            eventually(lambda count=count: len(seen) > count)
        eventually(lambda: seen[-1][0] == "completed")
    finally:
        watch.unsubscribe()
    statuses = [status for status, _ in seen]
    assert statuses[0] == "queued"
    assert "running" in statuses
    assert statuses[-1] == "completed"
    assert [done for _, done in seen if done is not None][-1] == 3


class FlakyStore:
    """The Firestore store, made unavailable for a while (as when the emulator is unreachable)."""

    def __init__(self, store):
        self.store, self.down = store, False

    def __getattr__(self, name):
        attribute = getattr(self.store, name)
        if not callable(attribute):
            return attribute

        def guarded(*args, **kwargs):
            if self.down:
                raise Unavailable("firestore unreachable")
            return attribute(*args, **kwargs)

        return guarded


def test_a_storage_outage_mid_run_loses_nothing_and_sends_once(firestore_rig):
    rig = firestore_rig
    execution_id = rig.start(rig.playbook(THREE_STEPS))
    rig.step()  # compose
    email_task = rig.queue.take()
    flaky = FlakyStore(rig.store)
    rig.store = flaky
    flaky.down = True
    with pytest.raises(Unavailable):  # execute_step answers 503; Cloud Tasks redelivers
        run_step(StepTask.model_validate(email_task.body), rig.engine)
    flaky.down = False
    run_step(StepTask.model_validate(email_task.body), rig.engine)  # the redelivery
    rig.run_all()
    assert len(rig.sent_emails()) == 1
    execution = rig.execution(execution_id)
    assert execution["status"] == "completed"
    assert execution["stepsCompleted"] == 3
