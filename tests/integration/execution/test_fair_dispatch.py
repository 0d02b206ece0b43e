"""Fair dispatch (issue #14): step tasks go to their org's shard, and one org's burst of run
starts is paced, its excess scheduled later rather than dropped or put in front of others."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.domain.collections import EXECUTIONS, SETTINGS
from playbook_core.domain.executions import PROGRESS_DEADLINE
from playbook_core.domain.fairness import shard_of, step_queue
from playbook_core.ports import QueueConfig
from playbook_core.service.execution import reaper
from playbook_core.service.execution.pacing import OrgPacer
from playbook_core.service.execution.run_start import Runs, StepTarget
from tests.integration.execution.conftest import COMPLIANCE, NOW, Rig, _reset, _rig
from tests.integration.execution.test_execution_engine import INTERNAL

SHARDS = 8
BASE = "playbook-steps"


@pytest.fixture(params=["embedded", pytest.param("firestore", marks=pytest.mark.emulator)])
def either(request, standins):
    """The execution rig on each backend; on Firestore a database of its own, for the reaper."""
    _reset(standins)
    if request.param == "embedded":
        store = EmbeddedStore(":memory:")
    else:
        request.getfixturevalue("emulator_env")
        from playbook_core.adapters.firestore import FirestoreStore

        store = FirestoreStore(f"demo-{uuid.uuid4().hex[:12]}")
    yield _rig(store, standins)
    if isinstance(store, EmbeddedStore):
        store.close()


def _fair(rig: Rig, per_second: float) -> Rig:
    rig.target = StepTarget(BASE, rig.target.url, shards=SHARDS, pacer=OrgPacer(per_second))
    for index in range(1, SHARDS):
        rig.queue.create_queue(QueueConfig(f"{BASE}-{index}"))
    return rig


def _neighbour(rig: Rig) -> Rig:
    """Another org of the same instance, on a shard other than the rig's org."""
    org = next(
        f"{rig.org}_n{n}"
        for n in range(100)
        if shard_of(f"{rig.org}_n{n}", SHARDS) != shard_of(rig.org, SHARDS)
    )
    rig.store.set(SETTINGS, org, {"orgId": org, "adminEmail": "b@store.example",
                                  "compliance": COMPLIANCE})  # fmt: skip
    other = Rig(rig.store, rig.queue, rig.clock, rig.standins, org)
    other.target = rig.target  # one instance: one pacer
    return other


def test_a_burst_is_paced_on_its_shard_and_every_run_completes(either):
    rig = _fair(either, per_second=20.0)
    playbook = rig.playbook(INTERNAL)
    ids = [rig.start(playbook, mock_agents=True) for _ in range(30)]
    firsts = list(rig.queue.tasks)
    assert {t.queue for t in firsts} == {step_queue(BASE, SHARDS, rig.org)}
    now_due = [t for t in firsts if t.schedule_time is None]
    later = [t for t in firsts if t.schedule_time is not None]
    assert len(now_due) == 21  # one second's worth at once, then 20 a second
    assert [t.schedule_time for t in later] == [
        NOW + timedelta(seconds=0.05 * k) for k in range(1, 10)
    ]
    for task in later:  # a paced run is waiting, not stuck
        execution = rig.execution(task.body["executionId"])
        assert execution["expectedProgressBy"] == task.schedule_time + PROGRESS_DEADLINE

    neighbour = _neighbour(rig)
    other = neighbour.start(neighbour.playbook(INTERNAL), mock_agents=True)
    (first,) = [t for t in rig.queue.tasks if t.body["executionId"] == other]
    assert first.schedule_time is None  # due at once: another org's burst does not pace it
    assert first.queue == step_queue(BASE, SHARDS, neighbour.org) != firsts[0].queue

    rig.run_all(limit=200)
    for execution_id in [*ids, other]:
        assert rig.execution(execution_id)["status"] == "completed"
    assert all(t.queue != BASE or shard_of(t.body["orgId"], SHARDS) == 0 for t in rig.queue.tasks)


def test_the_reaper_leaves_a_paced_run_alone_until_its_own_deadline(either):
    rig = _fair(either, per_second=0.01)  # one start every 100 s
    playbook = rig.playbook(INTERNAL)
    ids = [rig.start(playbook, mock_agents=True) for _ in range(10)]
    runs = Runs(store=rig.store, queue=rig.queue, target=rig.target, clock=rig.clock)
    rig.clock.current = NOW + PROGRESS_DEADLINE + timedelta(minutes=1)
    # Only the run that was due at once (and never ran here) is overdue; the other nine are due
    # up to 900 s later and keep 10 minutes from then.
    assert reaper.reap(runs=runs) == {"recovered": 1, "failedStuck": 0}
    assert rig.execution(ids[0])["reaperRecoveries"] == 1
    assert all(rig.execution(i).get("reaperRecoveries", 0) == 0 for i in ids[1:])
    assert rig.store.get(EXECUTIONS, ids[-1])["status"] == "queued"
