"""Consent records on both stores (consent.md §1–2): append-only, the record in force, history,
and the platform's consent write-back appending its evidence (domain.md §7.9)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from playbook_core.domain.collections import CONSENT_RECORDS, CUSTOMERS, ORGANIZATIONS
from playbook_core.domain.envelope import Consent, Customer, EventEnvelope, Source
from playbook_core.domain.errors import BadRequest, NotFound
from playbook_core.domain.ids import h
from playbook_core.runtime.cloudevents import PubsubMessage
from playbook_core.service.compliance.consent import (
    consent_history,
    current_consent,
    record_consent,
)
from playbook_core.service.dispatch.dispatcher import dispatch_message
from playbook_core.service.execution.run_start import Runs, StepTarget


def record(rig, state, *, identity="cid:cus_1", channel="sms", org=None, **extra):
    fields = {"customer_id": None, "source": "api", "method": "dashboard toggle", **extra}
    return record_consent(
        rig.store, rig.clock, rig.app.ids, org_id=org or rig.org, identity_key=identity,
        channel=channel, state=state, **fields,
    )  # fmt: skip


def now_consent(rig, identity="cid:cus_1", channel="sms", org=None):
    return current_consent(rig.store, org_id=org or rig.org, identity_key=identity, channel=channel)


def test_the_latest_record_is_the_consent_in_force(rig):
    assert now_consent(rig) is None
    granted = record(rig, "granted", disclosure="Text me deals. Msg & data rates may apply.")
    assert now_consent(rig)["id"] == granted["id"]
    rig.clock.advance(minutes=5)
    revoked = record(rig, "revoked")
    assert now_consent(rig)["id"] == revoked["id"]
    stored = rig.store.get(CONSENT_RECORDS, granted["id"])
    assert stored["disclosureHash"] == granted["disclosureHash"]
    assert stored["customerId"] == "cus_1"  # from the cid: identity
    assert stored["expiresAt"] - stored["at"] >= timedelta(days=4 * 365 + 30)


def test_records_at_the_same_instant_are_decided_by_id(rig):
    first = record(rig, "granted", record_id="cns_aaaa")
    second = record(rig, "revoked", record_id="cns_bbbb")
    assert first["at"] == second["at"]
    assert now_consent(rig)["id"] == "cns_bbbb"


def test_consent_is_per_org_identity_and_channel(rig):
    record(rig, "revoked")
    assert now_consent(rig, channel="email") is None
    assert now_consent(rig, identity="cid:cus_2") is None
    assert now_consent(rig, org=rig.other) is None


def test_a_derived_id_writes_one_record_however_often_it_is_retried(rig):
    first = record(rig, "revoked", record_id="cns_from_one_cause")
    rig.clock.advance(seconds=30)
    again = record(rig, "revoked", record_id="cns_from_one_cause")
    assert again["at"] == first["at"]
    assert len(rig.records()) == 1
    with pytest.raises(Exception, match="belongs elsewhere"):
        record(rig, "revoked", record_id="cns_from_one_cause", org=rig.other)


def test_a_value_no_record_may_hold_writes_nothing(rig):
    with pytest.raises(BadRequest):
        record(rig, "maybe")
    with pytest.raises(BadRequest):
        record(rig, "granted", source="rumour")
    assert rig.records() == []


def test_history_pages_newest_first_and_stays_in_the_org(rig):
    rig.store.set(CUSTOMERS, "cus_1", {"orgId": rig.org})
    made = []
    for state in ("granted", "revoked", "granted", "revoked", "granted"):
        made.append(record(rig, state)["id"])
        rig.clock.advance(minutes=1)
    record(rig, "granted", org=rig.other)  # same customer id, another org: never listed
    seen, token = [], None
    for _ in range(5):
        page = consent_history(
            rig.store, org_id=rig.org, customer_id="cus_1", page_size=2, page_token=token
        )
        assert len(page["consentRecords"]) <= 2
        seen += [r["id"] for r in page["consentRecords"]]
        token = page["nextPageToken"]
        if token is None:
            break
    assert seen == list(reversed(made))


def test_history_of_another_orgs_customer_is_not_found(rig):
    rig.store.set(CUSTOMERS, f"cus_{rig.other}", {"orgId": rig.other})
    record(rig, "granted", identity=f"cid:cus_{rig.other}", org=rig.other)
    with pytest.raises(NotFound):
        consent_history(
            rig.store, org_id=rig.org, customer_id=f"cus_{rig.other}", page_size=10,
            page_token=None,
        )  # fmt: skip
    with pytest.raises(NotFound):  # nobody at all
        consent_history(
            rig.store, org_id=rig.org, customer_id="cus_nobody", page_size=10, page_token=None
        )


def test_a_deleted_customers_evidence_stays_readable(rig):
    record(rig, "revoked", identity="cid:cus_gone")
    page = consent_history(
        rig.store, org_id=rig.org, customer_id="cus_gone", page_size=10, page_token=None
    )
    assert [r["state"] for r in page["consentRecords"]] == ["revoked"]


# --- the platform's consent, written back by dispatch -------------------------------------------


def shopify_event(rig, event_id, consent):
    shopper = Customer(email="avery@example.com", consent=Consent(**consent))
    return EventEnvelope(
        event_id=event_id, org_id=rig.org, name="customer.updated", occurred_at=rig.clock.now(),
        received_at=rig.clock.now(), source=Source(kind="shopify", ref="shop.example.com"),
        customer=shopper,
    )  # fmt: skip


def dispatch(rig, envelope, message_id):
    rig.store.set(ORGANIZATIONS, rig.org, {"orgId": rig.org})  # dispatch needs a registered org
    message = PubsubMessage(
        message_id=message_id, attributes=envelope.attributes(), data=envelope.encode()
    )
    target = StepTarget(queue="playbook-steps", url="http://127.0.0.1:9/execute_step/")
    runs = Runs(store=rig.store, queue=rig.app.queue, target=target, clock=rig.clock)
    return dispatch_message(message, runs=runs)


def test_platform_consent_appends_evidence_on_creation_and_on_each_change(rig):
    customer = "cus_" + h(rig.org, "avery@example.com")
    dispatch(rig, shopify_event(rig, "e1", {"email": True, "sms": False}), "m1")
    assert sorted((r["channel"], r["state"]) for r in rig.records()) == [
        ("email", "granted"), ("sms", "revoked"),
    ]  # fmt: skip
    rig.clock.advance(minutes=1)
    dispatch(rig, shopify_event(rig, "e2", {"email": True, "sms": True}), "m2")
    dispatch(rig, shopify_event(rig, "e2", {"email": True, "sms": True}), "m2")  # redelivered
    dispatch(rig, shopify_event(rig, "e3", {"email": True, "sms": True}), "m3")  # no change
    assert len(rig.records()) == 3
    sms = now_consent(rig, identity=f"cid:{customer}")
    assert (sms["state"], sms["source"], sms["method"], sms["customerId"]) == (
        "granted", "webhook", "shopify sms_marketing_consent", customer,
    )  # fmt: skip
    assert rig.store.get(CUSTOMERS, customer)["consent"] == {"email": True, "sms": True}
