"""Send-time freshness through the real engine: a guarded send re-reads its product's stock.

The embedded store for every rule; the official Firestore emulator for the query itself.
"""

import logging
import uuid

import pytest

from playbook_core.domain.collections import (
    APPROVALS,
    DELIVERIES,
    EXECUTIONS,
    INVENTORY,
    STATS,
)
from playbook_core.domain.executions import event_execution_id
from playbook_core.domain.reports import total
from playbook_core.ports import Where
from playbook_core.service.execution import approvals, run_control
from playbook_core.service.execution.run_start import Runs, start_run
from tests.integration.execution.conftest import Ids

GUARDED = """
name: Back in stock
agent: craig
triggers: [{type: event, eventName: inventory.new_product}]
steps:
  - id: email
    action: send_email
    guard: {inStock: "{{ event.data.productId }}"}
    params: {to: "{{ customer.email }}", subject: Weekend, body: New flower lands Saturday}
"""
# A wait between the trigger and the send: the stock may change meanwhile.
LATER = GUARDED.replace(
    "steps:\n", "steps:\n  - {id: pause, action: wait, params: {duration: 1h}}\n"
)
INTERNAL = GUARDED.replace('"{{ customer.email }}"', '"{{ org.admin_email }}"')
CUSTOMER = {"id": "cus_1", "email": "jane@example.com"}


def runs(rig):
    return Runs(store=rig.store, queue=rig.queue, target=rig.target, clock=rig.clock)


def start(rig, playbook, data=None, *, approved=True):
    """A run of `playbook` for the event `inventory.new_product` with `data` (product p1)."""
    event_id = f"e_{uuid.uuid4().hex[:10]}"
    execution, _ = start_run(
        execution_id=event_execution_id(event_id, playbook["id"]),
        playbook=playbook,
        trigger={"type": "event", "triggerId": "t", "eventId": event_id},
        customer=CUSTOMER,
        event={"name": "inventory.new_product", "data": {"productId": "p1"} if data is None else data},
        causation=None,
        user_id="system",
        dry_run=False,
        runs=runs(rig),
    )  # fmt: skip
    if approved:
        rig.store.update(EXECUTIONS, execution["id"], {"approvedAt": rig.clock.now()})
    return execution["id"]


def dry_run(rig, playbook, product="p1"):
    execution = run_control.start_dry_run(
        runs=runs(rig), org_id=rig.org, playbook_id=playbook["id"], actor="u1", ids=Ids(),
        body={"event": {"name": "inventory.new_product", "data": {"productId": product}},
              "customer": CUSTOMER},
    )  # fmt: skip
    rig.run_all()
    return rig.execution(execution["id"])


def stock(rig, qty, doc_id="i1", *, product="p1", org=None, **extra):
    """One inventory level of the existing app's `inventory` collection."""
    fields = {"orgId": org or rig.org, "productId": product, "name": "Gummies", "quantity": qty}
    rig.store.set(INVENTORY, doc_id, {**fields, **extra})


def deliveries(rig, execution_id):
    return [
        d.data for d in rig.store.query(DELIVERIES, [Where("executionId", "==", execution_id)]).docs
    ]


def skipped_as(rig, reason):
    page = run_control.list_deliveries(
        org_id=rig.org, status="skipped", reason=reason, playbook_id=None, page_size=50,
        page_token=None, store=rig.store,
    )  # fmt: skip
    return [d["id"] for d in page["deliveries"]]


def counted(rig):
    return total(d.data for d in rig.store.query(STATS, [Where("orgId", "==", rig.org)]).docs)


# --- in stock, sold out ------------------------------------------------------------------------


def test_a_product_in_stock_is_sent_and_the_delivery_shows_what_was_checked(rig):
    stock(rig, 0, "i1", locationId="north")
    stock(rig, 4, "i2", locationId="south")
    execution_id = start(rig, rig.playbook(GUARDED))
    rig.run_all()
    assert len(rig.sent_emails()) == 1
    (delivery,) = deliveries(rig, execution_id)
    assert delivery["status"] == "sent"
    assert delivery["product"] == {"productId": "p1", "availability": "available"}


