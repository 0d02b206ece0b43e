"""The deploy artifact, run as deployed (see conftest): the story of api.md §2, and every refusal.

The editor's requests carry Firebase ID tokens signed by the local "Google" key; every internal
hop (Pub/Sub push through the relay, Cloud Tasks, Cloud Scheduler) carries an OIDC token signed
by the same key, verified by the production code against its published certificates. A token
that fails any one check is refused at the HTTP boundary and changes nothing.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx
import pytest
from google.auth import crypt
from google.cloud import firestore as gfirestore
from google.cloud import secretmanager

from emulators import demo
from emulators.google_keys import firebase_token, key_id, write_key
from playbook_core.adapters.firebase_auth import local_claims, unsigned_token
from playbook_core.adapters.service_tokens import mint_signed, mint_unsigned
from playbook_core.config import caller_account
from playbook_core.domain.collections import SECRETS, WEBHOOK_SOURCES

pytestmark = [pytest.mark.stack, pytest.mark.emulator]

SPEC = demo.load_spec()
ORG = SPEC.org.id
EDITOR = SPEC.editor


def editor_token(signer: crypt.Signer, project: str, **changes: Any) -> str:
    claims: dict[str, Any] = {
        "role": EDITOR.role, "orgId": ORG, "orgIds": [ORG], "email": EDITOR.email,
    }  # fmt: skip
    claims.update(changes)
    return firebase_token(signer, project, EDITOR.uid, **claims)


def test_the_story_runs_on_the_artifact_with_production_auth_and_secrets(deployed, tmp_path):
    stack = deployed.as_stack()
    token = editor_token(deployed.signer, deployed.project)
    assert demo.seed(stack, tmp_path, SPEC, user_token=token) == ORG
    lines: list[str] = []
    with demo.Api(stack, SPEC, token) as api:
        story = demo._Story(api, stack, SPEC, lines.append)
        event_id = story.fulfilled_order()
        run = story.first_pause(event_id)
        assert run["status"] == "pending_approval"
        story.approve(run)  # raises unless the approved run completes
        story.show_email(str(run["id"]))  # raises unless Mailjet's stand-in got the email
        (delivery,) = story._deliveries(str(run["id"]))
        sent = [
            message
            for request in httpx.get(f"{deployed.mailjet}/__requests", timeout=30).json()
            for message in (request.get("body") or {}).get("Messages") or []
            if message.get("CustomID") == delivery["id"]
        ]
        assert len(sent) == 1  # once, whatever retries the pipeline made
        story.second_order()
        path = f"/orgs/{ORG}/analytics/playbooks"
        playbook_id = f"{ORG}_{demo.POST_PURCHASE}"

        def attributed() -> dict[str, Any] | None:
            row = demo._analytics_row(api.call("GET", path).json(), playbook_id)
            return row if row and (row.get("attributedOrders") or 0) > 0 else None

        row = demo._poll(attributed, 30.0)
    assert row is not None, lines
    assert row["attributedOrders"] == 1
    # The webhook secrets live in Secret Manager (its emulator), not in a local collection.
    client = secretmanager.SecretManagerServiceClient(
        transport=secretmanager_transport(deployed.secret_manager)
    )
    os.environ["FIRESTORE_EMULATOR_HOST"] = deployed.firestore  # restored after the test
    store = gfirestore.Client(project=deployed.project)
    held = set()
    try:
        for source in store.collection(WEBHOOK_SOURCES).stream():
            for reference in source.to_dict()["secretRefs"]:
                assert reference.startswith(f"projects/{deployed.project}/secrets/")
                held.add(client.access_secret_version(name=reference).payload.data.decode())
        assert list(store.collection(SECRETS).limit(1).stream()) == []
    finally:
        store.close()
        client.transport.close()
    assert held == {source.secret for source in SPEC.webhook_sources}
    # No secret reached a function's log.
    for function in deployed.processes:
        log = deployed.log(function)
        for secret in SPEC.secrets:
            assert secret not in log, function


def secretmanager_transport(address: str) -> Any:
    import grpc
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    return SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(address))


def _other_signer(tmp_path_factory: pytest.TempPathFactory, kid: str | None) -> crypt.Signer:
    pem = write_key(tmp_path_factory.mktemp("other") / "other.pem").read_bytes()
    return crypt.RSASigner.from_string(pem, key_id=kid or key_id(pem))


def without_kid(deployed: Any) -> crypt.Signer:
    """The published key itself, under a header that names no key."""
    return crypt.RSASigner.from_string(deployed.key_file.read_bytes(), key_id=None)


EDITOR_REFUSALS = {
    "unsigned (the Auth emulator's)": lambda d, _o: unsigned_token(
        local_claims(d.project, EDITOR.uid, EDITOR.role, [ORG])
    ),
    "wrong signature": lambda d, o: editor_token(o(d.signer.key_id), d.project),
    "unknown kid": lambda d, o: editor_token(o(None), d.project),
    "no kid": lambda d, _o: editor_token(without_kid(d), d.project),
    "issuer": lambda d, _o: editor_token(
        d.signer, d.project, iss="https://securetoken.google.com/another"
    ),
    "audience": lambda d, _o: editor_token(d.signer, d.project, aud="another"),
    "expired": lambda d, _o: firebase_token(
        d.signer, d.project, EDITOR.uid, now=time.time() - 7200, role=EDITOR.role, orgId=ORG
    ),
}


@pytest.mark.parametrize("case", list(EDITOR_REFUSALS))
def test_the_api_refuses_an_editor_token_that_fails_a_check(deployed, tmp_path_factory, case):
    token = EDITOR_REFUSALS[case](deployed, lambda kid: _other_signer(tmp_path_factory, kid))
    answer = httpx.patch(
        f"{deployed.router}/playbooks_api/v1/orgs/{ORG}/settings",
        headers={"Authorization": f"Bearer {token}"},
        json={"timezone": "UTC"},
        timeout=30,
    )
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
    valid = editor_token(deployed.signer, deployed.project)
    accepted = httpx.get(
        f"{deployed.router}/playbooks_api/v1/orgs/{ORG}/settings",
        headers={"Authorization": f"Bearer {valid}"},
        timeout=30,
    )
    assert accepted.status_code == 200
    assert accepted.json().get("timezone") != "UTC"


def step_body() -> bytes:
    return json.dumps(
        {"orgId": ORG, "executionId": "exe_refused", "stepIndex": 0, "attempt": 1}
    ).encode()


CALLER_REFUSALS = {
    "no token": lambda _d, _o: None,
    "unsigned": lambda d, _o: mint_unsigned(
        caller_account("cloud_tasks", d.project), f"{d.router}/execute_step", time.time()
    ),
    "another key": lambda d, o: mint_signed(
        o(d.signer.key_id),
        caller_account("cloud_tasks", d.project),
        f"{d.router}/execute_step",
        time.time(),
    ),
    "no kid": lambda d, _o: mint_signed(
        without_kid(d),
        caller_account("cloud_tasks", d.project),
        f"{d.router}/execute_step",
        time.time(),
    ),
    "another audience": lambda d, _o: mint_signed(
        d.signer,
        caller_account("cloud_tasks", d.project),
        f"{d.router}/cron_playbooks",
        time.time(),
    ),
    "another caller": lambda d, _o: mint_signed(
        d.signer,
        caller_account("pubsub_push", d.project),
        f"{d.router}/execute_step",
        time.time(),
    ),
    "expired": lambda d, _o: mint_signed(
        d.signer,
        caller_account("cloud_tasks", d.project),
        f"{d.router}/execute_step",
        time.time() - 7200,
    ),
}


# 401: the token is not a valid one for this function; 403: valid, but not one of its callers.
EXPECTED_STATUS = {"another caller": 403}


def call_execute_step(deployed, token):
    headers = {"Content-Type": "application/json", "X-CloudTasks-TaskRetryCount": "0"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(
        f"{deployed.router}/execute_step/", content=step_body(), headers=headers, timeout=30
    )


def test_execute_step_accepts_the_tasks_token_it_is_given(deployed):
    # The control for the refusals below: the same request with the right token is acknowledged.
    token = mint_signed(
        deployed.signer, caller_account("cloud_tasks", deployed.project),
        f"{deployed.router}/execute_step", time.time(),
    )  # fmt: skip
    answer = call_execute_step(deployed, token)
    assert answer.status_code == 200


@pytest.mark.parametrize("case", list(CALLER_REFUSALS))
def test_execute_step_refuses_a_caller_token_that_fails_a_check(deployed, tmp_path_factory, case):
    token = CALLER_REFUSALS[case](deployed, lambda kid: _other_signer(tmp_path_factory, kid))
    answer = call_execute_step(deployed, token)
    assert answer.status_code == EXPECTED_STATUS.get(case, 401)
    assert answer.headers["content-type"].startswith("application/problem+json")
