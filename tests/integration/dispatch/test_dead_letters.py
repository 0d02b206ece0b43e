"""Dead-lettered event messages (domain.md §5.5 step 9, operations.md §15.5).

`on_event_dead_lettered` logs the outcome `dead_lettered` for each message Pub/Sub gave up on and
alerts ops at most once an hour. First through functions-framework with an embedded app installed,
as Pub/Sub pushes a dead-lettered copy; then end to end on the official Pub/Sub emulator, wired as
the stack wires it: the dispatcher's pushes are refused until Pub/Sub dead-letters the message.
"""

import base64
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import functions_framework
import httpx
import pytest
from werkzeug.serving import make_server

from emulators import pubsub_push, wiring
from emulators.gateway import create_gateway
from emulators.standins import start_slack
from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.adapters.pubsub import PubsubBus
from playbook_core.adapters.service_tokens import OidcToken
from playbook_core.config import Settings
from playbook_core.domain.collections import EVENT_LOG, EXECUTIONS, ORGANIZATIONS
from playbook_core.domain.envelope import EventEnvelope, Source
from playbook_core.domain.ids import h
from playbook_core.runtime import bootstrap
from playbook_core.runtime.manifest import Manifest, PubsubTrigger, load_manifest
from playbook_core.service.ingress.event_log import record_outcome
from playbook_core.testing import FrozenClock, eventually

MAIN = str(Path(__file__).parents[3] / "functions" / "main.py")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ORG = "org_a"
OPS = "/ops-alerts"  # the path of SLACK_ALERT_WEBHOOK_URL on the Slack stand-in


@pytest.fixture(scope="module")
def slack():
    standin = start_slack()
    yield standin
    standin.stop()


def ops_alerts(slack):
    requests = httpx.get(f"{slack.url}/__requests", timeout=5).json()
    return [r["body"]["text"] for r in requests if r["path"] == OPS]


def install(base_url, slack):
    """The embedded app as the functions use it; ops alerts go to the Slack stand-in."""
    httpx.delete(f"{slack.url}/__requests", timeout=5)
    settings = Settings(
        backend="embedded", local_oidc=True, functions_base_url=base_url,
        slack_alert_webhook_url=f"{slack.url}{OPS}",
    )  # fmt: skip
    store = EmbeddedStore(":memory:")
    store.set(ORGANIZATIONS, ORG, {"name": "Org A"})
    installed = bootstrap.App(
        settings, store, InProcessBus(), InProcessTaskQueue(), FrozenClock(NOW)
    )
    bootstrap.use(installed)
    return installed


def uninstall(installed):
    bootstrap.use(None)
    installed.bus.close()
    installed.queue.close()
    installed.store.close()


@pytest.fixture
def app(slack):
    installed = install("http://127.0.0.1:8080", slack)
    yield installed
    uninstall(installed)


def envelope(event_id, name="order.created"):
    return EventEnvelope(
        event_id=event_id, org_id=ORG, name=name, occurred_at=NOW, received_at=NOW,
        source=Source(kind="shopify", ref="shop.example.com"), data={"orderId": "1001"},
    )  # fmt: skip


def dead_lettered(message_id, *, data, attributes, subscription="playbook-dispatch"):
    """The push of a dead-lettered copy: Pub/Sub adds where it came from and how often it failed."""
    message = {
        "data": base64.b64encode(data).decode(),
        "attributes": {
            **attributes,
            "CloudPubSubDeadLetterSourceSubscription": subscription,
            "CloudPubSubDeadLetterSourceDeliveryCount": "10",
        },
        "messageId": message_id,
        "publishTime": "2026-11-24T12:00:00Z",
    }
    return {
        "message": message,
        "subscription": "projects/demo-playbooks/subscriptions/playbook-dead-letters",
    }


def deliver(push):
    settings = bootstrap.app().settings
    token = OidcToken(
        settings.invoker("pubsub_push"), settings.function_url("on_event_dead_lettered")
    )
    client = functions_framework.create_app(
        "on_event_dead_lettered", MAIN, "cloudevent"
    ).test_client()
    headers = {"Authorization": token.authorization("", time.time())}
    return client.post("/", json=push, headers=headers)


def deliver_event(event, message_id, **extra):
    return deliver(
        dead_lettered(message_id, data=event.encode(), attributes=event.attributes(), **extra)
    )


def logged(store, event_id, org=ORG):
    return store.get(EVENT_LOG, "evl_" + h(org, event_id))


# --- the function --------------------------------------------------------------------------------


def test_dead_lettered_events_are_logged_and_ops_is_alerted_once_an_hour(app, slack, caplog):
    caplog.set_level(logging.INFO)

    first = deliver_event(envelope("shp_1"), "d1")
    second = deliver_event(envelope("shp_2", name="order.paid"), "d2")

    assert (first.status_code, second.status_code) == (200, 200)  # acked: never redelivered
    for event_id, name in (("shp_1", "order.created"), ("shp_2", "order.paid")):
        entry = logged(app.store, event_id)
        assert (entry["outcome"], entry["name"], entry["matches"]) == ("dead_lettered", name, [])
    assert app.store.query(EXECUTIONS).docs == []
    [alert] = ops_alerts(slack)
    assert "shp_1" in alert
    assert "playbook-dispatch" in alert
    [alert_line] = [r for r in caplog.records if r.levelname == "ALERT"]
    assert alert_line.fields["subject"] == "dead_lettered_events"
    warnings = [r for r in caplog.records if r.getMessage() == "event message dead-lettered"]
    assert [(w.fields["eventId"], w.fields["subscription"]) for w in warnings] == [
        ("shp_1", "playbook-dispatch"),
        ("shp_2", "playbook-dispatch"),
    ]
    assert warnings[0].fields["deliveryAttempts"] == "10"

    app.clock.current = NOW + timedelta(hours=1)  # the throttle window is over
    deliver_event(envelope("shp_3"), "d3")

    assert len(ops_alerts(slack)) == 2


