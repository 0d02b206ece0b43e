"""The execution state machine's decisions (domain.md §7.2–7.5), one transition at a time.

`plan()` is what a finished attempt means for its step and its run; the step handler performs
it. Refusals (missing or terminal execution, stale or duplicate task, live lease) happen in the
handler before any attempt runs, so they are not inputs of `plan()` and are not tested here.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from playbook_core.domain.engine import (
    COMPLETION_TTL,
    EnqueueStep,
    Plan,
    StepOutcome,
    closed_run_changes,
    plan,
)
from playbook_core.domain.executions import PROGRESS_DEADLINE

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
STEP_IDS = ["draft", "pause", "promo", "tell_staff"]
ACTIONS = ["delegate", "wait", "send_email", "notify"]
LAST = len(STEP_IDS) - 1


def running_at(index, **fields):
    """The execution as the handler's claim left it: earlier steps completed, `index` running."""
    return {
        "id": "ex_1",
        "orgId": "org_a",
        "status": "running",
        "currentStepIndex": index,
        "currentStep": STEP_IDS[index],
        "stepsCompleted": index,
        "stepStatuses": {
            **dict.fromkeys(STEP_IDS, "pending"),
            **dict.fromkeys(STEP_IDS[:index], "completed"),
            STEP_IDS[index]: "running",
        },
        "stepResults": [result(i, "completed") for i in range(index)],
        "counts": {"sent": 1, "skipped": 0, "failed": 0, "held": 0},
        **fields,
    }


def result(index, status, error=None):
    entry = {"stepIndex": index, "stepId": STEP_IDS[index], "action": ACTIONS[index]}
    return {**entry, "status": status, **({"error": error} if error else {})}


def statuses(index=2, **changed):
    """`stepStatuses` after the steps before `index` completed, with `changed` applied."""
    return {
        **dict.fromkeys(STEP_IDS, "pending"),
        **dict.fromkeys(STEP_IDS[:index], "completed"),
        **changed,
    }


def decide(outcome, *, index=2, attempt=1, attempts_allowed=4, execution=None, jitter=1.0):
    return plan(
        execution=running_at(index) if execution is None else execution,
        step_ids=STEP_IDS,
        actions=ACTIONS,
        index=index,
        attempt=attempt,
        attempts_allowed=attempts_allowed,
        outcome=outcome,
        now=NOW,
        jitter=jitter,
    )


def step(index=2, attempt=1, **fields):
    return {
        "index": index,
        "stepId": STEP_IDS[index],
        "action": ACTIONS[index],
        "attempt": attempt,
        **fields,
    }


TIMEOUT = {"code": "timeout", "message": "the provider did not answer"}


# running → running: a step finished, more steps left


def test_a_completed_step_with_more_left_enqueues_the_next_step_at_once():
    outcome = StepOutcome("completed", output={"messageId": "m1"}, counts={"sent": 1})
    assert decide(outcome) == Plan(
        step_doc=step(status="completed", completedAt=NOW, output={"messageId": "m1"}),
        execution_changes={
            "updatedAt": NOW,
            "heartbeatAt": NOW,
            "counts": {"sent": 2, "skipped": 0, "failed": 0, "held": 0},
            "stepStatuses": statuses(promo="completed"),
            "stepsCompleted": 3,
            "progress": 0.75,
            "nextAttemptAt": None,
            "stepResults": [result(0, "completed"), result(1, "completed"), result(2, "completed")],
            "currentStep": "tell_staff",
            "currentStepIndex": 3,
            "expectedProgressBy": NOW + timedelta(minutes=10),
        },
        command=EnqueueStep(step_index=3, attempt=1, at=NOW),
        finished=None,
    )


def test_a_wait_step_delays_the_next_task_and_the_progress_deadline():
    done = decide(StepOutcome("completed", next_delay_s=3600.0), index=1)
    due = NOW + timedelta(hours=1)
    assert done.command == EnqueueStep(step_index=2, attempt=1, at=due)
    assert done.execution_changes["expectedProgressBy"] == due + timedelta(minutes=10)
    assert done.execution_changes["currentStep"] == "promo"
    assert done.execution_changes["currentStepIndex"] == 2
    assert done.finished is None


