"""Store calls of a run (issue #14): a warm instance runs 3 steps in at most 15 store calls.

Calls are counted as tests/bench/counting.py counts them (a transaction is one call), around the
real store, from start_run to the completed run, with one engine for the whole instance.
"""

import dataclasses
import uuid

import pytest

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.domain.collections import DELIVERIES, NOTIFICATIONS, step_doc_id, steps_path
from playbook_core.service.execution.step_handler import run_step
from playbook_core.service.execution.step_task import StepTask
from tests.bench.counting import CountingStore
from tests.integration.execution.conftest import _reset, _rig
from tests.integration.execution.test_execution_engine import INTERNAL

# delegate → send_email to the org's admin → notify dashboard, as `make bench` runs it
THREE_STEPS = INTERNAL
BUDGET = 15  # store calls from enqueue to completed; 39 before issue #14
VERSIONS = "read playbooks/*/versions"


@pytest.fixture(params=["embedded", pytest.param("firestore", marks=pytest.mark.emulator)])
def counted(request, standins):
    """A rig over a counting store, and one engine for the whole instance (App.engine())."""
    if request.param == "embedded":
        inner = EmbeddedStore(":memory:")
        org = "org_a"
    else:
        request.getfixturevalue("emulator_env")
        from playbook_core.adapters.firestore import FirestoreStore

        inner = FirestoreStore("demo-playbooks")
        org = f"org_{uuid.uuid4().hex[:10]}"
    _reset(standins)
    store = CountingStore(inner)
    rig = _rig(store, standins, org)
    yield rig, store, rig.engine
    if isinstance(inner, EmbeddedStore):
        inner.close()


def _run(rig, store, engine, playbook):
    """One run, enqueue to the end; each step with the engine App.engine() would hand out."""
    with store.measure() as counts:
        execution_id = rig.start(playbook, event_id=f"e_{uuid.uuid4().hex[:10]}")
        while (task := rig.queue.take()) is not None:
            per_step = dataclasses.replace(engine, jitter=1.1)  # as App.engine() does per step
            run_step(StepTask.model_validate(task.body), per_step)
    return execution_id, counts


def test_a_three_step_run_on_a_warm_instance_stays_within_its_store_call_budget(counted):
    rig, store, engine = counted
    playbook = rig.playbook(THREE_STEPS)
    _run(rig, store, engine, playbook)  # warms the instance
    execution_id, counts = _run(rig, store, engine, playbook)
    execution = rig.execution(execution_id)
    assert execution["status"] == "completed"
    assert [r["status"] for r in execution["stepResults"]] == ["completed"] * 3
    assert counts.calls <= BUDGET, dict(counts.by_collection)
    # What the folding must not lose: one send, recorded; the notice; the finish counted.
    assert counts.by_collection["write playbook_deliveries"] >= 1
    assert counts.by_collection["write customer_communications"] == 1  # the send log
    assert counts.by_collection["write notifications"] == 1
    assert counts.by_collection["write playbook_stats_daily"] == 3  # started, sent, completed
    email = store.inner.get(steps_path(execution_id), step_doc_id(1))
    delivery = store.inner.get(DELIVERIES, email["output"]["deliveryId"])
    assert delivery["status"] == "sent"
    notices = [
        d
        for d in store.inner.query(NOTIFICATIONS).docs
        if d.data.get("executionId") == execution_id
    ]
    assert [d.data["body"] for d in notices] == ["Sent for #1001"]


def test_a_second_run_of_a_pinned_version_does_not_read_the_version_again(counted):
    rig, store, engine = counted
    playbook = rig.playbook(THREE_STEPS)
    _, first = _run(rig, store, engine, playbook)
    second_id, second = _run(rig, store, engine, playbook)
    assert first.by_collection[VERSIONS] == 1  # once for the instance, not once per step
    assert second.by_collection[VERSIONS] == 0
    assert rig.execution(second_id)["status"] == "completed"


def test_another_instance_reads_the_version_once_for_itself(counted):
    rig, store, engine = counted
    playbook = rig.playbook(THREE_STEPS)
    _run(rig, store, engine, playbook)
    fresh = dataclasses.replace(engine, versions=type(engine.versions)())  # another instance
    execution_id, counts = _run(rig, store, fresh, playbook)
    assert counts.by_collection[VERSIONS] == 1
    assert rig.execution(execution_id)["status"] == "completed"


def test_a_cached_version_is_still_refused_to_a_run_of_another_org(counted):
    rig, store, engine = counted
    playbook = rig.playbook(THREE_STEPS)
    _run(rig, store, engine, playbook)  # org A's version is now held by the instance
    forged = {**playbook, "orgId": "org_other"}  # a run that names org A's playbook version
    execution_id, _ = _run(rig, store, engine, forged)
    execution = rig.execution(execution_id)
    assert execution["status"] == "failed"
    assert execution["error"]["code"] == "tenant_mismatch"
    assert len(rig.harness_calls()) == 1  # org A's run reached the agent; the forged one did not
