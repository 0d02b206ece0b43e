"""Consent routes (docs/consent.md): a customer's consent history, the org's inbound SMS secret.

Answers never carry a secret or a secret reference (`sms_webhook.public_view`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Response

from playbook_core.domain.sms_inbound import SIGNATURE_HEADER
from playbook_core.runtime.api import Call, route
from playbook_core.runtime.contract import ConsentPage, SmsWebhook, SmsWebhookBody
from playbook_core.runtime.http import json_response
from playbook_core.service.compliance import consent, sms_webhook

ORG = "/v1/orgs/{orgId}"
SMS_FUNCTION = "webhook_blackleaf"


@route(
    "GET",
    ORG + "/customers/{customerId}/consent",
    summary="A customer's consent records, newest first",
    access="reader",
    answer=ConsentPage,
)
def list_customer_consent(call: Call) -> Response:
    size, token = call.page()
    result = consent.consent_history(
        call.app.store, org_id=call.params["orgId"], customer_id=call.params["customerId"],
        page_size=size, page_token=token,
    )  # fmt: skip
    return json_response(result)


def _described(call: Call, view: dict[str, Any]) -> dict[str, Any]:
    org_id = quote(call.params["orgId"], safe="")
    url = f"{call.app.settings.public_base}/{SMS_FUNCTION}?orgId={org_id}"
    return {**view, "webhookUrl": url, "signatureHeader": SIGNATURE_HEADER}


@route(
    "GET",
    ORG + "/sms-webhook",
    summary="Where Blackleaf posts inbound texts, and whether a secret is set (never which)",
    access="reader",
    answer=SmsWebhook,
)
def get_sms_webhook(call: Call) -> Response:
    view = sms_webhook.get_webhook(org_id=call.params["orgId"], store=call.app.store)
    return json_response(_described(call, view))


@route(
    "PUT",
    ORG + "/sms-webhook",
    summary="Set the inbound SMS signing secret; the previous one verifies for 24 h more",
    access="editor",
    body=SmsWebhookBody,
    answer=SmsWebhook,
)
def put_sms_webhook(call: Call) -> Response:
    secret = call.body(SmsWebhookBody).secret
    view = sms_webhook.set_secret(
        org_id=call.params["orgId"], secret=secret, store=call.app.store,
        secrets=call.app.secrets(), clock=call.app.clock,
    )  # fmt: skip
    return json_response(_described(call, view))
