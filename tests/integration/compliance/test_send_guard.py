"""The compliance guard at send time, through the real engine and the stand-ins (compliance.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from emulators.standins import BLACKLEAF_TEST_KEY, start_blackleaf
from playbook_core.adapters.blackleaf import BlackleafSms
from playbook_core.domain.collections import (
    APPROVALS,
    DELIVERIES,
    EXECUTIONS,
    SETTINGS,
    step_doc_id,
    steps_path,
)
from playbook_core.domain.sending import identity_key
from playbook_core.service.compliance.consent import record_consent
from playbook_core.service.execution import approvals, run_control
from playbook_core.service.execution.run_start import Runs
from tests.integration.execution.conftest import COMPLIANCE, Ids
from tests.integration.execution.conftest import rig as rig  # noqa: PLC0414 - the fixture
from tests.integration.execution.conftest import standins as standins  # noqa: PLC0414 - the fixture
from tests.integration.execution.test_execution_engine import PROMO

STATIC = """
name: Flower drop
agent: craig
triggers: [{type: event, eventName: order.completed}]
steps:
  - id: email
    action: send_email
    params: {to: "{{ customer.email }}", subject: Weekend, body: New flower lands Saturday}
"""
CALIFORNIAN = {"id": "cus_ca", "email": "ana@example.com", "state": "CA", "ageVerified": True}


def reply(body, title="Weekend"):
    return {"output": {"title": title, "body": body}, "score": 95, "issues": []}


def profile(rig, **extra):
    compliance = {**COMPLIANCE, "states": ["CO", "CA"], "licenses": {"CO": "402-1", "CA": "C10-1"},
                  **extra}  # fmt: skip
    rig.store.set(SETTINGS, rig.org, {"compliance": compliance}, merge=True)


def approved_run(rig, customer, playbook=None):
    execution_id = rig.start(playbook or rig.playbook(PROMO), customer=customer)
    rig.store.update(EXECUTIONS, execution_id, {"approvedAt": rig.clock.now()})
    return execution_id


def approve(rig, execution_id):
    approvals.decide(
        org_id=rig.org, execution_id=execution_id, approve=True, reviewer={"uid": "boss"},
        notes="reviewed", runs=Runs(store=rig.store, queue=rig.queue, target=rig.target,
                                     clock=rig.clock),
    )  # fmt: skip
    rig.run_all()


def deliveries(rig, execution_id):
    return [
        d.data for d in rig.store.query(DELIVERIES).docs if d.data["executionId"] == execution_id
    ]


def sent_text(rig):
    (sent,) = rig.sent_emails()
    (message,) = sent["body"]["Messages"]
    return message["TextPart"]


def test_agent_copy_that_breaks_a_rule_goes_back_to_the_agent_and_the_rewrite_is_sent(rig):
    profile(rig)
    rig.script_agent(reply("Our giveaway starts Saturday"), reply("New flower lands Saturday"))
    execution_id = rig.start(rig.playbook(PROMO), customer=CALIFORNIAN)
    rig.run_all()
    (held,) = deliveries(rig, execution_id)  # the rewrite, clean, waits for the usual approval
    assert held["preview"].startswith("New flower lands Saturday")
    approve(rig, execution_id)
    calls = rig.harness_calls()
    assert len(calls) == 2
    remediation = calls[1]["body"]["context"]["remediation"]
    assert "ca.no-free-goods" in remediation
    assert calls[1]["body"]["context"]["previousOutput"]["body"] == "Our giveaway starts Saturday"
    text = sent_text(rig)
    assert text.startswith("New flower lands Saturday")
    assert "C10-1" in text  # the CA licence number, from the footer
    (delivery,) = deliveries(rig, execution_id)
    assert delivery["status"] == "sent"
    assert delivery["compliance"]["verdict"] in ("allow", "warn")
    assert delivery["compliance"]["rulePack"].startswith("CA@")
    compose = rig.store.get(steps_path(execution_id), step_doc_id(0))
    assert compose["output"]["body"] == "New flower lands Saturday"  # what went out is on record


def test_when_the_agent_cannot_fix_it_the_send_waits_for_a_person(rig):
    profile(rig)
    rig.script_agent(*[reply("Giveaway! Giveaway!")] * 4)
    execution_id = rig.start(rig.playbook(PROMO), customer=CALIFORNIAN)
    rig.run_all()
    assert len(rig.harness_calls()) == 4  # the first draft and maxRetries (3) rewrites
    assert rig.execution(execution_id)["status"] == "pending_approval"
    (held,) = deliveries(rig, execution_id)
    assert (held["status"], held["skipReason"]) == ("held", "awaiting_approval")
    assert {f["ruleId"] for f in held["compliance"]["findings"]} >= {"ca.no-free-goods"}
    assert rig.sent_emails() == []
    approve(rig, execution_id)
    assert len(rig.sent_emails()) == 1  # the reviewer took the wording on
    assert rig.store.get(APPROVALS, execution_id)["status"] == "approved"


def test_static_wording_the_org_forbids_after_activation_is_skipped_with_the_rule_id(rig):
    playbook = rig.playbook(STATIC)
    profile(rig, forbiddenTerms=["flower"])
    execution_id = rig.start(playbook, customer=CALIFORNIAN)
    rig.run_all()
    (delivery,) = deliveries(rig, execution_id)
    assert (delivery["status"], delivery["skipReason"]) == ("skipped", "compliance_blocked")
    assert [f["ruleId"] for f in delivery["compliance"]["findings"]] == ["org.forbidden-terms"]
    assert rig.execution(execution_id)["status"] == "completed"  # a skipped send, not a failure
    assert rig.harness_calls() == []  # no agent wrote it, so none is asked to rewrite it
    for reason in ("compliance_blocked", "age_unverified"):  # the skipped sends list by reason
        listed = run_control.list_deliveries(
            org_id=rig.org, status="skipped", reason=reason, playbook_id=None, page_size=10,
            page_token=None, store=rig.store,
        )  # fmt: skip
        expected = [delivery["id"]] if reason == "compliance_blocked" else []
        assert [d["id"] for d in listed["deliveries"]] == expected


def test_a_californian_without_an_age_check_is_skipped_age_unverified(rig):
    profile(rig)
    execution_id = approved_run(rig, {**CALIFORNIAN, "ageVerified": None})
    rig.run_all()
    (delivery,) = deliveries(rig, execution_id)
    assert (delivery["status"], delivery["skipReason"]) == ("skipped", "age_unverified")
    assert "ca.age-affirmation" in {f["ruleId"] for f in delivery["compliance"]["findings"]}
    assert rig.sent_emails() == []


def test_a_send_outside_the_window_is_deferred_never_dropped_and_goes_when_it_opens(rig):
    profile(rig, sendWindow={"start": "09:00", "end": "17:00"})
    execution_id = approved_run(rig, {"id": "cus_ny", "email": "ny@example.com", "state": "NY",
                                      "ageVerified": True})  # fmt: skip
    rig.step()  # compose
    rig.step()  # email: 07:00 in New York
    email = rig.store.get(steps_path(execution_id), step_doc_id(1))
    opens = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 09:00 EST
    assert (email["status"], email["deferredUntil"]) == ("pending", opens)
    assert email["compliance"]["verdict"] == "defer"
    assert rig.execution(execution_id)["status"] == "running"
    assert deliveries(rig, execution_id) == []
    rig.run_all()
    assert rig.clock.now() == opens
    assert len(rig.sent_emails()) == 1
    assert rig.execution(execution_id)["status"] == "completed"


def test_deferral_across_the_spring_forward_night_opens_at_local_nine(rig):
    rig.clock.current = datetime(2027, 3, 14, 6, 30, tzinfo=UTC)  # 01:30 EST, clocks jump at 02:00
    profile(rig, sendWindow={"start": "09:00", "end": "17:00"})
    approved_run(rig, {"id": "cus_ny", "email": "ny@example.com", "state": "NY",
                       "ageVerified": True})  # fmt: skip
    rig.run_all()
    assert rig.clock.now() == datetime(2027, 3, 14, 13, 0, tzinfo=UTC)  # 09:00 EDT
    assert len(rig.sent_emails()) == 1


def test_the_frequency_limit_defers_the_next_message_until_the_oldest_leaves_the_window(rig):
    profile(rig, frequency={"max": 1, "windowHours": 24})
    customer = {"id": "cus_co", "email": "co@example.com", "state": "CO", "ageVerified": True}
    first = approved_run(rig, customer)
    rig.run_all()
    sent_at = rig.clock.now()
    other = rig.playbook(PROMO.replace("Post-purchase thanks", "Restock news"))
    second = approved_run(rig, customer, other)
    rig.step()  # compose
    rig.step()  # email: deferred
    email = rig.store.get(steps_path(second), step_doc_id(1))
    assert email["deferredUntil"] == sent_at + timedelta(hours=24)
    rig.run_all()
    assert len(rig.sent_emails()) == 2
    assert [d["status"] for d in deliveries(rig, first) + deliveries(rig, second)] == ["sent"] * 2


def test_the_consent_record_a_send_relied_on_is_kept_and_a_revocation_stops_email(rig):
    profile(rig)
    customer = {"id": "cus_co", "email": "co@example.com", "state": "CO", "ageVerified": True}
    identity = identity_key(customer, customer["email"])
    granted = record_consent(
        rig.store, rig.clock, Ids(), org_id=rig.org, identity_key=identity, customer_id="cus_co",
        channel="email", state="granted", source="form", method="signup form",
    )  # fmt: skip
    first = approved_run(rig, customer)
    rig.run_all()
    (delivery,) = deliveries(rig, first)
    assert (delivery["status"], delivery["consentRecordId"]) == ("sent", granted["id"])
    rig.clock.advance(hours=1)
    record_consent(  # filed under the address, as a link without the customer would be
        rig.store, rig.clock, Ids(), org_id=rig.org, identity_key="em:co@example.com",
        customer_id=None, channel="email", state="revoked", source="unsubscribe_link",
        method="one-click unsubscribe",
    )  # fmt: skip
    other = rig.playbook(PROMO.replace("Post-purchase thanks", "Restock news"))
    second = approved_run(rig, customer, other)
    rig.run_all()
    (skipped,) = deliveries(rig, second)
    assert (skipped["status"], skipped["skipReason"]) == ("skipped", "no_consent")
    assert len(rig.sent_emails()) == 1


def test_a_dry_run_shows_each_would_send_verdict_and_findings(rig):
    profile(rig)
    rig.script_agent(reply("Giveaway Saturday"))
    execution_id = rig.start(rig.playbook(PROMO), customer=CALIFORNIAN, dry_run=True)
    rig.run_all()
    trace = {t["stepId"]: t for t in rig.execution(execution_id)["trace"]}
    assert trace["email"]["decision"] == "would_skip"
    assert trace["email"]["reason"] == "compliance_blocked"
    assert trace["email"]["compliance"]["verdict"] == "block"
    assert "ca.no-free-goods" in {f["ruleId"] for f in trace["email"]["compliance"]["findings"]}
    assert rig.sent_emails() == []


# --- texts: quiet hours, the footer's length, a STOP from the phone ------------------------------

SMS = """
name: Restock text
agent: craig
triggers: [{type: event, eventName: order.completed}]
steps:
  - id: text
    action: send_sms
    params: {to: "{{ customer.phone }}", body: BODY}
