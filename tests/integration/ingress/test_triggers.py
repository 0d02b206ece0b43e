"""Firestore document triggers through the deployed entry points: which writes publish which events."""

import json
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import functions_framework
import pytest
from google.events.cloud.firestore_v1.types import DocumentEventData

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.firestore_events import document_event
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.config import Settings
from playbook_core.domain.collections import CUSTOMER_DATES, CUSTOMERS, INVENTORY, ORDERS, SETTINGS
from playbook_core.domain.customer_dates import row_id
from playbook_core.domain.ids import h
from playbook_core.runtime import bootstrap
from playbook_core.testing import FrozenClock

ROOT = Path(__file__).parents[3]
MAIN = str(ROOT / "functions" / "main.py")
EVENTS = ROOT / "tests" / "data" / "cloudevents"
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 in New York
FUNCTIONS = {
    ORDERS: "on_order_written",
    CUSTOMERS: "on_customer_written",
    INVENTORY: "on_inventory_written",
}


@pytest.fixture
def app():
    store = EmbeddedStore(":memory:")
    bus, queue = InProcessBus(), InProcessTaskQueue()
    installed = bootstrap.App(Settings(backend="embedded"), store, bus, queue, FrozenClock(NOW))
    bootstrap.use(installed)
    yield installed
    bootstrap.use(None)
    bus.close()
    queue.close()
    store.close()


def write(path, before, after, ce_id=None):
    """POST what the Firestore emulator posts for one write of `path`; returns the ce-id used."""
    ce_id = ce_id or uuid.uuid4().hex
    name = f"projects/demo-playbooks/databases/(default)/documents/{path}"
    body = DocumentEventData.serialize(document_event(name, before, after, NOW))
    headers = {
        "Content-Type": "application/protobuf",
        "ce-specversion": "1.0",
        "ce-type": "google.cloud.firestore.document.v1.written",
        "ce-source": "//firestore.googleapis.com/projects/projects/demo-playbooks/databases/(default)",
        "ce-id": ce_id,
        "ce-subject": f"documents/{path}",
        "ce-document": path,
        "ce-time": "2026-11-24T15:00:00Z",
    }
    function = FUNCTIONS[path.split("/")[0]]
    client = functions_framework.create_app(function, MAIN, "cloudevent").test_client()
    response = client.post("/", data=body, headers=headers)
    assert response.status_code == 200
    return ce_id


def published(app):
    return [json.loads(message.data) for _topic, message in app.bus.published]


def names(app):
    return [(e["orgId"], e["name"]) for e in published(app)]


# --- orders -------------------------------------------------------------------------------------


def test_order_created_is_one_order_created_per_org(app):
    order = {
        "orgId": "org_a",
        "brandId": "brand_b",
        "retailerId": "ret_c",
        "status": "pending",
        "total": 10,
    }
    write("orders/o1", None, order)
    assert names(app) == [
        ("org_a", "order.created"),
        ("brand_b", "order.created"),
        ("ret_c", "order.created"),
    ]
    assert {e["eventId"] for e in published(app)} == {
        "ord_" + h(org, "app", "o1", "created") for org in ("org_a", "brand_b", "ret_c")
    }
    assert {topic for topic, _ in app.bus.published} == {"playbook-events"}
    [(_, message), *_] = app.bus.published
    assert message.attributes == {
        "orgId": "org_a",
        "name": "order.created",
        "eventId": published(app)[0]["eventId"],
    }


def test_existing_app_order_shape_reaches_the_envelope(app):
    order = {
        "brandId": "org_a",
        "createdAt": datetime(2026, 11, 24, 14, 0, tzinfo=UTC),
        "totals": {"total": 57.3},
        "totalAmount": 1,
        "customer": {"email": "Buyer@Shop.COM", "phone": "415-555-0199", "name": "Bo Buyer"},
    }
    write("orders/o2", None, order)
    [envelope] = published(app)
    assert (envelope["data"]["total"], envelope["data"]["totalMinor"]) == ("57.30", 5730)
    assert envelope["data"]["orderAt"] == "2026-11-24T14:00:00Z"
    assert envelope["occurredAt"].startswith("2026-11-24T14:00:00")
    assert envelope["customer"] == {
        "email": "buyer@shop.com", "phone": "+14155550199", "firstName": "Bo", "lastName": "Buyer",
    }  # fmt: skip
    assert envelope["source"] == {"kind": "firestore", "ref": "orders/o2"}


