"""Ids Firestore refuses in a path, tampered page tokens: a 4xx problem before any store call.

Was: each reached the store; Firestore refused it (InvalidArgument, or the client's ValueError on
an id with `/` or a cursor longer than the query's order) and the answer was a 500. Every case runs
on the embedded store and on the official Firestore emulator, whose refusals caused the 500s.
"""

import base64
import json
import os
import uuid
from datetime import UTC, datetime

import pytest

from playbook_core.domain.collections import PLAYBOOKS
from playbook_core.domain.errors import BadRequest
from playbook_core.ports import OrderBy, Where
from playbook_core.runtime.api import all_routes
from playbook_core.testing import FrozenClock
from tests.integration.conftest import CRON_SECRET, serving_api

PROBLEM = "https://bakedbot.ai/problems/"
HOSTILE_IDS = {
    "dot": ".",
    "dot-dot": "..",
    "reserved": "__name__",
    "reserved-dots": "__.__",
    "over-1500-bytes": "a" * 1501,
    "over-256-characters": "a" * 257,
    "5000-digits": "1" * 5000,  # int() refuses more than 4,300 digits
}
SEGMENTS = ("orgId", "playbookId", "executionId", "version")
LISTS = ("playbooks", "events", "executions", "approvals", "deliveries")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class RecordingStore:
    """The app's real store, noting each method called on it (reads and writes alike)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __getattr__(self, name):
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def called(*args, **kwargs):
            self.calls.append(name)
            return attribute(*args, **kwargs)

        return called


@pytest.fixture
def firestore_api(emulator_env):
    """The `api` fixture's app on the official Firestore emulator."""
    from playbook_core.adapters.firestore import FirestoreStore

    os.environ.update(
        {
            "PLAYBOOKS_BACKEND": "emulators",
            "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
            "CRON_SECRET": CRON_SECRET,
        }
    )
    yield from serving_api(FirestoreStore("demo-playbooks"), FrozenClock(NOW))


@pytest.fixture(params=["embedded", pytest.param("firestore", marks=pytest.mark.emulator)])
def rig(request):
    """(api, org id, a playbook of that org) on each backend; org ids are fresh per test."""
    api = request.getfixturevalue("api" if request.param == "embedded" else "firestore_api")
    org = f"org_{uuid.uuid4().hex[:10]}"
    created = api.as_(orgs=(org,)).post(
        f"/v1/orgs/{org}/playbooks", json={"name": "Mine", "agent": "craig"}
    )
    assert created.status_code == 201
    return api, org, created.get_json()["id"]


def fill(template, **values):
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def send(client, route, path, headers):
    method = route.method.lower()
    if method in ("post", "put", "patch"):
        return getattr(client, method)(path, json={"name": "X", "agent": "craig"}, headers=headers)
    return getattr(client, method)(path, headers=headers)


def recording(api):
    store = RecordingStore(api.app.store)
    api.app.store = store
    return store


def token(data):
    """Compact JSON in base64url, as the API's tokens are; padded (the tests send both forms)."""
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


AT = {"$t": "2026-11-24T12:00:00+00:00"}  # an order value as the API encodes updatedAt
TAMPERED = {
    "not-base64": "not a token!",
    "not-json": token(b"\xff\xfe not JSON"),
    "not-an-object": token([]),
    "no-id": token({"v": [AT]}),
    "extra-key": token({"v": [AT], "id": "pb_1", "orgId": "org_b"}),
    "id-with-slash": token({"v": [AT], "id": "playbooks/pb_1"}),
    "reserved-id": token({"v": [AT], "id": "__name__"}),
    "dot-dot-id": token({"v": [AT], "id": ".."}),
    "empty-id": token({"v": [AT], "id": ""}),
    "lone-surrogate-id": token({"v": [AT], "id": "\ud800"}),
    "number-id": token({"v": [AT], "id": 7}),
    "too-few-values": token({"v": [], "id": "pb_1"}),
    "too-many-values": token({"v": [AT, 2, 3, 4], "id": "pb_1"}),
    "naive-time": token({"v": [{"$t": "2026-11-24T12:00:00"}], "id": "pb_1"}),
    "non-utc-time": token({"v": [{"$t": "2026-11-24T12:00:00+05:00"}], "id": "pb_1"}),
    "not-a-time": token({"v": [{"$t": "yesterday"}], "id": "pb_1"}),
    "beyond-64-bits": token({"v": [10**30], "id": "pb_1"}),
    "nan-literal": token(b'{"v":[NaN],"id":"pb_1"}'),
    "array-in-array": token({"v": [[[1]]], "id": "pb_1"}),
    "bad-map-tag": token({"v": [{"$m": 5}], "id": "pb_1"}),
    "time-before-year-1": token({"v": [{"$t": "0001-01-01T00:00:00+01:00"}], "id": "pb_1"}),
    "float-overflow": token(b'{"v":[{"$f":' + b"9" * 400 + b'}],"id":"pb_1"}'),
    "deep-and-broken": token(b"[" * 700 + b"]" * 60),
}


