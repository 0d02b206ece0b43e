"""The HTTP agent-harness adapter against the stand-in: every error class of domain.md §11.3."""

import httpx
import pytest

from emulators.standins import HARNESS_TEST_TOKEN, start_agents
from playbook_core.adapters.agent_http import HttpAgentHarness
from playbook_core.domain.errors import PermanentProviderError, TransientProviderError


@pytest.fixture
def standin():
    server = start_agents(timeout_sleep_s=2.0)
    yield server
    server.stop()


def behave(standin, **mode):
    httpx.post(f"{standin.url}/__behaviour", json=mode, timeout=5).raise_for_status()


def run(standin, token=HARNESS_TEST_TOKEN, timeout_s=5.0):
    return HttpAgentHarness(standin.url, token).run(
        agent="craig",
        task="write",
        payload={"a": 1},
        context={"executionId": "ev_1"},
        timeout_s=timeout_s,
    )


def test_success_returns_output_and_score(standin):
    reply = run(standin)
    assert reply.score == 100
    assert reply.output["title"] == "Test title"
    request = httpx.get(f"{standin.url}/__requests", timeout=5).json()[-1]
    assert request["headers"]["authorization"] == f"Bearer {HARNESS_TEST_TOKEN}"
    assert request["body"]["context"] == {"executionId": "ev_1"}


def test_5xx_is_transient(standin):
    behave(standin, mode="error_5xx")
    with pytest.raises(TransientProviderError) as caught:
        run(standin)
    assert caught.value.http_status == 503


def test_timeout_is_transient(standin):
    behave(standin, mode="timeout")
    with pytest.raises(TransientProviderError) as caught:
        run(standin, timeout_s=0.3)
    assert caught.value.code == "harness_timeout"


def test_4xx_is_permanent(standin):
    with pytest.raises(PermanentProviderError) as caught:
        run(standin, token="wrong-token")
    assert caught.value.http_status == 401


def test_malformed_body_is_a_protocol_error(standin):
    behave(standin, mode="malformed")
    with pytest.raises(PermanentProviderError) as caught:
        run(standin)
    assert caught.value.code == "harness_protocol_error"


def test_missing_score_is_a_protocol_error(standin):
    reply = {"output": {"x": 1}, "issues": [], "remediation": None}
    httpx.post(f"{standin.url}/__responses", json=reply, timeout=5).raise_for_status()
    with pytest.raises(PermanentProviderError) as caught:
        run(standin)
    assert caught.value.code == "harness_protocol_error"