def test_a_uk_orgs_documents_read_national_phones_as_british(app):
    app.store.set(SETTINGS, "org_a", {"orgId": "org_a", "defaultCountry": "GB"})
    customer = {"orgId": "org_a", "phone": "07400 123456", "birthday": "1990-05-17"}

    write("orders/o5", None, {"orgId": "org_a", "customer": {"phone": "07400 123456"}})
    write("customers/cus_uk", None, customer)

    assert [e["customer"]["phone"] for e in published(app)] == ["+447400123456", "+447400123456"]
    birthday = app.store.get(CUSTOMER_DATES, row_id("org_a", "cus_uk", "birthday"))
    assert birthday["phone"] == "+447400123456"


def test_an_invalid_document_phone_is_dropped_and_the_log_says_why(app, caplog):
    app.store.set(SETTINGS, "org_a", {"orgId": "org_a", "defaultCountry": "GB"})
    caplog.set_level(logging.INFO, logger="playbooks.changes")
    order = {"orgId": "org_a", "customer": {"email": "ann@example.co.uk", "phone": "07700 900123"}}

    write("orders/o6", None, order)
    write("orders/o7", None, {"orgId": "org_a", "customerPhone": "+44 7400 123456"})

    first, second = published(app)
    assert first["customer"] == {"email": "ann@example.co.uk"}  # the rest of the buyer stays
    assert second["customer"] == {"phone": "+447400123456"}
    [dropped] = [r for r in caplog.records if r.getMessage() == "document phone dropped"]
    assert dropped.fields == {"document": "orders/o6", "orgId": "org_a", "reason": "invalid_phone"}
    assert "900123" not in caplog.text + "".join(str(r.__dict__) for r in caplog.records)


def test_status_completed_is_one_order_completed_however_often_it_is_seen(app):
    before = {"orgId": "org_a", "status": "processing"}
    after = {"orgId": "org_a", "status": "completed"}
    ce_id = write("orders/o3", before, after)
    write("orders/o3", before, after, ce_id=ce_id)  # the same CloudEvent redelivered
    write("orders/o3", after, {**after, "note": "gift"})  # later edits keep the status
    completed = [e for e in published(app) if e["name"] == "order.completed"]
    assert {e["eventId"] for e in completed} == {"ord_" + h("org_a", "app", "o3", "completed")}
    assert len(published(app)) == len(completed) == 2  # one event id; dispatch dedups redelivery


def test_status_cancelled_and_other_statuses(app):
    write(
        "orders/o4",
        {"orgId": "org_a", "status": "pending"},
        {"orgId": "org_a", "status": "canceled"},
    )
    write(
        "orders/o5",
        {"orgId": "org_a", "status": "pending"},
        {"orgId": "org_a", "status": "shipped"},
    )
    assert names(app) == [("org_a", "order.cancelled"), ("org_a", "order.updated")]
    assert published(app)[1]["eventId"].startswith("fs_")


def test_a_trigger_never_writes_the_document_that_triggered_it(app):
    order = {"orgId": "org_a", "status": "pending", "customerId": "cus_9", "createdAt": NOW}
    app.store.set(ORDERS, "o6", order)
    write("orders/o6", None, order)
    assert app.store.get(ORDERS, "o6") == order
    last_order = app.store.get(CUSTOMER_DATES, row_id("org_a", "cus_9", "lastOrder"))
    assert last_order["date"] == "2026-11-24"