def test_a_product_sold_out_everywhere_is_a_skip_listed_and_counted_by_its_reason(rig):
    stock(rig, 0, "i1", locationId="north")
    stock(rig, 0, "i2", variantId="v2", locationId="south")
    execution_id = start(rig, rig.playbook(GUARDED))
    rig.run_all()
    assert rig.sent_emails() == []
    assert rig.execution(execution_id)["status"] == "completed"  # a skip does not fail a run
    (delivery,) = deliveries(rig, execution_id)
    assert (delivery["status"], delivery["skipReason"]) == ("skipped", "product_unavailable")
    assert delivery["product"] == {"productId": "p1", "availability": "unavailable"}
    assert skipped_as(rig, "product_unavailable") == [delivery["id"]]
    assert skipped_as(rig, "deduped") == []
    assert counted(rig)["skipped"] == {"product_unavailable": 1}


def test_another_orgs_stock_does_not_let_the_send_go(rig):
    stock(rig, 0, "i1")
    stock(rig, 50, "i2", org="org_b")
    execution_id = start(rig, rig.playbook(GUARDED))
    rig.run_all()
    assert [d["skipReason"] for d in deliveries(rig, execution_id)] == ["product_unavailable"]


def test_levels_stored_by_number_or_by_document_id_are_found(rig):
    stock(rig, 0, "i1", product=8123)  # a sync that keeps numeric ids as numbers
    rig.store.set(INVENTORY, "p9", {"orgId": rig.org, "quantity": 0})  # no productId: its own id
    playbook = rig.playbook(GUARDED)
    by_number = start(rig, playbook, {"productId": 8123})
    rig.run_all()
    by_doc_id = start(rig, playbook, {"productId": "p9"})
    rig.run_all()
    assert [d["product"] for d in deliveries(rig, by_number) + deliveries(rig, by_doc_id)] == [
        {"productId": "8123", "availability": "unavailable"},
        {"productId": "p9", "availability": "unavailable"},
    ]
    assert rig.sent_emails() == []


def test_an_internal_send_honours_its_guard_too(rig):
    stock(rig, 0)
    execution_id = start(rig, rig.playbook(INTERNAL), approved=False)
    rig.run_all()
    assert [d["skipReason"] for d in deliveries(rig, execution_id)] == ["product_unavailable"]
    assert rig.sent_emails() == []


# --- read at send time -------------------------------------------------------------------------


def test_a_product_that_sells_out_before_the_send_is_skipped(rig):
    stock(rig, 3)
    execution_id = start(rig, rig.playbook(LATER))
    rig.step()  # the wait: the send is due an hour later
    stock(rig, 0)
    rig.run_all()
    assert rig.sent_emails() == []
    assert [d["skipReason"] for d in deliveries(rig, execution_id)] == ["product_unavailable"]


def test_a_product_restocked_before_the_send_is_sent(rig):
    stock(rig, 0)
    execution_id = start(rig, rig.playbook(LATER))
    rig.step()
    stock(rig, 12)
    rig.run_all()
    assert [d["status"] for d in deliveries(rig, execution_id)] == ["sent"]
    assert len(rig.sent_emails()) == 1


def test_a_send_approved_after_its_product_sold_out_is_skipped_not_sent(rig):
    stock(rig, 3)
    execution_id = start(rig, rig.playbook(GUARDED), approved=False)
    rig.run_all()
    assert rig.execution(execution_id)["status"] == "pending_approval"
    stock(rig, 0)
    approvals.decide(
        runs=runs(rig), org_id=rig.org, execution_id=execution_id, approve=True,
        reviewer={"uid": "boss"}, notes=None,
    )  # fmt: skip
    rig.run_all()
    assert rig.sent_emails() == []
    assert rig.execution(execution_id)["status"] == "completed"
    assert [d["skipReason"] for d in deliveries(rig, execution_id)] == ["product_unavailable"]


