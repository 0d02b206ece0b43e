"""STOP and START end to end (consent.md §3): the Blackleaf stand-in posts an inbound text, signed,
to `webhook_blackleaf` served over HTTP; consent is recorded at once and the one confirmation goes
back through the stand-in. Refusals (signature, org, body) write nothing. Both stores.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest

from playbook_core.domain.collections import CUSTOMERS
from playbook_core.domain.errors import Unauthenticated
from playbook_core.service.compliance import sms_webhook
from playbook_core.service.compliance.consent import current_consent

SECRET = "inbound-signing-secret-1"
OURS = "+14155550199"
CONFIRMATION = (
    "You are unsubscribed from {brand}. No more messages will be sent. Reply START to resubscribe."
)


def connect(rig, org=None, secret=SECRET):
    """The org's secret stored (as PUT …/sms-webhook does) and the stand-in pointed at us."""
    org = org or rig.org
    sms_webhook.set_secret(
        org_id=org, secret=secret, store=rig.store, secrets=rig.app.secrets(), clock=rig.clock
    )
    url = f"{rig.served('webhook_blackleaf')}/?orgId={org}"
    configured = httpx.put(
        f"{rig.blackleaf.url}/__inbound/webhook", json={"url": url, "secret": secret}, timeout=5
    )
    assert configured.status_code == 200
    assert configured.json() == {"url": url, "configured": True}  # never the secret


def text(rig, body, *, sender=None, message_id=None):
    """One inbound text through the stand-in; (our status, our answer)."""
    payload = {"from": sender or rig.phone, "to": OURS, "body": body}
    if message_id is not None:
        payload["id"] = message_id
    sent = httpx.post(f"{rig.blackleaf.url}/__inbound", json=payload, timeout=30)
    assert sent.status_code == 200, sent.text
    return sent.json()["status"], sent.json()["answer"]


def texts_to(rig, number=None):
    return [m for m in rig.texts() if m["to"] == (number or rig.phone)]


def test_stop_revokes_at_once_and_confirms_once_a_day(rig):
    connect(rig)
    status, answer = text(rig, "STOP")
    assert status == 200
    assert answer["keyword"] == "stop"
    assert answer["state"] == "revoked"
    assert answer["confirmation"] == "sent"
    current = current_consent(
        rig.store, org_id=rig.org, identity_key=f"ph:{rig.phone}", channel="sms"
    )
    assert current is not None
    assert (current["state"], current["source"], current["method"]) == (
        "revoked", "keyword", "STOP keyword",
    )  # fmt: skip
    assert current["customerId"] is None
    assert current["id"] == answer["recordId"]
    (confirmation,) = texts_to(rig)
    assert confirmation["body"] == CONFIRMATION.format(brand="this sender")
    assert len(confirmation["body"]) <= 160

    status, again = text(rig, "  stop ")  # a repeat within 24 h: recorded, never re-confirmed
    assert (status, again["state"], again["confirmation"]) == (200, "revoked", "suppressed")
    assert len(texts_to(rig)) == 1
    assert [r["state"] for r in rig.records()] == ["revoked", "revoked"]

    rig.clock.advance(hours=24, seconds=1)  # a day later the next STOP is confirmed again
    assert text(rig, "Unsubscribe")[1]["confirmation"] == "sent"
    assert len(texts_to(rig)) == 2


def test_start_grants_again_and_sends_nothing(rig):
    connect(rig)
    text(rig, "STOP")
    rig.clock.advance(minutes=1)
    status, answer = text(rig, "Start")
    assert (status, answer["keyword"], answer["state"]) == (200, "start", "granted")
    assert "confirmation" not in answer
    current = current_consent(
        rig.store, org_id=rig.org, identity_key=f"ph:{rig.phone}", channel="sms"
    )
    assert current["state"] == "granted"
    assert current["method"] == "START keyword"
    assert len(texts_to(rig)) == 1  # the STOP confirmation only


def test_a_known_customers_stop_is_recorded_under_the_customers_identity_and_brand(rig):
    rig.store.set(CUSTOMERS, f"cus_{rig.org}", {"orgId": rig.org, "phone": rig.phone})
    rig.store.set(
        "playbook_settings", rig.org, {"orgId": rig.org, "compliance": {"smsBrandName": "Leaf"}}
    )
    connect(rig)
    text(rig, "stop")
    (record,) = rig.records()
    assert (record["identityKey"], record["customerId"]) == (f"cid:cus_{rig.org}", f"cus_{rig.org}")
    assert texts_to(rig)[0]["body"] == CONFIRMATION.format(brand="Leaf")


