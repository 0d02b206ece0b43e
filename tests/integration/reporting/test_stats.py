"""Analytics counters from real runs (domain.md §7.2, §10.1) and their roll-ups (§9.3 c–d)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.domain import reports
from playbook_core.domain.collections import APPROVALS, EXECUTIONS, SETTINGS, STATS, SUMMARIES
from playbook_core.domain.ids import h
from playbook_core.ports import Where
from playbook_core.service.execution import approvals, run_control
from playbook_core.service.execution.run_start import Runs
from playbook_core.service.reporting import attribution, counters
from tests.bench.counting import CountingStore
from tests.integration.execution.conftest import NOW, _reset, _rig
from tests.integration.execution.conftest import rig as rig  # noqa: PLC0414 - the fixture
from tests.integration.execution.conftest import standins as standins  # noqa: PLC0414 - the fixture
from tests.integration.execution.test_execution_engine import CUSTOMER, INTERNAL, PROMO

TODAY = "2026-11-24"  # NOW (12:00 UTC) in America/New_York


@pytest.fixture
def store():
    opened = EmbeddedStore(":memory:")
    yield opened
    opened.close()


def shards(store, org, day=TODAY):
    where = [Where("orgId", "==", org), Where("date", "==", day)]
    return [d for d in store.query(STATS, where, limit=500).docs if d.data["shard"] != "all"]


def day_total(store, org, day=TODAY):
    return reports.total(d.data for d in shards(store, org, day))


def approved(rig, playbook, customer=CUSTOMER):
    execution_id = rig.start(playbook, customer=customer)
    rig.store.update(EXECUTIONS, execution_id, {"approvedAt": rig.clock.now()})
    return execution_id


# --- counters from runs through the engine ----------------------------------------------------


def test_a_completed_run_counts_one_execution_one_completion_and_its_send(rig):
    execution_id = rig.start(rig.playbook(INTERNAL))
    rig.run_all()
    assert rig.execution(execution_id)["status"] == "completed"
    assert day_total(rig.store, rig.org) == {
        "executions": 1, "completed": 1, "sent": {"email": 1},
    }  # fmt: skip
    [doc] = shards(rig.store, rig.org)
    shard = str(int(h(execution_id)[0], 16) % 5)
    playbook_id = rig.execution(execution_id)["playbookId"]
    assert doc.id == f"{rig.org}__{playbook_id}__20261124__{shard}"
    assert (doc.data["shard"], doc.data["date"], doc.data["playbookId"]) == (
        shard, TODAY, playbook_id,
    )  # fmt: skip
    assert (doc.data["lastRunAt"], doc.data["lastRunStatus"]) == (NOW, "completed")
    assert doc.data["expiresAt"] == datetime(2026, 11, 24, tzinfo=UTC) + timedelta(days=400)


def test_a_failed_run_counts_one_failure_and_no_completion(rig):
    rig.behave("agents", mode="error_4xx")
    execution_id = rig.start(rig.playbook(INTERNAL))
    rig.run_all()
    assert rig.execution(execution_id)["status"] == "failed"
    assert day_total(rig.store, rig.org) == {"executions": 1, "failed": 1}
    [doc] = shards(rig.store, rig.org)
    assert doc.data["lastRunStatus"] == "failed"


def test_a_deduped_send_is_a_skip_by_reason_and_the_run_still_completes(rig):
    playbook = rig.playbook(PROMO)
    approved(rig, playbook)
    rig.run_all()
    approved(rig, playbook)
    rig.run_all()
    assert day_total(rig.store, rig.org) == {
        "executions": 2, "completed": 2, "sent": {"email": 1}, "skipped": {"deduped": 1},
    }  # fmt: skip


def test_a_dry_run_counts_only_as_a_dry_run(rig):
    rig.start(rig.playbook(PROMO), customer=CUSTOMER, dry_run=True, mock_agents=True)
    rig.run_all()
    assert day_total(rig.store, rig.org) == {"dryRuns": 1}


def test_a_redelivered_last_step_does_not_count_the_run_twice(rig):
    execution_id = rig.start(rig.playbook(INTERNAL))
    rig.run_all()
    again = [t for t in rig.queue.tasks if t.body["executionId"] == execution_id][-1]
    from playbook_core.service.execution.step_handler import run_step
    from playbook_core.service.execution.step_task import StepTask

    assert run_step(StepTask.model_validate(again.body), rig.engine)["outcome"] in (
        "execution_terminal", "step_already_done", "not_claimed",
    )  # fmt: skip
    assert day_total(rig.store, rig.org)["completed"] == 1


def decide(rig, execution_id, *, approve):
    return approvals.decide(
        org_id=rig.org, execution_id=execution_id, approve=approve, reviewer={"uid": "boss"},
        notes=None, runs=Runs(store=rig.store, queue=rig.queue, target=rig.target, clock=rig.clock),
    )  # fmt: skip


def pending(rig):
    execution_id = rig.start(rig.playbook(PROMO), customer=CUSTOMER)
    rig.run_all()
    assert rig.execution(execution_id)["status"] == "pending_approval"
    return execution_id


def test_a_rejected_run_counts_the_rejection_and_its_held_send_as_skipped(rig):
    decide(rig, pending(rig), approve=False)
    assert day_total(rig.store, rig.org) == {
        "executions": 1, "rejected": 1, "skipped": {"approval_rejected": 1},
    }  # fmt: skip


def test_an_expired_approval_counts_once_on_the_tick(rig):
    pending(rig)
    rig.clock.advance(hours=73)
    assert approvals.expire_due(store=rig.store, clock=rig.clock) == 1
    assert approvals.expire_due(store=rig.store, clock=rig.clock) == 0
    assert day_total(rig.store, rig.org, "2026-11-27") == {
        "expired": 1, "skipped": {"approval_expired": 1},
    }  # fmt: skip
    assert day_total(rig.store, rig.org)["executions"] == 1  # dated by when it started


def test_a_cancelled_run_counts_the_cancellation_and_its_held_send(rig):
    execution_id = pending(rig)
    run_control.cancel_execution(
        org_id=rig.org, execution_id=execution_id, actor="u1", store=rig.store, clock=rig.clock
    )
    assert day_total(rig.store, rig.org) == {
        "executions": 1, "cancelled": 1, "skipped": {"cancelled": 1},
    }  # fmt: skip
    cancelled = rig.store.get(EXECUTIONS, execution_id)
    assert cancelled["expiresAt"] == rig.clock.now() + timedelta(days=180)  # the completed-run TTL


def test_the_date_is_the_event_day_in_the_org_zone(rig):
    rig.clock.current = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 22:00 on the 24th in New York
    rig.start(rig.playbook(INTERNAL))
    assert day_total(rig.store, rig.org, "2026-11-24") == {"executions": 1}
    rig.store.set(SETTINGS, rig.org, {"timezone": "Asia/Tokyo"}, merge=True)
    rig.start(rig.playbook(INTERNAL))
    assert day_total(rig.store, rig.org, "2026-11-25") == {"executions": 1}


# --- bump, compaction, summaries ---------------------------------------------------------------


def bump(target, deltas, *, seed="ex_1", day=TODAY, playbook="pb_1", org="org_a"):
    counters.bump(
        target, org_id=org, playbook_id=playbook, local_date=day, counters=deltas,
        shard_seed=seed,
    )  # fmt: skip


def test_bump_creates_the_shard_then_increments_nested_counters(store):
    bump(store, {"executions": 1, "sent.email": 1})
    bump(store, {"sent.email": 2, "sent.sms": 1, "skipped.deduped": 1, "attributedOrders": 0})
    doc_id = f"org_a__pb_1__20261124__{counters.shard_of('ex_1')}"
    doc = store.get(STATS, doc_id)
    assert {k: doc[k] for k in ("orgId", "playbookId", "date", "shard")} == {
        "orgId": "org_a", "playbookId": "pb_1", "date": TODAY, "shard": counters.shard_of("ex_1"),
    }  # fmt: skip
    assert (doc["executions"], doc["sent"], doc["skipped"]) == (
        1, {"email": 3, "sms": 1}, {"deduped": 1},
    )  # fmt: skip
    assert "attributedOrders" not in doc


def test_bump_inside_a_transaction_reads_then_creates_or_increments(store):
    for sign in (1, 1, -1):  # the last one reverses, as a voided order does
        store.transaction(
            lambda tx, s=sign: bump(tx, {"attributedOrders": s, "attributedRevenueMinor": s * 2500})
        )
    doc = store.get(STATS, f"org_a__pb_1__20261124__{counters.shard_of('ex_1')}")
    assert (doc["attributedOrders"], doc["attributedRevenueMinor"], doc["date"]) == (1, 2500, TODAY)


def test_the_shard_is_the_first_hex_digit_of_the_seed_hash_mod_5():
    seeds = [f"ev_{n}" for n in range(200)]
    assert all(counters.shard_of(s) == str(int(h(s)[0], 16) % 5) for s in seeds)
    assert {counters.shard_of(s) for s in seeds} == {"0", "1", "2", "3", "4"}


def rolled_up(store, deltas, *, day=TODAY, playbook="pb_1", org="org_a", **fields):
    """The `all` doc a roll-up writes (summaries read only these)."""
    store.set(STATS, counters.stats_id(org, playbook, day, counters.ALL), {
        **reports.nested(deltas), "orgId": org, "playbookId": playbook, "date": day,
        "shard": counters.ALL, **fields,
    })  # fmt: skip


def test_compaction_recounts_the_documents_and_mends_the_shards(rig):
    playbook = rig.playbook(INTERNAL)
    completed = rig.start(playbook)
    rig.run_all()
    rig.clock.advance(minutes=5)  # the failure is the day's last run
    rig.behave("agents", mode="error_4xx")
    rig.start(playbook)
    rig.run_all()
    playbook_id = rig.execution(completed)["playbookId"]
    truth = {"executions": 2, "completed": 1, "failed": 1, "sent": {"email": 1}}
    assert day_total(rig.store, rig.org) == truth
    # A lost counter (the completed run's shard) and one counted twice (a redelivery).
    rig.store.delete(
        STATS, counters.stats_id(rig.org, playbook_id, TODAY, counters.shard_of(completed))
    )
    bump(rig.store, {"failed": 1}, seed="again", playbook=playbook_id, org=rig.org)
    assert day_total(rig.store, rig.org) != truth

    assert counters.compact_day(rig.store, org_id=rig.org, local_date=TODAY) == 1
    compacted = rig.store.get(STATS, counters.stats_id(rig.org, playbook_id, TODAY, counters.ALL))
    assert reports.add({}, compacted) == truth
    assert (compacted["lastRunStatus"], compacted["date"]) == ("failed", TODAY)
    # The recount shard made the shards agree (what it took away now reads as a zero).
    assert reports.difference(truth, day_total(rig.store, rig.org)) == {}
    corrections = [d for d in shards(rig.store, rig.org) if d.data["shard"] == counters.RECOUNT]
    assert len(corrections) == 1
    counters.compact_day(rig.store, org_id=rig.org, local_date=TODAY)  # nothing left to mend
    assert rig.store.get(STATS, corrections[0].id) == corrections[0].data


@pytest.mark.parametrize("at_once", [counters.SETTLE_AT_ONCE, 2], ids=["one-commit", "chunked"])
def test_compaction_settles_every_playbook_of_the_day_in_few_transactions(
    rig, monkeypatch, at_once
):
    monkeypatch.setattr(counters, "SETTLE_AT_ONCE", at_once)
    playbook_ids = []
    for _ in range(3):
        execution_id = rig.start(rig.playbook(INTERNAL))
        playbook_ids.append(rig.execution(execution_id)["playbookId"])
    rig.run_all()
    for playbook_id in playbook_ids:  # each counted a failure twice (a redelivery)
        bump(rig.store, {"failed": 1}, seed="again", playbook=playbook_id, org=rig.org)
    counted = CountingStore(rig.store)
    with counted.measure() as counts:
        assert counters.compact_day(counted, org_id=rig.org, local_date=TODAY) == 3
    assert counts.transactions == (1 if at_once >= 3 else 2)
    truth = {"executions": 1, "completed": 1, "sent": {"email": 1}}
    for playbook_id in playbook_ids:
        compacted = rig.store.get(
            STATS, counters.stats_id(rig.org, playbook_id, TODAY, counters.ALL)
        )
        assert reports.add({}, compacted) == truth
    assert (
        reports.difference(
            {k: 3 * v for k, v in reports.flat(truth).items()}, day_total(rig.store, rig.org)
        )
        == {}
    )  # the recount shards made every playbook's shards agree


def test_compaction_keeps_the_latest_run(rig):
    playbook = rig.playbook(INTERNAL)
    rig.behave("agents", mode="error_4xx")
    rig.start(playbook)
    rig.run_all()
    rig.behave("agents", mode="ok")
    rig.clock.advance(hours=2)
    latest = rig.start(playbook)
    rig.run_all()
    counters.compact_day(rig.store, org_id=rig.org, local_date=TODAY)
    playbook_id = rig.execution(latest)["playbookId"]
    compacted = rig.store.get(STATS, counters.stats_id(rig.org, playbook_id, TODAY, counters.ALL))
    assert (compacted["lastRunAt"], compacted["lastRunStatus"]) == (rig.clock.now(), "completed")


def test_summaries_sum_the_last_30_all_docs(store):
    day0 = datetime(2026, 11, 24, tzinfo=UTC)
    for back in range(40):  # 40 days of 1 completed + 1 failed on pb_1; the oldest fall outside
        day = (day0 - timedelta(days=back)).date().isoformat()
        rolled_up(store, {"executions": 2, "completed": 1, "failed": 1, "sent.sms": 1}, day=day)
    rolled_up(store, {"executions": 3, "completed": 3}, day="2026-11-10", playbook="pb_2")
    bump(store, {"executions": 99}, day="2026-11-25")  # after through_date: not counted
    bump(store, {"executions": 1}, day="2026-11-24", org="org_b")  # another org: not counted
    store.set(APPROVALS, "ex_p", {"orgId": "org_a", "playbookId": "pb_2",
                                            "status": "pending"})  # fmt: skip
    assert counters.summarise(store, org_id="org_a", through_date=TODAY) == 2
    first = store.get(SUMMARIES, "pb_1")
    assert first["last30"] == {"executions": 60, "completed": 30, "failed": 30, "sent": {"sms": 30}}
    assert (first["successRate30"], first["throughDate"], first["orgId"]) == (0.5, TODAY, "org_a")
    assert first["pendingApprovals"] == 0
    second = store.get(SUMMARIES, "pb_2")
    assert (second["last30"]["executions"], second["successRate30"]) == (3, 1.0)
    assert second["pendingApprovals"] == 1


def test_a_playbook_that_went_quiet_drops_to_zero_but_keeps_its_last_run(store):
    ran = datetime(2026, 10, 1, 15, tzinfo=UTC)
    rolled_up(
        store, {"executions": 1, "completed": 1}, day="2026-10-01", lastRunAt=ran,
        lastRunStatus="completed",
    )  # fmt: skip
    counters.summarise(store, org_id="org_a", through_date="2026-10-01")
    assert store.get(SUMMARIES, "pb_1")["last30"]["executions"] == 1
    counters.summarise(store, org_id="org_a", through_date=TODAY)
    quiet = store.get(SUMMARIES, "pb_1")
    assert (quiet["last30"], quiet["successRate30"]) == ({}, None)
    assert (quiet["lastRunAt"], quiet["lastRunStatus"]) == (ran, "completed")
    assert counters.summarise(store, org_id="org_a", through_date=TODAY) == 0  # nothing to rewrite


# --- the same on the official Firestore emulator -----------------------------------------------


@pytest.mark.emulator
def test_on_firestore_counters_transactions_compaction_and_summaries(standins, emulator_env):
    from playbook_core.adapters.firestore import FirestoreStore

    _reset(standins)
    rig = _rig(FirestoreStore("demo-playbooks"), standins, org=f"org_{uuid.uuid4().hex[:10]}")
    execution_id = rig.start(rig.playbook(INTERNAL))
    rig.run_all()
    playbook_id = rig.execution(execution_id)["playbookId"]
    assert day_total(rig.store, rig.org) == {"executions": 1, "completed": 1, "sent": {"email": 1}}

    def attribute(tx):
        bump(tx, {"attributedOrders": 1, "attributedRevenueMinor": 1999}, seed=execution_id,
             playbook=playbook_id, org=rig.org)  # fmt: skip

    rig.store.transaction(attribute)  # the run's shard exists: read, then increment
    bump(rig.store, {"skipped.deduped": 1}, seed="other", playbook=playbook_id, org=rig.org)
    assert day_total(rig.store, rig.org)["attributedOrders"] == 1
    # No delivery stands behind the skip: the recount takes it out and mends the shards. The
    # attribution counters move only in their own transactions, so their shards are kept.
    assert counters.compact_day(rig.store, org_id=rig.org, local_date=TODAY) == 1
    compacted = rig.store.get(STATS, f"{rig.org}__{playbook_id}__20261124__all")
    truth = {
        "executions": 1, "completed": 1, "sent": {"email": 1},
        "attributedOrders": 1, "attributedRevenueMinor": 1999,
    }  # fmt: skip
    assert reports.add({}, compacted) == truth
    assert reports.difference(truth, day_total(rig.store, rig.org)) == {}
    assert counters.summarise(rig.store, org_id=rig.org, through_date=TODAY) == 1
    summary = rig.store.get(SUMMARIES, playbook_id)
    assert (summary["last30"]["executions"], summary["lastRunStatus"]) == (1, "completed")


def test_archiving_closes_its_waiting_runs_like_a_cancel_and_counts_them(rig):
    from playbook_core.service.authoring.playbooks import delete_playbook

    execution_id = pending(rig)
    playbook_id = rig.execution(execution_id)["playbookId"]
    delete_playbook(
        org_id=rig.org, playbook_id=playbook_id, confirm=True, actor="u1", store=rig.store,
        clock=rig.clock,
    )  # fmt: skip
    closed = rig.execution(execution_id)
    assert (closed["status"], closed["statusReason"]) == ("cancelled", "playbook_archived")
    assert (closed["completedAt"], closed["expiresAt"]) == (NOW, NOW + timedelta(days=180))
    assert rig.store.get(APPROVALS, execution_id)["status"] == "cancelled"
    assert approvals.held_deliveries(rig.store, rig.org, execution_id) == []
    assert day_total(rig.store, rig.org) == {
        "executions": 1, "cancelled": 1, "skipped": {"cancelled": 1},
    }  # fmt: skip
    rig.clock.advance(hours=73)  # nothing is left for the expiry sweep
    assert approvals.expire_due(store=rig.store, clock=rig.clock) == 0
    assert rig.execution(execution_id)["status"] == "cancelled"


def test_a_run_the_reaper_gives_up_on_closes_and_counts_as_failed(rig):
    from playbook_core.service.execution import reaper

    execution_id = rig.start(rig.playbook(INTERNAL))
    rig.store.update(EXECUTIONS, execution_id, {
        "reaperRecoveries": reaper.MAX_RECOVERIES, "expectedProgressBy": NOW - timedelta(hours=1),
    })  # fmt: skip
    runs = Runs(store=rig.store, queue=rig.queue, target=rig.target, clock=rig.clock)
    assert reaper.reap(runs=runs)["failedStuck"] == 1
    closed = rig.execution(execution_id)
    assert (closed["status"], closed["expiresAt"]) == ("failed", NOW + timedelta(days=180))
    assert day_total(rig.store, rig.org) == {"executions": 1, "failed": 1}


def test_a_run_failed_for_a_forged_org_closes_and_counts_as_failed(rig):
    from playbook_core.service.execution.step_handler import run_step
    from playbook_core.service.execution.step_task import StepTask

    execution_id = rig.start(rig.playbook(INTERNAL))
    [task] = [t for t in rig.queue.tasks if t.body["executionId"] == execution_id]
    forged = StepTask.model_validate({**task.body, "orgId": "org_other"})
    assert run_step(forged, rig.engine)["outcome"] == "tenant_mismatch"
    closed = rig.execution(execution_id)
    assert (closed["status"], closed["expiresAt"]) == ("failed", NOW + timedelta(days=180))
    assert day_total(rig.store, rig.org) == {"executions": 1, "failed": 1}


def test_archiving_leaves_an_approved_run_and_its_send_alone(rig):
    from playbook_core.service.authoring.playbooks import delete_playbook

    execution_id = pending(rig)
    decide(rig, execution_id, approve=True)  # running, its send still held until resumed
    delete_playbook(
        org_id=rig.org, playbook_id=rig.execution(execution_id)["playbookId"], confirm=True,
        actor="u1", store=rig.store, clock=rig.clock,
    )  # fmt: skip
    rig.run_all()
    assert rig.execution(execution_id)["status"] == "completed"
    assert len(rig.sent_emails()) == 1
    assert day_total(rig.store, rig.org) == {
        "executions": 1, "completed": 1, "sent": {"email": 1},
    }  # fmt: skip


def test_the_expiry_sweep_does_not_close_a_run_that_already_ended(rig):
    execution_id = pending(rig)
    rig.store.update(EXECUTIONS, execution_id, {"status": "failed", "completedAt": NOW})
    rig.clock.advance(hours=73)
    assert approvals.expire_due(store=rig.store, clock=rig.clock) == 1
    assert rig.execution(execution_id)["status"] == "failed"
    assert rig.store.get(APPROVALS, execution_id)["status"] == "cancelled"
    assert approvals.held_deliveries(rig.store, rig.org, execution_id) == []
    assert day_total(rig.store, rig.org, "2026-11-27") == {"skipped": {"cancelled": 1}}


def test_a_run_cancelled_while_its_step_runs_stays_cancelled_and_counts_once(rig):
    execution_id = rig.start(rig.playbook(INTERNAL))
    harness = rig.harness

    class CancelsMidStep:  # the user cancels while the agent is still working
        def run(self, *args, **kwargs):
            run_control.cancel_execution(
                org_id=rig.org, execution_id=execution_id, actor="u1", store=rig.store,
                clock=rig.clock,
            )  # fmt: skip
            return harness.run(*args, **kwargs)

    rig.harness = CancelsMidStep()
    rig.run_all()
    closed = rig.execution(execution_id)
    assert (closed["status"], closed["statusReason"]) == ("cancelled", "cancelled_by_user")
    assert rig.sent_emails() == []  # nothing after the step that was running
    assert day_total(rig.store, rig.org) == {"executions": 1, "cancelled": 1}


def test_an_attribution_committed_while_the_day_is_recounted_is_kept(store, monkeypatch):
    real = counters._recount

    def recount_then_an_order_arrives(*args, **kwargs):
        counted = real(*args, **kwargs)
        credited = {"pb_1": {"attributedOrders": 1, "attributedRevenueMinor": 500}}
        store.transaction(  # as an order's attribution writes its stats
            lambda tx: attribution._bump(tx, "org_a", TODAY, credited, "ord_9", "2026-11-25")
        )
        return counted

    monkeypatch.setattr(counters, "_recount", recount_then_an_order_arrives)
    assert counters.compact_day(store, org_id="org_a", local_date=TODAY) == 1
    compacted = store.get(STATS, counters.stats_id("org_a", "pb_1", TODAY, counters.ALL))
    assert (compacted["attributedOrders"], compacted["attributedRevenueMinor"]) == (1, 500)
    assert reports.difference(reports.add({}, compacted), day_total(store, "org_a")) == {}


def test_the_reaper_leaves_a_run_that_finished_after_its_query(rig, monkeypatch):
    from playbook_core.service.execution import reaper

    execution_id = rig.start(rig.playbook(INTERNAL))
    rig.store.update(EXECUTIONS, execution_id, {
        "reaperRecoveries": reaper.MAX_RECOVERIES, "expectedProgressBy": NOW - timedelta(hours=1),
    })  # fmt: skip
    real_query = rig.store.query

    def query_then_the_step_finishes(*args, **kwargs):
        page = real_query(*args, **kwargs)
        rig.store.update(EXECUTIONS, execution_id, {"status": "completed", "completedAt": NOW})
        return page

    monkeypatch.setattr(rig.store, "query", query_then_the_step_finishes)
    runs = Runs(store=rig.store, queue=rig.queue, target=rig.target, clock=rig.clock)
    assert reaper.reap(runs=runs)["failedStuck"] == 0
    assert rig.execution(execution_id)["status"] == "completed"
    assert "failed" not in day_total(rig.store, rig.org)
