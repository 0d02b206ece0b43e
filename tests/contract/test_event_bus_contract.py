"""EventBus contract: a publish reaches push subscribers as Pub/Sub's JSON wrapper, and a failed
push is delivered again."""

import base64
import json

from playbook_core.testing import eventually


def message_of(request):
    return json.loads(request.body)


def test_publish_is_pushed_with_data_and_attributes(backend, unique, recorder):
    topic = f"events-{unique}"
    backend.subscribe(topic, f"{recorder.url}/on_event_published/")
    payload = {"eventId": "shp_1", "name": "order.created"}

    message_id = backend.bus.publish(
        topic, json.dumps(payload).encode(), {"orgId": "org_a", "name": "order.created"}
    )

    request = eventually(lambda: recorder.requests)[0]
    wrapper = message_of(request)
    assert request.method == "POST"
    assert request.path == "/on_event_published/"
    assert json.loads(base64.b64decode(wrapper["message"]["data"])) == payload
    assert wrapper["message"]["attributes"] == {"orgId": "org_a", "name": "order.created"}
    assert wrapper["message"]["messageId"] == message_id
    assert wrapper["message"]["publishTime"]
    assert wrapper["subscription"].startswith("projects/demo-playbooks/subscriptions/")


def test_every_subscription_of_a_topic_gets_the_message(backend, unique, recorder):
    topic = f"fanout-{unique}"
    backend.subscribe(topic, f"{recorder.url}/first/")
    backend.subscribe(topic, f"{recorder.url}/second/")

    backend.bus.publish(topic, b"{}", {"orgId": "org_a"})

    requests = eventually(lambda: recorder.requests if len(recorder.requests) >= 2 else None)
    assert sorted(r.path for r in requests) == ["/first/", "/second/"]


def test_a_failed_push_is_delivered_again(backend, unique, recorder):
    recorder.script = [503]
    topic = f"retry-{unique}"
    backend.subscribe(topic, f"{recorder.url}/on_event_published/")

    message_id = backend.bus.publish(topic, b'{"n": 1}', {"orgId": "org_a"})

    eventually(lambda: len(recorder.requests) >= 2, timeout=30)
    first, second = (message_of(r)["message"] for r in recorder.requests[:2])
    assert first["messageId"] == second["messageId"] == message_id
    assert base64.b64decode(second["data"]) == b'{"n": 1}'
    assert [request.status for request in recorder.requests[:2]] == [503, 200]


def test_ping_answers(backend):
    assert backend.bus.ping() is None