def test_a_number_without_its_country_code_takes_the_orgs_default_country(rig):
    connect(rig)
    national = f"({rig.phone[2:5]}) {rig.phone[5:8]}-{rig.phone[8:]}"
    assert signed_post(rig, message(rig, **{"from": national})).status_code == 200
    (record,) = rig.records()
    assert record["identityKey"] == f"ph:{rig.phone}"


def test_a_replayed_message_writes_and_sends_nothing_twice(rig):
    connect(rig)
    first = text(rig, "STOP", message_id="bl-in-1")[1]
    before = rig.trace()
    status, replay = text(rig, "STOP", message_id="bl-in-1")  # re-signed: a fresh receivedAt
    assert status == 200
    assert replay["duplicate"] is True
    assert replay["recordId"] == first["recordId"]
    assert rig.trace() == before
    assert len(texts_to(rig)) == 1


def test_other_texts_are_acknowledged_and_change_no_consent(rig):
    connect(rig)
    status, answer = text(rig, "What time do you open?")
    assert (status, answer["keyword"]) == (200, None)
    assert rig.records() == []
    assert texts_to(rig) == []


def signed_post(rig, body, *, org=None, secret=SECRET, signature=None, headers=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    sent_headers = {"Content-Type": "application/json", "X-Blackleaf-Signature": digest}
    if signature is not None:
        sent_headers["X-Blackleaf-Signature"] = signature
    query = "" if org == "" else f"?orgId={org or rig.org}"
    return httpx.post(
        f"{rig.served('webhook_blackleaf')}/{query}", content=raw,
        headers={**sent_headers, **(headers or {})}, timeout=10,
    )  # fmt: skip


def message(rig, **changes):
    return {"id": "m-1", "from": rig.phone, "to": OURS, "body": "STOP",
            "receivedAt": "2026-11-24T12:00:00Z", **changes}  # fmt: skip


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ({"secret": "someone-elses-secret"}, 401),
        ({"signature": "0" * 64}, 401),
        ({"signature": "not hex at all"}, 401),
        ({"signature": ""}, 401),
        ({"org": ""}, 401),
        ({"org": "org_unknown"}, 401),
        ({"org": "a%2Fb"}, 401),
        ({"body": b'{"id": "m-1", "from": '}, 400),
        ({"body": b"\xff\xfe"}, 400),
        ({"body": {"from": "12"}}, 400),
        ({"body": {"receivedAt": "noon"}}, 400),
        ({"body": ["STOP"]}, 400),
        ({"body": b"{" * 70_000}, 413),
    ],
    ids=lambda value: str(value)[:40],
)
def test_a_refused_delivery_is_problem_json_and_writes_nothing(rig, case, status):
    connect(rig)
    before, sent = rig.trace(), len(rig.texts())
    case = dict(case)  # the parameter is shared by both backends' runs
    body = case.pop("body", {})
    body = message(rig, **body) if isinstance(body, dict) else body
    answered = signed_post(rig, body, **case)
    assert answered.status_code == status, answered.text
    assert answered.headers["Content-Type"].startswith("application/problem+json")
    assert rig.trace() == before
    assert len(rig.texts()) == sent


def test_another_orgs_secret_never_verifies_this_org(rig):
    connect(rig, org=rig.other, secret="the-other-orgs-secret")
    connect(rig)  # ours: a different secret
    answered = signed_post(rig, message(rig), secret="the-other-orgs-secret")
    assert answered.status_code == 401
    assert rig.records() == []
    assert rig.records(rig.other) == []


def test_a_rotated_secret_keeps_verifying_for_a_day(rig):
    connect(rig, secret="first-secret-value")
    connect(rig, secret="second-secret-value")
    assert signed_post(rig, message(rig), secret="first-secret-value").status_code == 200
    rig.clock.advance(hours=24, seconds=1)
    late = signed_post(rig, message(rig, id="m-2"), secret="first-secret-value")
    assert late.status_code == 401
    current = signed_post(rig, message(rig, id="m-3"), secret="second-secret-value")
    assert current.status_code == 200


def test_the_service_refuses_before_reading_the_body(rig):
    from playbook_core.service.compliance.sms_inbound import SmsInbound, receive_sms

    inbound = SmsInbound(
        store=rig.store, clock=rig.clock, ids=rig.app.ids, secrets=rig.app.secrets(), sms=None
    )
    with pytest.raises(Unauthenticated):
        receive_sms(headers={}, body=b"not even json", query_org_id=rig.org, inbound=inbound)
