"""No way across a tenant boundary, checked for every route of the router (domain.md §7.13)."""

import json

import pytest

from playbook_core.domain.collections import APPROVALS, EXECUTIONS, PLAYBOOKS
from playbook_core.runtime.api import all_routes
from tests.openapi_conformance import DOCUMENT

ORG_ROUTES = [r for r in all_routes() if "{orgId}" in r.template]
SECRET_NAME = "Org B secret plan"


@pytest.fixture
def two_orgs(api):
    b = api.as_(orgs=("org_b",)).post(
        "/v1/orgs/org_b/playbooks", json={"name": SECRET_NAME, "agent": "craig"}
    )
    assert b.status_code == 201
    return api, b.get_json()["id"]


def fill(template, org_id, playbook_id):
    return (
        template.replace("{orgId}", org_id)
        .replace("{playbookId}", playbook_id)
        .replace("{version}", "1")
        .replace("{executionId}", "ev_unknown")
        .replace("{sourceId}", "shopify_b-shop.myshopify.com")
        .replace("{customerId}", "cus_b")
    )


def body_for(route):
    """A body the route accepts: the example its OpenAPI operation documents."""
    operation = DOCUMENT["paths"][route.template][route.method.lower()]
    if "requestBody" not in operation:
        return {}
    return operation["requestBody"]["content"]["application/json"]["example"]


def call(client, route, path):
    method = route.method.lower()
    if method in ("post", "put", "patch"):
        return getattr(client, method)(path, json=body_for(route))
    return getattr(client, method)(path)


@pytest.mark.parametrize("route", ORG_ROUTES, ids=lambda r: f"{r.method} {r.template}")
def test_brand_user_of_org_a_is_refused_on_org_b(two_orgs, route):
    api, b_playbook = two_orgs
    response = call(api.as_(), route, fill(route.template, "org_b", b_playbook))
    assert response.status_code == 403
    assert SECRET_NAME not in response.get_data(as_text=True)


# Bodies a handler would refuse with 400/415 if it read them before checking the caller.
UNREADABLE_BODIES = {
    "empty": {},
    "malformed JSON": {"data": b'{"enabled": ', "content_type": "application/json"},
    "wrong media type": {"data": b"enabled=true", "content_type": "application/x-www-form-urlencoded"},
}  # fmt: skip


@pytest.mark.parametrize("body", UNREADABLE_BODIES, ids=str)
@pytest.mark.parametrize("route", ORG_ROUTES, ids=lambda r: f"{r.method} {r.template}")
def test_another_orgs_caller_is_refused_before_the_body_is_read(two_orgs, route, body):
    """Authorization comes first: a cross-tenant request is 403 whatever its body (api.md §3)."""
    api, b_playbook = two_orgs
    path = fill(route.template, "org_b", b_playbook)
    response = getattr(api.as_(), route.method.lower())(path, **UNREADABLE_BODIES[body])
    assert response.status_code == 403, response.get_json()
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("body", UNREADABLE_BODIES, ids=str)
@pytest.mark.parametrize(
    "route",
    [r for r in ORG_ROUTES if r.access in ("editor", "approver", "system")],
    ids=lambda r: f"{r.method} {r.template}",
)
def test_a_viewer_is_refused_before_the_body_is_read(two_orgs, route, body):
    """Role checks come first too: a viewer of the org gets 403 on every write, whatever the body."""
    api, _ = two_orgs
    path = fill(route.template, "org_a", "pb_unknown")
    viewer = api.as_(role="brand_member")
    response = getattr(viewer, route.method.lower())(path, **UNREADABLE_BODIES[body])
    assert response.status_code == 403, response.get_json()


def test_every_org_route_declares_who_may_call_it():
    """The router enforces each route's caller group; none of an org's routes is open to all."""
    assert {r.access for r in ORG_ROUTES} <= {"reader", "editor", "approver", "system"}


@pytest.mark.parametrize(
    "route",
    [r for r in ORG_ROUTES if "{playbookId}" in r.template],
    ids=lambda r: f"{r.method} {r.template}",
)
def test_org_b_playbook_under_org_a_path_is_not_found(two_orgs, route):
    api, b_playbook = two_orgs
    response = call(api.as_(), route, fill(route.template, "org_a", b_playbook))
    assert response.status_code in (404, 403)  # 403 only where the route itself is system-only
    if route.template.endswith("Tier"):
        return
    assert response.status_code == 404
    assert SECRET_NAME not in response.get_data(as_text=True)
    assert api.app.store.get(PLAYBOOKS, b_playbook)["status"] == "draft"


def test_super_user_reads_and_edits_both_orgs(two_orgs):
    api, b_playbook = two_orgs
    boss = api.as_(role="super_user", orgs=())
    assert boss.get(f"/v1/orgs/org_b/playbooks/{b_playbook}").status_code == 200
    assert (
        boss.post("/v1/orgs/org_a/playbooks", json={"name": "A", "agent": "craig"}).status_code
        == 201
    )
    renamed = boss.put(
        f"/v1/orgs/org_b/playbooks/{b_playbook}", json={"name": "Renamed", "agent": "craig"}
    )
    assert renamed.status_code == 200


def test_listing_never_shows_another_orgs_playbooks(two_orgs):
    api, _ = two_orgs
    api.as_().post("/v1/orgs/org_a/playbooks", json={"name": "Mine", "agent": "craig"})
    body = api.as_().get("/v1/orgs/org_a/playbooks?view=all").get_data(as_text=True)
    assert [p["name"] for p in json.loads(body)["playbooks"]] == ["Mine"]
    assert SECRET_NAME not in body


def test_viewer_reads_but_cannot_write(two_orgs):
    api, _ = two_orgs
    viewer = api.as_(role="brand_member")
    assert viewer.get("/v1/orgs/org_a/playbooks").status_code == 200
    assert (
        viewer.post("/v1/orgs/org_a/playbooks", json={"name": "N", "agent": "craig"}).status_code
        == 403
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic abc"},
        {"X-Cron-Secret": "wrong"},
    ],
)
def test_missing_or_bad_credentials_are_401(api, headers):
    response = api.client.get("/v1/orgs/org_a/playbooks", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_signed_looking_token_is_refused_by_the_emulator_verifier(api):
    header = "eyJhbGciOiJSUzI1NiJ9"  # {"alg":"RS256"}: only unsigned tokens are accepted locally
    token = api.headers()["Authorization"].split(" ")[1].split(".")
    response = api.client.get(
        "/v1/orgs/org_a/playbooks", headers={"Authorization": f"Bearer {header}.{token[1]}.sig"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "route",
    [r for r in ORG_ROUTES if "{executionId}" in r.template],
    ids=lambda r: f"{r.method} {r.template}",
)
def test_org_b_execution_under_org_a_path_is_not_found(two_orgs, route):
    api, b_playbook = two_orgs
    api.app.store.create(
        EXECUTIONS,
        "ev_b",
        {"id": "ev_b", "orgId": "org_b", "status": "queued", "playbookId": b_playbook},
    )
    api.app.store.create(APPROVALS, "ev_b", {"id": "ev_b", "orgId": "org_b", "status": "pending"})
    path = route.template.replace("{orgId}", "org_a").replace("{executionId}", "ev_b")
    response = call(api.as_(), route, path)
    assert response.status_code == 404
    assert api.app.store.get(EXECUTIONS, "ev_b")["status"] == "queued"
    assert api.app.store.get(APPROVALS, "ev_b")["status"] == "pending"
