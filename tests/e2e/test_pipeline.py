"""The event pipeline end to end on the real local stack (api.md §2, §6; domain.md §5–7).

A private stack (gateway port 0) seeded with the demo org, once on the official emulators and once
on the embedded backend. Every delivery is a signed Shopify webhook as Shopify sends it; what
follows is the real wiring: Pub/Sub push → on_event_published → Cloud Tasks → execute_step → the
harness and Mailjet stand-ins. Checks go through the dashboard API, the stand-ins' `/__requests`
and the gateway's log; waits poll with deadlines. Each test uses its own customer and order ids,
so the tests share the stack without seeing each other's runs.
"""

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from google.cloud import firestore

from emulators import demo
from playbook_core.adapters.firebase_auth import local_claims, unsigned_token
from playbook_core.domain.collections import ORDERS
from playbook_core.domain.executions import TERMINAL
from playbook_core.domain.ids import h
from playbook_core.domain.webhooks import shop_domain, shopify_event_id
from playbook_core.testing import eventually
from tests.conftest import STACK_BACKENDS, stack_backend
from tests.openapi_conformance import CONFORMING

pytestmark = pytest.mark.stack

ROOT = Path(__file__).parents[2]
SPEC = demo.load_spec()
ORG = SPEC.org.id
SHOP = SPEC.shopify
POST_PURCHASE = f"{ORG}_{demo.POST_PURCHASE}"
PIPELINE_S = 30.0  # one hop of the pipeline, generously: the emulators push within a second
PING = (ROOT / "tests" / "data" / "webhooks" / "woocommerce_ping.txt").read_bytes()


def listener_yaml(name, currency):
    """An internal-only playbook (no approval) on order.created, for orders in one currency."""
    return f"""\
name: {name}
description: e2e pipeline check for orders in {currency}.
agent: craig
triggers:
  - id: on_order
    type: event
    eventName: order.created
    filters:
      - {{path: data.currency, op: eq, value: {currency}}}
steps:
  - id: tell_team
    action: notify
    params:
      channel: dashboard
      to: role:admin
      message: "Order {{{{ event.data.orderNumber }}}} came in."
"""


