"""infra/firestore.rules on the Firestore emulator: what a dashboard client may read (domain.md §2.5).

Rules are loaded with the emulator's securityRules endpoint; documents are seeded with the Python
client (it authenticates as `owner` and bypasses rules); reads go through the REST API with
unsigned emulator ID tokens, as a browser client's would (operations.md §12).
"""

import base64
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from google.cloud import firestore

from emulators import official
from playbook_core.domain.collections import (
    CLIENT_READABLE,
    COMMUNICATIONS,
    CONSENT_RECORDS,
    EXECUTIONS,
    FUNCTION_STATUS,
    LISTENERS,
    SCHEDULES,
    SECRETS,
    SETTINGS,
    SMS_WEBHOOKS,
    WEBHOOK_CLAIMS,
    WEBHOOK_RECEIPTS,
    WEBHOOK_SOURCES,
    step_doc_id,
    steps_path,
)

pytestmark = pytest.mark.emulator

ROOT = Path(__file__).parents[2]
RULES = ROOT / "infra" / "firestore.rules"
PROJECT = official.PROJECT

# What the dashboard listens to: readable by the org's members only.
DASHBOARD = sorted(CLIENT_READABLE)
# Never client-readable, whoever asks.
SERVER_ONLY = [
    WEBHOOK_SOURCES,
    WEBHOOK_RECEIPTS,
    WEBHOOK_CLAIMS,
    SETTINGS,
    COMMUNICATIONS,
    LISTENERS,
    SCHEDULES,
    SECRETS,
    CONSENT_RECORDS,
    SMS_WEBHOOKS,
    FUNCTION_STATUS,
]


