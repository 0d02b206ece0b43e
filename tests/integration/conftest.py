"""An API client over the deployed entry point, with an embedded app and local tokens."""

import os
from datetime import UTC, datetime
from pathlib import Path

import functions_framework
import pytest

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.firebase_auth import local_claims, unsigned_token
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.adapters.pubsub import PubsubBus
from playbook_core.config import load_settings
from playbook_core.runtime import bootstrap
from playbook_core.testing import FrozenClock
from tests.openapi_conformance import ConformingClient

MAIN = str(Path(__file__).parents[2] / "functions" / "main.py")
CRON_SECRET = "test-cron-secret"


class Api:
    def __init__(self, client, app):
        self.client, self.app = client, app

    def headers(self, role="brand_admin", orgs=("org_a",), **extra):
        claims = local_claims("demo-playbooks", f"uid_{role}", role, list(orgs), **extra)
        return {"Authorization": f"Bearer {unsigned_token(claims)}"}

    def as_(self, role="brand_admin", orgs=("org_a",), **extra):
        headers = self.headers(role, orgs, **extra)
        api = self

        class Bound:
            def __getattr__(self, method):
                def call(path, **kwargs):
                    merged = {**headers, **kwargs.pop("headers", {})}
                    return getattr(api.client, method)(path, headers=merged, **kwargs)

                return call

        return Bound()


@pytest.fixture
def api():
    os.environ.update(
        {
            "PLAYBOOKS_BACKEND": "embedded",
            "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
            "CRON_SECRET": CRON_SECRET,
            "GOOGLE_CLOUD_PROJECT": "demo-playbooks",
        }
    )
    store = EmbeddedStore(":memory:")
    yield from serving_api(store, FrozenClock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC)))
    store.close()


def serving_api(store, clock):
    """An `Api` over `store` (in-process bus and queue) while the test runs, then uninstalled."""
    bus, queue = InProcessBus(), InProcessTaskQueue()
    app = bootstrap.App(load_settings(), store, bus, queue, clock)
    bootstrap.use(app)
    flask_app = functions_framework.create_app("playbooks_api", MAIN, "http")
    flask_app.test_client_class = ConformingClient  # every answer is held to the OpenAPI document
    client = flask_app.test_client()
    yield Api(client, app)
    bootstrap.use(None)
    bus.close()
    queue.close()


@pytest.fixture
def bus(emulator_env):
    """Our Pub/Sub adapter on the official emulator (project demo-playbooks)."""
    made = PubsubBus("demo-playbooks")
    yield made
    made.close()