def test_a_skipped_step_counts_as_done_records_its_reason_and_moves_on():
    skipped = decide(StepOutcome("skipped", skip_reason="condition_false"))
    assert skipped.step_doc == step(
        status="skipped", completedAt=NOW, output=None, skipReason="condition_false"
    )
    assert skipped.execution_changes["stepStatuses"] == statuses(promo="skipped")
    assert skipped.execution_changes["stepsCompleted"] == 3
    assert skipped.execution_changes["stepResults"][-1] == result(2, "skipped")
    assert skipped.command == EnqueueStep(step_index=3, attempt=1, at=NOW)
    assert skipped.finished is None


def test_a_skip_without_a_reason_leaves_no_skip_reason_on_the_step():
    skipped = decide(StepOutcome("skipped"))
    assert "skipReason" not in skipped.step_doc
    assert skipped.step_doc["status"] == "skipped"


def test_a_retried_step_that_completes_replaces_its_retry_entry_and_keeps_its_attempt():
    execution = running_at(
        2,
        stepResults=[
            result(0, "completed"),
            result(2, "retry_scheduled", TIMEOUT),
            result(1, "completed"),
        ],
        nextAttemptAt=NOW,
    )
    done = decide(StepOutcome("completed"), attempt=3, execution=execution)
    assert done.step_doc["attempt"] == 3
    assert done.execution_changes["stepResults"] == [
        result(0, "completed"),
        result(1, "completed"),
        result(2, "completed"),
    ]
    assert done.execution_changes["nextAttemptAt"] is None
    assert done.command == EnqueueStep(step_index=3, attempt=1, at=NOW)


def test_a_fresh_execution_document_without_summaries_is_planned_from_zero():
    bare = {"id": "ex_1", "orgId": "org_a", "status": "running"}
    first = decide(StepOutcome("completed", counts={"sent": 1}), index=0, execution=bare)
    assert first.execution_changes["counts"] == {"sent": 1}
    assert first.execution_changes["stepStatuses"] == {"draft": "completed"}
    assert first.execution_changes["stepsCompleted"] == 1
    assert first.execution_changes["progress"] == 0.25
    assert first.execution_changes["stepResults"] == [result(0, "completed")]
    assert first.command == EnqueueStep(step_index=1, attempt=1, at=NOW)


# running → completed: the last step is done


def test_completing_the_last_step_completes_the_run_without_a_command():
    outcome = StepOutcome("completed", output={"notified": 2})
    assert decide(outcome, index=LAST) == Plan(
        step_doc=step(LAST, status="completed", completedAt=NOW, output={"notified": 2}),
        execution_changes={
            "updatedAt": NOW,
            "heartbeatAt": NOW,
            "counts": {"sent": 1, "skipped": 0, "failed": 0, "held": 0},
            "stepStatuses": statuses(LAST, tell_staff="completed"),
            "stepsCompleted": 4,
            "progress": 1.0,
            "nextAttemptAt": None,
            "stepResults": [result(i, "completed") for i in range(4)],
            "status": "completed",
            "completedAt": NOW,
            "expiresAt": NOW + COMPLETION_TTL,
            "currentStep": None,
        },
        command=None,
        finished="completed",
    )


def test_skipping_the_last_step_still_completes_the_run():
    skipped = decide(StepOutcome("skipped", skip_reason="condition_false"), index=LAST)
    assert skipped.finished == "completed"
    assert skipped.command is None
    assert skipped.execution_changes["status"] == "completed"
    assert skipped.execution_changes["stepStatuses"]["tell_staff"] == "skipped"
    assert skipped.step_doc["skipReason"] == "condition_false"


def test_a_single_step_playbook_completes_on_its_only_step():
    done = plan(
        execution={"id": "ex_1", "status": "running"},
        step_ids=["only"],
        actions=["emit"],
        index=0,
        attempt=1,
        attempts_allowed=1,
        outcome=StepOutcome("completed"),
        now=NOW,
    )
    assert done.finished == "completed"
    assert done.command is None
    assert done.execution_changes["progress"] == 1.0
    assert done.execution_changes["stepsCompleted"] == 1


# running → failed: a permanent failure, or a retryable one out of attempts


