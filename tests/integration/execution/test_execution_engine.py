"""Executions through the real engine against the Mailjet and harness stand-ins (domain.md §7)."""

from playbook_core.domain.collections import (
    APPROVALS,
    COMMUNICATIONS,
    DELIVERIES,
    EXECUTIONS,
    NOTIFICATIONS,
    PROVIDER_STATUS,
    step_doc_id,
    steps_path,
)
from playbook_core.service.execution.run_start import Runs

PROMO = """
name: Post-purchase thanks
agent: craig
triggers: [{type: event, eventName: order.completed}]
steps:
  - id: compose
    action: delegate
    params: {agent: craig, task: Write a thank-you, input: {order: "{{ event.data.orderNumber }}"}}
  - id: email
    action: send_email
    params: {to: "{{ customer.email }}", subject: "{{ steps.compose.output.title }}", body: "{{ steps.compose.output.body }}"}
  - id: tell_team
    action: notify
    params: {channel: dashboard, to: "role:admin", message: "Sent for {{ event.data.orderNumber }}"}
"""
INTERNAL = PROMO.replace('"{{ customer.email }}"', '"{{ org.admin_email }}"')
CUSTOMER = {"id": "cus_1", "email": "jane@example.com"}


def test_steps_run_in_order_and_outputs_feed_later_steps(rig):
    execution_id = rig.start(rig.playbook(INTERNAL), customer=CUSTOMER)
    rig.run_all()
    execution = rig.execution(execution_id)
    assert execution["status"] == "completed"
    assert [r["stepId"] for r in execution["stepResults"]] == ["compose", "email", "tell_team"]
    assert execution["progress"] == 1.0
    first = rig.store.get(steps_path(execution_id), step_doc_id(0))
    assert first["startedAt"] <= first["completedAt"]  # the claim's start survives the result write
    [email] = rig.sent_emails()
    assert email["body"]["Messages"][0]["Subject"] == "Test title"
    assert email["body"]["Messages"][0]["To"] == [{"Email": "admin@store.example"}]
    assert rig.harness_calls()[0]["body"]["input"] == {"order": "#1001"}
    notice = [
        d for d in rig.store.query(NOTIFICATIONS).docs if d.data.get("executionId") == execution_id
    ]
    assert notice[0].data["body"] == "Sent for #1001"


def test_delivery_document_id_is_the_mailjet_custom_id(rig):
    execution_id = rig.start(rig.playbook(INTERNAL))
    rig.run_all()
    [email] = rig.sent_emails()
    custom_id = email["body"]["Messages"][0]["CustomID"]
    delivery = rig.store.get(DELIVERIES, custom_id)
    assert delivery["status"] == "sent"
    assert delivery["executionId"] == execution_id
    assert delivery["customerFacing"] is False
    assert delivery["attributable"] is False


def test_customer_facing_send_waits_for_approval_then_sends_exactly_once(rig):
    from playbook_core.service.execution import approvals

    execution_id = rig.start(rig.playbook(PROMO), customer=CUSTOMER)
    rig.run_all()
    assert rig.execution(execution_id)["status"] == "pending_approval"
    assert rig.sent_emails() == []
    approval = rig.store.get(APPROVALS, execution_id)
    assert approval["preview"][0]["to"] == "jane@example.com"
    held = [d.data for d in rig.store.query(DELIVERIES).docs]
    assert [(d["status"], d["skipReason"]) for d in held] == [("held", "awaiting_approval")]
    approvals.decide(
        org_id="org_a",
        execution_id=execution_id,
        approve=True,
        reviewer={"uid": "boss"},
        notes="ok",
        runs=Runs(store=rig.store, queue=rig.queue, target=rig.target, clock=rig.clock),
    )
    rig.run_all()
    assert rig.execution(execution_id)["status"] == "completed"
    assert len(rig.sent_emails()) == 1
    delivery = next(d.data for d in rig.store.query(DELIVERIES).docs)
    assert (delivery["status"], delivery["attributable"]) == ("sent", True)


def test_same_customer_again_within_24h_is_a_skipped_send_with_reason_deduped(rig):
    playbook = rig.playbook(PROMO)
    first = rig.start(playbook, customer=CUSTOMER)
    rig.store.update(EXECUTIONS, first, {"approvedAt": rig.clock.now()})
    rig.run_all()
    second = rig.start(playbook, customer=CUSTOMER)
    rig.store.update(EXECUTIONS, second, {"approvedAt": rig.clock.now()})
    rig.run_all()
    assert len(rig.sent_emails()) == 1
    skipped = [d.data for d in rig.store.query(DELIVERIES).docs if d.data["executionId"] == second]
    assert [(d["status"], d["skipReason"]) for d in skipped] == [("skipped", "deduped")]
    assert rig.execution(second)["status"] == "completed"