def test_last_order_finds_the_customer_by_email_and_never_moves_back(app):
    app.store.set(CUSTOMERS, "cus_1", {"orgId": "org_a", "email": "Jane@Example.com"})
    write(
        "orders/o7",
        None,
        {"orgId": "org_a", "customer": {"email": "Jane@Example.com"}, "createdAt": NOW},
    )
    older = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    write(
        "orders/o8",
        None,
        {"orgId": "org_a", "customer": {"email": "jane@example.com"}, "createdAt": older},
    )
    row = app.store.get(CUSTOMER_DATES, row_id("org_a", "cus_1", "lastOrder"))
    assert (row["date"], row["monthDay"], row["email"]) == (
        "2026-11-24",
        "11-24",
        "jane@example.com",
    )


# --- customers ----------------------------------------------------------------------------------


def recorded(name):
    headers = json.loads((EVENTS / f"{name}.headers.json").read_text())
    return headers, (EVENTS / f"{name}.body").read_bytes()


def test_recorded_emulator_customer_create_is_a_signup(app):
    headers, body = recorded("firestore_customer_created")
    client = functions_framework.create_app("on_customer_written", MAIN, "cloudevent").test_client()
    assert client.post("/", data=body, headers=headers).status_code == 200
    [envelope] = published(app)
    assert envelope["name"] == "customer.signup"
    assert envelope["eventId"] == "fs_" + h(headers["ce-id"], "org_demo")
    assert envelope["customer"] == {
        "id": "cus_demo1", "email": "jane@example.com", "firstName": "Jane", "consent": {"email": True},
    }  # fmt: skip
    signup = app.store.get(CUSTOMER_DATES, row_id("org_demo", "cus_demo1", "signupDate"))
    assert signup["date"] == "2026-11-24"


def test_customer_birthday_is_indexed_and_its_change_is_customer_updated(app):
    before = {"orgId": "org_a", "email": "a@b.co"}
    write("customers/cus_2", None, before)
    write("customers/cus_2", before, {**before, "birthday": "1990-02-28"})
    assert names(app) == [("org_a", "customer.signup"), ("org_a", "customer.updated")]
    assert published(app)[1]["data"] == {"customerId": "cus_2", "changed": ["birthday"]}
    row = app.store.get(CUSTOMER_DATES, row_id("org_a", "cus_2", "birthday"))
    assert (row["monthDay"], row["date"], row["email"]) == ("02-28", "1990-02-28", "a@b.co")
    write("customers/cus_2", {**before, "birthday": "1990-02-28"}, None)
    assert app.store.get(CUSTOMER_DATES, row_id("org_a", "cus_2", "birthday")) is None


# --- inventory ----------------------------------------------------------------------------------


def item(qty):
    return {"orgId": "org_a", "productId": "p1", "name": "Gummies", "quantity": qty}


def test_inventory_created_is_a_new_product(app):
    write("inventory/i0", None, item(20))
    assert names(app) == [("org_a", "inventory.new_product")]


def test_low_stock_fires_only_when_the_quantity_crosses_the_threshold(app):
    app.store.set(SETTINGS, "org_a", {"orgId": "org_a", "lowStockThreshold": 5})
    write("inventory/i1", item(9), item(3))
    write("inventory/i1", item(3), item(2))
    write("inventory/i1", item(2), item(8))
    assert names(app) == [("org_a", "inventory.low_stock")]
    first = published(app)[0]
    assert first["eventId"] == "low_" + h("org_a", "p1", "", "", "2026-11-24")
    assert first["data"] == {"productId": "p1", "name": "Gummies", "available": 3, "threshold": 5}
    app.clock.advance(days=1)
    write("inventory/i1", item(8), item(3))
    second = published(app)[1]
    assert second["name"] == "inventory.low_stock"
    assert second["eventId"] == "low_" + h("org_a", "p1", "", "", "2026-11-25")


def test_org_threshold_setting_applies(app):
    app.store.set(SETTINGS, "org_a", {"orgId": "org_a", "lowStockThreshold": 10})
    write("inventory/i2", item(12), item(10))
    assert published(app)[0]["data"]["threshold"] == 10