def runner(command, state_dir, env, timeout=120):
    return subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "emulators", command, "--state-dir", str(state_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def fresh_email():
    return f"pipeline-{uuid.uuid4().hex[:12]}@example.com"


def fresh_order_id():
    return uuid.uuid4().int % 10**15


class Pipeline:
    """The running stack, called as Shopify, as the org's editor, and read through its logs."""

    def __init__(self, state_dir, env):
        self.state_dir, self.env = state_dir, env
        self.state = json.loads((state_dir / "stack.json").read_text())
        self.gateway = self.state["gateway"]
        editor = SPEC.editor
        claims = local_claims(
            self.state["project"], editor.uid, editor.role, [ORG], email=editor.email
        )
        self.api = httpx.Client(
            base_url=f"{self.gateway}/playbooks_api/v1/orgs/{ORG}", timeout=30, trust_env=False,
            headers={"Authorization": f"Bearer {unsigned_token(claims)}"},
            event_hooks=CONFORMING,  # every answer is held to the OpenAPI document
        )  # fmt: skip
        self.http = httpx.Client(timeout=30, trust_env=False)
        self.usd = self.eur = ""

    def close(self):
        self.api.close()
        self.http.close()

    # -- as the org's editor --

    def add_listeners(self):
        """Two order.created playbooks: one takes USD orders (all of ours), one EUR (none)."""
        made = []
        for currency in ("USD", "EUR"):
            created = self.api.post(
                "/playbooks", content=listener_yaml(f"Pipeline e2e {currency} orders", currency),
                headers={"Content-Type": "application/yaml"},
            )  # fmt: skip
            assert created.status_code == 201, created.text
            playbook_id = created.json()["id"]
            toggled = self.api.post(f"/playbooks/{playbook_id}:toggle", json={"enabled": True})
            assert toggled.status_code == 200, toggled.text
            assert toggled.json()["status"] == "active"
            made.append(playbook_id)
        self.usd, self.eur = made

    def get(self, path, **params):
        response = self.api.get(path, params=params)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def logged(self, event_id, name=None):
        """The event-log entry of one event (newest 100 of that name), or None."""
        params = {"pageSize": 100, **({"name": name} if name else {})}
        events = self.get("/events", **params)["events"]
        return next((e for e in events if e["eventId"] == event_id), None)

    def runs(self, playbook_id, *, event_id=None, email=None):
        listed = self.get("/executions", playbookId=playbook_id, pageSize=100)["executions"]
        return [
            run for run in listed
            if (event_id is None or run["trigger"].get("eventId") == event_id)
            and (email is None or (run.get("customer") or {}).get("email") == email)
        ]  # fmt: skip

    def run(self, execution_id):
        return self.get(f"/executions/{execution_id}")

    def settled(self, execution_id, *statuses):
        """Poll one run until it reaches one of `statuses` (default: any terminal state)."""
        wanted = set(statuses) or TERMINAL

        def reached():
            found = self.api.get(f"/executions/{execution_id}")
            return (
                found.json()
                if found.status_code == 200 and found.json()["status"] in wanted
                else None
            )

        return eventually(reached, timeout=PIPELINE_S, interval=0.1)

    def deliveries(self, execution_id, **params):
        listed = self.get("/deliveries", pageSize=100, **params)["deliveries"]
        return [d for d in listed if d["executionId"] == execution_id]

    # -- as Shopify and WooCommerce --

    def shopify(self, topic, body, *, key=None, secret=None, shop=None, drop=(), tamper=False):
        headers = demo.shopify_headers(SHOP, topic, body, key or uuid.uuid4().hex, secret=secret)
        if shop is not None:
            headers["X-Shopify-Shop-Domain"] = shop
        for name in drop:
            headers.pop(name)
        if tamper:  # signed, then changed in transit: a cheaper order than the one signed
            body = body.replace(b'"total_price":"404.95"', b'"total_price":"4.95"', 1)
            assert b'"total_price":"4.95"' in body
        return self.http.post(f"{self.gateway}/webhook_shopify/", content=body, headers=headers)

    def order(self, topic, email, *, order_id=None, **options):
        body = demo.shopify_order(topic, order_id=order_id or fresh_order_id(), email=email)
        return self.shopify(topic, body, **options)

    def mails_to(self, email):
        recorded = self.http.get(f"{self.state['mailjet']}/__requests").json()
        return [
            message
            for request in recorded if request["path"] == "/v3.1/send"
            for message in (request.get("body") or {}).get("Messages") or []
            if [r.get("Email") for r in message.get("To") or []] == [email]
        ]  # fmt: skip

    def gateway_log(self, message, **fields):
        lines = (self.state_dir / "logs" / "gateway.log").read_text().splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return [
            e for e in entries
            if e.get("message") == message and all(e.get(k) == v for k, v in fields.items())
        ]  # fmt: skip


@pytest.fixture(scope="module", params=STACK_BACKENDS)
def pipeline(request, tmp_path_factory):
    backend = stack_backend(request)
    state_dir = tmp_path_factory.mktemp(f"pipeline-{backend}")
    env = {
        **os.environ, "PLAYBOOKS_GATEWAY_PORT": "0", "PLAYBOOKS_BACKEND": backend,
        "PLAYBOOKS_AUTH_EMULATOR": "off",  # its own e2e test: test_auth_emulator.py
    }  # fmt: skip
    up = runner("up", state_dir, env)  # seeds the demo org, as `make up` does
    if up.returncode != 0:
        runner("down", state_dir, env)
        pytest.fail(f"up failed:\n{up.stdout}\n{up.stderr}")
    running = Pipeline(state_dir, env)
    try:
        assert running.state["demoOrgId"] == ORG
        running.add_listeners()
        yield running
    finally:
        running.close()
        stopped = runner("down", state_dir, env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def dispatched(pipeline, event_id, name="order.created"):
    """The event's log entry once on_event_published has written it."""
    return eventually(lambda: pipeline.logged(event_id, name), timeout=PIPELINE_S, interval=0.1)


def test_a_signed_orders_create_is_logged_and_runs_each_matching_playbook_once(pipeline):
    email = fresh_email()
    answer = pipeline.order("orders/create", email)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["received"], body["event"]) == (True, "order.created")
    event_id = body["eventId"]
    assert event_id.startswith("shp_")

    entry = dispatched(pipeline, event_id)
    assert entry["name"] == "order.created"
    assert entry["originalName"] == "orders/create"
    assert entry["source"] == {"kind": "shopify", "ref": SHOP.shop_domain}
    assert entry["outcome"] == "dispatched"
    assert entry["customerId"] == f"cus_{h(ORG, email)}"  # created by the dispatcher (§5.5)
    outcomes = {m["playbookId"]: m["outcome"] for m in entry["matches"]}
    assert outcomes == {pipeline.usd: "execution_created", pipeline.eur: "filtered"}

    [run] = pipeline.runs(pipeline.usd, event_id=event_id)
    [match] = [m for m in entry["matches"] if m["playbookId"] == pipeline.usd]
    assert run["id"] == match["executionId"]
    assert pipeline.runs(pipeline.eur, event_id=event_id) == []
    finished = pipeline.settled(run["id"])  # Cloud Tasks → execute_step ran its one step
    assert finished["status"] == "completed"
    assert finished["stepStatuses"] == {"tell_team": "completed"}


def test_the_same_delivery_again_is_a_duplicate_and_runs_nothing(pipeline):
    email, key = fresh_email(), uuid.uuid4().hex
    body = demo.shopify_order("orders/create", order_id=fresh_order_id(), email=email)
    first = pipeline.shopify("orders/create", body, key=key)
    assert first.status_code == 200, first.text
    event_id = first.json()["eventId"]
    [run] = eventually(lambda: pipeline.runs(pipeline.usd, event_id=event_id), timeout=PIPELINE_S)
    dispatched(pipeline, event_id)  # until then a retry publishes again (domain.md §6.4 step 3)

    again = pipeline.shopify("orders/create", body, key=key)  # Shopify's retry: same bytes, id
    assert again.status_code == 200
    assert again.json() == {"received": True, "duplicate": True, "eventId": event_id}

    # A later delivery has gone all the way through: the duplicate would have been dispatched too.
    later = pipeline.order("orders/create", email).json()["eventId"]
    eventually(lambda: pipeline.runs(pipeline.usd, event_id=later), timeout=PIPELINE_S)
    assert len(pipeline.gateway_log("event message received", eventId=event_id)) == 1
    assert [r["id"] for r in pipeline.runs(pipeline.usd, email=email)] == [
        pipeline.runs(pipeline.usd, event_id=later)[0]["id"], run["id"],
    ]  # fmt: skip


BAD_DELIVERIES = {
    "tampered body": ({"tamper": True}, "invalid_signature"),
    "wrong secret": ({"secret": "not-the-demo-shop-secret"}, "invalid_signature"),
    "missing signature": ({"drop": ("X-Shopify-Hmac-Sha256",)}, "missing_signature"),
    "unknown shop": ({"shop": "someone-else.myshopify.com"}, "unknown_source"),
}


def test_bad_or_unknown_deliveries_are_401_and_log_no_event(pipeline):
    email = fresh_email()
    refused = {}
    for case, (options, error) in BAD_DELIVERIES.items():
        key = uuid.uuid4().hex
        answer = pipeline.order("orders/create", email, key=key, **options)
        assert (answer.status_code, answer.json()) == (401, {"error": error}), case
        shop = shop_domain(options.get("shop", SHOP.shop_domain))
        refused[case] = shopify_event_id(shop, "orders/create", key)  # what it would have been

    # A good delivery afterwards goes all the way through; none of the refused ones went anywhere.
    good = pipeline.order("orders/create", email).json()["eventId"]
    dispatched(pipeline, good)
    logged = {e["eventId"] for e in pipeline.get("/events", pageSize=100)["events"]}
    assert good in logged
    assert not [case for case, event_id in refused.items() if event_id in logged]
    assert not [
        case for case, event_id in refused.items()
        if pipeline.gateway_log("event message received", eventId=event_id)
    ]  # fmt: skip
    assert [r["trigger"]["eventId"] for r in pipeline.runs(pipeline.usd, email=email)] == [good]
    alerts = pipeline.gateway_log("webhook signature invalid")
    assert len(alerts) >= 2  # tampered and wrong secret, each a security alert
    assert not [a for a in alerts if SHOP.secret in json.dumps(a)]


def test_a_woocommerce_ping_is_answered_200_and_dispatches_nothing(pipeline):
    answer = pipeline.http.post(
        f"{pipeline.gateway}/webhook_woocommerce/", content=PING,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert answer.status_code == 200
    assert answer.json() == {"received": True, "ping": True}


def test_fulfilled_order_waits_for_approval_sends_once_and_a_second_order_is_deduped(pipeline):
    email = fresh_email()
    order_id = fresh_order_id()
    answer = pipeline.order("orders/fulfilled", email, order_id=order_id)
    assert answer.status_code == 200, answer.text
    assert answer.json()["event"] == "order.completed"
    event_id = answer.json()["eventId"]
    assert event_id.startswith("ord_")  # once per order and transition (domain.md §5.4)

    # order.completed reaches the order.post_purchase listener (alias fan-in, §5.2).
    [run] = eventually(lambda: pipeline.runs(POST_PURCHASE, event_id=event_id), timeout=PIPELINE_S)
    paused = pipeline.settled(run["id"], "pending_approval", *TERMINAL)
    assert paused["status"] == "pending_approval"
    assert paused["stepStatuses"] == {"work": "completed", "email": "pending"}
    [held] = pipeline.deliveries(run["id"], playbookId=POST_PURCHASE)
    assert (held["status"], held["skipReason"]) == ("held", "awaiting_approval")
    assert pipeline.mails_to(email) == []
    queue = pipeline.get("/approvals", status="pending", pageSize=100)["approvals"]
    [approval] = [a for a in queue if a["executionId"] == run["id"]]
    assert [p["to"] for p in approval["preview"]] == [email]

    approved = pipeline.api.post(f"/approvals/{run['id']}:approve", json={"notes": "e2e"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert pipeline.settled(run["id"])["status"] == "completed"
    [mail] = eventually(lambda: pipeline.mails_to(email), timeout=PIPELINE_S)
    [sent] = pipeline.deliveries(run["id"], playbookId=POST_PURCHASE)
    assert sent["status"] == "sent"
    assert sent["recipientEmail"] == email
    assert mail["CustomID"] == sent["id"]
    assert mail["Subject"] == sent["subject"]

    # The same order again (a new delivery of it): its completion was published already, so the
    # webhook answers duplicate with the same event and nothing runs twice (domain.md §6.4).
    again = pipeline.order("orders/fulfilled", email, order_id=order_id)
    assert again.status_code == 200
    assert again.json()["eventId"] == event_id
    assert again.json()["duplicate"] is True
    assert [r["id"] for r in pipeline.runs(POST_PURCHASE, email=email)] == [run["id"]]

    # Another order of the same customer within 24 h: a new run, its send skipped as deduped.
    second = pipeline.order("orders/fulfilled", email).json()["eventId"]
    [rerun] = eventually(lambda: pipeline.runs(POST_PURCHASE, event_id=second), timeout=PIPELINE_S)
    finished = pipeline.settled(rerun["id"])
    assert finished["status"] == "completed"  # a skipped send does not fail the run
    assert "pendingApprovalId" not in finished or not finished["pendingApprovalId"]
    skipped = pipeline.deliveries(
        rerun["id"], status="skipped", reason="deduped", playbookId=POST_PURCHASE
    )
    assert [(d["status"], d["skipReason"], d["recipientEmail"]) for d in skipped] == [
        ("skipped", "deduped", email)
    ]
    assert len(pipeline.mails_to(email)) == 1
    assert not [
        a for a in pipeline.get("/approvals", status="pending", pageSize=100)["approvals"]
        if a["executionId"] == rerun["id"]
    ]  # fmt: skip


def test_an_order_document_write_produces_order_created(pipeline):
    doc_id = f"e2e_{uuid.uuid4().hex[:16]}"
    order = {
        "orgId": ORG, "orderNumber": "E2E-1", "status": "pending", "currency": "USD",
        "totalAmount": 42.5, "createdAt": datetime.now(UTC),
        "customer": {"email": fresh_email(), "name": "Firestore Order"},
    }  # fmt: skip
    if pipeline.state["backend"] == "emulators":
        # The existing app's write, with the official client: the emulator posts the trigger.
        os.environ["FIRESTORE_EMULATOR_HOST"] = pipeline.state["firestore"]
        client = firestore.Client(project=pipeline.state["project"])
        client.document(f"{ORDERS}/{doc_id}").set(order)
        client.close()
    else:
        with demo.open_store(pipeline.state, pipeline.state_dir) as store:
            store.set(ORDERS, doc_id, order)  # its commit hook posts the trigger event
    event_id = "ord_" + h(ORG, "app", doc_id, "created")
    entry = dispatched(pipeline, event_id)
    assert entry["source"] == {"kind": "firestore", "ref": f"{ORDERS}/{doc_id}"}
    assert entry["outcome"] == "dispatched"
    outcomes = {m["playbookId"]: m["outcome"] for m in entry["matches"]}
    assert outcomes == {pipeline.usd: "execution_created", pipeline.eur: "filtered"}
    assert entry["orderSummary"]["totalMinor"] == 4250


# --- consent (docs/consent.md): STOP through the Blackleaf stand-in, the unsubscribe link ------


def demo_customer(name):
    """(customer id, document) of one seeded demo customer, by first name."""
    return next(
        (doc_id, doc) for doc_id, doc in demo.customer_documents(SPEC).items()
        if doc["firstName"] == name
    )  # fmt: skip


def consent_history(pipeline, customer_id):
    return pipeline.get(f"/customers/{customer_id}/consent", pageSize=100)["consentRecords"]


def test_a_stop_text_through_the_blackleaf_stand_in_revokes_sms_and_confirms_once(pipeline):
    customer_id, customer = demo_customer("Blake")
    blackleaf = pipeline.state["blackleaf"]
    inbound = {"from": customer["phone"], "to": "+14155550199", "body": "STOP"}
    first = pipeline.http.post(f"{blackleaf}/__inbound", json=inbound).json()
    assert first["status"] == 200, first
    assert (first["answer"]["keyword"], first["answer"]["confirmation"]) == ("stop", "sent")
    latest = consent_history(pipeline, customer_id)[0]
    assert (latest["channel"], latest["state"], latest["source"], latest["identityKey"]) == (
        "sms", "revoked", "keyword", f"cid:{customer_id}",
    )  # fmt: skip
    again = pipeline.http.post(f"{blackleaf}/__inbound", json={**inbound, "body": "stop"}).json()
    assert again["answer"]["confirmation"] == "suppressed"
    texts = [
        m for m in pipeline.http.get(f"{blackleaf}/__messages").json()
        if m["to"] == customer["phone"]
    ]  # fmt: skip
    brand = (SPEC.org.compliance or {}).get("smsBrandName") or SPEC.org.name
    confirmation = (
        f"You are unsubscribed from {brand}. No more messages will be sent. "
        "Reply START to resubscribe."
    )
    assert [m["body"] for m in texts] == [confirmation]


def test_the_unsubscribe_link_through_the_gateway(pipeline):
    from emulators.stack import unsubscribe_key
    from playbook_core.service.compliance.unsubscribe import unsubscribe_link

    customer_id, _ = demo_customer("Casey")
    link = unsubscribe_link(
        base_url=pipeline.gateway, org_id=ORG, identity_key=f"cid:{customer_id}",
        delivery_id="dl_e2e", key=unsubscribe_key(),
    )  # fmt: skip
    page = pipeline.http.get(link)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert [r for r in consent_history(pipeline, customer_id) if r["channel"] == "email"] == []
    done = pipeline.http.post(
        link, content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert done.status_code == 200
    assert done.json() == {"unsubscribed": True, "already": False}
    (record,) = [r for r in consent_history(pipeline, customer_id) if r["channel"] == "email"]
    assert (record["state"], record["source"]) == ("revoked", "unsubscribe_link")
    forged_link = link[:-3] + ("BBB" if link.endswith("AAA") else "AAA")
    forged = pipeline.http.post(forged_link, content=b"List-Unsubscribe=One-Click")
    assert forged.status_code == 400