def test_a_redelivered_task_never_sends_twice(rig):
    execution_id = rig.start(rig.playbook(INTERNAL))
    rig.step()  # compose
    email_task = rig.queue.tasks[-1]
    rig.step()  # email
    from playbook_core.service.execution.step_handler import run_step
    from playbook_core.service.execution.step_task import StepTask

    again = run_step(StepTask.model_validate(email_task.body), rig.engine)
    assert again["outcome"] in ("step_already_done", "not_claimed")
    rig.run_all()
    assert len(rig.sent_emails()) == 1
    assert rig.execution(execution_id)["status"] == "completed"


def test_dry_run_traces_and_sends_nothing(rig):
    execution_id = rig.start(rig.playbook(PROMO), customer=CUSTOMER, dry_run=True, mock_agents=True)
    rig.run_all()
    execution = rig.execution(execution_id)
    assert execution["status"] == "completed"
    assert rig.sent_emails() == []
    assert rig.harness_calls() == []
    decisions = [t["decision"] for t in execution["trace"]]
    assert "would_pause_for_approval" in decisions
    assert "would_notify" in decisions
    delivery = next(d.data for d in rig.store.query(DELIVERIES).docs)
    assert (delivery["status"], delivery["skipReason"], delivery["dryRun"]) == (
        "skipped",
        "dry_run",
        True,
    )
    assert rig.store.query(COMMUNICATIONS).docs == []


def test_harness_5xx_twice_then_ok_takes_three_attempts(rig):
    rig.behave("agents", mode="error_5xx", times=2)
    execution_id = rig.start(rig.playbook(INTERNAL))
    rig.run_all()
    assert len(rig.harness_calls()) == 3
    step = rig.store.get(steps_path(execution_id), step_doc_id(0))
    assert (step["status"], step["attempt"]) == ("completed", 3)
    assert rig.execution(execution_id)["status"] == "completed"


def test_harness_4xx_fails_at_once_and_fails_the_run(rig):
    rig.behave("agents", mode="error_4xx")
    execution_id = rig.start(rig.playbook(INTERNAL))
    rig.run_all()
    assert len(rig.harness_calls()) == 1
    execution = rig.execution(execution_id)
    assert (execution["status"], execution["statusReason"]) == ("failed", "step_failed")
    assert execution["stepStatuses"] == {
        "compose": "failed",
        "email": "not_run",
        "tell_team": "not_run",
    }
    assert rig.sent_emails() == []


def test_low_score_is_retried_with_remediation_then_fails_after_max_retries(rig):
    low = {
        "output": {"title": "t", "body": "b"},
        "score": 10,
        "issues": ["too long"],
        "remediation": "Shorten it",
    }
    rig.script_agent(low, low, low, low)
    execution_id = rig.start(rig.playbook(INTERNAL))
    rig.run_all()
    calls = rig.harness_calls()
    assert len(calls) == 4  # 1 + maxRetries (3)
    assert calls[1]["body"]["context"]["remediation"] == "Shorten it"
    assert calls[1]["body"]["context"]["previousOutput"] == {"title": "t", "body": "b"}
    execution = rig.execution(execution_id)
    assert execution["status"] == "failed"
    assert execution["error"]["code"] == "validation_below_threshold"


def test_mailjet_outage_reschedules_one_hour_later(rig):
    rig.behave("mailjet", mode="error_5xx", times=1)
    execution_id = rig.start(rig.playbook(INTERNAL))
    rig.step()  # compose
    started = rig.clock.now()
    rig.step()  # email fails with an outage
    step = rig.store.get(steps_path(execution_id), step_doc_id(1))
    assert step["status"] == "retry_scheduled"
    assert (step["nextAttemptAt"] - started).total_seconds() == 3600
    rig.run_all()
    assert len(rig.sent_emails()) == 1
    assert rig.execution(execution_id)["status"] == "completed"
    alerts = [r for r in rig.requests("slack") if r["path"] == "/alerts"]
    assert [a["body"]["text"] for a in alerts] == [
        "[Playbooks] mailjet failing for org org_a: mailjet_outage (1 in last hour)"
    ]
    assert rig.store.get(PROVIDER_STATUS, "mailjet")["status"] == "down"


def test_outage_alerts_are_throttled_to_one_per_hour(rig):
    rig.behave("mailjet", mode="error_5xx", times=2)
    rig.start(rig.playbook(INTERNAL))
    rig.start(rig.playbook(INTERNAL.replace("Post-purchase thanks", "Second")))
    rig.run_all()
    assert len([r for r in rig.requests("slack") if r["path"] == "/alerts"]) == 1


def test_a_false_condition_skips_the_step_and_the_run_goes_on(rig):
    text = INTERNAL.replace(
        "  - id: email\n    action: send_email\n",
        "  - id: email\n    action: send_email\n    condition: {path: customer.vip, op: eq, value: true}\n",
    )
    execution_id = rig.start(rig.playbook(text), customer=CUSTOMER)
    rig.run_all()
    execution = rig.execution(execution_id)
    assert execution["stepStatuses"]["email"] == "skipped"
    assert execution["status"] == "completed"
    assert rig.sent_emails() == []