def failed_plan(index=2, attempt=1, counts=None, error=TIMEOUT):
    later = dict.fromkeys(STEP_IDS[index + 1 :], "not_run")
    return Plan(
        step_doc=step(index, attempt, status="failed", error=error, completedAt=NOW),
        execution_changes={
            "updatedAt": NOW,
            "heartbeatAt": NOW,
            "counts": counts or {"sent": 1, "skipped": 0, "failed": 0, "held": 0},
            "stepStatuses": statuses(index, **{STEP_IDS[index]: "failed"}, **later),
            "status": "failed",
            "statusReason": "step_failed",
            "error": {**(error or {}), "stepId": STEP_IDS[index]},
            "completedAt": NOW,
            "expiresAt": NOW + COMPLETION_TTL,
            "nextAttemptAt": None,
            "stepResults": [
                *[result(i, "completed") for i in range(index)],
                result(index, "failed", error),
            ],
        },
        command=None,
        finished="failed",
    )


def test_a_failed_step_fails_the_run_and_the_steps_after_it_do_not_run():
    outcome = StepOutcome(
        "failed", error_code="timeout", error_message="the provider did not answer"
    )
    assert decide(outcome) == failed_plan()


def test_a_failure_of_the_last_step_leaves_no_step_not_run():
    outcome = StepOutcome(
        "failed", error_code="timeout", error_message="the provider did not answer"
    )
    assert decide(outcome, index=LAST) == failed_plan(index=LAST)
    assert "not_run" not in decide(outcome, index=LAST).execution_changes["stepStatuses"].values()


def test_a_failure_without_a_message_uses_its_code_as_the_message():
    failed = decide(StepOutcome("failed", error_code="slack_not_configured"))
    error = {"code": "slack_not_configured", "message": "slack_not_configured"}
    assert failed == failed_plan(error=error)


def test_a_failure_without_an_error_code_still_names_the_failed_step():
    failed = decide(StepOutcome("failed"))
    assert failed == failed_plan(error=None)
    assert failed.execution_changes["error"] == {"stepId": "promo"}


def timeout_retry(error_class="transient", **fields):
    return StepOutcome(
        "retry",
        error_code="timeout",
        error_message="the provider did not answer",
        error_class=error_class,
        **fields,
    )


@pytest.mark.parametrize(
    ("attempt", "attempts_allowed", "error_class"),
    [
        pytest.param(4, 4, "transient", id="last-attempt"),
        pytest.param(5, 4, "transient", id="attempt-beyond-the-limit"),
        pytest.param(1, 1, "transient", id="retry-on-failure-off"),
        pytest.param(3, 3, "mailjet_outage", id="last-attempt-mailjet-outage"),
        pytest.param(1, 4, "permanent", id="permanent-class-with-attempts-left"),
    ],
)
def test_a_retry_that_cannot_be_retried_fails_the_run_with_the_last_error(
    attempt, attempts_allowed, error_class
):
    outcome = timeout_retry(error_class, output={"partial": True}, counts={"failed": 1})
    failed = decide(outcome, attempt=attempt, attempts_allowed=attempts_allowed)
    counts = {"sent": 1, "skipped": 0, "failed": 1, "held": 0}
    assert failed == failed_plan(attempt=attempt, counts=counts)


# running → running: a retryable failure with attempts left (§7.5)


def test_a_retryable_failure_with_attempts_left_schedules_the_next_attempt():
    due = NOW + timedelta(seconds=10)
    assert decide(timeout_retry(), attempt=1) == Plan(
        step_doc=step(status="retry_scheduled", nextAttemptAt=due, error=TIMEOUT),
        execution_changes={
            "updatedAt": NOW,
            "heartbeatAt": NOW,
            "counts": {"sent": 1, "skipped": 0, "failed": 0, "held": 0},
            "stepStatuses": statuses(promo="retry_scheduled"),
            "nextAttemptAt": due,
            "expectedProgressBy": due + timedelta(minutes=10),
            "stepResults": [
                result(0, "completed"),
                result(1, "completed"),
                result(2, "retry_scheduled", TIMEOUT),
            ],
        },
        command=EnqueueStep(step_index=2, attempt=2, at=due),
        finished=None,
    )


@pytest.mark.parametrize(
    ("error_class", "attempt", "fields", "jitter", "delay_s"),
    [
        pytest.param("transient", 3, {}, 1.0, 40.0, id="transient-backoff"),
        pytest.param("transient", 2, {}, 0.8, 16.0, id="transient-jitter"),
        pytest.param("rate_limited", 1, {"retry_after_s": 42.0}, 1.0, 42.0, id="retry-after"),
        pytest.param("rate_limited", 1, {"retry_after_s": 7200.0}, 1.0, 10.0, id="retry-after-cap"),
        pytest.param("mailjet_outage", 1, {}, 1.0, 3600.0, id="mailjet-outage"),
        pytest.param("below_threshold", 2, {}, 1.0, 2.0, id="below-threshold"),
    ],
)
def test_each_retryable_class_schedules_the_next_attempt_after_its_delay(
    error_class, attempt, fields, jitter, delay_s
):
    retry = decide(timeout_retry(error_class, **fields), attempt=attempt, jitter=jitter)
    due = NOW + timedelta(seconds=delay_s)
    assert retry.command == EnqueueStep(step_index=2, attempt=attempt + 1, at=due)
    assert retry.step_doc["nextAttemptAt"] == due
    assert retry.execution_changes["nextAttemptAt"] == due
    assert "status" not in retry.execution_changes
    assert retry.finished is None