def test_a_sold_out_product_asks_nobody_for_approval(rig):
    stock(rig, 0)
    execution_id = start(rig, rig.playbook(GUARDED), approved=False)
    rig.run_all()
    assert rig.execution(execution_id)["status"] == "completed"
    assert rig.store.get(APPROVALS, execution_id) is None
    assert [d["skipReason"] for d in deliveries(rig, execution_id)] == ["product_unavailable"]


# --- dry run -----------------------------------------------------------------------------------


def test_a_dry_run_reports_the_skip_it_would_make(rig):
    stock(rig, 0)
    execution = dry_run(rig, rig.playbook(GUARDED))
    (entry,) = execution["trace"]
    assert (entry["decision"], entry["reason"]) == ("would_skip", "product_unavailable")
    assert entry["product"] == {"productId": "p1", "availability": "unavailable"}
    (delivery,) = deliveries(rig, execution["id"])
    assert (delivery["skipReason"], delivery["dryRun"]) == ("dry_run", True)
    assert rig.sent_emails() == []


def test_a_dry_run_with_the_product_in_stock_goes_on_to_the_approval_it_would_ask(rig):
    stock(rig, 5)
    execution = dry_run(rig, rig.playbook(GUARDED))
    (entry,) = execution["trace"]
    assert (entry["decision"], entry["reason"]) == ("would_pause_for_approval", None)
    assert entry["product"] == {"productId": "p1", "availability": "available"}


# --- a guard that names nothing, a product nobody stocks ---------------------------------------


@pytest.mark.parametrize("product", ["", "   ", {"id": "p1"}, True])
def test_a_guard_that_names_no_product_fails_the_step_and_sends_nothing(rig, product):
    stock(rig, 5)
    execution_id = start(rig, rig.playbook(GUARDED), {"productId": product})
    rig.run_all()
    execution = rig.execution(execution_id)
    assert (execution["status"], execution["error"]["code"]) == ("failed", "invalid_product")
    assert deliveries(rig, execution_id) == []
    assert rig.sent_emails() == []


def test_a_guard_whose_placeholder_has_no_value_fails_like_any_send_param(rig):
    execution_id = start(rig, rig.playbook(GUARDED), {"sku": "p1"})
    rig.run_all()
    error = rig.execution(execution_id)["error"]
    assert (error["code"], error["message"]) == (
        "unresolved_variable",
        "no value for {{ event.data.productId }}",
    )
    assert rig.sent_emails() == []


def test_a_product_with_no_stock_level_is_sent_and_logged(rig, caplog):
    stock(rig, 5, product="p2")  # some other product is stocked; p1 has no level at all
    caplog.set_level(logging.WARNING, logger="playbooks.sends")
    execution_id = start(rig, rig.playbook(GUARDED))
    rig.run_all()
    (delivery,) = deliveries(rig, execution_id)
    assert delivery["status"] == "sent"
    assert delivery["product"] == {"productId": "p1", "availability": "unknown"}
    assert "guarded send: no stock level for its product" in caplog.text


# --- on the official Firestore emulator ---------------------------------------------------------


@pytest.mark.emulator
def test_on_firestore_sold_out_skips_and_in_stock_sends(firestore_rig):
    rig = firestore_rig
    sold_out, in_stock = f"p_{uuid.uuid4().hex[:8]}", str(uuid.uuid4().int % 10**12)
    stock(rig, 0, f"inv_{sold_out}_a", product=sold_out, locationId="north")
    stock(rig, 0, f"inv_{sold_out}_b", product=sold_out, variantId="v2")
    stock(rig, 2, f"inv_{in_stock}", product=int(in_stock))  # found by its numeric form
    playbook = rig.playbook(GUARDED)
    skipped = start(rig, playbook, {"productId": sold_out})
    rig.run_all()
    sent = start(
        rig, rig.playbook(GUARDED.replace("Back in stock", "Other")), {"productId": in_stock}
    )
    rig.run_all()
    (skip,) = deliveries(rig, skipped)
    assert (skip["status"], skip["skipReason"]) == ("skipped", "product_unavailable")
    assert skipped_as(rig, "product_unavailable") == [skip["id"]]
    assert [d["status"] for d in deliveries(rig, sent)] == ["sent"]
    assert len(rig.sent_emails()) == 1
