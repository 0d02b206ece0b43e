"""AgentChat generation against the agent-harness stand-in over real HTTP (domain.md §12 F1)."""

import httpx
import pytest

from emulators.standins import HARNESS_TEST_TOKEN, start_agents
from playbook_core.adapters.agent_http import HttpAgentHarness

URL = "/v1/orgs/org_a/playbooks:generate"
BROKEN = "name: Broken\nagent: craig\nsteps:\n  - action: launch_rockets\n    params: {}\n"


@pytest.fixture
def harness(api):
    standin = start_agents()
    api.app.agents = HttpAgentHarness(standin.url, HARNESS_TEST_TOKEN)
    yield standin
    standin.stop()


def script(standin, *answers):
    for yaml_text in answers:
        reply = {
            "agent": "leo",
            "output": {"yaml": yaml_text},
            "score": 100,
            "issues": [],
            "remediation": None,
        }
        httpx.post(f"{standin.url}/__responses", json=reply, timeout=5).raise_for_status()


def harness_requests(standin):
    return [
        r
        for r in httpx.get(f"{standin.url}/__requests", timeout=5).json()
        if r["path"] == "/v1/run"
    ]


def test_typical_prompt_gives_a_saved_valid_draft(api, harness):
    response = api.as_().post(
        URL, json={"prompt": "Create a playbook for low stock alerts to my staff"}
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["playbook"]["status"] == "draft"
    assert body["playbook"]["source"] == {"kind": "agent_chat"}
    assert body["playbook"]["triggers"][0]["eventName"] == "inventory.low_stock"
    sent = harness_requests(harness)[0]["body"]
    assert sent["task"] == "compose_playbook"
    assert sent["input"]["goal"] == "Create a playbook for low stock alerts to my staff"
    assert "system" not in sent["input"]["allowedAgents"]


def test_invalid_drafts_are_repaired_with_the_validator_errors(api, harness):
    script(harness, BROKEN, BROKEN, "name: Fixed\nagent: craig\n")
    response = api.as_().post(URL, json={"prompt": "anything"})
    assert response.status_code == 201
    assert response.get_json()["playbook"]["name"] == "Fixed"
    requests = harness_requests(harness)
    assert len(requests) == 3
    assert "steps[0].action" in requests[1]["body"]["context"]["remediation"]
    assert requests[1]["body"]["context"]["previousOutput"] == BROKEN


def test_still_invalid_after_two_repairs_is_422_and_nothing_saved(api, harness):
    script(harness, BROKEN, BROKEN, BROKEN)
    response = api.as_().post(URL, json={"prompt": "anything"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["errors"][0]["path"] == "steps[0].action"
    assert body["yaml"] == BROKEN
    assert len(harness_requests(harness)) == 3
    assert api.as_().get("/v1/orgs/org_a/playbooks").get_json()["playbooks"] == []


def test_harness_outage_is_a_provider_error_not_a_saved_draft(api, harness):
    httpx.post(
        f"{harness.url}/__behaviour", json={"mode": "error_5xx"}, timeout=5
    ).raise_for_status()
    response = api.as_().post(URL, json={"prompt": "anything"})
    assert response.status_code == 502
    assert response.mimetype == "application/problem+json"
    assert api.as_().get("/v1/orgs/org_a/playbooks").get_json()["playbooks"] == []


def test_viewers_cannot_generate(api, harness):
    assert api.as_(role="brand_member").post(URL, json={"prompt": "x"}).status_code == 403
    assert harness_requests(harness) == []