def test_the_attempt_before_the_last_still_retries():
    retry = decide(timeout_retry(), attempt=3, attempts_allowed=4)
    assert retry.command == EnqueueStep(step_index=2, attempt=4, at=NOW + timedelta(seconds=40))


# running → pending_approval: a customer-facing send held at the gate (§7.11)


def test_a_send_held_for_approval_pauses_the_run_without_a_command():
    outcome = StepOutcome("pending_approval", extra={"approvalId": "ex_1"}, counts={"held": 1})
    assert decide(outcome) == Plan(
        step_doc=step(approvalId="ex_1", status="pending", leaseUntil=None),
        execution_changes={
            "updatedAt": NOW,
            "heartbeatAt": NOW,
            "counts": {"sent": 1, "skipped": 0, "failed": 0, "held": 1},
            "stepStatuses": statuses(promo="pending"),
            "status": "pending_approval",
            "expectedProgressBy": None,
        },
        command=None,
        finished=None,
    )


# running → running, same attempt later: a send held back by a send window or frequency rule


def test_a_deferred_send_runs_the_same_attempt_again_at_the_allowed_instant():
    due = NOW + timedelta(hours=10)
    outcome = StepOutcome(
        "deferred", deferred_until=due, extra={"compliance": {"verdict": "defer"}}
    )
    assert decide(outcome, attempt=2) == Plan(
        step_doc=step(
            attempt=2, compliance={"verdict": "defer"}, status="pending", deferredUntil=due,
            leaseUntil=None,
        ),
        execution_changes={
            "updatedAt": NOW,
            "heartbeatAt": NOW,
            "counts": {"sent": 1, "skipped": 0, "failed": 0, "held": 0},
            "stepStatuses": statuses(promo="pending"),
            "nextAttemptAt": due,
            "expectedProgressBy": due + PROGRESS_DEADLINE,
        },
        command=EnqueueStep(2, 2, due, nonce="deferred-" + due.isoformat()),
        finished=None,
    )  # fmt: skip


def test_a_deferral_must_name_its_instant():
    with pytest.raises(ValueError, match="deferred_until"):
        decide(StepOutcome("deferred", deferred_until=None))


@pytest.mark.parametrize("due", [NOW, NOW - timedelta(seconds=30)])
def test_a_deferral_judged_before_the_step_recorded_runs_a_second_later(due):
    planned = decide(StepOutcome("deferred", deferred_until=due))
    assert planned.command.at == NOW + timedelta(seconds=1)
    assert planned.step_doc["deferredUntil"] == NOW + timedelta(seconds=1)


# what every transition shares


@pytest.mark.parametrize(
    "outcome",
    [
        StepOutcome("completed"),
        StepOutcome("skipped"),
        StepOutcome("failed", error_code="bad"),
        timeout_retry(),
        StepOutcome("pending_approval"),
        StepOutcome("deferred", deferred_until=NOW + timedelta(hours=1)),
    ],
    ids=lambda o: o.status,
)
def test_every_transition_keeps_the_actions_extra_fields_and_sums_its_counts(outcome):
    planned = decide(replace(outcome, extra={"score": 91}, counts={"sent": 2, "new": 1}))
    assert planned.step_doc["score"] == 91
    assert planned.execution_changes["counts"] == {
        "sent": 3,
        "skipped": 0,
        "failed": 0,
        "held": 0,
        "new": 1,
    }
    assert planned.execution_changes["updatedAt"] == NOW
    assert planned.execution_changes["heartbeatAt"] == NOW


# invariants over every input


ERROR_CLASSES = ["transient", "rate_limited", "mailjet_outage", "below_threshold", "permanent"]
COUNT_KEYS = st.sampled_from(["sent", "skipped", "failed", "held"])


