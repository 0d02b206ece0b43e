"""A rig for consent (docs/consent.md): the real functions over one app, on both stores.

Each test gets its own orgs (the Firestore emulator is shared by the session), the Blackleaf and
Mailjet stand-ins as real HTTP servers, and functions served either through functions-framework's
test client or, where a stand-in must call them, over real HTTP on a free port.
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import functions_framework
import httpx
import pytest
from pydantic import SecretStr
from werkzeug.serving import make_server

from emulators.standins import BLACKLEAF_TEST_KEY, start_blackleaf
from playbook_core.adapters.blackleaf import BlackleafSms
from playbook_core.adapters.embedded import EmbeddedStore
from playbook_core.adapters.inprocess import InProcessBus, InProcessTaskQueue
from playbook_core.adapters.secrets import StoreSecrets
from playbook_core.config import load_settings
from playbook_core.domain.collections import CONSENT_RECORDS, WEBHOOK_CLAIMS, WEBHOOK_RECEIPTS
from playbook_core.ports import Where
from playbook_core.runtime import bootstrap
from playbook_core.testing import FrozenClock

MAIN = str(Path(__file__).parents[3] / "functions" / "main.py")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
UNSUBSCRIBE_KEY = "test-unsubscribe-key-0123456789abcdef"
PUBLIC_BASE = "https://links.example.com"


class Served:
    """One function over real HTTP (werkzeug, a free port) until `stop()`."""

    def __init__(self, name: str) -> None:
        app = functions_framework.create_app(name, MAIN, "http")
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Rig:
    def __init__(self, app: bootstrap.App, clock: FrozenClock, blackleaf) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.app, self.store, self.clock, self.blackleaf = app, app.store, clock, blackleaf
        self.org, self.other = f"org_{suffix}_a", f"org_{suffix}_b"
        # The stand-ins outlive a test: a number of its own keeps each test's texts apart.
        # A valid US number (exchange 2xx–9xx), or ingest and inbound SMS drop it.
        n = uuid.uuid4().int % (8 * 10**6)
        self.phone = f"+1415{2 + n // 10**6}{n % 10**6:06d}"
        self._served: dict[str, Served] = {}
        self._clients: dict[str, object] = {}

    def client(self, name: str):
        """functions-framework's test client for one function of functions/main.py."""
        if name not in self._clients:
            app = functions_framework.create_app(name, MAIN, "http")
            self._clients[name] = app.test_client()
        return self._clients[name]

    def served(self, name: str) -> str:
        if name not in self._served:
            self._served[name] = Served(name)
        return self._served[name].url

    def stop(self) -> None:
        for served in self._served.values():
            served.stop()

    def records(self, org: str | None = None) -> list[dict]:
        where = [Where("orgId", "==", org or self.org)]
        return [doc.data for doc in self.store.query(CONSENT_RECORDS, where, limit=500).docs]

    def trace(self, org: str | None = None) -> dict[str, list]:
        """Everything the consent paths write for an org: to prove a refusal wrote nothing."""
        where = [Where("orgId", "==", org or self.org)]
        return {
            name: sorted(doc.id for doc in self.store.query(name, where, limit=500).docs)
            for name in (CONSENT_RECORDS, WEBHOOK_RECEIPTS, WEBHOOK_CLAIMS)
        }

    def texts(self) -> list[dict]:
        """Distinct SMS the Blackleaf stand-in accepted."""
        return httpx.get(f"{self.blackleaf.url}/__messages", timeout=5).json()


@pytest.fixture(scope="module")
def blackleaf():
    server = start_blackleaf()
    yield server
    server.stop()


@pytest.fixture(params=["embedded", pytest.param("emulators", marks=pytest.mark.emulator)])
def rig(request, blackleaf):
    """The app on the embedded store or the Firestore emulator, installed for the functions."""
    os.environ.update({"PLAYBOOKS_BACKEND": "embedded", "GOOGLE_CLOUD_PROJECT": "demo-playbooks"})
    if request.param == "embedded":
        store = EmbeddedStore(":memory:")
    else:
        request.getfixturevalue("emulator_env")
        from playbook_core.adapters.firestore import FirestoreStore

        store = FirestoreStore("demo-playbooks")
    settings = load_settings().model_copy(
        update={"unsubscribe_key": SecretStr(UNSUBSCRIBE_KEY), "public_base_url": PUBLIC_BASE}
    )
    bus, queue, clock = InProcessBus(), InProcessTaskQueue(), FrozenClock(NOW)
    app = bootstrap.App(settings, store, bus, queue, clock, vault=StoreSecrets(store))
    app.texts = BlackleafSms(blackleaf.url, BLACKLEAF_TEST_KEY)
    bootstrap.use(app)
    httpx.delete(f"{blackleaf.url}/__inbound/webhook", timeout=5)
    built = Rig(app, clock, blackleaf)
    try:
        yield built
    finally:
        built.stop()
        bootstrap.use(None)
        bus.close()
        queue.close()
        if request.param == "embedded":
            store.close()