"""
COLORADAN = {"id": "cus_tx", "phone": "+13035550123", "email": "t@example.com", "state": "CO",
             "ageVerified": True}  # fmt: skip


@pytest.fixture
def texting(rig):
    server = start_blackleaf()
    rig.sms, rig.sms_url = BlackleafSms(server.url, BLACKLEAF_TEST_KEY), server.url
    profile(rig)
    yield rig
    server.stop()


def texts(rig):
    recorded = httpx.get(f"{rig.sms_url}/__requests", timeout=5).json()
    return [r for r in recorded if r["path"] == "/v1/messages" and r.get("responseStatus") == 201]


def granted_sms(rig, customer):
    record_consent(
        rig.store, rig.clock, Ids(), org_id=rig.org, identity_key=f"cid:{customer['id']}",
        customer_id=customer["id"], channel="sms", state="granted", source="form",
        method="checkout opt-in", disclosure="Yes, text me offers.",
    )  # fmt: skip


def test_a_text_at_five_in_the_morning_waits_for_eight_and_carries_brand_and_opt_out(texting):
    rig = texting
    granted_sms(rig, COLORADAN)
    execution_id = approved_run(rig, COLORADAN, rig.playbook(SMS.replace("BODY", "Restocked.")))
    rig.step()  # 12:00 UTC is 05:00 in Denver: deferred
    step = rig.store.get(steps_path(execution_id), step_doc_id(0))
    assert step["deferredUntil"] == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 08:00 MST
    assert "us.tcpa-quiet-hours" in {f["ruleId"] for f in step["compliance"]["findings"]}
    rig.run_all()
    (delivery,) = deliveries(rig, execution_id)
    assert delivery["status"] == "sent"
    assert delivery["consentRecordId"].startswith("cns_")
    (sent,) = texts(rig)
    assert sent["body"]["body"].startswith("Restocked.")
    assert "StoreExample" in sent["body"]["body"]
    assert "Reply STOP to opt out" in sent["body"]["body"]


def test_a_text_the_footer_makes_too_long_fails_the_step_and_sends_nothing(texting):
    rig = texting
    rig.clock.current = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)  # 11:00 in Denver
    granted_sms(rig, COLORADAN)
    long_text = "New flower is in. " * 25  # 450 characters, under 480 before the footer
    execution_id = approved_run(rig, COLORADAN, rig.playbook(SMS.replace("BODY", long_text)))
    rig.run_all()
    assert rig.execution(execution_id)["error"]["code"] == "sms_too_long"
    assert texts(rig) == []


def test_a_stop_from_the_phone_stops_the_customers_texts(texting):
    rig = texting
    rig.clock.current = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
    granted_sms(rig, COLORADAN)
    rig.clock.advance(minutes=5)
    record_consent(  # as webhook_blackleaf files a STOP from a number it cannot match
        rig.store, rig.clock, Ids(), org_id=rig.org, identity_key="ph:+13035550123",
        customer_id=None, channel="sms", state="revoked", source="keyword",
        method="STOP keyword",
    )  # fmt: skip
    execution_id = approved_run(rig, COLORADAN, rig.playbook(SMS.replace("BODY", "Restocked.")))
    rig.run_all()
    (delivery,) = deliveries(rig, execution_id)
    assert (delivery["status"], delivery["skipReason"]) == ("skipped", "no_consent")
    assert texts(rig) == []


def test_an_approval_given_before_the_copy_was_written_does_not_waive_its_wording(rig):
    profile(rig)
    rig.script_agent(reply("Giveaway Saturday"), reply("New flower lands Saturday"))
    execution_id = approved_run(rig, CALIFORNIAN)  # approved, but this delivery was never held
    rig.run_all()
    assert len(rig.harness_calls()) == 2  # the agent still rewrote it
    assert sent_text(rig).startswith("New flower lands Saturday")
    (delivery,) = deliveries(rig, execution_id)
    assert delivery["compliance"]["verdict"] != "block"
    assert "Unsubscribe: http" not in delivery["preview"]  # the signed link stays out of previews
