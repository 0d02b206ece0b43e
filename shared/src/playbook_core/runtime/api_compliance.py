"""Compliance routes (docs/compliance.md): check a message, list the shipped rules."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from flask import Response

from playbook_core.domain.errors import BadRequest
from playbook_core.domain.sending import Channel
from playbook_core.runtime.api import Call, route
from playbook_core.runtime.contract import ComplianceCheck, ComplianceCheckBody, ComplianceRules
from playbook_core.runtime.http import json_response
from playbook_core.service.compliance import guard

CHANNELS = ("email", "sms")
FIRST_YEAR, LAST_YEAR = 2000, 2200


@route(
    "POST",
    "/v1/orgs/{orgId}/compliance:check",
    summary="Check a message against the rules where it would land",
    access="reader",
    body=ComplianceCheckBody,
    answer=ComplianceCheck,
)
def check_message(call: Call) -> Response:
    given = call.body(ComplianceCheckBody)
    recipient = given.recipient
    guarded, record_id = guard.check_for(
        store=call.app.store,
        org_id=call.params["orgId"],
        channel=given.channel,
        subject=given.subject,
        body=given.body,
        transactional=given.transactional,
        state=recipient.state if recipient else None,
        phone=recipient.phone if recipient else None,
        email=recipient.email if recipient else None,
        customer_id=recipient.customerId if recipient else None,
        send_at=_instant(given.sendAt) if given.sendAt else call.app.clock.now(),
    )
    place = guarded.place
    return json_response({
        **guard.stored(guarded.result),
        "recipient": {"state": place.state, "zone": place.zone, "basis": place.basis},
        "body": guarded.body,
        "consentRecordId": record_id,
    })  # fmt: skip


def _instant(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() is None:
        raise BadRequest(
            "sendAt is an RFC 3339 date-time with an offset, such as 2026-12-05T21:30:00Z"
        )
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:  # zone arithmetic overflows near year 1 or 9999
        raise BadRequest(f"sendAt must fall between the years {FIRST_YEAR} and {LAST_YEAR}")
    return parsed


@route(
    "GET",
    "/v1/compliance/rules",
    summary="The shipped compliance rules and their pack versions",
    access="signed-in",
    answer=ComplianceRules,
)
def list_rules(call: Call) -> Response:
    channel = call.query("channel")
    if channel is not None and channel not in CHANNELS:
        raise BadRequest("channel is email or sms")
    jurisdiction = call.query("jurisdiction")
    if jurisdiction is not None and jurisdiction not in guard.jurisdictions():
        raise BadRequest("jurisdiction is US or a state with a rule pack, such as CA")
    return json_response(guard.rules(jurisdiction, cast("Channel | None", channel)))