def _b64(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def id_token(**claims) -> str:
    """An unsigned Firebase ID token, which the emulator accepts."""
    now = int(time.time())
    uid = claims.pop("sub", f"user_{uuid.uuid4().hex[:8]}")
    body = {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "iat": now,
        "exp": now + 3600,
        "auth_time": now,
        "sub": uid,
        "user_id": uid,
        "firebase": {"sign_in_provider": "custom", "identities": {}},
        **claims,
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(body)}."


@pytest.fixture(scope="module")
def rules_emulator(gcp_emulators):
    """The session's Firestore emulator with infra/firestore.rules loaded.

    Other modules are unaffected: the Python client authenticates as owner and bypasses rules.
    """
    emulator = gcp_emulators["firestore"]
    response = httpx.put(
        f"http://{emulator.host}/emulator/v1/projects/{PROJECT}:securityRules",
        json={"rules": {"files": [{"name": "firestore.rules", "content": RULES.read_text()}]}},
        timeout=10.0,
    )
    assert response.status_code == 200, response.text
    return emulator


@pytest.fixture(scope="module")
def seeded(rules_emulator):
    """One document per collection for two orgs, plus a step under each execution."""
    run = uuid.uuid4().hex[:10]
    orgs = {"own": f"org_{run}_a", "other": f"org_{run}_b"}
    ids = {}
    with _emulator_client(rules_emulator.host) as client:
        _seed(client, run, orgs, ids)
    return {"orgs": orgs, "ids": ids, "host": rules_emulator.host}


@contextmanager
def _emulator_client(host: str) -> Iterator[firestore.Client]:
    """The official client on the emulator; the environment is put back before any test runs."""
    saved = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    try:
        client = firestore.Client(project=PROJECT)
        yield client
        client.close()
    finally:
        if saved is None:
            del os.environ["FIRESTORE_EMULATOR_HOST"]
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = saved


def _seed(client: firestore.Client, run: str, orgs: dict, ids: dict) -> None:
    for collection in DASHBOARD + SERVER_ONLY:
        for key, org in orgs.items():
            doc_id = f"{collection}_{key}_{run}"
            client.collection(collection).document(doc_id).set({"orgId": org, "name": doc_id})
            ids[collection, key] = doc_id
    for key, org in orgs.items():
        execution = ids[EXECUTIONS, key]
        client.document(f"{steps_path(execution)}/{step_doc_id(0)}").set(
            {"orgId": org, "executionId": execution, "index": 0}
        )


def documents_url(host: str) -> str:
    return f"http://{host}/v1/projects/{PROJECT}/databases/(default)/documents"


def get(seeded, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{documents_url(seeded['host'])}/{path}", headers=headers, timeout=10.0)


def member(seeded, **extra) -> str:
    return id_token(orgId=seeded["orgs"]["own"], role="brand_admin", **extra)


@pytest.mark.parametrize("collection", DASHBOARD)
def test_an_org_member_reads_its_own_orgs_documents(seeded, collection):
    response = get(seeded, f"{collection}/{seeded['ids'][collection, 'own']}", member(seeded))
    assert response.status_code == 200, response.text
    assert response.json()["fields"]["orgId"]["stringValue"] == seeded["orgs"]["own"]


@pytest.mark.parametrize("collection", DASHBOARD)
def test_another_orgs_documents_are_denied(seeded, collection):
    response = get(seeded, f"{collection}/{seeded['ids'][collection, 'other']}", member(seeded))
    assert response.status_code == 403


@pytest.mark.parametrize("collection", DASHBOARD)
def test_reads_without_a_token_are_denied(seeded, collection):
    response = get(seeded, f"{collection}/{seeded['ids'][collection, 'own']}", None)
    assert response.status_code == 403


def test_an_org_listed_in_org_ids_is_readable(seeded):
    token = id_token(
        orgId="org_elsewhere", orgIds=["org_x", seeded["orgs"]["other"]], role="brand_member"
    )
    response = get(seeded, f"playbooks/{seeded['ids']['playbooks', 'other']}", token)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("collection", DASHBOARD)
def test_super_user_reads_every_org(seeded, collection):
    token = id_token(role="super_user")
    for key in ("own", "other"):
        response = get(seeded, f"{collection}/{seeded['ids'][collection, key]}", token)
        assert response.status_code == 200, response.text


def test_execution_steps_follow_their_org(seeded):
    token = member(seeded)
    own = get(
        seeded,
        f"{steps_path(seeded['ids'][EXECUTIONS, 'own'])}/{step_doc_id(0)}",
        token,
    )
    other = get(
        seeded,
        f"{steps_path(seeded['ids'][EXECUTIONS, 'other'])}/{step_doc_id(0)}",
        token,
    )
    assert (own.status_code, other.status_code) == (200, 403)


def test_an_executions_steps_can_be_listed_without_a_filter_by_its_org_only(seeded):
    token = member(seeded)
    base = documents_url(seeded["host"])
    own = httpx.get(
        f"{base}/{steps_path(seeded['ids'][EXECUTIONS, 'own'])}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
    )
    other = httpx.get(
        f"{base}/{steps_path(seeded['ids'][EXECUTIONS, 'other'])}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
    )
    assert own.status_code == 200, own.text
    assert [d["name"].rsplit("/", 1)[1] for d in own.json()["documents"]] == [step_doc_id(0)]
    assert other.status_code == 403


@pytest.mark.parametrize("collection", SERVER_ONLY)
def test_server_only_collections_are_never_readable(seeded, collection):
    for token in (member(seeded), id_token(role="super_user"), None):
        response = get(seeded, f"{collection}/{seeded['ids'][collection, 'own']}", token)
        assert response.status_code == 403, (collection, response.text)


@pytest.mark.parametrize("collection", DASHBOARD)
def test_every_client_write_is_denied(seeded, collection):
    own = seeded["orgs"]["own"]
    body = {"fields": {"orgId": {"stringValue": own}, "name": {"stringValue": "x"}}}
    base = documents_url(seeded["host"])
    for token in (member(seeded), id_token(role="super_user")):
        headers = {"Authorization": f"Bearer {token}"}
        update = httpx.patch(
            f"{base}/{collection}/{seeded['ids'][collection, 'own']}",
            json=body, headers=headers, timeout=10.0,
        )  # fmt: skip
        create = httpx.post(
            f"{base}/{collection}?documentId=new_{uuid.uuid4().hex}",
            json=body, headers=headers, timeout=10.0,
        )  # fmt: skip
        delete = httpx.delete(
            f"{base}/{collection}/{seeded['ids'][collection, 'own']}", headers=headers, timeout=10.0
        )
        assert (update.status_code, create.status_code, delete.status_code) == (403, 403, 403)


def _run_query(seeded, token: str, collection: str, org_id: str | None) -> httpx.Response:
    query: dict = {"from": [{"collectionId": collection}], "limit": 10}
    if org_id is not None:
        query["where"] = {
            "fieldFilter": {
                "field": {"fieldPath": "orgId"},
                "op": "EQUAL",
                "value": {"stringValue": org_id},
            }
        }
    return httpx.post(
        f"{documents_url(seeded['host'])}:runQuery",
        json={"structuredQuery": query},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
    )


def test_a_listener_query_on_its_own_org_is_allowed_and_an_unfiltered_one_is_not(seeded):
    token = member(seeded)
    own = _run_query(seeded, token, EXECUTIONS, seeded["orgs"]["own"])
    unfiltered = _run_query(seeded, token, EXECUTIONS, None)
    other = _run_query(seeded, token, EXECUTIONS, seeded["orgs"]["other"])
    assert own.status_code == 200, own.text
    names = [row["document"]["name"] for row in own.json() if "document" in row]
    assert [name.rsplit("/", 1)[1] for name in names] == [seeded["ids"][EXECUTIONS, "own"]]
    assert (unfiltered.status_code, other.status_code) == (403, 403)