@pytest.mark.parametrize("kind", HOSTILE_IDS)
@pytest.mark.parametrize("segment", SEGMENTS)
def test_an_id_no_document_can_have_is_a_404_before_any_store_call(rig, segment, kind):
    api, org, playbook = rig
    store = recording(api)
    valid = {"orgId": org, "playbookId": playbook, "executionId": "ev_1", "version": "1"}
    routes = [r for r in all_routes() if "{" + segment + "}" in r.template]
    # The org segment for callers who reach any org (a super user, the system) and for a user whose
    # token names the hostile org; the other segments for a member of the real org.
    callers = [api.headers("brand_admin", (org,))]
    if segment == "orgId":
        claimed = api.headers("brand_admin", (HOSTILE_IDS[kind],))
        callers = [api.headers("super_user", ()), {"X-Cron-Secret": CRON_SECRET}, claimed]
    answers = {}
    for route in routes:
        path = fill(route.template, **{**valid, segment: HOSTILE_IDS[kind]})
        for n, headers in enumerate(callers):
            response = send(api.client, route, path, headers)
            answers[(route.method, route.template, n)] = (
                response.status_code, response.mimetype, response.get_json()["type"],
            )  # fmt: skip
    assert routes
    not_found = (404, "application/problem+json", PROBLEM + "not-found")
    assert {key: answer for key, answer in answers.items() if answer != not_found} == {}
    assert store.calls == []


@pytest.mark.parametrize("kind", TAMPERED)
def test_a_tampered_page_token_is_a_400_before_any_store_call(rig, kind):
    api, org, _ = rig
    store = recording(api)
    member, forms = api.as_(orgs=(org,)), {TAMPERED[kind], TAMPERED[kind].rstrip("=")}
    answers = {
        (name, form): member.get(f"/v1/orgs/{org}/{name}", query_string={"pageToken": form})
        for name in LISTS
        for form in forms
    }
    got = {key: (r.status_code, r.get_json()["type"]) for key, r in answers.items()}
    assert got == dict.fromkeys(answers, (400, PROBLEM + "invalid-page-token"))
    assert {r.mimetype for r in answers.values()} == {"application/problem+json"}
    # How many order values a token holds depends on the query, so only the store's query can
    # refuse a wrong count (Firestore's before sending it); the router refuses every other kind.
    assert set(store.calls) <= ({"query"} if kind.startswith("too-") else set())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("agent", "a" * 1500),
        ("category", "\u00e9" * 750),
        ("playbookId", "a" * 1500),
        ("name", "a" * 1500),
        ("status", "a" * 1500),
        ("reason", "a" * 1500),
        ("pageToken", token(b"[" * 5000 + b"]" * 5000)),  # was a RecursionError
    ],
    ids=["agent", "category-2-byte-chars", "playbookId", "name", "status", "reason", "deep-token"],
)
def test_an_over_long_query_value_is_a_400_before_any_store_call(rig, name, value):
    # Was, on Firestore: a filter value of 1,500 bytes or more is refused (InvalidArgument): 500.
    api, org, _ = rig
    store = recording(api)
    member = api.as_(orgs=(org,))
    for path in LISTS:
        response = member.get(f"/v1/orgs/{org}/{path}", query_string={name: value})
        assert (response.status_code, response.mimetype) == (400, "application/problem+json")
    assert store.calls == []


def test_the_tokens_the_api_issues_still_walk_every_page(rig):
    api, org, first = rig
    member = api.as_(orgs=(org,))
    for n in range(4):
        member.post(f"/v1/orgs/{org}/playbooks", json={"name": f"P{n}", "agent": "craig"})
    seen, query = [], {"pageSize": "2"}
    while True:
        page = member.get(f"/v1/orgs/{org}/playbooks", query_string=query)
        assert page.status_code == 200, page.get_json()
        seen += [p["id"] for p in page.get_json()["playbooks"]]
        if not page.get_json().get("nextPageToken"):
            break
        query["pageToken"] = page.get_json()["nextPageToken"]
    assert len(seen) == len(set(seen)) == 5
    assert first in seen


@pytest.mark.parametrize(
    "cursor",
    [
        token(b"[" * 6000 + b"]" * 6000),  # nested past the parser's recursion limit
        "A" * 100_000,
        token({"v": [{"$t": "2026-11-24T12:00:00+00:00"}, 1, 2], "id": "d1"}),
    ],
    ids=["deep", "huge", "too-many-values"],
)
def test_the_store_itself_refuses_a_tampered_cursor_as_bad_request(rig, cursor):
    # Services page internal collections with the store's cursors; a bad one is still a 400.
    api, org, _ = rig
    with pytest.raises(BadRequest) as refused:
        api.app.store.query(
            PLAYBOOKS, [Where("orgId", "==", org)], [OrderBy("updatedAt", "desc")],
            limit=1, start_after=cursor,
        )  # fmt: skip
    assert refused.value.code == "invalid-page-token"


BODY_IDS = {**HOSTILE_IDS, "slash": "a/b", "empty": "", "newline": "ev_1\n"}


@pytest.mark.parametrize("kind", BODY_IDS)
def test_a_hostile_id_in_a_batch_approval_is_a_400_before_any_store_call(rig, kind):
    api, org, _ = rig
    store = recording(api)
    response = api.as_(orgs=(org,)).post(
        f"/v1/orgs/{org}/approvals:batchApprove", json={"ids": ["ev_fine", BODY_IDS[kind]]}
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert store.calls == []


@pytest.mark.parametrize("kind", BODY_IDS)
def test_a_hostile_customer_id_on_a_manual_run_is_a_400(rig, kind):
    api, org, playbook_id = rig
    response = api.as_(orgs=(org,)).post(
        f"/v1/orgs/{org}/playbooks/{playbook_id}:run", json={"customer": {"id": BODY_IDS[kind]}}
    )
    assert response.status_code == 400