def test_an_event_the_dispatcher_logged_keeps_its_outcome(app):
    # Every subscription of the topic dead-letters to the same topic: here the attribution copy
    # of an event that was dispatched.
    record_outcome(store=app.store, envelope=envelope("shp_1"), outcome="dispatched")

    response = deliver_event(envelope("shp_1"), "d1", subscription="playbook-attribution")

    assert response.status_code == 200
    assert logged(app.store, "shp_1")["outcome"] == "dispatched"


def test_an_alias_is_logged_under_its_canonical_name(app):
    deliver_event(envelope("shp_1", name="customer.created"), "d1")

    entry = logged(app.store, "shp_1")
    assert (entry["name"], entry["originalName"]) == ("customer.signup", "customer.created")


def test_an_undecodable_message_is_filed_as_invalid_envelopes_are(app):
    unreadable = deliver(
        dead_lettered("d9", data=b"not json", attributes={"orgId": ORG, "eventId": "bad id!"})
    )
    orphan = deliver(dead_lettered("d10", data=b"not json", attributes={}))

    assert (unreadable.status_code, orphan.status_code) == (200, 200)
    entry = logged(app.store, "msg_" + h("d9"))
    assert (entry["outcome"], entry["source"]) == (
        "dead_lettered",
        {"kind": "system", "ref": "pubsub:d9"},
    )
    assert len(app.store.query(EVENT_LOG).docs) == 1  # no org to file the orphan under


# --- end to end on the official Pub/Sub emulator --------------------------------------------------


@pytest.fixture
def gateway():
    """Every function behind the local gateway, over HTTP, as the stack serves them."""
    server = make_server("127.0.0.1", 0, create_gateway(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    thread.join()


def renamed(manifest, suffix):
    """The manifest's topics and subscriptions under names of this test's own."""
    topics = [
        {
            "name": f"{t.name}-{suffix}",
            "deadLetter": f"{t.dead_letter}-{suffix}",
            "maxDeliveryAttempts": 5,  # Pub/Sub's least: the test need not wait for 10
        }
        for t in manifest.topics
    ]
    functions = [
        {
            "name": f.name,
            "signature": f.signature,
            "trigger": {
                "kind": "pubsub",
                "topic": f"{f.trigger.topic}-{suffix}",
                "subscription": f"{f.trigger.subscription}-{suffix}",
            },
        }
        for f in manifest.functions
        if isinstance(f.trigger, PubsubTrigger)
    ]
    return Manifest.model_validate(
        {"region": manifest.region, "topics": topics, "queues": [], "functions": functions}
    )


@pytest.mark.emulator
def test_a_push_refused_until_dead_lettered_is_logged_and_alerted_once(
    emulator_env, gateway, slack, caplog
):
    caplog.set_level(logging.INFO)
    installed = install(gateway, slack)
    relay = pubsub_push.PushRelay(emulator_env["pubsub"].host).start()
    bus = PubsubBus("demo-playbooks")
    try:
        manifest = renamed(load_manifest(), time.time_ns())
        [dispatch] = [f for f in manifest.functions if f.name == "on_event_published"]
        targets = wiring.Targets(
            gateway=gateway, region=manifest.region, scheduler="",
            pubsub=emulator_env["pubsub"].host, push_relay=relay.url,
        )  # fmt: skip
        wiring.wire_pubsub(manifest, targets)
        # Pushed past the relay, the dispatcher's deliveries carry no token: each is refused (401)
        # as after a misconfigured push identity, until Pub/Sub dead-letters the message.
        bus.ensure_push_subscription(
            dispatch.trigger.topic, dispatch.trigger.subscription, f"{gateway}/on_event_published/"
        )
        for event_id in ("shp_e2e_1", "shp_e2e_2"):
            event = envelope(event_id, name="customer.signup")  # attribution acks it at once
            bus.publish(dispatch.trigger.topic, event.encode(), event.attributes())

        def both_logged():
            entries = [logged(installed.store, e) for e in ("shp_e2e_1", "shp_e2e_2")]
            return entries if all(entries) else None

        entries = eventually(both_logged, timeout=60)

        assert [e["outcome"] for e in entries] == ["dead_lettered", "dead_lettered"]
        assert installed.store.query(EXECUTIONS).docs == []
        assert len(ops_alerts(slack)) == 1
        dead = [r for r in caplog.records if r.getMessage() == "event message dead-lettered"]
        assert {(r.fields["subscription"], r.fields["deliveryAttempts"]) for r in dead} == {
            (dispatch.trigger.subscription, "5")
        }
        refused = [r for r in caplog.records if "on_event_published refused" in r.getMessage()]
        assert len(refused) >= 10  # five deliveries of each message
    finally:
        bus.close()
        relay.stop()
        uninstall(installed)
