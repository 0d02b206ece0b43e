"""The approval gate end to end (domain.md §7.11): approve once, reject, expire."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from playbook_core.domain.collections import (
    APPROVALS,
    DELIVERIES,
    EXECUTIONS,
    approval_claims_path,
)
from playbook_core.domain.errors import Conflict
from playbook_core.service.execution import approvals
from playbook_core.service.execution.run_start import Runs
from playbook_core.service.ingress.event_log import Publishing
from playbook_core.service.scheduling.tick import handle_cron

from .test_execution_engine import CUSTOMER, PROMO


def decide(rig, execution_id, *, approve):
    return approvals.decide(
        org_id=rig.org,
        execution_id=execution_id,
        approve=approve,
        reviewer={"uid": "boss"},
        notes="n",
        runs=Runs(store=rig.store, queue=rig.queue, target=rig.target, clock=rig.clock),
    )


def pending(rig):
    execution_id = rig.start(rig.playbook(PROMO), customer=CUSTOMER)
    rig.run_all()
    assert rig.execution(execution_id)["status"] == "pending_approval"
    return execution_id


def held(rig, execution_id):
    return [
        d.data for d in rig.store.query(DELIVERIES).docs if d.data["executionId"] == execution_id
    ]


def test_a_second_approve_is_409_and_the_email_goes_once(rig):
    execution_id = pending(rig)
    decide(rig, execution_id, approve=True)
    with pytest.raises(Conflict) as caught:
        decide(rig, execution_id, approve=True)
    assert caught.value.code == "approval-not-pending"
    rig.run_all()
    assert len(rig.sent_emails()) == 1
    approval = rig.store.get(APPROVALS, execution_id)
    assert (approval["status"], approval["reviewerId"], approval["notes"]) == (
        "approved",
        "boss",
        "n",
    )


@pytest.mark.parametrize("approve", [True, False])
def test_a_run_cancelled_while_it_waited_cannot_be_approved_back_to_life(rig, approve):
    # Archiving a playbook cancels its waiting runs (domain.md §3.10) but used to leave their
    # approvals pending: approving then set the run running and sent the held email.
    execution_id = pending(rig)
    rig.store.update(
        EXECUTIONS, execution_id, {"status": "cancelled", "statusReason": "playbook_archived"}
    )
    with pytest.raises(Conflict) as caught:
        decide(rig, execution_id, approve=approve)
    assert caught.value.code == "approval-not-pending"
    rig.run_all()
    assert rig.sent_emails() == []
    assert rig.execution(execution_id)["status"] == "cancelled"
    assert rig.store.get(APPROVALS, execution_id)["status"] == "cancelled"
    assert {d["status"] for d in held(rig, execution_id)} == {"skipped"}


def test_reject_skips_the_held_send_and_runs_nothing_more(rig):
    execution_id = pending(rig)
    decide(rig, execution_id, approve=False)
    rig.run_all()
    execution = rig.execution(execution_id)
    assert (execution["status"], execution["statusReason"]) == ("rejected", "approval_rejected")
    assert execution["stepStatuses"]["tell_team"] == "not_run"
    assert [(d["status"], d["skipReason"]) for d in held(rig, execution_id)] == [
        ("skipped", "approval_rejected")
    ]
    assert rig.sent_emails() == []


def tick(rig):
    return handle_cron(
        "/tick", {}, runs=Runs(store=rig.store, queue=rig.queue, target=rig.target, clock=rig.clock), publishing=Publishing(store=rig.store, bus=rig.bus, topic="t", clock=rig.clock),

    )  # fmt: skip


def test_pending_approvals_expire_on_the_tick_after_72_hours(rig):
    execution_id = pending(rig)
    rig.clock.advance(hours=71)
    assert tick(rig)["approvalsExpired"] == 0
    rig.clock.advance(hours=2)
    assert tick(rig)["approvalsExpired"] == 1
    assert rig.execution(execution_id)["status"] == "expired"
    assert rig.store.get(APPROVALS, execution_id)["status"] == "expired"
    assert [(d["status"], d["skipReason"]) for d in held(rig, execution_id)] == [
        ("skipped", "approval_expired")
    ]


def test_deciding_after_expiry_is_409_and_expires_on_the_spot(rig):
    execution_id = pending(rig)
    rig.clock.advance(hours=73)
    with pytest.raises(Conflict) as caught:
        decide(rig, execution_id, approve=True)
    assert caught.value.code == "approval-expired"
    assert rig.store.get(APPROVALS, execution_id)["status"] == "expired"


def test_the_reaper_reenqueues_a_stuck_run_then_fails_it(rig):
    execution_id = rig.start(rig.playbook(PROMO), customer=CUSTOMER)
    rig.queue.take()  # the first task is lost
    rig.clock.current = rig.clock.current.replace(minute=0) + timedelta(hours=1)
    for expected in (1, 2, 3):
        result = tick(rig)
        assert result["recovered"] == 1
        assert rig.execution(execution_id)["reaperRecoveries"] == expected
        assert rig.queue.take() is not None  # a fresh task for the same step
        rig.clock.advance(minutes=15)
    final = tick(rig)
    assert final["failedStuck"] == 1
    assert rig.execution(execution_id)["statusReason"] == "stuck"


@pytest.mark.parametrize(
    "backend", ["rig", pytest.param("firestore_rig", marks=pytest.mark.emulator)]
)
def test_twenty_concurrent_approves_one_wins_the_rest_are_409_and_one_email_goes(backend, request):
    rig = request.getfixturevalue(backend)
    execution_id = pending(rig)

    def approve(_):
        try:
            return decide(rig, execution_id, approve=True)["status"]
        except Conflict as refused:
            return refused.code

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(approve, range(20)))
    assert sorted(outcomes) == ["approval-not-pending"] * 19 + ["approved"]
    rig.run_all()
    assert rig.execution(execution_id)["status"] == "completed"
    assert len(rig.sent_emails()) == 1
    with pytest.raises(Conflict) as caught:  # the claim is gone; the decision still holds
        decide(rig, execution_id, approve=False)
    assert caught.value.code == "approval-not-pending"


def test_a_claim_left_by_a_crashed_decider_blocks_only_until_its_lease_ends(rig):
    execution_id = pending(rig)
    claims = approval_claims_path(execution_id)
    rig.store.create(claims, "decision", {"reviewerId": "gone", "at": rig.clock.now()})
    with pytest.raises(Conflict) as caught:
        decide(rig, execution_id, approve=True)
    assert caught.value.code == "approval-not-pending"
    assert rig.store.get(APPROVALS, execution_id)["status"] == "pending"
    rig.clock.advance(minutes=1)
    assert decide(rig, execution_id, approve=True)["status"] == "approved"
    assert rig.store.get(claims, "decision") is None
