"""Both webhook functions over one embedded app with registered sources (the ingress tests' rig)."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import functions_framework

from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.adapters.secrets import StoreSecrets
from playbook_core.config import load_settings
from playbook_core.domain.collections import ORGANIZATIONS
from playbook_core.runtime import bootstrap
from playbook_core.runtime.cloudevents import PubsubMessage
from playbook_core.service.ingress.sources import register_source
from playbook_core.testing import FrozenClock

MAIN = str(Path(__file__).parents[3] / "functions" / "main.py")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def register_org(store, org: str) -> None:
    """The existing app's `organizations` document: dispatch runs nothing for an org without one."""
    store.set(ORGANIZATIONS, org, {"name": org})


@contextmanager
def serving_webhooks(
    sources: list[tuple[str, str, str | None]], *, org: str = "org_a", env: dict | None = None
) -> Iterator[tuple[bootstrap.App, dict]]:
    """(app, {platform: test client}) with each (platform, address, secret) registered to `org`."""
    os.environ.update(
        {"PLAYBOOKS_BACKEND": "embedded", "GOOGLE_CLOUD_PROJECT": "demo-playbooks", **(env or {})}
    )
    store = EmbeddedStore(":memory:")
    bus, queue = InProcessBus(), InProcessTaskQueue()
    clock = FrozenClock(NOW)
    app = bootstrap.App(load_settings(), store, bus, queue, clock, vault=StoreSecrets(store))
    register_org(store, org)
    for platform, address, secret in sources:
        register_source(
            org_id=org, platform=platform, address=address, secret=secret,
            low_stock_threshold=None, store=store, secrets=app.secrets(), clock=clock,
        )  # fmt: skip
    bootstrap.use(app)
    clients = {
        p: functions_framework.create_app(f"webhook_{p}", MAIN, "http").test_client()
        for p in ("shopify", "woocommerce")
    }
    try:
        yield app, clients
    finally:
        bootstrap.use(None)
        bus.close()
        queue.close()
        store.close()


def dispatch_published(app: bootstrap.App) -> None:
    """What on_event_published does with every message published so far (a repeat is a no-op).

    A repeated delivery is a duplicate once its last event is logged (domain.md §6.4 step 3).
    """
    for n, (_, message) in enumerate(app.bus.published):
        app.event_published(PubsubMessage(f"m{n}", dict(message.attributes), message.data))