@st.composite
def attempts(draw):
    total = draw(st.integers(1, 6))
    step_ids = [f"s{i}" for i in range(total)]
    index = draw(st.integers(0, total - 1))
    execution = {
        "status": "running",
        "stepsCompleted": index,
        "counts": draw(st.dictionaries(COUNT_KEYS, st.integers(0, 50))),
        "stepStatuses": {
            **dict.fromkeys(step_ids[:index], "completed"),
            step_ids[index]: "running",
        },
        "stepResults": [
            {"stepIndex": i, "stepId": step_ids[i], "action": "wait", "status": "completed"}
            for i in sorted(draw(st.sets(st.integers(0, total - 1))))
        ],
    }
    outcome = StepOutcome(
        draw(st.sampled_from(["completed", "skipped", "failed", "retry", "pending_approval"])),
        error_code=draw(st.none() | st.just("timeout")),
        error_class=draw(st.sampled_from(ERROR_CLASSES)),
        retry_after_s=draw(st.none() | st.floats(0, 7200)),
        next_delay_s=draw(st.floats(0, 30 * 86400)),
        counts=draw(st.dictionaries(COUNT_KEYS, st.integers(0, 5))),
    )
    kwargs = {
        "execution": execution,
        "step_ids": step_ids,
        "actions": ["wait"] * total,
        "index": index,
        "attempt": draw(st.integers(1, 12)),
        "attempts_allowed": draw(st.integers(1, 11)),
        "outcome": outcome,
        "now": NOW,
        "jitter": draw(st.floats(0.8, 1.2)),
    }
    return kwargs, plan(**kwargs)


@given(attempts())
def test_a_plan_either_enqueues_a_later_task_finishes_the_run_or_holds_it(case):
    kwargs, planned = case
    held = planned.execution_changes.get("status") == "pending_approval"
    assert [planned.command is not None, planned.finished is not None, held].count(True) == 1
    if planned.command is not None:
        here = (kwargs["index"], kwargs["attempt"])
        assert (planned.command.step_index, planned.command.attempt) > here
        assert planned.command.at >= NOW


@given(attempts())
def test_a_step_is_never_attempted_more_often_than_allowed_and_the_next_starts_afresh(case):
    kwargs, planned = case
    command = planned.command
    if command is not None and command.step_index == kwargs["index"]:
        assert command.attempt == kwargs["attempt"] + 1 <= kwargs["attempts_allowed"]
    if command is not None and command.step_index != kwargs["index"]:
        assert (command.step_index, command.attempt) == (kwargs["index"] + 1, 1)
    if kwargs["attempt"] >= kwargs["attempts_allowed"]:
        assert planned.command is None or planned.command.step_index > kwargs["index"]


@given(attempts())
def test_a_finished_run_leaves_no_step_to_run(case):
    kwargs, planned = case
    statuses_after = planned.execution_changes["stepStatuses"]
    later = kwargs["step_ids"][kwargs["index"] + 1 :]
    if planned.finished == "failed":
        assert [statuses_after[s] for s in later] == ["not_run"] * len(later)
    if planned.finished == "completed":
        assert later == []
    if planned.finished is not None:
        assert planned.command is None
        assert planned.execution_changes["status"] == planned.finished


@given(attempts())
def test_summaries_stay_one_entry_per_step_and_counts_never_decrease(case):
    kwargs, planned = case
    results = planned.execution_changes.get("stepResults", kwargs["execution"]["stepResults"])
    indexes = [r["stepIndex"] for r in results]
    assert indexes == sorted(set(indexes))
    before, after = kwargs["execution"]["counts"], planned.execution_changes["counts"]
    assert all(after[key] >= value for key, value in before.items())


def test_a_run_closed_from_outside_marks_unfinished_steps_not_run_and_gets_its_ttl():
    execution = running_at(2, stepStatuses={
        "draft": "completed", "pause": "skipped", "promo": "retry_scheduled", "tell_staff": "pending",
    })  # fmt: skip
    changes = closed_run_changes(execution, "cancelled", "cancelled_by_user", NOW)
    assert changes == {
        "status": "cancelled",
        "statusReason": "cancelled_by_user",
        "stepStatuses": {
            "draft": "completed", "pause": "skipped", "promo": "not_run", "tell_staff": "not_run",
        },
        "completedAt": NOW,
        "updatedAt": NOW,
        "expiresAt": NOW + COMPLETION_TTL,
    }  # fmt: skip
