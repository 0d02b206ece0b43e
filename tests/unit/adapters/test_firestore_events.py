"""Embedded Firestore triggers decode exactly like the emulator's (runtime.cloudevents)."""

import base64
from datetime import UTC, datetime

import pytest

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.firestore_events import FirestoreTriggerPoster, to_value
from playbook_core.domain.collections import CUSTOMERS, ORDERS
from playbook_core.runtime.cloudevents import decode_firestore_change, plain_value
from playbook_core.testing import RecordingServer, eventually

VALUES = [
    None,
    True,
    False,
    0,
    -(2**63),
    1.5,
    "",
    "héllo 😀",
    datetime(2026, 11, 24, 12, 0, 1, 123456, tzinfo=UTC),
    [],
    {},
    [1, {"a": [None, "b"]}],
    {"m": {"n": [1.0, "x"]}, "empty": {}},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_the_value_encoder_is_the_inverse_of_plain_value(value):
    back = plain_value(to_value(value))
    assert back == value
    assert isinstance(back, type(value))  # plain_value keeps proto's datetime subclass
    assert isinstance(back, bool) == isinstance(value, bool)


@pytest.fixture
def sink():
    server = RecordingServer().start()
    yield server
    server.stop()


def attributes_of(request):
    return {k.removeprefix("ce-"): v for k, v in request.headers.items() if k.startswith("ce-")}


def test_commits_post_emulator_shaped_cloudevents_that_decode(sink):
    route = f"{sink.url}/functions/projects/demo-playbooks/triggers/demo-playbooks:on_order_written"
    poster = FirestoreTriggerPoster(lambda path: route if path.startswith("orders/") else None)
    store = EmbeddedStore(":memory:", on_commit=poster)
    at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    try:
        store.create(ORDERS, "o1", {"orgId": "org_a", "total": 10, "at": at, "tags": ["vip"]})
        store.update(ORDERS, "o1", {"total": 12})
        store.delete(ORDERS, "o1")
        store.create(CUSTOMERS, "c1", {"orgId": "org_a"})  # no route: nothing posted
        poster.drain()
    finally:
        store.close()
        poster.close()

    created, updated, deleted = eventually(
        lambda: sink.requests if len(sink.requests) == 3 else None
    )
    headers = created.headers
    assert (
        created.path
        == "/functions/projects/demo-playbooks/triggers/demo-playbooks:on_order_written"
    )
    assert headers["Content-Type"] == "application/protobuf"
    assert headers["ce-type"] == "google.cloud.firestore.document.v1.written"
    assert headers["ce-subject"] == "documents/orders/o1"
    assert headers["ce-document"] == "orders/o1"
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-project"] == "demo-playbooks"
    assert headers["ce-database"] == "(default)"
    assert headers["ce-time"].endswith("Z")
    assert base64.b64decode(created.body, validate=True)  # base64 text, as the emulator sends
    first = decode_firestore_change(attributes_of(created), created.body)
    assert (first.kind, first.path, first.collection, first.document_id) == (
        "created",
        f"{ORDERS}/o1",
        ORDERS,
        "o1",
    )
    assert first.after == {"orgId": "org_a", "total": 10, "at": at, "tags": ["vip"]}
    second = decode_firestore_change(attributes_of(updated), updated.body)
    assert (second.kind, second.changed) == ("updated", frozenset({"total"}))
    assert second.before["total"] == 10
    assert second.after["total"] == 12
    third = decode_firestore_change(attributes_of(deleted), deleted.body)
    assert (third.kind, third.after) == ("deleted", None)
    assert len({r.headers["ce-id"] for r in sink.requests}) == 3


def test_an_unreachable_route_is_logged_and_dropped(caplog):
    poster = FirestoreTriggerPoster(lambda _: "http://127.0.0.1:9/nowhere", timeout_s=1.0)
    store = EmbeddedStore(":memory:", on_commit=poster)
    try:
        store.create(ORDERS, "o1", {"n": 1})
        poster.drain()
        assert store.get(ORDERS, "o1") == {"n": 1}
    finally:
        store.close()
        poster.close()
    assert "lost" in caplog.text
