"""`GET /v1/health` reports the providers as the functions that use them see them.

In the cloud a provider's secrets are mounted only into the functions that use it (infra:
secret_consumers), never into the API. Each test builds one app per function instance, as Cloud
Run would (K_SERVICE names the instance's function), all on one store, and asks the API.
"""

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import functions_framework
import pytest

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.config import Settings
from playbook_core.domain.collections import FUNCTION_STATUS
from playbook_core.domain.errors import Unavailable
from playbook_core.runtime import bootstrap
from playbook_core.runtime.bootstrap import PROVIDER_USERS
from playbook_core.testing import FrozenClock
from tests.openapi_conformance import ConformingClient

MAIN = str(Path(__file__).parents[3] / "functions" / "main.py")
PROVIDERS = ("mailjet", "blackleaf", "harness", "slack")
HARNESS = {"AGENT_HARNESS_URL": "https://harness.internal.example/v1"}  # plain: every function
SECRETS = {
    "MAILJET_API_KEY": "mj-key-7Qx2-not-for-eyes",
    "MAILJET_SECRET_KEY": "mj-secret-9Pz4-not-for-eyes",
    "BLACKLEAF_API_KEY": "bl-key-3Rt8-not-for-eyes",
    "AGENT_HARNESS_TOKEN": "harness-token-5Wv1-not-for-eyes",
    "SLACK_ALERT_WEBHOOK_URL": "https://hooks.slack.com/services/T0SECRET/B0SECRET/x1y2z3secret",
}
# What infra gives execute_step: plain settings plus every provider secret.
STEP_ENV = {**HARNESS, "BLACKLEAF_API_BASE": "https://api.blackleaf.example", **SECRETS}
# What infra gives playbooks_api: the harness, never Mailjet, Blackleaf or Slack.
API_ENV = {**HARNESS, "AGENT_HARNESS_TOKEN": SECRETS["AGENT_HARNESS_TOKEN"]}
CLEARED = (
    *STEP_ENV, "K_SERVICE", "K_REVISION", "PLAYBOOKS_BACKEND", "PLAYBOOKS_LOCAL_OIDC",
    "FIREBASE_AUTH_EMULATOR_HOST", "MAILJET_API_BASE",
)  # fmt: skip


@pytest.fixture
def world(new_store):
    """One store and clock shared by every function instance a test starts, on each backend."""
    store = new_store()
    started = []

    class World:
        clock = FrozenClock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))

        def __init__(self):
            self.store = store

        def instance(self, service, env, store=store):
            """A function instance: its own settings (as Cloud Run sets them), then installed."""
            for name in CLEARED:
                os.environ.pop(name, None)
            os.environ.update(env)
            if service is not None:
                os.environ["K_SERVICE"] = service
            app = bootstrap.App(Settings(), store, InProcessBus(), InProcessTaskQueue(), self.clock)
            started.append(app)
            bootstrap.use(app)
            return app

        def health(self):
            """`GET /v1/health` through the API function's entry point, held to the contract."""
            flask_app = functions_framework.create_app("playbooks_api", MAIN, "http")
            flask_app.test_client_class = ConformingClient
            response = flask_app.test_client().get("/v1/health")
            assert response.status_code == 200
            return response

    yield World()
    bootstrap.use(None)
    for app in started:
        app.bus.close()
        app.queue.close()


def provider_checks(body):
    return {name: body["checks"][name] for name in PROVIDERS}


def test_providers_configured_in_the_functions_that_use_them_are_configured(world):
    world.instance("execute-step", STEP_ENV)
    world.instance("playbooks-api", API_ENV)  # the API itself has no Mailjet, Blackleaf or Slack
    body = world.health().get_json()
    assert provider_checks(body) == dict.fromkeys(PROVIDERS, "configured")
    assert body["functions"]["execute_step"] == {
        "status": "reported",
        "checkedAt": "2026-11-24T12:00:00Z",
        "configured": dict.fromkeys(PROVIDERS, True),
    }
    assert body["functions"]["playbooks_api"]["configured"] == {"harness": True}
    assert body["functions"]["webhook_blackleaf"] == {"status": "not_reported", "configured": {}}
    assert body["status"] == "ok"


def test_a_provider_missing_in_a_function_that_uses_it_is_unconfigured(world):
    world.instance("execute-step", {k: v for k, v in STEP_ENV.items() if k != "BLACKLEAF_API_KEY"})
    world.instance("playbooks-api", API_ENV)
    assert provider_checks(world.health().get_json()) == {
        "mailjet": "configured",
        "blackleaf": "unconfigured",
        "harness": "configured",
        "slack": "configured",
    }


def test_one_function_missing_a_shared_provider_makes_it_unconfigured(world):
    world.instance("execute-step", STEP_ENV)
    world.instance("webhook-blackleaf", HARNESS)  # STOP confirmations need the Blackleaf key too
    world.instance("playbooks-api", API_ENV)
    body = world.health().get_json()
    assert provider_checks(body)["blackleaf"] == "unconfigured"
    assert body["functions"]["webhook_blackleaf"]["configured"] == {"blackleaf": False}


def test_a_provider_no_function_has_reported_on_is_unknown(world):
    world.instance("playbooks-api", API_ENV)
    assert provider_checks(world.health().get_json()) == {
        "mailjet": "unknown",
        "blackleaf": "unknown",
        "harness": "configured",  # the API uses the harness and reported it
        "slack": "unknown",
    }


