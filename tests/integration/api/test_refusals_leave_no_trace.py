"""A refused request changes nothing: every mutating route, every way to be refused, both backends.

The whole database (the local secret store included) is read before and after each refused request;
any 4xx must leave it byte-for-byte equal. Requests that succeed only move the baseline.
"""

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import functions_framework
import pytest

from playbook_core.adapters.firebase_auth import local_claims, unsigned_token
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.config import load_settings
from playbook_core.runtime import bootstrap
from playbook_core.runtime.api import all_routes
from playbook_core.runtime.manifest import load_manifest
from playbook_core.testing import FrozenClock

MAIN = str(Path(__file__).parents[3] / "functions" / "main.py")
PROJECT = "demo-playbooks"
CRON_SECRET = "test-cron-secret"
MUTATING = [r for r in all_routes() if r.method in {"POST", "PUT", "PATCH", "DELETE"}]
PLAYBOOK = {"name": "Weekly note", "agent": "craig"}


def bearer(role, orgs, **extra):
    claims = local_claims(PROJECT, f"uid_{role}", role, list(orgs), **extra)
    return {"Authorization": f"Bearer {unsigned_token(claims)}"}


EDITOR = bearer("brand_admin", ["org_a"])
CALLERS = {
    "anonymous": {},
    "garbage token": {"Authorization": "Bearer not.a.jwt"},
    "expired token": {
        "Authorization": "Bearer "
        + unsigned_token(local_claims(PROJECT, "u", "brand_admin", ["org_a"], exp=1_000_000))
    },
    "wrong cron secret": {"X-Cron-Secret": "guess"},
    "other org's admin": bearer("brand_admin", ["org_b"]),
    "viewer": bearer("brand_member", ["org_a"]),
    "no role": bearer("", ["org_a"]),
    "editor": EDITOR,
}
PAST_AUTHENTICATION = ("other org's admin", "viewer", "editor")
BODIES = {
    "valid-looking": {"json": {**PLAYBOOK, "enabled": True, "version": 1, "tier": "scout",
                               "toTier": "scout", "templateId": "daily_intel",
                               "platform": "shopify", "shopDomain": "a.myshopify.com",
                               "secret": "a-long-enough-secret"}},
    "malformed JSON": {"data": b'{"name": ', "content_type": "application/json"},
    "wrong shape": {"json": ["not", "an", "object"]},
    "unknown fields": {"json": {"nope": 1, "slackWebhookUrl": "http://169.254.169.254/x"}},
    "wrong media type": {"data": b"name=x", "content_type": "application/x-www-form-urlencoded"},
    "stale If-Match": {"json": PLAYBOOK, "headers": {"If-Match": '"999"'}},
}  # fmt: skip


def snapshot_embedded(store):
    with store._connection() as conn:
        return sorted(conn.execute("SELECT collection, id, data FROM documents").fetchall())


def snapshot_firestore(client):
    """Every document of the project, subcollections included: one query per top-level collection."""
    return sorted(
        (document.reference.path, json.dumps(document.to_dict(), default=str, sort_keys=True))
        for collection in client.collections()
        for document in collection.recursive().stream()
    )


@pytest.fixture(params=["embedded", "emulators"])
def world(request):
    os.environ.update(
        {
            "PLAYBOOKS_BACKEND": "embedded",
            "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
            "CRON_SECRET": CRON_SECRET,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "PLAYBOOKS_FUNCTIONS_BASE_URL": "http://127.0.0.1:9",  # tasks this test starts go nowhere
        }
    )
    if request.param == "embedded":
        from playbook_core.adapters.embedded import EmbeddedStore

        store = EmbeddedStore(":memory:")
        snapshot = lambda: snapshot_embedded(store)  # noqa: E731
    else:
        request.getfixturevalue("emulator_env")
        from google.cloud import firestore

        from playbook_core.adapters.firestore import FirestoreStore

        isolated = f"demo-refusals-{uuid.uuid4().hex[:8]}"  # a database of its own in the emulator
        store = FirestoreStore(isolated)
        database = firestore.Client(project=isolated)
        snapshot = lambda: snapshot_firestore(database)  # noqa: E731
    bus, queue = InProcessBus(), InProcessTaskQueue()
    manifest = load_manifest()
    for config in manifest.queue_configs():  # as bootstrap wires them, shards included
        queue.create_queue(config)
    app = bootstrap.App(
        load_settings(), store, bus, queue, FrozenClock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    )
    bootstrap.use(app)
    client = functions_framework.create_app("playbooks_api", MAIN, "http").test_client()
    yield request.param, client, snapshot, _seed(client)
    bootstrap.use(None)
    bus.close()
    queue.close()


def _seed(client):
    """Two orgs with playbooks, a source with a secret and a Slack secret: things to damage."""
    ids = {}
    for org in ("org_a", "org_b"):
        headers = bearer("brand_admin", [org])
        created = client.post(f"/v1/orgs/{org}/playbooks", json=PLAYBOOK, headers=headers)
        assert created.status_code == 201
        ids[org] = created.get_json()["id"]
        source = {
            "platform": "shopify",
            "shopDomain": f"{org.replace('_', '-')}.myshopify.com",
            "secret": f"{org}-secret-1",
        }
        assert (
            client.post(f"/v1/orgs/{org}/webhook-sources", json=source, headers=headers).status_code
            == 201
        )
        slack = {"slackWebhookUrl": f"https://hooks.slack.com/services/{org}/X/Y"}
        assert (
            client.patch(f"/v1/orgs/{org}/settings", json=slack, headers=headers).status_code == 200
        )
    return ids


def paths_for(template, ids):
    filled = template.replace("{version}", "1").replace("{executionId}", "ev_unknown")
    for org in ("org_a", "org_b"):
        # Each org's own source (seeded) under both orgs' paths, and one that does not exist.
        for playbook, source in zip(
            (ids[org], "pb_does_not_exist"),
            ("shopify_org-a.myshopify.com", "shopify_org-b.myshopify.com"),
            strict=True,
        ):
            yield (
                filled.replace("{orgId}", org)
                .replace("{playbookId}", playbook)
                .replace("{sourceId}", source)
            )
        yield filled.replace("{orgId}", org).replace("{sourceId}", "shopify_gone.myshopify.com")


@pytest.mark.parametrize("route", MUTATING, ids=lambda r: f"{r.method} {r.template}")
def test_every_refusal_of_a_mutating_route_leaves_no_trace(world, route):
    backend, client, snapshot, ids = world
    # Refusals before the handler never reach storage; the emulator run (slow snapshots) keeps
    # the callers that get past authentication, where a backend's own behaviour could matter.
    callers = CALLERS if backend == "embedded" else {k: CALLERS[k] for k in PAST_AUTHENTICATION}
    before = snapshot()
    refusals = []
    for path in sorted(set(paths_for(route.template, ids))):
        for caller, headers in callers.items():
            for shape, body in BODIES.items():
                kwargs = {**body, "headers": {**headers, **body.get("headers", {})}}
                response = getattr(client, route.method.lower())(path, **kwargs)
                after = snapshot()
                if 400 <= response.status_code < 500:
                    refusals.append(response.status_code)
                    assert after == before, (
                        f"{route.method} {path} as {caller} with {shape} answered "
                        f"{response.status_code} but changed the database"
                    )
                    assert response.headers["Content-Type"] == "application/problem+json"
                before = after  # a request that succeeded moves the baseline
    assert 403 in refusals
