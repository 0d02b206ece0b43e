"""The official emulators through the official clients, and our decoding of what they deliver."""

import base64
import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from google.api_core.exceptions import Conflict
from google.cloud import firestore, pubsub_v1

from emulators import official
from playbook_core.domain.collections import CUSTOMERS, INVENTORY, ORDERS, PLAYBOOKS
from playbook_core.runtime.cloudevents import decode_firestore_change, decode_pubsub
from playbook_core.testing import RecordingServer, eventually

pytestmark = pytest.mark.emulator


def test_firestore_create_conflicts_on_an_existing_document(emulator_env):
    client = firestore.Client(project="demo-playbooks")
    doc = client.collection(PLAYBOOKS).document(f"pb_{uuid.uuid4().hex}")
    doc.create({"orgId": "org_a"})
    with pytest.raises(Conflict):
        doc.create({"orgId": "org_b"})
    assert doc.get().to_dict() == {"orgId": "org_a"}


def test_document_write_reaches_the_registered_trigger_and_decodes(emulator_env):
    firestore_emulator = emulator_env["firestore"]
    sink: RecordingServer = emulator_env["trigger_sink"]
    official.register_firestore_trigger(
        firestore_emulator, "on_customer_written", "customers/{customerId}", "written"
    )
    customer_id = f"cus_{uuid.uuid4().hex}"
    client = firestore.Client(project="demo-playbooks")
    created_at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    client.collection(CUSTOMERS).document(customer_id).set(
        {"orgId": "org_a", "email": "a@b.co", "createdAt": created_at, "tags": ["vip"]}
    )

    def delivered():
        return [
            r for r in sink.requests if r.headers.get("ce-document") == f"customers/{customer_id}"
        ]

    request = eventually(delivered)[0]
    assert (
        request.path
        == "/functions/projects/demo-playbooks/triggers/demo-playbooks:on_customer_written"
    )
    attributes = {
        k.removeprefix("ce-"): v for k, v in request.headers.items() if k.startswith("ce-")
    }
    change = decode_firestore_change(attributes, request.body)
    assert change.path == f"customers/{customer_id}"
    assert change.collection == CUSTOMERS
    assert change.kind == "created"
    assert change.after == {
        "orgId": "org_a",
        "email": "a@b.co",
        "createdAt": created_at,
        "tags": ["vip"],
    }
    assert change.changed == frozenset({"orgId", "email", "createdAt", "tags"})


def test_document_update_diff_is_computed_without_update_mask(emulator_env):
    sink: RecordingServer = emulator_env["trigger_sink"]
    official.register_firestore_trigger(
        emulator_env["firestore"], "on_inventory_written", "inventory/{itemId}", "written"
    )
    item_id = f"itm_{uuid.uuid4().hex}"
    doc = firestore.Client(project="demo-playbooks").collection(INVENTORY).document(item_id)
    doc.set({"orgId": "org_a", "quantity": 9, "name": "Gummies"})
    doc.update({"quantity": 3})

    def updates():
        found = [r for r in sink.requests if r.headers.get("ce-document") == f"inventory/{item_id}"]
        return found if len(found) >= 2 else None

    last = eventually(updates)[-1]
    attributes = {k.removeprefix("ce-"): v for k, v in last.headers.items() if k.startswith("ce-")}
    change = decode_firestore_change(attributes, last.body)
    assert change.kind == "updated"
    assert change.before["quantity"] == 9
    assert change.after["quantity"] == 3
    assert change.changed == frozenset({"quantity"})


def test_pubsub_push_carries_attributes_and_json_payload(emulator_env):
    receiver = RecordingServer().start()
    try:
        topic_id = f"playbook-events-{uuid.uuid4().hex[:8]}"
        publisher = pubsub_v1.PublisherClient()
        subscriber = pubsub_v1.SubscriberClient()
        topic = publisher.topic_path("demo-playbooks", topic_id)
        publisher.create_topic(name=topic)
        subscriber.create_subscription(
            name=subscriber.subscription_path("demo-playbooks", f"{topic_id}-push"),
            topic=topic,
            push_config={"push_endpoint": f"{receiver.url}/on_event_published/"},
        )
        envelope = {"eventId": "shp_1", "name": "order.created", "orgId": "org_a"}
        publisher.publish(
            topic,
            json.dumps(envelope).encode(),
            orgId="org_a",
            name="order.created",
            eventId="shp_1",
        ).result(timeout=10)

        request = eventually(lambda: receiver.requests)[0]
        message = decode_pubsub(json.loads(request.body))
        assert message.attributes == {"orgId": "org_a", "name": "order.created", "eventId": "shp_1"}
        assert message.json() == envelope
        assert message.message_id
    finally:
        receiver.stop()


def test_emulator_firestore_body_is_base64_and_raw_bytes_decode_too(emulator_env):
    sink: RecordingServer = emulator_env["trigger_sink"]
    official.register_firestore_trigger(
        emulator_env["firestore"], "on_order_written", "orders/{orderId}", "written"
    )
    order_id = f"ord_{uuid.uuid4().hex}"
    firestore.Client(project="demo-playbooks").collection(ORDERS).document(order_id).set(
        {"brandId": "b1"}
    )
    request = eventually(
        lambda: [r for r in sink.requests if r.headers.get("ce-document") == f"orders/{order_id}"]
    )[0]
    raw = base64.b64decode(request.body, validate=True)
    attributes = {"document": f"orders/{order_id}"}
    assert decode_firestore_change(attributes, raw).after == {"brandId": "b1"}
    assert decode_firestore_change(attributes, request.body).after == {"brandId": "b1"}


def test_reset_removes_every_document(emulator_env):
    client = firestore.Client(project="demo-playbooks")
    doc = client.collection("scratch").document(uuid.uuid4().hex)
    doc.set({"orgId": "x"})
    official.reset_firestore(emulator_env["firestore"])
    assert not doc.get().exists
    assert httpx.get(f"http://{emulator_env['firestore'].host}/", timeout=5).text.strip() == "Ok"