def test_a_report_older_than_a_day_no_longer_counts(world):
    world.instance("execute-step", STEP_ENV)
    world.clock.advance(hours=24, minutes=1)
    world.instance("playbooks-api", API_ENV)
    body = world.health().get_json()
    assert provider_checks(body)["mailjet"] == "unknown"
    assert body["functions"]["execute_step"]["status"] == "stale"
    assert body["functions"]["execute_step"]["checkedAt"] == "2026-11-24T12:00:00Z"


def test_no_secret_value_reaches_the_answer_or_the_reports(world):
    world.instance("execute-step", STEP_ENV)
    world.instance("webhook-blackleaf", STEP_ENV)
    world.instance("playbooks-api", STEP_ENV)
    answer = world.health().get_data(as_text=True)
    stored = repr(world.store.get_many(FUNCTION_STATUS, ["execute_step", "playbooks_api"]))
    for value in STEP_ENV.values():
        assert value not in answer
        assert value not in stored
    assert "x1y2z3secret" not in answer + stored


@pytest.mark.parametrize("service", ["execute-step", "execute_step"])
def test_a_deployed_instance_reports_only_its_own_function(world, service):
    world.instance(service, STEP_ENV)
    reported = world.store.get_many(FUNCTION_STATUS, ["execute_step", "playbooks_api"])
    assert set(reported) == {"execute_step"}
    assert reported["execute_step"]["configured"] == dict.fromkeys(PROVIDERS, True)
    assert reported["execute_step"]["function"] == "execute_step"


def test_the_report_names_the_deployed_revision(world):
    world.instance("execute-step", {**STEP_ENV, "K_REVISION": "execute-step-00042-abc"})
    body = world.health().get_json()
    assert body["functions"]["execute_step"]["revision"] == "execute-step-00042-abc"
    assert body["functions"]["playbooks_api"].get("revision") is None  # it never reported


def test_locally_one_process_reports_for_every_function(world):
    world.instance(None, STEP_ENV)  # no K_SERVICE: the gateway serves every function
    body = world.health().get_json()
    assert provider_checks(body) == dict.fromkeys(PROVIDERS, "configured")
    assert {f["status"] for f in body["functions"].values()} == {"reported"}
    assert set(body["functions"]) == {f for users in PROVIDER_USERS.values() for f in users}
    assert set(body["functions"]) >= {"execute_step", "playbooks_api", "webhook_blackleaf"}


def test_an_instance_reports_again_only_when_due(world):
    world.instance("execute-step", STEP_ENV)
    world.store.delete(FUNCTION_STATUS, "execute_step")
    world.clock.advance(minutes=59)
    bootstrap.app()  # every entry point asks for the app
    assert world.store.get(FUNCTION_STATUS, "execute_step") is None
    world.clock.advance(minutes=1)
    bootstrap.app()
    assert world.store.get(FUNCTION_STATUS, "execute_step")["checkedAt"] == world.clock.now()


class ReadOnlyStore(EmbeddedStore):
    """Storage that answers reads and refuses every write."""

    def set(self, *_args, **_kwargs):
        raise Unavailable("firestore unreachable")


def test_a_report_that_cannot_be_written_is_logged_and_the_instance_serves_on(world, caplog):
    store = ReadOnlyStore(":memory:")
    caplog.set_level(logging.WARNING, logger="playbooks.health")
    try:
        app = world.instance("execute-step", STEP_ENV, store=store)  # does not raise
        assert bootstrap.app() is app
        assert "function status not reported" in caplog.text
        assert provider_checks(world.health().get_json()) == dict.fromkeys(PROVIDERS, "unknown")
    finally:
        store.close()


def test_stores_whose_webhooks_need_attention_are_counted_never_named(world):
    world.instance("playbooks-api", API_ENV)
    body = world.health().get_json()
    assert body["webhookSources"] == {"missingWebhooks": 0, "webhooksSilent": 0, "more": False}
    kinds = ["missing_webhooks"] * 2 + ["webhooks_silent"] + ["ok", "unknown"]
    for n, kind in enumerate(kinds):
        source = {"orgId": f"org_h{n}", "platform": "shopify", "status": "active"}
        world.store.set("webhook_sources", f"shopify_h{n}.myshopify.com", {
            **source, "shopDomain": f"h{n}.myshopify.com", "webhookHealth": kind,
        })  # fmt: skip
    answer = world.health()
    body = answer.get_json()
    assert body["webhookSources"] == {"missingWebhooks": 2, "webhooksSilent": 1, "more": False}
    assert body["status"] == "ok"  # a store's webhooks are not our dependency
    assert "myshopify" not in answer.get_data(as_text=True)
    assert "org_h" not in answer.get_data(as_text=True)


def test_past_twenty_stores_health_says_there_are_more(world):
    world.instance("playbooks-api", API_ENV)
    for n in range(22):
        world.store.set("webhook_sources", f"shopify_m{n}.myshopify.com", {
            "orgId": "org_m", "platform": "shopify", "status": "active",
            "shopDomain": f"m{n}.myshopify.com", "webhookHealth": "missing_webhooks",
        })  # fmt: skip
    counted = world.health().get_json()["webhookSources"]
    assert counted == {"missingWebhooks": 20, "webhooksSilent": 0, "more": True}
